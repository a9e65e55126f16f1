//! The host's ordinary dynamically linked programs under `bulwark do`, as people run
//! them: bash scripts, coreutils and findutils, Python, Perl, gcc and git. Output is
//! compared with the same command run natively where it is deterministic.

mod common;

use std::process::{Command, Stdio};

use common::{bulwark_do, platforms};

/// Whether missing tools fail the test (CI) rather than being reported as not tested.
fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The host's Python interpreter itself (not a launcher script in front of it).
fn python() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !path.is_empty()).then_some(path)
}

/// Whether `tool` is on the host; in CI its absence fails the test.
fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(!ci(), "{tool} is missing (scripts/setup installs it)");
        eprintln!("{tool} not found: NOT TESTED");
    }
    found
}

/// Runs `args` natively.
fn native(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .expect("running natively");
    assert!(
        out.status.success(),
        "natively: {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` under each platform, checks it succeeded, and returns its output.
fn sandboxed(args: &[&str]) -> Vec<(&'static str, String)> {
    platforms()
        .into_iter()
        .map(|p| {
            let out = bulwark_do(p, args);
            assert!(
                out.status.success(),
                "{p}: {args:?}: {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            (p, String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .collect()
}

/// Runs `args` natively and in the sandbox and expects the same output.
fn same_as_native(args: &[&str]) {
    let want = native(args);
    for (p, got) in sandboxed(args) {
        assert_eq!(got, want, "{p}: {args:?}");
    }
}

const BASH_SCRIPT: &str = r#"
set -e
cd /
trap 'echo trapped USR1' USR1
words=$(printf 'b\na\nc\n' | sort | tr '\n' ' ')
echo "sorted: $words"
( cd /usr && echo "subshell in $(pwd)" ); echo "back in $(pwd)"
for i in 1 2 3; do (sleep 0.0$i; echo "job $i") & done
wait
kill -USR1 $$
sleep 0.05 &
wait $!
echo "last status $?"
f() { local x=$1; echo $((x * 6)); }
echo "function: $(f 7)"
echo done
"#;

#[test]
fn bash_scripts() {
    if !have("bash") {
        return;
    }
    let out = sandboxed(&["/bin/bash", "-c", BASH_SCRIPT]);
    for (p, got) in out {
        let mut lines: Vec<&str> = got.lines().collect();
        // The three background jobs finish in an order of their own.
        lines[3..6].sort_unstable();
        assert_eq!(
            lines,
            [
                "sorted: a b c ",
                "subshell in /usr",
                "back in /",
                "job 1",
                "job 2",
                "job 3",
                "trapped USR1",
                "last status 0",
                "function: 42",
                "done"
            ],
            "{p}"
        );
    }
}

#[test]
fn coreutils_and_findutils() {
    same_as_native(&["/bin/ls", "-la", "--time-style=+%s", "/usr/share/doc/bash"]);
    same_as_native(&[
        "/usr/bin/stat",
        "-c",
        "%n %s %a %u %g %F",
        "/etc/passwd",
        "/usr/bin",
    ]);
    same_as_native(&["/usr/bin/id"]);
    same_as_native(&[
        "/bin/sh",
        "-c",
        "seq 1 2000 | sort -r | uniq -c | sort -n | tail -3; \
         find /usr/share/doc/bash -type f -exec wc -c {} + | sort | tail -2; \
         seq 1 40 | xargs -P4 -n3 echo | wc -l",
    ]);
    let sha = native(&["/bin/sh", "-c", "head -c 104857600 /dev/zero | sha256sum"]);
    let year = native(&["/bin/date", "+%Y"]);
    let script = "cp -a /usr/share/doc/bash /tmp/d && diff -r /usr/share/doc/bash /tmp/d && \
                  stat -c %Y /usr/share/doc/bash/copyright > /tmp/a && \
                  stat -c %Y /tmp/d/copyright > /tmp/b && cmp /tmp/a /tmp/b && echo copied; \
                  head -c 104857600 /dev/zero | sha256sum; date +%Y; df -P / | tail -1 | wc -w";
    for (p, out) in sandboxed(&["/bin/sh", "-c", script]) {
        assert_eq!(out, format!("copied\n{sha}{year}6\n"), "{p}");
    }
}

const PYTHON_SCRIPT: &str = r#"
import json, os, signal, sqlite3, subprocess, sys, threading, multiprocessing
print(json.loads(json.dumps({"a": [1, 2, {"b": None}]})))
m = sqlite3.connect(":memory:")
m.execute("create table t(x)")
m.executemany("insert into t values (?)", [(i,) for i in range(100)])
print(m.execute("select sum(x) from t").fetchone()[0])
db = sys.argv[1]
d = sqlite3.connect(db)
d.execute("create table t(x)"); d.execute("insert into t values (7)"); d.commit(); d.close()
print(sqlite3.connect(db).execute("select x from t").fetchone()[0])
seen = []
lock = threading.Lock()
def work(i):
    with lock:
        seen.append(i)
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
print(sorted(seen))
print(subprocess.run(["ls", "/usr/share/doc/bash"], capture_output=True, text=True).stdout.split()[:1])
def square(x):
    return x * x
with multiprocessing.Pool(4) as pool:
    print(pool.map(square, range(6)))
got = []
signal.signal(signal.SIGALRM, lambda s, f: got.append(s))
signal.alarm(1)
signal.pause()
print("alarm", got)
pid = os.fork()
if pid == 0:
    os._exit(5)
print("child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"#;

#[test]
fn python3_modules() {
    let Some(python) = python() else {
        assert!(!ci(), "python3 is missing");
        eprintln!("python3 not found: NOT TESTED");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("native.db");
    let want = native(&[&python, "-c", PYTHON_SCRIPT, db.to_str().unwrap()]);
    assert!(want.ends_with("child 5\n"), "natively: {want}");
    // In the sandbox the database goes to the overlay, and vanishes with it.
    let db = dir.path().join("sandboxed.db");
    for (p, got) in sandboxed(&[&python, "-c", PYTHON_SCRIPT, db.to_str().unwrap()]) {
        assert_eq!(got, want, "{p}");
    }
}

#[test]
fn perl_regex_and_fork() {
    if !have("perl") {
        return;
    }
    same_as_native(&[
        "/usr/bin/perl",
        "-e",
        r#"my $n = 0; for my $i (1..200000) { $n++ if "k$i" =~ /^k(\d*)7(\d)$/ } print "$n\n";
           my $p = fork(); if (!$p) { exit 9 } waitpid($p, 0); print $? >> 8, "\n";"#,
    ]);
}

/// Shared memory written by a forked child, a message through a queue, and a semaphore,
/// with Perl's built-in System V IPC.
const PERL_SYSV_IPC: &str = r#"
use strict; use IPC::SysV qw(IPC_PRIVATE IPC_RMID S_IRWXU GETVAL);
my $id = shmget(IPC_PRIVATE, 1024, S_IRWXU) // die "shmget: $!";
shmwrite($id, "hello", 0, 5) or die "shmwrite: $!";
my $pid = fork();
if (!$pid) { shmwrite($id, "HELLO", 0, 5) or die; exit 0; }
waitpid($pid, 0);
shmread($id, my $buf, 0, 5) or die "shmread: $!";
shmctl($id, IPC_RMID, 0) or die "shmctl: $!";
my $q = msgget(IPC_PRIVATE, S_IRWXU) // die "msgget: $!";
msgsnd($q, pack("l! a*", 3, "msg-three"), 0) or die "msgsnd: $!";
msgrcv($q, my $m, 100, 0, 0) or die "msgrcv: $!";
my ($type, $text) = unpack("l! a*", $m);
msgctl($q, IPC_RMID, 0) or die "msgctl: $!";
my $s = semget(IPC_PRIVATE, 1, S_IRWXU) // die "semget: $!";
semop($s, pack("s!3", 0, 2, 0)) or die "semop: $!";
my $v = semctl($s, 0, GETVAL, 0);
semctl($s, 0, IPC_RMID, 0) or die "semctl: $!";
print "$buf $type $text $v\n";
"#;

#[test]
fn perl_system_v_ipc() {
    if !have("perl") {
        return;
    }
    same_as_native(&["/usr/bin/perl", "-e", PERL_SYSV_IPC]);
}

const C_PROGRAM: &str = r#"
#include <pthread.h>
#include <stdio.h>
static long n;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static void *work(void *a) {
    for (int i = 0; i < 100000; i++) { pthread_mutex_lock(&m); n++; pthread_mutex_unlock(&m); }
    return a;
}
int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, work, 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    printf("%ld\n", n);
    return 0;
}
"#;

#[test]
fn gcc_compiles_and_runs_a_threaded_program() {
    if !have("gcc") {
        return;
    }
    let script =
        format!("cd /tmp && cat > t.c <<'EOF'\n{C_PROGRAM}\nEOF\ngcc -O2 -pthread -o t t.c && ./t");
    for (p, out) in sandboxed(&["/bin/sh", "-c", &script]) {
        assert_eq!(out, "400000\n", "{p}");
    }
}

#[test]
fn git_init_add_commit_log() {
    if !have("git") {
        return;
    }
    let script = "cd /tmp && mkdir repo && cd repo && git init -q -b main && \
                  git config user.email t@example.com && git config user.name Tester && \
                  echo one > a && git add a && git commit -qm first && \
                  echo two >> a && git commit -qam second && \
                  git log --format=%s && git status --short | wc -l";
    for (p, out) in sandboxed(&["/bin/sh", "-c", script]) {
        assert_eq!(out, "second\nfirst\n0\n", "{p}");
    }
}
