/* select/pselect6. */
/* syscalls: select pselect6 */
#include "common.h"
#include <sys/select.h>

int main(void) {
    int p[2];
    pipe(p);
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(p[0], &r);
    FD_SET(p[1], &w);
    struct timeval tv = {0, 0};
    EXPECT_EQ("select_writable", select(p[1] + 1, &r, &w, NULL, &tv), 1);
    CHECK("select_sets_cleared", !FD_ISSET(p[0], &r) && FD_ISSET(p[1], &w));
    write(p[1], "x", 1);
    FD_SET(p[0], &r);
    tv = (struct timeval){0, 0};
    EXPECT_EQ("select_readable", select(p[0] + 1, &r, NULL, NULL, &tv), 1);
    /* A closed descriptor inside the descriptor array (every process has room for 64). */
    close(60);
    FD_ZERO(&r);
    FD_SET(60, &r);
    tv = (struct timeval){0, 0};
    EXPECT_ERR("select_ebadf", select(61, &r, NULL, NULL, &tv), EBADF);
    /* Bits beyond the array are ignored: a forked child's array fits its highest open
       descriptor (here below 64), whatever the size of its parent's. */
    pid_t child = fork();
    if (child == 0) {
        fd_set big;
        FD_ZERO(&big);
        FD_SET(100, &big);
        struct timeval zero = {0, 0};
        _exit(select(101, &big, NULL, NULL, &zero) == 0 ? 0 : 1);
    }
    int status;
    waitpid(child, &status, 0);
    CHECK("select_beyond_array_ignored", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ("select_huge_nfds", select(1 << 20, NULL, NULL, NULL, &tv), 0);
    /* Once a descriptor beyond 64 was open, the array has room for 128 and stays so. */
    dup2(0, 100);
    close(100);
    FD_ZERO(&r);
    FD_SET(100, &r);
    EXPECT_ERR("select_ebadf_grown_array", select(101, &r, NULL, NULL, &tv), EBADF);
    EXPECT_ERR("select_negative_nfds", select(-1, NULL, NULL, NULL, &tv), EINVAL);
    tv = (struct timeval){0, -1};
    EXPECT_ERR("select_bad_timeout", select(0, NULL, NULL, NULL, &tv), EINVAL);
    int q[2];
    pipe(q);
    FD_ZERO(&r);
    FD_SET(q[0], &r);
    tv = (struct timeval){0, 50000};
    EXPECT_EQ("select_timeout", select(q[0] + 1, &r, NULL, NULL, &tv), 0);
    CHECK("select_timeout_updated", tv.tv_sec == 0 && tv.tv_usec == 0);
    EXPECT_ERR("select_efault", select(q[0] + 1, BADPTR, NULL, NULL, &tv), EFAULT);
    tv = (struct timeval){0, 10000};
    EXPECT_EQ("select_sleep_no_fds", select(0, NULL, NULL, NULL, &tv), 0);
    struct timespec ts = {0, 10000000};
    FD_ZERO(&r);
    FD_SET(q[0], &r);
    EXPECT_EQ("pselect_timeout", pselect(q[0] + 1, &r, NULL, NULL, &ts, NULL), 0);
    signal(SIGUSR1, t_noop);
    sigset_t m, none;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    kill(getpid(), SIGUSR1);
    sigemptyset(&none);
    ts = (struct timespec){5, 0};
    FD_ZERO(&r);
    FD_SET(q[0], &r);
    EXPECT_ERR("pselect_sigmask_eintr", pselect(q[0] + 1, &r, NULL, NULL, &ts, &none), EINTR);
    close(q[1]);
    FD_ZERO(&r);
    FD_SET(q[0], &r);
    tv = (struct timeval){0, 0};
    EXPECT_EQ("select_eof_readable", select(q[0] + 1, &r, NULL, NULL, &tv), 1);
    fd_set e;
    FD_ZERO(&e);
    FD_SET(q[0], &e);
    tv = (struct timeval){0, 0};
    EXPECT_EQ("select_no_exceptions", select(q[0] + 1, NULL, NULL, &e, &tv), 0);
    return DONE();
}
