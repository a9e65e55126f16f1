//! The OCI spec's mounts, `root.readonly`, `maskedPaths`, hooks, and the process's
//! rlimits, additional groups and capabilities, driven through the CLI on a bundle whose
//! rootfs holds static busybox. Each container runs `sh -c SCRIPT` to its end with
//! `bulwark run`; its output goes to a file.

mod common;

use std::path::PathBuf;
use std::process::Output;

struct Fixture {
    dir: tempfile::TempDir,
    config: serde_json::Value,
}

impl Fixture {
    /// A bundle running `script` with busybox's sh, and a state root of its own.
    fn new(script: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::busybox_bundle(
            dir.path(),
            &["proc", "dev", "tmp", "etc"],
            &[
                "sh", "echo", "cat", "id", "df", "stat", "ls", "touch", "mkdir", "grep", "test",
            ],
        );
        std::fs::write(
            dir.path().join("bundle/rootfs/etc/hosts"),
            "# the image's\n",
        )
        .unwrap();
        config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        config["root"]["readonly"] = serde_json::json!(false);
        Self { dir, config }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    /// A host directory of the test's own, made empty.
    fn host_dir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn add_mount(&mut self, mount: serde_json::Value) {
        self.config["mounts"].as_array_mut().unwrap().push(mount);
    }

    /// Runs a command (the config written first), its output to files (see
    /// `common::bulwark_in`).
    fn bulwark(&self, args: &[&str]) -> Output {
        if !self.config.is_null() {
            std::fs::write(self.bundle().join("config.json"), self.config.to_string()).unwrap();
        }
        common::bulwark_in(self.dir.path(), "systrap", args)
    }

    /// `bulwark run` to the end: its output, checked to have succeeded.
    fn run(&self, id: &str) -> String {
        let bundle = self.bundle();
        let out = self.bulwark(&["run", "--bundle", bundle.to_str().unwrap(), id]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "run: {:?}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.dir.path().join("state").join(id)
    }
}

#[test]
fn rw_bind_writes_reach_the_host() {
    let mut f = Fixture::new(
        "cat /data/in && echo from-sandbox > /data/out && mkdir /data/sub && ls /data",
    );
    let host = f.host_dir("rw");
    std::fs::write(host.join("in"), "from-host\n").unwrap();
    f.add_mount(serde_json::json!({
        "destination": "/data", "type": "bind", "source": host, "options": ["rbind", "rw"]
    }));
    let out = f.run("rw");
    assert!(out.starts_with("from-host\n"), "{out}");
    assert!(out.contains("out") && out.contains("sub"), "{out}");
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "from-sandbox\n"
    );
    assert!(host.join("sub").is_dir());
}

#[test]
fn ro_bind_refuses_writes_with_erofs() {
    let mut f = Fixture::new(
        "cat /data/f; echo x > /data/f; echo status=$?; touch /data/new; echo status=$?",
    );
    let host = f.host_dir("ro");
    std::fs::write(host.join("f"), "untouched\n").unwrap();
    f.add_mount(serde_json::json!({
        "destination": "/data", "type": "bind", "source": host, "options": ["rbind", "ro"]
    }));
    let bundle = f.bundle();
    let out = f.bulwark(&["run", "--bundle", bundle.to_str().unwrap(), "ro"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("untouched\n"), "{stdout}");
    assert_eq!(stdout.matches("status=1").count(), 2, "{stdout}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(host.join("f")).unwrap(),
        "untouched\n"
    );
    assert!(!host.join("new").exists());
}

#[test]
fn a_single_file_is_bound_over_the_images() {
    let mut f = Fixture::new("cat /etc/hosts /etc/hostname; echo y > /etc/hostname");
    let host = f.host_dir("files");
    std::fs::write(host.join("hosts"), "127.0.0.1 bound\n").unwrap();
    std::fs::write(host.join("hostname"), "writable\n").unwrap();
    f.add_mount(serde_json::json!({
        "destination": "/etc/hosts", "type": "bind", "source": host.join("hosts"),
        "options": ["rbind", "ro"]
    }));
    // /etc/hostname is not in the image: its mount point is made.
    f.add_mount(serde_json::json!({
        "destination": "/etc/hostname", "type": "bind", "source": host.join("hostname"),
        "options": ["rbind", "rw"]
    }));
    let out = f.run("file");
    assert_eq!(out, "127.0.0.1 bound\nwritable\n");
    assert_eq!(
        std::fs::read_to_string(host.join("hostname")).unwrap(),
        "y\n"
    );
    assert_eq!(
        std::fs::read_to_string(f.bundle().join("rootfs/etc/hosts")).unwrap(),
        "# the image's\n",
        "the image's file is untouched"
    );
}

#[test]
fn tmpfs_mount_with_size_and_mode() {
    let mut f = Fixture::new(
        "echo hi > /scratch/f && cat /scratch/f && stat -f -c %T /scratch && \
         stat -c %a /scratch && df -k /scratch | grep -c 65536; \
         head -c 100000 /dev/zero > /small/f 2>/dev/null; echo status=$?; wc -c < /small/f; \
         rm /small/f && head -c 60000 /dev/zero > /small/g && echo space back",
    );
    f.add_mount(serde_json::json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "size=64m", "mode=750"]
    }));
    f.add_mount(serde_json::json!({
        "destination": "/small", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]
    }));
    let out = f.run("tmpfs");
    // The size is enforced: a write past 64 KiB fails (ENOSPC) after filling it.
    assert_eq!(out, "hi\ntmpfs\n750\n1\nstatus=1\n65536\nspace back\n");
}

