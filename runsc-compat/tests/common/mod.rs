//! What the `bulwark` integration tests share.
// Each test crate includes this module and uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

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
/// in `/bin`, as an image layer (what `docker import` and `podman import` take).
pub fn busybox_rootfs_tar(dir: &Path, tools: &[&str]) -> std::path::PathBuf {
    ensure_busybox();
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
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
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tar
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
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    let status = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg(format!("--root={}", dir.join("state").display()))
        .arg(format!("--platform={platform}"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
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
