/* sigaltstack and SA_ONSTACK. */
/* syscalls: sigaltstack */
#include "common.h"

static char *alt;
static volatile int on_alt;
static void h(int s) {
    (void)s;
    char local;
    on_alt = &local >= alt && &local < alt + 65536;
    stack_t cur;
    sigaltstack(NULL, &cur);
    if (!(cur.ss_flags & SS_ONSTACK)) on_alt = 0;
}

static volatile int depth;
static void overflow(int s) { (void)s; _exit(33); }
static int recurse(int n) { volatile char buf[1024]; buf[0] = (char)n; return n > 0 ? recurse(n + 1) + buf[0] : 0; }

int main(void) {
    stack_t ss, old;
    EXPECT_OK("sigaltstack_query", sigaltstack(NULL, &old));
    CHECK("sigaltstack_initially_disabled", old.ss_flags == SS_DISABLE);
    alt = malloc(65536);
    ss = (stack_t){.ss_sp = alt, .ss_size = 65536, .ss_flags = 0};
    EXPECT_OK("sigaltstack_set", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    CHECK("sigaltstack_readback", old.ss_sp == alt && old.ss_size == 65536 && old.ss_flags == 0);
    struct sigaction sa = {.sa_handler = h, .sa_flags = SA_ONSTACK};
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK("handler_on_altstack", on_alt == 1);
    sa.sa_flags = 0;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    CHECK("handler_without_onstack_on_main", on_alt == 0);
    stack_t small = {.ss_sp = alt, .ss_size = 100, .ss_flags = 0};
    EXPECT_ERR("sigaltstack_too_small", sigaltstack(&small, NULL), ENOMEM);
    stack_t badf = {.ss_sp = alt, .ss_size = 65536, .ss_flags = 0x7};
    EXPECT_ERR("sigaltstack_bad_flags", sigaltstack(&badf, NULL), EINVAL);
    EXPECT_ERR("sigaltstack_efault", RAW(SYS_sigaltstack, BADPTR, NULL), EFAULT);
    stack_t dis = {.ss_flags = SS_DISABLE};
    EXPECT_OK("sigaltstack_disable", sigaltstack(&dis, NULL));
    sigaltstack(NULL, &old);
    CHECK("sigaltstack_disabled", old.ss_flags == SS_DISABLE);
    int st;
    pid_t c = fork();
    if (c == 0) {
        stack_t s2 = {.ss_sp = malloc(65536), .ss_size = 65536};
        sigaltstack(&s2, NULL);
        struct sigaction ov = {.sa_handler = overflow, .sa_flags = SA_ONSTACK};
        sigaction(SIGSEGV, &ov, NULL);
        recurse(1);
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("stack_overflow_handled_on_altstack", WIFEXITED(st) && WEXITSTATUS(st) == 33);
    c = fork();
    if (c == 0) {
        recurse(1);
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("stack_overflow_default_segv", WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    ss = (stack_t){.ss_sp = alt, .ss_size = 65536};
    sigaltstack(&ss, NULL);
    c = fork();
    if (c == 0) {
        stack_t o;
        sigaltstack(NULL, &o);
        _exit(o.ss_sp == alt ? 0 : 1);
    }
    waitpid(c, &st, 0);
    CHECK("altstack_inherited_by_fork", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return DONE();
}
