/* mkdir/mkdirat/rmdir and directory errors. */
/* syscalls: mkdir mkdirat rmdir */
#include "common.h"

int main(void) {
    scratch();
    struct stat st;
    EXPECT_OK("mkdir", mkdir("d", 0751));
    CHECK("mkdir_mode_umask", stat("d", &st) == 0 && (st.st_mode & 0777) == (0751 & ~022));
    EXPECT_ERR("mkdir_exists", mkdir("d", 0755), EEXIST);
    EXPECT_ERR("mkdir_enoent_parent", mkdir("x/y", 0755), ENOENT);
    put_file("f", "");
    EXPECT_ERR("mkdir_enotdir_parent", mkdir("f/y", 0755), ENOTDIR);
    EXPECT_ERR("mkdir_efault", mkdir(BADPTR, 0755), EFAULT);
    EXPECT_OK("mkdir_trailing_slash", mkdir("t/", 0755));
    int fd = open("d", O_RDONLY | O_DIRECTORY);
    EXPECT_OK("mkdirat", mkdirat(fd, "sub", 0700));
    CHECK("mkdirat_in_dir", stat("d/sub", &st) == 0 && S_ISDIR(st.st_mode));
    EXPECT_ERR("rmdir_nonempty", rmdir("d"), ENOTEMPTY);
    EXPECT_ERR("rmdir_file", rmdir("f"), ENOTDIR);
    EXPECT_ERR("rmdir_dot", rmdir("d/sub/."), EINVAL);
    EXPECT_ERR("rmdir_enoent", rmdir("nope"), ENOENT);
    EXPECT_OK("rmdir", rmdir("d/sub"));
    EXPECT_ERR("mkdir_symlink_exists", (symlink("zz", "ln"), mkdir("ln", 0755)), EEXIST);
    EXPECT_OK("mkdir_sgid_ignored_bits", mkdir("s", 07777));
    CHECK("mkdir_sticky_kept", stat("s", &st) == 0 && (st.st_mode & 01000));
    close(fd);
    EXPECT_OK("rmdir_open_dir", (fd = open("t", O_RDONLY | O_DIRECTORY), rmdir("t")));
    CHECK("rmdir_open_dir_stat_nlink0", fstat(fd, &st) == 0 && st.st_nlink == 0);
    EXPECT_ERR("create_in_removed_dir", openat(fd, "x", O_CREAT | O_WRONLY, 0644), ENOENT);
    close(fd);
    return DONE();
}
