/* Shared helpers for the syscall compatibility programs.
 *
 * Each program runs a list of cases and prints one line per case:
 *   ok <case>
 *   FAIL <case>: <detail>
 *   skip <case>: <reason>
 * and exits 1 if any case failed. Case names have no spaces. The runner
 * (syscall-tests/tests/suite.rs) parses these lines natively and under Bulwark.
 */
#ifndef SYSCALL_TESTS_COMMON_H
#define SYSCALL_TESTS_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int t_failures;
static char t_scratch[64];

/* An address that is never mapped (the first page). */
#define BADPTR ((void *)8)

static const char *t_errname(int e) {
    if (e == 0) return "0";
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

static void t_ok(const char *name) {
    printf("ok %s\n", name);
    fflush(stdout);
}

__attribute__((format(printf, 2, 3))) static void t_fail(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    t_failures++;
}

__attribute__((format(printf, 2, 3))) static void t_skip(const char *name, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("skip %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

/* The condition holds. */
#define CHECK(name, cond)                                                                  \
    do {                                                                                   \
        errno = 0;                                                                         \
        if (cond)                                                                          \
            t_ok(name);                                                                    \
        else                                                                               \
            t_fail(name, "%s is false (errno %s)", #cond, t_errname(errno));               \
    } while (0)

/* The call fails with -1 and errno `err`. */
#define EXPECT_ERR(name, expr, err)                                                        \
    do {                                                                                   \
        errno = 0;                                                                         \
        long _r = (long)(expr);                                                            \
        int _e = errno;                                                                    \
        if (_r == -1 && _e == (err))                                                       \
            t_ok(name);                                                                    \
        else                                                                               \
            t_fail(name, "%s = %ld (errno %s), want -1 %s", #expr, _r, t_errname(_e),      \
                   t_errname(err));                                                        \
    } while (0)

/* The call returns `want` exactly. */
#define EXPECT_EQ(name, expr, want)                                                        \
    do {                                                                                   \
        errno = 0;                                                                         \
        long _r = (long)(expr);                                                            \
        int _e = errno;                                                                    \
        long _w = (long)(want);                                                            \
        if (_r == _w)                                                                      \
            t_ok(name);                                                                    \
        else                                                                               \
            t_fail(name, "%s = %ld (errno %s), want %ld", #expr, _r, t_errname(_e), _w);   \
    } while (0)

/* The call does not fail (returns anything but -1). */
#define EXPECT_OK(name, expr)                                                              \
    do {                                                                                   \
        errno = 0;                                                                         \
        long _r = (long)(expr);                                                            \
        int _e = errno;                                                                    \
        if (_r != -1)                                                                      \
            t_ok(name);                                                                    \
        else                                                                               \
            t_fail(name, "%s failed: %s", #expr, t_errname(_e));                           \
    } while (0)

/* Raw syscalls, so glibc wrappers do not hide the kernel's answer. */
#define RAW(...) syscall(__VA_ARGS__)

static int t_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void t_cleanup(void) {
    if (t_scratch[0]) {
        if (chdir("/") == 0) nftw(t_scratch, t_rm, 16, FTW_DEPTH | FTW_PHYS);
        t_scratch[0] = 0;
    }
}

/* Makes a fresh scratch directory under /tmp, enters it, and removes it at exit.
 * Returns 0 or -1 (then the file cases fail on their own). */
static int scratch(void) {
    strcpy(t_scratch, "/tmp/bwst-XXXXXX");
    if (!mkdtemp(t_scratch)) {
        t_scratch[0] = 0;
        return -1;
    }
    atexit(t_cleanup);
    return chdir(t_scratch);
}

/* Writes `s` to a new file `path` (mode 0644). */
static int put_file(const char *path, const char *s) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    ssize_t n = write(fd, s, strlen(s));
    close(fd);
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Reads up to size-1 bytes of `path` into buf, NUL-terminated; returns the length. */
static ssize_t get_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off + 1 < size) {
        ssize_t n = read(fd, buf + off, size - 1 - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    buf[off] = 0;
    close(fd);
    return (ssize_t)off;
}

/* Whether /proc/sysvipc/NAME has the header `header` and a row whose first two
 * columns are `key` and `id`, and whose fourth is `fourth`. */
static int sysvipc_row(const char *name, const char *header, int key, int id,
                       unsigned long fourth) {
    static char table[65536];
    char path[64];
    snprintf(path, sizeof path, "/proc/sysvipc/%s", name);
    if (get_file(path, table, sizeof table) <= 0) return 0;
    if (strncmp(table, header, strlen(header)) != 0) return 0;
    for (char *line = strchr(table, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        int k, i;
        unsigned mode;
        unsigned long v;
        if (sscanf(line + 1, "%d %d %o %lu", &k, &i, &mode, &v) == 4 && k == key && i == id &&
            v == fourth)
            return 1;
    }
    return 0;
}

static void t_noop(int sig) { (void)sig; }

/* Arms SIGALRM after `secs` with a handler that only interrupts: a case that would block
 * forever gets EINTR instead, and the program goes on to its next case. Returns 0, or -1
 * when the kernel refused (then the caller must not block). */
static int arm_timeout(unsigned secs) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = t_noop;
    if (sigaction(SIGALRM, &sa, NULL) != 0) return -1;
    return RAW(SYS_alarm, secs) == -1 ? -1 : 0;
}

/* Prefix for a case that blocks: runs it bounded by SIGALRM, or fails it without running
 * it when no timeout can be armed. Usage: BOUNDED("name", 5) CHECK("name", ...); */
#define BOUNDED(name, secs)                                                                \
    if (arm_timeout(secs) != 0)                                                            \
        t_fail(name, "cannot arm SIGALRM to bound a blocking call (errno %s)",             \
               t_errname(errno));                                                          \
    else

/* Runs fn in a forked child; returns the child's wait status (or -1). */
static int in_child(int (*fn)(void)) {
    pid_t p = fork();
    if (p < 0) return -1;
    if (p == 0) _exit(fn());
    int st;
    if (waitpid(p, &st, 0) != p) return -1;
    return st;
}

/* The program's exit status: 1 if any case failed. */
#define DONE() (fflush(stdout), t_failures ? 1 : 0)

#endif
