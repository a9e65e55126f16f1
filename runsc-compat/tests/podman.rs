//! Podman drives Bulwark as its OCI runtime: `podman --runtime <bulwark> run …`.
//!
//! Podman has no daemon: each command does its work and exits. To run a container it
//! starts conmon, which runs `bulwark create --bundle B --pid-file P ID` (with
//! `--console-socket` for `-t`) and stays as the container's monitor; Podman then runs
//! `start`, `state`, `kill`, `delete --force`, `exec --process F --detach --pid-file P`,
//! `pause` and `resume`, and conmon's exit command (`podman container cleanup`) deletes the
//! container when its Sentry exits.
//!
//! The tests share a Podman store of their own, every directory of it in a temporary
//! directory (`--root`, `--runroot`, `--tmpdir`), with `--cgroup-manager=cgroupfs` and
//! `--events-backend=file` (this machine has neither systemd nor journald). The store goes
//! when the last test using it ends, even by a panic, after every container in it is
//! removed. The image comes from static busybox (`podman import`), so no registry is
//! needed. Bulwark keeps its state in its default root, as for any Podman user: Podman
//! (4.3) leaves `--runtime-flag` out of conmon's exit command, so a state root given that
//! way is not the one the cleanup deletes from.
//!
//! Not covered, because Podman cannot do it on Bulwark: `podman top` with its own
//! descriptors (`podman top C`, or `podman top C pid,args`) reads /proc in the mount
//! namespace of the container's PID, which is the Sentry's, and the Sentry's root is empty
//! by design (confinement.rs); it fails with "open /proc/: no such file or directory". The
//! ps(1) form (`podman top C -ef`), which Podman runs as `ps` inside the container, works,
//! and is what `exec_and_top_in_a_running_container` tests.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use common::{host_cgroup_dir, host_dir, stderr, stdout, within_a_minute};

const IMAGE: &str = "localhost/bulwark-test-busybox";

