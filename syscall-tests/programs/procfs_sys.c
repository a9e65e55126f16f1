/* System-wide /proc files programs read. */
/* syscalls: */
#include "common.h"
#include <dirent.h>

int main(void) {
    char buf[65536];
    long n = get_file("/proc/meminfo", buf, sizeof buf);
    CHECK("meminfo_memtotal", n > 0 && !strncmp(buf, "MemTotal:", 9));
    CHECK("meminfo_memavailable", strstr(buf, "\nMemAvailable:") != NULL);
    n = get_file("/proc/cpuinfo", buf, sizeof buf);
    CHECK("cpuinfo_processor", n > 0 && !strncmp(buf, "processor", 9));
    CHECK("cpuinfo_flags", strstr(buf, "\nflags\t") != NULL);
    n = get_file("/proc/stat", buf, sizeof buf);
    CHECK("proc_stat_cpu", n > 0 && !strncmp(buf, "cpu ", 4));
    CHECK("proc_stat_btime", strstr(buf, "\nbtime ") != NULL);
    double up = 0, idle = 0;
    n = get_file("/proc/uptime", buf, sizeof buf);
    CHECK("uptime", n > 0 && sscanf(buf, "%lf %lf", &up, &idle) == 2 && up > 0);
    double l1;
    n = get_file("/proc/loadavg", buf, sizeof buf);
    CHECK("loadavg", n > 0 && sscanf(buf, "%lf", &l1) == 1);
    n = get_file("/proc/version", buf, sizeof buf);
    CHECK("version", n > 0 && !strncmp(buf, "Linux version ", 14));
    n = get_file("/proc/sys/kernel/pid_max", buf, sizeof buf);
    CHECK("sys_kernel_pid_max", n > 0 && atoi(buf) > 0);
    n = get_file("/proc/sys/kernel/ostype", buf, sizeof buf);
    CHECK("sys_kernel_ostype", n > 0 && !strcmp(buf, "Linux\n"));
    n = get_file("/proc/sys/vm/overcommit_memory", buf, sizeof buf);
    CHECK("sys_vm_overcommit", n > 0 && buf[0] >= '0' && buf[0] <= '2');
    n = get_file("/proc/filesystems", buf, sizeof buf);
    CHECK("filesystems_proc", n > 0 && strstr(buf, "\tproc\n"));
    DIR *d = opendir("/proc");
    int pids = 0, self = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9') pids++;
        if (atoi(e->d_name) == getpid()) self = 1;
    }
    if (d) closedir(d);
    CHECK("proc_lists_self", self && pids >= 1);
    n = get_file("/proc/sys/kernel/random/boot_id", buf, sizeof buf);
    CHECK("boot_id_uuid", n == 37 && buf[8] == '-');
    n = get_file("/proc/sys/kernel/random/uuid", buf, sizeof buf);
    char second[64];
    get_file("/proc/sys/kernel/random/uuid", second, sizeof second);
    CHECK("random_uuid_changes", n == 37 && strcmp(buf, second) != 0);
    n = get_file("/proc/sys/fs/nr_open", buf, sizeof buf);
    CHECK("sys_fs_nr_open", n > 0 && atoi(buf) >= 1024);
    EXPECT_ERR("proc_write_readonly_sysctl", open("/proc/sys/kernel/ostype", O_WRONLY), EACCES);
    return DONE();
}
