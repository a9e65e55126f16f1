/* membarrier: the commands, their registrations and errors, and a barrier across a
 * thread that spins in application code (it must return promptly). */
/* syscalls: membarrier */
#include "common.h"
#include <linux/membarrier.h>
#include <pthread.h>

#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9) /* Linux 6.3; older headers lack it */
#endif

static volatile int spinning = 1;
static void *spin_thread(void *arg) {
    (void)arg;
    while (spinning) {
    }
    return NULL;
}

static long membarrier(int cmd, unsigned flags) { return syscall(SYS_membarrier, cmd, flags, 0); }

int main(void) {
    pthread_t t;
    long supported = membarrier(MEMBARRIER_CMD_QUERY, 0);
    CHECK("membarrier_query", supported > 0);
    CHECK("membarrier_query_private_expedited",
          (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
              (supported & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED));
    EXPECT_ERR("membarrier_query_flags", membarrier(MEMBARRIER_CMD_QUERY, 1), EINVAL);
    EXPECT_ERR("membarrier_bad_cmd", membarrier(1 << 15, 0), EINVAL);
    EXPECT_ERR("membarrier_private_unregistered",
               membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0), EPERM);
    EXPECT_EQ("membarrier_no_registrations", membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS, 0), 0);
    EXPECT_OK("membarrier_register_private",
              membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0));
    CHECK("membarrier_registrations",
          membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS, 0) & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED);
    /* With a thread spinning in application code, the barrier returns promptly. */
    pthread_create(&t, NULL, spin_thread, NULL);
    usleep(20000);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    long r = 0;
    for (int i = 0; i < 10 && r == 0; i++) r = membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    spinning = 0;
    pthread_join(t, NULL);
    EXPECT_EQ("membarrier_private_with_spinning_thread", r, 0);
    double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    CHECK("membarrier_private_prompt", ms < 500);
    EXPECT_OK("membarrier_global_expedited", membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0));
    return DONE();
}
