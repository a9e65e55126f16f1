//! `linux.resources` through the host's cgroups (v1): the limits are written at `create`,
//! the sandbox sees and keeps to them, `update` changes them, `delete` removes the
//! cgroup. Needs root (to write the host's cgroups): elsewhere the tests say NOT TESTED,
//! except in CI, where they must run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "cpuset"];

/// Whether the tests can run here: as root, or in CI (where they must).
fn runnable(test: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if rustix::process::geteuid().is_root() || ci {
        return true;
    }
    eprintln!("{test}: not root (the host's cgroups are not writable): NOT TESTED");
    false
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A bundle running `script` with busybox's sh, with `resources` as
    /// `linux.resources` and a cgroup path of its own (relative: under `/bulwark/`).
    fn new(script: &str, resources: serde_json::Value, cgroup: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::busybox_bundle(
            dir.path(),
            &["proc", "dev", "tmp"],
            &["sh", "echo", "sleep", "cat", "head", "grep", "dd"],
        );
        config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        config["linux"] = serde_json::json!({
            "resources": resources,
            "cgroupsPath": cgroup,
        });
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

    fn run(&self, id: &str) -> Output {
        self.bulwark(&["run", "--bundle", self.bundle().to_str().unwrap(), id])
    }
}

/// A cgroup path no other test (or test run) uses.
fn unique(name: &str) -> String {
    format!("test-{}-{name}", std::process::id())
}

/// The container's directory in `controller`.
fn dir(controller: &str, cgroup: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("bulwark")
        .join(cgroup)
}

fn read(controller: &str, cgroup: &str, file: &str) -> String {
    let path = dir(controller, cgroup).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn assert_gone(cgroup: &str) {
    for c in CONTROLLERS {
        let d = dir(c, cgroup);
        assert!(!d.exists(), "{} is left behind", d.display());
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn limits_are_written_joined_updated_and_removed() {
    if !runnable("limits_are_written_joined_updated_and_removed") {
        return;
    }
    let cg = unique("limits");
    let f = Fixture::new(
        "sleep 100",
        serde_json::json!({
            "memory": {"limit": 64 << 20},
            "pids": {"limit": 64},
            "cpu": {"quota": 50000, "period": 100000, "shares": 512},
        }),
        &cg,
    );
    let bundle = f.bundle();
    let out = f.bulwark(&["create", "-b", bundle.to_str().unwrap(), "l1"]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    // The host's limit has room for the Sentry's and the Gofer's own memory (64 MiB and
    // a sixteenth); the Sentry holds the application to 64 MiB itself.
    assert_eq!(
        read("memory", &cg, "memory.limit_in_bytes"),
        ((64u64 << 20) + (4 << 20) + (64 << 20)).to_string()
    );
    // The host's counter has room for the host tasks each sandbox process costs; the
    // Sentry holds the sandbox to 64 itself (pids_limit_makes_fork_fail).
    assert_eq!(read("pids", &cg, "pids.max"), (64 * 6 + 32).to_string());
    assert_eq!(read("cpu", &cg, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", &cg, "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpu", &cg, "cpu.shares"), "512");
    assert!(!read("cpuset", &cg, "cpuset.cpus").is_empty());
    // The Sentry (the container's PID) and the Gofer are in it, in each controller.
    let state: serde_json::Value =
        serde_json::from_slice(&f.bulwark(&["state", "l1"]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap().to_string();
    for c in CONTROLLERS {
        let procs = read(c, &cg, "cgroup.procs");
        assert!(procs.lines().any(|l| l == pid), "{c}: {procs}");
        assert!(procs.lines().count() >= 2, "{c}: no Gofer in {procs}");
    }
    assert!(f.bulwark(&["start", "l1"]).status.success());

    // events --stats reads the same cgroup.
    let out = f.bulwark(&["events", "--stats", "l1"]);
    assert!(out.status.success(), "events: {}", text(&out.stderr));
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 64u64 << 20);
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 2);

    let out = f.bulwark(&["update", "--memory", "128m", "--cpu-quota", "20000", "l1"]);
    assert!(out.status.success(), "update: {}", text(&out.stderr));
    assert_eq!(
        read("memory", &cg, "memory.limit_in_bytes"),
        ((128u64 << 20) + (8 << 20) + (64 << 20)).to_string()
    );
    assert_eq!(read("cpu", &cg, "cpu.cfs_quota_us"), "20000");
    // The sandbox sees the new limit too.
    let out = f.bulwark(&["exec", "l1", "grep", "MemTotal", "/proc/meminfo"]);
    assert!(out.status.success(), "exec: {}", text(&out.stderr));
    let memtotal: Vec<String> = text(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(memtotal, ["MemTotal:", "131072", "kB"]);
    let out = f.bulwark(&[
        "update",
        "--pids-limit",
        "100",
        "--blkio-weight",
        "10",
        "l1",
    ]);
    assert!(out.status.success(), "update: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--blkio-weight is not supported"));
    assert_eq!(read("pids", &cg, "pids.max"), (100 * 6 + 32).to_string());

    let out = f.bulwark(&["delete", "--force", "l1"]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    assert_gone(&cg);
}

#[test]
fn memory_limit_is_memtotal_and_holds() {
    if !runnable("memory_limit_is_memtotal_and_holds") {
        return;
    }
    let cg = unique("memory");
    // /tmp is a tmpfs (`bulwark spec`): what is written there is memory.
    let f = Fixture::new(
        "grep MemTotal /proc/meminfo; head -c 268435456 /dev/zero > /tmp/big; echo write=$?",
        serde_json::json!({"memory": {"limit": 64 << 20}}),
        &cg,
    );
    let start = Instant::now();
    let out = f.run("m1");
    let stdout = text(&out.stdout);
    let memtotal: Vec<&str> = stdout
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .unwrap_or_else(|| panic!("no MemTotal: {stdout} {}", text(&out.stderr)))
        .split_whitespace()
        .collect();
    assert_eq!(memtotal, ["MemTotal:", "65536", "kB"]);
    // The 256 MiB write fails, or the sandbox is killed: either way the limit held, and
    // this process (outside it) goes on.
    assert!(
        !stdout.contains("write=0") || out.status.code() != Some(0),
        "a 256 MiB tmpfs write succeeded under a 64 MiB limit: {stdout}"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_gone(&cg);
}

/// A program that touches more memory than the limit is killed inside the sandbox by the
/// Sentry's OOM killer (`SIGKILL`, status 137 to its shell), and the rest goes on; on
/// both platforms.
#[test]
fn memory_overrun_kills_the_largest_process_only() {
    if !runnable("memory_overrun_kills_the_largest_process_only") {
        return;
    }
    for platform in common::platforms() {
        let cg = unique("oom");
        // dd reads 256 MiB of zeros into one buffer it allocated: every page is touched
        // by the Sentry's copy (a syscall), then by dd itself on the next block.
        let f = Fixture::new(
            "dd if=/dev/zero of=/dev/null bs=256M count=2 2>/dev/null; echo dd=$?; \
             head -c 1000000 /dev/zero | cat > /dev/null; echo alive",
            serde_json::json!({"memory": {"limit": 64 << 20}}),
            &cg,
        );
        let start = Instant::now();
        let out = common::bulwark_in(
            f.dir.path(),
            platform,
            &["run", "--bundle", f.bundle().to_str().unwrap(), "oom1"],
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("dd=137") && stdout.contains("alive"),
            "{platform}: {stdout} {} ({:?})",
            text(&out.stderr),
            out.status
        );
        assert_eq!(out.status.code(), Some(0), "{platform}: {stdout}");
        assert!(start.elapsed() < Duration::from_secs(60));
        assert_gone(&cg);
    }
}

#[test]
fn pids_limit_makes_fork_fail() {
    if !runnable("pids_limit_makes_fork_fail") {
        return;
    }
    let cg = unique("pids");
    let f = Fixture::new(
        "i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done; echo all forked",
        serde_json::json!({"pids": {"limit": 64}}),
        &cg,
    );
    let start = Instant::now();
    let out = f.run("p1");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("can't fork"),
        "no fork failed: {} {stderr}",
        text(&out.stdout)
    );
    assert!(!text(&out.stdout).contains("all forked"));
    // The container ended (its init, the shell, gave up), its sleepers with it.
    assert!(out.status.code().is_some());
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_gone(&cg);
}

#[test]
fn the_systemd_driver_is_refused() {
    if !runnable("the_systemd_driver_is_refused") {
        return;
    }
    let f = Fixture::new("true", serde_json::json!({}), "system.slice:bulwark:sd1");
    let out = f.bulwark(&[
        "--systemd-cgroup",
        "create",
        "-b",
        f.bundle().to_str().unwrap(),
        "sd1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("systemd cgroup driver is not supported"),
        "{}",
        text(&out.stderr)
    );
    assert!(f.bulwark(&["list", "-q"]).stdout.is_empty());
}
