/* mremap. */
/* syscalls: mremap */
#include "common.h"

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 'a';
    p[pg] = 'b';
    char *q = mremap(p, 2 * pg, pg, 0);
    CHECK("mremap_shrink_in_place", q == p);
    char *r = mremap(p, pg, 16 * pg, MREMAP_MAYMOVE);
    CHECK("mremap_grow_maymove", r != MAP_FAILED && r[0] == 'a');
    CHECK("mremap_grown_zero", r[15 * pg] == 0);
    char *blk = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(blk + pg, 2 * pg);
    mmap(blk + 2 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    EXPECT_ERR("mremap_grow_no_room", (long)mremap(blk, pg, 3 * pg, 0), ENOMEM);
    char *t = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *dst = mmap(NULL, 4 * pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    t[0] = 'x';
    char *f = mremap(t, pg, pg, MREMAP_MAYMOVE | MREMAP_FIXED, dst + pg);
    CHECK("mremap_fixed", f == dst + pg && f[0] == 'x');
    EXPECT_ERR("mremap_fixed_without_maymove", (long)mremap(f, pg, pg, MREMAP_FIXED, dst), EINVAL);
    EXPECT_ERR("mremap_unaligned", (long)mremap(f + 1, pg, pg, 0), EINVAL);
    EXPECT_ERR("mremap_zero_new", (long)mremap(f, pg, 0, MREMAP_MAYMOVE), EINVAL);
    EXPECT_ERR("mremap_bad_flags", (long)mremap(f, pg, pg, 0x80), EINVAL);
    EXPECT_ERR("mremap_unmapped", (long)mremap(dst + 3 * pg + 64 * pg, pg, 2 * pg, 0), EFAULT);
    char *d = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    d[0] = 'k';
    char *nd = (char *)RAW(SYS_mremap, d, pg, pg, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
    CHECK("mremap_dontunmap", nd != MAP_FAILED && nd != d);
    CHECK("mremap_dontunmap_moved_data", nd[0] == 'k');
    CHECK("mremap_dontunmap_old_empty", d[0] == 0);
    char *sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh[0] = 's';
    char *alias = mremap(sh, 0, pg, MREMAP_MAYMOVE);
    CHECK("mremap_zero_old_shared_alias", alias != MAP_FAILED && alias != sh && alias[0] == 's');
    alias[0] = 't';
    CHECK("mremap_alias_coherent", sh[0] == 't');
    EXPECT_ERR("mremap_zero_old_private", (long)mremap(d + 0, 0, pg, MREMAP_MAYMOVE), EINVAL);
    return DONE();
}
