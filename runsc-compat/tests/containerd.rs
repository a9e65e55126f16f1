//! containerd drives Bulwark as an OCI runtime: `ctr run --runc-binary bulwark`, through
//! containerd's runc shim (`containerd-shim-runc-v2`, which runs the binary as it runs
//! runc).
//!
//! The test starts a containerd of its own (CRI plugin off; its root, state and sockets in a
//! temporary directory), shared by the tests of this file while any runs and stopped when
//! the last one ends, even by a panic. The image is an OCI image layout made here from
//! static busybox and loaded with `ctr images import`, so no registry is needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

const IMAGE: &str = "docker.io/library/bulwark-test-busybox:latest";

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
        let archive = oci_archive(c.dir.path());
        let out = c.ctr(&["images".as_ref(), "import".as_ref(), archive.as_os_str()]);
        assert!(out.status.success(), "ctr images import: {}", stderr(&out));
        c
    }

    fn ctr<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running ctr")
    }

    /// Where the runc shim keeps Bulwark's state (`--runc-root`; the shim adds the
    /// namespace).
    fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc")
    }

    /// `ctr run --rm --runc-binary bulwark IMAGE ID COMMAND`.
    fn run(&self, id: &str, command: &[&str]) -> Output {
        let mut args = vec![
            "run".to_string(),
            "--rm".to_string(),
            "--runc-binary".to_string(),
            env!("CARGO_BIN_EXE_bulwark").to_string(),
            "--runc-root".to_string(),
            self.runc_root().display().to_string(),
            IMAGE.to_string(),
            id.to_string(),
        ];
        args.extend(command.iter().map(|s| s.to_string()));
        self.ctr(&args)
    }

    /// Checks that nothing of container `id` is left: no task or container in containerd,
    /// no `bulwark list` entry, no host process naming it.
    fn assert_gone(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let tasks = stdout(&self.ctr(&["tasks", "ls", "-q"]));
            let containers = stdout(&self.ctr(&["containers", "ls", "-q"]));
            let list = Command::new(env!("CARGO_BIN_EXE_bulwark"))
                .arg("--root")
                .arg(self.runc_root().join("default"))
                .args(["list", "-q"])
                .output()
                .unwrap();
            let listed = stdout(&list);
            let procs = common::host_processes_mentioning(&format!("/{id}/"));
            let left = tasks.lines().any(|l| l == id)
                || containers.lines().any(|l| l == id)
                || listed.lines().any(|l| l == id)
                || !procs.is_empty();
            if !left {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id} left behind: tasks {tasks:?}, containers {containers:?}, bulwark list \
                 {listed:?}, processes {procs:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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
        let dir = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut under: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .collect();
        under.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in under {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
    }
}

/// The containerd shared by the tests running now; it stops when the last of them ends.
fn containerd() -> Arc<Containerd> {
    static SHARED: Mutex<Weak<Containerd>> = Mutex::new(Weak::new());
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = shared.upgrade() {
        return c;
    }
    let c = Arc::new(Containerd::start());
    *shared = Arc::downgrade(&c);
    c
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
    std::fs::copy(file, blobs.join(&digest)).unwrap();
    serde_json::json!({
        "mediaType": media_type,
        "digest": format!("sha256:{digest}"),
        "size": std::fs::metadata(file).unwrap().len(),
    })
}

/// An OCI image archive (an image layout in a tar) of one uncompressed busybox layer,
/// named `IMAGE`.
fn oci_archive(dir: &Path) -> PathBuf {
    let work = dir.join("image");
    std::fs::create_dir_all(&work).unwrap();
    let layer = common::busybox_rootfs_tar(&work, &["sh", "echo", "true"]);
    let layout = work.join("layout");
    let layer_desc = blob(&layout, "application/vnd.oci.image.layer.v1.tar", &layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
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
        "io.containerd.image.name": IMAGE,
        "org.opencontainers.image.ref.name": "latest",
    });
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest_desc]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ctr_run_prints_the_output() {
    let c = containerd();
    let id = format!("bulwark-echo-{}", std::process::id());
    let out = c.run(&id, &["echo", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hi\n");
    c.assert_gone(&id);
}

#[test]
fn ctr_run_returns_the_exit_status() {
    let c = containerd();
    let id = format!("bulwark-exit-{}", std::process::id());
    let out = c.run(&id, &["sh", "-c", "busybox uname -r; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(
        stdout(&out).trim_end().ends_with("-bulwark"),
        "Bulwark's kernel answers: {}",
        stdout(&out)
    );
    c.assert_gone(&id);
}
