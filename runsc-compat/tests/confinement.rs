//! The Sentry process of `bulwark do` is confined as DESIGN.md draws it: its own mount,
//! network, IPC, UTS and PID namespaces, an empty root, no_new_privs, no capabilities and
//! a seccomp filter.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

/// The `bulwark boot` process whose parent is `parent`.
fn boot_child(parent: u32) -> Option<u32> {
    child_running(parent, "boot")
}

/// The child of `parent` that has the argument `command` (`boot`, `gofer`).
fn child_running(parent: u32, command: &str) -> Option<u32> {
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
        if ppid == parent && cmdline.split(|&b| b == 0).any(|a| a == command.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

/// A `bulwark do` whose program has started and waits for its standard input to close,
/// and its Sentry's PID. The caller closes the input and waits for it.
fn running_sandbox(platform: &str) -> (std::process::Child, u32) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    command.args([&format!("--platform={platform}"), "do", "--"]);
    running(command)
}

/// `command` (a `bulwark do` up to its `--`) started on a program that says it is ready
/// and waits for its standard input to close, and its Sentry's PID.
#[allow(clippy::zombie_processes)]
fn running(mut command: Command) -> (std::process::Child, u32) {
    let platform = format!("{command:?}");
    let mut child = command
        .args(["/bin/sh", "-c", "echo ready; read x; exit 0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
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
            assert_eq!(&line, b"ready\n", "{platform}");
            return (child, pid);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{platform}: no bulwark boot process");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `PF_KTHREAD | PF_USER_WORKER`: threads the kernel runs in a process (KVM's NX huge
/// page recovery worker), which never run its code and keep the credentials they were
/// made with.
const PF_KERNEL_WORKER: u64 = 0x0020_0000 | 0x0000_4000;

/// The status of each thread of `pid` that runs user code.
fn user_threads(pid: u32) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let flags = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(6)?.parse::<u64>().ok())
            .unwrap_or(0);
        if flags & PF_KERNEL_WORKER != 0 {
            continue;
        }
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
        out.push((comm.trim().to_string(), status));
    }
    out
}

#[test]
fn the_sentry_has_its_own_namespaces_and_an_empty_root() {
    for platform in common::platforms() {
        let (mut child, boot) = running_sandbox(platform);
        let root: Vec<_> = std::fs::read_dir(format!("/proc/{boot}/root"))
            .unwrap()
            .collect();
        let status = std::fs::read_to_string(format!("/proc/{boot}/status")).unwrap();
        let namespaces: Vec<(String, bool)> = ["mnt", "net", "ipc", "uts", "pid"]
            .iter()
            .map(|ns| {
                let theirs = std::fs::read_link(format!("/proc/{boot}/ns/{ns}")).unwrap();
                let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
                (ns.to_string(), theirs != ours)
            })
            .collect();
        drop(child.stdin.take());
        let _ = child.wait();
        assert!(root.is_empty(), "{platform}: the Sentry's root is empty");
        assert!(
            status.lines().any(|l| l == "NoNewPrivs:\t1"),
            "{platform}: no_new_privs"
        );
        for (ns, own) in namespaces {
            assert!(own, "{platform}: the Sentry has its own {ns} namespace");
        }
        // The init of its PID namespace: PID 1 there.
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        assert!(nspid.ends_with("\t1"), "{platform}: {nspid}");
    }
}

/// A descriptor that the caller of `bulwark` leaked (not close-on-exec) reaches neither the
/// Sentry nor the Gofer: they hold only what `bulwark` gave them.
#[test]
fn descriptors_leaked_by_the_caller_reach_neither_sentry_nor_gofer() {
    let marker = std::env::temp_dir().join(format!("bulwark-leak-{}", std::process::id()));
    std::fs::write(&marker, "host secret").unwrap();
    for platform in common::platforms() {
        // The shell opens descriptor 7 without close-on-exec and becomes `bulwark`.
        let mut command = Command::new("/bin/sh");
        command.args([
            "-c",
            r#"exec 7<"$0"; exec "$@""#,
            marker.to_str().unwrap(),
            env!("CARGO_BIN_EXE_bulwark"),
            &format!("--platform={platform}"),
            "do",
            "--",
        ]);
        let (mut child, boot) = running(command);
        let gofer = child_running(child.id(), "gofer");
        let holders: Vec<(u32, std::path::PathBuf)> = [Some(boot), gofer]
            .into_iter()
            .flatten()
            .flat_map(|pid| {
                std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(move |fd| Some((pid, std::fs::read_link(fd.path()).ok()?)))
            })
            .filter(|(_, target)| target == &marker)
            .collect();
        drop(child.stdin.take());
        let _ = child.wait();
        assert!(gofer.is_some(), "{platform}: no gofer process found");
        assert!(holders.is_empty(), "{platform}: leaked to {holders:?}");
    }
    let _ = std::fs::remove_file(&marker);
}

/// Every thread of the Sentry runs with no capability at all and under its seccomp
/// filter (two: the allow-list and the one refusing clone3).
#[test]
fn the_sentry_has_no_capabilities_and_a_seccomp_filter() {
    for platform in common::platforms() {
        let (mut child, boot) = running_sandbox(platform);
        let threads = user_threads(boot);
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert!(status.success(), "{platform}: {status:?}");
        assert!(threads.len() > 1, "{platform}: {threads:?}");
        for (comm, status) in threads {
            for want in [
                "CapInh:\t0000000000000000",
                "CapPrm:\t0000000000000000",
                "CapEff:\t0000000000000000",
                "CapBnd:\t0000000000000000",
                "CapAmb:\t0000000000000000",
                "NoNewPrivs:\t1",
                "Seccomp:\t2",
                "Seccomp_filters:\t2",
            ] {
                assert!(
                    status.lines().any(|l| l == want),
                    "{platform}: thread {comm} lacks {want:?}:\n{status}"
                );
            }
        }
    }
}
