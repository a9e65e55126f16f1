/* /proc/PID/stat beyond the IDs: the state of a sleeping thread, CPU times, the start
 * time, resident pages and the controlling terminal. */
/* syscalls:  */
#include "common.h"
#include <sys/ioctl.h>
#include <termios.h>

/* The fields of /proc/PID/stat after the command's name: fields[0] is field 3 (state). */
static int stat_fields(pid_t pid, char fields[][32], int max) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p += 2;
    int count = 0;
    for (char *tok = strtok(p, " \n"); tok && count < max; tok = strtok(NULL, " \n"))
        snprintf(fields[count++], 32, "%s", tok);
    return count;
}

/* Field number N (1-based, as proc(5) numbers them) of pid's stat. */
static long long field(pid_t pid, int n) {
    char f[64][32];
    if (stat_fields(pid, f, 64) < n - 2) return -999;
    return atoll(f[n - 3]);
}

static char state_of(pid_t pid) {
    char f[64][32];
    return stat_fields(pid, f, 64) > 0 ? f[0][0] : '?';
}

static double boottime(void) {
    struct timespec t;
    clock_gettime(CLOCK_BOOTTIME, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void burn(double seconds) {
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    volatile unsigned long x = 0;
    do {
        for (int i = 0; i < 100000; i++) x += i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    } while ((b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9 < seconds);
}

int main(void) {
    char f[64][32];
    EXPECT_EQ("stat_field_count", stat_fields(getpid(), f, 64), 50);
    CHECK("stat_self_running", state_of(getpid()) == 'R');

    /* A child blocked reading a pipe sleeps. */
    int p[2];
    pipe(p);
    pid_t child = fork();
    if (child == 0) {
        char c;
        read(p[0], &c, 1);
        _exit(0);
    }
    usleep(200000);
    char st = state_of(child);
    CHECK("stat_blocked_child_sleeps", st == 'S');
    write(p[1], "x", 1);
    waitpid(child, NULL, 0);

    /* CPU time: the process's own, then a waited-for child's. */
    burn(0.3);
    long long utime = field(getpid(), 14), stime = field(getpid(), 15);
    CHECK("stat_utime_counts", utime + stime >= 20 && utime + stime < 100000);
    child = fork();
    if (child == 0) {
        burn(0.3);
        _exit(0);
    }
    waitpid(child, NULL, 0);
    long long cutime = field(getpid(), 16), cstime = field(getpid(), 17);
    CHECK("stat_cutime_counts", cutime + cstime >= 20 && cutime + cstime < 100000);

    /* The start time, in ticks since boot: between the moments before and after fork. */
    double before = boottime();
    pipe(p);
    child = fork();
    if (child == 0) {
        char c;
        read(p[0], &c, 1);
        _exit(0);
    }
    double after = boottime();
    long long start = field(child, 22);
    CHECK("stat_starttime", start >= (long long)(before * 100) - 1 && start <= (long long)(after * 100) + 1);
    long long self_start = field(getpid(), 22);
    CHECK("stat_starttime_parent_earlier", self_start >= 0 && self_start <= start);
    write(p[1], "x", 1);
    waitpid(child, NULL, 0);

    /* Resident pages grow as memory is touched. */
    long long rss0 = field(getpid(), 24);
    size_t len = 16 << 20;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (size_t i = 0; i < len; i += 4096) m[i] = 1;
    long long rss1 = field(getpid(), 24);
    CHECK("stat_rss_nonzero", rss0 > 0);
    CHECK("stat_rss_grows", rss1 - rss0 >= (long long)(len / 4096) * 9 / 10);
    munmap(m, len);

    /* The controlling terminal: none after setsid, then a pty's slave, as
     * (major 136 << 8 | minor) with its foreground process group. */
    pipe(p);
    child = fork();
    if (child == 0) {
        close(p[0]);
        long long r[4];
        setsid();
        r[0] = field(getpid(), 7);
        r[1] = field(getpid(), 8);
        int master = posix_openpt(O_RDWR | O_NOCTTY);
        grantpt(master);
        unlockpt(master);
        int index = -1;
        ioctl(master, TIOCGPTN, &index);
        int slave = open(ptsname(master), O_RDWR);
        r[2] = slave >= 0 && field(getpid(), 7) == ((136 << 8) | (index & 0xff) | ((index & ~0xff) << 12));
        r[3] = field(getpid(), 8) == getpgrp();
        write(p[1], r, sizeof r);
        _exit(0);
    }
    close(p[1]);
    long long r[4] = {-5, -5, 0, 0};
    read(p[0], r, sizeof r);
    waitpid(child, NULL, 0);
    EXPECT_EQ("stat_no_tty_nr", r[0], 0);
    EXPECT_EQ("stat_no_tty_tpgid", r[1], -1);
    CHECK("stat_tty_nr_pts", r[2] == 1);
    CHECK("stat_tpgid_foreground", r[3] == 1);
    return DONE();
}
