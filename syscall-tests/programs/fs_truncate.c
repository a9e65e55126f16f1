/* truncate/ftruncate. */
/* syscalls: truncate ftruncate */
#include "common.h"

int main(void) {
    scratch();
    put_file("f", "0123456789");
    struct stat st;
    char buf[32];
    EXPECT_OK("truncate_shrink", truncate("f", 4));
    CHECK("truncate_size", stat("f", &st) == 0 && st.st_size == 4);
    CHECK("truncate_content", get_file("f", buf, sizeof buf) == 4 && !memcmp(buf, "0123", 4));
    EXPECT_OK("truncate_grow", truncate("f", 8));
    CHECK("truncate_grow_zeroes", get_file("f", buf, sizeof buf) == 8 && buf[5] == 0 && buf[7] == 0);
    EXPECT_ERR("truncate_negative", truncate("f", -1), EINVAL);
    EXPECT_ERR("truncate_enoent", truncate("nope", 0), ENOENT);
    mkdir("d", 0755);
    EXPECT_ERR("truncate_dir", truncate("d", 0), EISDIR);
    int fd = open("f", O_RDWR);
    EXPECT_OK("ftruncate", ftruncate(fd, 2));
    CHECK("ftruncate_size", fstat(fd, &st) == 0 && st.st_size == 2);
    EXPECT_ERR("ftruncate_negative", ftruncate(fd, -5), EINVAL);
    close(fd);
    fd = open("f", O_RDONLY);
    EXPECT_ERR("ftruncate_rdonly", ftruncate(fd, 0), EINVAL);
    close(fd);
    EXPECT_ERR("ftruncate_ebadf", ftruncate(999, 0), EBADF);
    int p[2];
    pipe(p);
    EXPECT_ERR("ftruncate_pipe", ftruncate(p[1], 0), EINVAL);
    fd = open("f", O_RDWR);
    lseek(fd, 100, SEEK_SET);
    write(fd, "z", 1);
    CHECK("write_past_end_hole", fstat(fd, &st) == 0 && st.st_size == 101);
    CHECK("hole_reads_zero", pread(fd, buf, 4, 50) == 4 && buf[0] == 0 && buf[3] == 0);
    EXPECT_OK("ftruncate_zero", ftruncate(fd, 0));
    CHECK("offset_kept_after_truncate", lseek(fd, 0, SEEK_CUR) == 101);
    EXPECT_EQ("read_after_truncate_eof", read(fd, buf, 4), 0);
    close(fd);
    fd = open("f", O_WRONLY | O_APPEND);
    EXPECT_OK("ftruncate_append_ok", ftruncate(fd, 3));
    close(fd);
    EXPECT_ERR("truncate_efault", truncate(BADPTR, 0), EFAULT);
    return DONE();
}
