/* statx: masks, fields and flags. */
/* syscalls: statx */
#include "common.h"
#include <linux/stat.h>

static long sx(int dfd, const char *p, int fl, unsigned m, struct statx *b) { return RAW(SYS_statx, dfd, p, fl, m, b); }

int main(void) {
    scratch();
    put_file("f", "abcdefgh");
    symlink("f", "l");
    mkdir("d", 0700);
    struct statx b;
    CHECK("statx_basic", sx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, &b) == 0 && b.stx_size == 8);
    CHECK("statx_mask_basic", (b.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS);
    CHECK("statx_mode_reg", S_ISREG(b.stx_mode));
    CHECK("statx_nlink", b.stx_nlink == 1);
    struct stat st;
    stat("f", &st);
    CHECK("statx_ino_matches_stat", b.stx_ino == st.st_ino);
    CHECK("statx_uid", b.stx_uid == geteuid());
    CHECK("statx_nofollow", sx(AT_FDCWD, "l", AT_SYMLINK_NOFOLLOW, STATX_TYPE, &b) == 0 && S_ISLNK(b.stx_mode));
    CHECK("statx_follow", sx(AT_FDCWD, "l", 0, STATX_TYPE, &b) == 0 && S_ISREG(b.stx_mode));
    CHECK("statx_dir", sx(AT_FDCWD, "d", 0, STATX_MODE, &b) == 0 && S_ISDIR(b.stx_mode) && (b.stx_mode & 0777) == 0700);
    EXPECT_ERR("statx_enoent", sx(AT_FDCWD, "none", 0, STATX_BASIC_STATS, &b), ENOENT);
    EXPECT_ERR("statx_efault_buf", sx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, BADPTR), EFAULT);
    EXPECT_ERR("statx_reserved_mask", sx(AT_FDCWD, "f", 0, 0x80000000u, &b), EINVAL);
    EXPECT_ERR("statx_bad_flags", sx(AT_FDCWD, "f", 0x40000000, STATX_BASIC_STATS, &b), EINVAL);
    EXPECT_ERR("statx_sync_both", sx(AT_FDCWD, "f", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &b), EINVAL);
    int fd = open("f", O_RDONLY);
    CHECK("statx_empty_path", sx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &b) == 0 && b.stx_size == 8);
    EXPECT_ERR("statx_bad_dirfd", sx(999, "f", 0, STATX_BASIC_STATS, &b), EBADF);
    close(fd);
    CHECK("statx_mtime_sane", sx(AT_FDCWD, "f", 0, STATX_MTIME, &b) == 0 && b.stx_mtime.tv_sec > 1000000000 && b.stx_mtime.tv_nsec < 1000000000);
    return DONE();
}
