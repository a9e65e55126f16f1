/* read/write basics and errors. */
/* syscalls: read write */
#include "common.h"

int main(void) {
    scratch();
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    char buf[64];
    EXPECT_EQ("write", write(fd, "hello world", 11), 11);
    EXPECT_EQ("write_zero", write(fd, "", 0), 0);
    EXPECT_EQ("read_at_eof", read(fd, buf, sizeof buf), 0);
    lseek(fd, 0, SEEK_SET);
    EXPECT_EQ("read_short", read(fd, buf, 5), 5);
    CHECK("read_content", !memcmp(buf, "hello", 5));
    EXPECT_EQ("read_rest", read(fd, buf, sizeof buf), 6);
    EXPECT_EQ("read_zero_len", read(fd, buf, 0), 0);
    EXPECT_ERR("read_ebadf", read(999, buf, 1), EBADF);
    EXPECT_ERR("write_ebadf", write(999, buf, 1), EBADF);
    lseek(fd, 0, SEEK_SET);
    EXPECT_ERR("read_efault", read(fd, BADPTR, 4), EFAULT);
    EXPECT_ERR("write_efault", write(fd, BADPTR, 4), EFAULT);
    int ro = open("f", O_RDONLY);
    EXPECT_ERR("write_rdonly", write(ro, "x", 1), EBADF);
    int wo = open("f", O_WRONLY);
    EXPECT_ERR("read_wronly", read(wo, buf, 1), EBADF);
    mkdir("d", 0755);
    int dfd = open("d", O_RDONLY);
    EXPECT_ERR("read_dir", read(dfd, buf, 1), EISDIR);
    int z = open("/dev/zero", O_RDONLY);
    memset(buf, 1, sizeof buf);
    CHECK("read_dev_zero", read(z, buf, 64) == 64 && buf[0] == 0 && buf[63] == 0);
    int n = open("/dev/null", O_RDWR);
    EXPECT_EQ("write_dev_null", write(n, buf, 64), 64);
    EXPECT_EQ("read_dev_null", read(n, buf, 64), 0);
    int full = open("/dev/full", O_WRONLY);
    EXPECT_ERR("write_dev_full", write(full, "x", 1), ENOSPC);
    /* A write straddling a mapped and an unmapped page writes the mapped part. */
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(m + 4096, 4096);
    memset(m, 'q', 4096);
    lseek(fd, 0, SEEK_SET);
    EXPECT_EQ("write_partial_fault", write(fd, m + 4000, 200), 96);
    lseek(fd, 0, SEEK_SET);
    EXPECT_EQ("read_partial_fault", read(fd, m + 4090, 20), 6);
    char big[1 << 16];
    memset(big, 'b', sizeof big);
    lseek(fd, 0, SEEK_SET);
    EXPECT_EQ("write_64k", write(fd, big, sizeof big), sizeof big);
    lseek(fd, 0, SEEK_SET);
    EXPECT_EQ("read_64k", read(fd, big, sizeof big), sizeof big);
    return DONE();
}
