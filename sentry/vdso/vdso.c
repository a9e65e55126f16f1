/* Bulwark's vDSO: clock_gettime, gettimeofday, time and getcpu without leaving the
 * application, from parameters the Sentry publishes on the page just below this image.
 * Built by sentry/build.rs; no libc. When the parameters are not valid (a platform whose
 * TSC the Sentry cannot vouch for), every call falls back to the real syscall. */
#include <stdint.h>

struct timespec_k { int64_t tv_sec; int64_t tv_nsec; };
struct timeval_k { int64_t tv_sec; int64_t tv_usec; };

/* Must match sentry/src/vdso.rs (VvarParams). */
struct vvar {
    volatile uint32_t seq;   /* odd while the Sentry updates */
    uint32_t valid;          /* 0: use the syscall */
    uint64_t tsc_base;
    int64_t mono_base_ns;
    int64_t real_base_ns;
    uint64_t mult;           /* ns = (tsc delta * mult) >> shift */
    uint32_t shift;
    uint32_t cpu;
};

extern const struct vvar bulwark_vvar __attribute__((visibility("hidden")));

static inline long sys2(long nr, long a, long b) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return r;
}

static inline long sys3(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

/* Nanoseconds on the monotonic (realtime = 0) or realtime clock; -1 to fall back. */
static int64_t now_ns(int realtime) {
    const volatile struct vvar *v = &bulwark_vvar;
    for (;;) {
        uint32_t seq = v->seq;
        __asm__ volatile("" ::: "memory");
        if (seq & 1) continue;
        if (!v->valid) return -1;
        uint64_t delta = rdtsc() - v->tsc_base;
        unsigned __int128 scaled = (unsigned __int128)delta * v->mult;
        int64_t base = realtime ? v->real_base_ns : v->mono_base_ns;
        int64_t ns = base + (int64_t)(scaled >> v->shift);
        __asm__ volatile("" ::: "memory");
        if (v->seq == seq) return ns;
    }
}

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define CLOCK_TAI 11

int __vdso_clock_gettime(int clock, struct timespec_k *ts) {
    int realtime;
    switch (clock) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: case CLOCK_TAI: realtime = 1; break;
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME: realtime = 0; break;
    default: return (int)sys2(228, clock, (long)ts);
    }
    int64_t ns = now_ns(realtime);
    if (ns < 0) return (int)sys2(228, clock, (long)ts);
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
    return 0;
}

int __vdso_gettimeofday(struct timeval_k *tv, void *tz) {
    if (tz) return (int)sys2(96, (long)tv, (long)tz);
    int64_t ns = now_ns(1);
    if (ns < 0) return (int)sys2(96, (long)tv, 0);
    if (tv) {
        tv->tv_sec = ns / 1000000000;
        tv->tv_usec = (ns % 1000000000) / 1000;
    }
    return 0;
}

long __vdso_time(long *t) {
    int64_t ns = now_ns(1);
    if (ns < 0) return sys2(201, (long)t, 0);
    long s = ns / 1000000000;
    if (t) *t = s;
    return s;
}

int __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused) {
    (void)unused;
    if (!bulwark_vvar.valid) return (int)sys3(309, (long)cpu, (long)node, 0);
    if (cpu) *cpu = bulwark_vvar.cpu;
    if (node) *node = 0;
    return 0;
}

int __vdso_clock_getres(int clock, struct timespec_k *res) {
    return (int)sys2(229, clock, (long)res);
}

int clock_gettime(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval_k *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
int clock_getres(int, struct timespec_k *) __attribute__((weak, alias("__vdso_clock_getres")));
