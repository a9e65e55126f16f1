/* link/linkat/unlink/unlinkat. */
/* syscalls: link linkat unlink unlinkat */
#include "common.h"

int main(void) {
    scratch();
    put_file("f", "data");
    mkdir("d", 0755);
    struct stat a, b;
    EXPECT_OK("link", link("f", "g"));
    CHECK("link_same_inode", stat("f", &a) == 0 && stat("g", &b) == 0 && a.st_ino == b.st_ino);
    CHECK("link_nlink_2", a.st_nlink == 2);
    EXPECT_ERR("link_exists", link("f", "g"), EEXIST);
    EXPECT_ERR("link_enoent", link("nope", "h"), ENOENT);
    EXPECT_ERR("link_dir_eperm", link("d", "d2"), EPERM);
    EXPECT_OK("unlink", unlink("g"));
    CHECK("unlink_nlink_1", stat("f", &a) == 0 && a.st_nlink == 1);
    EXPECT_ERR("unlink_enoent", unlink("g"), ENOENT);
    EXPECT_ERR("unlink_dir", unlink("d"), EISDIR);
    EXPECT_ERR("unlinkat_dir_needs_removedir", unlinkat(AT_FDCWD, "d", 0), EISDIR);
    EXPECT_ERR("unlinkat_removedir_file", unlinkat(AT_FDCWD, "f", AT_REMOVEDIR), ENOTDIR);
    EXPECT_ERR("unlinkat_bad_flag", unlinkat(AT_FDCWD, "f", 0x1), EINVAL);
    EXPECT_OK("unlinkat_removedir", unlinkat(AT_FDCWD, "d", AT_REMOVEDIR));
    int fd = open("f", O_RDWR);
    unlink("f");
    char buf[8] = {0};
    CHECK("unlinked_file_still_readable", pread(fd, buf, 4, 0) == 4 && memcmp(buf, "data", 4) == 0);
    CHECK("unlinked_nlink_0", fstat(fd, &a) == 0 && a.st_nlink == 0);
    close(fd);
    put_file("f", "x");
    symlink("f", "s");
    EXPECT_OK("linkat_symlink_nofollow", linkat(AT_FDCWD, "s", AT_FDCWD, "s2", 0));
    CHECK("linkat_nofollow_is_link", lstat("s2", &a) == 0 && S_ISLNK(a.st_mode));
    EXPECT_OK("linkat_follow", linkat(AT_FDCWD, "s", AT_FDCWD, "f2", AT_SYMLINK_FOLLOW));
    CHECK("linkat_follow_is_file", lstat("f2", &a) == 0 && S_ISREG(a.st_mode));
    EXPECT_ERR("linkat_bad_flags", linkat(AT_FDCWD, "f", AT_FDCWD, "f3", 0x2), EINVAL);
    EXPECT_ERR("link_efault", link(BADPTR, "z"), EFAULT);
    EXPECT_ERR("unlink_efault", unlink(BADPTR), EFAULT);
    return DONE();
}
