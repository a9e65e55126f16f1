/* Process groups and sessions. */
/* syscalls: setpgid getpgid getpgrp setsid getsid kill */
#include "common.h"

int main(void) {
    pid_t me = getpid();
    EXPECT_EQ("getpgid_zero_is_self_group", getpgid(0), getpgrp());
    EXPECT_EQ("getpgid_self", getpgid(me), getpgrp());
    EXPECT_ERR("getpgid_esrch", getpgid(0x3ffffff0), ESRCH);
    EXPECT_EQ("getsid_zero", getsid(0), getsid(me));
    EXPECT_ERR("getsid_esrch", getsid(0x3ffffff0), ESRCH);
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        char r[6];
        r[0] = setpgid(0, 0) == 0 ? '1' : '0';
        r[1] = getpgrp() == getpid() ? '1' : '0';
        pid_t s = setsid();
        r[2] = s == -1 && errno == EPERM ? '1' : '0';
        r[3] = '1';
        r[4] = '1';
        r[5] = '1';
        write(p[1], r, 6);
        _exit(0);
    }
    char r[6] = {0};
    read(p[0], r, 6);
    waitpid(c, NULL, 0);
    CHECK("setpgid_self_new_group", r[0] == '1');
    CHECK("getpgrp_after_setpgid", r[1] == '1');
    CHECK("setsid_group_leader_eperm", r[2] == '1');
    c = fork();
    if (c == 0) {
        pid_t s = setsid();
        char q[3];
        q[0] = s == getpid() ? '1' : '0';
        q[1] = getsid(0) == getpid() && getpgrp() == getpid() ? '1' : '0';
        q[2] = open("/dev/tty", O_RDWR) == -1 && errno == ENXIO ? '1' : '0';
        write(p[1], q, 3);
        _exit(0);
    }
    read(p[0], r, 3);
    waitpid(c, NULL, 0);
    CHECK("setsid_returns_sid", r[0] == '1');
    CHECK("setsid_new_session_and_group", r[1] == '1');
    CHECK("setsid_no_controlling_tty", r[2] == '1');
    c = fork();
    if (c == 0) {
        pause();
        _exit(0);
    }
    EXPECT_OK("setpgid_child", setpgid(c, c));
    EXPECT_EQ("getpgid_child", getpgid(c), c);
    EXPECT_OK("setpgid_child_back", setpgid(c, getpgrp()));
    EXPECT_ERR("setpgid_negative", setpgid(c, -1), EINVAL);
    EXPECT_ERR("setpgid_nonexistent_group", setpgid(c, 0x3ffffff0), EPERM);
    {
        /* A sibling is neither the caller nor its child (PID 1 would be the caller itself
         * when the test runs as a sandbox's first process). */
        pid_t sib = fork();
        if (sib == 0) { pause(); _exit(0); }
        pid_t asker = fork();
        if (asker == 0) _exit(setpgid(sib, 0) == -1 && errno == ESRCH ? 0 : 1);
        int ast;
        waitpid(asker, &ast, 0);
        kill(sib, SIGKILL);
        waitpid(sib, NULL, 0);
        CHECK("setpgid_not_child", WIFEXITED(ast) && WEXITSTATUS(ast) == 0);
    }
    setpgid(c, c);
    EXPECT_OK("kill_process_group", kill(-c, SIGTERM));
    int st;
    waitpid(c, &st, 0);
    CHECK("group_member_killed", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    c = fork();
    if (c == 0) {
        char *args[] = {"/proc/self/exe", NULL};
        char *env[] = {NULL};
        (void)args;
        (void)env;
        pause();
        _exit(0);
    }
    EXPECT_ERR("killpg_esrch", kill(-0x3ffffff0, SIGTERM), ESRCH);
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    return DONE();
}
