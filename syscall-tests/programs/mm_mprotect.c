/* mprotect and fault behaviour. */
/* syscalls: mprotect */
#include "common.h"
#include <setjmp.h>

static sigjmp_buf jb;
static volatile int sig, code;
static volatile void *addr;
static void on_segv(int s, siginfo_t *si, void *uc) { (void)uc; sig = s; code = si->si_code; addr = si->si_addr; siglongjmp(jb, 1); }

static int touch_write(volatile char *p) { sig = 0; if (!sigsetjmp(jb, 1)) *p = 1; return sig; }
static int touch_read(volatile char *p) { sig = 0; if (!sigsetjmp(jb, 1)) { volatile char x = *p; (void)x; } return sig; }

int main(void) {
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigaction(SIGSEGV, &sa, NULL);
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 9;
    EXPECT_OK("mprotect_read", mprotect(p, pg, PROT_READ));
    CHECK("read_after_protect", touch_read(p) == 0 && p[0] == 9);
    CHECK("write_to_readonly_segv", touch_write(p) == SIGSEGV);
    CHECK("segv_code_accerr", code == SEGV_ACCERR);
    CHECK("segv_addr", addr == p);
    EXPECT_OK("mprotect_none", mprotect(p + pg, pg, PROT_NONE));
    CHECK("read_prot_none_segv", touch_read(p + pg) == SIGSEGV);
    EXPECT_OK("mprotect_restore", mprotect(p, 2 * pg, PROT_READ | PROT_WRITE));
    CHECK("write_after_restore", touch_write(p + pg) == 0);
    munmap(p + 3 * pg, pg);
    CHECK("unmapped_segv_maperr", touch_read(p + 3 * pg) == SIGSEGV && code == SEGV_MAPERR);
    EXPECT_ERR("mprotect_unmapped", mprotect(p + 3 * pg, pg, PROT_READ), ENOMEM);
    EXPECT_ERR("mprotect_partly_unmapped", mprotect(p + 2 * pg, 2 * pg, PROT_READ), ENOMEM);
    EXPECT_ERR("mprotect_unaligned", mprotect(p + 1, pg, PROT_READ), EINVAL);
    EXPECT_ERR("mprotect_bad_prot", mprotect(p, pg, 0x100), EINVAL);
    EXPECT_OK("mprotect_zero_len", mprotect(p, 0, PROT_READ));
    EXPECT_ERR("mprotect_growsdown_and_up", mprotect(p, pg, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP), EINVAL);
    CHECK("null_deref_segv", touch_read((char *)0) == SIGSEGV && addr == 0);
    CHECK("kernel_addr_segv", touch_read((char *)0xffff800000000000ul) == SIGSEGV);
    char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK("write_readonly_mapping_segv", touch_write(ro) == SIGSEGV);
    char *rw = mmap(NULL, pg, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    rw[0] = (char)0xc3; /* ret */
    ((void (*)(void))rw)();
    t_ok("exec_mapped_code");
    mprotect(rw, pg, PROT_READ | PROT_WRITE);
    sig = 0;
    if (!sigsetjmp(jb, 1)) ((void (*)(void))rw)();
    CHECK("exec_noexec_segv", sig == SIGSEGV);
    return DONE();
}
