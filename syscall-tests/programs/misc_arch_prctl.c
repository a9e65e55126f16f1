/* arch_prctl: FS/GS base; TLS survives context switches and signals. */
/* syscalls: arch_prctl */
#include "common.h"
#include <asm/prctl.h>
#include <pthread.h>

static __thread int tls_value = 7;
static void *thr(void *a) { tls_value = 99; return a; }
static volatile int in_handler_tls;
static void h(int s) { (void)s; in_handler_tls = tls_value; }

int main(void) {
    unsigned long fs = 0, gs = 0;
    EXPECT_OK("get_fs", RAW(SYS_arch_prctl, ARCH_GET_FS, &fs));
    CHECK("fs_nonzero_for_tls", fs != 0);
    unsigned long self;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
    CHECK("fs_points_at_tcb", self == fs);
    EXPECT_OK("get_gs", RAW(SYS_arch_prctl, ARCH_GET_GS, &gs));
    static unsigned long area[4] = {0x1122334455667788ul, 2, 3, 4};
    EXPECT_OK("set_gs", RAW(SYS_arch_prctl, ARCH_SET_GS, area));
    unsigned long v;
    __asm__ volatile("mov %%gs:0, %0" : "=r"(v));
    CHECK("gs_read_through_segment", v == 0x1122334455667788ul);
    RAW(SYS_arch_prctl, ARCH_GET_GS, &gs);
    CHECK("get_gs_after_set", gs == (unsigned long)area);
    sched_yield();
    usleep(1000);
    __asm__ volatile("mov %%gs:8, %0" : "=r"(v));
    CHECK("gs_survives_sleep", v == 2);
    EXPECT_ERR("bad_code", RAW(SYS_arch_prctl, 0x9999, 0), EINVAL);
    EXPECT_ERR("set_fs_noncanonical", RAW(SYS_arch_prctl, ARCH_SET_FS, 0x8000000000000000ul), EPERM);
    EXPECT_ERR("get_fs_efault", RAW(SYS_arch_prctl, ARCH_GET_FS, BADPTR), EFAULT);
    pthread_t t;
    pthread_create(&t, NULL, thr, NULL);
    pthread_join(t, NULL);
    CHECK("tls_per_thread", tls_value == 7);
    signal(SIGUSR1, h);
    raise(SIGUSR1);
    CHECK("tls_in_signal_handler", in_handler_tls == 7);
    pid_t c = fork();
    if (c == 0) {
        unsigned long g2;
        __asm__ volatile("mov %%gs:0, %0" : "=r"(g2));
        _exit(g2 == 0x1122334455667788ul && tls_value == 7 ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("fs_gs_inherited_by_fork", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    long cpuid_ok = RAW(SYS_arch_prctl, 0x1011 /* ARCH_GET_CPUID */, 0);
    CHECK("get_cpuid_enabled", cpuid_ok == 1);
    return DONE();
}
