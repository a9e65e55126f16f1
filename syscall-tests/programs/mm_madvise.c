/* madvise and mincore. */
/* syscalls: madvise mincore */
#include "common.h"

int main(void) {
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(p, 7, 4 * pg);
    EXPECT_OK("madvise_dontneed", madvise(p, pg, MADV_DONTNEED));
    CHECK("dontneed_zeroes_private_anon", p[0] == 0 && p[pg] == 7);
    EXPECT_OK("madvise_willneed", madvise(p, 4 * pg, MADV_WILLNEED));
    EXPECT_OK("madvise_normal", madvise(p, 4 * pg, MADV_NORMAL));
    EXPECT_OK("madvise_random", madvise(p, 4 * pg, MADV_RANDOM));
    EXPECT_OK("madvise_sequential", madvise(p, 4 * pg, MADV_SEQUENTIAL));
    EXPECT_OK("madvise_free", madvise(p + pg, pg, MADV_FREE));
    EXPECT_ERR("madvise_unaligned", madvise(p + 1, pg, MADV_NORMAL), EINVAL);
    EXPECT_ERR("madvise_bad_advice", madvise(p, pg, 12345), EINVAL);
    munmap(p + 3 * pg, pg);
    EXPECT_ERR("madvise_unmapped_enomem", madvise(p + 3 * pg, pg, MADV_NORMAL), ENOMEM);
    EXPECT_OK("madvise_zero_len", madvise(p, 0, MADV_DONTNEED));
    EXPECT_OK("madvise_dontfork", madvise(p + 2 * pg, pg, MADV_DONTFORK));
    int st;
    pid_t c = fork();
    if (c == 0) {
        volatile char x = p[2 * pg];
        (void)x;
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("dontfork_child_segv", WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    EXPECT_OK("madvise_dofork", madvise(p + 2 * pg, pg, MADV_DOFORK));
    c = fork();
    if (c == 0) _exit(p[2 * pg] == 7 ? 0 : 1);
    waitpid(c, &st, 0);
    CHECK("dofork_child_sees_page", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unsigned char vec[4];
    char *q = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    q[pg] = 1;
    EXPECT_OK("mincore", mincore(q, 3 * pg, vec));
    CHECK("mincore_touched_resident", vec[1] & 1);
    CHECK("mincore_untouched_absent", !(vec[0] & 1) && !(vec[2] & 1));
    EXPECT_ERR("mincore_unaligned", mincore(q + 1, pg, vec), EINVAL);
    EXPECT_ERR("mincore_unmapped", mincore(p + 3 * pg, pg, vec), ENOMEM);
    EXPECT_ERR("mincore_vec_efault", mincore(q, pg, BADPTR), EFAULT);
    char *sh = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sh[0] = 3;
    madvise(sh, pg, MADV_DONTNEED);
    CHECK("dontneed_shared_keeps_data", sh[0] == 3);
    return DONE();
}
