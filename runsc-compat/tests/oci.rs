//! The OCI lifecycle, driven through the CLI as a runtime client drives it, on a bundle
//! whose rootfs holds static busybox.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A bundle running `script` with busybox's sh, and a state root of its own.
    fn new(script: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::busybox_bundle(
            dir.path(),
            &["proc", "dev", "tmp"],
            &["sh", "echo", "sleep", "hostname", "cat"],
        );
        config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        config["hostname"] = serde_json::json!("oci-test");
        let f = Self { dir };
        std::fs::write(f.bundle().join("config.json"), config.to_string()).unwrap();
        f
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    /// Runs a command, its output to files (see `common::bulwark_in`).
    fn bulwark(&self, args: &[&str]) -> Output {
        common::bulwark_in(self.dir.path(), "systrap", args)
    }

    fn status(&self, id: &str) -> String {
        let out = self.bulwark(&["state", id]);
        assert!(
            out.status.success(),
            "state: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        state["status"].as_str().unwrap().to_string()
    }

    fn wait_for(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.status(id) != status {
            assert!(Instant::now() < deadline, "{id} never became {status}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn create_start_state_delete() {
    let f = Fixture::new("echo hello from $(hostname) > /dev/stderr; sleep 1");
    let pid_file = f.dir.path().join("pid");
    let bundle = f.bundle();
    let out = f.bulwark(&[
        "create",
        "--bundle",
        bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "c1",
    ]);
    assert!(
        out.status.success(),
        "create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.status("c1"), "created");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&f.bulwark(&["state", "c1"]).stdout).unwrap();
    assert_eq!(state["pid"], pid);
    assert_eq!(
        state["bundle"],
        bundle.canonicalize().unwrap().to_str().unwrap()
    );

    let again = f.bulwark(&["create", "--bundle", bundle.to_str().unwrap(), "c1"]);
    assert_eq!(again.status.code(), Some(1), "a second c1 is refused");

    assert!(f.bulwark(&["start", "c1"]).status.success());
    assert_eq!(f.status("c1"), "running");
    let running_delete = f.bulwark(&["delete", "c1"]);
    assert_eq!(
        running_delete.status.code(),
        Some(1),
        "delete of a running container fails"
    );
    f.wait_for("c1", "stopped");
    let list = f.bulwark(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list[0]["id"], "c1");
    assert!(f.bulwark(&["delete", "c1"]).status.success());
    assert_eq!(
        f.bulwark(&["state", "c1"]).status.code(),
        Some(1),
        "gone after delete"
    );
}

#[test]
fn run_returns_the_exit_status_and_output() {
    let f = Fixture::new("echo hello from $(hostname); exit 3");
    let out = f.bulwark(&["run", "--bundle", f.bundle().to_str().unwrap(), "r1"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from oci-test\n"
    );
    assert!(
        f.bulwark(&["list", "-q"]).stdout.is_empty(),
        "run removes the container"
    );
}

#[test]
fn kill_works_in_the_created_state_and_delete_force_cleans_up() {
    let f = Fixture::new("sleep 100");
    let bundle = f.bundle();
    assert!(f
        .bulwark(&["create", "-b", bundle.to_str().unwrap(), "k1"])
        .status
        .success());
    assert!(f.bulwark(&["kill", "k1", "KILL"]).status.success());
    f.wait_for("k1", "stopped");
    assert!(f.bulwark(&["delete", "k1"]).status.success());

    assert!(f
        .bulwark(&["create", "-b", bundle.to_str().unwrap(), "k2"])
        .status
        .success());
    assert!(f.bulwark(&["start", "k2"]).status.success());
    let state: serde_json::Value =
        serde_json::from_slice(&f.bulwark(&["state", "k2"]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    assert!(f.bulwark(&["delete", "--force", "k2"]).status.success());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists() || {
            let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            s.contains(") Z ")
        }
    );
    assert!(f.bulwark(&["list", "-q"]).stdout.is_empty());
}

#[test]
fn bad_ids_and_signals_are_refused() {
    let f = Fixture::new("true");
    let bundle = f.bundle();
    for id in ["../x", "", "a/b"] {
        let out = f.bulwark(&["create", "-b", bundle.to_str().unwrap(), id]);
        assert_eq!(out.status.code(), Some(1), "{id:?}");
    }
    assert_eq!(f.bulwark(&["kill", "nope", "TERM"]).status.code(), Some(1));
    assert!(f
        .bulwark(&["create", "-b", bundle.to_str().unwrap(), "s1"])
        .status
        .success());
    assert_eq!(
        f.bulwark(&["kill", "s1", "NOTASIGNAL"]).status.code(),
        Some(1)
    );
    assert!(f.bulwark(&["delete", "--force", "s1"]).status.success());
}

#[test]
fn exec_ps_pause_resume_and_kill_all() {
    let f = Fixture::new("sleep 100");
    let bundle = f.bundle();
    assert!(f
        .bulwark(&["create", "-b", bundle.to_str().unwrap(), "e1"])
        .status
        .success());
    let early = f.bulwark(&["exec", "e1", "echo", "too", "early"]);
    assert_eq!(early.status.code(), Some(1), "exec before start is refused");
    assert!(f.bulwark(&["start", "e1"]).status.success());

    let out = f.bulwark(&["exec", "e1", "echo", "hi", "from", "exec"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi from exec\n");
    let out = f.bulwark(&["exec", "--cwd", "/bin", "e1", "sh", "-c", "pwd; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "the process's exit status");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/bin\n");
    let out = f.bulwark(&["exec", "e1", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(1), "a missing program fails exec");

    let table = String::from_utf8_lossy(&f.bulwark(&["ps", "e1"]).stdout).into_owned();
    assert!(table.contains("sleep 100"), "{table}");
    assert_eq!(table.lines().count(), 2, "only init is left: {table}");
    // Regression: the JSON list held the sandbox's PIDs ([1]), which `docker top` looked up
    // on the host and showed the host's init. It holds host PIDs, the Sentry's first.
    let ps = f.bulwark(&["ps", "--format", "json", "e1"]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap();
    let state: serde_json::Value =
        serde_json::from_slice(&f.bulwark(&["state", "e1"]).stdout).unwrap();
    assert_eq!(
        i64::from(pids[0]),
        state["pid"].as_i64().unwrap(),
        "{pids:?}"
    );
    assert!(!pids.contains(&1), "{pids:?}");
    assert!(
        pids.iter()
            .all(|pid| Path::new(&format!("/proc/{pid}")).exists()),
        "{pids:?}"
    );

    // Paused, no application code runs: an exec'd echo finishes only after resume.
    assert!(f.bulwark(&["pause", "e1"]).status.success());
    assert_eq!(f.status("e1"), "paused");
    let mut during = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg(format!("--root={}", f.dir.path().join("state").display()))
        .args(["exec", "e1", "echo", "after", "resume"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(during.try_wait().unwrap().is_none(), "ran while paused");
    assert!(f.bulwark(&["resume", "e1"]).status.success());
    assert_eq!(f.status("e1"), "running");
    let out = during.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "after resume\n");

    // Detached: the PID file names a host process that lives as long as the process.
    let pid_file = f.dir.path().join("exec.pid");
    let out = f.bulwark(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        "e1",
        "sleep",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    assert!(alive(pid), "the exec waiter runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the exec waiter outlived its process"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // kill --all reaches every process of the sandbox, init included.
    assert!(f.bulwark(&["kill", "--all", "e1", "KILL"]).status.success());
    f.wait_for("e1", "stopped");
    assert!(f.bulwark(&["delete", "e1"]).status.success());
}

#[test]
fn the_specs_seccomp_profile_is_enforced_on_the_application() {
    let f = Fixture::new(
        "mkdir /tmp/d; echo mkdir=$?; echo still here; hostname other; echo hostname=$?",
    );
    let path = f.bundle().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let out = f.bulwark(&["run", "--bundle", f.bundle().to_str().unwrap(), "sc1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // mkdir refused with EACCES; the hostname process killed by SIGSYS (128 + 31).
    assert_eq!(stdout, "mkdir=1\nstill here\nhostname=159\n", "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    config["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"});
    std::fs::write(&path, config.to_string()).unwrap();
    let out = f.bulwark(&["create", "--bundle", f.bundle().to_str().unwrap(), "sc2"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a profile Bulwark cannot enforce fails create"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("SCMP_ACT_NOTIFY"));
    assert!(
        f.bulwark(&["list", "-q"]).stdout.is_empty(),
        "and leaves nothing"
    );
}

/// Regression: a SIGTERM from outside ended a container whose init does not handle it
/// (`docker stop` returned at once with 143), where Linux drops it for the init of a PID
/// namespace, so runc's `docker stop` waits for the timeout and SIGKILL (137).
#[test]
fn init_ignores_the_signals_it_does_not_handle() {
    let f = Fixture::new("");
    let bundle = f.bundle();
    // sleep itself is init: sh has handlers of its own until it execs.
    let path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(["sleep", "100"]);
    std::fs::write(&path, config.to_string()).unwrap();
    assert!(f
        .bulwark(&["create", "-b", bundle.to_str().unwrap(), "i1"])
        .status
        .success());
    assert!(f.bulwark(&["start", "i1"]).status.success());
    for sig in ["TERM", "INT", "HUP", "USR1"] {
        assert!(f.bulwark(&["kill", "i1", sig]).status.success(), "{sig}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        f.status("i1"),
        "running",
        "init without handlers ignores them"
    );
    assert!(f.bulwark(&["kill", "i1", "KILL"]).status.success());
    f.wait_for("i1", "stopped");
    assert!(f.bulwark(&["delete", "i1"]).status.success());

    // A handled signal is delivered: the trap runs and init exits as it chooses.
    let f = Fixture::new("trap 'exit 42' TERM; while true; do sleep 0.1; done");
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg(format!("--root={}", f.dir.path().join("state").display()))
        .args(["--platform=systrap", "run", "-b"])
        .arg(f.bundle())
        .arg("i2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until the shell has set its trap, TERM is dropped: send it until the trap runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = f.bulwark(&["delete", "--force", "i2"]);
            let _ = run.kill();
            panic!("the TERM trap never ran");
        }
        // Only once started: a kill in the created state ends the sandbox.
        if String::from_utf8_lossy(&f.bulwark(&["state", "i2"]).stdout).contains("running") {
            let _ = f.bulwark(&["kill", "i2", "TERM"]);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(42), "the TERM trap ran");
}

/// Regression: the control socket's path is the state root, a 64-digit container ID and
/// `control.sock`; under Docker's root (`/var/run/docker/runtime-runc/moby`) that is 111
/// bytes, past what a socket address holds, and every `docker run` failed with
/// "control.sock: too long for a socket address".
#[test]
fn a_long_state_path_still_has_a_control_socket() {
    let f = Fixture::new("sleep 100");
    let id = "0123456789abcdef".repeat(6);
    assert!(
        f.dir
            .path()
            .join("state")
            .join(&id)
            .join("control.sock")
            .as_os_str()
            .len()
            > 108
    );
    let out = f.bulwark(&["create", "-b", f.bundle().to_str().unwrap(), &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.bulwark(&["start", &id]).status.success());
    let out = f.bulwark(&["exec", &id, "echo", "exec", "works"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "exec works\n");
    assert!(f.bulwark(&["delete", "--force", &id]).status.success());
}

/// `--debug-log` ending in `/` is a directory with a log per process, as runsc's: what
/// Docker's and containerd's runtime arguments usually name. It failed with "Is a
/// directory".
#[test]
fn debug_log_to_a_directory_gives_each_process_its_file() {
    let f = Fixture::new("echo logged");
    let logs = f.dir.path().join("logs/");
    let debug_log = format!("--debug-log={}/", logs.display());
    let out = f.bulwark(&[
        "--debug",
        &debug_log,
        "run",
        "-b",
        f.bundle().to_str().unwrap(),
        "l1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "logged\n");
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for command in ["boot", "gofer", "run"] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("bulwark.") && n.ends_with(&format!(".{command}.log"))),
            "{command}: {names:?}"
        );
    }
    let boot = names.iter().find(|n| n.ends_with(".boot.log")).unwrap();
    let text = std::fs::read_to_string(logs.join(boot)).unwrap();
    assert!(text.contains("platform: systrap"), "{text}");

    // The error of a failed command still reaches --log, where a runc shim reads it
    // (Docker said "unable to retrieve OCI runtime error" with the debug log on).
    let path = f.bundle().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(["/no/such/program"]);
    std::fs::write(&path, config.to_string()).unwrap();
    let log = f.dir.path().join("log.json");
    let log_flag = format!("--log={}", log.display());
    let out = f.bulwark(&[
        "--debug",
        &debug_log,
        &log_flag,
        "--log-format=json",
        "create",
        "-b",
        f.bundle().to_str().unwrap(),
        "l2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error", "{text}");
    assert!(
        last["msg"].as_str().unwrap().contains("/no/such/program"),
        "{text}"
    );
}

#[test]
fn a_killed_sentry_leaves_a_stopped_container_that_delete_cleans_up() {
    let f = Fixture::new("sleep 100");
    let bundle = f.bundle();
    assert!(f
        .bulwark(&["create", "-b", bundle.to_str().unwrap(), "ks"])
        .status
        .success());
    assert!(f.bulwark(&["start", "ks"]).status.success());
    let state: serde_json::Value =
        serde_json::from_slice(&f.bulwark(&["state", "ks"]).stdout).unwrap();
    let pid = i32::try_from(state["pid"].as_i64().unwrap()).unwrap();
    let gofer = std::fs::read_to_string(f.dir.path().join("state/ks/state.json")).unwrap();
    let gofer: serde_json::Value = serde_json::from_str(&gofer).unwrap();
    let gofer_pid = gofer["goferPid"].as_i64().unwrap();
    // From outside, as an OOM killer or an operator would.
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    f.wait_for("ks", "stopped");
    assert!(f.bulwark(&["delete", "ks"]).status.success());
    assert!(f.bulwark(&["list", "-q"]).stdout.is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    let alive = |p: i64| {
        std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    while alive(gofer_pid) {
        assert!(Instant::now() < deadline, "the Gofer outlived its Sentry");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn features_describe_what_is_supported() {
    let f = Fixture::new("true");
    let out = f.bulwark(&["features"]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["linux"]["seccomp"]["enabled"], true);
    assert_eq!(doc["linux"]["cgroup"]["v1"], true);
    assert!(doc["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "CAP_SYS_ADMIN"));
}

#[test]
fn wait_prints_the_exit_status_of_init() {
    let f = Fixture::new("sleep 0.5; exit 6");
    let bundle = f.bundle();
    assert!(f
        .bulwark(&["create", "-b", bundle.to_str().unwrap(), "w1"])
        .status
        .success());
    assert!(f.bulwark(&["start", "w1"]).status.success());
    let out = f.bulwark(&["wait", "w1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["id"], "w1");
    assert_eq!(v["exitStatus"], 6);
    f.wait_for("w1", "stopped");
    assert!(f.bulwark(&["delete", "w1"]).status.success());
}

/// `linux.sysctl`: those the Sentry implements are read back (and written) under
/// /proc/sys; namespaced ones it does not implement, as Docker sets on every container,
/// are left out with a warning; one that is not namespaced fails `create`.
#[test]
fn sysctls_are_applied_ignored_with_a_warning_or_refused() {
    let f = Fixture::new(
        "cat /proc/sys/kernel/domainname /proc/sys/kernel/hostname; \
         echo renamed > /proc/sys/kernel/hostname; hostname",
    );
    let path = f.bundle().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["linux"]["sysctl"] = serde_json::json!({
        "kernel.domainname": "example.org",
        "net.ipv4.ip_unprivileged_port_start": "0",
        "net.ipv4.ping_group_range": "0 2147483647",
    });
    std::fs::write(&path, config.to_string()).unwrap();
    let out = f.bulwark(&["run", "--bundle", f.bundle().to_str().unwrap(), "sy1"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "example.org\noci-test\nrenamed\n", "{stderr}");
    for name in [
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ping_group_range",
    ] {
        assert!(
            stderr.contains(&format!(
                "sysctl {name} not supported by the Sentry, ignored"
            )),
            "{stderr}"
        );
    }

    config["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "10"});
    std::fs::write(&path, config.to_string()).unwrap();
    let out = f.bulwark(&["create", "--bundle", f.bundle().to_str().unwrap(), "sy2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sysctl \"vm.swappiness\" is not in a separate kernel namespace"),
        "{stderr}"
    );
    assert!(
        f.bulwark(&["list", "-q"]).stdout.is_empty(),
        "and leaves nothing"
    );
}

#[test]
fn preserved_descriptors_reach_the_container_process_and_exec() {
    let f = Fixture::new(
        "{ cat <&3; if [ -e /proc/self/fd/5 ]; then echo 5 open; else echo 5 closed; fi; } >&4; \
         sleep 100",
    );
    let input = f.dir.path().join("input");
    std::fs::write(&input, "read from three\n").unwrap();
    let output = f.dir.path().join("output");
    let files = vec![
        std::fs::File::open(&input).unwrap(),
        std::fs::File::create(&output).unwrap(),
    ];
    let bundle = f.bundle();
    let out = common::bulwark_in_with_fds(
        f.dir.path(),
        "systrap",
        files,
        &[
            "create",
            "--preserve-fds",
            "2",
            "-b",
            bundle.to_str().unwrap(),
            "p1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.bulwark(&["start", "p1"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&output)
        .unwrap_or_default()
        .ends_with("closed\n")
    {
        assert!(
            Instant::now() < deadline,
            "descriptor 4 got {:?}",
            std::fs::read_to_string(&output)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "read from three\n5 closed\n"
    );

    // exec: descriptor 3 of the new process is the caller's 3.
    let exec_out = f.dir.path().join("exec-output");
    let out = common::bulwark_in_with_fds(
        f.dir.path(),
        "systrap",
        vec![std::fs::File::create(&exec_out).unwrap()],
        &[
            "exec",
            "--preserve-fds",
            "1",
            "p1",
            "sh",
            "-c",
            "echo from exec >&3; [ -e /proc/self/fd/4 ] && echo 4 open",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the last test fails: 4 is closed"
    );
    assert_eq!(std::fs::read_to_string(&exec_out).unwrap(), "from exec\n");

    // More than the caller has open: refused, naming the descriptor.
    let out = common::bulwark_in_with_fds(
        f.dir.path(),
        "systrap",
        vec![std::fs::File::open(&input).unwrap()],
        &["exec", "--preserve-fds", "2", "p1", "true"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("descriptor 4"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.bulwark(&["delete", "--force", "p1"]).status.success());
}
