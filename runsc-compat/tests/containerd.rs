//! containerd drives Bulwark as an OCI runtime: `ctr run --runc-binary bulwark`, through
//! containerd's runc shim (`containerd-shim-runc-v2`, which runs the binary as it runs
//! runc), and `ctr task exec`, `ps`, `kill`, `pause`, `resume` and `delete` on what it runs.
//!
//! The test starts a containerd of its own (CRI plugin off; its root, state and sockets in a
//! temporary directory), shared by the tests of this file while any runs and stopped when
//! the last one ends, even by a panic. The images are OCI image layouts made here (static
//! busybox; the cached Debian root filesystem with python3) and loaded with `ctr images
//! import`, so no registry is needed. Every container has an ID of its own (the test's
//! name and this process's PID), and a guard that kills and deletes it when the test ends,
//! passed or not.
//!
//! The cases are docker.rs's, as far as ctr (containerd 1.6) expresses them:
//! - `ctr` has no `stop`: a stop is `ctr task kill` (SIGTERM), a wait for the task to stop,
//!   and `ctr task kill -s SIGKILL` when the timeout passes, as `docker stop` does.
//! - `ctr run` has no `--user` and no pids limit, and `ctr task exec` has no `--env`: the
//!   user is set with `ctr task exec --user`, and in a whole spec given with `ctr run
//!   --config` (made from `ctr oci spec`), which also carries the pids limit.
//! - `ctr task ps` lists the runtime's host PIDs with no command line; the test looks the
//!   Sentry's up in /proc.
//! - A task's exit status is `ctr run`'s own (attached), or, for a detached task, what
//!   `ctr task delete` reports.

mod common;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use common::{bounded, host_cgroup_dir, host_dir, stderr, stdout};

const IMAGE: &str = "docker.io/library/bulwark-test-busybox:latest";
const DEBIAN: &str = "docker.io/library/bulwark-test-debian:latest";

/// The busybox tools the image links in `/bin`.
const TOOLS: &[&str] = &[
    "sh", "echo", "sleep", "id", "touch", "cat", "pwd", "true", "dd",
];

