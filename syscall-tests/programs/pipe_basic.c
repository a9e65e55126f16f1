/* pipe/pipe2: data, EOF, EPIPE, capacity, atomicity. */
/* syscalls: pipe pipe2 ioctl */
#include "common.h"
#include <sys/ioctl.h>

int main(void) {
    int p[2];
    char buf[128];
    EXPECT_OK("pipe", pipe(p));
    CHECK("pipe_ends_rdonly_wronly", (fcntl(p[0], F_GETFL) & O_ACCMODE) == O_RDONLY && (fcntl(p[1], F_GETFL) & O_ACCMODE) == O_WRONLY);
    EXPECT_EQ("pipe_write", write(p[1], "hello", 5), 5);
    int n = 0;
    CHECK("pipe_fionread", ioctl(p[0], FIONREAD, &n) == 0 && n == 5);
    EXPECT_EQ("pipe_read", read(p[0], buf, sizeof buf), 5);
    EXPECT_ERR("pipe_write_read_end", write(p[0], "x", 1), EBADF);
    EXPECT_ERR("pipe_read_write_end", read(p[1], buf, 1), EBADF);
    close(p[1]);
    EXPECT_EQ("pipe_eof_after_writer_close", read(p[0], buf, 1), 0);
    close(p[0]);
    pipe(p);
    signal(SIGPIPE, SIG_IGN);
    close(p[0]);
    EXPECT_ERR("pipe_epipe", write(p[1], "x", 1), EPIPE);
    close(p[1]);
    EXPECT_ERR("pipe_efault", RAW(SYS_pipe, BADPTR), EFAULT);
    EXPECT_ERR("pipe2_bad_flags", pipe2(p, O_RDWR), EINVAL);
    EXPECT_OK("pipe2_cloexec_nonblock", pipe2(p, O_CLOEXEC | O_NONBLOCK));
    CHECK("pipe2_flags_set", (fcntl(p[0], F_GETFD) & FD_CLOEXEC) && (fcntl(p[1], F_GETFL) & O_NONBLOCK));
    EXPECT_ERR("pipe_empty_nonblock_eagain", read(p[0], buf, 1), EAGAIN);
    char big[4096];
    memset(big, 'x', sizeof big);
    long total = 0, r;
    for (int i = 0; i < 1000 && (r = write(p[1], big, sizeof big)) > 0; i++) total += r;
    int werr = errno;
    CHECK("pipe_capacity_64k", total == 65536 && werr == EAGAIN);
    EXPECT_ERR("pipe_full_nonblock_eagain", write(p[1], "x", 1), EAGAIN);
    read(p[0], big, 100);
    EXPECT_ERR("pipe_atomic_pipe_buf_no_room", write(p[1], big, 512), EAGAIN);
    read(p[0], big, 4000);
    EXPECT_EQ("pipe_write_after_drain", write(p[1], big, 512), 512);
    close(p[0]);
    close(p[1]);
    pipe2(p, O_NONBLOCK);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    EXPECT_EQ("pipe_partial_large_write", write(p[1], big, 4096) + write(p[1], "y", 1), 4095);
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        close(p[0]);
        for (int i = 0; i < 100; i++) write(p[1], big, 1000);
        _exit(0);
    }
    close(p[1]);
    total = 0;
    while ((r = read(p[0], big, sizeof big)) > 0) total += r;
    waitpid(c, NULL, 0);
    CHECK("pipe_across_fork_100k", total == 100000);
    pipe(p);
    int fl = 1;
    EXPECT_OK("fionbio", ioctl(p[0], FIONBIO, &fl));
    EXPECT_ERR("fionbio_eagain", read(p[0], buf, 1), EAGAIN);
    return DONE();
}
