/* memfd_create and seals. */
/* syscalls: memfd_create fcntl */
#include "common.h"

int main(void) {
    int m;
    EXPECT_OK("memfd_create", m = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    CHECK("memfd_cloexec", fcntl(m, F_GETFD) == FD_CLOEXEC);
    EXPECT_EQ("memfd_write", write(m, "hello", 5), 5);
    struct stat st;
    CHECK("memfd_size", fstat(m, &st) == 0 && st.st_size == 5 && S_ISREG(st.st_mode));
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    CHECK("memfd_mmap", p != MAP_FAILED && !memcmp(p, "hello", 5));
    char link[128];
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", m);
    long n = readlink(path, link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    CHECK("memfd_proc_name", !strncmp(link, "/memfd:test", 11));
    EXPECT_ERR("memfd_bad_flags", memfd_create("x", 0x100), EINVAL);
    char longname[300];
    memset(longname, 'n', 299);
    longname[299] = 0;
    EXPECT_ERR("memfd_name_too_long", memfd_create(longname, 0), EINVAL);
    EXPECT_ERR("memfd_efault", RAW(SYS_memfd_create, BADPTR, 0), EFAULT);
    munmap(p, 4096);
    EXPECT_EQ("get_seals_none", fcntl(m, F_GET_SEALS), 0);
    EXPECT_OK("add_seal_shrink", fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK));
    EXPECT_ERR("sealed_shrink_eperm", ftruncate(m, 1), EPERM);
    EXPECT_OK("grow_allowed", ftruncate(m, 100));
    EXPECT_OK("add_seal_write", fcntl(m, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW));
    EXPECT_ERR("sealed_write_eperm", write(m, "x", 1), EPERM);
    EXPECT_ERR("sealed_grow_eperm", ftruncate(m, 200), EPERM);
    EXPECT_ERR("sealed_shared_writable_map", (long)mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0), EPERM);
    EXPECT_OK("add_seal_seal", fcntl(m, F_ADD_SEALS, F_SEAL_SEAL));
    EXPECT_ERR("seal_seal_eperm", fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK), EPERM);
    EXPECT_EQ("get_seals_all", fcntl(m, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SEAL);
    int ns = memfd_create("nosealing", 0);
    EXPECT_EQ("memfd_default_sealed_seal", fcntl(ns, F_GET_SEALS), F_SEAL_SEAL);
    EXPECT_ERR("memfd_no_sealing_eperm", fcntl(ns, F_ADD_SEALS, F_SEAL_WRITE), EPERM);
    int p2[2];
    pipe(p2);
    EXPECT_ERR("seals_on_pipe", fcntl(p2[0], F_GET_SEALS), EINVAL);
    return DONE();
}
