//! Running one program with a time limit and collecting its run.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use crate::output::{parse, Run, Termination};

/// How many bytes of stderr a run keeps (its end).
const STDERR_TAIL: usize = 2000;

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
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut s) = stream {
                // A read error only shortens what is shown; the cases read so far stand.
                let _ = s.read_to_end(&mut buf);
            }
            buf
        })
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
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
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
    fn reports_a_missing_program() {
        let r = run(Command::new("/nonexistent/program"), Duration::from_secs(1));
        assert!(matches!(r.termination, Termination::SpawnFailed(_)));
    }
}
