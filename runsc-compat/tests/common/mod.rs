//! What the `bulwark` integration tests share.
// Each test crate includes this module and uses a part of it.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

pub const BUSYBOX: &str = "/bin/busybox";

/// Every platform the host has: systrap always; kvm unless /dev/kvm is missing, which
/// fails the run in CI.
pub fn platforms() -> Vec<&'static str> {
    let available = platform::available();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        available.contains(&"systrap"),
        "systrap must work everywhere"
    );
    if !available.contains(&"kvm") {
        assert!(!ci, "CI needs /dev/kvm for the KVM platform");
        eprintln!("platform kvm not available here: NOT TESTED");
    }
    available
}

/// Installs busybox-static if it is missing (scripts/setup normally has).
pub fn ensure_busybox() {
    if !Path::new(BUSYBOX).exists() {
        let status = Command::new("sh")
            .args(["-c", "apt-get install -y -qq busybox-static >/dev/null"])
            .status()
            .expect("apt-get");
        assert!(status.success(), "installing busybox-static");
    }
}

/// Runs `args` under `bulwark do` on `platform`.
pub fn bulwark_do(platform: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg(format!("--platform={platform}"))
        .arg("do")
        .arg("--")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running bulwark")
}

/// Installs the Debian package `package` with apt if `program` is not on the PATH
/// (scripts/setup normally has).
pub fn ensure_installed(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        let status = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {package} >/dev/null"
                ),
            ])
            .status()
            .expect("apt-get");
        assert!(status.success(), "installing {package} (for {program})");
    }
}

/// Writes `dir/rootfs.tar`: a root filesystem of static busybox with `tools` linked to it
/// in `/bin` and the empty directories `dirs`, as an image layer (what `docker import` and
/// `podman import` take). The tree stays in `dir/rootfs`.
pub fn busybox_rootfs_tar(dir: &Path, tools: &[&str], dirs: &[&str]) -> PathBuf {
    ensure_busybox();
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    for d in dirs {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for tool in tools {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg("bin")
        .args(dirs)
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar: {}", stderr(&out));
    tar
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `command` with its output collected (read as it comes, so a long output cannot
/// stall it), killing it (and failing) if it takes longer than `limit`.
pub fn bounded(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} hung for {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `bounded` with a minute.
pub fn within_a_minute(command: &mut Command) -> Output {
    bounded(command, Duration::from_secs(60))
}

/// The host cgroup directory of `controller` a host process is in (from its
/// /proc/PID/cgroup), e.g. `/sys/fs/cgroup/cpu/docker/ID`.
pub fn host_cgroup_dir(pid: &str, controller: &str) -> PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = text
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup for {pid}:\n{text}"));
    Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(path.trim_start_matches('/'))
}

/// The daemon (or store) the tests running now share, made by `start` for the first of
/// them and dropped when the last one ends, even by a panic.
pub fn shared<T>(slot: &Mutex<Weak<T>>, start: impl FnOnce() -> T) -> Arc<T> {
    let mut shared = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(it) = shared.upgrade() {
        return it;
    }
    let it = Arc::new(start());
    *shared = Arc::downgrade(&it);
    it
}

/// Lazily unmounts every mount below `dir`, the deepest first (what a daemon left of its
/// containers' root filesystems when it was stopped).
pub fn unmount_below(dir: &Path) {
    let dir = dir.to_string_lossy().into_owned();
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

/// A host directory, with a file in it, for a bind mount.
pub fn host_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in"), "from the host\n").unwrap();
    dir
}

/// The host processes whose command line mentions `text` (a container ID, a state root).
pub fn host_processes_mentioning(text: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<i32>().is_err() || name == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(text) {
            found.push((name.parse().unwrap(), cmdline));
        }
    }
    found
}

/// Runs `bulwark --root=DIR/state --platform=PLATFORM ARGS…` with its standard output and
/// error going to files in `dir` (an OCI container's processes inherit them, as with
/// runc, so they must not be pipes that would stay open), and returns both.
pub fn bulwark_in(dir: &Path, platform: &str, args: &[&str]) -> Output {
    bulwark_in_with_fds(dir, platform, Vec::new(), args)
}

/// `bulwark_in`, with `files` as `bulwark`'s descriptors 3, 4, … (what runc's
/// `--preserve-fds` callers, such as Podman's socket activation, pass).
pub fn bulwark_in_with_fds(
    dir: &Path,
    platform: &str,
    files: Vec<std::fs::File>,
    args: &[&str],
) -> Output {
    use command_fds::{CommandFdExt, FdMapping};
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command
        .arg(format!("--root={}", dir.join("state").display()))
        .arg(format!("--platform={platform}"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    if !files.is_empty() {
        let mappings = files
            .into_iter()
            .zip(3..)
            .map(|(file, child_fd)| FdMapping {
                parent_fd: file.into(),
                child_fd,
            })
            .collect();
        command.fd_mappings(mappings).unwrap();
    }
    let status = command.status().unwrap();
    Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

/// Makes `DIR/bundle`: a rootfs with static busybox, `tools` linked to it in `/bin`,
/// and the empty directories `dirs`, and the config.json of `bulwark spec`, which it
/// returns for the caller to edit and write back.
pub fn busybox_bundle(dir: &Path, dirs: &[&str], tools: &[&str]) -> serde_json::Value {
    ensure_busybox();
    let bundle = dir.join("bundle");
    let rootfs = bundle.join("rootfs");
    for d in ["bin"].iter().chain(dirs) {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    for tool in tools {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(tool)).unwrap();
    }
    let out = bulwark_in(
        dir,
        "systrap",
        &["spec", "--bundle", bundle.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "spec: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap()).unwrap()
}

/// Where the Debian root filesystem with python3 is kept between runs (built once).
const DEBIAN_TAR: &str = "/var/cache/bulwark-tests/debian-bookworm-python3.tar";

/// A root filesystem of Debian 12 (minbase) with python3, as an image layer: built once
/// with debootstrap from Debian's archive and cached in [`DEBIAN_TAR`]. Concurrent callers
/// (tests in several binaries) wait for one build.
pub fn debian_python_rootfs_tar() -> std::path::PathBuf {
    let tar = Path::new(DEBIAN_TAR);
    let dir = tar.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let lock = std::fs::File::create(dir.join("debian.lock")).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    if tar.exists() {
        return tar.to_path_buf();
    }
    ensure_installed("debootstrap", "debootstrap");
    let build = dir.join("debian-build");
    let _ = std::fs::remove_dir_all(&build);
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "--include=python3", "bookworm"])
        .arg(&build)
        .arg("http://deb.debian.org/debian")
        .output()
        .expect("debootstrap");
    assert!(
        out.status.success(),
        "debootstrap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let partial = dir.join("debian.tar.partial");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&build)
        .args([
            "--exclude=./proc/*",
            "--exclude=./sys/*",
            "--exclude=./dev/*",
        ])
        .arg("-cf")
        .arg(&partial)
        .arg(".")
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&partial, tar).unwrap();
    let _ = std::fs::remove_dir_all(&build);
    tar.to_path_buf()
}
