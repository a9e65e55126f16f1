/* Real-time signals: queueing, order, values. */
/* syscalls: rt_sigqueueinfo rt_tgsigqueueinfo rt_sigtimedwait */
#include "common.h"

static int order[16], n;
static int vals[16];
static void h(int s, siginfo_t *si, void *uc) { (void)uc; if (n < 16) { order[n] = s; vals[n] = si->si_value.sival_int; n++; } }

int main(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigaddset(&s, SIGRTMIN + 1);
    sigaddset(&s, SIGUSR1);
    /* Each handler blocks the others, so they run one at a time in delivery order. */
    struct sigaction sa = {.sa_sigaction = h, .sa_flags = SA_SIGINFO, .sa_mask = s};
    sigaction(SIGRTMIN, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigprocmask(SIG_BLOCK, &s, NULL);
    for (int i = 0; i < 3; i++) sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i});
    sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = 10});
    sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 20});
    sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 21});
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    CHECK("rt_signals_queue", n == 5);
    CHECK("rt_values_in_order", vals[1] == 0 && vals[2] == 1 && vals[3] == 2);
    CHECK("standard_before_rt", order[0] == SIGUSR1);
    CHECK("lower_rt_first", order[1] == SIGRTMIN && order[4] == SIGRTMIN + 1);
    CHECK("standard_coalesced_first_value", vals[0] == 20);
    siginfo_t info = {0};
    info.si_code = SI_QUEUE;
    info.si_value.sival_int = 99;
    info.si_pid = getpid();
    info.si_uid = getuid();
    n = 0;
    EXPECT_OK("rt_sigqueueinfo_self", RAW(SYS_rt_sigqueueinfo, getpid(), SIGRTMIN, &info));
    CHECK("rt_sigqueueinfo_value", n == 1 && vals[0] == 99);
    info.si_code = SI_USER;
    pid_t c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    EXPECT_ERR("rt_sigqueueinfo_si_user_other_eperm", RAW(SYS_rt_sigqueueinfo, c, SIGRTMIN, &info), EPERM);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    info.si_code = SI_QUEUE;
    EXPECT_ERR("rt_sigqueueinfo_esrch", RAW(SYS_rt_sigqueueinfo, 0x3ffffff0, SIGRTMIN, &info), ESRCH);
    EXPECT_ERR("rt_sigqueueinfo_bad_sig", RAW(SYS_rt_sigqueueinfo, getpid(), 200, &info), EINVAL);
    n = 0;
    EXPECT_OK("rt_tgsigqueueinfo", RAW(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGRTMIN + 1, &info));
    CHECK("rt_tgsigqueueinfo_delivered", n == 1 && order[0] == SIGRTMIN + 1);
    CHECK("sigrtmax_64", SIGRTMAX == 64);
    sigprocmask(SIG_BLOCK, &s, NULL);
    int queued = 0;
    for (int i = 0; i < 100; i++) queued += sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = i}) == 0;
    CHECK("rt_queue_100", queued == 100);
    siginfo_t got;
    struct timespec z = {0, 0};
    int drained = 0;
    while (sigtimedwait(&s, &got, &z) > 0) drained++;
    CHECK("rt_drain_100", drained == 100);
    EXPECT_OK("kill_sig_zero_probe", kill(getpid(), 0));
    EXPECT_ERR("kill_bad_sig", kill(getpid(), 65), EINVAL);
    return DONE();
}
