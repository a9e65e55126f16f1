/* mmap anonymous: flags, alignment, errors. */
/* syscalls: mmap munmap */
#include "common.h"

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("mmap_anon", p != MAP_FAILED);
    CHECK("mmap_page_aligned", ((uintptr_t)p & (pg - 1)) == 0);
    CHECK("mmap_zero_filled", p[0] == 0 && p[3 * pg - 1] == 0);
    p[pg] = 5;
    CHECK("mmap_writable", p[pg] == 5);
    EXPECT_ERR("mmap_zero_len", (long)mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
    EXPECT_ERR("mmap_no_type", (long)mmap(NULL, pg, PROT_READ, MAP_ANONYMOUS, -1, 0), EINVAL);
    EXPECT_ERR("mmap_both_types", (long)mmap(NULL, pg, PROT_READ, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), EINVAL);
    EXPECT_ERR("mmap_unaligned_offset", (long)mmap(NULL, pg, PROT_READ, MAP_PRIVATE, 0, 1), EINVAL);
    EXPECT_ERR("mmap_fixed_unaligned", (long)mmap((void *)0x10001, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), EINVAL);
    EXPECT_ERR("mmap_ebadf", (long)mmap(NULL, pg, PROT_READ, MAP_PRIVATE, 999, 0), EBADF);
    EXPECT_ERR("mmap_huge_len", (long)mmap(NULL, (size_t)1 << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), ENOMEM);
    char *f = mmap(p + pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK("mmap_fixed_replaces", f == p + pg && p[pg] == 0);
    EXPECT_ERR("mmap_fixed_noreplace_busy", (long)mmap(p, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0), EEXIST);
    char *hint = p + 64 * pg;
    char *h = mmap(hint, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK("mmap_fixed_noreplace_free", h == hint);
    EXPECT_OK("munmap", munmap(p, 3 * pg));
    EXPECT_ERR("munmap_unaligned", munmap(p + 1, pg), EINVAL);
    EXPECT_ERR("munmap_zero", munmap(p, 0), EINVAL);
    EXPECT_OK("munmap_unmapped_ok", munmap(p, pg));
    char *big = mmap(NULL, 64 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK("mmap_64m", big != MAP_FAILED);
    for (long i = 0; i < (64 << 20); i += (1 << 20)) big[i] = 1;
    CHECK("mmap_64m_touch", big[63 << 20] == 1);
    munmap(big, 64 << 20);
    char *pop = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    CHECK("mmap_populate", pop != MAP_FAILED && pop[15 * pg] == 0);
    char *sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    *sh = 0;
    pid_t c = fork();
    if (c == 0) {
        *sh = 42;
        _exit(0);
    }
    waitpid(c, NULL, 0);
    CHECK("mmap_shared_anon_across_fork", *sh == 42);
    EXPECT_ERR("mmap_fixed_above_task_size", (long)mmap((void *)(1ul << 47), pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0), ENOMEM);
    char *g = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
    CHECK("mmap_growsdown", g != MAP_FAILED);
    return DONE();
}
