/* getrlimit/setrlimit/prlimit64 and their effects. */
/* syscalls: getrlimit setrlimit prlimit64 getrusage getpriority */
#include "common.h"
#include <sys/resource.h>

int main(void) {
    struct rlimit rl, orig;
    EXPECT_OK("getrlimit_nofile", getrlimit(RLIMIT_NOFILE, &orig));
    CHECK("nofile_soft_le_hard", orig.rlim_cur <= orig.rlim_max);
    EXPECT_ERR("getrlimit_bad_resource", getrlimit(99, &rl), EINVAL);
    EXPECT_ERR("getrlimit_efault", RAW(SYS_getrlimit, RLIMIT_NOFILE, BADPTR), EFAULT);
    rl = (struct rlimit){64, orig.rlim_max};
    EXPECT_OK("setrlimit_nofile_lower", setrlimit(RLIMIT_NOFILE, &rl));
    int fds[80], n = 0, last_err = 0;
    for (int i = 0; i < 80; i++) {
        fds[i] = open("/dev/null", O_RDONLY);
        if (fds[i] < 0) { last_err = errno; break; }
        n++;
    }
    CHECK("nofile_limit_enforced_emfile", last_err == EMFILE && n < 64);
    for (int i = 0; i < n; i++) close(fds[i]);
    EXPECT_ERR("dup2_beyond_nofile", dup2(0, 100), EBADF);
    rl = (struct rlimit){orig.rlim_max + 1 > orig.rlim_max ? orig.rlim_max : orig.rlim_max, orig.rlim_max};
    struct rlimit inverted = {10, 5};
    EXPECT_ERR("setrlimit_soft_above_hard", setrlimit(RLIMIT_NOFILE, &inverted), EINVAL);
    setrlimit(RLIMIT_NOFILE, &orig);
    struct rlimit old;
    EXPECT_OK("prlimit_get", prlimit(0, RLIMIT_STACK, NULL, &old));
    CHECK("stack_limit_nonzero", old.rlim_cur > 0);
    EXPECT_ERR("prlimit_esrch", prlimit(0x3ffffff0, RLIMIT_STACK, NULL, &old), ESRCH);
    struct rlimit fsz = {1000, RLIM_INFINITY};
    pid_t c = fork();
    if (c == 0) {
        signal(SIGXFSZ, SIG_IGN);
        setrlimit(RLIMIT_FSIZE, &fsz);
        char path[] = "/tmp/bwst-fsz-XXXXXX";
        int fd = mkstemp(path);
        unlink(path);
        char buf[2000] = {0};
        long w = write(fd, buf, sizeof buf);
        long w2 = write(fd, buf, 10);
        int e = errno;
        _exit(w == 1000 && w2 == -1 && e == EFBIG ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("fsize_limit_efbig", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        setrlimit(RLIMIT_FSIZE, &fsz);
        char path[] = "/tmp/bwst-fsz-XXXXXX";
        int fd = mkstemp(path);
        unlink(path);
        char buf[2000] = {0};
        write(fd, buf, 1000);
        write(fd, buf, 10);
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("fsize_limit_sigxfsz", WIFSIGNALED(st) && WTERMSIG(st) == SIGXFSZ);
    c = fork();
    if (c == 0) {
        struct rlimit as = {64 << 20, 64 << 20};
        setrlimit(RLIMIT_AS, &as);
        void *p = mmap(NULL, 128 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        _exit(p == MAP_FAILED && errno == ENOMEM ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("as_limit_enomem", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    c = fork();
    if (c == 0) {
        struct rlimit cpu = {1, 2};
        setrlimit(RLIMIT_CPU, &cpu);
        for (volatile long i = 0; i < 4000000000L; i++) {} /* bounded: the limit should stop it */
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("cpu_limit_sigxcpu", WIFSIGNALED(st) && WTERMSIG(st) == SIGXCPU);
    c = fork();
    if (c == 0) {
        struct rlimit cpu = {1, 1};
        setrlimit(RLIMIT_CPU, &cpu);
        for (volatile long i = 0; i < 4000000000L; i++) {} /* bounded: the limit should stop it */
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("cpu_hard_limit_sigkill", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    struct rusage ru;
    memset(&ru, 0, sizeof ru); /* so a failed getrusage cannot pass the check below */
    EXPECT_OK("getrusage_self", getrusage(RUSAGE_SELF, &ru));
    EXPECT_OK("getrusage_children", getrusage(RUSAGE_CHILDREN, &ru));
    CHECK("rusage_children_cpu", ru.ru_utime.tv_sec >= 1 || ru.ru_utime.tv_usec > 500000);
    EXPECT_ERR("getrusage_bad_who", getrusage(5, &ru), EINVAL);
    EXPECT_EQ("getpriority", (errno = 0, getpriority(PRIO_PROCESS, 0) == -1 && errno ? -1 : 0), 0);
    EXPECT_ERR("getpriority_bad_which", getpriority(9, 0), EINVAL);
    return DONE();
}
