/* alarm/setitimer/getitimer. */
/* syscalls: alarm setitimer getitimer */
#include "common.h"
#include <sys/time.h>

static volatile int alrm, vt;
static void on_alrm(int s) { (void)s; alrm++; }
static void on_vt(int s) { (void)s; vt++; }

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
