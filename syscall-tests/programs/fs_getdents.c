/* getdents64 and lseek on directories. */
/* syscalls: getdents64 lseek */
#include "common.h"
#include <dirent.h>

struct d64 { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; };

static int count(int fd, int *files, int *dots, unsigned char *ftype) {
    char buf[4096];
    int n, total = 0;
    while ((n = RAW(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (int off = 0; off < n;) {
            struct d64 *d = (struct d64 *)(buf + off);
            if (!strcmp(d->name, ".") || !strcmp(d->name, "..")) (*dots)++;
            else (*files)++;
            if (!strcmp(d->name, "file0")) *ftype = d->type;
            off += d->reclen;
            total++;
        }
    }
    return n < 0 ? -1 : total;
}

int main(void) {
    scratch();
    mkdir("d", 0755);
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "d/file%d", i);
        put_file(name, "");
    }
    mkdir("d/sub", 0755);
    int fd = open("d", O_RDONLY | O_DIRECTORY);
    int files = 0, dots = 0;
    unsigned char ft = 0;
    CHECK("getdents_all", count(fd, &files, &dots, &ft) == 103);
    CHECK("getdents_files", files == 101);
    CHECK("getdents_dots", dots == 2);
    CHECK("getdents_dtype_reg", ft == DT_REG);
    char buf[4096];
    EXPECT_EQ("getdents_eof", RAW(SYS_getdents64, fd, buf, sizeof buf), 0);
    lseek(fd, 0, SEEK_SET);
    files = dots = 0;
    CHECK("getdents_rewind", count(fd, &files, &dots, &ft) == 103);
    lseek(fd, 0, SEEK_SET);
    EXPECT_ERR("getdents_tiny_buffer", RAW(SYS_getdents64, fd, buf, 8), EINVAL);
    EXPECT_ERR("getdents_efault", RAW(SYS_getdents64, fd, BADPTR, 4096), EFAULT);
    int ffd = open("d/file1", O_RDONLY);
    EXPECT_ERR("getdents_on_file", RAW(SYS_getdents64, ffd, buf, sizeof buf), ENOTDIR);
    close(ffd);
    EXPECT_ERR("getdents_ebadf", RAW(SYS_getdents64, 999, buf, sizeof buf), EBADF);
    /* Resume from a saved d_off. */
    lseek(fd, 0, SEEK_SET);
    int n = RAW(SYS_getdents64, fd, buf, 200);
    struct d64 *first = (struct d64 *)buf;
    CHECK("getdents_partial", n > 0 && n <= 200 && first->reclen <= n);
    long pos = lseek(fd, 0, SEEK_CUR);
    int m = RAW(SYS_getdents64, fd, buf, sizeof buf);
    lseek(fd, pos, SEEK_SET);
    char buf2[4096];
    int m2 = RAW(SYS_getdents64, fd, buf2, sizeof buf2);
    CHECK("getdents_seek_resume", m > 0 && m == m2 && !strcmp(((struct d64 *)buf)->name, ((struct d64 *)buf2)->name));
    close(fd);
    /* readdir through libc sees names removed mid-way consistently. */
    DIR *dir = opendir("d");
    int seen = 0;
    while (readdir(dir)) seen++;
    closedir(dir);
    CHECK("readdir_libc", seen == 103);
    mkdir("empty", 0755);
    fd = open("empty", O_RDONLY | O_DIRECTORY);
    files = dots = 0;
    CHECK("getdents_empty_dir", count(fd, &files, &dots, &ft) == 2 && files == 0);
    close(fd);
    return DONE();
}
