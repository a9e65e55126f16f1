//! The Sentry process of `bulwark do` is confined as DESIGN.md draws it: its own mount,
//! network, IPC and UTS namespaces, an empty root, and no_new_privs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `bulwark boot` process whose parent is `parent`.
fn boot_child(parent: u32) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(") ")
            .next()?
            .split(' ')
            .nth(1)?
            .parse::<u32>()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == parent && cmdline.split(|&b| b == 0).any(|a| a == b"boot") {
            return Some(pid);
        }
    }
    None
}

#[test]
fn the_sentry_has_its_own_namespaces_and_an_empty_root() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args([
            "--platform=systrap",
            "do",
            "--",
            "/bin/sh",
            "-c",
            "echo ready; read x",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let boot = loop {
        if let Some(pid) = boot_child(child.id()) {
            // Wait until the program runs (the Sentry confines itself before loading it).
            let mut line = [0u8; 6];
            use std::io::Read;
            child
                .stdout
                .as_mut()
                .unwrap()
                .read_exact(&mut line)
                .unwrap();
            assert_eq!(&line, b"ready\n");
            break pid;
        }
        assert!(Instant::now() < deadline, "no bulwark boot process");
        std::thread::sleep(Duration::from_millis(20));
    };
    let root: Vec<_> = std::fs::read_dir(format!("/proc/{boot}/root"))
        .unwrap()
        .collect();
    let status = std::fs::read_to_string(format!("/proc/{boot}/status")).unwrap();
    let namespaces: Vec<(String, bool)> = ["mnt", "net", "ipc", "uts"]
        .iter()
        .map(|ns| {
            let theirs = std::fs::read_link(format!("/proc/{boot}/ns/{ns}")).unwrap();
            let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
            (ns.to_string(), theirs != ours)
        })
        .collect();
    drop(child.stdin.take());
    let _ = child.wait();
    assert!(root.is_empty(), "the Sentry's root is empty");
    assert!(
        status.lines().any(|l| l == "NoNewPrivs:\t1"),
        "no_new_privs"
    );
    for (ns, own) in namespaces {
        assert!(own, "the Sentry has its own {ns} namespace");
    }
}
