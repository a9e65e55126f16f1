//! Docker drives Bulwark as an OCI runtime: `dockerd` with a `runtimes` entry, and
//! `docker run --runtime=bulwark`.
//!
//! dockerd does not call the runtime itself: it starts its own containerd, whose runc shim
//! (`containerd-shim-runc-v2`, with the runtime's path as its `BinaryName` option) runs
//! `bulwark --root <exec-root>/runtime-runc/moby --log <bundle>/log.json --log-format json`
//! with `create --bundle B --pid-file P ID`, `start`, `state`, `kill`, `delete`, `exec
//! --process F --detach --pid-file P`, `ps --format json`, `pause` and `resume`. The shim is
//! a child subreaper: it waits for the PID in the PID file (the Sentry, or `exec`'s waiter),
//! whose exit status is the container's.
//!
//! The test starts a dockerd of its own (so its own containerd) with every socket and
//! directory in a temporary directory, shared by the tests of this file while any runs, and
//! stopped when the last one ends, even by a panic. The image comes from static busybox
//! (`docker import`), so no registry is needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use common::{host_cgroup_dir, host_dir, stderr, stdout, within_a_minute};

const IMAGE: &str = "bulwark-test-busybox";

/// A dockerd of the tests' own.
struct Daemon {
    dir: tempfile::TempDir,
    dockerd: Child,
}

