/* close/close_range. */
/* syscalls: close close_range */
#include "common.h"
#include <linux/close_range.h>

static int open_at(int fd) { int n = open("/dev/null", O_RDONLY); if (n != fd) { dup2(n, fd); close(n); } return fd; }

int main(void) {
    EXPECT_ERR("close_ebadf", close(999), EBADF);
    EXPECT_ERR("close_negative", close(-1), EBADF);
    int fd = open("/dev/null", O_RDONLY);
    EXPECT_OK("close", close(fd));
    EXPECT_ERR("close_twice", close(fd), EBADF);
    for (int i = 20; i < 30; i++) open_at(i);
    EXPECT_OK("close_range", RAW(SYS_close_range, 20, 24, 0));
    CHECK("close_range_closed", fcntl(20, F_GETFD) == -1 && fcntl(24, F_GETFD) == -1);
    CHECK("close_range_kept", fcntl(25, F_GETFD) != -1);
    EXPECT_OK("close_range_cloexec", RAW(SYS_close_range, 25, 27, CLOSE_RANGE_CLOEXEC));
    CHECK("close_range_cloexec_set", fcntl(25, F_GETFD) == FD_CLOEXEC && fcntl(27, F_GETFD) == FD_CLOEXEC);
    CHECK("close_range_cloexec_still_open", fcntl(26, F_GETFD) != -1);
    EXPECT_ERR("close_range_first_gt_last", RAW(SYS_close_range, 30, 20, 0), EINVAL);
    EXPECT_ERR("close_range_bad_flags", RAW(SYS_close_range, 20, 30, 0x8), EINVAL);
    EXPECT_OK("close_range_to_max", RAW(SYS_close_range, 28, ~0u, 0));
    CHECK("close_range_max_closed", fcntl(28, F_GETFD) == -1 && fcntl(29, F_GETFD) == -1);
    EXPECT_OK("close_range_empty", RAW(SYS_close_range, 500, 600, 0));
    EXPECT_OK("close_range_unshare", RAW(SYS_close_range, 25, 27, CLOSE_RANGE_UNSHARE));
    CHECK("close_range_unshare_closed", fcntl(25, F_GETFD) == -1);
    open_at(40);
    int st = 0;
    pid_t c = fork();
    if (c == 0) _exit(fcntl(40, F_GETFD) == -1 ? 0 : 1);
    waitpid(c, &st, 0);
    CHECK("fork_inherits_fds", WIFEXITED(st) && WEXITSTATUS(st) == 1);
    return DONE();
}
