/* Memory protection keys: what holds whether or not the CPU has them (a kernel without
 * them, or with every key taken, answers pkey_alloc with ENOSPC). */
/* syscalls: pkey_alloc pkey_free pkey_mprotect */
#include "common.h"

int main(void) {
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    EXPECT_ERR("alloc_flags_einval", RAW(SYS_pkey_alloc, 1, 0), EINVAL);
    EXPECT_ERR("alloc_init_einval", RAW(SYS_pkey_alloc, 0, 4), EINVAL);
    EXPECT_ERR("free_negative_einval", RAW(SYS_pkey_free, -1), EINVAL);
    EXPECT_ERR("free_unallocated_einval", RAW(SYS_pkey_free, 15), EINVAL);
    EXPECT_ERR("free_out_of_range_einval", RAW(SYS_pkey_free, 1000), EINVAL);

    /* Key -1 and the default key 0: pkey_mprotect is mprotect. */
    EXPECT_OK("mprotect_key_minus_one", RAW(SYS_pkey_mprotect, p, page, PROT_READ, -1));
    EXPECT_OK("mprotect_default_key", RAW(SYS_pkey_mprotect, p, page, PROT_READ | PROT_WRITE, 0));
    p[0] = 1;
    CHECK("mprotect_default_key_writable", p[0] == 1);
    EXPECT_ERR("mprotect_unallocated_key", RAW(SYS_pkey_mprotect, p, page, PROT_READ, 14), EINVAL);
    /* The range is checked before the key; an empty range succeeds whatever the key. */
    EXPECT_ERR("mprotect_unaligned_before_key", RAW(SYS_pkey_mprotect, p + 1, page, PROT_READ, 14), EINVAL);
    EXPECT_OK("mprotect_empty_any_key", RAW(SYS_pkey_mprotect, p, 0, PROT_READ, 14));
    EXPECT_ERR("mprotect_bad_prot", RAW(SYS_pkey_mprotect, p, page, 0x40, -1), EINVAL);
    EXPECT_ERR("mprotect_unmapped_enomem", RAW(SYS_pkey_mprotect, 0x1000, page, PROT_READ, -1), ENOMEM);

    /* A key, where there is one to have: it can be used and given back, once. Without
     * one, ENOSPC. (One case, so that it means the same on every CPU.) */
    long key = RAW(SYS_pkey_alloc, 0, 0);
    int alloc_errno = errno;
    int key_ok;
    if (key >= 0) {
        key_ok = key >= 1 && key < 16 &&
                 RAW(SYS_pkey_mprotect, p, page, PROT_READ | PROT_WRITE, key) == 0 &&
                 RAW(SYS_pkey_free, key) == 0 && RAW(SYS_pkey_free, key) == -1 && errno == EINVAL;
    } else {
        key_ok = key == -1 && alloc_errno == ENOSPC;
    }
    CHECK("alloc_key_usable_or_enospc", key_ok);

    /* Giving up the default key (Linux allows it): 0 is then refused, in this process
     * and in its children. */
    pid_t pid = fork();
    if (pid == 0) {
        if (RAW(SYS_pkey_free, 0) != 0) _exit(2);
        if (RAW(SYS_pkey_mprotect, p, page, PROT_READ, 0) != -1 || errno != EINVAL) _exit(3);
        if (RAW(SYS_pkey_free, 0) != -1 || errno != EINVAL) _exit(4);
        pid_t grandchild = fork();
        if (grandchild == 0)
            _exit(RAW(SYS_pkey_mprotect, p, page, PROT_READ, 0) == -1 && errno == EINVAL ? 0 : 5);
        int st = 0;
        waitpid(grandchild, &st, 0);
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 6);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    EXPECT_EQ("free_default_key", WIFEXITED(st) ? WEXITSTATUS(st) : 100, 0);
    EXPECT_OK("default_key_kept_by_parent", RAW(SYS_pkey_mprotect, p, page, PROT_READ, 0));
    return DONE();
}
