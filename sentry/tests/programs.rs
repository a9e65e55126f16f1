//! Real programs, compiled here with gcc, run on the Sentry on every platform the host
//! has: their output, exit status and fatal signals must be what Linux gives.

mod common;

use std::process::Command;

use common::{compile, run_in_sandbox as run};
use sentry::kernel::ExitStatus;

const NOSTDLIB_HELLO: &str = r#"
static long sys(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
void _start(void) {
    static const char msg[] = "hello from the sentry\n";
    sys(1, 1, (long)msg, sizeof msg - 1);
    sys(231, 42, 0, 0);
    for (;;) {}
}
"#;

const GLIBC_HELLO: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    char *heap = malloc(1 << 20);          /* brk or mmap */
    memset(heap, 'x', 1 << 20);
    printf("argc=%d argv1=%s heap=%c\n", argc, argv[1], heap[12345]);
    return 3;
}
"#;

const SEGFAULT: &str = r#"
int main(void) { *(volatile int *)8 = 1; return 0; }
"#;

/// Processes, signals, threads and time: its output must match a native run exactly.
const PROCESSES: &str = r#"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static volatile sig_atomic_t got, from_parent;
static void on_usr1(int sig, siginfo_t *si, void *uc) { got = sig; from_parent = si->si_pid == getppid() || si->si_pid == getpid(); }
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int counter;
static void *worker(void *arg) {
    for (int i = 0; i < 1000; i++) { pthread_mutex_lock(&lock); counter++; pthread_mutex_unlock(&lock); }
    pthread_mutex_lock(&lock); pthread_cond_signal(&cond); pthread_mutex_unlock(&lock);
    return arg;
}
int main(int argc, char **argv) {
    if (argc > 1) { printf("exec: %s\n", argv[1]); return 5; }
    setvbuf(stdout, NULL, _IONBF, 0);
    int st;
    pid_t p = fork();
    if (p == 0) _exit(7);
    printf("wait: %d %d\n", waitpid(p, &st, 0) == p, WEXITSTATUS(st));
    p = fork();
    if (p == 0) { execl(argv[0], argv[0], "hello", (char *)0); _exit(99); }
    waitpid(p, &st, 0);
    printf("exec status: %d\n", WEXITSTATUS(st));
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1; sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, 0);
    sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, 0);
    kill(getpid(), SIGUSR1);
    sigset_t pend; sigpending(&pend);
    printf("pending while blocked: %d handled: %d\n", sigismember(&pend, SIGUSR1), got);
    sigprocmask(SIG_UNBLOCK, &set, 0);
    printf("after unblock: %d from self: %d\n", got, from_parent);
    p = fork();
    if (p == 0) { for (;;) pause(); }
    kill(p, SIGTERM);
    waitpid(p, &st, 0);
    printf("killed: %d by %d\n", WIFSIGNALED(st), WTERMSIG(st));
    printf("no children: %d\n", waitpid(-1, &st, WNOHANG) == -1);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, worker, (void *)(long)i);
    long sum = 0;
    for (int i = 0; i < 4; i++) { void *r; pthread_join(t[i], &r); sum += (long)r; }
    printf("threads: counter %d sum %ld\n", counter, sum);
    struct timespec a, b, d = {0, 20 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &a);
    nanosleep(&d, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    printf("slept >= 20ms: %d\n", ms >= 20);
    return 0;
}
"#;

/// The vDSO: present, agreeing with the syscall, and monotonic.
const VDSO: &str = r#"
#include <stdio.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static long long ns(struct timespec t) { return t.tv_sec * 1000000000LL + t.tv_nsec; }
int main(void) {
    int ok = getauxval(AT_SYSINFO_EHDR) != 0;
    struct timespec a, b, prev = {0, 0};
    int backwards = 0;
    for (int i = 0; i < 20000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        if (ns(a) < ns(prev)) backwards++;
        prev = a;
    }
    for (int clock = 0; clock < 2; clock++) {
        clock_gettime(clock, &a);
        syscall(SYS_clock_gettime, clock, &b);
        long long d = ns(b) - ns(a);
        if (d < 0 || d > 50000000) ok = 0;
    }
    printf("vdso %d backwards %d\n", ok, backwards);
    return 0;
}
"#;

fn check_programs(name: &str) {
    let hello = compile(
        "nostdlib-hello",
        NOSTDLIB_HELLO,
        &["-static", "-nostdlib", "-O1"],
    );
    let Some((status, out)) = run(name, &hello, &["hello"]) else {
        return;
    };
    assert_eq!(
        (status, out.as_str()),
        (ExitStatus::Exited(42), "hello from the sentry\n")
    );

    let glibc = compile("glibc-hello", GLIBC_HELLO, &["-static", "-O1"]);
    let (status, out) = run(name, &glibc, &["glibc-hello", "world"]).unwrap();
    assert_eq!(
        (status, out.as_str()),
        (ExitStatus::Exited(3), "argc=2 argv1=world heap=x\n")
    );

    let pie = compile("glibc-static-pie", GLIBC_HELLO, &["-static-pie", "-O1"]);
    let (status, out) = run(name, &pie, &["pie", "again"]).unwrap();
    assert_eq!(
        (status, out.as_str()),
        (ExitStatus::Exited(3), "argc=2 argv1=again heap=x\n")
    );

    let procs = compile("processes", PROCESSES, &["-static", "-O1", "-pthread"]);
    let native = Command::new(&procs).output().unwrap();
    let native_out = String::from_utf8(native.stdout).unwrap();
    assert!(native.status.success(), "the program passes natively first");
    let (status, out) = run(name, &procs, &[procs.to_str().unwrap()]).unwrap();
    assert_eq!(
        (status, out.as_str()),
        (ExitStatus::Exited(0), native_out.as_str())
    );

    let vdso = compile("vdso", VDSO, &["-static", "-O1"]);
    let (status, out) = run(name, &vdso, &["vdso"]).unwrap();
    assert_eq!(
        (status, out.as_str()),
        (ExitStatus::Exited(0), "vdso 1 backwards 0\n")
    );

    let segv = compile("segfault", SEGFAULT, &["-static", "-O1"]);
    let (status, _) = run(name, &segv, &["segfault"]).unwrap();
    assert_eq!(status, ExitStatus::Signaled(11));
}

#[test]
fn programs_on_systrap() {
    check_programs("systrap");
}

#[test]
fn programs_on_kvm() {
    check_programs("kvm");
}
