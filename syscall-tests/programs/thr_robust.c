/* Robust futexes and CLONE_CHILD_CLEARTID wake on thread exit. */
/* syscalls: set_robust_list get_robust_list futex */
#include "common.h"
#include <linux/futex.h>
#include <pthread.h>

static pthread_mutex_t m;
static void *locker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&m);
    return NULL; /* exits holding the lock */
}

int main(void) {
    struct robust_list_head *head;
    size_t len;
    EXPECT_OK("get_robust_list", RAW(SYS_get_robust_list, 0, &head, &len));
    CHECK("robust_list_len", len == sizeof(struct robust_list_head));
    EXPECT_ERR("set_robust_list_bad_len", RAW(SYS_set_robust_list, head, 1), EINVAL);
    EXPECT_ERR("get_robust_list_esrch", RAW(SYS_get_robust_list, 0x3ffffff0, &head, &len), ESRCH);
    EXPECT_ERR("get_robust_list_efault", RAW(SYS_get_robust_list, 0, BADPTR, &len), EFAULT);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m, &a);
    pthread_t t;
    pthread_create(&t, NULL, locker, NULL);
    pthread_join(t, NULL);
    EXPECT_EQ("robust_owner_died", pthread_mutex_lock(&m), EOWNERDEAD);
    EXPECT_EQ("robust_consistent", pthread_mutex_consistent(&m), 0);
    EXPECT_EQ("robust_unlock", pthread_mutex_unlock(&m), 0);
    EXPECT_EQ("robust_relock", pthread_mutex_lock(&m), 0);
    pthread_mutex_unlock(&m);
    pthread_mutex_t *sm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(sm, &a);
    pid_t c = fork();
    if (c == 0) {
        pthread_mutex_lock(sm);
        _exit(0);
    }
    waitpid(c, NULL, 0);
    EXPECT_EQ("robust_shared_process_died", pthread_mutex_lock(sm), EOWNERDEAD);
    pthread_mutex_t plain = PTHREAD_MUTEX_INITIALIZER;
    EXPECT_EQ("mutex_trylock", pthread_mutex_trylock(&plain), 0);
    EXPECT_EQ("mutex_trylock_busy", pthread_mutex_trylock(&plain), EBUSY);
    pthread_mutex_t pi;
    pthread_mutexattr_t pa;
    pthread_mutexattr_init(&pa);
    pthread_mutexattr_setprotocol(&pa, PTHREAD_PRIO_INHERIT);
    pthread_mutex_init(&pi, &pa);
    EXPECT_EQ("pi_mutex_lock", pthread_mutex_lock(&pi), 0);
    EXPECT_EQ("pi_mutex_unlock", pthread_mutex_unlock(&pi), 0);
    int f = 0;
    EXPECT_OK("futex_lock_pi_uncontended", RAW(SYS_futex, &f, FUTEX_LOCK_PI, 0, NULL, NULL, 0));
    CHECK("futex_lock_pi_owner", (f & FUTEX_TID_MASK) == gettid());
    EXPECT_ERR("futex_lock_pi_deadlock", RAW(SYS_futex, &f, FUTEX_LOCK_PI, 0, NULL, NULL, 0), EDEADLK);
    EXPECT_OK("futex_unlock_pi", RAW(SYS_futex, &f, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0));
    EXPECT_ERR("futex_unlock_pi_not_owner", RAW(SYS_futex, &f, FUTEX_UNLOCK_PI, 0, NULL, NULL, 0), EPERM);
    return DONE();
}