/// A Podman store of the tests' own.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn open() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "rootful Podman needs root: run the Podman tests as root"
        );
        common::ensure_installed("podman", "podman");
        common::ensure_installed("script", "bsdutils");
        // Short paths: conmon's sockets are made under them.
        let dir = tempfile::Builder::new()
            .prefix("bulwark-podman-")
            .tempdir_in("/tmp")
            .unwrap();
        let tar = common::busybox_rootfs_tar(
            dir.path(),
            &[
                "sh", "echo", "sleep", "id", "touch", "cat", "pwd", "true", "dd", "ps",
            ],
            // Podman refuses a `-w` that the image lacks.
            &["tmp"],
        );
        // From here a panic removes what the store holds: Drop runs.
        let store = Self { dir };
        let out = store.podman(&["import".as_ref(), tar.as_os_str(), IMAGE.as_ref()]);
        assert!(out.status.success(), "podman import: {}", stderr(&out));
        store
    }

    /// Podman's global flags for this store.
    fn global_args(&self) -> Vec<String> {
        let dir = self.dir.path();
        vec![
            "--root".to_string(),
            dir.join("root").display().to_string(),
            "--runroot".to_string(),
            dir.join("run").display().to_string(),
            "--tmpdir".to_string(),
            dir.join("tmp").display().to_string(),
            "--cgroup-manager=cgroupfs".to_string(),
            "--events-backend=file".to_string(),
            "--runtime".to_string(),
            env!("CARGO_BIN_EXE_bulwark").to_string(),
        ]
    }

    /// `podman` on this store, with Bulwark as its runtime.
    fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command.args(self.global_args()).stdin(Stdio::null());
        command
    }

    fn podman<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.command().args(args).output().expect("running podman")
    }

    /// `podman run --network=none FLAGS IMAGE COMMAND`.
    fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        within_a_minute(self.command().args(run_args(flags, command)))
    }

    /// Where Bulwark keeps the containers' state: its default `--root`, which Podman does
    /// not change.
    fn state_root(&self) -> PathBuf {
        PathBuf::from("/var/run/bulwark")
    }

    /// The IDs `bulwark list` shows under its state root.
    fn bulwark_list(&self) -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .arg("--root")
            .arg(self.state_root())
            .args(["list", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "bulwark list: {}", stderr(&out));
        stdout(&out).lines().map(str::to_string).collect()
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.podman(&["inspect", "-f", format, name]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// Waits until nothing of container `id` is left on the host: no `bulwark list` entry
    /// or state directory, no process (Sentry, Gofer, conmon, Podman's cleanup) naming it,
    /// no mount naming it or of its root filesystem (`merged`), no host cgroup of it
    /// (Podman's cgroupfs manager puts it at `libpod_parent/libpod-ID` in each hierarchy).
    fn assert_gone(&self, id: &str, merged: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let listed = self.bulwark_list().contains(&id.to_string());
            let state = self.state_root().join(id).exists();
            let procs = common::host_processes_mentioning(id);
            let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .filter(|l| l.contains(id) || (merged.is_some() && l.split(' ').nth(4) == merged))
                .map(str::to_string)
                .collect();
            let cgroups: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
                .unwrap()
                .flatten()
                .map(|h| h.path().join(format!("libpod_parent/libpod-{id}")))
                .filter(|d| d.exists())
                .collect();
            if !listed && !state && procs.is_empty() && mounts.is_empty() && cgroups.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} left behind: listed {listed}, state directory {state}, \
                 processes {procs:?}, mounts {mounts:?}, cgroups {cgroups:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A container's ID, and where its root filesystem is mounted while it runs.
    fn id_and_rootfs(&self, name: &str) -> (String, String) {
        let id = self.inspect(name, "{{.Id}}");
        let upper = self.inspect(name, "{{.GraphDriver.Data.UpperDir}}");
        let merged = Path::new(&upper).with_file_name("merged");
        assert!(upper.starts_with('/'), "{name}: upper directory {upper:?}");
        (id, merged.display().to_string())
    }
}

impl Drop for Store {
    /// Removes every container of the store (Podman stops them), waits for their
    /// processes to end, then unmounts what is left mounted, so that the directory can go.
    fn drop(&mut self) {
        let _ = self
            .command()
            .args(["rm", "--all", "--force", "--time", "0"])
            .output();
        let dir = self.dir.path().to_string_lossy().into_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !common::host_processes_mentioning(&dir).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        common::unmount_below(self.dir.path());
    }
}

/// The store shared by the tests running now; it goes when the last of them ends.
fn store() -> Arc<Store> {
    static SHARED: Mutex<Weak<Store>> = Mutex::new(Weak::new());
    common::shared(&SHARED, Store::open)
}

/// The arguments of `podman run --network=none FLAGS IMAGE COMMAND`.
fn run_args<'a>(flags: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--network=none", "--log-driver=k8s-file"];
    args.extend(flags);
    args.push(IMAGE);
    args.extend(command);
    args
}

/// A container name unique to this test run.
fn name(what: &str) -> String {
    format!("bulwark-{what}-{}", std::process::id())
}

/// Removes a container when dropped (a panicking test leaves none running).
struct Removed<'a>(&'a Store, String);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = self.0.podman(&["rm", "--force", "--time", "0", &self.1]);
    }
}

/// `podman run -d`, removed at the end of the test.
fn detached<'a>(s: &'a Store, what: &str, flags: &[&str], command: &[&str]) -> Removed<'a> {
    let name = name(what);
    let removed = Removed(s, name.clone());
    let mut all = vec!["-d", "--name", &name];
    all.extend(flags);
    let out = s.run(&all, command);
    assert!(out.status.success(), "podman run -d: {}", stderr(&out));
    removed
}

