/* dup/dup2/dup3. */
/* syscalls: dup dup2 dup3 */
#include "common.h"
#include <sys/resource.h>

int main(void) {
    int p[2];
    pipe(p);
    int d;
    EXPECT_OK("dup", d = dup(p[1]));
    CHECK("dup_lowest_free", d == p[1] + 1);
    CHECK("dup_shares_offset_file", write(d, "a", 1) == 1);
    char c;
    CHECK("dup_same_pipe", read(p[0], &c, 1) == 1 && c == 'a');
    EXPECT_ERR("dup_ebadf", dup(999), EBADF);
    EXPECT_EQ("dup2_target", dup2(p[1], 50), 50);
    EXPECT_EQ("dup2_same_fd", dup2(p[1], p[1]), p[1]);
    EXPECT_ERR("dup2_same_bad_fd", dup2(999, 999), EBADF);
    EXPECT_ERR("dup2_bad_old", dup2(999, 51), EBADF);
    EXPECT_ERR("dup2_negative_new", dup2(p[1], -1), EBADF);
    EXPECT_ERR("dup2_too_big", dup2(p[1], 1 << 30), EBADF);
    int fd = open("/dev/null", O_RDONLY);
    EXPECT_EQ("dup2_replaces_open", dup2(fd, 50), 50);
    CHECK("dup2_replaced_is_devnull", read(50, &c, 1) == 0);
    EXPECT_ERR("dup3_same_fd", dup3(p[1], p[1], 0), EINVAL);
    EXPECT_ERR("dup3_bad_flags", dup3(p[1], 60, O_NONBLOCK), EINVAL);
    EXPECT_EQ("dup3_cloexec", dup3(p[1], 60, O_CLOEXEC), 60);
    CHECK("dup3_cloexec_set", fcntl(60, F_GETFD) == FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    d = dup(p[1]);
    CHECK("dup_clears_cloexec", fcntl(d, F_GETFD) == 0);
    fd = open("/dev/null", O_RDONLY);
    int flags = fcntl(fd, F_GETFL);
    d = dup(fd);
    fcntl(d, F_SETFL, flags | O_NONBLOCK);
    CHECK("dup_shares_status_flags", fcntl(fd, F_GETFL) & O_NONBLOCK);
    close(fd);
    CHECK("dup_survives_close_of_original", fcntl(d, F_GETFD) != -1);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    EXPECT_ERR("dup2_at_rlimit", dup2(p[1], (int)rl.rlim_cur), EBADF);
    EXPECT_EQ("dup2_below_rlimit", dup2(p[1], (int)rl.rlim_cur - 1), rl.rlim_cur - 1);
    return DONE();
}
