/* capget/capset and prctl capability queries. */
/* syscalls: capget capset prctl */
#include "common.h"
#include <linux/capability.h>
#include <sys/prctl.h>

int main(void) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    EXPECT_OK("capget", RAW(SYS_capget, &h, d));
    int root = geteuid() == 0;
    CHECK("capget_effective_matches_uid", root ? (d[0].effective & (1u << CAP_SYS_ADMIN)) != 0 || (d[0].effective & (1u << CAP_DAC_OVERRIDE)) != 0 : d[0].effective == 0);
    CHECK("capget_effective_subset_permitted", (d[0].effective & ~d[0].permitted) == 0 && (d[1].effective & ~d[1].permitted) == 0);
    struct __user_cap_header_struct bad = {0x12345678, 0};
    EXPECT_ERR("capget_bad_version", RAW(SYS_capget, &bad, d), EINVAL);
    CHECK("capget_bad_version_writes_preferred", bad.version == _LINUX_CAPABILITY_VERSION_3);
    struct __user_cap_header_struct probe = {0x12345678, 0};
    EXPECT_EQ("capget_version_probe_null_data", RAW(SYS_capget, &probe, NULL), 0);
    CHECK("capget_probe_writes_version", probe.version == _LINUX_CAPABILITY_VERSION_3);
    EXPECT_ERR("capget_efault", RAW(SYS_capget, BADPTR, d), EFAULT);
    struct __user_cap_header_struct other = {_LINUX_CAPABILITY_VERSION_3, 0x3ffffff0};
    EXPECT_ERR("capget_esrch", RAW(SYS_capget, &other, d), ESRCH);
    EXPECT_OK("capset_same", RAW(SYS_capset, &h, d));
    struct __user_cap_data_struct up[2];
    memcpy(up, d, sizeof up);
    up[0].effective = up[0].permitted;
    up[1].effective = up[1].permitted;
    up[0].permitted |= 1u << CAP_SYS_ADMIN;
    if (!(d[0].permitted & (1u << CAP_SYS_ADMIN)))
        EXPECT_ERR("capset_raise_permitted_eperm", RAW(SYS_capset, &h, up), EPERM);
    else
        t_skip("capset_raise_permitted_eperm", "already permitted");
    EXPECT_EQ("capbset_read_chown", prctl(PR_CAPBSET_READ, CAP_CHOWN), (d[0].permitted & 1) || !root ? prctl(PR_CAPBSET_READ, CAP_CHOWN) : 1);
    EXPECT_ERR("capbset_read_bad_cap", prctl(PR_CAPBSET_READ, 200), EINVAL);
    EXPECT_EQ("cap_ambient_is_set_zero", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0), 0);
    pid_t c = fork();
    if (c == 0) {
        struct __user_cap_data_struct none[2] = {{0, 0, 0}, {0, 0, 0}};
        int ok = RAW(SYS_capset, &h, none) == 0;
        struct __user_cap_data_struct after[2];
        RAW(SYS_capget, &h, after);
        ok = ok && after[0].effective == 0 && after[0].permitted == 0;
        ok = ok && RAW(SYS_capset, &h, d) == -1 && errno == EPERM;
        if (root) ok = ok && chown("/proc/self/comm", 12345, -1) == -1;
        _exit(ok ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("capset_drop_all_is_one_way", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return DONE();
}
