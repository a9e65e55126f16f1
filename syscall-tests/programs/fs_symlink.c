/* symlink/readlink/readlinkat and resolution through links. */
/* syscalls: symlink symlinkat readlink readlinkat */
#include "common.h"

int main(void) {
    scratch();
    put_file("f", "content");
    mkdir("d", 0755);
    char buf[256];
    EXPECT_OK("symlink", symlink("f", "l"));
    EXPECT_EQ("readlink_len", readlink("l", buf, sizeof buf), 1);
    CHECK("readlink_value", buf[0] == 'f');
    EXPECT_EQ("readlink_truncates", (symlink("a-long-target", "l2"), readlink("l2", buf, 3)), 3);
    EXPECT_ERR("readlink_not_link", readlink("f", buf, sizeof buf), EINVAL);
    EXPECT_ERR("readlink_zero_size", readlink("l", buf, 0), EINVAL);
    EXPECT_ERR("readlink_enoent", readlink("nope", buf, sizeof buf), ENOENT);
    EXPECT_ERR("symlink_exists", symlink("x", "l"), EEXIST);
    EXPECT_ERR("symlink_empty_target", symlink("", "e"), ENOENT);
    symlink("dangling-target", "dangle");
    EXPECT_ERR("open_dangling", open("dangle", O_RDONLY), ENOENT);
    int fd = open("dangle", O_CREAT | O_WRONLY, 0644);
    CHECK("creat_through_dangling", fd >= 0 && access("dangling-target", F_OK) == 0);
    close(fd);
    symlink("loop1", "loop2");
    symlink("loop2", "loop1");
    EXPECT_ERR("symlink_loop_eloop", open("loop1", O_RDONLY), ELOOP);
    symlink("d", "dl");
    put_file("d/in", "in");
    CHECK("resolve_dir_link", get_file("dl/in", buf, sizeof buf) == 2);
    symlink("/tmp", "abs");
    struct stat a, b;
    CHECK("absolute_symlink", stat("abs", &a) == 0 && stat("/tmp", &b) == 0 && a.st_ino == b.st_ino);
    symlink("../f", "d/up");
    CHECK("relative_to_link_dir", get_file("d/up", buf, sizeof buf) == 7);
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    EXPECT_EQ("readlinkat", readlinkat(dfd, "up", buf, sizeof buf), 4);
    EXPECT_OK("symlinkat", symlinkat("in", dfd, "in2"));
    CHECK("symlinkat_resolves", get_file("d/in2", buf, sizeof buf) == 2);
    int pfd = open("l", O_PATH | O_NOFOLLOW);
    EXPECT_EQ("readlinkat_empty_path", readlinkat(pfd, "", buf, sizeof buf), 1);
    close(pfd);
    close(dfd);
    EXPECT_ERR("readlink_efault", RAW(SYS_readlink, "l", BADPTR, 10), EFAULT);
    char deep[64];
    snprintf(deep, sizeof deep, "s0");
    symlink("f", "s0");
    for (int i = 1; i <= 41; i++) {
        char prev[16], cur[16];
        snprintf(prev, sizeof prev, "s%d", i - 1);
        snprintf(cur, sizeof cur, "s%d", i);
        symlink(prev, cur);
    }
    CHECK("symlink_chain_39_ok", open("s39", O_RDONLY) >= 0);
    EXPECT_ERR("symlink_chain_41_eloop", open("s41", O_RDONLY), ELOOP);
    return DONE();
}
