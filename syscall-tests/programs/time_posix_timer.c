/* timer_create/timer_settime/timer_gettime/timer_getoverrun/timer_delete. */
/* syscalls: timer_create timer_settime timer_gettime timer_getoverrun timer_delete */
#include "common.h"

static volatile int fired, val;
static void on(int s, siginfo_t *si, void *uc) { (void)s; (void)uc; fired++; val = si->si_value.sival_int; }

static volatile int cfired, cval;
static void on_cpu(int s, siginfo_t *si, void *uc) { (void)s; (void)uc; cfired++; cval = si->si_value.sival_int; }

static double cpu_now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Burns CPU in user code until *until reaches n or `secs` of the process's CPU time have
 * gone (chunks of a few ms between clock reads). */
static void spin(volatile int *until, int n, double secs) {
    double end = cpu_now(CLOCK_PROCESS_CPUTIME_ID) + secs;
    while ((!until || *until < n) && cpu_now(CLOCK_PROCESS_CPUTIME_ID) < end)
        for (volatile long i = 0; i < 2000000L && (!until || *until < n); i++) {}
}

static long nsecs(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }

int main(void) {
    struct sigaction sa = {.sa_sigaction = on, .sa_flags = SA_SIGINFO};
    sigaction(SIGRTMIN, &sa, NULL);
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN, .sigev_value.sival_int = 5};
    timer_t t;
    EXPECT_OK("timer_create", timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec its = {{0, 0}, {0, 30000000}}, cur;
    int armed = timer_settime(t, 0, &its, NULL) == 0;
    CHECK("timer_settime", armed);
    CHECK("timer_gettime_pending", timer_gettime(t, &cur) == 0 && cur.it_value.tv_nsec > 0);
    for (int i = 0; armed && i < 1000 && !fired; i++) pause(); /* only while the timer is armed */
    CHECK("timer_fires_with_value", fired == 1 && val == 5);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN);
    sigprocmask(SIG_BLOCK, &s, NULL);
    its = (struct itimerspec){{0, 2000000}, {0, 2000000}};
    timer_settime(t, 0, &its, NULL);
    usleep(50000);
    siginfo_t si;
    sigwaitinfo(&s, &si);
    CHECK("timer_siginfo_code", si.si_code == SI_TIMER);
    int ov = timer_getoverrun(t);
    CHECK("timer_overrun_counted", ov >= 5);
    its = (struct itimerspec){{0, 0}, {0, 0}};
    EXPECT_OK("timer_disarm", timer_settime(t, 0, &its, NULL));
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    EXPECT_ERR("timer_settime_bad_nsec", timer_settime(t, 0, &bad, NULL), EINVAL);
    EXPECT_OK("timer_delete", timer_delete(t));
    EXPECT_ERR("timer_delete_twice", RAW(SYS_timer_delete, t), EINVAL);
    EXPECT_ERR("timer_settime_deleted", RAW(SYS_timer_settime, t, 0, &its, NULL), EINVAL);
    EXPECT_ERR("timer_create_bad_clock", RAW(SYS_timer_create, 12345, &sev, &t), EINVAL);
    struct sigevent badsev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = 200};
    EXPECT_ERR("timer_create_bad_signo", RAW(SYS_timer_create, CLOCK_MONOTONIC, &badsev, &t), EINVAL);
    struct sigevent none = {.sigev_notify = SIGEV_NONE};
    timer_t tn;
    EXPECT_OK("timer_create_sigev_none", RAW(SYS_timer_create, CLOCK_REALTIME, &none, &tn));
    its = (struct itimerspec){{0, 0}, {100, 0}};
    RAW(SYS_timer_settime, tn, 0, &its, NULL);
    CHECK("sigev_none_gettime", RAW(SYS_timer_gettime, tn, &cur) == 0 && cur.it_value.tv_sec >= 98);
    timer_t td;
    EXPECT_OK("timer_create_default_sigevent", RAW(SYS_timer_create, CLOCK_MONOTONIC, NULL, &td));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    its = (struct itimerspec){{0, 0}, {now.tv_sec + 100, 0}};
    EXPECT_OK("timer_settime_abstime", RAW(SYS_timer_settime, tn, TIMER_ABSTIME, &its, NULL));
    timer_t tc;
    EXPECT_OK("timer_create_cputime", RAW(SYS_timer_create, CLOCK_PROCESS_CPUTIME_ID, &none, &tc));
    its = (struct itimerspec){{0, 0}, {10, 0}};
    RAW(SYS_timer_settime, tc, 0, &its, NULL);
    struct itimerspec c1, c2;
    RAW(SYS_timer_gettime, tc, &c1);
    usleep(100000);
    RAW(SYS_timer_gettime, tc, &c2);
    CHECK("cputime_gettime_still_while_sleeping", nsecs(c1.it_value) - nsecs(c2.it_value) < 20000000L && nsecs(c2.it_value) <= nsecs(c1.it_value));
    spin(NULL, 0, 0.1);
    RAW(SYS_timer_gettime, tc, &c1);
    CHECK("cputime_gettime_decreases_while_running", nsecs(c2.it_value) - nsecs(c1.it_value) >= 50000000L && c1.it_value.tv_sec >= 9);
    EXPECT_OK("cputime_timer_delete", RAW(SYS_timer_delete, tc));

    struct sigaction ca = {.sa_sigaction = on_cpu, .sa_flags = SA_SIGINFO};
    sigaction(SIGRTMIN + 1, &ca, NULL);
    struct sigevent cev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1, .sigev_value.sival_int = 7};
    timer_t tp;
    EXPECT_OK("timer_create_process_cputime_signal", timer_create(CLOCK_PROCESS_CPUTIME_ID, &cev, &tp));
    its = (struct itimerspec){{0, 0}, {0, 20000000}};
    timer_settime(tp, 0, &its, NULL);
    usleep(100000);
    CHECK("cputime_timer_not_fired_while_sleeping", cfired == 0);
    for (volatile long i = 0; i < 2000000000L && !cfired; i++) {} /* no syscall until it fires */
    CHECK("cputime_timer_fires_on_busy_loop", cfired == 1 && cval == 7);
    CHECK("cputime_timer_oneshot_disarmed", timer_gettime(tp, &c1) == 0 && nsecs(c1.it_value) == 0);

    /* Absolute, on the process clock: 20 ms of CPU from now. */
    cfired = 0;
    struct timespec cnow;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cnow);
    long at = nsecs(cnow) + 20000000L;
    its = (struct itimerspec){{0, 0}, {at / 1000000000L, at % 1000000000L}};
    EXPECT_OK("cputime_settime_abstime", timer_settime(tp, TIMER_ABSTIME, &its, NULL));
    spin(&cfired, 1, 0.3);
    CHECK("cputime_abstime_fires", cfired == 1);
    its = (struct itimerspec){{0, 0}, {0, 1}};
    cfired = 0;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cnow);
    its.it_value = (struct timespec){0, 1};
    timer_settime(tp, TIMER_ABSTIME, &its, NULL); /* long past: fires at once */
    spin(&cfired, 1, 0.05);
    CHECK("cputime_abstime_past_fires", cfired == 1);

    /* Periodic, with the signal blocked: the missed expirations are overruns. */
    sigset_t cs;
    sigemptyset(&cs);
    sigaddset(&cs, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &cs, NULL);
    its = (struct itimerspec){{0, 1000000}, {0, 1000000}};
    timer_settime(tp, 0, &its, NULL);
    spin(NULL, 0, 0.05);
    siginfo_t csi;
    struct timespec zero = {0, 0};
    int got = sigtimedwait(&cs, &csi, &zero);
    int cov = timer_getoverrun(tp);
    CHECK("cputime_overrun_counted", got == SIGRTMIN + 1 && cov >= 5 && csi.si_overrun == cov);
    its = (struct itimerspec){{0, 0}, {0, 0}};
    timer_settime(tp, 0, &its, NULL);
    sigprocmask(SIG_UNBLOCK, &cs, NULL);
    timer_delete(tp);

    /* The calling thread's clock, signalling the thread. */
    cfired = 0;
    struct sigevent tev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGRTMIN + 1, .sigev_value.sival_int = 8};
    tev._sigev_un._tid = gettid();
    timer_t tt;
    EXPECT_OK("timer_create_thread_cputime", timer_create(CLOCK_THREAD_CPUTIME_ID, &tev, &tt));
    its = (struct itimerspec){{0, 0}, {0, 20000000}};
    timer_settime(tt, 0, &its, NULL);
    spin(&cfired, 1, 0.3);
    CHECK("thread_cputime_timer_fires", cfired == 1 && cval == 8);
    timer_delete(tt);

    /* Another process's clock (clock_getcpuclockid): fires while the child spins and the
     * parent sleeps. */
    cfired = 0;
    pid_t child = fork();
    if (child == 0) {
        for (volatile long i = 0; i < 4000000000L; i++) {}
        _exit(0);
    }
    clockid_t other;
    EXPECT_OK("clock_getcpuclockid_child", clock_getcpuclockid(child, &other));
    timer_t to;
    cev.sigev_value.sival_int = 9;
    EXPECT_OK("timer_create_other_process_clock", timer_create(other, &cev, &to));
    its = (struct itimerspec){{0, 0}, {0, 30000000}};
    timer_settime(to, 0, &its, NULL);
    for (int i = 0; i < 100 && !cfired; i++) usleep(10000);
    CHECK("other_process_cputime_timer_fires", cfired == 1 && cval == 9);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    timer_delete(to);
    return DONE();
}