/// Waits (up to 20 s) until `what` is in a detached container's log.
fn wait_for_log(s: &Store, name: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stdout(&s.podman(&["logs", name])).contains(what) {
        assert!(Instant::now() < deadline, "{name} never logged {what:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_rm_prints_the_output_on_bulwark() {
    let s = store();
    let out = s.run(&["--rm"], &["echo", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    // It is Bulwark's kernel that answers, not the host's.
    let out = s.run(&["--rm"], &["busybox", "uname", "-r"]);
    assert!(
        stdout(&out).trim_end().ends_with("-bulwark"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn run_returns_the_exit_status() {
    let s = store();
    let out = s.run(&["--rm"], &["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
}

#[test]
fn run_with_env_workdir_and_user() {
    let s = store();
    let out = s.run(
        &[
            "--rm",
            "-e",
            "GREETING=hello",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
        ],
        &["sh", "-c", "echo $GREETING; pwd; id"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n/tmp\nuid=1000 gid=1000 groups=1000\n");
}

/// `'…'` for sh, whatever `s` holds.
fn shell_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `podman ARGS` under script(1), so that its standard input and output are a
/// terminal: once the terminal shows `prompt`, types `input` into it. Returns the exit
/// status (script's is podman's) and what the terminal showed.
fn on_a_terminal(s: &Store, args: &[&str], prompt: &str, input: &str) -> (Option<i32>, String) {
    let line: Vec<String> = std::iter::once("podman".to_string())
        .chain(s.global_args())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| shell_quoted(&a))
        .collect();
    let mut child = Command::new("script")
        .arg("-qec")
        .arg(line.join(" "))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (bsdutils)");
    let shown = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let shown = Arc::clone(&shown);
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text =
        |shown: &Mutex<Vec<u8>>| String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut typed = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if !typed && text(&shown).contains(prompt) {
            child
                .stdin
                .as_mut()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            typed = true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "podman {args:?} on a terminal hung; it showed {:?}",
                text(&shown)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    reader.join().unwrap();
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(typed, "no prompt {prompt:?}: {:?} {err}", text(&shown));
    (status.code(), text(&shown))
}

/// `run -it` and `exec -it`: an interactive shell on a terminal of the sandbox's own,
/// which conmon serves through the console socket, driven as a user would.
#[test]
fn run_and_exec_with_a_terminal() {
    let s = store();
    let input = "test -t 0 && test -t 1 && echo is-a-tty; echo $((6 * 7)); exit 5\r";
    let args = run_args(&["--rm", "-it"], &["sh"]);
    let (code, shown) = on_a_terminal(&s, &args, "# ", input);
    assert_eq!(code, Some(5), "{shown:?}");
    // The shell's output, through the terminal's line discipline (the typed line is
    // echoed too, but holds neither word at a line's start).
    assert!(shown.contains("\r\nis-a-tty\r\n42\r\n"), "{shown:?}");

    let c = detached(&s, "tty", &[], &["sleep", "60"]);
    let (code, shown) = on_a_terminal(&s, &["exec", "-it", &c.1, "sh"], "# ", input);
    assert_eq!(code, Some(5), "{shown:?}");
    assert!(shown.contains("\r\nis-a-tty\r\n42\r\n"), "{shown:?}");
}

#[test]
fn read_only_root_refuses_writes() {
    let s = store();
    let out = s.run(&["--rm", "--read-only"], &["touch", "/x"]);
    assert_ne!(out.status.code(), Some(0), "a write to a read-only root");
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bind_mount_read_write() {
    let s = store();
    let host = host_dir();
    let volume = format!("{}:/data", host.path().display());
    let out = s.run(
        &["--rm", "-v", &volume],
        &[
            "sh",
            "-c",
            "cat /data/in && echo from the container > /data/out",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "from the host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "from the container\n"
    );
}

#[test]
fn bind_mount_read_only() {
    let s = store();
    let host = host_dir();
    let volume = format!("{}:/data:ro", host.path().display());
    let out = s.run(
        &["--rm", "-v", &volume],
        &[
            "sh",
            "-c",
            "cat /data/in; echo no > /data/out; echo no >> /data/in",
        ],
    );
    assert_ne!(out.status.code(), Some(0), "a write to a :ro volume");
    assert_eq!(stdout(&out), "from the host\n");
    assert_eq!(
        stderr(&out)
            .lines()
            .filter(|l| l.contains("Read-only file system"))
            .count(),
        2,
        "both writes fail with EROFS: {}",
        stderr(&out)
    );
    assert!(!host.path().join("out").exists());
    assert_eq!(
        std::fs::read_to_string(host.path().join("in")).unwrap(),
        "from the host\n"
    );
}

#[test]
fn exec_and_top_in_a_running_container() {
    let s = store();
    let c = detached(&s, "exec", &[], &["sleep", "60"]);
    let ps = s.podman(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        stdout(&ps)
            .lines()
            .any(|l| l.starts_with(&format!("{} Up", c.1))),
        "{}",
        stdout(&ps)
    );
    let out = s.podman(&["exec", &c.1, "sh", "-c", "echo in $(pwd); exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "in /\n");
    // Unlike Docker, Podman gives an exec'd process no supplementary groups of its own.
    let out = s.podman(&[
        "exec",
        "-u",
        "1000:1000",
        "-e",
        "X=y",
        "-w",
        "/bin",
        &c.1,
        "sh",
        "-c",
        "id; echo $X; pwd",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "uid=1000 gid=1000\ny\n/bin\n");

    // `podman top` with ps(1)'s options runs `ps` in the container (see the top of the
    // file): the sandbox's processes, its init first as PID 1.
    let out = s.podman(&["top", &c.1, "-ef"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let top = stdout(&out);
    let mut rows = top
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    assert_eq!(
        rows.next().and_then(|r| r.first().copied()),
        Some("PID"),
        "{top}"
    );
    assert!(
        rows.any(|r| r.first() == Some(&"1") && r.ends_with(&["sleep", "60"])),
        "{top}"
    );
}

#[test]
fn stop_sends_term_then_kill_after_the_timeout() {
    let s = store();
    let c = detached(
        &s,
        "stop",
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got TERM' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    wait_for_log(&s, &c.1, "ready");
    let began = Instant::now();
    let out = s.podman(&["stop", "--time", "2", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "stop took {took:?}"
    );
    assert_eq!(stdout(&s.podman(&["logs", &c.1])), "ready\ngot TERM\n");
    assert_eq!(s.inspect(&c.1, "{{.State.ExitCode}}"), "137", "SIGKILL");

    // init without a TERM handler ignores it (as the init of a PID namespace does), so
    // stop waits for the timeout here too.
    let c = detached(&s, "stop-nohandler", &[], &["sleep", "60"]);
    let began = Instant::now();
    let out = s.podman(&["stop", "--time", "1", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert_eq!(s.inspect(&c.1, "{{.State.ExitCode}}"), "137");
}

#[test]
fn kill_ends_the_container() {
    let s = store();
    let c = detached(&s, "kill", &[], &["sleep", "60"]);
    let out = s.podman(&["kill", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(wait_exit(&s, &c.1), "137");
    assert_eq!(s.inspect(&c.1, "{{.State.Running}}"), "false");
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let s = store();
    let c = detached(
        &s,
        "pause",
        &[],
        &["sh", "-c", "while true; do echo tick; sleep 0.05; done"],
    );
    let ticks = || stdout(&s.podman(&["logs", &c.1])).lines().count();
    wait_for_log(&s, &c.1, "tick");
    let out = s.podman(&["pause", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.inspect(&c.1, "{{.State.Status}}"), "paused");
    // A tick written just before the freeze may still be on its way to the log.
    std::thread::sleep(Duration::from_millis(300));
    let frozen = ticks();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(ticks(), frozen, "it ticked while paused");
    let out = s.podman(&["unpause", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks() == frozen {
        assert!(Instant::now() < deadline, "it never ticked again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.inspect(&c.1, "{{.State.Status}}"), "running");
}

#[test]
fn twenty_containers_at_once_all_run_and_clean_up() {
    let s = store();
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<(usize, Child)> = (0..20)
        .map(|i| {
            let cidfile = dir.path().join(format!("cid{i}"));
            let cidfile = cidfile.to_str().unwrap();
            let script = format!("echo container {i}");
            let child = s
                .command()
                .args(run_args(
                    &["--rm", "--cidfile", cidfile],
                    &["sh", "-c", &script],
                ))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (i, child)
        })
        .collect();
    let mut ids = Vec::new();
    for (i, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "container {i}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("container {i}\n"));
        let id = std::fs::read_to_string(dir.path().join(format!("cid{i}"))).unwrap();
        ids.push(id.trim().to_string());
    }
    // `--rm` removed them from Podman, so where their root filesystems were mounted is
    // not known here: the mounts naming them (their /dev/shm) are what is checked.
    for id in &ids {
        s.assert_gone(id, None);
    }
    let out = s.podman(&["ps", "--all", "--quiet", "--no-trunc"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let left = stdout(&out);
    assert!(ids.iter().all(|id| !left.contains(id.as_str())), "{left}");
}

#[test]
fn a_start_that_fails_leaves_nothing_behind() {
    let s = store();
    let name = name("nosuch");
    let _removed = Removed(&s, name.clone());
    let out = s.run(&["--name", &name], &["/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exec: \"/no/such/program\": no such file or directory"),
        "the error names the program: {}",
        stderr(&out)
    );
    // Regression: Podman deletes with --force after a failed create, and `bulwark delete
    // --force` of a container with no state failed (runc and runsc succeed), so Podman
    // logged "Removing container … from runtime after creation failed".
    assert!(
        !stderr(&out).contains("after creation failed"),
        "{}",
        stderr(&out)
    );
    let (id, merged) = s.id_and_rootfs(&name);
    s.assert_gone(&id, Some(&merged));
}

#[test]
fn tmpfs_mount_is_a_writable_tmpfs() {
    let s = store();
    let out = s.run(
        &["--rm", "--tmpfs", "/scratch"],
        &[
            "sh",
            "-c",
            "echo written > /scratch/f && cat /scratch/f && cat /proc/mounts",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("written"), "{text}");
    assert!(
        lines.any(
            |l| l.split(' ').nth(1) == Some("/scratch") && l.split(' ').nth(2) == Some("tmpfs")
        ),
        "/scratch is a tmpfs in /proc/mounts:\n{text}"
    );
}

/// Waits (up to 20 s) until a detached container has started, and returns the PID of its
/// Sentry on the host.
fn sentry_pid(s: &Store, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pid = s.inspect(name, "{{.State.Pid}}");
        if pid != "0" {
            return pid;
        }
        assert!(Instant::now() < deadline, "{name} never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether Podman still answers and the host can still start a process.
fn assert_host_fine(s: &Store) {
    let out = s.podman(&["ps"]);
    assert!(out.status.success(), "podman: {}", stderr(&out));
    assert!(Command::new("true").status().unwrap().success());
}

/// `podman wait` with a minute's bound: the container's exit status.
fn wait_exit(s: &Store, name: &str) -> String {
    let out = within_a_minute(s.command().args(["wait", name]));
    assert!(out.status.success(), "podman wait: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// A program that touches more than the container's memory is killed inside the sandbox
/// (the Sentry's OOM killer picks the largest process, as Linux's memcg one does); the
/// container's init and the host are unharmed.
#[test]
fn memory_limit_kills_the_hog_inside_the_sandbox() {
    let s = store();
    let c = detached(
        &s,
        "memory",
        &["--memory", "64m"],
        &[
            "sh",
            "-c",
            "until test -e /go; do sleep 0.1; done; \
             dd if=/dev/zero of=/dev/null bs=256M count=1; echo dd=$?; echo alive",
        ],
    );
    let pid = sentry_pid(&s, &c.1);
    let limit = host_cgroup_dir(&pid, "memory").join("memory.limit_in_bytes");
    // The host's limit has room for the Sentry and the Gofer on top (64 MiB and a
    // sixteenth); the Sentry holds the application to the 64 MiB.
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap().trim(),
        ((64u64 << 20) + (4 << 20) + (64 << 20)).to_string(),
        "{}",
        limit.display()
    );
    let out = s.podman(&["exec", &c.1, "touch", "/go"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let code = wait_exit(&s, &c.1);
    let logs = s.podman(&["logs", &c.1]);
    assert_host_fine(&s);
    // The Sentry's OOM killer ends dd alone; were the host's memcg one to act, the whole
    // sandbox would go (exit status 137, no output).
    assert_eq!(
        (code.as_str(), stdout(&logs).as_str()),
        ("0", "dd=137\nalive\n"),
        "OOMKilled {}: {}",
        s.inspect(&c.1, "{{.State.OOMKilled}}"),
        stderr(&logs)
    );
}

#[test]
fn pids_limit_contains_a_fork_bomb() {
    let s = store();
    let out = s.run(
        &["--rm", "--pids-limit", "64"],
        &[
            "sh",
            "-c",
            "i=0; while test $i -lt 200; do sleep 30 & i=$((i+1)); done; echo all started",
        ],
    );
    let err = stderr(&out);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "a fork failed inside: {err}"
    );
    assert!(!stdout(&out).contains("all started"), "{}", stdout(&out));
    assert_host_fine(&s);
}

#[test]
fn cpus_sets_the_cfs_quota_of_the_host_cgroup() {
    let s = store();
    let c = detached(&s, "cpus", &["--cpus", "0.5"], &["sleep", "60"]);
    let pid = sentry_pid(&s, &c.1);
    let out = s.podman(&["exec", &c.1, "echo", "running"]);
    assert_eq!(stdout(&out), "running\n", "{}", stderr(&out));
    let dir = host_cgroup_dir(&pid, "cpu");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("cpu.cfs_period_us"), "100000", "{}", dir.display());
    assert_eq!(read("cpu.cfs_quota_us"), "50000", "{}", dir.display());
}

/// The Sentry killed from outside: the container is seen to have failed, and `podman rm`
/// leaves nothing behind.
#[test]
fn a_killed_sentry_fails_the_container_and_rm_cleans_up() {
    let s = store();
    let c = detached(&s, "sentry-kill", &[], &["sleep", "60"]);
    let (id, merged) = s.id_and_rootfs(&c.1);
    let pid = sentry_pid(&s, &c.1);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains(" boot ") && cmdline.contains(&id),
        "{pid} is the Sentry: {cmdline}"
    );
    let cgroup = host_cgroup_dir(&pid, "memory");
    assert!(cgroup.is_dir(), "{}", cgroup.display());
    // Where assert_gone looks for it.
    assert!(
        cgroup.ends_with(format!("libpod_parent/libpod-{id}")),
        "{}",
        cgroup.display()
    );
    let pid = rustix::process::Pid::from_raw(pid.parse().unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let code = wait_exit(&s, &c.1);
    assert_ne!(code, "0", "the container failed");
    assert_eq!(s.inspect(&c.1, "{{.State.Running}}"), "false");
    assert_eq!(s.inspect(&c.1, "{{.State.ExitCode}}"), code);
    let out = within_a_minute(s.command().args(["rm", &c.1]));
    assert!(out.status.success(), "podman rm: {}", stderr(&out));
    s.assert_gone(&id, Some(&merged));
    assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    assert_host_fine(&s);
}

/// `--sysctl` of a namespaced sysctl the Sentry does not implement is left out with a
/// warning and does not fail the container, nor do those Podman sets on every one
/// (`net.ipv4.ping_group_range`); the container's hostname reads back from /proc/sys.
#[test]
fn unsupported_sysctls_do_not_fail_the_container() {
    let s = store();
    let out = s.run(
        &[
            "--rm",
            "--hostname",
            "box",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmax=1000000",
        ],
        &["cat", "/proc/sys/kernel/hostname"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "box\n");
}

/// A Debian image (debootstrap, cached) runs python3 with its standard library.
#[test]
fn python3_runs_in_a_debian_image() {
    const DEBIAN: &str = "localhost/bulwark-test-debian";
    let s = store();
    let tar = common::debian_python_rootfs_tar();
    let out = s.podman(&["import".as_ref(), tar.as_os_str(), DEBIAN.as_ref()]);
    assert!(out.status.success(), "podman import: {}", stderr(&out));
    let script = "import json, sqlite3, subprocess; \
                  db = sqlite3.connect(':memory:'); \
                  n = db.execute('select 6 * 7').fetchone()[0]; \
                  ls = subprocess.run(['ls', '/usr/bin/python3'], capture_output=True, text=True); \
                  print(json.dumps({'n': n, 'ls': ls.stdout.strip()}))";
    let out = within_a_minute(s.command().args([
        "run",
        "--rm",
        "--network=none",
        DEBIAN,
        "python3",
        "-c",
        script,
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"n\": 42, \"ls\": \"/usr/bin/python3\"}\n");
}
