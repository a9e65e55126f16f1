/* eventfd: counter and semaphore modes. */
/* syscalls: eventfd2 */
#include "common.h"
#include <sys/eventfd.h>
#include <poll.h>

int main(void) {
    int e;
    EXPECT_OK("eventfd", e = eventfd(3, 0));
    uint64_t v = 0;
    EXPECT_EQ("eventfd_read_initial", read(e, &v, 8), 8);
    CHECK("eventfd_initial_value", v == 3);
    v = 5;
    write(e, &v, 8);
    v = 7;
    write(e, &v, 8);
    CHECK("eventfd_accumulates", read(e, &v, 8) == 8 && v == 12);
    EXPECT_ERR("eventfd_read_short_buf", read(e, &v, 4), EINVAL);
    EXPECT_ERR("eventfd_write_short_buf", write(e, &v, 4), EINVAL);
    v = UINT64_MAX;
    EXPECT_ERR("eventfd_write_max", write(e, &v, 8), EINVAL);
    EXPECT_ERR("eventfd_bad_flags", eventfd(0, 0x2), EINVAL);
    int nb = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK("eventfd_flags", (fcntl(nb, F_GETFL) & O_NONBLOCK) && fcntl(nb, F_GETFD) == FD_CLOEXEC);
    EXPECT_ERR("eventfd_zero_eagain", read(nb, &v, 8), EAGAIN);
    v = UINT64_MAX - 1;
    write(nb, &v, 8);
    v = 1;
    EXPECT_ERR("eventfd_overflow_eagain", write(nb, &v, 8), EAGAIN);
    struct pollfd pf = {nb, POLLIN | POLLOUT, 0};
    poll(&pf, 1, 0);
    CHECK("eventfd_poll_full", pf.revents == POLLIN);
    int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK("eventfd_sem_read_1", read(s, &v, 8) == 8 && v == 1);
    CHECK("eventfd_sem_read_again", read(s, &v, 8) == 8 && v == 1);
    EXPECT_ERR("eventfd_sem_empty", read(s, &v, 8), EAGAIN);
    pf = (struct pollfd){s, POLLIN | POLLOUT, 0};
    poll(&pf, 1, 0);
    CHECK("eventfd_poll_empty_writable", pf.revents == POLLOUT);
    v = 1;
    write(e, &v, 8);
    EXPECT_ERR("eventfd_read_efault", read(e, BADPTR, 8), EFAULT);
    pid_t c = fork();
    if (c == 0) {
        usleep(30000);
        uint64_t one = 1;
        write(e, &one, 8);
        _exit(0);
    }
    BOUNDED("eventfd_blocking_read_wakes", 5)
    CHECK("eventfd_blocking_read_wakes", read(e, &v, 8) == 8 && v == 1);
    alarm(0);
    waitpid(c, NULL, 0);
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", e);
    CHECK("eventfd_fdinfo_count", get_file(path, buf, sizeof buf) > 0 && strstr(buf, "eventfd-count:"));
    int s2 = eventfd(42, EFD_SEMAPHORE | EFD_NONBLOCK);
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", s2);
    CHECK("eventfd_fdinfo_count_hex", get_file(path, buf, sizeof buf) > 0 && strstr(buf, "\neventfd-count:               2a\n"));
    CHECK("eventfd_fdinfo_semaphore", strstr(buf, "\neventfd-semaphore: 1\n") && strstr(buf, "\neventfd-id: "));
    CHECK("eventfd_fdinfo_common", strncmp(buf, "pos:\t0\nflags:\t04002\nmnt_id:\t", 28) == 0 && strstr(buf, "\nino:\t"));
    return DONE();
}
