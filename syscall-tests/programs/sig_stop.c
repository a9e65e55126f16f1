/* SIGSTOP/SIGCONT/SIGTSTP, WUNTRACED/WCONTINUED, SIGCHLD info. */
/* syscalls: kill wait4 */
#include "common.h"

static volatile int chld, chld_code;
static void on_chld(int s, siginfo_t *si, void *uc) { (void)s; (void)uc; chld++; chld_code = si->si_code; }

int main(void) {
    pid_t c = fork();
    if (c == 0) {
        for (int i = 0; i < 1000; i++) pause(); /* bounded where pause is missing */
        _exit(0);
    }
    int st;
    EXPECT_OK("kill_sigstop", kill(c, SIGSTOP));
    EXPECT_EQ("wait_wuntraced", waitpid(c, &st, WUNTRACED), c);
    CHECK("wifstopped_sigstop", WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    EXPECT_EQ("stop_reported_once", waitpid(c, &st, WUNTRACED | WNOHANG), 0);
    EXPECT_OK("kill_sigcont", kill(c, SIGCONT));
    EXPECT_EQ("wait_wcontinued", waitpid(c, &st, WCONTINUED), c);
    CHECK("wifcontinued", WIFCONTINUED(st));
    kill(c, SIGTSTP);
    waitpid(c, &st, WUNTRACED);
    CHECK("sigtstp_stops", WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP);
    kill(c, SIGTERM);
    usleep(20000);
    EXPECT_EQ("stopped_term_pending", waitpid(c, &st, WNOHANG), 0);
    kill(c, SIGCONT);
    waitpid(c, &st, 0);
    CHECK("term_after_cont", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    c = fork();
    if (c == 0) {
        for (int i = 0; i < 1000; i++) pause(); /* bounded where pause is missing */
        _exit(0);
    }
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    CHECK("sigkill_kills_stopped", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    struct sigaction sa = {.sa_sigaction = on_chld, .sa_flags = SA_SIGINFO};
    sigaction(SIGCHLD, &sa, NULL);
    c = fork();
    if (c == 0) {
        for (int i = 0; i < 1000; i++) pause(); /* bounded where pause is missing */
        _exit(0);
    }
    kill(c, SIGSTOP);
    waitpid(c, &st, WUNTRACED);
    CHECK("sigchld_on_stop", chld >= 1 && chld_code == CLD_STOPPED);
    chld = 0;
    sa.sa_flags = SA_SIGINFO | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    kill(c, SIGCONT);
    waitpid(c, &st, WCONTINUED);
    usleep(10000);
    CHECK("sa_nocldstop_no_sigchld_on_cont", chld == 0);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    usleep(10000);
    CHECK("sigchld_on_exit", chld == 1 && chld_code == CLD_KILLED);
    c = fork();
    if (c == 0) {
        signal(SIGCONT, SIG_IGN);
        raise(SIGSTOP);
        _exit(4);
    }
    waitpid(c, &st, WUNTRACED);
    kill(c, SIGCONT);
    waitpid(c, &st, 0);
    CHECK("sigcont_ignored_still_continues", WIFEXITED(st) && WEXITSTATUS(st) == 4);
    return DONE();
}
