/* Zombies, reparenting and the child subreaper. */
/* syscalls: wait4 prctl */
#include "common.h"
#include <sys/prctl.h>

static char state_of(pid_t p) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", p);
    if (get_file(path, buf, sizeof buf) <= 0) return '?';
    char *rp = strrchr(buf, ')');
    return rp ? rp[2] : '?';
}

static int cases(void) {
    pid_t c = fork();
    if (c == 0) _exit(0);
    usleep(50000);
    CHECK("zombie_state_z", state_of(c) == 'Z');
    CHECK("zombie_kill_ok", kill(c, 0) == 0);
    waitpid(c, NULL, 0);
    CHECK("reaped_gone", kill(c, 0) == -1 && errno == ESRCH);
    EXPECT_OK("set_child_subreaper", prctl(PR_SET_CHILD_SUBREAPER, 1));
    int v = 0;
    CHECK("get_child_subreaper", prctl(PR_GET_CHILD_SUBREAPER, &v) == 0 && v == 1);
    int p[2];
    pipe(p);
    c = fork();
    if (c == 0) {
        pid_t g = fork();
        if (g == 0) {
            usleep(100000);
            pid_t pp = getppid();
            write(p[1], &pp, sizeof pp);
            _exit(0);
        }
        _exit(0);
    }
    waitpid(c, NULL, 0);
    pid_t newparent = 0;
    read(p[0], &newparent, sizeof newparent);
    CHECK("orphan_reparented_to_subreaper", newparent == getpid());
    int st;
    pid_t g = wait(&st);
    CHECK("subreaper_reaps_grandchild", g > 0 && WIFEXITED(st));
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    c = fork();
    if (c == 0) {
        pid_t gg = fork();
        if (gg == 0) {
            usleep(100000);
            pid_t pp = getppid();
            write(p[1], &pp, sizeof pp);
            _exit(0);
        }
        _exit(0);
    }
    waitpid(c, NULL, 0);
    read(p[0], &newparent, sizeof newparent);
    CHECK("orphan_reparented_away", newparent != c && newparent != getpid());
    EXPECT_ERR("no_grandchild_to_wait", wait(&st), ECHILD);
    signal(SIGCHLD, SIG_IGN);
    c = fork();
    if (c == 0) _exit(0);
    usleep(50000);
    EXPECT_ERR("sigchld_ignored_autoreap", waitpid(c, &st, 0), ECHILD);
    signal(SIGCHLD, SIG_DFL);
    struct sigaction sa = {.sa_handler = SIG_DFL, .sa_flags = SA_NOCLDWAIT};
    sigaction(SIGCHLD, &sa, NULL);
    c = fork();
    if (c == 0) _exit(0);
    EXPECT_ERR("sa_nocldwait_autoreap", waitpid(c, &st, 0), ECHILD);
    return DONE();
}

int main(void) {
    if (getpid() == 1) {
        /* The first process of a sandbox is its init, which orphans are reparented to:
         * run the cases in a child, as they run natively, and reap what reaches init. */
        pid_t body = fork();
        if (body == 0) return cases();
        int st;
        pid_t w;
        while ((w = wait(&st)) != body)
            if (w < 0) return 99;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    return cases();
}
