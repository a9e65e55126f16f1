/* System V shared memory: keys, sizes, permissions, attach and detach, sharing across
 * fork, attach counts, IPC_RMID while attached, and the shmctl commands. */
/* syscalls: shmget shmat shmdt shmctl */
#include "common.h"
#include <sys/ipc.h>
#include <sys/shm.h>

static key_t key_base;
static char t_text[64];

/* A key of this run's own (the host may have other segments). */
static key_t key_n(int n) { return key_base + n; }

static int shm_nattch(int id) {
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) != 0) return -1;
    return (int)ds.shm_nattch;
}

/* Whether a write to p faults (tried in a child). */
static int write_faults(volatile char *p) {
    pid_t c = fork();
    if (c == 0) {
        p[0] = 1;
        _exit(0);
    }
    int st;
    waitpid(c, &st, 0);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

/* A free, page-aligned range of `len` bytes. */
static char *free_range(size_t len) {
    char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    munmap(p, len);
    return p;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "attach-exec")) {
        /* Re-executed with the segment still attached by the old image: nothing of it
         * remains. Waits for the parent to look. */
        sleep(1);
        return 0;
    }
    key_base = (key_t)(0x5e000000 | ((getpid() & 0xffff) << 8));

    /* Creation and sizes. */
    int priv = shmget(IPC_PRIVATE, 8192, IPC_CREAT | 0600);
    CHECK("get_private", priv >= 0);
    int priv2 = shmget(IPC_PRIVATE, 8192, 0600);
    CHECK("private_always_new", priv2 >= 0 && priv2 != priv);
    EXPECT_ERR("size_zero_einval", shmget(IPC_PRIVATE, 0, 0600), EINVAL);
    EXPECT_ERR("size_huge_einval", shmget(IPC_PRIVATE, (size_t)-1, 0600), EINVAL);
    /* No huge pages reserved (or no such setting): a huge page segment cannot be had. */
    if (get_file("/proc/sys/vm/nr_hugepages", t_text, sizeof t_text) <= 0 || atoi(t_text) == 0)
        EXPECT_ERR("hugetlb_without_huge_pages_enomem",
                   shmget(IPC_PRIVATE, 2 << 20, SHM_HUGETLB | IPC_CREAT | 0600), ENOMEM);
    else
        t_skip("hugetlb_without_huge_pages_enomem", "the host has huge pages reserved");
    EXPECT_ERR("key_missing_enoent", shmget(key_n(1), 4096, 0600), ENOENT);
    int id = shmget(key_n(1), 4096, IPC_CREAT | 0640);
    CHECK("key_create", id >= 0);
    EXPECT_EQ("key_lookup_same_id", shmget(key_n(1), 4096, 0), id);
    EXPECT_EQ("key_lookup_creat_same_id", shmget(key_n(1), 4096, IPC_CREAT | 0600), id);
    EXPECT_EQ("key_lookup_smaller_size", shmget(key_n(1), 100, 0), id);
    EXPECT_EQ("key_lookup_size_zero", shmget(key_n(1), 0, 0), id);
    EXPECT_ERR("key_excl_eexist", shmget(key_n(1), 4096, IPC_CREAT | IPC_EXCL | 0600), EEXIST);
    EXPECT_ERR("key_bigger_einval", shmget(key_n(1), 8192, 0), EINVAL);
    CHECK("id_index_and_seq", shmget(key_n(2), 4096, IPC_CREAT | 0600) >= 0);

    /* IPC_STAT of a fresh segment. */
    struct shmid_ds ds;
    memset(&ds, 0xff, sizeof ds);
    EXPECT_EQ("stat_ok", shmctl(id, IPC_STAT, &ds), 0);
    CHECK("stat_fields",
          ds.shm_segsz == 4096 && (ds.shm_perm.mode & 0777) == 0640 &&
              ds.shm_perm.__key == key_n(1) && ds.shm_perm.uid == geteuid() &&
              ds.shm_perm.cuid == geteuid() && ds.shm_perm.gid == getegid() &&
              ds.shm_cpid == getpid() && ds.shm_lpid == 0 && ds.shm_nattch == 0 &&
              ds.shm_atime == 0 && ds.shm_dtime == 0 && ds.shm_ctime != 0);
    EXPECT_ERR("stat_efault", shmctl(id, IPC_STAT, BADPTR), EFAULT);
    EXPECT_ERR("ctl_bad_cmd_einval", shmctl(id, 12345, &ds), EINVAL);
    EXPECT_ERR("ctl_negative_id_einval", shmctl(-1, IPC_STAT, &ds), EINVAL);

    /* Attaching. */
    char *p = shmat(id, NULL, 0);
    CHECK("attach_kernel_addr", p != (char *)-1 && ((uintptr_t)p & 4095) == 0);
    if (p == (char *)-1) return DONE();
    int zero = 1;
    for (int i = 0; i < 4096; i++)
        if (p[i]) zero = 0;
    CHECK("attach_zeroed", zero);
    memset(&ds, 0, sizeof ds);
    shmctl(id, IPC_STAT, &ds);
    CHECK("attach_counts", ds.shm_nattch == 1 && ds.shm_lpid == getpid() && ds.shm_atime != 0);
    char *q = shmat(id, NULL, 0);
    CHECK("attach_twice_shares", q != (char *)-1 && q != p && (strcpy(p, "hello"), !strcmp(q, "hello")));
    EXPECT_EQ("nattch_two", shm_nattch(id), 2);
    EXPECT_EQ("detach_second", shmdt(q), 0);
    EXPECT_EQ("nattch_back_to_one", shm_nattch(id), 1);
    EXPECT_ERR("detach_again_einval", shmdt(q), EINVAL);
    EXPECT_ERR("detach_not_start_einval", shmdt(p + 4096), EINVAL);
    char *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    EXPECT_ERR("detach_non_shm_einval", shmdt(anon), EINVAL);
    munmap(anon, 4096);

    /* Sharing with a forked child, and the count across fork and exit. */
    pid_t c = fork();
    if (c == 0) {
        int n = shm_nattch(id);
        strcpy(p + 100, "from child");
        _exit(n == 2 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("fork_increments_nattch", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK("fork_child_write_seen", !strcmp(p + 100, "from child"));
    EXPECT_EQ("exit_decrements_nattch", shm_nattch(id), 1);

    /* A child that attaches on its own, then execs: the exec detaches. */
    int pipefd[2];
    pipe(pipefd);
    c = fork();
    if (c == 0) {
        close(pipefd[0]);
        char *r = shmat(id, NULL, 0);
        char b = r != (char *)-1 ? 'y' : 'n';
        write(pipefd[1], &b, 1);
        close(pipefd[1]);
        execl("/proc/self/exe", argv[0], "attach-exec", "x", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char b = 0;
    read(pipefd[0], &b, 1);
    close(pipefd[0]);
    int seen_two = 0, back_to_one = 0;
    for (int i = 0; i < 200 && !back_to_one; i++) {
        int n = shm_nattch(id);
        if (n == 2) seen_two = 1;
        if (n == 1) back_to_one = 1;
        if (!back_to_one) usleep(5000);
    }
    CHECK("exec_detaches", b == 'y' && back_to_one && waitpid(c, &st, WNOHANG) == 0);
    (void)seen_two;
    waitpid(c, &st, 0);
    memset(&ds, 0, sizeof ds);
    shmctl(id, IPC_STAT, &ds);
    CHECK("lpid_and_dtime_after_detach", ds.shm_lpid == c && ds.shm_dtime != 0);

    /* A forked child's exit is a detach of its own: it is the last to operate. */
    c = fork();
    if (c == 0) _exit(0);
    waitpid(c, &st, 0);
    memset(&ds, 0, sizeof ds);
    shmctl(id, IPC_STAT, &ds);
    CHECK("fork_child_exit_sets_lpid", ds.shm_lpid == c && ds.shm_nattch == 1);

    /* Read-only attachments. */
    char *ro = shmat(id, NULL, SHM_RDONLY);
    CHECK("attach_rdonly_reads", ro != (char *)-1 && !strcmp(ro, "hello"));
    CHECK("attach_rdonly_write_segv", write_faults(ro));
    EXPECT_ERR("attach_rdonly_mprotect_eacces", mprotect(ro, 4096, PROT_READ | PROT_WRITE),
               EACCES);
    shmdt(ro);

    /* Chosen addresses. */
    char *where = free_range(4 * 4096);
    EXPECT_EQ("attach_at_address", shmat(id, where, 0), where);
    CHECK("attach_at_address_shares", !strcmp(where, "hello"));
    EXPECT_ERR("attach_overlap_einval", shmat(id, where, 0), EINVAL);
    EXPECT_EQ("attach_remap", shmat(id, where, SHM_REMAP), where);
    EXPECT_EQ("detach_remapped", shmdt(where), 0);
    EXPECT_ERR("attach_unaligned_einval", shmat(id, where + 1, 0), EINVAL);
    EXPECT_EQ("attach_rnd_rounds_down", shmat(id, where + 4096 + 123, SHM_RND), where + 4096);
    EXPECT_EQ("detach_rnd", shmdt(where + 4096), 0);
    EXPECT_ERR("attach_remap_null_einval", shmat(id, NULL, SHM_REMAP), EINVAL);
    EXPECT_ERR("attach_bad_id_einval", shmat(-1, NULL, 0), EINVAL);

    /* IPC_SET. */
    memset(&ds, 0, sizeof ds);
    shmctl(id, IPC_STAT, &ds);
    ds.shm_perm.mode = 0604;
    EXPECT_EQ("set_ok", shmctl(id, IPC_SET, &ds), 0);
    memset(&ds, 0, sizeof ds);
    shmctl(id, IPC_STAT, &ds);
    CHECK("set_mode_seen", (ds.shm_perm.mode & 0777) == 0604);
    EXPECT_ERR("set_efault", shmctl(id, IPC_SET, BADPTR), EFAULT);

    /* Info commands. */
    struct shminfo info;
    memset(&info, 0, sizeof info);
    int maxidx = shmctl(0, IPC_INFO, (struct shmid_ds *)&info);
    CHECK("ipc_info", maxidx >= id % 32768 && info.shmmin == 1 && info.shmmni >= 1 &&
                          info.shmmax > 4096 && info.shmall > 0 && info.shmseg > 0);
    char text[64];
    CHECK("proc_sys_shmmni", get_file("/proc/sys/kernel/shmmni", text, sizeof text) > 0 &&
                                 strtoul(text, NULL, 10) == info.shmmni);
    CHECK("proc_sys_shmmax", get_file("/proc/sys/kernel/shmmax", text, sizeof text) > 0 &&
                                 strtoul(text, NULL, 10) == info.shmmax);
    static char maps[65536];
    char want[32];
    snprintf(want, sizeof want, "/SYSV%08x", key_n(1));
    CHECK("proc_maps_names_segment",
          get_file("/proc/self/maps", maps, sizeof maps) > 0 && strstr(maps, want));
    CHECK("proc_sysvipc_shm",
          sysvipc_row("shm",
                      "       key      shmid perms                  size  cpid  lpid nattch   "
                      "uid   gid  cuid  cgid      atime      dtime      ctime                   "
                      "rss                  swap\n",
                      key_n(1), id, 4096));
    struct shm_info sinfo;
    memset(&sinfo, 0, sizeof sinfo);
    int maxidx2 = shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo);
    CHECK("shm_info", maxidx2 == maxidx && sinfo.used_ids >= 4 && sinfo.shm_tot >= 1);
    memset(&ds, 0, sizeof ds);
    EXPECT_EQ("shm_stat_index", shmctl(id % 32768, SHM_STAT, &ds), id);
    CHECK("shm_stat_fields", ds.shm_segsz == 4096 && ds.shm_nattch == 1);
    EXPECT_EQ("shm_stat_any_index", shmctl(id % 32768, SHM_STAT_ANY, &ds), id);

    /* SHM_LOCK and SHM_UNLOCK. */
    EXPECT_EQ("lock", shmctl(id, SHM_LOCK, NULL), 0);
    shmctl(id, IPC_STAT, &ds);
    CHECK("lock_mode_bit", ds.shm_perm.mode & SHM_LOCKED);
    EXPECT_EQ("unlock", shmctl(id, SHM_UNLOCK, NULL), 0);
    shmctl(id, IPC_STAT, &ds);
    CHECK("unlock_mode_bit", !(ds.shm_perm.mode & SHM_LOCKED));

    /* Permissions: another user. */
    if (geteuid() == 0) {
        c = fork();
        if (c == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(100);
            int bad = 0;
            struct shmid_ds d;
            /* mode 0604: others may read, not write. */
            if (shmget(key_n(1), 0, 0600) != -1 || errno != EACCES) bad |= 1;
            if (shmget(key_n(1), 0, 0004) != id) bad |= 2;
            if (shmat(id, NULL, 0) != (void *)-1 || errno != EACCES) bad |= 4;
            if (shmat(id, NULL, SHM_RDONLY) == (void *)-1) bad |= 8;
            if (shmctl(id, IPC_RMID, NULL) != -1 || errno != EPERM) bad |= 16;
            if (shmctl(id, IPC_STAT, &d) != 0) bad |= 32;
            if (shmctl(id, SHM_LOCK, NULL) != -1 || errno != EPERM) bad |= 64;
            int k = shmget(key_n(2), 0, 0);
            if (k < 0 || shmctl(k, IPC_STAT, &d) != -1 || errno != EACCES) bad |= 128;
            if (k < 0 || shmctl(k % 32768, SHM_STAT, &d) != -1 || errno != EACCES) bad |= 256;
            if (k < 0 || shmctl(k % 32768, SHM_STAT_ANY, &d) != k) bad |= 512;
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

    /* IPC_RMID while attached: the segment lives on, unreachable by key. */
    EXPECT_EQ("rmid_attached", shmctl(id, IPC_RMID, NULL), 0);
    memset(&ds, 0, sizeof ds);
    EXPECT_EQ("rmid_stat_still_works", shmctl(id, IPC_STAT, &ds), 0);
    CHECK("rmid_marks_dest", (ds.shm_perm.mode & SHM_DEST) && ds.shm_perm.__key == IPC_PRIVATE &&
                                 ds.shm_nattch == 1);
    EXPECT_ERR("rmid_key_gone", shmget(key_n(1), 0, 0), ENOENT);
    CHECK("rmid_memory_usable", !strcmp(p, "hello"));
    char *again = shmat(id, NULL, 0);
    CHECK("rmid_attach_by_id", again != (char *)-1 && !strcmp(again, "hello"));
    shmdt(again);
    EXPECT_EQ("rmid_last_detach", shmdt(p), 0);
    EXPECT_ERR("rmid_gone_after_detach", shmctl(id, IPC_STAT, &ds), EINVAL);
    EXPECT_ERR("rmid_attach_gone", shmat(id, NULL, 0), EINVAL);

    /* IPC_RMID with nothing attached destroys at once; the key can be reused. */
    int k2 = shmget(key_n(2), 0, 0);
    EXPECT_EQ("rmid_unattached", shmctl(k2, IPC_RMID, NULL), 0);
    EXPECT_ERR("rmid_unattached_gone", shmctl(k2, IPC_STAT, &ds), EINVAL);
    int k3 = shmget(key_n(2), 4096, IPC_CREAT | 0600);
    CHECK("key_reused_new_id", k3 >= 0 && k3 != k2);
    shmctl(k3, IPC_RMID, NULL);
    EXPECT_ERR("rmid_twice_einval", shmctl(k2, IPC_RMID, NULL), EINVAL);

    shmctl(priv, IPC_RMID, NULL);
    shmctl(priv2, IPC_RMID, NULL);
    return DONE();
}
