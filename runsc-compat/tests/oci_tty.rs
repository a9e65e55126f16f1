//! Terminals for OCI containers: `process.terminal` with `--console-socket`, as containerd's
//! shim and conmon use it. The test is the console socket's server: it receives the
//! master of the container's terminal and types into an interactive busybox sh.

mod common;

use std::io::{IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};

struct Fixture {
    dir: tempfile::TempDir,
    platform: &'static str,
}

impl Fixture {
    /// A bundle running `args` on busybox, with `process.terminal` set to `terminal`,
    /// and a state root of its own.
    fn new(platform: &'static str, args: &[&str], terminal: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::busybox_bundle(
            dir.path(),
            &["proc", "dev", "tmp"],
            &["sh", "echo", "sleep", "stty", "tty", "cat"],
        );
        config["process"]["args"] = serde_json::json!(args);
        config["process"]["terminal"] = serde_json::json!(terminal);
        let f = Self { dir, platform };
        std::fs::write(f.bundle().join("config.json"), config.to_string()).unwrap();
        f
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs a command, its output to files (see `common::bulwark_in`).
    fn bulwark(&self, args: &[&str]) -> Output {
        common::bulwark_in(self.dir.path(), self.platform, args)
    }

    fn pid(&self, file: &str) -> rustix::process::Pid {
        let pid: i32 = std::fs::read_to_string(self.path(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        rustix::process::Pid::from_raw(pid).unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Receives the one message of runc's console protocol: the pty's name, and its master
/// as `SCM_RIGHTS`.
fn receive_master(listener: &UnixListener) -> (String, OwnedFd) {
    let (conn, _) = listener.accept().unwrap();
    let mut name = [0u8; 4096];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        &conn,
        &mut [IoSliceMut::new(&mut name)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .unwrap();
    let mut fds: Vec<OwnedFd> = control
        .drain()
        .filter_map(|m| match m {
            RecvAncillaryMessage::ScmRights(fds) => Some(fds.collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(fds.len(), 1, "one descriptor");
    (text(&name[..msg.bytes]), fds.remove(0))
}

/// The master side of a container's terminal: what was typed and what came out.
struct Console {
    master: std::fs::File,
    output: Arc<Mutex<Vec<u8>>>,
    /// How much of the output `expect` has consumed.
    seen: usize,
}

impl Console {
    fn new(master: OwnedFd) -> Self {
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the slave side is gone.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            master,
            output,
            seen: 0,
        }
    }

    fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }

    /// Waits for `want` in the output past what was consumed, and consumes up to it.
    fn expect(&mut self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let out = self.output.lock().unwrap();
                let new = text(&out[self.seen..]);
                if let Some(at) = new.find(want) {
                    self.seen += new[..at + want.len()].len();
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "never saw {want:?}; the terminal showed {new:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn resize(&self, rows: u16, cols: u16) {
        let ws = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&self.master, ws).unwrap();
    }
}

/// What an interactive shell on the terminal must do: run a command, see a resize
/// (SIGWINCH and the new size), and have Ctrl-C interrupt its foreground job.
fn drive_shell(c: &mut Console) {
    c.expect("# ");
    c.send("echo $((6*7))\r");
    c.expect("42");
    c.expect("# ");
    c.send("tty\r");
    c.expect("/dev/pts/");
    c.expect("# ");
    // The foreground job gets SIGWINCH (busybox's line editing takes the shell's own
    // while it reads a line, so a child shell waits for it).
    c.send("sh -c 'trap \"echo got-winch\" WINCH; echo ready; sleep 5 & wait'\r");
    c.expect("ready\r\n");
    c.resize(33, 101);
    c.expect("got-winch");
    c.expect("# ");
    c.send("stty size\r");
    c.expect("33 101");
    c.expect("# ");
    let begin = Instant::now();
    c.send("sleep 100; echo not-$((0))interrupted\r");
    std::thread::sleep(Duration::from_millis(500));
    c.send("\x03");
    c.expect("# ");
    c.send("echo after-$((1+1))\r");
    c.expect("after-2");
    assert!(
        begin.elapsed() < Duration::from_secs(60),
        "Ctrl-C did not interrupt sleep"
    );
    let all = text(&c.output.lock().unwrap());
    assert!(
        !all.contains("not-0interrupted"),
        "the whole line is interrupted: {all:?}"
    );
}

fn set_subreaper() {
    // The Sentry and `exec`'s waiter outlive the `bulwark` that starts them: as their
    // subreaper, the test can wait for them and read their exit status.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
}

fn exit_code(pid: rustix::process::Pid) -> Option<i32> {
    let (_, status) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
        .unwrap()
        .unwrap();
    status.exit_status()
}

#[test]
fn create_with_console_socket_runs_an_interactive_shell() {
    set_subreaper();
    for platform in common::platforms() {
        let f = Fixture::new(platform, &["sh"], true);
        let sock = f.path("console.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let bundle = f.bundle();
        let out = f.bulwark(&[
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            "--console-socket",
            sock.to_str().unwrap(),
            "--pid-file",
            f.path("pid").to_str().unwrap(),
            "c1",
        ]);
        assert!(out.status.success(), "create: {}", text(&out.stderr));
        let (name, master) = receive_master(&listener);
        assert!(name.starts_with("/dev/pts/"), "the pty's name: {name:?}");
        let mut c = Console::new(master);
        // A size set before start is the one the program starts with.
        c.resize(25, 80);
        assert!(f.bulwark(&["start", "c1"]).status.success());
        c.expect("# ");
        c.send("stty size\r");
        c.expect("25 80");
        drive_shell(&mut c);
        c.send("exit 3\r");
        assert_eq!(exit_code(f.pid("pid")), Some(3), "on {platform}");
        assert!(f.bulwark(&["delete", "--force", "c1"]).status.success());
    }
}

#[test]
fn exec_with_tty_and_console_socket() {
    set_subreaper();
    for platform in common::platforms() {
        let f = Fixture::new(platform, &["sleep", "1000"], false);
        let bundle = f.bundle();
        let out = f.bulwark(&["run", "-d", "--bundle", bundle.to_str().unwrap(), "c2"]);
        assert!(out.status.success(), "run -d: {}", text(&out.stderr));
        let sock = f.path("exec.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let out = f.bulwark(&[
            "exec",
            "-d",
            "-t",
            "--console-socket",
            sock.to_str().unwrap(),
            "--pid-file",
            f.path("exec.pid").to_str().unwrap(),
            "c2",
            "sh",
        ]);
        assert!(out.status.success(), "exec: {}", text(&out.stderr));
        let (_, master) = receive_master(&listener);
        let mut c = Console::new(master);
        drive_shell(&mut c);
        c.send("exit 5\r");
        assert_eq!(exit_code(f.pid("exec.pid")), Some(5), "on {platform}");
        assert!(f.bulwark(&["delete", "--force", "c2"]).status.success());
    }
}

#[test]
fn console_socket_and_terminal_go_together() {
    let f = Fixture::new("systrap", &["sh"], false);
    let bundle = f.bundle();
    let sock = f.path("console.sock");
    let _listener = UnixListener::bind(&sock).unwrap();
    let b = bundle.to_str().unwrap();
    let s = sock.to_str().unwrap();
    let out = f.bulwark(&["create", "--bundle", b, "--console-socket", s, "c3"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a console socket without a terminal"
    );
    assert!(
        text(&out.stderr).contains("--console-socket"),
        "{}",
        text(&out.stderr)
    );

    let f = Fixture::new("systrap", &["sh"], true);
    let bundle = f.bundle();
    let out = f.bulwark(&["create", "--bundle", bundle.to_str().unwrap(), "c4"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a terminal without a console socket"
    );
    assert!(
        text(&out.stderr).contains("--console-socket"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !Path::new(&f.path("state/c4")).exists(),
        "nothing left behind"
    );
}
