/* fcntl: descriptor and status flags, dup variants, pipe size. */
/* syscalls: fcntl */
#include "common.h"

int main(void) {
    int fd = open("/dev/null", O_RDWR);
    EXPECT_EQ("getfd_default", fcntl(fd, F_GETFD), 0);
    EXPECT_OK("setfd_cloexec", fcntl(fd, F_SETFD, FD_CLOEXEC));
    EXPECT_EQ("getfd_cloexec", fcntl(fd, F_GETFD), FD_CLOEXEC);
    EXPECT_EQ("getfl_rdwr", fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
    EXPECT_OK("setfl_nonblock", fcntl(fd, F_SETFL, O_NONBLOCK));
    CHECK("getfl_nonblock", fcntl(fd, F_GETFL) & O_NONBLOCK);
    fcntl(fd, F_SETFL, O_WRONLY);
    EXPECT_EQ("setfl_ignores_accmode", fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
    EXPECT_OK("setfl_append", fcntl(fd, F_SETFL, O_APPEND));
    CHECK("getfl_append", fcntl(fd, F_GETFL) & O_APPEND);
    EXPECT_EQ("dupfd_min", fcntl(fd, F_DUPFD, 100), 100);
    EXPECT_EQ("dupfd_next", fcntl(fd, F_DUPFD, 100), 101);
    EXPECT_EQ("dupfd_cloexec", fcntl(fd, F_DUPFD_CLOEXEC, 200), 200);
    EXPECT_EQ("dupfd_cloexec_flag", fcntl(200, F_GETFD), FD_CLOEXEC);
    EXPECT_ERR("dupfd_negative", fcntl(fd, F_DUPFD, -1), EINVAL);
    EXPECT_ERR("dupfd_too_big", fcntl(fd, F_DUPFD, 1 << 30), EINVAL);
    EXPECT_ERR("fcntl_ebadf", fcntl(999, F_GETFD), EBADF);
    EXPECT_ERR("fcntl_bad_cmd", fcntl(fd, 9999), EINVAL);
    int p[2];
    pipe(p);
    long sz = fcntl(p[0], F_GETPIPE_SZ);
    CHECK("getpipe_sz_default", sz == 65536);
    EXPECT_EQ("setpipe_sz_rounds_up", fcntl(p[0], F_SETPIPE_SZ, 5000), 8192);
    EXPECT_EQ("getpipe_sz_after", fcntl(p[1], F_GETPIPE_SZ), 8192);
    EXPECT_ERR("getpipe_sz_not_pipe", fcntl(fd, F_GETPIPE_SZ), EBADF);
    EXPECT_ERR("setpipe_sz_too_big", fcntl(p[0], F_SETPIPE_SZ, 1 << 30), EPERM);
    EXPECT_OK("setown", fcntl(p[0], F_SETOWN, getpid()));
    EXPECT_EQ("getown", fcntl(p[0], F_GETOWN), getpid());
    EXPECT_OK("setsig", fcntl(p[0], F_SETSIG, SIGUSR1));
    EXPECT_EQ("getsig", fcntl(p[0], F_GETSIG), SIGUSR1);
    EXPECT_ERR("setsig_bad", fcntl(p[0], F_SETSIG, 1000), EINVAL);
    int pfd = open("/", O_PATH);
    EXPECT_EQ("o_path_getfl", fcntl(pfd, F_GETFL) & O_PATH, O_PATH);
    return DONE();
}
