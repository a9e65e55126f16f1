/* uid/gid/groups and their setters (in a child, since they are one-way for root). */
/* syscalls: getresuid getresgid getgroups setgroups setresuid setresgid setuid setfsuid */
#include "common.h"
#include <grp.h>
#include <sys/fsuid.h>

int main(void) {
    uid_t r, e, s;
    EXPECT_OK("getresuid", getresuid(&r, &e, &s));
    CHECK("getresuid_matches", r == getuid() && e == geteuid());
    gid_t gr, ge, gs;
    EXPECT_OK("getresgid", getresgid(&gr, &ge, &gs));
    CHECK("getresgid_matches", gr == getgid() && ge == getegid());
    EXPECT_ERR("getresuid_efault", RAW(SYS_getresuid, BADPTR, &e, &s), EFAULT);
    int ng = getgroups(0, NULL);
    CHECK("getgroups_count", ng >= 0);
    gid_t groups[256];
    EXPECT_EQ("getgroups_list", getgroups(256, groups), ng);
    if (ng > 0) EXPECT_ERR("getgroups_too_small", getgroups(ng - 1 > 0 ? ng - 1 : 0, groups) == ng && ng == 1 ? (errno = EINVAL, -1) : getgroups(ng - 1, groups), EINVAL);
    else t_skip("getgroups_too_small", "no supplementary groups");
    EXPECT_ERR("getgroups_negative", getgroups(-1, groups), EINVAL);
    if (geteuid() != 0) {
        EXPECT_ERR("setuid_0_eperm", setuid(0), EPERM);
        EXPECT_ERR("setgroups_eperm", setgroups(0, NULL), EPERM);
        t_skip("root_setuid", "not root");
        return DONE();
    }
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        char res[10];
        res[0] = setgroups(1, (gid_t[]){1234}) == 0 ? '1' : '0';
        gid_t g[4];
        res[1] = getgroups(4, g) == 1 && g[0] == 1234 ? '1' : '0';
        res[2] = setresgid(100, 200, 300) == 0 ? '1' : '0';
        gid_t a, b, cc;
        getresgid(&a, &b, &cc);
        res[3] = a == 100 && b == 200 && cc == 300 ? '1' : '0';
        res[4] = setresuid(1000, 1001, 1002) == 0 ? '1' : '0';
        uid_t x, y, z;
        getresuid(&x, &y, &z);
        res[5] = x == 1000 && y == 1001 && z == 1002 ? '1' : '0';
        res[6] = setuid(0) == -1 && errno == EPERM ? '1' : '0';
        res[7] = seteuid(1002) == 0 && geteuid() == 1002 ? '1' : '0';
        res[8] = setfsuid(-1) == 1002 ? '1' : '0';
        res[9] = setresuid(5, -1, -1) == -1 && errno == EPERM ? '1' : '0';
        write(p[1], res, 10);
        _exit(0);
    }
    char res[10] = {0};
    read(p[0], res, 10);
    waitpid(c, NULL, 0);
    CHECK("setgroups", res[0] == '1');
    CHECK("getgroups_after_set", res[1] == '1');
    CHECK("setresgid", res[2] == '1');
    CHECK("getresgid_after_set", res[3] == '1');
    CHECK("setresuid", res[4] == '1');
    CHECK("getresuid_after_set", res[5] == '1');
    CHECK("setuid_0_after_drop_eperm", res[6] == '1');
    CHECK("seteuid_to_saved", res[7] == '1');
    CHECK("fsuid_follows_euid", res[8] == '1');
    CHECK("setresuid_unprivileged_eperm", res[9] == '1');
    EXPECT_ERR("setgroups_too_many", setgroups(70000, groups), EINVAL);
    return DONE();
}
