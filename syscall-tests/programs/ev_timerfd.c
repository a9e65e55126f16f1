/* timerfd: settime/gettime, expirations, absolute timers. */
/* syscalls: timerfd_create timerfd_settime timerfd_gettime */
#include "common.h"
#include <sys/timerfd.h>

int main(void) {
    int t;
    EXPECT_OK("timerfd_create", t = timerfd_create(CLOCK_MONOTONIC, 0));
    EXPECT_ERR("timerfd_bad_clock", timerfd_create(12345, 0), EINVAL);
    EXPECT_ERR("timerfd_bad_flags", timerfd_create(CLOCK_MONOTONIC, 1), EINVAL);
    struct itimerspec its = {{0, 0}, {0, 20000000}}, old;
    EXPECT_OK("timerfd_settime", timerfd_settime(t, 0, &its, NULL));
    struct itimerspec cur;
    CHECK("timerfd_gettime_pending", timerfd_gettime(t, &cur) == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20000000);
    uint64_t n = 0;
    BOUNDED("timerfd_read_blocks_until_expiry", 5)
    CHECK("timerfd_read_blocks_until_expiry", read(t, &n, 8) == 8 && n == 1);
    alarm(0);
    CHECK("timerfd_disarmed_after_oneshot", timerfd_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0);
    its = (struct itimerspec){{0, 5000000}, {0, 5000000}};
    timerfd_settime(t, 0, &its, NULL);
    usleep(30000);
    CHECK("timerfd_interval_counts", read(t, &n, 8) == 8 && n >= 4);
    EXPECT_OK("timerfd_settime_old", timerfd_settime(t, 0, &(struct itimerspec){{0, 0}, {0, 0}}, &old));
    CHECK("timerfd_old_interval", old.it_interval.tv_nsec == 5000000);
    int nb = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    EXPECT_ERR("timerfd_nonblock_eagain", read(nb, &n, 8), EAGAIN);
    EXPECT_ERR("timerfd_read_short", read(t, &n, 4), EINVAL);
    struct itimerspec bad = {{0, 0}, {0, 1000000000}};
    EXPECT_ERR("timerfd_bad_nsec", timerfd_settime(t, 0, &bad, NULL), EINVAL);
    EXPECT_ERR("timerfd_settime_bad_flags", timerfd_settime(t, 0x100, &its, NULL), EINVAL);
    EXPECT_ERR("timerfd_settime_ebadf", timerfd_settime(999, 0, &its, NULL), EBADF);
    EXPECT_ERR("timerfd_settime_not_timerfd", timerfd_settime(0, 0, &its, NULL), EINVAL);
    EXPECT_ERR("timerfd_settime_efault", timerfd_settime(t, 0, BADPTR, NULL), EFAULT);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct itimerspec abs = {{0, 0}, {now.tv_sec - 10, 0}};
    EXPECT_OK("timerfd_abstime_past", timerfd_settime(nb, TFD_TIMER_ABSTIME, &abs, NULL));
    CHECK("timerfd_abstime_past_fires", read(nb, &n, 8) == 8 && n == 1);
    int bt = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
    CHECK("timerfd_boottime", bt >= 0);
    uint64_t v = 5;
    EXPECT_ERR("timerfd_write_einval", write(bt, &v, 8), EINVAL);
    return DONE();
}
