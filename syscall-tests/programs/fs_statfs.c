/* statfs/fstatfs/access/faccessat2. */
/* syscalls: statfs fstatfs access faccessat faccessat2 */
#include "common.h"
#include <sys/vfs.h>
#include <linux/magic.h>

int main(void) {
    scratch();
    put_file("f", "x");
    struct statfs s;
    CHECK("statfs_tmp", statfs("/tmp", &s) == 0 && s.f_bsize > 0);
    CHECK("statfs_proc_magic", statfs("/proc", &s) == 0 && s.f_type == PROC_SUPER_MAGIC);
    EXPECT_ERR("statfs_enoent", statfs("/nonexistent", &s), ENOENT);
    EXPECT_ERR("statfs_efault", RAW(SYS_statfs, "/", BADPTR), EFAULT);
    int fd = open("f", O_RDONLY);
    CHECK("fstatfs", fstatfs(fd, &s) == 0 && s.f_namelen >= 255);
    EXPECT_ERR("fstatfs_ebadf", fstatfs(999, &s), EBADF);
    close(fd);
    EXPECT_OK("access_f_ok", access("f", F_OK));
    EXPECT_OK("access_r_ok", access("f", R_OK));
    EXPECT_ERR("access_enoent", access("nope", F_OK), ENOENT);
    EXPECT_ERR("access_efault", access(BADPTR, F_OK), EFAULT);
    EXPECT_OK("faccessat2_eaccess", RAW(SYS_faccessat2, AT_FDCWD, "f", R_OK, AT_EACCESS));
    EXPECT_ERR("faccessat2_bad_flags", RAW(SYS_faccessat2, AT_FDCWD, "f", R_OK, 0x1), EINVAL);
    symlink("nope", "dangle");
    EXPECT_OK("faccessat2_nofollow", RAW(SYS_faccessat2, AT_FDCWD, "dangle", F_OK, AT_SYMLINK_NOFOLLOW));
    EXPECT_ERR("faccessat_follow_dangling", RAW(SYS_faccessat, AT_FDCWD, "dangle", F_OK), ENOENT);
    fd = open("f", O_RDONLY);
    EXPECT_OK("faccessat2_empty_path", RAW(SYS_faccessat2, fd, "", F_OK, AT_EMPTY_PATH));
    close(fd);
    EXPECT_ERR("access_enotdir", access("f/x", F_OK), ENOTDIR);
    return DONE();
}
