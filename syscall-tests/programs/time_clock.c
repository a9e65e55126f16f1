/* clock_gettime/clock_getres/gettimeofday/time/clock_settime. */
/* syscalls: clock_gettime clock_getres gettimeofday time clock_settime */
#include "common.h"
#include <sys/time.h>

static int valid(struct timespec *t) { return t->tv_nsec >= 0 && t->tv_nsec < 1000000000; }

int main(void) {
    struct timespec a, b, r;
    clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
    const char *names[] = {"realtime", "monotonic", "boottime", "monotonic_raw", "realtime_coarse", "monotonic_coarse", "process_cputime", "thread_cputime"};
    for (int i = 0; i < 8; i++) {
        char name[64];
        snprintf(name, sizeof name, "gettime_%s", names[i]);
        CHECK(name, RAW(SYS_clock_gettime, clocks[i], &a) == 0 && valid(&a));
        snprintf(name, sizeof name, "getres_%s", names[i]);
        CHECK(name, RAW(SYS_clock_getres, clocks[i], &r) == 0 && r.tv_sec == 0 && r.tv_nsec > 0);
    }
    RAW(SYS_clock_gettime, CLOCK_MONOTONIC, &a);
    for (volatile int i = 0; i < 100000; i++) {}
    RAW(SYS_clock_gettime, CLOCK_MONOTONIC, &b);
    CHECK("monotonic_nondecreasing", b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec));
    RAW(SYS_clock_gettime, CLOCK_REALTIME, &a);
    CHECK("realtime_after_2020", a.tv_sec > 1577836800);
    struct timespec mono, boot;
    RAW(SYS_clock_gettime, CLOCK_MONOTONIC, &mono);
    RAW(SYS_clock_gettime, CLOCK_BOOTTIME, &boot);
    CHECK("boottime_ge_monotonic", boot.tv_sec >= mono.tv_sec);
    EXPECT_ERR("gettime_bad_clock", RAW(SYS_clock_gettime, 12345, &a), EINVAL);
    EXPECT_ERR("gettime_efault", RAW(SYS_clock_gettime, CLOCK_MONOTONIC, BADPTR), EFAULT);
    EXPECT_ERR("getres_bad_clock", RAW(SYS_clock_getres, 12345, &r), EINVAL);
    EXPECT_OK("getres_null", RAW(SYS_clock_getres, CLOCK_MONOTONIC, NULL));
    struct timeval tv;
    EXPECT_OK("gettimeofday", RAW(SYS_gettimeofday, &tv, NULL));
    CHECK("gettimeofday_usec_range", tv.tv_usec >= 0 && tv.tv_usec < 1000000);
    CHECK("gettimeofday_matches_realtime", labs(tv.tv_sec - a.tv_sec) <= 2);
    EXPECT_ERR("gettimeofday_efault", RAW(SYS_gettimeofday, BADPTR, NULL), EFAULT);
    time_t t = 0;
    long r2 = RAW(SYS_time, &t);
    CHECK("time_syscall", r2 == t && labs(t - a.tv_sec) <= 2);
    CHECK("time_null", labs(RAW(SYS_time, NULL) - a.tv_sec) <= 2);
    struct timespec set = {0, 0};
    EXPECT_ERR("settime_monotonic_einval", RAW(SYS_clock_settime, CLOCK_MONOTONIC, &set), EINVAL);
    if (geteuid() != 0)
        EXPECT_ERR("settime_realtime_eperm", RAW(SYS_clock_settime, CLOCK_REALTIME, &a), EPERM);
    struct timespec bad = {0, 2000000000};
    EXPECT_ERR("settime_bad_nsec", RAW(SYS_clock_settime, CLOCK_REALTIME, &bad), EINVAL);
    struct timespec c1, c2;
    RAW(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &c1);
    for (volatile long i = 0; i < 20000000; i++) {}
    RAW(SYS_clock_gettime, CLOCK_PROCESS_CPUTIME_ID, &c2);
    CHECK("process_cputime_advances", (c2.tv_sec - c1.tv_sec) * 1000000000L + (c2.tv_nsec - c1.tv_nsec) > 1000000);
    clockid_t cid;
    EXPECT_EQ("clock_getcpuclockid", clock_getcpuclockid(getpid(), &cid), 0);
    CHECK("cpuclock_of_self_works", clock_gettime(cid, &a) == 0);
    return DONE();
}
