/* getcwd/chdir/fchdir/chroot. */
/* syscalls: getcwd chdir fchdir */
#include "common.h"

int main(void) {
    scratch();
    char buf[PATH_MAX], base[PATH_MAX];
    CHECK("getcwd_scratch", getcwd(base, sizeof base) && !strncmp(base, "/tmp/bwst-", 10));
    mkdir("d", 0755);
    EXPECT_OK("chdir", chdir("d"));
    CHECK("getcwd_after_chdir", getcwd(buf, sizeof buf) && strlen(buf) == strlen(base) + 2 && !strcmp(buf + strlen(base), "/d"));
    EXPECT_OK("chdir_dotdot", chdir(".."));
    CHECK("getcwd_back", getcwd(buf, sizeof buf) && !strcmp(buf, base));
    EXPECT_ERR("chdir_enoent", chdir("nope"), ENOENT);
    put_file("f", "");
    EXPECT_ERR("chdir_file", chdir("f"), ENOTDIR);
    EXPECT_ERR("chdir_efault", chdir(BADPTR), EFAULT);
    int fd = open("d", O_RDONLY | O_DIRECTORY);
    EXPECT_OK("fchdir", fchdir(fd));
    CHECK("fchdir_cwd", getcwd(buf, sizeof buf) && !strcmp(buf + strlen(base), "/d"));
    close(fd);
    chdir(base);
    fd = open("f", O_RDONLY);
    EXPECT_ERR("fchdir_file", fchdir(fd), ENOTDIR);
    EXPECT_ERR("fchdir_ebadf", fchdir(999), EBADF);
    close(fd);
    EXPECT_ERR("getcwd_erange", RAW(SYS_getcwd, buf, 2), ERANGE);
    EXPECT_ERR("getcwd_efault", RAW(SYS_getcwd, BADPTR, 100), EFAULT);
    EXPECT_EQ("getcwd_returns_len", RAW(SYS_getcwd, buf, sizeof buf), strlen(base) + 1);
    chdir("/");
    CHECK("getcwd_root", getcwd(buf, sizeof buf) && !strcmp(buf, "/"));
    chdir("/..");
    CHECK("dotdot_at_root", getcwd(buf, sizeof buf) && !strcmp(buf, "/"));
    chdir(base);
    mkdir("gone", 0755);
    chdir("gone");
    rmdir(base[0] ? "../gone" : "");
    EXPECT_ERR("getcwd_deleted_dir", RAW(SYS_getcwd, buf, sizeof buf), ENOENT);
    EXPECT_ERR("mkdir_in_deleted_cwd", mkdir("x", 0755), ENOENT);
    chdir(base);
    return DONE();
}
