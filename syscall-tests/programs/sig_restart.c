/* SA_RESTART and EINTR for interrupted system calls. */
/* syscalls: rt_sigaction rt_sigreturn nanosleep pause */
#include "common.h"

static volatile int hits;
static void h(int s) { (void)s; hits++; }

static pid_t poke(int ms, int sig) {
    pid_t parent = getpid();
    pid_t c = fork();
    if (c == 0) {
        usleep(ms * 1000);
        kill(parent, sig);
        _exit(0);
    }
    return c;
}

int main(void) {
    int p[2];
    pipe(p);
    struct sigaction sa = {.sa_handler = h, .sa_flags = 0};
    sigaction(SIGUSR1, &sa, NULL);
    char buf[4];
    pid_t c = poke(30, SIGUSR1);
    EXPECT_ERR("read_eintr_without_restart", read(p[0], buf, 1), EINTR);
    waitpid(c, NULL, 0);
    CHECK("handler_ran_once", hits == 1);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    c = poke(30, SIGUSR1);
    pid_t writer = fork();
    if (writer == 0) {
        usleep(150000);
        write(p[1], "r", 1);
        _exit(0);
    }
    EXPECT_EQ("read_restarted", read(p[0], buf, 1), 1);
    CHECK("restart_handler_ran", hits == 2);
    waitpid(c, NULL, 0);
    waitpid(writer, NULL, 0);
    c = poke(30, SIGUSR1);
    struct timespec ts = {0, 300000000}, rem = {0, 0};
    EXPECT_ERR("nanosleep_eintr_even_with_restart", nanosleep(&ts, &rem), EINTR);
    CHECK("nanosleep_remaining", rem.tv_sec == 0 && rem.tv_nsec > 100000000);
    waitpid(c, NULL, 0);
    c = poke(30, SIGUSR1);
    EXPECT_ERR("pause_eintr", pause(), EINTR);
    waitpid(c, NULL, 0);
    c = poke(30, SIGUSR1);
    int st;
    pid_t sleeper = fork();
    if (sleeper == 0) {
        usleep(150000);
        _exit(5);
    }
    EXPECT_EQ("wait_restarted", waitpid(sleeper, &st, 0), sleeper);
    waitpid(c, NULL, 0);
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    sleeper = fork();
    if (sleeper == 0) {
        usleep(200000);
        _exit(5);
    }
    c = poke(30, SIGUSR1);
    EXPECT_ERR("wait_eintr_without_restart", waitpid(sleeper, &st, 0), EINTR);
    waitpid(c, NULL, 0);
    waitpid(sleeper, NULL, 0);
    signal(SIGUSR2, SIG_IGN);
    c = poke(30, SIGUSR2);
    struct timespec t2 = {0, 100000000};
    EXPECT_EQ("ignored_signal_no_eintr", nanosleep(&t2, NULL), 0);
    waitpid(c, NULL, 0);
    sigset_t bl;
    sigemptyset(&bl);
    sigaddset(&bl, SIGUSR1);
    sigprocmask(SIG_BLOCK, &bl, NULL);
    c = poke(30, SIGUSR1);
    struct timespec t3 = {0, 100000000};
    EXPECT_EQ("blocked_signal_no_eintr", nanosleep(&t3, NULL), 0);
    waitpid(c, NULL, 0);
    int before = hits;
    sigprocmask(SIG_UNBLOCK, &bl, NULL);
    CHECK("blocked_signal_delivered_later", hits == before + 1);
    return DONE();
}
