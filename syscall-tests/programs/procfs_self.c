/* /proc/self: links, cmdline, environ, stat, status, statm, comm. */
/* syscalls: */
#include "common.h"

int main(int argc, char **argv) {
    (void)argc;
    char buf[8192], path[PATH_MAX];
    long n = readlink("/proc/self", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    CHECK("proc_self_link_is_pid", n > 0 && atoi(buf) == getpid());
    n = readlink("/proc/self/exe", path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    struct stat a, b;
    CHECK("proc_self_exe", n > 0 && stat(path, &a) == 0 && stat("/proc/self/exe", &b) == 0 && a.st_ino == b.st_ino);
    char cwd[PATH_MAX];
    getcwd(cwd, sizeof cwd);
    n = readlink("/proc/self/cwd", path, sizeof path - 1);
    path[n > 0 ? n : 0] = 0;
    CHECK("proc_self_cwd", n > 0 && !strcmp(path, cwd));
    n = readlink("/proc/self/root", path, sizeof path - 1);
    CHECK("proc_self_root", n == 1 && path[0] == '/');
    n = get_file("/proc/self/cmdline", buf, sizeof buf);
    CHECK("proc_cmdline_argv0", n > 0 && !strcmp(buf, argv[0]));
    CHECK("proc_cmdline_nul_terminated", n == (long)strlen(argv[0]) + 1);
    setenv("BWST_MARK", "1", 1);
    n = get_file("/proc/self/environ", buf, sizeof buf);
    CHECK("proc_environ_readable", n >= 0);
    n = get_file("/proc/self/stat", buf, sizeof buf);
    int pid = 0;
    char state = 0;
    int ppid = 0;
    char *rp = strrchr(buf, ')');
    CHECK("proc_stat_format", n > 0 && sscanf(buf, "%d", &pid) == 1 && rp && sscanf(rp + 2, "%c %d", &state, &ppid) == 2);
    CHECK("proc_stat_pid", pid == getpid());
    CHECK("proc_stat_state_running", state == 'R');
    CHECK("proc_stat_ppid", ppid == getppid());
    n = get_file("/proc/self/status", buf, sizeof buf);
    char *pl = strstr(buf, "\nPid:\t");
    CHECK("proc_status_pid", pl && atoi(pl + 6) == getpid());
    char *pp = strstr(buf, "\nPPid:\t");
    CHECK("proc_status_ppid", pp && atoi(pp + 7) == getppid());
    CHECK("proc_status_name_first", !strncmp(buf, "Name:\t", 6));
    CHECK("proc_status_uid", strstr(buf, "\nUid:\t") != NULL);
    CHECK("proc_status_vmrss", strstr(buf, "\nVmRSS:") != NULL);
    CHECK("proc_status_threads", strstr(buf, "\nThreads:\t1\n") != NULL);
    CHECK("proc_status_sigmasks", strstr(buf, "\nSigBlk:\t") && strstr(buf, "\nSigCgt:\t"));
    long size = 0, res = 0;
    n = get_file("/proc/self/statm", buf, sizeof buf);
    CHECK("proc_statm", n > 0 && sscanf(buf, "%ld %ld", &size, &res) == 2 && size >= res && res > 0);
    n = get_file("/proc/self/comm", buf, sizeof buf);
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    size_t bl = strlen(base) < 15 ? strlen(base) : 15;
    CHECK("proc_comm", n == (long)bl + 1 && !strncmp(buf, base, bl) && buf[n - 1] == '\n');
    int fd = open("/proc/self/comm", O_WRONLY);
    CHECK("proc_comm_write", fd >= 0 && write(fd, "renamed", 7) == 7);
    close(fd);
    get_file("/proc/self/comm", buf, sizeof buf);
    CHECK("proc_comm_renamed", !strcmp(buf, "renamed\n"));
    snprintf(path, sizeof path, "/proc/%d/stat", getpid());
    CHECK("proc_pid_dir", access(path, R_OK) == 0);
    CHECK("proc_nonexistent_pid", access("/proc/1073741823", F_OK) == -1 && errno == ENOENT);
    n = readlink("/proc/thread-self", buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    char want[64];
    snprintf(want, sizeof want, "%d/task/%d", getpid(), gettid());
    CHECK("proc_thread_self", !strcmp(buf, want));
    return DONE();
}
