/* fallocate modes. */
/* syscalls: fallocate */
#include "common.h"
#include <linux/falloc.h>

int main(void) {
    scratch();
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    struct stat st;
    EXPECT_OK("fallocate_extend", fallocate(fd, 0, 0, 8192));
    CHECK("fallocate_size", fstat(fd, &st) == 0 && st.st_size == 8192);
    EXPECT_OK("fallocate_keep_size", fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 4096));
    CHECK("keep_size_unchanged", fstat(fd, &st) == 0 && st.st_size == 8192);
    EXPECT_ERR("fallocate_zero_len", fallocate(fd, 0, 0, 0), EINVAL);
    EXPECT_ERR("fallocate_negative_offset", fallocate(fd, 0, -1, 10), EINVAL);
    EXPECT_ERR("fallocate_punch_without_keep", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10), EOPNOTSUPP);
    char buf[16];
    memset(buf, 'x', 16);
    pwrite(fd, buf, 16, 0);
    long r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
    if (r == -1 && errno == EOPNOTSUPP)
        t_skip("punch_hole", "filesystem lacks hole punching");
    else
        CHECK("punch_hole", r == 0 && pread(fd, buf, 16, 0) == 16 && buf[0] == 0 && buf[15] == 0);
    EXPECT_ERR("fallocate_ebadf", fallocate(999, 0, 0, 10), EBADF);
    int ro = open("f", O_RDONLY);
    EXPECT_ERR("fallocate_rdonly", fallocate(ro, 0, 0, 10), EBADF);
    close(ro);
    int p[2];
    pipe(p);
    EXPECT_ERR("fallocate_pipe", fallocate(p[1], 0, 0, 10), ESPIPE);
    mkdir("d", 0755);
    int dfd = open("d", O_RDONLY);
    EXPECT_ERR("fallocate_dir", fallocate(dfd, 0, 0, 10), EBADF);
    EXPECT_ERR("fallocate_bad_mode", fallocate(fd, 0x1000, 0, 10), EOPNOTSUPP);
    EXPECT_OK("posix_fallocate", posix_fallocate(fd, 0, 20000) == 0 ? 0 : -1);
    CHECK("posix_fallocate_size", fstat(fd, &st) == 0 && st.st_size == 20000);
    close(fd);
    return DONE();
}