impl Daemon {
    fn start() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "dockerd needs root: run the Docker tests as root"
        );
        common::ensure_installed("dockerd", "docker.io");
        // Short paths: the sockets' must fit in 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("bulwark-docker-")
            .tempdir_in("/tmp")
            .unwrap();
        let dockerd = match Self::spawn(dir.path(), "overlay2") {
            Ok(child) => child,
            Err(log) => {
                eprintln!(
                    "dockerd: storage driver overlay2 does not work here, falling back to \
                     vfs (slower: every container copies its image):\n{log}"
                );
                Self::spawn(dir.path(), "vfs").unwrap_or_else(|log| panic!("dockerd: {log}"))
            }
        };
        let tar = common::busybox_rootfs_tar(
            dir.path(),
            &[
                "sh", "echo", "sleep", "id", "touch", "cat", "pwd", "true", "dd",
            ],
            &[],
        );
        // From here a panic stops dockerd: Drop runs.
        let daemon = Self { dir, dockerd };
        let out = daemon.docker(&["import".as_ref(), tar.as_os_str(), IMAGE.as_ref()]);
        assert!(out.status.success(), "docker import: {}", stderr(&out));
        daemon
    }

    /// Starts dockerd with `driver` and waits until it answers; on failure, its log.
    fn spawn(dir: &Path, driver: &str) -> Result<Child, String> {
        let data = dir.join(format!("data-{driver}"));
        let config = serde_json::json!({
            "iptables": false,
            "ip-masq": false,
            "ip6tables": false,
            "bridge": "none",
            "storage-driver": driver,
            "runtimes": {"bulwark": {"path": env!("CARGO_BIN_EXE_bulwark")}},
        });
        let config_file = dir.join("daemon.json");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let log = dir.join(format!("dockerd-{driver}.log"));
        let mut child = Command::new("dockerd")
            .arg("--config-file")
            .arg(&config_file)
            .arg("--data-root")
            .arg(&data)
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .map_err(|e| format!("starting dockerd: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "dockerd exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            let ok = docker_command(dir)
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                return Ok(child);
            }
            if Instant::now() > deadline {
                let _ = dockerd_kill(&mut child);
                return Err(format!(
                    "dockerd did not answer in 60 s:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn docker<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        docker_command(self.dir.path())
            .args(args)
            .output()
            .expect("running docker")
    }

    /// `docker run --runtime=bulwark --network=none FLAGS IMAGE COMMAND`.
    fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        let mut args = vec!["run", "--runtime=bulwark", "--network=none"];
        args.extend(flags);
        args.push(IMAGE);
        args.extend(command);
        self.docker(&args)
    }

    /// Where the shim keeps Bulwark's container state (`bulwark --root`).
    fn runtime_root(&self) -> PathBuf {
        self.dir.path().join("exec/runtime-runc/moby")
    }

    /// The IDs `bulwark list` shows under docker's runtime root.
    fn bulwark_list(&self) -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .arg("--root")
            .arg(self.runtime_root())
            .args(["list", "-q"])
            .output()
            .unwrap();
        assert!(out.status.success(), "bulwark list: {}", stderr(&out));
        stdout(&out).lines().map(str::to_string).collect()
    }

    /// A container's full ID.
    fn id_of(&self, name: &str) -> String {
        let out = self.docker(&["inspect", "-f", "{{.Id}}", name]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.docker(&["inspect", "-f", format, name]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// Waits until nothing of container `id` is left: no `bulwark list` entry or state
    /// directory, no host process (Sentry, Gofer, shim) naming it.
    fn assert_gone(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let listed = self.bulwark_list().contains(&id.to_string());
            let state = self.runtime_root().join(id).exists();
            let procs = common::host_processes_mentioning(id);
            if !listed && !state && procs.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} left behind: listed {listed}, state directory {state}, \
                 processes {procs:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Daemon {
    /// Stops dockerd (it stops its containers and its containerd), then unmounts what a
    /// killed one may have left mounted, so that the directory can go.
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        let ids: Vec<String> = stdout(&ids).lines().map(str::to_string).collect();
        if !ids.is_empty() {
            let mut args = vec!["rm".to_string(), "-f".to_string()];
            args.extend(ids);
            let _ = self.docker(&args);
        }
        let _ = dockerd_kill(&mut self.dockerd);
        common::unmount_below(self.dir.path());
    }
}

/// The dockerd shared by the tests running now; it stops when the last of them ends.
fn daemon() -> Arc<Daemon> {
    static SHARED: Mutex<Weak<Daemon>> = Mutex::new(Weak::new());
    common::shared(&SHARED, Daemon::start)
}

/// SIGTERM, then SIGKILL after 30 s.
fn dockerd_kill(child: &mut Child) -> std::io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait().map(drop)
}

/// The docker CLI of the docker.io package (it matches its dockerd), on `dir`'s socket,
/// with a configuration directory of its own.
fn docker_command(dir: &Path) -> Command {
    let cli = if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    };
    let mut command = Command::new(cli);
    command
        .env("DOCKER_CONFIG", dir.join("cli"))
        .arg("-H")
        .arg(format!("unix://{}", dir.join("docker.sock").display()))
        .stdin(Stdio::null());
    command
}

/// A container name unique to this test run.
fn name(what: &str) -> String {
    format!("bulwark-{what}-{}", std::process::id())
}

/// Removes a container when dropped (a panicking test leaves none running).
struct Removed<'a>(&'a Daemon, String);

impl Drop for Removed<'_> {
    fn drop(&mut self) {
        let _ = self.0.docker(&["rm", "-f", &self.1]);
    }
}

/// `docker run -d`, removed at the end of the test.
fn detached<'a>(d: &'a Daemon, what: &str, flags: &[&str], command: &[&str]) -> Removed<'a> {
    let name = name(what);
    let mut all = vec!["-d", "--name", &name];
    all.extend(flags);
    let out = d.run(&all, command);
    assert!(out.status.success(), "docker run -d: {}", stderr(&out));
    Removed(d, name)
}

