/* rt_sigaction: handlers, flags, siginfo. */
/* syscalls: rt_sigaction tgkill kill */
#include "common.h"

static volatile int hits, last_sig, nested, in_handler, code;
static volatile pid_t from;
static void h(int s) { hits++; last_sig = s; }
static void hinfo(int s, siginfo_t *si, void *uc) { (void)uc; last_sig = s; from = si->si_pid; code = si->si_code; }
static void hnest(int s) {
    if (in_handler) nested = 1;
    in_handler = 1;
    if (hits++ == 0) raise(s);
    in_handler = 0;
}

int main(void) {
    struct sigaction sa = {.sa_handler = h}, old;
    EXPECT_OK("sigaction_install", sigaction(SIGUSR1, &sa, NULL));
    raise(SIGUSR1);
    CHECK("handler_ran", hits == 1 && last_sig == SIGUSR1);
    EXPECT_OK("sigaction_query_old", sigaction(SIGUSR1, NULL, &old));
    CHECK("old_handler_returned", old.sa_handler == h);
    EXPECT_ERR("sigaction_sigkill", sigaction(SIGKILL, &sa, NULL), EINVAL);
    EXPECT_ERR("sigaction_sigstop", sigaction(SIGSTOP, &sa, NULL), EINVAL);
    EXPECT_OK("sigaction_query_sigkill_ok", sigaction(SIGKILL, NULL, &old));
    EXPECT_ERR("sigaction_zero", sigaction(0, &sa, NULL), EINVAL);
    EXPECT_ERR("sigaction_too_big", sigaction(65, &sa, NULL), EINVAL);
    EXPECT_ERR("rt_sigaction_bad_sigsetsize", RAW(SYS_rt_sigaction, SIGUSR1, NULL, NULL, 4), EINVAL);
    EXPECT_ERR("rt_sigaction_efault", RAW(SYS_rt_sigaction, SIGUSR1, BADPTR, NULL, 8), EFAULT);
    struct sigaction si = {.sa_sigaction = hinfo, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR2, &si, NULL);
    kill(getpid(), SIGUSR2);
    CHECK("siginfo_pid_code", last_sig == SIGUSR2 && from == getpid() && code == SI_USER);
    RAW(SYS_tgkill, getpid(), gettid(), SIGUSR2);
    CHECK("siginfo_tkill_code", code == SI_TKILL);
    struct sigaction rh = {.sa_handler = h, .sa_flags = SA_RESETHAND};
    sigaction(SIGUSR1, &rh, NULL);
    raise(SIGUSR1);
    sigaction(SIGUSR1, NULL, &old);
    CHECK("sa_resethand_resets", old.sa_handler == SIG_DFL);
    hits = 0;
    struct sigaction nd = {.sa_handler = hnest};
    sigaction(SIGUSR1, &nd, NULL);
    raise(SIGUSR1);
    CHECK("handler_masks_own_signal", hits == 2 && nested == 0);
    hits = 0;
    nested = 0;
    nd.sa_flags = SA_NODEFER;
    sigaction(SIGUSR1, &nd, NULL);
    raise(SIGUSR1);
    CHECK("sa_nodefer_nests", hits == 2 && nested == 1);
    signal(SIGUSR1, SIG_IGN);
    CHECK("sig_ign_ignored", raise(SIGUSR1) == 0);
    sigset_t pend;
    sigpending(&pend);
    CHECK("ignored_not_pending", !sigismember(&pend, SIGUSR1));
    sigaction(SIGUSR1, &sa, NULL);
    pid_t c = fork();
    if (c == 0) {
        struct sigaction cur;
        sigaction(SIGUSR1, NULL, &cur);
        _exit(cur.sa_handler == h ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("handlers_inherited_by_fork", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct sigaction withmask = {.sa_handler = h};
    sigaddset(&withmask.sa_mask, SIGKILL);
    EXPECT_OK("sa_mask_sigkill_silently_ignored", sigaction(SIGUSR1, &withmask, NULL));
    sigaction(SIGUSR1, NULL, &old);
    CHECK("sa_mask_sigkill_dropped", !sigismember(&old.sa_mask, SIGKILL));
    hits = 0;
    sigaction(SIGRTMIN, &sa, NULL);
    raise(SIGRTMIN);
    CHECK("rt_signal_handler", hits == 1 && last_sig == SIGRTMIN);
    return DONE();
}
