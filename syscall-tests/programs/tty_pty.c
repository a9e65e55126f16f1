/* Pseudo-terminals: ptmx/devpts, the line discipline, controlling terminals and job control. */
/* syscalls: ioctl read write poll setsid */
#include "common.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <termios.h>

static int open_master(int flags) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | flags);
    if (m < 0) return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0) return -1;
    return m;
}

/* A pair in raw-ish defaults: master and slave (O_NOCTTY), both nonblocking if asked. */
static int open_pair(int *m, int *s, int flags) {
    *m = open_master(flags);
    if (*m < 0) return -1;
    *s = open(ptsname(*m), O_RDWR | O_NOCTTY | flags);
    return *s < 0 ? -1 : 0;
}

/* Reads what the master has now (nonblocking master) into buf, NUL-terminated. */
static int drain(int m, char *buf, int size) {
    int n = (int)read(m, buf, size - 1);
    if (n < 0) n = 0;
    buf[n] = 0;
    return n;
}

/* `got` equals `want`; the failure shows what came, escaped. */
static void check_str(const char *name, const char *got_s, const char *want) {
    if (strcmp(got_s, want) == 0) {
        t_ok(name);
        return;
    }
    char esc[512];
    size_t o = 0;
    for (const char *p = got_s; *p && o + 5 < sizeof esc; p++)
        o += (size_t)snprintf(esc + o, sizeof esc - o, (*p >= 32 && *p < 127) ? "%c" : "\\x%02x",
                              (unsigned char)*p);
    esc[o] = 0;
    t_fail(name, "got \"%s\"", esc);
}

/* Types `n` bytes at the master and lets the line discipline take them (Linux hands
 * master writes to it from a work queue, a moment later). */
static void type_in(int m, const char *str, size_t n) {
    write(m, str, n);
    usleep(20000);
}

static short revents(int fd) {
    struct pollfd p = {fd, POLLIN | POLLOUT, 0};
    poll(&p, 1, 0);
    return p.revents;
}

static int set_lflag(int fd, tcflag_t on, tcflag_t off) {
    struct termios t;
    if (tcgetattr(fd, &t)) return -1;
    t.c_lflag = (t.c_lflag | on) & ~off;
    return tcsetattr(fd, TCSANOW, &t);
}

static volatile sig_atomic_t got;
static void on_sig(int s) { got = s; }

