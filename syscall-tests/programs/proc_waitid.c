/* waitid: idtypes, options, siginfo. */
/* syscalls: waitid pidfd_open pidfd_send_signal */
#include "common.h"
#include <poll.h>

int main(void) {
    siginfo_t si;
    pid_t c = fork();
    if (c == 0) _exit(12);
    memset(&si, 0, sizeof si);
    EXPECT_OK("waitid_pid", waitid(P_PID, c, &si, WEXITED));
    CHECK("waitid_siginfo_exited", si.si_pid == c && si.si_code == CLD_EXITED && si.si_status == 12 && si.si_signo == SIGCHLD);
    CHECK("waitid_uid", si.si_uid == getuid());
    c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    memset(&si, 0, sizeof si);
    EXPECT_OK("waitid_wnohang_running", waitid(P_PID, c, &si, WEXITED | WNOHANG));
    CHECK("waitid_wnohang_pid_zero", si.si_pid == 0);
    kill(c, SIGSTOP);
    EXPECT_OK("waitid_wstopped", waitid(P_PID, c, &si, WSTOPPED));
    CHECK("waitid_stopped_info", si.si_code == CLD_STOPPED && si.si_status == SIGSTOP);
    kill(c, SIGCONT);
    EXPECT_OK("waitid_wcontinued", waitid(P_PID, c, &si, WCONTINUED));
    CHECK("waitid_continued_info", si.si_code == CLD_CONTINUED && si.si_status == SIGCONT);
    kill(c, SIGTERM);
    EXPECT_OK("waitid_wnowait", waitid(P_PID, c, &si, WEXITED | WNOWAIT));
    CHECK("waitid_killed_info", si.si_code == CLD_KILLED && si.si_status == SIGTERM);
    EXPECT_OK("waitid_after_wnowait", waitid(P_PID, c, &si, WEXITED));
    EXPECT_ERR("waitid_reaped", waitid(P_PID, c, &si, WEXITED), ECHILD);
    EXPECT_ERR("waitid_no_options", waitid(P_ALL, 0, &si, 0), EINVAL);
    EXPECT_ERR("waitid_bad_idtype", waitid(42, 0, &si, WEXITED), EINVAL);
    c = fork();
    if (c == 0) _exit(0);
    EXPECT_OK("waitid_all", waitid(P_ALL, 0, &si, WEXITED));
    CHECK("waitid_all_pid", si.si_pid == c);
    c = fork();
    if (c == 0) _exit(0);
    EXPECT_OK("waitid_pgid", waitid(P_PGID, getpgrp(), &si, WEXITED));
    c = fork();
    if (c == 0) _exit(0);
    int pfd = RAW(SYS_pidfd_open, c, 0);
    CHECK("pidfd_open", pfd >= 0);
    EXPECT_OK("waitid_pidfd", waitid(P_PIDFD, pfd, &si, WEXITED));
    CHECK("waitid_pidfd_pid", si.si_pid == c);
    EXPECT_ERR("pidfd_open_bad_pid", RAW(SYS_pidfd_open, 0x3fffffff, 0), ESRCH);
    EXPECT_ERR("pidfd_open_bad_flags", RAW(SYS_pidfd_open, getpid(), 1), EINVAL);
    {
        pid_t sleeper = fork();
        if (sleeper == 0) { pause(); _exit(0); }
        int sfd = RAW(SYS_pidfd_open, sleeper, 0);
        CHECK("pidfd_cloexec", sfd >= 0 && fcntl(sfd, F_GETFD) == FD_CLOEXEC);
        struct pollfd pf = {.fd = sfd, .events = POLLIN};
        EXPECT_EQ("pidfd_poll_running", poll(&pf, 1, 0), 0);
        EXPECT_OK("pidfd_send_signal_0", RAW(SYS_pidfd_send_signal, sfd, 0, NULL, 0));
        EXPECT_ERR("pidfd_send_signal_flags", RAW(SYS_pidfd_send_signal, sfd, SIGKILL, NULL, 8), EINVAL);
        EXPECT_ERR("pidfd_send_signal_not_pidfd", RAW(SYS_pidfd_send_signal, 0, SIGKILL, NULL, 0), EBADF);
        EXPECT_OK("pidfd_send_signal_kill", RAW(SYS_pidfd_send_signal, sfd, SIGKILL, NULL, 0));
        pf.revents = 0;
        CHECK("pidfd_poll_exited", poll(&pf, 1, 5000) == 1 && (pf.revents & POLLIN));
        int kst;
        CHECK("pidfd_killed_child", waitpid(sleeper, &kst, 0) == sleeper && WIFSIGNALED(kst) && WTERMSIG(kst) == SIGKILL);
        EXPECT_ERR("pidfd_send_signal_reaped", RAW(SYS_pidfd_send_signal, sfd, SIGTERM, NULL, 0), ESRCH);
        close(sfd);
    }
    return DONE();
}
