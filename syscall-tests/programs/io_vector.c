/* readv/writev/preadv/pwritev/preadv2/pwritev2. */
/* syscalls: readv writev preadv pwritev preadv2 pwritev2 */
#include "common.h"

int main(void) {
    scratch();
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    struct iovec w[3] = {{"abc", 3}, {"", 0}, {"defg", 4}};
    EXPECT_EQ("writev", writev(fd, w, 3), 7);
    char a[2], b[10];
    struct iovec r[2] = {{a, 2}, {b, 10}};
    lseek(fd, 0, SEEK_SET);
    EXPECT_EQ("readv", readv(fd, r, 2), 7);
    CHECK("readv_scatter", !memcmp(a, "ab", 2) && !memcmp(b, "cdefg", 5));
    EXPECT_EQ("writev_zero_iovcnt", writev(fd, w, 0), 0);
    EXPECT_ERR("writev_negative_iovcnt", writev(fd, w, -1), EINVAL);
    EXPECT_ERR("writev_iovcnt_over_max", writev(fd, w, 1025), EINVAL);
    EXPECT_ERR("writev_iov_efault", writev(fd, BADPTR, 1), EFAULT);
    struct iovec bad[1] = {{BADPTR, 4}};
    EXPECT_ERR("writev_base_efault", writev(fd, bad, 1), EFAULT);
    struct iovec huge[2] = {{a, 1}, {a, (size_t)-1}};
    EXPECT_ERR("writev_len_overflow", writev(fd, huge, 2), EINVAL);
    EXPECT_EQ("pwritev", pwritev(fd, w, 3, 100), 7);
    struct stat st;
    CHECK("pwritev_extends", fstat(fd, &st) == 0 && st.st_size == 107);
    long pos = lseek(fd, 0, SEEK_CUR);
    memset(b, 0, sizeof b);
    EXPECT_EQ("preadv", preadv(fd, r, 2, 100), 7);
    CHECK("preadv_keeps_offset", lseek(fd, 0, SEEK_CUR) == pos);
    EXPECT_ERR("preadv_negative_offset", preadv(fd, r, 2, -1), EINVAL);
    lseek(fd, 0, SEEK_SET);
    EXPECT_EQ("preadv2_offset_minus1_uses_pos", preadv2(fd, r, 1, -1, 0), 2);
    CHECK("preadv2_advances_pos", lseek(fd, 0, SEEK_CUR) == 2);
    EXPECT_ERR("preadv2_bad_flags", preadv2(fd, r, 1, 0, 0x40000000), EOPNOTSUPP);
    EXPECT_EQ("pwritev2_dsync", pwritev2(fd, w, 1, 0, RWF_DSYNC), 3);
    int afd = open("f", O_RDWR);
    EXPECT_EQ("pwritev2_append", pwritev2(afd, w, 1, 0, RWF_APPEND), 3);
    CHECK("pwritev2_append_at_end", fstat(fd, &st) == 0 && st.st_size == 110);
    EXPECT_ERR("preadv2_nowait_regular", preadv2(fd, r, 1, 0, RWF_NOWAIT) == -1 && errno == EAGAIN ? 0 : (errno = 0, -1), 0);
    int p[2];
    pipe(p);
    EXPECT_ERR("preadv_on_pipe", preadv(p[0], r, 1, 0), ESPIPE);
    struct iovec many[1024];
    for (int i = 0; i < 1024; i++) many[i] = (struct iovec){"x", 1};
    EXPECT_EQ("writev_iov_max", writev(fd, many, 1024), 1024);
    return DONE();
}