/// A containerd of the tests' own.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "containerd needs root: run the containerd tests as root"
        );
        common::ensure_installed("containerd", "containerd");
        common::ensure_installed("ctr", "containerd");
        common::ensure_installed("script", "bsdutils");
        // Short paths: the sockets' must fit in 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("bulwark-containerd-")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let config = format!(
            "version = 2\n\
             root = \"{root}\"\n\
             state = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n\
             [ttrpc]\n  address = \"{sock}.ttrpc\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("containerd.sock").display(),
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = d.join("containerd.log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting containerd");
        // From here a panic stops containerd: Drop runs.
        let mut c = Self { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !c.ctr(&["version"]).status.success() {
            let exited = c.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "containerd did not start ({exited:?}):\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let work = c.dir.path().join("image");
        std::fs::create_dir_all(&work).unwrap();
        let layer = common::busybox_rootfs_tar(&work, TOOLS, &[]);
        let archive = oci_archive(&work, &layer, IMAGE, "PATH=/bin");
        c.import(&archive);
        c
    }

    /// `ctr --address SOCKET`, its standard input empty.
    fn command(&self) -> Command {
        let mut command = Command::new("ctr");
        command
            .arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .stdin(Stdio::null());
        command
    }

    /// `ctr --address SOCKET ARGS` as words, for `script`.
    fn command_line<S: ToString>(&self, args: &[S]) -> Vec<String> {
        let mut line = vec![
            "ctr".to_string(),
            "--address".to_string(),
            self.dir
                .path()
                .join("containerd.sock")
                .display()
                .to_string(),
        ];
        line.extend(args.iter().map(S::to_string));
        line
    }

    /// Runs `ctr ARGS`, failing if it takes more than two minutes.
    fn ctr<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        bounded(self.command().args(args), Duration::from_secs(120))
    }

    fn import(&self, archive: &Path) {
        let out = self.ctr(&["images".as_ref(), "import".as_ref(), archive.as_os_str()]);
        assert!(out.status.success(), "ctr images import: {}", stderr(&out));
    }

    /// Where the runc shim keeps Bulwark's state (`--runc-root`; the shim adds the
    /// namespace).
    fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc")
    }

    /// The arguments of `ctr run --runc-binary bulwark FLAGS IMAGE ID COMMAND`.
    fn run_args(&self, flags: &[&str], image: &str, id: &str, command: &[&str]) -> Vec<String> {
        let mut args = vec![
            "run".to_string(),
            "--runc-binary".to_string(),
            env!("CARGO_BIN_EXE_bulwark").to_string(),
            "--runc-root".to_string(),
            self.runc_root().display().to_string(),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(image.to_string());
        args.push(id.to_string());
        args.extend(command.iter().map(|s| s.to_string()));
        args
    }

    /// `ctr run --rm --runc-binary bulwark IMAGE ID COMMAND`.
    fn run(&self, id: &str, command: &[&str]) -> Output {
        self.run_with(&[], id, command)
    }

    /// `ctr run --rm --runc-binary bulwark FLAGS IMAGE ID COMMAND`.
    fn run_with(&self, flags: &[&str], id: &str, command: &[&str]) -> Output {
        let mut all = vec!["--rm"];
        all.extend(flags);
        self.ctr(&self.run_args(&all, IMAGE, id, command))
    }

    /// `ctr run --rm --runc-binary bulwark --config SPEC ID`: the whole spec is the test's
    /// (its root a host directory), and no image.
    fn run_config(&self, spec: &Path, id: &str) -> Output {
        let mut args: Vec<OsString> = vec!["run".into(), "--rm".into(), "--config".into()];
        args.push(spec.into());
        args.extend(
            [
                "--runc-binary",
                env!("CARGO_BIN_EXE_bulwark"),
                "--runc-root",
            ]
            .map(OsString::from),
        );
        args.push(self.runc_root().into());
        args.push(id.into());
        self.ctr(&args)
    }

    /// The PID and status `ctr task ls` shows for task `id`, if it has one.
    fn task(&self, id: &str) -> Option<(String, String)> {
        let out = self.ctr(&["task", "ls"]);
        assert!(out.status.success(), "ctr task ls: {}", stderr(&out));
        stdout(&out).lines().skip(1).find_map(|l| {
            let mut fields = l.split_whitespace();
            if fields.next() != Some(id) {
                return None;
            }
            Some((fields.next()?.to_string(), fields.next()?.to_string()))
        })
    }

    /// Task `id`'s status (`RUNNING`, `PAUSED`, `STOPPED`), or `None` once it is gone.
    fn status(&self, id: &str) -> Option<String> {
        self.task(id).map(|(_, status)| status)
    }

    /// Waits (up to 20 s) until task `id` runs, and returns its PID: the Sentry's.
    fn running_pid(&self, id: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((pid, status)) = self.task(id) {
                if status == "RUNNING" && pid != "0" {
                    return pid;
                }
            }
            assert!(Instant::now() < deadline, "task {id} never ran");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits up to `timeout` for task `id` to be stopped or gone; whether it is.
    fn stops_within(&self, id: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.status(id).is_none_or(|s| s == "STOPPED") {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr task kill -s SIGNAL ID`.
    fn kill(&self, id: &str, signal: &str) {
        let out = self.ctr(&["task", "kill", "-s", signal, id]);
        assert!(out.status.success(), "ctr task kill: {}", stderr(&out));
    }

    /// What `docker stop --time TIMEOUT` does: SIGTERM, then SIGKILL if the task has not
    /// stopped after the timeout.
    fn stop(&self, id: &str, timeout: Duration) {
        self.kill(id, "SIGTERM");
        if !self.stops_within(id, timeout) {
            self.kill(id, "SIGKILL");
        }
    }

    /// Kills and deletes whatever of container `id` is left, ignoring failures (for the
    /// guards).
    fn remove(&self, id: &str) {
        let containers = stdout(&self.ctr(&["containers", "ls", "-q"]));
        let status = self.status(id);
        if status.is_none() && !containers.lines().any(|l| l == id) {
            return;
        }
        if status.is_some_and(|s| s == "PAUSED") {
            let _ = self.ctr(&["task", "resume", id]);
        }
        let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
        self.stops_within(id, Duration::from_secs(10));
        let _ = self.ctr(&["task", "delete", "-f", id]);
        let _ = self.ctr(&["containers", "delete", id]);
    }

    /// Checks that nothing of container `id` is left: no task, container or snapshot in
    /// containerd, no shim bundle, no `bulwark list` entry or state directory, no mount and
    /// no host process naming it.
    fn assert_gone(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let named = |text: &str| {
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(id))
        };
        loop {
            let tasks = stdout(&self.ctr(&["tasks", "ls", "-q"]));
            let containers = stdout(&self.ctr(&["containers", "ls", "-q"]));
            let snapshots = stdout(&self.ctr(&["snapshots", "ls"]));
            let list = Command::new(env!("CARGO_BIN_EXE_bulwark"))
                .arg("--root")
                .arg(self.runc_root().join("default"))
                .args(["list", "-q"])
                .output()
                .unwrap();
            let listed = stdout(&list);
            let state = self.runc_root().join("default").join(id);
            let bundle = self
                .dir
                .path()
                .join("state/io.containerd.runtime.v2.task/default")
                .join(id);
            let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .filter(|l| {
                    l.split(' ')
                        .nth(4)
                        .is_some_and(|m| m.contains(&format!("/{id}/")))
                })
                .map(str::to_string)
                .collect();
            let procs = common::host_processes_mentioning(&format!("/{id}/"));
            let left = named(&tasks)
                || named(&containers)
                || named(&snapshots)
                || named(&listed)
                || state.exists()
                || bundle.exists()
                || !mounts.is_empty()
                || !procs.is_empty();
            if !left {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id} left behind: tasks {tasks:?}, containers {containers:?}, snapshots \
                 {snapshots:?}, bulwark list {listed:?}, state directory {}, bundle {}, \
                 mounts {mounts:?}, processes {procs:?}",
                state.exists(),
                bundle.exists()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether containerd still answers and the host can still start a process.
    fn assert_host_fine(&self) {
        let out = self.ctr(&["version"]);
        assert!(out.status.success(), "containerd: {}", stderr(&out));
        assert!(Command::new("true").status().unwrap().success());
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = rustix::process::Pid::from_child(&self.child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The snapshotter's mounts, if a container was left running.
        common::unmount_below(self.dir.path());
    }
}

/// The containerd shared by the tests running now; it stops when the last of them ends.
fn containerd() -> Arc<Containerd> {
    static SHARED: Mutex<Weak<Containerd>> = Mutex::new(Weak::new());
    common::shared(&SHARED, Containerd::start)
}

/// A container ID unique to this test run.
fn id(what: &str) -> String {
    format!("bulwark-{what}-{}", std::process::id())
}

/// Kills and deletes container `.1` when dropped, so a failing test leaves none running.
struct Removed<'a>(&'a Containerd, String);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        self.0.remove(&self.1);
    }
}

/// A `ctr run --rm` left running in the background, its output going to files; killed and
/// deleted when dropped.
struct Attached<'a> {
    c: &'a Containerd,
    id: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl<'a> Attached<'a> {
    fn start(c: &'a Containerd, what: &str, flags: &[&str], command: &[&str]) -> Self {
        let id = id(what);
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec!["--rm"];
        all.extend(flags);
        let child = c
            .command()
            .args(c.run_args(&all, IMAGE, &id, command))
            .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
            .spawn()
            .expect("running ctr");
        Self { c, id, child, dir }
    }

    fn id(&self) -> &str {
        &self.id
    }

    /// The container's standard output so far.
    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out")).unwrap()
    }

    /// `ctr run`'s standard error so far: the container's, and ctr's own.
    fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("err")).unwrap()
    }

    /// Waits (up to 20 s) until the output contains `text`.
    fn wait_for_output(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.output().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{} never printed {text:?}: {:?} {:?}",
                self.id(),
                self.output(),
                self.errors()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to a minute) for `ctr run` to end: the container's exit status.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} never ended: {:?}",
                self.id(),
                self.errors()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        self.c.remove(&self.id);
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SHA-256 of a file, in hex.
fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    stdout(&out).split_whitespace().next().unwrap().to_string()
}

/// Writes a blob of the layout and returns its descriptor.
fn blob(layout: &Path, media_type: &str, file: &Path) -> serde_json::Value {
    let digest = sha256(file);
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let to = blobs.join(&digest);
    if std::fs::hard_link(file, &to).is_err() {
        std::fs::copy(file, &to).unwrap();
    }
    serde_json::json!({
        "mediaType": media_type,
        "digest": format!("sha256:{digest}"),
        "size": std::fs::metadata(file).unwrap().len(),
    })
}

/// Writes `work/image.tar`, an OCI image archive (an image layout in a tar) of the one
/// uncompressed `layer`, named `name`, whose processes get environment `env`.
fn oci_archive(work: &Path, layer: &Path, name: &str, env: &str) -> PathBuf {
    let layout = work.join("layout");
    let layer_desc = blob(&layout, "application/vnd.oci.image.layer.v1.tar", layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [env], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
    });
    let config_file = work.join("config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let config_desc = blob(
        &layout,
        "application/vnd.oci.image.config.v1+json",
        &config_file,
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    });
    let manifest_file = work.join("manifest.json");
    std::fs::write(&manifest_file, manifest.to_string()).unwrap();
    let mut manifest_desc = blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        &manifest_file,
    );
    manifest_desc["annotations"] = serde_json::json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": "latest",
    });
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest_desc]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = work.join("image.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    archive
}

/// Checks that host process `pid` is the Sentry of container `id` (`bulwark … boot`).
fn assert_sentry(pid: &str, id: &str) {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains(" boot ") && cmdline.contains(&format!("/{id}/")),
        "{pid} is {id}'s Sentry: {cmdline}"
    );
}

/// A command run on a terminal of its own (`script`), whose input the test types and
/// whose output it reads as it comes.
struct Terminal {
    child: Child,
    input: ChildStdin,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(args: &[String]) -> Self {
        let quoted: Vec<String> = args
            .iter()
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script (bsdutils)");
        let input = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = output.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self { child, input, seen }
    }

    fn seen(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    fn type_line(&mut self, line: &str) {
        self.input.write_all(line.as_bytes()).unwrap();
        self.input.write_all(b"\n").unwrap();
    }

    /// Waits (up to 30 s) until the terminal shows `text`.
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.seen().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {text:?}: {:?}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to a minute) for the command to end: its exit status.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal's command never ended: {:?}",
                self.seen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ctr_run_prints_the_output() {
    let c = containerd();
    let id = id("echo");
    let _removed = Removed(&c, id.clone());
    let out = c.run(&id, &["echo", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    c.assert_gone(&id);
}

#[test]
fn ctr_run_returns_the_exit_status() {
    let c = containerd();
    let id = id("exit");
    let _removed = Removed(&c, id.clone());
    let out = c.run(&id, &["sh", "-c", "busybox uname -r; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stdout(&out).trim_end().ends_with("-bulwark"),
        "Bulwark's kernel answers: {}",
        stdout(&out)
    );
    c.assert_gone(&id);
}

/// A Debian image (debootstrap, cached) runs python3 with its standard library.
#[test]
fn python3_runs_in_a_debian_image() {
    let c = containerd();
    let work = tempfile::tempdir_in(c.dir.path()).unwrap();
    let tar = common::debian_python_rootfs_tar();
    let archive = oci_archive(
        work.path(),
        &tar,
        DEBIAN,
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    c.import(&archive);
    drop(work);
    let id = id("python");
    let _removed = Removed(&c, id.clone());
    let script = "import json, sqlite3, subprocess; \
                  db = sqlite3.connect(':memory:'); \
                  n = db.execute('select 6 * 7').fetchone()[0]; \
                  ls = subprocess.run(['ls', '/usr/bin/python3'], capture_output=True, text=True); \
                  print(json.dumps({'n': n, 'ls': ls.stdout.strip()}))";
    let out = c.ctr(&c.run_args(&["--rm"], DEBIAN, &id, &["python3", "-c", script]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"n\": 42, \"ls\": \"/usr/bin/python3\"}\n");
    c.assert_gone(&id);
}

/// `ctr run -t` puts ctr's terminal in raw mode and the container's shell on a terminal of
/// the sandbox: the shell is interactive, reads what is typed, and its exit status is
/// ctr's. `ctr task exec -t` does the same for a process in a running container.
#[test]
fn run_and_exec_with_a_terminal() {
    let c = containerd();
    let id = id("tty");
    let _removed = Removed(&c, id.clone());
    let mut t = Terminal::start(&c.command_line(&c.run_args(&["--rm", "-t"], IMAGE, &id, &["sh"])));
    // What is typed is echoed as typed; only the shell computes T42, and only if its
    // standard input is a terminal.
    t.type_line("test -t 0 && echo T$((6*7))");
    t.wait_for("T42");
    t.type_line("exit 5");
    assert_eq!(t.wait().code(), Some(5), "{:?}", t.seen());
    c.assert_gone(&id);

    let a = Attached::start(&c, "tty-exec", &[], &["sleep", "60"]);
    c.running_pid(a.id());
    let mut t = Terminal::start(&c.command_line(&[
        "task",
        "exec",
        "-t",
        "--exec-id",
        "shell",
        a.id(),
        "sh",
        "-c",
        "test -t 0 && echo T$((6*7)); exit 4",
    ]));
    assert_eq!(t.wait().code(), Some(4), "{:?}", t.seen());
    assert!(t.seen().contains("T42"), "{:?}", t.seen());
}

#[test]
fn exec_and_ps_in_a_running_container() {
    let c = containerd();
    let a = Attached::start(&c, "exec", &[], &["sleep", "60"]);
    let pid = c.running_pid(a.id());
    assert_sentry(&pid, a.id());
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "one",
        a.id(),
        "sh",
        "-c",
        "echo in $(pwd); exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "in /\n");
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "two",
        "--user",
        "1000:1000",
        "--cwd",
        "/bin",
        a.id(),
        "sh",
        "-c",
        "id; pwd",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "uid=1000 gid=1000 groups=1000\n/bin\n");

    // `ctr task ps` lists the runtime's PIDs: the sandbox's host processes, the Sentry
    // among them, never the host's init.
    let out = c.ctr(&["task", "ps", a.id()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ps = stdout(&out);
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        pids.contains(&pid.as_str()),
        "the Sentry ({pid}) is in:\n{ps}"
    );
    assert!(!pids.contains(&"1"), "{ps}");
}

#[test]
fn stop_sends_term_then_kill_after_the_timeout() {
    let c = containerd();
    let mut a = Attached::start(
        &c,
        "stop",
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got TERM' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    a.wait_for_output("ready");
    let began = Instant::now();
    c.stop(a.id(), Duration::from_secs(2));
    let status = a.wait();
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "stop took {took:?}"
    );
    assert_eq!(a.output(), "ready\ngot TERM\n");
    assert_eq!(status.code(), Some(137), "SIGKILL: {}", a.errors());
    c.assert_gone(a.id());

    // init without a TERM handler ignores it (as the init of a PID namespace does), so
    // the stop waits for the timeout here too.
    let mut a = Attached::start(&c, "stop-nohandler", &[], &["sleep", "60"]);
    c.running_pid(a.id());
    let began = Instant::now();
    c.stop(a.id(), Duration::from_secs(1));
    let status = a.wait();
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert_eq!(status.code(), Some(137), "{}", a.errors());
}

#[test]
fn kill_ends_the_container() {
    let c = containerd();
    let mut a = Attached::start(&c, "kill", &[], &["sleep", "60"]);
    c.running_pid(a.id());
    c.kill(a.id(), "SIGKILL");
    assert_eq!(a.wait().code(), Some(137), "{}", a.errors());
    c.assert_gone(a.id());

    // A signal the container's init handles reaches it.
    let mut a = Attached::start(
        &c,
        "kill-usr1",
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got USR1; exit 9' USR1; echo ready; while true; do sleep 0.1; done",
        ],
    );
    a.wait_for_output("ready");
    c.kill(a.id(), "SIGUSR1");
    assert_eq!(a.wait().code(), Some(9), "{}", a.errors());
    assert_eq!(a.output(), "ready\ngot USR1\n");
}

#[test]
fn pause_freezes_and_resume_resumes() {
    let c = containerd();
    let a = Attached::start(
        &c,
        "pause",
        &[],
        &["sh", "-c", "while true; do echo tick; sleep 0.05; done"],
    );
    let ticks = || a.output().lines().count();
    a.wait_for_output("tick");
    let out = c.ctr(&["task", "pause", a.id()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(c.status(a.id()).as_deref(), Some("PAUSED"));
    // A tick written just before the freeze may still be on its way to the file.
    std::thread::sleep(Duration::from_millis(300));
    let frozen = ticks();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(ticks(), frozen, "it ticked while paused");
    let out = c.ctr(&["task", "resume", a.id()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks() == frozen {
        assert!(Instant::now() < deadline, "it never ticked again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.status(a.id()).as_deref(), Some("RUNNING"));
}

#[test]
fn read_only_root_refuses_writes() {
    let c = containerd();
    let id = id("readonly");
    let _removed = Removed(&c, id.clone());
    let out = c.run_with(&["--read-only"], &id, &["touch", "/x"]);
    assert_ne!(out.status.code(), Some(0), "a write to a read-only root");
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bind_mount_read_write() {
    let c = containerd();
    let host = host_dir();
    let id = id("bind-rw");
    let _removed = Removed(&c, id.clone());
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        host.path().display()
    );
    let out = c.run_with(
        &["--mount", &mount],
        &id,
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
    let c = containerd();
    let host = host_dir();
    let id = id("bind-ro");
    let _removed = Removed(&c, id.clone());
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        host.path().display()
    );
    let out = c.run_with(
        &["--mount", &mount],
        &id,
        &[
            "sh",
            "-c",
            "cat /data/in; echo no > /data/out; echo no >> /data/in",
        ],
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "a write to a read-only bind mount"
    );
    assert_eq!(stdout(&out), "from the host\n");
    assert!(
        stderr(&out).contains("Read-only file system"),
        "EROFS: {}",
        stderr(&out)
    );
    assert!(!host.path().join("out").exists());
    assert_eq!(
        std::fs::read_to_string(host.path().join("in")).unwrap(),
        "from the host\n"
    );
}

#[test]
fn tmpfs_mount_is_a_writable_tmpfs() {
    let c = containerd();
    let id = id("tmpfs");
    let _removed = Removed(&c, id.clone());
    let out = c.run_with(
        &[
            "--mount",
            "type=tmpfs,src=tmpfs,dst=/scratch,options=nosuid:nodev",
        ],
        &id,
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

/// Regression: the image has no /tmp, and Bulwark failed the start (`--cwd /tmp: no such
/// file or directory`) where runc makes the working directory.
#[test]
fn run_with_env_and_cwd() {
    let c = containerd();
    let id = id("env");
    let _removed = Removed(&c, id.clone());
    let out = c.run_with(
        &["--env", "GREETING=hello", "--cwd", "/tmp"],
        &id,
        &["sh", "-c", "echo $GREETING; pwd; id"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n/tmp\nuid=0 gid=0 groups=0\n");
}

/// Writes the spec `ctr oci spec` makes, edited for container `id` (its own cgroup), its
/// root `rootfs` (a host directory) and the process `args` run as `uid`:`uid`, with
/// `pids` as its pids limit, for `ctr run --config`; returns its path.
fn spec_file(
    c: &Containerd,
    dir: &Path,
    id: &str,
    rootfs: &Path,
    uid: u32,
    pids: Option<i64>,
    args: &[&str],
) -> PathBuf {
    let out = c.ctr(&["oci", "spec"]);
    assert!(out.status.success(), "ctr oci spec: {}", stderr(&out));
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    spec["root"] = serde_json::json!({"path": rootfs, "readonly": true});
    spec["process"]["args"] = serde_json::json!(args);
    spec["process"]["env"] = serde_json::json!(["PATH=/bin"]);
    spec["process"]["user"] = serde_json::json!({"uid": uid, "gid": uid, "additionalGids": [uid]});
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/default/{id}"));
    if let Some(limit) = pids {
        spec["linux"]["resources"]["pids"] = serde_json::json!({"limit": limit});
    }
    let file = dir.join("config.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    file
}

/// `ctr run --config SPEC ID`: a whole spec of the test's own, here setting the user,
/// which `ctr run` has no flag for.
#[test]
fn run_with_a_spec_of_its_own_and_a_user() {
    let c = containerd();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = {
        common::busybox_rootfs_tar(dir.path(), TOOLS, &[]);
        dir.path().join("rootfs")
    };
    let id = id("spec-user");
    let _removed = Removed(&c, id.clone());
    let spec = spec_file(&c, dir.path(), &id, &rootfs, 1000, None, &["id"]);
    let out = c.run_config(&spec, &id);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "uid=1000 gid=1000 groups=1000\n");
    c.assert_gone(&id);
}

/// A program that touches more than the container's memory is killed inside the sandbox
/// (the Sentry's OOM killer picks the largest process, as Linux's memcg one does); the
/// container's init and the host are unharmed.
#[test]
fn memory_limit_kills_the_hog_inside_the_sandbox() {
    let c = containerd();
    let mut a = Attached::start(
        &c,
        "memory",
        &["--memory-limit", &(64u64 << 20).to_string()],
        &[
            "sh",
            "-c",
            "until test -e /go; do sleep 0.1; done; \
             dd if=/dev/zero of=/dev/null bs=256M count=1; echo dd=$?; echo alive",
        ],
    );
    let pid = c.running_pid(a.id());
    assert_sentry(&pid, a.id());
    let limit = host_cgroup_dir(&pid, "memory").join("memory.limit_in_bytes");
    // The host's limit has room for the Sentry and the Gofer on top (64 MiB and a
    // sixteenth); the Sentry holds the application to the 64 MiB.
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap().trim(),
        ((64u64 << 20) + (4 << 20) + (64 << 20)).to_string(),
        "{}",
        limit.display()
    );
    let out = c.ctr(&["task", "exec", "--exec-id", "go", a.id(), "touch", "/go"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = a.wait();
    c.assert_host_fine();
    // The Sentry's OOM killer ends dd alone; were the host's memcg one to act, the whole
    // sandbox would go (exit status 137, no output).
    assert_eq!(
        (status.code(), a.output().as_str()),
        (Some(0), "dd=137\nalive\n"),
        "{}",
        a.errors()
    );
}

/// ctr has no pids flag: the limit comes in a spec of the test's own (`ctr run --config`).
#[test]
fn pids_limit_contains_a_fork_bomb() {
    let c = containerd();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = {
        common::busybox_rootfs_tar(dir.path(), TOOLS, &[]);
        dir.path().join("rootfs")
    };
    let id = id("pids");
    let _removed = Removed(&c, id.clone());
    let spec = spec_file(
        &c,
        dir.path(),
        &id,
        &rootfs,
        0,
        Some(64),
        &[
            "sh",
            "-c",
            "i=0; while test $i -lt 200; do sleep 30 & i=$((i+1)); done; echo all started",
        ],
    );
    let out = c.run_config(&spec, &id);
    let err = stderr(&out);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "a fork failed inside: {err}"
    );
    assert!(!stdout(&out).contains("all started"), "{}", stdout(&out));
    c.assert_host_fine();
    c.assert_gone(&id);
}

#[test]
fn cpu_quota_sets_the_cfs_quota_of_the_host_cgroup() {
    let c = containerd();
    for (what, flags, quota, period) in [
        ("cpus", &["--cpus", "0.5"][..], "50000", "100000"),
        (
            "cpu-quota",
            &["--cpu-quota", "25000", "--cpu-period", "50000"][..],
            "25000",
            "50000",
        ),
    ] {
        let a = Attached::start(&c, what, flags, &["sleep", "60"]);
        let pid = c.running_pid(a.id());
        assert_sentry(&pid, a.id());
        let out = c.ctr(&["task", "exec", "--exec-id", "e", a.id(), "echo", "running"]);
        assert_eq!(stdout(&out), "running\n", "{}", stderr(&out));
        let dir = host_cgroup_dir(&pid, "cpu");
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        assert_eq!(read("cpu.cfs_period_us"), period, "{}", dir.display());
        assert_eq!(read("cpu.cfs_quota_us"), quota, "{}", dir.display());
    }
}

#[test]
fn twenty_containers_at_once_all_run_and_clean_up() {
    let c = containerd();
    let ids: Vec<String> = (0..20).map(|i| id(&format!("many{i}"))).collect();
    let _removed: Vec<Removed> = ids.iter().map(|id| Removed(&c, id.clone())).collect();
    let children: Vec<Child> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            c.command()
                .args(c.run_args(&["--rm"], IMAGE, id, &["echo", &format!("container {i}")]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (i, mut child) in children.into_iter().enumerate() {
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("container {i} hung");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "container {i}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("container {i}\n"));
    }
    for id in &ids {
        c.assert_gone(id);
    }
}

#[test]
fn a_start_that_fails_leaves_nothing_behind() {
    let c = containerd();
    let id = id("nosuch");
    let _removed = Removed(&c, id.clone());
    let out = c.run(&id, &["/no/such/program"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("exec: \"/no/such/program\": no such file or directory"),
        "the error names the program: {}",
        stderr(&out)
    );
    c.assert_gone(&id);
}

/// The Sentry killed from outside: the task is seen to have stopped with a non-zero
/// status, and deleting it leaves nothing behind.
#[test]
fn a_killed_sentry_stops_the_task_and_delete_cleans_up() {
    let c = containerd();
    let id = id("sentry-kill");
    let _removed = Removed(&c, id.clone());
    let out = c.ctr(&c.run_args(&["-d"], IMAGE, &id, &["sleep", "60"]));
    assert!(out.status.success(), "ctr run -d: {}", stderr(&out));
    let pid = c.running_pid(&id);
    assert_sentry(&pid, &id);
    let cgroup = host_cgroup_dir(&pid, "memory");
    assert!(cgroup.is_dir(), "{}", cgroup.display());
    let pid = rustix::process::Pid::from_raw(pid.parse().unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    assert!(
        c.stops_within(&id, Duration::from_secs(20)),
        "the task still runs: {:?}",
        c.status(&id)
    );
    assert_eq!(c.status(&id).as_deref(), Some("STOPPED"));
    let out = c.ctr(&["task", "delete", &id]);
    assert!(out.status.success(), "ctr task delete: {}", stderr(&out));
    // ctr reports a non-zero exit status as a warning.
    assert!(
        stderr(&out).contains(&format!("task {id} exit with non-zero exit code 137")),
        "{}",
        stderr(&out)
    );
    let out = c.ctr(&["containers", "delete", &id]);
    assert!(
        out.status.success(),
        "ctr containers delete: {}",
        stderr(&out)
    );
    c.assert_gone(&id);
    assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    c.assert_host_fine();
}
