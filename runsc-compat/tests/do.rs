//! The filesystem a program sees under `bulwark do`: the host root read-only through the
//! Gofer with a writable in-memory overlay (writes vanish at exit), procfs, devfs, and
//! dynamically linked programs loading their libraries through the VFS.

mod common;

use std::path::Path;

use common::{bulwark_do, ensure_busybox, platforms, BUSYBOX};

/// Runs `line` with busybox sh under each platform; returns each stdout after checking
/// the exit status is 0.
fn sh(line: &str) -> Vec<(&'static str, String)> {
    ensure_busybox();
    platforms()
        .into_iter()
        .map(|p| {
            let out = bulwark_do(p, &[BUSYBOX, "sh", "-c", line]);
            assert!(
                out.status.success(),
                "{p}: {line}: {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            (p, String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .collect()
}

#[test]
fn writes_succeed_and_vanish_at_exit() {
    let name = format!("/tmp/bulwark-do-vanish-{}", std::process::id());
    let line = format!(
        "echo hi > {name}; cat {name}; mkdir {name}.d; mv {name} {name}.d/moved; \
         ln -s moved {name}.d/link; cat {name}.d/link; ls {name}.d; rm -r {name}.d; \
         ls {name}.d 2>/dev/null || echo gone"
    );
    for (p, out) in sh(&line) {
        assert_eq!(out, "hi\nhi\nlink\nmoved\ngone\n", "{p}");
        assert!(
            !Path::new(&name).exists(),
            "{p}: the write reached the host"
        );
    }
}

#[test]
fn the_brief_line() {
    for (p, out) in sh("echo hi > /tmp/x; cat /tmp/x; ls /") {
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("hi"), "{p}");
        let names: Vec<&str> = lines.collect();
        for want in ["bin", "dev", "etc", "proc", "tmp", "usr"] {
            assert!(names.contains(&want), "{p}: ls / lacks {want}: {names:?}");
        }
    }
}

#[test]
fn read_only_root_files_are_copied_up_not_changed() {
    // /etc/hostname is the host's; the sandbox may change its copy only.
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    for (p, out) in sh("echo changed > /etc/hostname; cat /etc/hostname") {
        assert_eq!(out, "changed\n", "{p}");
    }
    assert_eq!(
        std::fs::read_to_string("/etc/hostname").unwrap_or_default(),
        host
    );
}

#[test]
fn procfs_and_devfs() {
    let line = "readlink /proc/self/exe; cat /proc/self/maps | grep -c busybox; \
                head -c 4 /dev/zero | wc -c; echo x > /dev/null; echo x > /dev/full || echo full; \
                cat /proc/mounts | cut -d' ' -f2";
    for (p, out) in sh(line) {
        assert_eq!(
            out, "/usr/bin/busybox\n5\n4\nfull\n/\n/proc\n/dev\n/dev/pts\n/sys\n/dev/shm\n",
            "{p}"
        );
    }
}

#[test]
fn dynamic_programs_load_their_libraries() {
    // /bin/ls is dynamically linked: ld.so opens and maps libc through the VFS.
    for p in platforms() {
        let out = bulwark_do(p, &["/bin/ls", "-d", "/etc", "/usr"]);
        assert!(
            out.status.success(),
            "{p}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/etc\n/usr\n", "{p}");
    }
}

#[test]
fn pipes_block_interruptibly_and_raise_sigpipe() {
    let line = "(yes; echo \"yes: $?\" > /tmp/yes) | head -1; cat /tmp/yes; \
                sleep 1 | cat & p=$!; sleep 0.3; kill $p; wait $p; echo \"cat: $?\"; \
                mkfifo /tmp/fifo; (echo via-fifo > /tmp/fifo &); cat /tmp/fifo";
    for (p, out) in sh(line) {
        // yes dies of SIGPIPE (128 + 13); cat, blocked reading the pipe, of SIGTERM.
        assert_eq!(out, "y\nyes: 141\ncat: 143\nvia-fifo\n", "{p}");
    }
}
