//! Podman drives Bulwark as its OCI runtime (`podman --runtime`): run with output and exit
//! status, a detached container, ps, stop and rm. The image is made here from static
//! busybox (`podman import`), so no registry is needed.

use std::path::Path;
use std::process::{Command, Output};

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--runtime")
        .arg(env!("CARGO_BIN_EXE_bulwark"))
        .args(args)
        .output()
        .expect("podman (scripts/setup installs it)")
}

fn image() -> &'static str {
    static IMAGE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        assert!(
            Path::new("/bin/busybox").exists(),
            "busybox-static (scripts/setup)"
        );
        std::fs::copy("/bin/busybox", dir.path().join("bin/busybox")).unwrap();
        for tool in ["sh", "echo", "sleep", "hostname"] {
            std::os::unix::fs::symlink("busybox", dir.path().join("bin").join(tool)).unwrap();
        }
        let tar = dir.path().join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .args(["-cf"])
            .arg(&tar)
            .arg("bin")
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let out = Command::new("podman")
            .arg("import")
            .arg(&tar)
            .arg("localhost/bulwark-test-busybox")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    "localhost/bulwark-test-busybox"
}

#[test]
fn podman_runs_containers_on_bulwark() {
    let out = podman(&[
        "run",
        "--rm",
        image(),
        "/bin/sh",
        "-c",
        "echo hello from $(hostname | busybox wc -c) chars; exit 3",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from 13 chars\n"
    );

    let name = format!("bulwark-test-{}", std::process::id());
    let out = podman(&["run", "-d", "--name", &name, image(), "/bin/sleep", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ps = podman(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    let ps = String::from_utf8_lossy(&ps.stdout).into_owned();
    assert!(
        ps.lines().any(|l| l.starts_with(&name) && l.contains("Up")),
        "{ps}"
    );
    let stop = podman(&["stop", "-t", "2", &name]);
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    let rm = podman(&["rm", &name]);
    assert!(
        rm.status.success(),
        "{}",
        String::from_utf8_lossy(&rm.stderr)
    );
}
