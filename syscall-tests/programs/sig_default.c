/* Default actions: terminate, core, ignore, stop/continue; exceptions. */
/* syscalls: kill tgkill */
#include "common.h"

static int status_of(void (*fn)(void)) {
    pid_t c = fork();
    if (c == 0) {
        fn();
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    return st;
}
static void do_term(void) { raise(SIGTERM); }
static void do_usr1(void) { raise(SIGUSR1); }
static void do_chld(void) { raise(SIGCHLD); }
static void do_urg(void) { raise(SIGURG); }
static void do_winch(void) { raise(SIGWINCH); }
static int *volatile null_ptr;
static void do_segv(void) { *null_ptr = 1; }
static void do_fpe(void) { int r; __asm__ volatile("cltd; idivl %2" : "=a"(r) : "a"(7), "r"(0) : "edx"); (void)r; }
static void do_ill(void) { __asm__ volatile("ud2"); }
static void do_trap(void) { __asm__ volatile("int3"); }
static void do_quit(void) { raise(SIGQUIT); }
static void do_abort_handled(void) { signal(SIGABRT, SIG_IGN); abort(); }
static void do_kill_self(void) { kill(getpid(), SIGKILL); for (int i = 0; i < 1000; i++) pause(); }
static void do_rt(void) { raise(SIGRTMIN + 3); }
static void do_hlt(void) { __asm__ volatile("hlt"); }

static volatile int code, sig;
static volatile void *addr;
static void on(int s, siginfo_t *si, void *uc) { (void)uc; sig = s; code = si->si_code; addr = si->si_addr; _exit(0x40 | si->si_code); }
static void fpe_info(void) { struct sigaction sa = {.sa_sigaction = on, .sa_flags = SA_SIGINFO}; sigaction(SIGFPE, &sa, NULL); do_fpe(); }
static void segv_info(void) { struct sigaction sa = {.sa_sigaction = on, .sa_flags = SA_SIGINFO}; sigaction(SIGSEGV, &sa, NULL); do_segv(); }
static void trap_info(void) { struct sigaction sa = {.sa_sigaction = on, .sa_flags = SA_SIGINFO}; sigaction(SIGTRAP, &sa, NULL); do_trap(); }
static void ill_info(void) { struct sigaction sa = {.sa_sigaction = on, .sa_flags = SA_SIGINFO}; sigaction(SIGILL, &sa, NULL); do_ill(); }

#define SIGNALED(st, s) (WIFSIGNALED(st) && WTERMSIG(st) == (s))
#define EXITED(st, v) (WIFEXITED(st) && WEXITSTATUS(st) == (v))

int main(void) {
    struct rlimit { unsigned long a, b; } nocore = {0, 0};
    RAW(SYS_setrlimit, 4 /* RLIMIT_CORE */, &nocore);
    CHECK("sigterm_terminates", SIGNALED(status_of(do_term), SIGTERM));
    CHECK("sigusr1_terminates", SIGNALED(status_of(do_usr1), SIGUSR1));
    CHECK("sigchld_ignored", EXITED(status_of(do_chld), 0));
    CHECK("sigurg_ignored", EXITED(status_of(do_urg), 0));
    CHECK("sigwinch_ignored", EXITED(status_of(do_winch), 0));
    CHECK("sigsegv_on_null_write", SIGNALED(status_of(do_segv), SIGSEGV));
    CHECK("sigfpe_on_divide_by_zero", SIGNALED(status_of(do_fpe), SIGFPE));
    CHECK("sigill_on_ud2", SIGNALED(status_of(do_ill), SIGILL));
    CHECK("sigtrap_on_int3", SIGNALED(status_of(do_trap), SIGTRAP));
    CHECK("sigquit_terminates", SIGNALED(status_of(do_quit), SIGQUIT));
    CHECK("abort_despite_ignore", SIGNALED(status_of(do_abort_handled), SIGABRT));
    CHECK("sigkill_self", SIGNALED(status_of(do_kill_self), SIGKILL));
    CHECK("rt_signal_terminates", SIGNALED(status_of(do_rt), SIGRTMIN + 3));
    CHECK("hlt_in_user_mode_segv", SIGNALED(status_of(do_hlt), SIGSEGV));
    CHECK("fpe_si_code_intdiv", EXITED(status_of(fpe_info), 0x40 | FPE_INTDIV));
    CHECK("segv_si_code_maperr", EXITED(status_of(segv_info), 0x40 | SEGV_MAPERR));
    CHECK("trap_si_code_kernel", EXITED(status_of(trap_info), 0x40 | SI_KERNEL));
    CHECK("ill_si_code_illopn", EXITED(status_of(ill_info), 0x40 | ILL_ILLOPN));
    return DONE();
}
