//! Running one program with a time limit and collecting its run.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use crate::output::{parse, Run, Termination};

/// How many bytes of stderr a run keeps (its end).
const STDERR_TAIL: usize = 2000;
/// How long to wait for the output pipes to close once the program's group is gone.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Marks every descriptor this process inherited above stderr close-on-exec, so that the
/// programs start with only stdin, stdout and stderr open, as they do under Bulwark. A
/// harness that leaks a descriptor (a CI runner's, a terminal's) would otherwise change
/// what a program sees. (It cannot shrink the descriptor array a program inherits, which
/// `select` and `/proc/self/status` reveal: tests must not depend on its size.)
///
/// Call it before starting threads that open descriptors of their own.
pub fn close_inherited_on_exec() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: `fd` was listed as open just now, and this process closes only the
        // descriptors it opened itself; the one `read_dir` used is gone, and a failed
        // `fcntl` on it (EBADF) is harmless.
        let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = rustix::io::fcntl_getfd(fd) {
            let _ = rustix::io::fcntl_setfd(fd, flags | rustix::io::FdFlags::CLOEXEC);
        }
    }
}

/// Runs `cmd` in a process group of its own, kills the whole group after `limit` (and
/// once the program has exited, so that no stray child outlives its run), and parses
/// its stdout.
pub fn run(mut cmd: Command, limit: Duration) -> Run {
    let start = Instant::now();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Run {
                cases: Vec::new(),
                termination: Termination::SpawnFailed(e.to_string()),
                stderr_tail: String::new(),
                elapsed: start.elapsed(),
            }
        }
    };
    let group = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
    // Readers append to shared buffers, so that a process outside the group that keeps a
    // pipe open cannot hold the run: what was read by then is used.
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let shared = Arc::clone(&buf);
        std::thread::spawn(move || {
            if let Some(mut s) = stream {
                let mut chunk = [0u8; 8192];
                // A read error ends the stream; the cases read so far stand.
                while let Ok(n @ 1..) = s.read(&mut chunk) {
                    shared
                        .lock()
                        .expect("buffer lock")
                        .extend_from_slice(&chunk[..n]);
                }
            }
            let _ = done_tx.send(());
        });
        (buf, done_rx)
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let kill_group = || {
        if let Some(g) = group {
            // ESRCH (the group is already gone) is the usual, fine answer.
            let _ = kill_process_group(g, Signal::KILL);
        }
    };
    let termination = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break match (status.code(), status.signal()) {
                    (Some(code), _) => Termination::Exited(code),
                    (None, Some(sig)) => Termination::Signaled(sig),
                    (None, None) => Termination::SpawnFailed(format!("unknown status {status}")),
                };
            }
            Ok(None) if start.elapsed() >= limit => {
                kill_group();
                let _ = child.wait();
                break Termination::TimedOut(limit.as_secs());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => break Termination::SpawnFailed(format!("waiting: {e}")),
        }
    };
    kill_group();
    let drain_deadline = Instant::now() + DRAIN_LIMIT;
    let collect = |(buf, done): (Arc<Mutex<Vec<u8>>>, mpsc::Receiver<()>)| {
        // Disconnected (the reader panicked) or timed out: take what is there.
        let _ = done.recv_timeout(drain_deadline.saturating_duration_since(Instant::now()));
        let bytes = buf.lock().expect("buffer lock").clone();
        bytes
    };
    let stdout = collect(stdout);
    let stderr = collect(stderr);
    let stderr = String::from_utf8_lossy(&stderr);
    let mut cut = stderr.len().saturating_sub(STDERR_TAIL);
    while !stderr.is_char_boundary(cut) {
        cut += 1;
    }
    Run {
        cases: parse(&String::from_utf8_lossy(&stdout)),
        termination,
        stderr_tail: stderr[cut..].to_string(),
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn inherited_descriptors_do_not_reach_the_program() {
        use std::os::fd::AsRawFd;
        // `dup` leaves close-on-exec clear, as a harness's leaked descriptor has it.
        let leaked = rustix::io::dup(std::io::stderr()).expect("dup");
        let n = leaked.as_raw_fd();
        close_inherited_on_exec();
        let r = run(
            sh(&format!(
                "if [ -e /proc/self/fd/{n} ]; then echo 'FAIL open'; else echo ok closed; fi"
            )),
            Duration::from_secs(10),
        );
        assert_eq!(r.cases.len(), 1);
        assert_eq!(
            r.cases[0].outcome,
            crate::output::Outcome::Ok,
            "{:?}",
            r.cases
        );
    }

    #[test]
    fn collects_cases_and_status() {
        let r = run(
            sh("echo ok a; echo 'FAIL b: x'; echo err >&2; exit 3"),
            Duration::from_secs(10),
        );
        assert_eq!(r.cases.len(), 2);
        assert_eq!(r.termination, Termination::Exited(3));
        assert_eq!(r.stderr_tail, "err\n");
    }

    #[test]
    fn kills_a_program_that_hangs_and_its_children() {
        let r = run(
            sh("echo ok a; sleep 100 & sleep 100"),
            Duration::from_millis(300),
        );
        assert_eq!(r.termination, Termination::TimedOut(0));
        assert_eq!(r.cases.len(), 1);
        assert!(r.elapsed < Duration::from_secs(5));
    }

    #[test]
    fn a_process_outside_the_group_cannot_hold_the_run() {
        let r = run(
            sh("echo ok a; setsid sleep 8 & exit 0"),
            Duration::from_secs(20),
        );
        assert_eq!(r.termination, Termination::Exited(0));
        assert_eq!(r.cases.len(), 1);
        assert!(r.elapsed < Duration::from_secs(7), "{:?}", r.elapsed);
    }

    #[test]
    fn reports_a_missing_program() {
        let r = run(Command::new("/nonexistent/program"), Duration::from_secs(1));
        assert!(matches!(r.termination, Termination::SpawnFailed(_)));
    }
}
