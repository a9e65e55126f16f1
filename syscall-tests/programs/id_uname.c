/* uname, sethostname, setdomainname, sysinfo, umask. */
/* syscalls: uname sethostname setdomainname sysinfo umask */
#include "common.h"
#include <sys/utsname.h>
#include <sys/sysinfo.h>

int main(void) {
    struct utsname u;
    EXPECT_OK("uname", uname(&u));
    CHECK("uname_sysname", !strcmp(u.sysname, "Linux"));
    CHECK("uname_machine", !strcmp(u.machine, "x86_64"));
    int major = 0, minor = 0;
    CHECK("uname_release_version", sscanf(u.release, "%d.%d", &major, &minor) == 2 && major >= 4);
    CHECK("uname_nodename_nonempty", u.nodename[0] != 0);
    EXPECT_ERR("uname_efault", RAW(SYS_uname, BADPTR), EFAULT);
    char host[256];
    EXPECT_OK("gethostname", gethostname(host, sizeof host));
    CHECK("gethostname_matches_uname", !strcmp(host, u.nodename));
    EXPECT_ERR("sethostname_too_long", sethostname(host, 65), EINVAL);
    EXPECT_ERR("sethostname_negative", RAW(SYS_sethostname, host, -1), EINVAL);
    if (geteuid() != 0) EXPECT_ERR("sethostname_eperm", sethostname("x", 1), EPERM);
    EXPECT_ERR("setdomainname_too_long", setdomainname(host, 65), EINVAL);
    struct sysinfo si;
    EXPECT_OK("sysinfo", sysinfo(&si));
    CHECK("sysinfo_totalram", si.totalram > 0 && si.mem_unit > 0);
    CHECK("sysinfo_freeram_le_total", si.freeram <= si.totalram);
    CHECK("sysinfo_uptime", si.uptime > 0);
    CHECK("sysinfo_procs", si.procs >= 1);
    EXPECT_ERR("sysinfo_efault", RAW(SYS_sysinfo, BADPTR), EFAULT);
    mode_t old = umask(0);
    EXPECT_EQ("umask_returns_previous", umask(old), 0);
    EXPECT_EQ("umask_masks_to_0777", (umask(0177777), umask(old)), 0777);
    char buf[512];
    CHECK("proc_umask_in_status", get_file("/proc/self/status", buf, sizeof buf) > 0 && strstr(buf, "Umask:\t") != NULL);
    return DONE();
}