#[test]
fn run_rm_prints_the_output_on_bulwark() {
    let d = daemon();
    let out = d.run(&["--rm"], &["echo", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    // It is Bulwark's kernel that answers, not the host's.
    let out = d.run(&["--rm"], &["busybox", "uname", "-r"]);
    assert!(
        stdout(&out).trim_end().ends_with("-bulwark"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn run_returns_the_exit_status() {
    let d = daemon();
    let out = d.run(&["--rm"], &["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
}

#[test]
fn run_with_env_workdir_and_user() {
    let d = daemon();
    let out = d.run(
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

/// Regression: with `-t` the shim reads `create`'s output to its end, and the sandbox
/// kept `create`'s standard error open, so `docker run -t` hung in `create`.
#[test]
fn run_and_exec_with_a_terminal() {
    let d = daemon();
    let out = within_a_minute(docker_command(d.dir.path()).args([
        "run",
        "--rm",
        "-t",
        "--runtime=bulwark",
        "--network=none",
        IMAGE,
        "sh",
        "-c",
        "test -t 1 && echo tty; exit 3",
    ]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "tty\r\n",
        "through the terminal's line discipline"
    );
    let c = detached(&d, "tty", &[], &["sleep", "60"]);
    let out = within_a_minute(docker_command(d.dir.path()).args([
        "exec",
        "-t",
        &c.1,
        "sh",
        "-c",
        "test -t 0 && echo tty; exit 4",
    ]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "tty\r\n");
}

#[test]
fn read_only_root_refuses_writes() {
    let d = daemon();
    let out = d.run(&["--rm", "--read-only"], &["touch", "/x"]);
    assert_ne!(out.status.code(), Some(0), "a write to a read-only root");
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bind_mount_read_write() {
    let d = daemon();
    let host = host_dir();
    let volume = format!("{}:/data", host.path().display());
    let out = d.run(
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
    let d = daemon();
    let host = host_dir();
    let volume = format!("{}:/data:ro", host.path().display());
    let out = d.run(
        &["--rm", "-v", &volume],
        &["sh", "-c", "cat /data/in; echo no > /data/out"],
    );
    assert_ne!(out.status.code(), Some(0), "a write to a :ro volume");
    assert_eq!(stdout(&out), "from the host\n");
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!host.path().join("out").exists());
}

#[test]
fn exec_and_top_in_a_running_container() {
    let d = daemon();
    let c = detached(&d, "exec", &[], &["sleep", "60"]);
    let out = d.docker(&["exec", &c.1, "sh", "-c", "echo in $(pwd); exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "in /\n");
    let out = d.docker(&[
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
    assert_eq!(stdout(&out), "uid=1000 gid=1000 groups=1000\ny\n/bin\n");

    // `docker top` looks the runtime's PIDs up in the host's `ps -ef`: they are the
    // sandbox's host processes (the Sentry first), never the host's init.
    let out = d.docker(&["top", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let top = stdout(&out);
    let pid = d.inspect(&c.1, "{{.State.Pid}}");
    assert!(
        top.lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(&pid) && l.contains("boot")),
        "the Sentry ({pid}) is in:\n{top}"
    );
    assert!(
        top.lines()
            .skip(1)
            .all(|l| l.split_whitespace().nth(1) != Some("1")),
        "{top}"
    );
}

#[test]
fn stop_sends_term_then_kill_after_the_timeout() {
    let d = daemon();
    let c = detached(
        &d,
        "stop",
        &[],
        &[
            "sh",
            "-c",
            "trap 'echo got TERM' TERM; echo ready; while true; do sleep 0.1; done",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !stdout(&d.docker(&["logs", &c.1])).contains("ready") {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let began = Instant::now();
    let out = d.docker(&["stop", "--time", "2", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "stop took {took:?}"
    );
    assert_eq!(stdout(&d.docker(&["logs", &c.1])), "ready\ngot TERM\n");
    assert_eq!(d.inspect(&c.1, "{{.State.ExitCode}}"), "137", "SIGKILL");

    // Regression: init without a TERM handler ignores it (as the init of a PID namespace
    // does), so stop waits for the timeout here too; Bulwark ended it at once (143).
    let c = detached(&d, "stop-nohandler", &[], &["sleep", "60"]);
    let began = Instant::now();
    let out = d.docker(&["stop", "--time", "1", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(began.elapsed() >= Duration::from_secs(1));
    assert_eq!(d.inspect(&c.1, "{{.State.ExitCode}}"), "137");
}

#[test]
fn kill_ends_the_container() {
    let d = daemon();
    let c = detached(&d, "kill", &[], &["sleep", "60"]);
    let out = d.docker(&["kill", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.docker(&["wait", &c.1]);
    assert_eq!(stdout(&out).trim(), "137", "{}", stderr(&out));
    assert_eq!(d.inspect(&c.1, "{{.State.Running}}"), "false");
}

#[test]
fn pause_freezes_and_unpause_resumes() {
    let d = daemon();
    let c = detached(
        &d,
        "pause",
        &[],
        &["sh", "-c", "while true; do echo tick; sleep 0.05; done"],
    );
    let ticks = || stdout(&d.docker(&["logs", &c.1])).lines().count();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks() == 0 {
        assert!(Instant::now() < deadline, "the container never ticked");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = d.docker(&["pause", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(d.inspect(&c.1, "{{.State.Status}}"), "paused");
    // A tick written just before the freeze may still be on its way to the log.
    std::thread::sleep(Duration::from_millis(300));
    let frozen = ticks();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(ticks(), frozen, "it ticked while paused");
    let out = d.docker(&["unpause", &c.1]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks() == frozen {
        assert!(Instant::now() < deadline, "it never ticked again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(d.inspect(&c.1, "{{.State.Status}}"), "running");
}

#[test]
fn twenty_containers_at_once_all_run_and_clean_up() {
    let d = daemon();
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<(usize, Child)> = (0..20)
        .map(|i| {
            let cidfile = dir.path().join(format!("cid{i}"));
            let child = docker_command(d.dir.path())
                .args(["run", "--rm", "--runtime=bulwark", "--network=none"])
                .arg("--cidfile")
                .arg(&cidfile)
                .args([IMAGE, "sh", "-c", &format!("echo container {i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (i, child)
        })
        .collect();
    for (i, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "container {i}: {}", stderr(&out));
        assert_eq!(stdout(&out), format!("container {i}\n"));
    }
    for i in 0..20 {
        let id = std::fs::read_to_string(dir.path().join(format!("cid{i}"))).unwrap();
        d.assert_gone(id.trim());
    }
}

#[test]
fn a_start_that_fails_leaves_nothing_behind() {
    let d = daemon();
    let name = name("nosuch");
    let _removed = Removed(&d, name.clone());
    let out = d.run(&["--name", &name], &["/no/such/program"]);
    // Regression: Docker found none of runc's words in Bulwark's error ("No such file or
    // directory (os error 2)") and exited with 125, not 127.
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("exec: \"/no/such/program\": no such file or directory"),
        "the error names the program: {}",
        stderr(&out)
    );
    let id = d.id_of(&name);
    d.assert_gone(&id);
}

#[test]
fn tmpfs_mount_is_a_writable_tmpfs() {
    let d = daemon();
    let out = within_a_minute(docker_command(d.dir.path()).args([
        "run",
        "--rm",
        "--runtime=bulwark",
        "--network=none",
        "--tmpfs",
        "/scratch",
        IMAGE,
        "sh",
        "-c",
        "echo written > /scratch/f && cat /scratch/f && cat /proc/mounts",
    ]));
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
fn sentry_pid(d: &Daemon, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pid = d.inspect(name, "{{.State.Pid}}");
        if pid != "0" {
            return pid;
        }
        assert!(Instant::now() < deadline, "{name} never started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether dockerd still answers and the host can still start a process.
fn assert_host_fine(d: &Daemon) {
    let out = d.docker(&["version"]);
    assert!(out.status.success(), "dockerd: {}", stderr(&out));
    assert!(Command::new("true").status().unwrap().success());
}

/// `docker wait` with a minute's bound: the container's exit status.
fn wait_exit(d: &Daemon, name: &str) -> String {
    let out = within_a_minute(docker_command(d.dir.path()).args(["wait", name]));
    assert!(out.status.success(), "docker wait: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// A program that touches more than the container's memory is killed inside the sandbox
/// (the Sentry's OOM killer picks the largest process, as Linux's memcg one does); the
/// container's init and the host are unharmed.
#[test]
fn memory_limit_kills_the_hog_inside_the_sandbox() {
    let d = daemon();
    let c = detached(
        &d,
        "memory",
        &["--memory", "64m"],
        &[
            "sh",
            "-c",
            "until test -e /go; do sleep 0.1; done; \
             dd if=/dev/zero of=/dev/null bs=256M count=1; echo dd=$?; echo alive",
        ],
    );
    let pid = sentry_pid(&d, &c.1);
    let limit = host_cgroup_dir(&pid, "memory").join("memory.limit_in_bytes");
    // The host's limit has room for the Sentry and the Gofer on top (64 MiB and a
    // sixteenth); the Sentry holds the application to the 64 MiB.
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap().trim(),
        ((64u64 << 20) + (4 << 20) + (64 << 20)).to_string(),
        "{}",
        limit.display()
    );
    let out = d.docker(&["exec", &c.1, "touch", "/go"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let code = wait_exit(&d, &c.1);
    let logs = d.docker(&["logs", &c.1]);
    assert_host_fine(&d);
    // The Sentry's OOM killer ends dd alone; were the host's memcg one to act, the whole
    // sandbox would go (exit status 137, no output, OOMKilled true).
    assert_eq!(
        (code.as_str(), stdout(&logs).as_str()),
        ("0", "dd=137\nalive\n"),
        "OOMKilled {}: {}",
        d.inspect(&c.1, "{{.State.OOMKilled}}"),
        stderr(&logs)
    );
}

#[test]
fn pids_limit_contains_a_fork_bomb() {
    let d = daemon();
    let out = within_a_minute(docker_command(d.dir.path()).args([
        "run",
        "--rm",
        "--runtime=bulwark",
        "--network=none",
        "--pids-limit",
        "64",
        IMAGE,
        "sh",
        "-c",
        "i=0; while test $i -lt 200; do sleep 30 & i=$((i+1)); done; echo all started",
    ]));
    let err = stderr(&out);
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "a fork failed inside: {err}"
    );
    assert!(!stdout(&out).contains("all started"), "{}", stdout(&out));
    assert_host_fine(&d);
}

#[test]
fn cpus_sets_the_cfs_quota_of_the_host_cgroup() {
    let d = daemon();
    let c = detached(&d, "cpus", &["--cpus", "0.5"], &["sleep", "60"]);
    let pid = sentry_pid(&d, &c.1);
    let out = d.docker(&["exec", &c.1, "echo", "running"]);
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

/// The Sentry killed from outside: the container is seen to have failed, and `docker rm`
/// leaves nothing behind.
#[test]
fn a_killed_sentry_fails_the_container_and_rm_cleans_up() {
    let d = daemon();
    let c = detached(&d, "sentry-kill", &[], &["sleep", "60"]);
    let id = d.id_of(&c.1);
    let pid = sentry_pid(&d, &c.1);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(
        cmdline.contains(" boot ") && cmdline.contains(&id),
        "{pid} is the Sentry: {cmdline}"
    );
    let cgroup = host_cgroup_dir(&pid, "memory");
    assert!(cgroup.is_dir(), "{}", cgroup.display());
    let pid = rustix::process::Pid::from_raw(pid.parse().unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let code = wait_exit(&d, &c.1);
    assert_ne!(code, "0", "the container failed");
    assert_eq!(d.inspect(&c.1, "{{.State.Running}}"), "false");
    assert_eq!(d.inspect(&c.1, "{{.State.ExitCode}}"), code);
    let out = within_a_minute(docker_command(d.dir.path()).args(["rm", &c.1]));
    assert!(out.status.success(), "docker rm: {}", stderr(&out));
    d.assert_gone(&id);
    assert!(!cgroup.exists(), "{} left behind", cgroup.display());
    assert_host_fine(&d);
}

/// `--sysctl` of a namespaced sysctl the Sentry does not implement (the Docker CLI takes
/// only `net.*`, `fs.mqueue.*` and the IPC ones, none of which it does) is left out with
/// a warning and does not fail the container, nor do those Docker sets on every one; the
/// container's hostname reads back from /proc/sys.
#[test]
fn unsupported_sysctls_do_not_fail_the_container() {
    let d = daemon();
    let out = d.run(
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
    const DEBIAN: &str = "bulwark-test-debian";
    let d = daemon();
    let tar = common::debian_python_rootfs_tar();
    let out = d.docker(&["import".as_ref(), tar.as_os_str(), DEBIAN.as_ref()]);
    assert!(out.status.success(), "docker import: {}", stderr(&out));
    let script = "import json, sqlite3, subprocess; \
                  db = sqlite3.connect(':memory:'); \
                  n = db.execute('select 6 * 7').fetchone()[0]; \
                  ls = subprocess.run(['ls', '/usr/bin/python3'], capture_output=True, text=True); \
                  print(json.dumps({'n': n, 'ls': ls.stdout.strip()}))";
    let out = within_a_minute(docker_command(d.dir.path()).args([
        "run",
        "--rm",
        "--runtime=bulwark",
        "--network=none",
        DEBIAN,
        "python3",
        "-c",
        script,
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "{\"n\": 42, \"ls\": \"/usr/bin/python3\"}\n");
}
