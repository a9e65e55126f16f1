/* utimensat/futimens/utimes. */
/* syscalls: utimensat utimes */
#include "common.h"
#include <sys/time.h>

int main(void) {
    scratch();
    put_file("f", "x");
    struct stat st;
    struct timespec ts[2] = {{1000, 500}, {2000, 600}};
    EXPECT_OK("utimensat_set", utimensat(AT_FDCWD, "f", ts, 0));
    CHECK("utimensat_atime", stat("f", &st) == 0 && st.st_atim.tv_sec == 1000 && st.st_atim.tv_nsec == 500);
    CHECK("utimensat_mtime", st.st_mtim.tv_sec == 2000 && st.st_mtim.tv_nsec == 600);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {3000, 0}};
    EXPECT_OK("utimensat_omit", utimensat(AT_FDCWD, "f", omit, 0));
    CHECK("utime_omit_keeps_atime", stat("f", &st) == 0 && st.st_atim.tv_sec == 1000 && st.st_mtim.tv_sec == 3000);
    struct timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    time_t t0 = time(NULL);
    EXPECT_OK("utimensat_now", utimensat(AT_FDCWD, "f", now, 0));
    CHECK("utime_now_recent", stat("f", &st) == 0 && st.st_mtim.tv_sec >= t0 - 1 && st.st_mtim.tv_sec <= t0 + 5);
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    EXPECT_ERR("utimensat_bad_nsec", utimensat(AT_FDCWD, "f", bad, 0), EINVAL);
    EXPECT_ERR("utimensat_bad_flags", utimensat(AT_FDCWD, "f", ts, 0x1), EINVAL);
    EXPECT_ERR("utimensat_enoent", utimensat(AT_FDCWD, "nope", ts, 0), ENOENT);
    EXPECT_ERR("utimensat_efault_times", RAW(SYS_utimensat, AT_FDCWD, "f", BADPTR, 0), EFAULT);
    symlink("f", "l");
    EXPECT_OK("utimensat_nofollow", utimensat(AT_FDCWD, "l", ts, AT_SYMLINK_NOFOLLOW));
    CHECK("nofollow_sets_link", lstat("l", &st) == 0 && st.st_mtim.tv_sec == 2000);
    int fd = open("f", O_RDONLY);
    EXPECT_OK("futimens", futimens(fd, ts));
    CHECK("futimens_set", fstat(fd, &st) == 0 && st.st_mtim.tv_sec == 2000);
    EXPECT_ERR("futimens_ebadf", futimens(999, ts), EBADF);
    close(fd);
    struct timeval tv[2] = {{10, 0}, {20, 0}};
    EXPECT_OK("utimes", utimes("f", tv));
    CHECK("utimes_set", stat("f", &st) == 0 && st.st_mtim.tv_sec == 20);
    t0 = time(NULL);
    fd = open("f", O_WRONLY);
    write(fd, "y", 1);
    close(fd);
    CHECK("write_updates_mtime", stat("f", &st) == 0 && st.st_mtim.tv_sec >= t0 - 1);
    CHECK("ctime_updated", st.st_ctim.tv_sec >= t0 - 1);
    return DONE();
}
