/* nanosleep/clock_nanosleep. */
/* syscalls: nanosleep clock_nanosleep sched_yield */
#include "common.h"

static long elapsed_ms(struct timespec *a, struct timespec *b) { return (b->tv_sec - a->tv_sec) * 1000 + (b->tv_nsec - a->tv_nsec) / 1000000; }

int main(void) {
    struct timespec a, b, ts = {0, 50000000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    EXPECT_OK("nanosleep", nanosleep(&ts, NULL));
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK("nanosleep_duration", elapsed_ms(&a, &b) >= 50);
    CHECK("nanosleep_not_too_long", elapsed_ms(&a, &b) < 2000);
    struct timespec zero = {0, 0};
    EXPECT_OK("nanosleep_zero", nanosleep(&zero, NULL));
    struct timespec bad = {0, 1000000000};
    EXPECT_ERR("nanosleep_bad_nsec", nanosleep(&bad, NULL), EINVAL);
    struct timespec neg = {-1, 0};
    EXPECT_ERR("nanosleep_negative", nanosleep(&neg, NULL), EINVAL);
    EXPECT_ERR("nanosleep_efault", RAW(SYS_nanosleep, BADPTR, NULL), EFAULT);
    ts = (struct timespec){0, 30000000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    EXPECT_EQ("clock_nanosleep_relative", clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK("clock_nanosleep_duration", elapsed_ms(&a, &b) >= 30);
    struct timespec target;
    clock_gettime(CLOCK_MONOTONIC, &target);
    target.tv_nsec += 40000000;
    if (target.tv_nsec >= 1000000000) { target.tv_sec++; target.tv_nsec -= 1000000000; }
    EXPECT_EQ("clock_nanosleep_absolute", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK("clock_nanosleep_absolute_reached", b.tv_sec > target.tv_sec || (b.tv_sec == target.tv_sec && b.tv_nsec >= target.tv_nsec));
    struct timespec past = {1, 0};
    EXPECT_EQ("clock_nanosleep_absolute_past", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL), 0);
    EXPECT_ERR("clock_nanosleep_bad_clock", RAW(SYS_clock_nanosleep, 12345, 0, &ts, NULL), EINVAL);
    EXPECT_ERR("clock_nanosleep_thread_cputime", RAW(SYS_clock_nanosleep, CLOCK_THREAD_CPUTIME_ID, 0, &ts, NULL), EOPNOTSUPP);
    EXPECT_ERR("clock_nanosleep_bad_nsec", RAW(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &bad, NULL), EINVAL);
    EXPECT_OK("clock_nanosleep_realtime", RAW(SYS_clock_nanosleep, CLOCK_REALTIME, 0, &zero, NULL));
    EXPECT_OK("clock_nanosleep_boottime", RAW(SYS_clock_nanosleep, CLOCK_BOOTTIME, 0, &zero, NULL));
    struct timespec longts = {3, 0}, rem = {0, 0};
    BOUNDED("nanosleep_interrupted", 1)
    EXPECT_ERR("nanosleep_interrupted", nanosleep(&longts, &rem), EINTR);
    CHECK("nanosleep_rem_set", rem.tv_sec >= 1 && rem.tv_sec <= 2);
    clock_gettime(CLOCK_MONOTONIC, &target);
    target.tv_sec += 3;
    rem = (struct timespec){7, 7};
    BOUNDED("clock_nanosleep_abs_interrupted", 1)
    EXPECT_ERR("clock_nanosleep_abs_interrupted", RAW(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &target, &rem), EINTR);
    CHECK("abs_interrupted_rem_untouched", rem.tv_sec == 7 && rem.tv_nsec == 7);
    EXPECT_OK("sched_yield", sched_yield());
    return DONE();
}
