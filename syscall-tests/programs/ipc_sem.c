/* System V semaphores: sets and their limits, atomic operation arrays, blocking with
 * signals, timeouts and removal, SEM_UNDO at exit, and the semctl commands. */
/* syscalls: semget semop semtimedop semctl */
#include "common.h"
#include <sys/ipc.h>
#include <pthread.h>
#include <sys/sem.h>

union semun {
    int val;
    struct semid_ds *buf;
    unsigned short *array;
    struct seminfo *__buf;
};

static int getval(int id, int n) { return semctl(id, n, GETVAL); }

static int setval(int id, int n, int v) {
    union semun a = {.val = v};
    return semctl(id, n, SETVAL, a);
}

static int op1(int id, unsigned short num, short op, short flg) {
    struct sembuf s = {num, op, flg};
    return semop(id, &s, 1);
}

static int thread_sem;

static void *undo_thread(void *arg) {
    (void)arg;
    op1(thread_sem, 0, 1, SEM_UNDO);
    return NULL;
}

static long ms_since(struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Waits (up to 2 s) until semctl(id, num, cmd) == want. */
static int wait_count(int id, int num, int cmd, int want) {
    for (int i = 0; i < 400; i++) {
        if (semctl(id, num, cmd) == want) return 1;
        usleep(5000);
    }
    return 0;
}

int main(void) {
    key_t key = (key_t)(0x5e100000 | ((getpid() & 0xffff) << 4));

    /* Creation. */
    int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
    CHECK("get_private", id >= 0);
    EXPECT_ERR("nsems_negative_einval", semget(IPC_PRIVATE, -1, 0600), EINVAL);
    EXPECT_ERR("nsems_over_semmsl_einval", semget(IPC_PRIVATE, 32001, 0600), EINVAL);
    EXPECT_ERR("nsems_zero_new_einval", semget(IPC_PRIVATE, 0, 0600), EINVAL);
    EXPECT_ERR("key_missing_enoent", semget(key, 1, 0600), ENOENT);
    int kid = semget(key, 2, IPC_CREAT | 0600);
    CHECK("key_create", kid >= 0);
    EXPECT_EQ("key_lookup_nsems_zero", semget(key, 0, 0600), kid);
    EXPECT_EQ("key_lookup_fewer", semget(key, 1, 0600), kid);
    EXPECT_ERR("key_lookup_more_einval", semget(key, 3, 0600), EINVAL);
    EXPECT_ERR("key_excl_eexist", semget(key, 2, IPC_CREAT | IPC_EXCL | 0600), EEXIST);

    /* Values. */
    EXPECT_EQ("getval_initial_zero", getval(id, 0), 0);
    EXPECT_EQ("setval", setval(id, 0, 5), 0);
    EXPECT_EQ("getval_after_setval", getval(id, 0), 5);
    EXPECT_ERR("setval_over_semvmx_erange", setval(id, 0, 32768), ERANGE);
    EXPECT_ERR("setval_negative_erange", setval(id, 0, -1), ERANGE);
    EXPECT_ERR("getval_bad_semnum_einval", getval(id, 3), EINVAL);
    unsigned short all[3] = {1, 2, 3}, got[3] = {0};
    union semun a = {.array = all};
    EXPECT_EQ("setall", semctl(id, 0, SETALL, a), 0);
    a.array = got;
    EXPECT_EQ("getall", semctl(id, 0, GETALL, a), 0);
    CHECK("getall_values", got[0] == 1 && got[1] == 2 && got[2] == 3);
    a.array = BADPTR;
    EXPECT_ERR("getall_efault", semctl(id, 0, GETALL, a), EFAULT);

    /* semop. */
    struct sembuf inc[2] = {{0, 2, 0}, {1, -1, 0}};
    EXPECT_EQ("semop_two_ops", semop(id, inc, 2), 0);
    CHECK("semop_applied", getval(id, 0) == 3 && getval(id, 1) == 1);
    EXPECT_EQ("getpid_after_semop", semctl(id, 0, GETPID), getpid());
    struct sembuf atomic[2] = {{0, 1, 0}, {2, -4, IPC_NOWAIT}};
    EXPECT_ERR("nowait_would_block_eagain", semop(id, atomic, 2), EAGAIN);
    EXPECT_EQ("all_or_nothing", getval(id, 0), 3);
    EXPECT_ERR("zero_wait_nowait_eagain", op1(id, 0, 0, IPC_NOWAIT), EAGAIN);
    EXPECT_ERR("bad_semnum_efbig", op1(id, 3, 1, 0), EFBIG);
    EXPECT_ERR("over_semvmx_erange", op1(id, 0, 32767, 0), ERANGE);
    static struct sembuf many[501];
    EXPECT_ERR("nsops_over_semopm_e2big", semop(id, many, 501), E2BIG);
    EXPECT_ERR("nsops_zero_einval", semop(id, many, 0), EINVAL);
    EXPECT_ERR("sops_efault", semop(id, BADPTR, 1), EFAULT);
    EXPECT_ERR("bad_id_einval", op1(-1, 0, 1, 0), EINVAL);
    EXPECT_EQ("same_sem_twice", ({
                  struct sembuf t[2] = {{2, -3, 0}, {2, 5, 0}};
                  semop(id, t, 2) == 0 ? getval(id, 2) : -1;
              }),
              5);

    /* Timeouts. */
    setval(id, 1, 0);
    struct timespec ts = {0, 50 * 1000 * 1000}, t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct sembuf dec = {1, -1, 0};
    EXPECT_ERR("timedop_timeout_eagain", semtimedop(id, &dec, 1, &ts), EAGAIN);
    CHECK("timedop_waited", ms_since(&t0) >= 40);
    struct timespec badts = {0, 1000000000};
    EXPECT_ERR("timedop_bad_timeout_einval", semtimedop(id, &dec, 1, &badts), EINVAL);
    struct timespec zerots = {0, 0};
    EXPECT_EQ("timedop_ready_ok", ({
                  struct sembuf up = {1, 1, 0};
                  semtimedop(id, &up, 1, &zerots);
              }),
              0);

    /* A signal interrupts a blocked semop, which is not restarted even with SA_RESTART. */
    setval(id, 1, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = t_noop;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    alarm(1);
    EXPECT_ERR("signal_eintr_not_restarted", op1(id, 1, -1, 0), EINTR);
    alarm(0);

    /* Another process wakes a waiter. */
    pid_t c = fork();
    if (c == 0) {
        usleep(100 * 1000);
        _exit(op1(id, 1, 1, 0) == 0 ? 0 : 1);
    }
    BOUNDED("woken_by_other_process", 5) EXPECT_EQ("woken_by_other_process", op1(id, 1, -1, 0), 0);
    alarm(0);
    int st;
    waitpid(c, &st, 0);

    /* Counts of waiters. */
    EXPECT_EQ("ncnt_none", semctl(id, 1, GETNCNT), 0);
    c = fork();
    if (c == 0) _exit(op1(id, 1, -1, 0) == 0 ? 0 : 1);
    CHECK("ncnt_one_waiter", wait_count(id, 1, GETNCNT, 1));
    op1(id, 1, 1, 0);
    waitpid(c, &st, 0);
    CHECK("ncnt_waiter_done", WIFEXITED(st) && WEXITSTATUS(st) == 0 && getval(id, 1) == 0);
    setval(id, 2, 1);
    c = fork();
    if (c == 0) _exit(op1(id, 2, 0, 0) == 0 ? 0 : 1);
    CHECK("zcnt_one_waiter", wait_count(id, 2, GETZCNT, 1));
    setval(id, 2, 0);
    waitpid(c, &st, 0);
    CHECK("zero_waiter_woken_by_setval", WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* SEM_UNDO: a process's adjustments are undone when it exits. */
    setval(id, 0, 3);
    c = fork();
    if (c == 0) {
        op1(id, 0, 2, SEM_UNDO);
        op1(id, 0, -4, SEM_UNDO);
        _exit(getval(id, 0) == 1 ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("undo_applied_at_exit", WIFEXITED(st) && WEXITSTATUS(st) == 0 && getval(id, 0) == 3);
    EXPECT_EQ("undo_exit_sets_pid", semctl(id, 0, GETPID), c);
    c = fork();
    if (c == 0) {
        op1(id, 0, 2, SEM_UNDO);
        setval(id, 0, 10);
        _exit(0);
    }
    waitpid(c, &st, 0);
    EXPECT_EQ("setval_clears_undo", getval(id, 0), 10);
    c = fork();
    if (c == 0) {
        op1(id, 0, 5, SEM_UNDO);
        setval(id, 0, 1);
        op1(id, 0, -1, SEM_UNDO);
        _exit(0);
    }
    waitpid(c, &st, 0);
    EXPECT_EQ("undo_clamped_at_zero_or_kept", getval(id, 0), 1);

    /* Threads share the undo list (CLONE_SYSVSEM): a thread's exit undoes nothing. */
    setval(id, 0, 0);
    thread_sem = id;
    c = fork();
    if (c == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, undo_thread, NULL) != 0) _exit(2);
        pthread_join(t, NULL);
        _exit(getval(id, 0) == 1 ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("undo_shared_by_threads", WIFEXITED(st) && WEXITSTATUS(st) == 0 && getval(id, 0) == 0);
    c = fork();
    if (c == 0) {
        op1(id, 0, 3, SEM_UNDO);
        if (unshare(CLONE_SYSVSEM) != 0) _exit(2);
        _exit(getval(id, 0) == 0 ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("unshare_sysvsem_applies_undo", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    setval(id, 0, 1);

    /* semctl IPC_STAT, IPC_SET, info commands. */
    struct semid_ds ds;
    memset(&ds, 0, sizeof ds);
    a.buf = &ds;
    EXPECT_EQ("ipc_stat", semctl(id, 0, IPC_STAT, a), 0);
    CHECK("ipc_stat_fields", ds.sem_nsems == 3 && (ds.sem_perm.mode & 0777) == 0600 &&
                                 ds.sem_perm.uid == geteuid() && ds.sem_otime != 0 &&
                                 ds.sem_ctime != 0 && ds.sem_perm.__key == IPC_PRIVATE);
    CHECK("proc_sysvipc_sem",
          sysvipc_row("sem",
                      "       key      semid perms      nsems   uid   gid  cuid  cgid      otime"
                      "      ctime\n",
                      key, kid, 2));
    ds.sem_perm.mode = 0644;
    EXPECT_EQ("ipc_set", semctl(id, 0, IPC_SET, a), 0);
    memset(&ds, 0, sizeof ds);
    semctl(id, 0, IPC_STAT, a);
    CHECK("ipc_set_mode_seen", (ds.sem_perm.mode & 0777) == 0644);
    a.buf = BADPTR;
    EXPECT_ERR("ipc_stat_efault", semctl(id, 0, IPC_STAT, a), EFAULT);
    struct seminfo si;
    memset(&si, 0, sizeof si);
    a.__buf = &si;
    int maxidx = semctl(0, 0, IPC_INFO, a);
    CHECK("ipc_info", maxidx >= id % 32768 && si.semmsl == 32000 && si.semopm == 500 &&
                          si.semvmx == 32767 && si.semmni >= 1);
    memset(&si, 0, sizeof si);
    CHECK("sem_info", semctl(0, 0, SEM_INFO, a) == maxidx && si.semusz >= 2 && si.semaem >= 5);
    memset(&ds, 0, sizeof ds);
    a.buf = &ds;
    EXPECT_EQ("sem_stat_index", semctl(id % 32768, 0, SEM_STAT, a), id);
    EXPECT_EQ("sem_stat_any_index", semctl(id % 32768, 0, SEM_STAT_ANY, a), id);
    EXPECT_ERR("bad_cmd_einval", semctl(id, 0, 1234), EINVAL);

    /* Another user: read but not alter (mode 0644), and not remove. */
    if (geteuid() == 0) {
        c = fork();
        if (c == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
            int bad = 0;
            if (getval(id, 0) != 1) bad |= 1;
            if (setval(id, 0, 2) != -1 || errno != EACCES) bad |= 2;
            if (op1(id, 0, 1, IPC_NOWAIT) != -1 || errno != EACCES) bad |= 4;
            if (op1(id, 2, 0, IPC_NOWAIT) != 0) bad |= 8;
            if (semctl(id, 0, IPC_RMID) != -1 || errno != EPERM) bad |= 16;
            int own = semget(IPC_PRIVATE, 1, 0600);
            if (own < 0 || semctl(own, 0, IPC_RMID) != 0) bad |= 32;
            _exit(bad);
        }
        waitpid(c, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            t_fail("perm_other_user", "child status %#x", st);
        else
            t_ok("perm_other_user");
    } else {
        t_skip("perm_other_user", "needs root to switch users");
    }

    /* IPC_RMID wakes waiters with EIDRM. */
    setval(id, 1, 0);
    c = fork();
    if (c == 0) _exit(op1(id, 1, -1, 0) == -1 && errno == EIDRM ? 0 : 1);
    wait_count(id, 1, GETNCNT, 1);
    EXPECT_EQ("rmid", semctl(id, 0, IPC_RMID), 0);
    waitpid(c, &st, 0);
    CHECK("rmid_wakes_waiter_eidrm", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT_ERR("rmid_then_semop_einval", op1(id, 0, 1, 0), EINVAL);
    EXPECT_ERR("rmid_then_getval_einval", getval(id, 0), EINVAL);
    EXPECT_EQ("rmid_key", semctl(kid, 0, IPC_RMID), 0);
    EXPECT_ERR("rmid_key_gone", semget(key, 0, 0), ENOENT);
    return DONE();
}
