/* fcntl record locks and flock, across processes. */
/* syscalls: fcntl flock */
#include "common.h"
#include <sys/file.h>

int main(void) {
    scratch();
    put_file("f", "0123456789");
    int fd = open("f", O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 5};
    EXPECT_OK("setlk_write", fcntl(fd, F_SETLK, &fl));
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    EXPECT_OK("getlk_own_lock", fcntl(fd, F_GETLK, &q));
    CHECK("getlk_own_unlocked", q.l_type == F_UNLCK);
    int p[2];
    pipe(p);
    pid_t c = fork();
    if (c == 0) {
        int f2 = open("f", O_RDWR);
        struct flock a = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 2, .l_len = 1};
        int r1 = fcntl(f2, F_SETLK, &a) == -1 && (errno == EAGAIN || errno == EACCES);
        struct flock g = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
        fcntl(f2, F_GETLK, &g);
        int r2 = g.l_type == F_WRLCK && g.l_pid == getppid() && g.l_start == 0 && g.l_len == 5;
        struct flock b = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 5};
        int r3 = fcntl(f2, F_SETLK, &b) == 0;
        char res[3] = {r1 + '0', r2 + '0', r3 + '0'};
        write(p[1], res, 3);
        _exit(0);
    }
    char res[3] = {0};
    read(p[0], res, 3);
    waitpid(c, NULL, 0);
    CHECK("setlk_conflict_eagain", res[0] == '1');
    CHECK("getlk_reports_owner", res[1] == '1');
    CHECK("setlk_disjoint_ok", res[2] == '1');
    fl.l_type = F_UNLCK;
    EXPECT_OK("unlock", fcntl(fd, F_SETLK, &fl));
    struct flock bad = {.l_type = 99, .l_whence = SEEK_SET};
    EXPECT_ERR("setlk_bad_type", fcntl(fd, F_SETLK, &bad), EINVAL);
    struct flock badw = {.l_type = F_RDLCK, .l_whence = 7};
    EXPECT_ERR("setlk_bad_whence", fcntl(fd, F_SETLK, &badw), EINVAL);
    EXPECT_ERR("setlk_efault", fcntl(fd, F_SETLK, BADPTR), EFAULT);
    int ro = open("f", O_RDONLY);
    struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    EXPECT_ERR("wrlck_on_rdonly", fcntl(ro, F_SETLK, &w), EBADF);
    EXPECT_OK("flock_ex", flock(fd, LOCK_EX));
    c = fork();
    if (c == 0) {
        int f2 = open("f", O_RDONLY);
        _exit(flock(f2, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK ? 0 : 1);
    }
    int st;
    waitpid(c, &st, 0);
    CHECK("flock_conflict_ewouldblock", WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT_OK("flock_un", flock(fd, LOCK_UN));
    EXPECT_OK("flock_sh_shared", (flock(fd, LOCK_SH), flock(ro, LOCK_SH | LOCK_NB)));
    EXPECT_ERR("flock_bad_op", flock(fd, 0), EINVAL);
    EXPECT_ERR("flock_ebadf", flock(999, LOCK_SH), EBADF);
    struct flock ofd = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
    EXPECT_OK("ofd_setlk", fcntl(ro, F_OFD_SETLK, &ofd));
    struct flock ofdbad = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_pid = 1};
    EXPECT_ERR("ofd_nonzero_pid", fcntl(ro, F_OFD_SETLK, &ofdbad), EINVAL);
    return DONE();
}
