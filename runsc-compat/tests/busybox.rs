//! The acceptance of "`bulwark do` runs static busybox": real commands under `bulwark do`
//! on every platform the host has, compared with the same commands run natively where the
//! output is deterministic.

use std::io::Read;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bulwark_do as bulwark, ensure_busybox, platforms, BUSYBOX};

fn native(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .expect("native run")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a shell line natively and under each platform; their stdout must be equal.
fn same_as_native(line: &str) {
    let args = [BUSYBOX, "sh", "-c", line];
    let want = native(&args);
    assert!(
        want.status.success(),
        "natively: {line}: {}",
        String::from_utf8_lossy(&want.stderr)
    );
    for p in platforms() {
        let got = bulwark(p, &args);
        assert!(
            got.status.success(),
            "{p}: {line}: status {:?}, stderr {}",
            got.status,
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(stdout(&got), stdout(&want), "{p}: {line}");
    }
}

#[test]
fn pipeline_of_builtins() {
    ensure_busybox();
    same_as_native("for i in 1 2 3; do echo $i; done | sort -r | head -2");
}

#[test]
fn ls_of_the_root() {
    ensure_busybox();
    for p in platforms() {
        let out = bulwark(p, &[BUSYBOX, "ls", "-la", "/"]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = stdout(&out);
        for name in [" usr\n", " etc\n", " proc\n", " tmp\n"] {
            assert!(text.contains(name), "{p}: ls -la / lacks{name:?}:\n{text}");
        }
    }
}

#[test]
fn proc_self_status_and_ps() {
    ensure_busybox();
    for p in platforms() {
        let out = bulwark(p, &[BUSYBOX, "cat", "/proc/self/status"]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = stdout(&out);
        assert!(
            text.contains("Name:\tcat") || text.contains("Name:\tbusybox"),
            "{p}:\n{text}"
        );
        assert!(text.lines().any(|l| l.starts_with("Pid:")), "{p}:\n{text}");
        // ps lists every process of the sandbox, not only itself.
        let line = "busybox sleep 5 & busybox ps; kill $!";
        let out = bulwark(p, &[BUSYBOX, "sh", "-c", line]);
        assert!(
            out.status.success(),
            "{p}: ps: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = stdout(&out);
        assert!(
            text.contains("PID") && text.contains("busybox ps"),
            "{p}: ps:\n{text}"
        );
        assert!(
            text.contains("sleep 5"),
            "{p}: ps shows the other process:\n{text}"
        );
    }
}

#[test]
fn find_counts_libraries_as_natively() {
    ensure_busybox();
    same_as_native("busybox find /usr/lib -name '*.so*' | busybox wc -l");
}

#[test]
fn tar_czf_gives_the_native_byte_count() {
    ensure_busybox();
    same_as_native("busybox tar czf - /usr/share/doc 2>/dev/null | busybox wc -c");
}

#[test]
fn sha256_of_100_mb_matches() {
    ensure_busybox();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("busybox-100mb");
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(100 << 20) {
        // A deterministic, incompressible-looking pattern.
        let mut data = vec![0u8; 100 << 20];
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(&path, data).unwrap();
    }
    let p = path.to_str().unwrap();
    same_as_native(&format!("busybox sha256sum {p}"));
}

#[test]
fn writes_under_tmp_vanish_after_exit() {
    ensure_busybox();
    for p in platforms() {
        let name = format!("/tmp/bulwark-vanish-{}-{p}", std::process::id());
        let line = format!("echo sandboxed > {name} && busybox cat {name}");
        let out = bulwark(p, &[BUSYBOX, "sh", "-c", &line]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout(&out), "sandboxed\n", "{p}");
        assert!(
            !Path::new(&name).exists(),
            "{p}: the write reached the host"
        );
    }
}

#[test]
fn exit_status_is_the_programs() {
    ensure_busybox();
    for p in platforms() {
        let out = bulwark(p, &[BUSYBOX, "sh", "-c", "exit 7"]);
        assert_eq!(out.status.code(), Some(7), "{p}");
        let out = bulwark(p, &[BUSYBOX, "sh", "-c", "kill -SEGV $$"]);
        assert_eq!(out.status.code(), Some(128 + 11), "{p}: killed by SIGSEGV");
    }
}

#[test]
fn sigterm_to_bulwark_do_reaches_the_program() {
    ensure_busybox();
    for p in platforms() {
        // The program says it is ready, then waits; a SIGTERM to `bulwark do` must end it
        // through its handler (trap) with the status the handler chooses.
        let mut child = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .arg(format!("--platform={p}"))
            .args([
                "do",
                "--",
                BUSYBOX,
                "sh",
                "-c",
                "trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 1; done",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut byte = [0u8; 1];
        while !String::from_utf8_lossy(&seen).contains("ready\n") && Instant::now() < deadline {
            if out.read(&mut byte).unwrap_or(0) == 0 {
                break;
            }
            seen.push(byte[0]);
        }
        assert!(
            String::from_utf8_lossy(&seen).contains("ready"),
            "{p}: never ready"
        );
        let pid = rustix::process::Pid::from_child(&child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = child.wait().unwrap();
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "got TERM\n", "{p}");
        assert_eq!(status.code(), Some(42), "{p}");
    }
}

#[test]
fn unimplemented_syscall_is_enosys() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("enosys.c");
    let bin = dir.join("enosys");
    std::fs::write(
        &src,
        "#include <errno.h>\n#include <stdio.h>\n#include <unistd.h>\n\
         int main(void) { long r = syscall(1000); printf(\"%ld %d\\n\", r, errno); \
         return !(r == -1 && errno == ENOSYS); }\n",
    )
    .unwrap();
    let status = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success());
    let bin = bin.to_str().unwrap();
    let want = native(&[bin]);
    assert!(want.status.success(), "natively");
    for p in platforms() {
        let got = bulwark(p, &[bin]);
        assert!(got.status.success(), "{p}: {}", stdout(&got));
        assert_eq!(stdout(&got), stdout(&want), "{p}");
    }
}

#[test]
fn sysfs_counts_cpus_as_natively() {
    ensure_busybox();
    same_as_native("busybox cat /sys/devices/system/cpu/online; busybox nproc");
}