/* In a child: a new session whose controlling terminal is `path`. Exits 90 on failure. */
static int new_session_with(const char *path) {
    if (setsid() < 0) _exit(90);
    int s = open(path, O_RDWR);
    if (s < 0) _exit(91);
    return s;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void basics(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    struct stat st;
    CHECK("ptmx_is_5_2", fstat(m, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 &&
                             minor(st.st_rdev) == 2);
    unsigned n = 9999;
    EXPECT_EQ("tiocgptn", ioctl(m, TIOCGPTN, &n), 0);
    char want[32];
    snprintf(want, sizeof want, "/dev/pts/%u", n);
    CHECK("ptsname_matches", ptsname(m) && strcmp(ptsname(m), want) == 0);
    int lk = -1;
    CHECK("starts_locked", ioctl(m, TIOCGPTLCK, &lk) == 0 && lk == 1);
    EXPECT_ERR("locked_slave_eio", open(want, O_RDWR | O_NOCTTY), EIO);
    EXPECT_EQ("grantpt", grantpt(m), 0);
    EXPECT_EQ("unlockpt", unlockpt(m), 0);
    CHECK("unlocked", ioctl(m, TIOCGPTLCK, &lk) == 0 && lk == 0);
    CHECK("slave_node", stat(want, &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 136 &&
                            minor(st.st_rdev) == n && st.st_uid == geteuid() &&
                            (st.st_mode & 0600) == 0600);
    CHECK("poll_master_before_slave", revents(m) == POLLOUT);
    int s = open(want, O_RDWR | O_NOCTTY);
    CHECK("open_slave", s >= 0);
    CHECK("isatty_both", isatty(m) && isatty(s));
    CHECK("ttyname_slave", ttyname(s) && strcmp(ttyname(s), want) == 0);
    EXPECT_ERR("tiocgptn_on_slave", ioctl(s, TIOCGPTN, &n), ENOTTY);
    struct termios t;
    CHECK("default_termios", tcgetattr(s, &t) == 0 && t.c_iflag == (ICRNL | IXON) &&
                                 t.c_oflag == (OPOST | ONLCR) &&
                                 t.c_lflag == (ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL |
                                               ECHOKE | IEXTEN) &&
                                 t.c_cc[VINTR] == 3 && t.c_cc[VEOF] == 4 && t.c_cc[VMIN] == 1 &&
                                 t.c_cc[VERASE] == 127);
    struct termios tm;
    CHECK("master_shares_termios", tcgetattr(m, &tm) == 0 && tm.c_lflag == t.c_lflag);
    pid_t pg = -1;
    EXPECT_ERR("tiocgpgrp_slave_not_ctty", ioctl(s, TIOCGPGRP, &pg), ENOTTY);
    CHECK("tiocgpgrp_master_none", ioctl(m, TIOCGPGRP, &pg) == 0 && pg == 0);
    EXPECT_ERR("tiocgsid_no_session", ioctl(m, TIOCGSID, &pg), ENOTTY);
    struct winsize ws = {24, 80, 0, 0}, got_ws;
    CHECK("winsize_round_trip", ioctl(m, TIOCSWINSZ, &ws) == 0 && ioctl(s, TIOCGWINSZ, &got_ws) == 0 &&
                                    got_ws.ws_row == 24 && got_ws.ws_col == 80);
    int q = -1;
    CHECK("tiocoutq_zero", ioctl(s, TIOCOUTQ, &q) == 0 && q == 0);
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    CHECK("tiocgptpeer", peer >= 0 && ttyname(peer) && strcmp(ttyname(peer), want) == 0);
    close(peer);
    close(s);
    close(m);
    EXPECT_ERR("name_gone_with_master", open(want, O_RDWR | O_NOCTTY), ENOENT);
}

static void line_discipline(void) {
    int m, s;
    char buf[256];
    open_pair(&m, &s, O_NONBLOCK);
    type_in(m, "ab\x7f" "c\n", 5);
    drain(m, buf, sizeof buf);
    check_str("echo_erase", buf, "ab\b \bc\r\n");
    int n = -1;
    CHECK("fionread_line", ioctl(s, FIONREAD, &n) == 0 && n == 3);
    CHECK("canonical_line", read(s, buf, sizeof buf) == 3 && memcmp(buf, "ac\n", 3) == 0);
    type_in(m, "part", 4);
    EXPECT_ERR("partial_line_waits", read(s, buf, sizeof buf), EAGAIN);
    type_in(m, "\x15", 1);
    type_in(m, "hello\n", 6);
    CHECK("short_read_then_rest", read(s, buf, 2) == 2 && read(s, buf, sizeof buf) == 4 &&
                                      memcmp(buf, "llo\n", 4) == 0);
    type_in(m, "q\x04", 2);
    CHECK("eof_ends_line", read(s, buf, sizeof buf) == 1 && buf[0] == 'q');
    type_in(m, "\x04", 1);
    EXPECT_EQ("eof_empty_line", read(s, buf, sizeof buf), 0);
    drain(m, buf, sizeof buf);
    type_in(m, "foo bar\x17" "\n", 9);
    drain(m, buf, sizeof buf);
    check_str("werase_echo", buf, "foo bar\b \b\b \b\b \b\r\n");
    CHECK("werase_line", read(s, buf, sizeof buf) == 5 && memcmp(buf, "foo \n", 5) == 0);
    type_in(m, "\x01" "x\n", 3);
    drain(m, buf, sizeof buf);
    check_str("echoctl", buf, "^Ax\r\n");
    read(s, buf, sizeof buf);
    type_in(m, "a\0b\n", 4);
    CHECK("nul_is_ordinary", read(s, buf, sizeof buf) == 4 && buf[1] == 0);
    type_in(m, "x\r", 2);
    CHECK("icrnl", read(s, buf, sizeof buf) == 2 && buf[1] == '\n');
    drain(m, buf, sizeof buf);
    set_lflag(s, ECHONL, ECHO);
    type_in(m, "silent\n", 7);
    drain(m, buf, sizeof buf);
    CHECK("echonl_without_echo", strcmp(buf, "\r\n") == 0);
    read(s, buf, sizeof buf);
    set_lflag(s, ECHO, ECHONL);
    write(s, "a\nb", 3);
    drain(m, buf, sizeof buf);
    CHECK("onlcr", strcmp(buf, "a\r\nb") == 0);
    struct termios t;
    tcgetattr(s, &t);
    t.c_oflag &= ~OPOST;
    tcsetattr(s, TCSANOW, &t);
    write(s, "a\nb", 3);
    drain(m, buf, sizeof buf);
    CHECK("no_opost", strcmp(buf, "a\nb") == 0);
    t.c_oflag |= OPOST;
    t.c_iflag |= IGNCR;
    tcsetattr(s, TCSANOW, &t);
    type_in(m, "y\r\n", 3);
    CHECK("igncr", read(s, buf, sizeof buf) == 2 && buf[0] == 'y' && buf[1] == '\n');
    drain(m, buf, sizeof buf);
    type_in(m, "abc\n", 4);
    n = -1;
    CHECK("tcflush_input", tcflush(s, TCIFLUSH) == 0 && ioctl(s, FIONREAD, &n) == 0 && n == 0);
    EXPECT_ERR("tcflush_bad_queue", ioctl(s, TCFLSH, 7), EINVAL);
    drain(m, buf, sizeof buf);
    /* Flow control: ^S stops slave output, ^Q restarts it; TCOOFF likewise. */
    type_in(m, "\x13", 1);
    EXPECT_ERR("ixon_stop", write(s, "z", 1), EAGAIN);
    CHECK("ixon_stop_no_pollout", !(revents(s) & POLLOUT));
    type_in(m, "\x11", 1);
    EXPECT_EQ("ixon_start", write(s, "z", 1), 1);
    EXPECT_EQ("tcooff", tcflow(s, TCOOFF), 0);
    EXPECT_ERR("tcooff_stops", write(s, "z", 1), EAGAIN);
    tcflow(s, TCOON);
    EXPECT_EQ("tcoon_restarts", write(s, "z", 1), 1);
    EXPECT_ERR("tcxonc_bad", ioctl(s, TCXONC, 9), EINVAL);
    drain(m, buf, sizeof buf);
    /* Raw mode: VMIN/VTIME. */
    cfmakeraw(&t);
    t.c_cc[VMIN] = 2;
    t.c_cc[VTIME] = 0;
    tcsetattr(s, TCSANOW, &t);
    type_in(m, "1", 1);
    CHECK("vmin_poll_needs_min", !(revents(s) & POLLIN));
    EXPECT_EQ("vmin_nonblock_takes_what_is_there", read(s, buf, sizeof buf), 1);
    int fl = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
    t.c_cc[VMIN] = 0;
    tcsetattr(s, TCSANOW, &t);
    EXPECT_EQ("vmin0_vtime0_returns_at_once", read(s, buf, sizeof buf), 0);
    t.c_cc[VTIME] = 2;
    tcsetattr(s, TCSANOW, &t);
    double t0 = now();
    n = (int)read(s, buf, sizeof buf);
    double dt = now() - t0;
    CHECK("vtime_times_out", n == 0 && dt > 0.15 && dt < 2.0);
    t.c_cc[VMIN] = 3;
    t.c_cc[VTIME] = 0;
    tcsetattr(s, TCSANOW, &t);
    pid_t c = fork();
    if (c == 0) {
        usleep(50000);
        type_in(m, "ab", 2);
        usleep(50000);
        type_in(m, "c", 1);
        _exit(0);
    }
    BOUNDED("vmin_waits_for_min", 5)
    EXPECT_EQ("vmin_waits_for_min", read(s, buf, sizeof buf), 3);
    alarm(0);
    waitpid(c, NULL, 0);
    c = fork();
    if (c == 0) {
        usleep(50000);
        _exit(0);
    }
    BOUNDED("blocked_read_eintr", 2)
    EXPECT_ERR("blocked_read_eintr", read(s, buf, sizeof buf), EINTR);
    waitpid(c, NULL, 0);
    drain(m, buf, sizeof buf);
    close(s);
    CHECK("slave_close_pollhup", (revents(m) & (POLLHUP | POLLIN)) == POLLHUP);
    EXPECT_ERR("slave_close_master_eio", read(m, buf, sizeof buf), EIO);
    close(m);
}

static void readiness(void) {
    int m, s;
    char buf[64];
    open_pair(&m, &s, 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = m}, out;
    epoll_ctl(ep, EPOLL_CTL_ADD, m, &ev);
    EXPECT_EQ("epoll_master_idle", epoll_wait(ep, &out, 1, 0), 0);
    write(s, "x", 1);
    EXPECT_EQ("epoll_master_ready", epoll_wait(ep, &out, 1, 1000), 1);
    read(m, buf, sizeof buf);
    pid_t c = fork();
    if (c == 0) {
        usleep(50000);
        type_in(m, "wake\n", 5);
        _exit(0);
    }
    struct pollfd p = {s, POLLIN, 0};
    CHECK("poll_slave_wakes_on_line", poll(&p, 1, 5000) == 1 && p.revents == POLLIN);
    waitpid(c, NULL, 0);
    CHECK("blocking_read_line", read(s, buf, sizeof buf) == 5);
    close(ep);
    close(s);
    close(m);
}

/* Children report with their exit status: 0 is success. */
static int child_status(pid_t c) {
    int st;
    if (waitpid(c, &st, 0) != c) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static void sessions(void) {
    int m = open_master(0);
    char *name = strdup(ptsname(m));
    char buf[64];
    /* Opening the slave in a session leader makes it the controlling terminal. */
    pid_t c = fork();
    if (c == 0) {
        int s = new_session_with(name);
        pid_t sid = -1, pg = -1;
        if (ioctl(s, TIOCGSID, &sid) != 0 || sid != getpid()) _exit(1);
        if (tcgetpgrp(s) != getpgrp()) _exit(2);
        int t = open("/dev/tty", O_RDWR);
        if (t < 0) _exit(3);
        /* A child inherits it; after setsid it has none. */
        pid_t g = fork();
        if (g == 0) {
            int u = open("/dev/tty", O_RDWR);
            if (u < 0) _exit(4);
            setsid();
            _exit(open("/dev/tty", O_RDWR) == -1 && errno == ENXIO ? 0 : 5);
        }
        int r = child_status(g);
        if (r) _exit(r);
        /* Another process of the session cannot take it with TIOCSCTTY. */
        g = fork();
        if (g == 0) _exit(ioctl(s, TIOCSCTTY, 0) == -1 && errno == EPERM ? 0 : 6);
        if ((r = child_status(g))) _exit(r);
        if (ioctl(s, TIOCSCTTY, 0) != 0) _exit(7); /* already its own: 0 */
        /* TIOCNOTTY by the leader: SIGHUP and SIGCONT to the foreground group (itself). */
        signal(SIGHUP, on_sig);
        if (ioctl(s, TIOCNOTTY) != 0) _exit(8);
        if (got != SIGHUP) _exit(9);
        if (open("/dev/tty", O_RDWR) != -1 || errno != ENXIO) _exit(10);
        if (ioctl(s, TIOCGPGRP, &pg) != -1 || errno != ENOTTY) _exit(11);
        /* TIOCSCTTY takes it back. */
        if (ioctl(s, TIOCSCTTY, 0) != 0 || tcgetpgrp(s) != getpgrp()) _exit(12);
        _exit(0);
    }
    EXPECT_EQ("session_leader_acquires_ctty", child_status(c), 0);
    c = fork();
    if (c == 0) {
        setsid();
        _exit(open("/dev/tty", O_RDWR) == -1 && errno == ENXIO ? 0 : 1);
    }
    EXPECT_EQ("dev_tty_without_ctty_enxio", child_status(c), 0);
    c = fork();
    if (c == 0) {
        setsid();
        int s = open(name, O_RDWR | O_NOCTTY);
        pid_t pg;
        if (ioctl(s, TIOCGPGRP, &pg) != -1 || errno != ENOTTY) _exit(1);
        if (ioctl(s, TIOCSCTTY, 0) != 0) _exit(2);
        _exit(tcgetsid(s) == getpid() ? 0 : 3);
    }
    EXPECT_EQ("noctty_then_tiocsctty", child_status(c), 0);
    /* tcsetpgrp: groups of the session only. */
    c = fork();
    if (c == 0) {
        int s = new_session_with(name);
        pid_t g = fork();
        if (g == 0) {
            setpgid(0, 0);
            pause();
            _exit(0);
        }
        setpgid(g, g);
        int r = 0;
        if (tcsetpgrp(s, g) != 0 || tcgetpgrp(s) != g) r = 1;
        /* Now in the background, and orphaned (the parent is of another session): no
         * SIGTTOU to stop it, ENOTTY instead. */
        else if (tcsetpgrp(s, getpgrp()) != -1 || errno != ENOTTY) r = 2;
        /* Ignoring SIGTTOU (as shells do) lets it through. */
        signal(SIGTTOU, SIG_IGN);
        if (r) {
        } else if (tcsetpgrp(s, 999999) != -1 || errno != ESRCH) r = 3;
        else if (tcsetpgrp(s, getpgid(getppid())) != -1 || errno != EPERM) r = 4;
        else if (tcsetpgrp(s, -1) != -1 || errno != EINVAL) r = 5;
        else if (tcsetpgrp(s, getpgrp()) != 0 || tcgetpgrp(s) != getpgrp()) r = 6;
        kill(g, SIGKILL);
        waitpid(g, NULL, 0);
        _exit(r);
    }
    EXPECT_EQ("tcsetpgrp_rules", child_status(c), 0);
    /* SIGWINCH to the foreground group on a size change. */
    c = fork();
    if (c == 0) {
        signal(SIGWINCH, on_sig);
        new_session_with(name);
        struct winsize ws = {10, 20, 0, 0};
        ioctl(m, TIOCSWINSZ, &ws);
        _exit(got == SIGWINCH ? 0 : 1);
    }
    EXPECT_EQ("sigwinch_on_resize", child_status(c), 0);
    /* ISIG: ^C from the master is SIGINT for the foreground group. */
    int ready[2];
    pipe(ready);
    c = fork();
    if (c == 0) {
        signal(SIGINT, on_sig);
        new_session_with(name);
        write(ready[1], "r", 1);
        signal(SIGALRM, SIG_DFL);
        alarm(5);
        while (got != SIGINT) pause();
        _exit(0);
    }
    read(ready[0], buf, 1);
    type_in(m, "abc\x03", 4);
    EXPECT_EQ("vintr_sends_sigint", child_status(c), 0);
    usleep(10000);
    int fl = fcntl(m, F_GETFL);
    fcntl(m, F_SETFL, fl | O_NONBLOCK);
    drain(m, buf, sizeof buf);
    /* Echoes go out at the end of each batch of input: ^C discards the batch's. */
    check_str("vintr_echo", buf, "^C");
    fcntl(m, F_SETFL, fl);
    close(ready[0]);
    close(ready[1]);
    close(m);
    free(name);
}

/* A background member of the session reading, writing, setting modes. */
static int background(int op) {
    int m = open_master(0);
    pid_t c = fork();
    if (c == 0) {
        int s = new_session_with(ptsname(m));
        if (op == 3) set_lflag(s, TOSTOP, 0);
        pid_t g = fork();
        if (g == 0) {
            setpgid(0, 0);
            char b[4];
            struct termios t;
            switch (op) {
            case 0: read(s, b, 1); break;
            case 1: signal(SIGTTIN, SIG_IGN); _exit(read(s, b, 1) == -1 && errno == EIO ? 0 : 1);
            case 2: _exit(write(s, "x", 1) == 1 ? 0 : 1);
            case 3: write(s, "x", 1); break;
            case 4: tcgetattr(s, &t); tcsetattr(s, TCSANOW, &t); break;
            }
            _exit(50);
        }
        setpgid(g, g);
        int st;
        waitpid(g, &st, WUNTRACED);
        if (WIFSTOPPED(st)) {
            kill(g, SIGKILL);
            waitpid(g, NULL, 0);
            _exit(WSTOPSIG(st));
        }
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 99);
    }
    int r = child_status(c);
    close(m);
    return r;
}

static void job_control(void) {
    EXPECT_EQ("background_read_sigttin", background(0), SIGTTIN);
    EXPECT_EQ("background_read_ignored_eio", background(1), 0);
    EXPECT_EQ("background_write_allowed", background(2), 0);
    EXPECT_EQ("background_write_tostop_sigttou", background(3), SIGTTOU);
    EXPECT_EQ("background_tcsetattr_sigttou", background(4), SIGTTOU);
}

static void hangups(void) {
    int m = open_master(0);
    char *name = strdup(ptsname(m));
    int ready[2];
    pipe(ready);
    pid_t c = fork();
    if (c == 0) {
        signal(SIGHUP, on_sig);
        close(m);
        int s = new_session_with(name);
        write(ready[1], "r", 1);
        signal(SIGALRM, SIG_DFL);
        alarm(5);
        while (got != SIGHUP) pause();
        char b[4];
        if (read(s, b, sizeof b) != 0) _exit(1);
        if (write(s, "x", 1) != -1 || errno != EIO) _exit(2);
        if (revents(s) != (POLLIN | POLLOUT | POLLERR | POLLHUP)) _exit(3);
        if (open("/dev/tty", O_RDWR) != -1) _exit(4);
        _exit(0);
    }
    char b;
    read(ready[0], &b, 1);
    close(m);
    EXPECT_EQ("master_close_hangs_up_session", child_status(c), 0);
    /* The session leader's exit hangs up its foreground group. */
    m = open_master(0);
    free(name);
    name = strdup(ptsname(m));
    c = fork();
    if (c == 0) {
        new_session_with(name);
        pid_t g = fork();
        if (g == 0) {
            signal(SIGHUP, on_sig);
            write(ready[1], "r", 1);
            signal(SIGALRM, SIG_DFL);
            alarm(5);
            while (got != SIGHUP) pause();
            write(ready[1], "h", 1);
            _exit(0);
        }
        read(ready[0], &b, 1);
        _exit(0);
    }
    close(ready[1]);
    child_status(c);
    char h = 0;
    CHECK("leader_exit_sighup_foreground", read(ready[0], &h, 1) == 1 && h == 'h');
    close(ready[0]);
    close(m);
    free(name);
}

int main(void) {
    basics();
    line_discipline();
    readiness();
    sessions();
    job_control();
    hangups();
    return DONE();
}