#[test]
fn read_only_root_refuses_writes_but_not_to_a_tmpfs() {
    let mut f = Fixture::new(
        "echo x > /f; echo status=$?; mkdir /d; echo status=$?; \
         echo ok > /scratch/f && cat /scratch/f",
    );
    f.config["root"]["readonly"] = serde_json::json!(true);
    f.add_mount(serde_json::json!({
        "destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": []
    }));
    let bundle = f.bundle();
    let out = f.bulwark(&["run", "--bundle", bundle.to_str().unwrap(), "rofs"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "status=1\nstatus=1\nok\n", "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
}

#[test]
fn masked_and_readonly_paths() {
    let mut f = Fixture::new(
        "cat /secret/file; echo status=$?; ls /secret | grep -c . ; \
         cat /etc/hosts | grep -c . ; echo x > /etc/hosts; echo status=$?; \
         echo y > /config/c; echo status=$?",
    );
    let root = f.bundle().join("rootfs");
    std::fs::create_dir_all(root.join("secret")).unwrap();
    std::fs::write(root.join("secret/file"), "hidden\n").unwrap();
    std::fs::create_dir_all(root.join("config")).unwrap();
    f.config["linux"]["maskedPaths"] = serde_json::json!(["/secret", "/etc/hosts", "/nope"]);
    f.config["linux"]["readonlyPaths"] = serde_json::json!(["/config", "/nope"]);
    let out = f.run("masked");
    assert_eq!(out, "status=1\n0\n0\nstatus=1\nstatus=1\n");
}

#[test]
fn hooks_get_the_state_and_run_at_their_moments() {
    let mut f = Fixture::new("true");
    let log = f.dir.path().join("hooks.log");
    let hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat >> {}; echo ' {name}' >> {}", log.display(), log.display())],
            "timeout": 10
        })
    };
    f.config["hooks"] = serde_json::json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "startContainer": [hook("startContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    let bundle = f.bundle();
    let out = f.bulwark(&["create", "--bundle", bundle.to_str().unwrap(), "h"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().unwrap();
    let state: serde_json::Value =
        serde_json::from_str(first.trim_end_matches(" prestart")).unwrap();
    assert_eq!(state["id"], "h");
    assert_eq!(state["status"], "creating");
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert_eq!(state["bundle"], bundle.to_str().unwrap());
    assert!(first.ends_with(" prestart"), "{text}");
    assert!(text.contains(" createRuntime"), "{text}");
    assert!(!text.contains("poststop"), "{text}");
    assert!(f.bulwark(&["start", "h"]).status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !String::from_utf8_lossy(&f.bulwark(&["state", "h"]).stdout).contains("stopped") {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(f.bulwark(&["delete", "h"]).status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text.lines().filter_map(|l| l.rsplit(' ').next()).collect();
    assert_eq!(
        order,
        [
            "prestart",
            "createRuntime",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    assert!(text.contains(r#""status":"stopped""#), "{text}");
}

#[test]
fn a_failing_prestart_hook_fails_create_and_leaves_nothing() {
    let mut f = Fixture::new("true");
    f.config["hooks"] = serde_json::json!({
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo refused >&2; exit 1"]}]
    });
    let bundle = f.bundle();
    let out = f.bulwark(&["create", "--bundle", bundle.to_str().unwrap(), "bad"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("prestart") && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(!f.state_dir("bad").exists(), "no state is left");
    let out = f.bulwark(&["state", "bad"]);
    assert!(!out.status.success());
}

#[test]
fn rlimits_groups_and_capabilities_reach_the_process() {
    let mut f = Fixture::new(
        "ulimit -n; ulimit -Hn; id -G; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; \
         grep NoNewPrivs /proc/self/status",
    );
    f.config["process"]["rlimits"] = serde_json::json!([
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}
    ]);
    f.config["process"]["user"]["additionalGids"] = serde_json::json!([10, 20]);
    let caps = serde_json::json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    f.config["process"]["capabilities"] = serde_json::json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": [], "ambient": []
    });
    f.config["process"]["noNewPrivileges"] = serde_json::json!(true);
    let out = f.run("limits");
    // CAP_CHOWN (0), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
    let mask = "0000000000000421";
    assert_eq!(
        out,
        format!(
            "321\n654\n0 10 20\nCapPrm:\t{mask}\nCapEff:\t{mask}\nCapBnd:\t{mask}\nNoNewPrivs:\t1\n"
        )
    );
}

/// The mounts Docker puts in every spec come up (mqueue and cgroup as stand-ins).
#[test]
fn docker_default_mounts() {
    let mut f = Fixture::new(
        "grep -E ' /(sys|dev/mqueue|sys/fs/cgroup|etc/resolv.conf|dev/shm) ' /proc/mounts | \
         while read src at type opts rest; do echo $at $type ${opts%%,*}; done; \
         cat /etc/resolv.conf",
    );
    let host = f.host_dir("docker");
    std::fs::write(host.join("resolv.conf"), "nameserver 192.0.2.1\n").unwrap();
    f.config["mounts"] = serde_json::json!([
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": host.join("resolv.conf"), "options": ["rbind", "rprivate"]},
    ]);
    let out = f.run("docker");
    assert_eq!(
        out,
        "/sys sysfs ro\n/dev/shm tmpfs rw\n/sys/fs/cgroup cgroup ro\n/dev/mqueue mqueue rw\n\
         /etc/resolv.conf bind rw\nnameserver 192.0.2.1\n"
    );
}
