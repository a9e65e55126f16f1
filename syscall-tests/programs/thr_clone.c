/* Threads: pthread_create, clone flags, set_tid_address, gettid, tgkill. */
/* syscalls: clone clone3 set_tid_address gettid tgkill tkill */
#include "common.h"
#include <pthread.h>
#include <linux/sched.h>
#include <stdatomic.h>

static atomic_int counter;
static pid_t thread_tid;
static void *worker(void *arg) {
    thread_tid = gettid();
    for (int i = 0; i < 10000; i++) atomic_fetch_add(&counter, 1);
    return arg;
}

static volatile pid_t child_tid_slot;
static int clone_fn(void *arg) { (void)arg; return 0; }

int main(void) {
    pthread_t t[4];
    int ok = 1;
    for (int i = 0; i < 4; i++) ok &= pthread_create(&t[i], NULL, worker, (void *)(long)i) == 0;
    CHECK("pthread_create", ok);
    long sum = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (long)r;
    }
    CHECK("pthread_join_values", sum == 6);
    CHECK("threads_share_memory", counter == 40000);
    CHECK("thread_tid_differs", thread_tid != 0 && thread_tid != gettid());
    CHECK("main_tid_is_pid", gettid() == getpid());
    char *stack = malloc(65536);
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    pid_t ptid = 0;
    child_tid_slot = 1;
    long tid = clone(clone_fn, stack + 65536, flags, NULL, &ptid, NULL, &child_tid_slot);
    CHECK("clone_thread", tid > 0);
    CHECK("clone_parent_settid", ptid == tid);
    for (int i = 0; i < 500 && child_tid_slot != 0; i++) usleep(2000);
    CHECK("clone_child_cleartid", child_tid_slot == 0);
    EXPECT_ERR("clone_thread_without_sighand", RAW(SYS_clone, CLONE_THREAD | CLONE_VM, stack + 65536, 0, 0, 0), EINVAL);
    EXPECT_ERR("clone_sighand_without_vm", RAW(SYS_clone, CLONE_SIGHAND, stack + 65536, 0, 0, 0), EINVAL);
    EXPECT_ERR("clone_newns_and_fs", RAW(SYS_clone, CLONE_NEWNS | CLONE_FS, 0, 0, 0, 0), EINVAL);
    struct clone_args ca = {.flags = 0, .exit_signal = SIGCHLD};
    long c = RAW(SYS_clone3, &ca, sizeof ca);
    if (c == 0) _exit(6);
    int st;
    waitpid(c, &st, 0);
    CHECK("clone3_fork", c > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 6);
    EXPECT_ERR("clone3_small_size", RAW(SYS_clone3, &ca, 8), EINVAL);
    struct clone_args bad = {.flags = 0, .exit_signal = 1000};
    EXPECT_ERR("clone3_bad_exit_signal", RAW(SYS_clone3, &bad, sizeof bad), EINVAL);
    EXPECT_ERR("clone3_efault", RAW(SYS_clone3, BADPTR, sizeof ca), EFAULT);
    int tidaddr = 0;
    EXPECT_EQ("set_tid_address_returns_tid", RAW(SYS_set_tid_address, &tidaddr), gettid());
    EXPECT_OK("tgkill_self_zero", RAW(SYS_tgkill, getpid(), gettid(), 0));
    EXPECT_ERR("tgkill_wrong_group", RAW(SYS_tgkill, getpid() + 100000, gettid(), 0), ESRCH);
    EXPECT_ERR("tgkill_bad_tid", RAW(SYS_tgkill, getpid(), -1, 0), EINVAL);
    EXPECT_ERR("tkill_bad_sig", RAW(SYS_tkill, gettid(), 1000), EINVAL);
    c = fork();
    if (c == 0) {
        pthread_t th;
        pthread_create(&th, NULL, worker, NULL);
        pthread_join(th, NULL);
        _exit(thread_tid != getpid() ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("threads_in_child", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return DONE();
}
