/* unshare and setns: un-sharing descriptors and the filesystem context from a thread's
 * relatives, setns through a pidfd, and a new UTS namespace (as root: its hostname is
 * its own). */
/* syscalls: unshare setns */
#include "common.h"
#include <pthread.h>
#include <dirent.h>
#include <sys/utsname.h>

static int shared_fd;
static int thread_new_fd = -1;
static int thread_result = -1;

static void *unshare_files_thread(void *arg) {
    (void)arg;
    thread_result = unshare(CLONE_FILES);
    close(shared_fd);
    thread_new_fd = open("/dev/null", O_RDONLY);
    return NULL;
}

static void *unshare_fs_thread(void *arg) {
    (void)arg;
    thread_result = unshare(CLONE_FS);
    if (thread_result == 0) thread_result = chdir("/proc");
    return NULL;
}

static void *sleep_thread(void *arg) {
    (void)arg;
    usleep(300000);
    return NULL;
}

int main(void) {
    EXPECT_OK("unshare_nothing", unshare(0));
    EXPECT_ERR("unshare_bad_flag", unshare(CLONE_PARENT), EINVAL);
    EXPECT_ERR("unshare_csignal_bits", unshare(SIGCHLD), EINVAL);
    EXPECT_OK("unshare_sysvsem", unshare(CLONE_SYSVSEM));
    EXPECT_OK("unshare_files_alone", unshare(CLONE_FILES));

    /* A thread un-shares the descriptor table: its close and open stay its own. */
    shared_fd = open("/dev/null", O_RDONLY);
    pthread_t t;
    pthread_create(&t, NULL, unshare_files_thread, NULL);
    pthread_join(t, NULL);
    EXPECT_EQ("unshare_files_in_thread", thread_result, 0);
    CHECK("unshare_files_close_is_private", fcntl(shared_fd, F_GETFD) >= 0);
    CHECK("unshare_files_open_is_private",
          thread_new_fd >= 0 && (thread_new_fd == shared_fd || fcntl(thread_new_fd, F_GETFD) < 0));
    close(shared_fd);

    /* A thread un-shares the filesystem context: its chdir stays its own. */
    char before[256], after[256];
    getcwd(before, sizeof before);
    pthread_create(&t, NULL, unshare_fs_thread, NULL);
    pthread_join(t, NULL);
    EXPECT_EQ("unshare_fs_in_thread", thread_result, 0);
    getcwd(after, sizeof after);
    CHECK("unshare_fs_chdir_is_private", !strcmp(before, after));

    /* Un-sharing the thread group with another thread alive: EINVAL; alone: nothing. */
    pthread_create(&t, NULL, sleep_thread, NULL);
    EXPECT_ERR("unshare_thread_with_threads", unshare(CLONE_THREAD), EINVAL);
    EXPECT_ERR("unshare_vm_with_threads", unshare(CLONE_VM), EINVAL);
    EXPECT_ERR("unshare_sighand_with_threads", unshare(CLONE_SIGHAND), EINVAL);
    pthread_join(t, NULL);
    pid_t p = fork();
    if (p == 0) _exit(unshare(CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) == 0 ? 0 : 1);
    int st = 0;
    waitpid(p, &st, 0);
    CHECK("unshare_thread_alone", WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* A new UTS namespace: a hostname of its own (needs CAP_SYS_ADMIN). */
    if (geteuid() == 0) {
        char mine[65] = {0}, theirs[65] = {0};
        gethostname(mine, sizeof mine - 1);
        p = fork();
        if (p == 0) {
            if (unshare(CLONE_NEWUTS) != 0) _exit(2);
            if (sethostname("bw-unshared", 11) != 0) _exit(3);
            _exit(0);
        }
        waitpid(p, &st, 0);
        gethostname(theirs, sizeof theirs - 1);
        CHECK("unshare_newuts", WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strcmp(mine, theirs));

        /* The new namespace shows its own name, in uname and in /proc. */
        p = fork();
        if (p == 0) {
            struct utsname u;
            char buf[80] = {0};
            if (unshare(CLONE_NEWUTS) != 0 || sethostname("bw-own", 6) != 0) _exit(2);
            if (setdomainname("bw-dom", 6) != 0 || uname(&u) != 0) _exit(3);
            if (strcmp(u.nodename, "bw-own") || strcmp(u.domainname, "bw-dom")) _exit(4);
            int fd = open("/proc/sys/kernel/hostname", O_RDONLY);
            if (fd < 0 || read(fd, buf, sizeof buf - 1) <= 0 || strcmp(buf, "bw-own\n")) _exit(5);
            close(fd);
            /* Writing /proc sets the namespace's name too. */
            fd = open("/proc/sys/kernel/hostname", O_WRONLY);
            if (fd < 0 || write(fd, "bw-proc\n", 8) != 8) _exit(6);
            close(fd);
            if (uname(&u) != 0 || strcmp(u.nodename, "bw-proc")) _exit(7);
            _exit(0);
        }
        waitpid(p, &st, 0);
        EXPECT_EQ("unshare_newuts_own_names", WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st), 0);
        gethostname(theirs, sizeof theirs - 1);
        CHECK("unshare_newuts_proc_write_private", !strcmp(mine, theirs));

        /* The names start as the parent namespace's. */
        p = fork();
        if (p == 0) {
            char n[65] = {0};
            if (unshare(CLONE_NEWUTS) != 0) _exit(2);
            gethostname(n, sizeof n - 1);
            _exit(strcmp(n, mine) ? 3 : 0);
        }
        waitpid(p, &st, 0);
        CHECK("unshare_newuts_starts_with_parent_names", WIFEXITED(st) && WEXITSTATUS(st) == 0);

        /* clone(CLONE_NEWUTS): the child's namespace is its own. */
        p = RAW(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
        if (p == 0) _exit(sethostname("bw-cloned", 9) == 0 ? 0 : 1);
        st = 0;
        if (p > 0) waitpid(p, &st, 0);
        gethostname(theirs, sizeof theirs - 1);
        CHECK("clone_newuts", p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !strcmp(mine, theirs));

        /* Without CAP_SYS_ADMIN: EPERM, for unshare and for clone. */
        p = fork();
        if (p == 0) {
            if (setresuid(65534, 65534, 65534) != 0) _exit(2);
            if (unshare(CLONE_NEWUTS) != -1 || errno != EPERM) _exit(3);
            if (RAW(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0) != -1 || errno != EPERM) _exit(4);
            _exit(0);
        }
        waitpid(p, &st, 0);
        CHECK("newuts_unprivileged_eperm", WIFEXITED(st) && WEXITSTATUS(st) == 0);

        /* setns through a pidfd joins the target's UTS namespace. */
        int ready[2], hold[2];
        pipe(ready);
        pipe(hold);
        pid_t owner = fork();
        if (owner == 0) {
            char c;
            if (unshare(CLONE_NEWUTS) != 0 || sethostname("bw-target", 9) != 0) _exit(2);
            write(ready[1], "x", 1);
            read(hold[0], &c, 1);
            _exit(0);
        }
        char c;
        read(ready[0], &c, 1);
        p = fork();
        if (p == 0) {
            char n[65] = {0};
            int fd = syscall(SYS_pidfd_open, owner, 0);
            if (fd < 0 || setns(fd, CLONE_NEWUTS) != 0) _exit(2);
            gethostname(n, sizeof n - 1);
            _exit(strcmp(n, "bw-target") ? 3 : 0);
        }
        waitpid(p, &st, 0);
        CHECK("setns_pidfd_joins_uts", WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* The same through the owner's /proc/PID/ns/uts, whose link differs from ours. */
        char own_link[64] = {0}, owner_link[64] = {0}, path[64];
        readlink("/proc/self/ns/uts", own_link, sizeof own_link - 1);
        snprintf(path, sizeof path, "/proc/%d/ns/uts", owner);
        readlink(path, owner_link, sizeof owner_link - 1);
        CHECK("ns_link_differs_after_unshare", !strncmp(owner_link, "uts:[", 5) && strcmp(own_link, owner_link));
        p = fork();
        if (p == 0) {
            char n[65] = {0};
            int fd = open(path, O_RDONLY);
            if (fd < 0 || setns(fd, CLONE_NEWUTS) != 0) _exit(2);
            gethostname(n, sizeof n - 1);
            char link[64] = {0};
            readlink("/proc/self/ns/uts", link, sizeof link - 1);
            _exit(strcmp(n, "bw-target") ? 3 : strcmp(link, owner_link) ? 4 : 0);
        }
        waitpid(p, &st, 0);
        EXPECT_EQ("setns_nsfile_joins_uts", WIFEXITED(st) ? WEXITSTATUS(st) : 100, 0);
        write(hold[1], "x", 1);
        waitpid(owner, &st, 0);
        gethostname(theirs, sizeof theirs - 1);
        CHECK("setns_pidfd_uts_private", !strcmp(mine, theirs));
    } else {
        t_skip("unshare_newuts", "not root");
    }

    /* /proc/PID/ns: a link per namespace type, naming the file it opens. */
    {
        DIR *d = opendir("/proc/self/ns");
        int entries = 0;
        struct dirent *de;
        while (d && (de = readdir(d)))
            if (de->d_name[0] != '.') entries++;
        if (d) closedir(d);
        CHECK("ns_dir_lists_types", entries >= 8);
        char link[64] = {0}, want[64];
        struct stat sb;
        int fd = open("/proc/self/ns/uts", O_RDONLY);
        readlink("/proc/self/ns/uts", link, sizeof link - 1);
        snprintf(want, sizeof want, "uts:[%lu]", fd >= 0 && fstat(fd, &sb) == 0 ? (unsigned long)sb.st_ino : 0UL);
        CHECK("ns_link_names_inode", !strcmp(link, want));
        char fdpath[64], fdlink[64] = {0};
        snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
        readlink(fdpath, fdlink, sizeof fdlink - 1);
        CHECK("ns_fd_link", !strcmp(fdlink, link));
        char byte;
        EXPECT_ERR("ns_file_read_einval", read(fd, &byte, 1), EINVAL);
        EXPECT_ERR("setns_nsfile_wrong_type", setns(fd, CLONE_NEWNET), EINVAL);
        int ufd = open("/proc/self/ns/user", O_RDONLY);
        EXPECT_ERR("setns_nsfile_own_user", setns(ufd, 0), EINVAL);
        close(ufd);
        close(fd);
        /* A child shares its parent's namespaces. */
        char mine_pid[64] = {0}, child_pid[64] = {0}, cpath[64];
        readlink("/proc/self/ns/pid", mine_pid, sizeof mine_pid - 1);
        int hold2[2];
        pipe(hold2);
        pid_t c = fork();
        if (c == 0) {
            read(hold2[0], &byte, 1);
            _exit(0);
        }
        snprintf(cpath, sizeof cpath, "/proc/%d/ns/pid", c);
        readlink(cpath, child_pid, sizeof child_pid - 1);
        write(hold2[1], "x", 1);
        waitpid(c, NULL, 0);
        CHECK("ns_child_shares_pid_ns", !strncmp(mine_pid, "pid:[", 5) && !strcmp(mine_pid, child_pid));
    }

    /* Namespace flags that cannot go together with others: EINVAL before any check. */
    EXPECT_ERR("clone_newuser_thread", RAW(SYS_clone, CLONE_NEWUSER | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, 0, 0, 0, 0), EINVAL);
    EXPECT_ERR("clone_newpid_thread", RAW(SYS_clone, CLONE_NEWPID | CLONE_THREAD | CLONE_SIGHAND | CLONE_VM, 0, 0, 0, 0), EINVAL);
    EXPECT_ERR("clone_newuser_fs", RAW(SYS_clone, CLONE_NEWUSER | CLONE_FS, 0, 0, 0, 0), EINVAL);

    /* setns: a descriptor that names no namespace. */
    EXPECT_ERR("setns_ebadf", setns(-1, 0), EBADF);
    int q[2];
    pipe(q);
    EXPECT_ERR("setns_not_a_namespace", setns(q[0], 0), EINVAL);
    close(q[0]);
    close(q[1]);
    int pidfd = syscall(SYS_pidfd_open, getpid(), 0);
    EXPECT_ERR("setns_pidfd_no_type", setns(pidfd, 0), EINVAL);
    EXPECT_ERR("setns_pidfd_bad_type", setns(pidfd, CLONE_FILES), EINVAL);
    EXPECT_ERR("setns_pidfd_negative_type", setns(pidfd, -CLONE_NEWNET), EINVAL);
    close(pidfd);

    return DONE();
}
