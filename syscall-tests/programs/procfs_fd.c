/* /proc/self/fd, fdinfo, maps, limits, task. */
/* syscalls: */
#include "common.h"
#include <dirent.h>
#include <pthread.h>

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
    return DONE();
}
