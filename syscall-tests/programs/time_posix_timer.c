/* timer_create/timer_settime/timer_gettime/timer_getoverrun/timer_delete. */
/* syscalls: timer_create timer_settime timer_gettime timer_getoverrun timer_delete */
#include "common.h"

static volatile int fired, val;
static void on(int s, siginfo_t *si, void *uc) { (void)s; (void)uc; fired++; val = si->si_value.sival_int; }

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
    return DONE();
}
