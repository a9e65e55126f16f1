/* stat/fstat/lstat/newfstatat: fields and errors. */
/* syscalls: stat fstat lstat newfstatat */
#include "common.h"

int main(void) {
    scratch();
    put_file("f", "12345");
    mkdir("d", 0750);
    symlink("f", "l");
    struct stat st, st2;
    CHECK("stat_size", stat("f", &st) == 0 && st.st_size == 5);
    CHECK("stat_regular", S_ISREG(st.st_mode));
    CHECK("stat_nlink", st.st_nlink == 1);
    CHECK("stat_uid", st.st_uid == geteuid());
    CHECK("stat_blksize", st.st_blksize > 0);
    CHECK("stat_dir", stat("d", &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0750);
    CHECK("lstat_symlink", lstat("l", &st) == 0 && S_ISLNK(st.st_mode) && st.st_size == 1);
    CHECK("stat_follows", stat("l", &st) == 0 && S_ISREG(st.st_mode));
    int fd = open("f", O_RDONLY);
    CHECK("fstat_matches_stat", fstat(fd, &st) == 0 && stat("f", &st2) == 0 && st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
    EXPECT_ERR("fstat_ebadf", fstat(-1, &st), EBADF);
    EXPECT_ERR("fstat_efault", RAW(SYS_fstat, fd, BADPTR), EFAULT);
    EXPECT_ERR("stat_enoent", stat("missing", &st), ENOENT);
    EXPECT_ERR("stat_path_efault", RAW(SYS_stat, BADPTR, &st), EFAULT);
    EXPECT_ERR("stat_buf_efault", RAW(SYS_stat, "f", BADPTR), EFAULT);
    CHECK("fstatat_empty_path", fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 && S_ISREG(st.st_mode));
    EXPECT_ERR("fstatat_empty_without_flag", fstatat(fd, "", &st, 0), ENOENT);
    CHECK("fstatat_nofollow", fstatat(AT_FDCWD, "l", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));
    EXPECT_ERR("fstatat_bad_flags", fstatat(AT_FDCWD, "f", &st, 0x40000000), EINVAL);
    close(fd);
    CHECK("stat_dev_null_chr", stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
    CHECK("stat_dotdot_root", stat("/..", &st) == 0 && stat("/", &st2) == 0 && st.st_ino == st2.st_ino);
    int p[2];
    pipe(p);
    CHECK("fstat_pipe_fifo", fstat(p[0], &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK("stat_trailing_slash_file", stat("f/", &st) == -1 && errno == ENOTDIR);
    CHECK("stat_dir_nlink", stat("d", &st) == 0 && st.st_nlink == 2);
    mkdir("d/sub", 0755);
    CHECK("stat_dir_nlink_sub", stat("d", &st) == 0 && st.st_nlink == 3);
    return DONE();
}
