/* unshare and setns: un-sharing descriptors and the filesystem context from a thread's
 * relatives, setns through a pidfd, and a new UTS namespace (as root: its hostname is
 * its own). */
/* syscalls: unshare setns */
#include "common.h"
#include <pthread.h>

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
    } else {
        t_skip("unshare_newuts", "not root");
    }

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
