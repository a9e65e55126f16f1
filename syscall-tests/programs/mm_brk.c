/* brk: raw syscall semantics (returns the break, never -1). */
/* syscalls: brk */
#include "common.h"

int main(void) {
    long cur = RAW(SYS_brk, 0);
    CHECK("brk_query", cur > 0);
    CHECK("brk_query_stable", RAW(SYS_brk, 0) == cur);
    long want = cur + 64 * 1024;
    EXPECT_EQ("brk_grow", RAW(SYS_brk, want), want);
    char *p = (char *)cur;
    p[0] = 1;
    p[64 * 1024 - 1] = 2;
    CHECK("brk_memory_usable", p[0] == 1 && p[64 * 1024 - 1] == 2);
    EXPECT_EQ("brk_unaligned_ok", RAW(SYS_brk, want + 1), want + 1);
    EXPECT_EQ("brk_shrink", RAW(SYS_brk, cur + 4096), cur + 4096);
    long again = RAW(SYS_brk, cur + 8192);
    CHECK("brk_regrow_zeroed", again == cur + 8192 && p[4096] == 0 && ((char *)cur)[4096 + 100] == 0);
    EXPECT_EQ("brk_below_start_fails", RAW(SYS_brk, 4096), cur + 8192);
    EXPECT_EQ("brk_huge_fails", RAW(SYS_brk, cur + (1l << 46)), cur + 8192);
    void *m = mmap((void *)(cur + 1024 * 1024), 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK("mmap_above_brk", m != MAP_FAILED);
    EXPECT_EQ("brk_into_mapping_fails", RAW(SYS_brk, cur + 2 * 1024 * 1024), cur + 8192);
    long top = cur + 1024 * 1024 - 4096;
    EXPECT_EQ("brk_up_to_guard_below_mapping", RAW(SYS_brk, top), top);
    EXPECT_EQ("brk_no_gap_to_mapping_fails", RAW(SYS_brk, top + 1), top);
    pid_t c = fork();
    if (c == 0) _exit(RAW(SYS_brk, 0) == top ? 0 : 1);
    int st;
    waitpid(c, &st, 0);
    CHECK("brk_inherited_by_fork", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return DONE();
}
