/* futex operations. */
/* syscalls: futex */
#include "common.h"
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>

static long futex(void *u, int op, int val, const struct timespec *t, void *u2, int v3) { return RAW(SYS_futex, u, op, val, t, u2, v3); }

static atomic_int word, woke, ready;
/* Waiters give up after this, so a missing wake fails cases instead of hanging. */
static const struct timespec limit = {5, 0};
static void *waiter(void *arg) {
    (void)arg;
    atomic_fetch_add(&ready, 1);
    if (futex(&word, FUTEX_WAIT_PRIVATE, 0, &limit, NULL, 0) == 0) atomic_fetch_add(&woke, 1);
    return NULL;
}

static void *waiter2(void *arg) {
    (void)arg;
    atomic_fetch_add(&ready, 1);
    if (futex(&word, FUTEX_WAIT_PRIVATE, 0, &limit, NULL, 0) == 0) atomic_fetch_add(&woke, 1);
    return NULL;
}

static void wait_ready(int n) {
    for (int i = 0; i < 5000 && atomic_load(&ready) < n; i++) usleep(1000);
    usleep(20000);
}

int main(void) {
    int v = 1;
    EXPECT_ERR("wait_value_mismatch", futex(&v, FUTEX_WAIT, 0, NULL, NULL, 0), EAGAIN);
    struct timespec ts = {0, 10000000};
    EXPECT_ERR("wait_timeout", futex(&v, FUTEX_WAIT, 1, &ts, NULL, 0), ETIMEDOUT);
    EXPECT_EQ("wake_none", futex(&v, FUTEX_WAKE, 1, NULL, NULL, 0), 0);
    EXPECT_ERR("wait_efault", futex(BADPTR, FUTEX_WAIT, 0, NULL, NULL, 0), EFAULT);
    EXPECT_ERR("wait_unaligned", futex((char *)&v + 1, FUTEX_WAIT, 0, NULL, NULL, 0), EINVAL);
    struct timespec bad = {0, -1};
    EXPECT_ERR("wait_bad_timeout", futex(&v, FUTEX_WAIT, 1, &bad, NULL, 0), EINVAL);
    EXPECT_ERR("bad_op", futex(&v, 99, 0, NULL, NULL, 0), ENOSYS);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, waiter, NULL);
    wait_ready(3);
    EXPECT_EQ("wake_one", futex(&word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0), 1);
    EXPECT_EQ("wake_rest", futex(&word, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0), 2);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    CHECK("all_woken", woke == 3);
    int target = 0;
    ready = 0;
    woke = 0;
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, waiter2, NULL);
    wait_ready(3);
    EXPECT_EQ("cmp_requeue", futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)2, &target, 0), 3);
    EXPECT_ERR("cmp_requeue_mismatch", futex(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, (void *)2, &target, 5), EAGAIN);
    EXPECT_EQ("wake_requeued", futex(&target, FUTEX_WAKE_PRIVATE, 10, NULL, NULL, 0), 2);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    CHECK("requeue_all_woken", woke == 3);
    int a = 0, b = 0;
    EXPECT_EQ("wake_op_none", futex(&a, FUTEX_WAKE_OP, 1, (void *)1, &b, FUTEX_OP(FUTEX_OP_SET, 5, FUTEX_OP_CMP_EQ, 0)), 0);
    CHECK("wake_op_sets_value", b == 5);
    EXPECT_ERR("wait_bitset_zero", futex(&v, FUTEX_WAIT_BITSET, 1, NULL, NULL, 0), EINVAL);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    now.tv_nsec += 10000000;
    if (now.tv_nsec >= 1000000000) { now.tv_sec++; now.tv_nsec -= 1000000000; }
    EXPECT_ERR("wait_bitset_absolute", futex(&v, FUTEX_WAIT_BITSET, 1, &now, NULL, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_nsec += 10000000;
    if (now.tv_nsec >= 1000000000) { now.tv_sec++; now.tv_nsec -= 1000000000; }
    EXPECT_ERR("wait_bitset_realtime", futex(&v, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 1, &now, NULL, FUTEX_BITSET_MATCH_ANY), ETIMEDOUT);
    EXPECT_ERR("clock_realtime_on_wake", futex(&v, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0), ENOSYS);
    EXPECT_EQ("wake_bitset_none", futex(&v, FUTEX_WAKE_BITSET, 1, NULL, NULL, 1), 0);
    int *shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *shm = 0;
    pid_t c = fork();
    if (c == 0) {
        struct timespec lim = {5, 0};
        long r = futex(shm, FUTEX_WAIT, 0, &lim, NULL, 0);
        _exit(r == 0 ? 0 : 1);
    }
    usleep(50000);
    *shm = 1;
    long nw = futex(shm, FUTEX_WAKE, 1, NULL, NULL, 0);
    int st;
    waitpid(c, &st, 0);
    CHECK("shared_futex_across_fork", nw == 1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int z = 0;
    BOUNDED("wait_interrupted_eintr", 1)
    EXPECT_ERR("wait_interrupted_eintr", futex(&z, FUTEX_WAIT, 0, NULL, NULL, 0), EINTR);
    return DONE();
}
