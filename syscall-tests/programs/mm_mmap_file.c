/* mmap of files: private, shared, coherence with write, beyond EOF. */
/* syscalls: mmap msync */
#include "common.h"
#include <setjmp.h>

static sigjmp_buf jb;
static volatile int sig;
static void on_sig(int s) { sig = s; siglongjmp(jb, 1); }


int main(void) {
    scratch();
    long pg = sysconf(_SC_PAGESIZE);
    int fd = open("f", O_RDWR | O_CREAT, 0644);
    char data[8192];
    for (int i = 0; i < 8192; i++) data[i] = 'a' + i % 26;
    write(fd, data, 8192);
    char *p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK("mmap_file_private", p != MAP_FAILED && !memcmp(p, data, 8192));
    char *o = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, pg);
    CHECK("mmap_file_offset", o != MAP_FAILED && o[0] == data[pg]);
    char *s = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK("mmap_file_shared", s != MAP_FAILED);
    s[0] = 'Z';
    char c;
    CHECK("shared_write_visible_to_read", pread(fd, &c, 1, 0) == 1 && c == 'Z');
    pwrite(fd, "Y", 1, 1);
    CHECK("write_visible_in_shared_map", s[1] == 'Y');
    char *pw = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    pw[2] = '!';
    CHECK("private_write_not_in_file", pread(fd, &c, 1, 2) == 1 && c == data[2]);
    EXPECT_OK("msync", msync(s, 8192, MS_SYNC));
    EXPECT_ERR("msync_bad_flags", msync(s, 8192, MS_SYNC | MS_ASYNC), EINVAL);
    EXPECT_ERR("msync_unaligned", msync(s + 1, 10, MS_SYNC), EINVAL);
    int ro = open("f", O_RDONLY);
    EXPECT_ERR("mmap_shared_write_on_rdonly", (long)mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0), EACCES);
    CHECK("mmap_private_write_on_rdonly_ok", mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0) != MAP_FAILED);
    int wo = open("f", O_WRONLY);
    EXPECT_ERR("mmap_wronly_eacces", (long)mmap(NULL, pg, PROT_READ, MAP_SHARED, wo, 0), EACCES);
    int p2[2];
    pipe(p2);
    EXPECT_ERR("mmap_pipe_enodev", (long)mmap(NULL, pg, PROT_READ, MAP_SHARED, p2[0], 0), ENODEV);
    mkdir("d", 0755);
    int dfd = open("d", O_RDONLY);
    EXPECT_ERR("mmap_dir_enodev", (long)mmap(NULL, pg, PROT_READ, MAP_PRIVATE, dfd, 0), ENODEV);
    ftruncate(fd, 100);
    char *tail = mmap(NULL, 2 * pg, PROT_READ, MAP_SHARED, fd, 0);
    CHECK("mmap_tail_zeroed", tail[100] == 0 && tail[pg - 1] == 0);
    signal(SIGBUS, on_sig);
    sig = 0;
    if (!sigsetjmp(jb, 1)) {
        volatile char x = tail[pg];
        (void)x;
    }
    CHECK("mmap_beyond_eof_sigbus", sig == SIGBUS);
    ftruncate(fd, 8192);
    sig = 0;
    if (!sigsetjmp(jb, 1)) {
        volatile char x = tail[pg];
        (void)x;
    }
    CHECK("mmap_after_extend_ok", sig == 0);
    close(fd);
    CHECK("mmap_survives_close", s[1] == 'Y');
    int z = open("/dev/zero", O_RDWR);
    char *zm = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, z, 0);
    CHECK("mmap_dev_zero", zm != MAP_FAILED && zm[0] == 0);
    return DONE();
}
