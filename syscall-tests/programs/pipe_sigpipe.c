/* SIGPIPE delivery on a broken pipe and blocking wakeups. */
/* syscalls: */
#include "common.h"

static volatile int got;
static void on_pipe(int s) { got = s; }

int main(void) {
    int p[2];
    pipe(p);
    close(p[0]);
    int st;
    pid_t c = fork();
    if (c == 0) {
        write(p[1], "x", 1);
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("sigpipe_kills_by_default", WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
    signal(SIGPIPE, on_pipe);
    EXPECT_ERR("sigpipe_handler_epipe", write(p[1], "x", 1), EPIPE);
    CHECK("sigpipe_handler_ran", got == SIGPIPE);
    close(p[1]);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigprocmask(SIG_BLOCK, &s, NULL);
    pipe(p);
    close(p[0]);
    got = 0;
    EXPECT_ERR("sigpipe_blocked_epipe", write(p[1], "x", 1), EPIPE);
    sigset_t pend;
    sigpending(&pend);
    CHECK("sigpipe_pending_when_blocked", sigismember(&pend, SIGPIPE));
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    CHECK("sigpipe_delivered_on_unblock", got == SIGPIPE);
    close(p[1]);
    pipe(p);
    c = fork();
    if (c == 0) {
        usleep(50000);
        write(p[1], "late", 4);
        _exit(0);
    }
    char buf[8];
    BOUNDED("read_blocks_until_data", 5)
    EXPECT_EQ("read_blocks_until_data", read(p[0], buf, sizeof buf), 4);
    alarm(0);
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) {
        usleep(50000);
        _exit(0);
    }
    BOUNDED("blocked_read_eintr", 2)
    EXPECT_ERR("blocked_read_eintr", read(p[0], buf, sizeof buf), EINTR);
    waitpid(c, NULL, 0);
    return DONE();
}
