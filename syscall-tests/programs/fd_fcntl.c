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
    struct f_owner_ex ox = {99, 99};
    CHECK("getown_ex_fresh", fcntl(p[0], F_GETOWN_EX, &ox) == 0 && ox.type == F_OWNER_TID && ox.pid == 0);
    EXPECT_EQ("getown_fresh", fcntl(p[0], F_GETOWN), 0);
    EXPECT_EQ("getsig_fresh", fcntl(p[0], F_GETSIG), 0);
    EXPECT_ERR("setown_no_such_process", fcntl(p[0], F_SETOWN, 999999), ESRCH);
    EXPECT_ERR("setown_no_such_group", fcntl(p[0], F_SETOWN, -999999), ESRCH);
    EXPECT_OK("setown_pgrp", fcntl(p[0], F_SETOWN, -getpgrp()));
    EXPECT_EQ("getown_pgrp_negative", fcntl(p[0], F_GETOWN), -getpgrp());
    CHECK("getown_ex_pgrp", fcntl(p[0], F_GETOWN_EX, &ox) == 0 && ox.type == F_OWNER_PGRP && ox.pid == getpgrp());
    ox.type = F_OWNER_TID;
    ox.pid = gettid();
    EXPECT_OK("setown_ex_tid", fcntl(p[0], F_SETOWN_EX, &ox));
    EXPECT_EQ("getown_after_setown_ex_tid", fcntl(p[0], F_GETOWN), gettid());
    ox.type = 5;
    EXPECT_ERR("setown_ex_bad_type", fcntl(p[0], F_SETOWN_EX, &ox), EINVAL);
    ox.type = F_OWNER_PID;
    ox.pid = 999999;
    EXPECT_ERR("setown_ex_no_such_process", fcntl(p[0], F_SETOWN_EX, &ox), ESRCH);
    EXPECT_ERR("setown_ex_efault", fcntl(p[0], F_SETOWN_EX, BADPTR), EFAULT);
    EXPECT_ERR("getown_ex_efault", fcntl(p[0], F_GETOWN_EX, BADPTR), EFAULT);
    EXPECT_OK("setown_zero", fcntl(p[0], F_SETOWN, 0));
    CHECK("getown_ex_after_zero", fcntl(p[0], F_GETOWN_EX, &ox) == 0 && ox.type == F_OWNER_PID && ox.pid == 0);
    EXPECT_OK("setown", fcntl(p[0], F_SETOWN, getpid()));
    EXPECT_EQ("getown", fcntl(p[0], F_GETOWN), getpid());
    EXPECT_OK("setsig", fcntl(p[0], F_SETSIG, SIGUSR1));
    EXPECT_EQ("getsig", fcntl(p[0], F_GETSIG), SIGUSR1);
    EXPECT_ERR("setsig_bad", fcntl(p[0], F_SETSIG, 1000), EINVAL);
    EXPECT_ERR("setsig_negative", fcntl(p[0], F_SETSIG, -1), EINVAL);
    EXPECT_ERR("setsig_65", fcntl(p[0], F_SETSIG, 65), EINVAL);
    EXPECT_OK("setsig_64", fcntl(p[0], F_SETSIG, 64));
    CHECK("owner_shared_by_dup", fcntl(dup(p[0]), F_GETOWN) == getpid());
    int other[2];
    pipe(other);
    EXPECT_EQ("owner_per_description", fcntl(other[0], F_GETOWN), 0);
    int pfd = open("/", O_PATH);
    EXPECT_EQ("o_path_getfl", fcntl(pfd, F_GETFL) & O_PATH, O_PATH);
    /* open and openat add O_LARGEFILE on x86-64 (glibc defines it as 0 there: the
       kernel's value is 0100000); an O_PATH descriptor keeps only its own flags. */
    const int largefile = 0100000;
    int lf = open("/dev/null", O_RDONLY);
    EXPECT_EQ("open_adds_largefile", fcntl(lf, F_GETFL), O_RDONLY | largefile);
    int lf2 = openat(AT_FDCWD, "/dev/null", O_WRONLY | O_APPEND);
    EXPECT_EQ("openat_adds_largefile", fcntl(lf2, F_GETFL), O_WRONLY | O_APPEND | largefile);
    EXPECT_EQ("o_path_has_no_largefile", fcntl(pfd, F_GETFL), O_PATH);
    int lp[2];
    pipe(lp);
    EXPECT_EQ("pipe_has_no_largefile", fcntl(lp[0], F_GETFL), O_RDONLY);
    return DONE();
}
