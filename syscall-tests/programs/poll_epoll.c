/* epoll: create, ctl, wait, level and edge triggering. */
/* syscalls: epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait */
#include "common.h"
#include <sys/epoll.h>

int main(void) {
    int ep;
    EXPECT_OK("epoll_create1", ep = epoll_create1(0));
    EXPECT_ERR("epoll_create1_bad_flags", epoll_create1(1), EINVAL);
    EXPECT_ERR("epoll_create_zero", epoll_create(0), EINVAL);
    EXPECT_OK("epoll_create_cloexec", fcntl(epoll_create1(EPOLL_CLOEXEC), F_GETFD) == FD_CLOEXEC ? 0 : -1);
    int p[2];
    pipe(p);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 42};
    EXPECT_OK("epoll_ctl_add", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    EXPECT_ERR("epoll_ctl_add_twice", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev), EEXIST);
    EXPECT_ERR("epoll_ctl_mod_missing", epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev), ENOENT);
    EXPECT_ERR("epoll_ctl_del_missing", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], &ev), ENOENT);
    EXPECT_ERR("epoll_ctl_self", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev), EINVAL);
    EXPECT_ERR("epoll_ctl_bad_op", epoll_ctl(ep, 99, p[0], &ev), EINVAL);
    EXPECT_ERR("epoll_ctl_ebadf", epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev), EBADF);
    EXPECT_ERR("epoll_ctl_not_epoll", epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev), EINVAL);
    int reg = open("/dev/null", O_RDONLY);
    if (reg >= 0) EXPECT_ERR("epoll_ctl_regular_file_eperm", (close(reg), reg = open("/proc/self/exe", O_RDONLY), epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev)), EPERM);
    struct epoll_event out[4];
    EXPECT_EQ("epoll_wait_empty", epoll_wait(ep, out, 4, 0), 0);
    write(p[1], "ab", 2);
    EXPECT_EQ("epoll_wait_ready", epoll_wait(ep, out, 4, 0), 1);
    CHECK("epoll_wait_data", out[0].data.u64 == 42 && out[0].events == EPOLLIN);
    EXPECT_EQ("epoll_level_triggered_again", epoll_wait(ep, out, 4, 0), 1);
    ev.events = EPOLLIN | EPOLLET;
    EXPECT_OK("epoll_ctl_mod_et", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    EXPECT_EQ("epoll_et_first", epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ("epoll_et_not_again", epoll_wait(ep, out, 4, 0), 0);
    write(p[1], "c", 1);
    EXPECT_EQ("epoll_et_new_data", epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ("epoll_et_new_data_once", epoll_wait(ep, out, 4, 0), 0);
    char one;
    read(p[0], &one, 1);
    EXPECT_EQ("epoll_et_partial_read_not_again", epoll_wait(ep, out, 4, 0), 0);
    write(p[1], "d", 1);
    EXPECT_EQ("epoll_et_more_data_again", epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ("epoll_et_timeout_while_ready", epoll_wait(ep, out, 4, 20), 0);
    EXPECT_OK("epoll_et_mod_rearms", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    EXPECT_EQ("epoll_et_reported_after_mod", epoll_wait(ep, out, 4, 0), 1);
    ev.events = EPOLLIN | EPOLLONESHOT;
    epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev);
    EXPECT_EQ("epoll_oneshot_first", epoll_wait(ep, out, 4, 0), 1);
    EXPECT_EQ("epoll_oneshot_disarmed", epoll_wait(ep, out, 4, 0), 0);
    write(p[1], "e", 1);
    EXPECT_EQ("epoll_oneshot_new_data_still_disarmed", epoll_wait(ep, out, 4, 0), 0);
    EXPECT_OK("epoll_oneshot_mod", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    EXPECT_EQ("epoll_oneshot_rearmed_by_mod", epoll_wait(ep, out, 4, 0), 1);
    {
        /* Edge-triggered on a pipe's write end: reported once while it stays writable,
           again when a reader empties a full pipe. */
        int w[2], ew = epoll_create1(0);
        pipe2(w, O_NONBLOCK);
        struct epoll_event wev = {.events = EPOLLOUT | EPOLLET, .data.u64 = 7};
        epoll_ctl(ew, EPOLL_CTL_ADD, w[1], &wev);
        EXPECT_EQ("epoll_et_out_first", epoll_wait(ew, out, 4, 0), 1);
        EXPECT_EQ("epoll_et_out_not_again", epoll_wait(ew, out, 4, 0), 0);
        static char big[4096];
        while (write(w[1], big, sizeof big) > 0) {
        }
        EXPECT_EQ("epoll_et_out_full", epoll_wait(ew, out, 4, 0), 0);
        while (read(w[0], big, sizeof big) > 0) {
        }
        CHECK("epoll_et_out_after_drain", epoll_wait(ew, out, 4, 0) == 1 && out[0].data.u64 == 7 && (out[0].events & EPOLLOUT));
        close(w[0]);
        close(w[1]);
        close(ew);
    }
    EXPECT_ERR("epoll_wait_maxevents_zero", epoll_wait(ep, out, 0, 0), EINVAL);
    EXPECT_ERR("epoll_wait_not_epoll", epoll_wait(p[0], out, 4, 0), EINVAL);
    EXPECT_OK("epoll_ctl_del", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    ev.events = EPOLLOUT;
    ev.data.fd = p[1];
    epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev);
    EXPECT_EQ("epoll_pollout", epoll_wait(ep, out, 4, 0), 1);
    EXPECT_ERR("epoll_wait_efault", epoll_wait(ep, BADPTR, 4, 0), EFAULT);
    close(p[0]);
    int n = epoll_wait(ep, out, 4, 0);
    CHECK("epoll_err_on_broken_pipe", n == 1 && (out[0].events & EPOLLERR));
    epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL);
    int q[2];
    pipe(q);
    ev.events = EPOLLIN;
    epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &ev);
    EXPECT_EQ("epoll_wait_timeout", epoll_wait(ep, out, 4, 30), 0);
    int d = dup(q[0]);
    close(q[0]);
    write(q[1], "x", 1);
    EXPECT_EQ("epoll_registered_file_not_fd", epoll_wait(ep, out, 4, 0), 1);
    close(d);
    EXPECT_EQ("epoll_closed_file_removed", epoll_wait(ep, out, 4, 0), 0);
    int ep2 = epoll_create1(0);
    ev.events = EPOLLIN;
    epoll_ctl(ep2, EPOLL_CTL_ADD, ep, &ev);
    int r[2];
    pipe(r);
    epoll_ctl(ep, EPOLL_CTL_ADD, r[0], &ev);
    write(r[1], "y", 1);
    EXPECT_EQ("epoll_nested", epoll_wait(ep2, out, 4, 0), 1);
    sigset_t none;
    sigemptyset(&none);
    EXPECT_EQ("epoll_pwait", epoll_pwait(ep, out, 4, 0, &none), 1);
    return DONE();
}
