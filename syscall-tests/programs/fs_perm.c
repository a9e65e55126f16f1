/* chmod/fchmod/fchmodat/chown/umask and permission checks. */
/* syscalls: chmod fchmod fchmodat chown fchown lchown umask access */
#include "common.h"

int main(void) {
    scratch();
    put_file("f", "x");
    struct stat st;
    EXPECT_EQ("umask_returns_old", (umask(027), umask(022)), 027);
    umask(077);
    int fd = open("g", O_CREAT | O_WRONLY, 0666);
    close(fd);
    CHECK("umask_applied", stat("g", &st) == 0 && (st.st_mode & 0777) == 0600);
    umask(022);
    EXPECT_OK("chmod", chmod("f", 0640));
    CHECK("chmod_mode", stat("f", &st) == 0 && (st.st_mode & 07777) == 0640);
    fd = open("f", O_RDONLY);
    EXPECT_OK("fchmod", fchmod(fd, 0604));
    CHECK("fchmod_mode", stat("f", &st) == 0 && (st.st_mode & 07777) == 0604);
    EXPECT_ERR("fchmod_ebadf", fchmod(999, 0644), EBADF);
    close(fd);
    EXPECT_ERR("chmod_enoent", chmod("nope", 0644), ENOENT);
    EXPECT_OK("fchmodat", fchmodat(AT_FDCWD, "f", 0600, 0));
    symlink("f", "l");
    EXPECT_OK("fchmodat_has_no_flags_arg", RAW(SYS_fchmodat, AT_FDCWD, "f", 0600, 0x1));
    EXPECT_OK("chmod_suid", chmod("f", 04755));
    CHECK("chmod_suid_kept", stat("f", &st) == 0 && (st.st_mode & 04000));
    EXPECT_OK("chown_self", chown("f", geteuid(), getegid()));
    EXPECT_OK("chown_minus_one", chown("f", -1, -1));
    EXPECT_OK("lchown_link", lchown("l", geteuid(), getegid()));
    fd = open("f", O_RDONLY);
    EXPECT_OK("fchown", fchown(fd, -1, getegid()));
    close(fd);
    chmod("f", 0);
    if (geteuid() == 0) {
        fd = open("f", O_RDWR);
        CHECK("root_bypasses_mode_0", fd >= 0);
        close(fd);
        EXPECT_OK("root_access_w", access("f", W_OK));
        EXPECT_ERR("root_access_x_needs_a_bit", access("f", X_OK), EACCES);
    } else {
        EXPECT_ERR("mode_0_eacces", open("f", O_RDONLY), EACCES);
        EXPECT_ERR("access_w_eacces", access("f", W_OK), EACCES);
        EXPECT_ERR("access_x_eacces", access("f", X_OK), EACCES);
    }
    chmod("f", 0100);
    EXPECT_OK("access_x_with_one_bit", access("f", X_OK));
    EXPECT_ERR("access_bad_mode", access("f", 0x10), EINVAL);
    EXPECT_ERR("chmod_efault", chmod(BADPTR, 0644), EFAULT);
    return DONE();
}
