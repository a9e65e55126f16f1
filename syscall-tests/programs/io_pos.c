/* pread/pwrite/lseek, O_APPEND, O_DIRECT. */
/* syscalls: pread64 pwrite64 lseek */
#include "common.h"

int main(void) {
    scratch();
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    char buf[32];
    EXPECT_EQ("pwrite", pwrite(fd, "abcdef", 6, 10), 6);
    EXPECT_EQ("pwrite_keeps_offset", lseek(fd, 0, SEEK_CUR), 0);
    EXPECT_EQ("pread", pread(fd, buf, 3, 12), 3);
    CHECK("pread_content", !memcmp(buf, "cde", 3));
    EXPECT_EQ("pread_past_eof", pread(fd, buf, 3, 1000), 0);
    EXPECT_ERR("pread_negative", pread(fd, buf, 3, -1), EINVAL);
    EXPECT_ERR("pwrite_negative", pwrite(fd, buf, 3, -1), EINVAL);
    EXPECT_EQ("lseek_end", lseek(fd, 0, SEEK_END), 16);
    EXPECT_EQ("lseek_cur", lseek(fd, -6, SEEK_CUR), 10);
    EXPECT_ERR("lseek_negative_result", lseek(fd, -100, SEEK_CUR), EINVAL);
    EXPECT_ERR("lseek_bad_whence", lseek(fd, 0, 42), EINVAL);
    EXPECT_EQ("lseek_past_end", lseek(fd, 1000, SEEK_SET), 1000);
    EXPECT_EQ("seek_data", lseek(fd, 0, SEEK_DATA), 0);
    EXPECT_EQ("seek_hole_at_end", lseek(fd, 0, SEEK_HOLE), 16);
    EXPECT_ERR("seek_data_past_end", lseek(fd, 100, SEEK_DATA), ENXIO);
    int p[2];
    pipe(p);
    EXPECT_ERR("lseek_pipe", lseek(p[0], 0, SEEK_SET), ESPIPE);
    EXPECT_ERR("pread_pipe", pread(p[0], buf, 1, 0), ESPIPE);
    EXPECT_ERR("lseek_ebadf", lseek(999, 0, SEEK_SET), EBADF);
    int a = open("f", O_WRONLY | O_APPEND);
    lseek(a, 0, SEEK_SET);
    write(a, "Z", 1);
    CHECK("append_writes_at_end", lseek(a, 0, SEEK_CUR) == 17 && pread(fd, buf, 1, 16) == 1 && buf[0] == 'Z');
    EXPECT_EQ("pwrite_append_ignores_offset", pwrite(a, "Y", 1, 0), 1);
    CHECK("pwrite_append_at_end", pread(fd, buf, 1, 17) == 1 && buf[0] == 'Y');
    close(a);
    int d = open("f", O_RDONLY | O_DIRECT);
    if (d < 0)
        CHECK("o_direct_refused_einval", errno == EINVAL);
    else
        CHECK("o_direct_flag", fcntl(d, F_GETFL) & O_DIRECT);
    int z = open("/dev/zero", O_RDONLY);
    EXPECT_EQ("lseek_dev_zero_ok", lseek(z, 123, SEEK_SET), 0);
    EXPECT_EQ("lseek_dir", (mkdir("dd", 0755), lseek(open("dd", O_RDONLY), 0, SEEK_SET)), 0);
    return DONE();
}
