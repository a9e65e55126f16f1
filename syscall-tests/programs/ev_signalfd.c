/* signalfd. */
/* syscalls: signalfd4 rt_sigqueueinfo */
#include "common.h"
#include <sys/signalfd.h>
#include <poll.h>

int main(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGUSR2);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int s;
    EXPECT_OK("signalfd_create", s = signalfd(-1, &m, SFD_NONBLOCK));
    struct signalfd_siginfo si;
    EXPECT_ERR("signalfd_empty_eagain", read(s, &si, sizeof si), EAGAIN);
    kill(getpid(), SIGUSR1);
    struct pollfd pf = {s, POLLIN, 0};
    EXPECT_EQ("signalfd_poll_ready", poll(&pf, 1, 0), 1);
    EXPECT_EQ("signalfd_read", read(s, &si, sizeof si), sizeof si);
    CHECK("signalfd_signo", si.ssi_signo == SIGUSR1);
    CHECK("signalfd_pid_uid", si.ssi_pid == (uint32_t)getpid() && si.ssi_uid == getuid());
    CHECK("signalfd_code_user", si.ssi_code == SI_USER);
    sigset_t pend;
    sigpending(&pend);
    CHECK("signalfd_consumes_pending", !sigismember(&pend, SIGUSR1));
    EXPECT_ERR("signalfd_read_small", read(s, &si, 8), EINVAL);
    union sigval sv = {.sival_int = 77};
    sigqueue(getpid(), SIGUSR2, sv);
    CHECK("signalfd_sigqueue_value", read(s, &si, sizeof si) == sizeof si && si.ssi_int == 77 && si.ssi_code == SI_QUEUE);
    sigset_t m2;
    sigemptyset(&m2);
    sigaddset(&m2, SIGUSR2);
    EXPECT_EQ("signalfd_update_mask", signalfd(s, &m2, 0), s);
    kill(getpid(), SIGUSR1);
    EXPECT_ERR("signalfd_unwatched_not_read", read(s, &si, sizeof si), EAGAIN);
    sigpending(&pend);
    CHECK("signalfd_unwatched_stays_pending", sigismember(&pend, SIGUSR1));
    EXPECT_ERR("signalfd_bad_flags", signalfd(-1, &m, 0x1), EINVAL);
    EXPECT_ERR("signalfd_bad_sizemask", RAW(SYS_signalfd4, -1, &m, 4, 0), EINVAL);
    EXPECT_ERR("signalfd_not_signalfd", signalfd(0, &m, 0), EINVAL);
    EXPECT_ERR("signalfd_efault", RAW(SYS_signalfd4, -1, BADPTR, 8, 0), EFAULT);
    sigset_t kill_stop;
    sigemptyset(&kill_stop);
    sigaddset(&kill_stop, SIGKILL);
    EXPECT_OK("signalfd_sigkill_ignored", signalfd(-1, &kill_stop, 0));
    int two = signalfd(-1, &m, SFD_NONBLOCK);
    kill(getpid(), SIGUSR2);
    struct signalfd_siginfo arr[2];
    EXPECT_EQ("signalfd_read_multiple", read(two, arr, sizeof arr), 2 * sizeof si);
    return DONE();
}
