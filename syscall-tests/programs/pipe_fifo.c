/* mkfifo/mknod FIFOs and their open semantics. */
/* syscalls: mknod mknodat */
#include "common.h"

int main(void) {
    scratch();
    struct stat st;
    EXPECT_OK("mkfifo", mkfifo("ff", 0644));
    CHECK("mkfifo_type", stat("ff", &st) == 0 && S_ISFIFO(st.st_mode));
    EXPECT_ERR("mkfifo_exists", mkfifo("ff", 0644), EEXIST);
    EXPECT_OK("mknod_fifo", mknod("ff2", S_IFIFO | 0600, 0));
    put_file("reg", "");
    EXPECT_OK("mknod_regular", mknod("reg2", S_IFREG | 0600, 0));
    CHECK("mknod_regular_type", stat("reg2", &st) == 0 && S_ISREG(st.st_mode));
    EXPECT_ERR("mknod_bad_type", mknod("bad", 0170000 | 0600, 0), EINVAL);
    int r = open("ff", O_RDONLY | O_NONBLOCK);
    CHECK("fifo_open_rd_nonblock", r >= 0);
    int w = open("ff", O_WRONLY | O_NONBLOCK);
    CHECK("fifo_open_wr_with_reader", w >= 0);
    EXPECT_EQ("fifo_write", write(w, "abc", 3), 3);
    char buf[8];
    EXPECT_EQ("fifo_read", read(r, buf, sizeof buf), 3);
    close(w);
    EXPECT_EQ("fifo_eof", read(r, buf, sizeof buf), 0);
    close(r);
    EXPECT_ERR("fifo_open_wr_nonblock_no_reader", open("ff", O_WRONLY | O_NONBLOCK), ENXIO);
    int rw = open("ff", O_RDWR);
    CHECK("fifo_open_rdwr", rw >= 0 && write(rw, "x", 1) == 1 && read(rw, buf, 1) == 1);
    close(rw);
    pid_t c = fork();
    if (c == 0) {
        int fd = open("ff", O_WRONLY);
        write(fd, "child", 5);
        _exit(0);
    }
    r = open("ff", O_RDONLY);
    CHECK("fifo_blocking_open_rendezvous", r >= 0 && read(r, buf, 5) == 5 && !memcmp(buf, "child", 5));
    waitpid(c, NULL, 0);
    close(r);
    EXPECT_ERR("fifo_lseek", (r = open("ff", O_RDWR), lseek(r, 0, SEEK_SET)), ESPIPE);
    EXPECT_ERR("fifo_truncate_fails", truncate("ff", 0), EINVAL);
    EXPECT_OK("mknodat", mknodat(AT_FDCWD, "ff3", S_IFIFO | 0644, 0));
    EXPECT_ERR("mkfifo_enoent", mkfifo("nodir/ff", 0644), ENOENT);
    return DONE();
}
