/* prctl: name, pdeathsig, dumpable, no_new_privs, seccomp mode, timerslack. */
/* syscalls: prctl seccomp */
#include "common.h"
#include <sys/prctl.h>
#include <linux/seccomp.h>

int main(void) {
    char name[32] = {0};
    EXPECT_OK("set_name", prctl(PR_SET_NAME, "bw-test-name"));
    EXPECT_OK("get_name", prctl(PR_GET_NAME, name));
    CHECK("name_round_trip", !strcmp(name, "bw-test-name"));
    prctl(PR_SET_NAME, "a-very-long-thread-name-indeed");
    prctl(PR_GET_NAME, name);
    CHECK("name_truncated_15", strlen(name) == 15 && !strncmp(name, "a-very-long-thr", 15));
    char buf[64];
    CHECK("name_in_proc_comm", get_file("/proc/self/comm", buf, sizeof buf) > 0 && !strncmp(buf, "a-very-long-thr\n", 16));
    EXPECT_ERR("set_name_efault", prctl(PR_SET_NAME, BADPTR), EFAULT);
    EXPECT_OK("set_pdeathsig", prctl(PR_SET_PDEATHSIG, SIGUSR1));
    int sig = 0;
    CHECK("get_pdeathsig", prctl(PR_GET_PDEATHSIG, &sig) == 0 && sig == SIGUSR1);
    EXPECT_ERR("set_pdeathsig_bad", prctl(PR_SET_PDEATHSIG, 200), EINVAL);
    prctl(PR_SET_PDEATHSIG, 0);
    EXPECT_EQ("get_dumpable", prctl(PR_GET_DUMPABLE), 1);
    EXPECT_OK("set_dumpable_0", prctl(PR_SET_DUMPABLE, 0));
    EXPECT_EQ("get_dumpable_0", prctl(PR_GET_DUMPABLE), 0);
    EXPECT_ERR("set_dumpable_2", prctl(PR_SET_DUMPABLE, 2), EINVAL);
    prctl(PR_SET_DUMPABLE, 1);
    EXPECT_EQ("no_new_privs_initially_0", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 1 : 0);
    EXPECT_ERR("set_no_new_privs_bad_arg", prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0), EINVAL);
    EXPECT_OK("set_no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    EXPECT_EQ("get_no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1);
    EXPECT_ERR("no_new_privs_extra_args", prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0), EINVAL);
    EXPECT_EQ("get_seccomp_disabled", prctl(PR_GET_SECCOMP), 0);
    EXPECT_ERR("bad_option", prctl(0x7fff0000), EINVAL);
    EXPECT_OK("set_timerslack", prctl(PR_SET_TIMERSLACK, 100000));
    EXPECT_EQ("get_timerslack", prctl(PR_GET_TIMERSLACK), 100000);
    EXPECT_EQ("get_keepcaps", prctl(PR_GET_KEEPCAPS), 0);
    pid_t c = fork();
    if (c == 0) {
        _exit(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("no_new_privs_inherited", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
        write(1, "", 0);
        getpid();
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("seccomp_strict_kills_on_getpid", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    return DONE();
}
