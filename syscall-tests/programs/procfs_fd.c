/* /proc/self/fd, fdinfo, maps, limits, task. */
/* syscalls: */
#include "common.h"
#include <dirent.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static void *idle(void *a) { pause(); return a; }

int main(void) {
    scratch();
    char buf[16384], path[PATH_MAX], want[PATH_MAX + 64];
    put_file("f", "x");
    int fd = open("f", O_RDONLY);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    long n = readlink(path, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    char cwd[PATH_MAX];
    getcwd(cwd, sizeof cwd);
    snprintf(want, sizeof want, "%s/f", cwd);
    CHECK("proc_fd_link", !strcmp(buf, want));
    int p[2];
    pipe(p);
    snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
    n = readlink(path, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK("proc_fd_pipe_link", !strncmp(buf, "pipe:[", 6));
    int reopen = open(path, O_WRONLY | O_NONBLOCK);
    CHECK("proc_fd_reopen_pipe", reopen >= 0 && write(reopen, "r", 1) == 1);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int again = open(path, O_RDONLY);
    CHECK("proc_fd_reopen_file", again >= 0 && read(again, buf, 1) == 1 && buf[0] == 'x');
    DIR *d = opendir("/proc/self/fd");
    int count = 0, found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        count++;
        if (atoi(e->d_name) == fd) found = 1;
    }
    closedir(d);
    CHECK("proc_fd_listing", found && count >= 5);
    unlink("f");
    n = readlink(path, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK("proc_fd_deleted_suffix", strstr(buf, " (deleted)") != NULL);
    lseek(fd, 1, SEEK_SET);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    n = get_file(path, buf, sizeof buf);
    CHECK("proc_fdinfo_pos", n > 0 && strstr(buf, "pos:\t1\n"));
    CHECK("proc_fdinfo_flags", strstr(buf, "flags:\t") != NULL);
    EXPECT_ERR("proc_fd_missing", readlink("/proc/self/fd/999", buf, sizeof buf), ENOENT);
    char *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    n = get_file("/proc/self/maps", buf, sizeof buf);
    snprintf(want, sizeof want, "%lx-%lx r--p", (unsigned long)m, (unsigned long)m + 4096);
    CHECK("proc_maps_anon_entry", n > 0 && strstr(buf, want));
    CHECK("proc_maps_stack", strstr(buf, "[stack]") != NULL);
    CHECK("proc_maps_exe", strstr(buf, "r-xp") != NULL);
    n = get_file("/proc/self/limits", buf, sizeof buf);
    CHECK("proc_limits", n > 0 && strstr(buf, "Max open files") && strstr(buf, "Limit"));
    pthread_t t;
    pthread_create(&t, NULL, idle, NULL);
    usleep(20000);
    d = opendir("/proc/self/task");
    count = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') count++;
    closedir(d);
    CHECK("proc_task_two_threads", count == 2);
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", gettid());
    CHECK("proc_task_tid_stat", get_file(path, buf, sizeof buf) > 0 && atoi(buf) == gettid());
    n = get_file("/proc/self/status", buf, sizeof buf);
    CHECK("proc_status_threads_2", strstr(buf, "\nThreads:\t2\n") != NULL);
    n = get_file("/proc/self/mounts", buf, sizeof buf);
    CHECK("proc_mounts", n > 0 && strstr(buf, " / ") && strstr(buf, "proc"));
    n = get_file("/proc/self/mountinfo", buf, sizeof buf);
    CHECK("proc_mountinfo", n > 0 && strstr(buf, " / / "));
    /* The per-type lines of fdinfo: a signalfd's mask, a pidfd's process, an epoll's
     * entries. */
    {
        char info[1024], fdp[64];
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        sigaddset(&set, SIGRTMIN + 2);
        int sfd = signalfd(-1, &set, 0);
        snprintf(fdp, sizeof fdp, "/proc/self/fdinfo/%d", sfd);
        get_file(fdp, info, sizeof info);
        char line[64];
        snprintf(line, sizeof line, "\nsigmask:\t%016llx\n",
                 (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGRTMIN + 2 - 1)));
        CHECK("fdinfo_signalfd_sigmask", strstr(info, line) != NULL);
        close(sfd);

        int pfd = syscall(SYS_pidfd_open, getpid(), 0);
        snprintf(fdp, sizeof fdp, "/proc/self/fdinfo/%d", pfd);
        get_file(fdp, info, sizeof info);
        snprintf(line, sizeof line, "\nPid:\t%d\nNSpid:\t%d\n", getpid(), getpid());
        CHECK("fdinfo_pidfd_pid", strstr(info, line) != NULL);
        close(pfd);
        /* A reaped child's pidfd shows -1. */
        pid_t child = fork();
        if (child == 0) _exit(0);
        pfd = syscall(SYS_pidfd_open, child, 0);
        waitpid(child, NULL, 0);
        snprintf(fdp, sizeof fdp, "/proc/self/fdinfo/%d", pfd);
        get_file(fdp, info, sizeof info);
        CHECK("fdinfo_pidfd_reaped", strstr(info, "\nPid:\t-1\n") != NULL);
        close(pfd);

        int pp[2];
        pipe(pp);
        int ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 0x1234};
        epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev);
        snprintf(fdp, sizeof fdp, "/proc/self/fdinfo/%d", ep);
        get_file(fdp, info, sizeof info);
        char *t = strstr(info, "tfd:");
        int tfd = -1;
        unsigned events = 0;
        unsigned long long data = 0;
        CHECK("fdinfo_epoll_entry", t && sscanf(t, "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3 &&
                                       tfd == pp[0] && events == (EPOLLIN | EPOLLET | EPOLLERR | EPOLLHUP) && data == 0x1234);
        struct stat pst;
        fstat(pp[0], &pst);
        unsigned long ino = 0;
        char *i = t ? strstr(t, "ino:") : NULL;
        CHECK("fdinfo_epoll_target_ino", i && sscanf(i, "ino:%lx", &ino) == 1 && ino == pst.st_ino);
        close(ep);
        close(pp[0]);
        close(pp[1]);
        /* A timerfd: clock, unread expirations, settime flags, time left, interval. */
        int tf = timerfd_create(CLOCK_MONOTONIC, 0);
        struct itimerspec its = {.it_value = {100, 0}, .it_interval = {1, 500000000}};
        timerfd_settime(tf, 0, &its, NULL);
        snprintf(fdp, sizeof fdp, "/proc/self/fdinfo/%d", tf);
        get_file(fdp, info, sizeof info);
        long long vs = -1, vn = -1;
        char *v = strstr(info, "it_value: (");
        CHECK("fdinfo_timerfd_lines", strstr(info, "\nclockid: 1\nticks: 0\nsettime flags: 00\n") &&
                                         strstr(info, "\nit_interval: (1, 500000000)\n"));
        CHECK("fdinfo_timerfd_value", v && sscanf(v, "it_value: (%lld, %lld)", &vs, &vn) == 2 && vs >= 98 && vs < 100);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct itimerspec abs = {.it_value = {now.tv_sec, now.tv_nsec + 1 > 999999999 ? 0 : now.tv_nsec + 1}};
        timerfd_settime(tf, TFD_TIMER_ABSTIME, &abs, NULL);
        usleep(20000);
        get_file(fdp, info, sizeof info);
        CHECK("fdinfo_timerfd_abstime_ticks", strstr(info, "\nticks: 1\nsettime flags: 01\nit_value: (0, 0)\n") != NULL);
        close(tf);

        /* A regular file cannot be watched. */
        ep = epoll_create1(0);
        put_file("epoll-regular", "y");
        int rf = open("epoll-regular", O_RDONLY);
        ev.events = EPOLLIN;
        EXPECT_ERR("epoll_regular_file_eperm", epoll_ctl(ep, EPOLL_CTL_ADD, rf, &ev), EPERM);
        close(rf);
        close(ep);
    }
    return DONE();
}
