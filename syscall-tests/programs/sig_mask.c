/* rt_sigprocmask, sigpending, sigsuspend, sigtimedwait. */
/* syscalls: rt_sigprocmask rt_sigpending rt_sigsuspend rt_sigtimedwait */
#include "common.h"

static volatile int hits;
static void h(int s) { (void)s; hits++; }

int main(void) {
    signal(SIGUSR1, h);
    sigset_t s, old, cur;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    EXPECT_OK("block", sigprocmask(SIG_BLOCK, &s, &old));
    raise(SIGUSR1);
    CHECK("blocked_not_delivered", hits == 0);
    sigset_t pend;
    sigpending(&pend);
    CHECK("blocked_pending", sigismember(&pend, SIGUSR1));
    raise(SIGUSR1);
    EXPECT_OK("unblock", sigprocmask(SIG_UNBLOCK, &s, NULL));
    CHECK("standard_signals_coalesce", hits == 1);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    sigprocmask(SIG_SETMASK, NULL, &cur);
    CHECK("sigkill_never_blocked", !sigismember(&cur, SIGKILL) && !sigismember(&cur, SIGSTOP));
    CHECK("setmask_applied", sigismember(&cur, SIGUSR1));
    sigprocmask(SIG_SETMASK, &old, NULL);
    EXPECT_ERR("sigprocmask_bad_how", RAW(SYS_rt_sigprocmask, 99, &s, NULL, 8), EINVAL);
    EXPECT_ERR("sigprocmask_bad_size", RAW(SYS_rt_sigprocmask, SIG_BLOCK, &s, NULL, 4), EINVAL);
    EXPECT_ERR("sigprocmask_efault", RAW(SYS_rt_sigprocmask, SIG_BLOCK, BADPTR, NULL, 8), EFAULT);
    EXPECT_OK("sigprocmask_null_set_ignores_how", RAW(SYS_rt_sigprocmask, 99, NULL, &cur, 8));
    sigprocmask(SIG_BLOCK, &s, NULL);
    pid_t c = fork();
    if (c == 0) {
        sigset_t m;
        sigprocmask(SIG_SETMASK, NULL, &m);
        sigset_t p;
        sigpending(&p);
        _exit(sigismember(&m, SIGUSR1) && !sigismember(&p, SIGUSR1) ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("fork_inherits_mask", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    hits = 0;
    c = fork();
    if (c == 0) {
        usleep(30000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    sigset_t wait_mask;
    sigemptyset(&wait_mask);
    EXPECT_ERR("sigsuspend_eintr", sigsuspend(&wait_mask), EINTR);
    CHECK("sigsuspend_ran_handler", hits == 1);
    sigprocmask(SIG_SETMASK, NULL, &cur);
    CHECK("sigsuspend_restores_mask", sigismember(&cur, SIGUSR1));
    waitpid(c, NULL, 0);
    raise(SIGUSR1);
    siginfo_t info;
    struct timespec zero = {0, 0};
    EXPECT_EQ("sigtimedwait_pending", sigtimedwait(&s, &info, &zero), SIGUSR1);
    CHECK("sigtimedwait_info", info.si_signo == SIGUSR1 && info.si_pid == getpid());
    struct timespec shortt = {0, 10000000};
    EXPECT_ERR("sigtimedwait_timeout", sigtimedwait(&s, &info, &shortt), EAGAIN);
    struct timespec badt = {0, 1000000000};
    EXPECT_ERR("sigtimedwait_bad_timeout", sigtimedwait(&s, &info, &badt), EINVAL);
    raise(SIGUSR1);
    int sig = 0;
    EXPECT_EQ("sigwait", sigwait(&s, &sig), 0);
    CHECK("sigwait_signo", sig == SIGUSR1);
    sigset_t pend2;
    sigpending(&pend2);
    CHECK("sigwait_consumed", !sigismember(&pend2, SIGUSR1));
    return DONE();
}
