/* poll/ppoll. */
/* syscalls: poll ppoll */
#include "common.h"
#include <poll.h>
#include <sys/resource.h>

int main(void) {
    int p[2];
    pipe(p);
    struct pollfd f[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    EXPECT_EQ("poll_writable_only", poll(f, 2, 0), 1);
    CHECK("poll_revents_out", f[1].revents == POLLOUT && f[0].revents == 0);
    write(p[1], "x", 1);
    EXPECT_EQ("poll_readable", poll(f, 2, 0), 2);
    CHECK("poll_revents_in", f[0].revents == POLLIN);
    struct pollfd neg = {-1, POLLIN, 123};
    EXPECT_EQ("poll_negative_fd_ignored", poll(&neg, 1, 0), 0);
    CHECK("poll_negative_fd_revents_zero", neg.revents == 0);
    {
        /* An ignored entry takes no part in the wait: poll still sleeps for the others. */
        int e[2];
        pipe(e);
        struct pollfd two[2] = {{-1, POLLIN, 0}, {e[0], POLLIN, 0}};
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int r = poll(two, 2, 50);
        clock_gettime(CLOCK_MONOTONIC, &b);
        long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        CHECK("poll_negative_fd_does_not_end_the_wait", r == 0 && ms >= 45);
        close(e[0]);
        close(e[1]);
    }
    struct pollfd bad = {999, POLLIN, 0};
    EXPECT_EQ("poll_bad_fd_pollnval", poll(&bad, 1, 0), 1);
    CHECK("poll_nval_revents", bad.revents == POLLNVAL);
    close(p[1]);
    read(p[0], &neg, 1);
    struct pollfd h = {p[0], POLLIN, 0};
    EXPECT_EQ("poll_hup", poll(&h, 1, 0), 1);
    CHECK("poll_hup_revents", h.revents & POLLHUP);
    int q[2];
    pipe(q);
    close(q[0]);
    struct pollfd e = {q[1], POLLOUT, 0};
    poll(&e, 1, 0);
    CHECK("poll_err_on_broken_pipe", e.revents & POLLERR);
    EXPECT_ERR("poll_efault", poll(BADPTR, 1, 0), EFAULT);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    EXPECT_ERR("poll_nfds_over_rlimit", poll(f, rl.rlim_cur + 1, 0), EINVAL);
    int r[2];
    pipe(r);
    struct pollfd w = {r[0], POLLIN, 0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    EXPECT_EQ("poll_timeout", poll(&w, 1, 50), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK("poll_timeout_elapsed", ms >= 49);
    struct timespec ts = {0, 20000000};
    EXPECT_EQ("ppoll_timeout", ppoll(&w, 1, &ts, NULL), 0);
    struct timespec badts = {0, 2000000000};
    EXPECT_ERR("ppoll_bad_timespec", ppoll(&w, 1, &badts, NULL), EINVAL);
    EXPECT_EQ("poll_zero_fds", poll(NULL, 0, 1), 0);
    BOUNDED("poll_infinite_eintr", 1)
    EXPECT_ERR("poll_infinite_eintr", poll(&w, 1, -1), EINTR);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    signal(SIGUSR1, t_noop);
    kill(getpid(), SIGUSR1);
    sigset_t none;
    sigemptyset(&none);
    struct timespec longts = {5, 0};
    EXPECT_ERR("ppoll_sigmask_unblocks", ppoll(&w, 1, &longts, &none), EINTR);
    struct pollfd dn = {open("/dev/null", O_RDWR), POLLIN | POLLOUT, 0};
    EXPECT_EQ("poll_regular_always_ready", poll(&dn, 1, 0), 1);
    CHECK("poll_devnull_in_out", dn.revents == (POLLIN | POLLOUT));
    return DONE();
}
