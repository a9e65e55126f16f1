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
