/* fork/vfork/clone as fork, wait4 and exit statuses. */
/* syscalls: fork vfork clone wait4 */
#include "common.h"
#include <sys/resource.h>

int main(void) {
    pid_t me = getpid();
    pid_t c = fork();
    if (c == 0) _exit(getppid() == me ? 7 : 1);
    CHECK("fork_returns_child_pid", c > 0 && c != me);
    int st;
    EXPECT_EQ("waitpid_returns_pid", waitpid(c, &st, 0), c);
    CHECK("exit_status", WIFEXITED(st) && WEXITSTATUS(st) == 7);
    c = fork();
    if (c == 0) _exit(300);
    waitpid(c, &st, 0);
    CHECK("exit_status_truncated", WEXITSTATUS(st) == 300 % 256);
    EXPECT_ERR("wait_no_children", wait(&st), ECHILD);
    EXPECT_ERR("waitpid_not_child", waitpid(1, &st, WNOHANG), ECHILD);
    EXPECT_ERR("waitpid_bad_options", waitpid(-1, &st, 0x1000000), EINVAL);
    c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    EXPECT_EQ("wnohang_running", waitpid(c, &st, WNOHANG), 0);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    CHECK("killed_status", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    c = fork();
    if (c == 0) abort();
    waitpid(c, &st, 0);
    CHECK("abort_sigabrt", WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    volatile int shared = 0;
    c = vfork();
    if (c == 0) {
        shared = 5;
        _exit(3);
    }
    waitpid(c, &st, 0);
    CHECK("vfork_shares_memory", shared == 5 && WEXITSTATUS(st) == 3);
    c = RAW(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (c == 0) _exit(9);
    waitpid(c, &st, 0);
    CHECK("clone_as_fork", c > 0 && WEXITSTATUS(st) == 9);
    c = RAW(SYS_clone, 0, 0, 0, 0, 0);
    if (c == 0) _exit(4);
    EXPECT_ERR("clone_no_sigchld_needs_wclone", waitpid(c, &st, WNOHANG | 0) == 0 ? (errno = ECHILD, -1) : waitpid(c, &st, 0) == c ? (errno = ECHILD, -1) : -1, ECHILD);
    usleep(10000);
    EXPECT_EQ("wait_wclone", waitpid(c, &st, __WCLONE), c);
    pid_t kids[5];
    for (int i = 0; i < 5; i++) {
        kids[i] = fork();
        if (kids[i] == 0) _exit(i);
    }
    int sum = 0, n = 0;
    while ((c = wait(&st)) > 0) {
        sum += WEXITSTATUS(st);
        n++;
    }
    CHECK("wait_all_children", n == 5 && sum == 10);
    struct rusage ru;
    c = fork();
    if (c == 0) _exit(0);
    EXPECT_EQ("wait4_rusage", wait4(c, &st, 0, &ru), c);
    EXPECT_ERR("wait4_efault_status", (c = fork()) == 0 ? (_exit(0), 0) : wait4(c, BADPTR, 0, NULL), EFAULT);
    waitpid(-1, NULL, 0);
    c = fork();
    if (c == 0) {
        setpgid(0, 0);
        _exit(2);
    }
    setpgid(c, c); /* as shells do: whichever of the two runs first moves the child */
    EXPECT_EQ("waitpid_by_pgid", waitpid(-c, &st, 0), c);
    c = fork();
    if (c == 0) _exit(0);
    EXPECT_EQ("waitpid_own_pgrp", waitpid(0, &st, 0), c);
    return DONE();
}
