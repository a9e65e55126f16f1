/* alarm/setitimer/getitimer. */
/* syscalls: alarm setitimer getitimer */
#include "common.h"
#include <sys/time.h>

static volatile int alrm, vt, prof;
static void on_alrm(int s) { (void)s; alrm++; }
static void on_vt(int s) { (void)s; vt++; }
static void on_prof(int s) { (void)s; prof++; }

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Burns CPU in user code until *until reaches n or `secs` of CPU time have gone (chunks of
 * a few ms between clock reads). */
static void spin(volatile int *until, int n, double secs) {
    double end = cpu_now() + secs;
    while ((!until || *until < n) && cpu_now() < end)
        for (volatile long i = 0; i < 2000000L && (!until || *until < n); i++) {}
}

static long usecs(struct timeval tv) { return tv.tv_sec * 1000000L + tv.tv_usec; }

int main(void) {
    signal(SIGALRM, on_alrm);
    EXPECT_EQ("alarm_initial_zero", alarm(10), 0);
    EXPECT_EQ("alarm_returns_remaining", alarm(0), 10);
    struct itimerval it = {{0, 0}, {0, 50000}}, old, cur;
    int armed = setitimer(ITIMER_REAL, &it, NULL) == 0;
    CHECK("setitimer_real", armed);
    CHECK("getitimer_real_pending", getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 50000);
    if (armed) pause(); /* pause only when SIGALRM is coming */
    CHECK("itimer_real_fires", alrm == 1);
    CHECK("itimer_oneshot_disarmed", getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);
    it = (struct itimerval){{0, 10000}, {0, 10000}};
    armed = setitimer(ITIMER_REAL, &it, NULL) == 0;
    for (int i = 0; armed && i < 1000 && alrm < 4; i++) pause();
    CHECK("itimer_interval_repeats", alrm >= 4);
    EXPECT_OK("setitimer_old_value", setitimer(ITIMER_REAL, &(struct itimerval){{0, 0}, {0, 0}}, &old));
    CHECK("old_interval_returned", old.it_interval.tv_usec == 10000);
    struct itimerval bad = {{0, 0}, {0, 1000000}};
    EXPECT_ERR("setitimer_bad_usec", setitimer(ITIMER_REAL, &bad, NULL), EINVAL);
    EXPECT_ERR("setitimer_bad_which", setitimer(7, &it, NULL), EINVAL);
    EXPECT_ERR("getitimer_bad_which", getitimer(7, &cur), EINVAL);
    EXPECT_ERR("getitimer_efault", RAW(SYS_getitimer, ITIMER_REAL, BADPTR), EFAULT);
    signal(SIGVTALRM, on_vt);
    it = (struct itimerval){{0, 0}, {0, 20000}};
    setitimer(ITIMER_VIRTUAL, &it, NULL);
    for (volatile long i = 0; i < 2000000000L && !vt; i++) {}
    CHECK("itimer_virtual_fires_on_cpu", vt == 1);
    signal(SIGPROF, on_vt);
    vt = 0;
    setitimer(ITIMER_PROF, &it, NULL);
    for (volatile long i = 0; i < 2000000000L && !vt; i++) {}
    CHECK("itimer_prof_fires", vt == 1);
    signal(SIGPROF, on_prof);
    it = (struct itimerval){{0, 5000}, {0, 5000}};
    setitimer(ITIMER_PROF, &it, NULL);
    spin(&prof, 4, 0.3);
    CHECK("itimer_prof_interval_repeats", prof >= 4);
    CHECK("getitimer_prof_interval", getitimer(ITIMER_PROF, &cur) == 0 && cur.it_interval.tv_usec == 5000 && usecs(cur.it_value) > 0 && usecs(cur.it_value) <= 5000);
    setitimer(ITIMER_PROF, &(struct itimerval){{0, 0}, {0, 0}}, NULL);
    CHECK("itimer_virtual_disarmed_after_firing", getitimer(ITIMER_VIRTUAL, &cur) == 0 && usecs(cur.it_value) == 0);
    vt = 0;
    it = (struct itimerval){{0, 0}, {10, 0}};
    setitimer(ITIMER_VIRTUAL, &it, NULL);
    struct itimerval a, b, c2;
    getitimer(ITIMER_VIRTUAL, &a);
    usleep(100000);
    getitimer(ITIMER_VIRTUAL, &b);
    CHECK("getitimer_virtual_still_while_sleeping", usecs(a.it_value) - usecs(b.it_value) < 20000 && usecs(b.it_value) <= usecs(a.it_value));
    spin(NULL, 0, 0.1);
    getitimer(ITIMER_VIRTUAL, &c2);
    CHECK("getitimer_virtual_decreases_while_running", usecs(b.it_value) - usecs(c2.it_value) >= 50000 && usecs(c2.it_value) > 9000000);
    setitimer(ITIMER_VIRTUAL, &(struct itimerval){{0, 0}, {0, 0}}, &old);
    CHECK("setitimer_virtual_old_value", usecs(old.it_value) > 9000000 && usecs(old.it_value) < 10000000);
    CHECK("itimer_virtual_not_fired_early", vt == 0);
    it = (struct itimerval){{0, 0}, {10, 0}};
    setitimer(ITIMER_PROF, &it, NULL);
    pid_t k = fork();
    if (k == 0) _exit(getitimer(ITIMER_PROF, &cur) == 0 && usecs(cur.it_value) == 0 ? 0 : 1);
    int kst;
    waitpid(k, &kst, 0);
    CHECK("itimer_prof_not_inherited_by_fork", WIFEXITED(kst) && WEXITSTATUS(kst) == 0);
    CHECK("itimer_prof_kept_in_parent", getitimer(ITIMER_PROF, &cur) == 0 && usecs(cur.it_value) > 9000000);
    setitimer(ITIMER_PROF, &(struct itimerval){{0, 0}, {0, 0}}, NULL);
    alarm(5);
    pid_t c = fork();
    if (c == 0) _exit(alarm(0) == 0 ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    CHECK("alarm_not_inherited_by_fork", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    alarm(0);
    c = fork();
    if (c == 0) {
        signal(SIGALRM, SIG_DFL);
        if (RAW(SYS_alarm, 1) == -1) _exit(2);
        pause();
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("alarm_default_terminates", WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM);
    return DONE();
}
