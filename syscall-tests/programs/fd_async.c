/* Signal-driven I/O: O_ASYNC sends SIGIO (or the F_SETSIG signal, with si_fd and
   si_band) to the owner when a pipe or socket becomes readable or writable. */
/* syscalls: fcntl ioctl */
#include "common.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static volatile int got, got_sig, got_fd, got_code;
static volatile long got_band;

static void on_signal(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got++;
    got_sig = sig;
    got_fd = si->si_fd;
    got_band = si->si_band;
    got_code = si->si_code;
}

static void reset(void) { got = got_sig = got_fd = got_code = 0, got_band = 0; }

int main(void) {
    struct sigaction sa = {0};
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGIO, &sa, NULL);
    sigaction(SIGRTMIN + 1, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    int p[2];
    pipe2(p, O_NONBLOCK);
    char b[8];

    fcntl(p[0], F_SETOWN, getpid());
    reset();
    write(p[1], "x", 1);
    EXPECT_EQ("no_signal_without_o_async", got, 0);
    EXPECT_OK("setfl_o_async", fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK));
    CHECK("getfl_o_async", fcntl(p[0], F_GETFL) & O_ASYNC);
    EXPECT_EQ("setting_o_async_sends_nothing", got, 0);
    reset();
    write(p[1], "x", 1);
    CHECK("pipe_write_sends_sigio", got == 1 && got_sig == SIGIO && got_code == SI_KERNEL);

    fcntl(p[0], F_SETSIG, SIGRTMIN + 1);
    reset();
    write(p[1], "x", 1);
    CHECK("setsig_rt_signal", got == 1 && got_sig == SIGRTMIN + 1);
    CHECK("setsig_si_fd", got_fd == p[0]);
    CHECK("setsig_si_band_pollin", got_band == (POLLIN | POLLRDNORM));
    CHECK("setsig_si_code_poll_in", got_code == POLL_IN);
    fcntl(p[0], F_SETSIG, SIGIO);
    reset();
    write(p[1], "x", 1);
    CHECK("setsig_sigio_has_siginfo", got == 1 && got_sig == SIGIO && got_fd == p[0] && got_code == POLL_IN);

    reset();
    read(p[0], b, sizeof b);
    EXPECT_EQ("read_does_not_signal_reader", got, 0);

    fcntl(p[1], F_SETOWN, getpid());
    fcntl(p[1], F_SETSIG, SIGUSR1);
    fcntl(p[1], F_SETFL, O_ASYNC | O_NONBLOCK);
    write(p[1], "y", 1);
    reset();
    read(p[0], b, 1);
    CHECK("pipe_read_signals_writer", got >= 1 && got_sig == SIGUSR1 && got_fd == p[1] && got_code == POLL_OUT && got_band == (POLLOUT | POLLWRNORM | POLLWRBAND));
    fcntl(p[1], F_SETFL, O_NONBLOCK);

    fcntl(p[0], F_SETFL, O_NONBLOCK);
    reset();
    write(p[1], "z", 1);
    EXPECT_EQ("o_async_off_no_signal", got, 0);

    int on = 1;
    EXPECT_OK("fioasync_on", ioctl(p[0], FIOASYNC, &on));
    CHECK("fioasync_sets_o_async", fcntl(p[0], F_GETFL) & O_ASYNC);
    reset();
    write(p[1], "z", 1);
    CHECK("fioasync_signals", got == 1 && got_sig == SIGIO);

    int q[2];
    pipe(q);
    fcntl(q[0], F_SETOWN, getpid());
    fcntl(q[0], F_SETSIG, SIGRTMIN + 1);
    fcntl(q[0], F_SETFL, O_ASYNC);
    reset();
    close(q[1]);
    CHECK("pipe_writer_close_signals_reader", got == 1 && got_sig == SIGRTMIN + 1 && got_fd == q[0] && got_code == POLL_IN);

    int s[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    fcntl(s[0], F_SETOWN, getpid());
    fcntl(s[0], F_SETFL, O_ASYNC);
    reset();
    write(s[1], "a", 1);
    CHECK("unix_stream_data_sends_sigio", got == 1 && got_sig == SIGIO);
    reset();
    close(s[1]);
    CHECK("unix_stream_peer_close_sends_sigio", got >= 1 && got_sig == SIGIO);

    int d[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, d);
    fcntl(d[0], F_SETOWN, getpid());
    fcntl(d[0], F_SETSIG, SIGRTMIN + 1);
    fcntl(d[0], F_SETFL, O_ASYNC);
    reset();
    write(d[1], "a", 1);
    CHECK("unix_dgram_data_sends_signal", got == 1 && got_sig == SIGRTMIN + 1 && got_fd == d[0] && got_code == POLL_IN);

    /* A process group owner: every member is signalled. */
    int g[2];
    pipe(g);
    fcntl(g[0], F_SETOWN, -getpgrp());
    fcntl(g[0], F_SETFL, O_ASYNC);
    reset();
    write(g[1], "a", 1);
    CHECK("pgrp_owner_signalled", got == 1 && got_sig == SIGIO);
    return DONE();
}
