//! Confinement tests: each case re-runs this binary as a confined Gofer in a child
//! process (`GOFER_CHILD=<mode>`), with the server end of a channel as its stdin.
//! Needs root (namespaces, pivot_root), as CI has.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use gofer::confine::{confine, ConfineOptions, Violation};
use gofer::protocol::NO_ID;
use gofer::{channel, Client, Errno, MountConfig, Server};

const SECRET: &[u8] = b"HOST SECRET";

fn child_main(mode: &str) -> ! {
    let root = PathBuf::from(std::env::var("GOFER_ROOT").unwrap());
    let mounts = vec![
        MountConfig {
            name: "/".into(),
            path: root.clone(),
            read_only: false,
        },
        // Not nested in the root: Landlock grants a subtree the union of its ancestors'
        // rules, so a read-only tree inside a writable one would inherit write access
        // (there a read-only bind mount and the server's EROFS check hold the line).
        MountConfig {
            name: "/ro".into(),
            path: ro_tree(&root),
            read_only: true,
        },
        // OCI bind mounts: a writable directory and a read-only single file, both
        // outside the container root (as a bind source usually is).
        MountConfig {
            name: "/data".into(),
            path: bind_tree(&root),
            read_only: false,
        },
        MountConfig {
            name: "/etc/hosts".into(),
            path: single_dir(&root).join("hosts"),
            read_only: true,
        },
    ];
    let server = Server::new(mounts).unwrap();
    let mut opts = ConfineOptions::new(&root);
    match mode {
        "serve" => {}
        "socket-eperm" => opts.seccomp = Some(Violation::Eperm),
        // Landlock alone: keep the host root visible and show that it still denies.
        "landlock" => {
            opts.new_root = None;
            opts.seccomp = None;
        }
        _ => {}
    }
    confine(&server, &opts).unwrap();
    let code = match mode {
        "serve" => {
            let sock: OwnedFd = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
            server.serve(sock).unwrap();
            0
        }
        "socket-kill" | "socket-eperm" => {
            let r = rustix::net::socket(
                rustix::net::AddressFamily::INET,
                rustix::net::SocketType::STREAM,
                None,
            );
            // Only reached with Violation::Eperm.
            if r.err() == Some(rustix::io::Errno::PERM) {
                0
            } else {
                1
            }
        }
        "landlock" => {
            let outside = std::env::var("GOFER_OUTSIDE").unwrap();
            let denied = fs::read(&outside).map_err(|e| e.raw_os_error());
            let inside = fs::read(root.join("file")).map_err(|e| e.raw_os_error());
            let ro_write =
                fs::write(ro_tree(&root).join("frozen"), b"x").map_err(|e| e.raw_os_error());
            let single = single_dir(&root);
            let sibling = fs::read(single.join("secret")).map_err(|e| e.raw_os_error());
            let file_root = fs::read(single.join("hosts")).map_err(|e| e.raw_os_error());
            let file_write = fs::write(single.join("hosts"), b"x").map_err(|e| e.raw_os_error());
            let bind_write =
                fs::write(bind_tree(&root).join("new"), b"x").map_err(|e| e.raw_os_error());
            let ok = denied == Err(Some(libc::EACCES))
                && inside.as_deref() == Ok(&b"inside"[..])
                && ro_write == Err(Some(libc::EACCES))
                && sibling == Err(Some(libc::EACCES))
                && file_root.as_deref() == Ok(&b"127.0.0.1 localhost\n"[..])
                && file_write == Err(Some(libc::EACCES))
                && bind_write == Ok(());
            if !ok {
                eprintln!(
                    "landlock child: outside {denied:?}, inside {inside:?}, ro write {ro_write:?}, \
                     file sibling {sibling:?}, file root {file_root:?}, \
                     file write {file_write:?}, bind write {bind_write:?}"
                );
            }
            i32::from(!ok)
        }
        _ => 2,
    };
    std::process::exit(code)
}

fn ro_tree(root: &Path) -> PathBuf {
    root.with_file_name("ro-tree")
}

/// The source of the `/data` bind: a writable directory beside the root.
fn bind_tree(root: &Path) -> PathBuf {
    root.with_file_name("bind-tree")
}

/// Holds `hosts`, served alone as `/etc/hosts`, and `secret`, which is not served.
fn single_dir(root: &Path) -> PathBuf {
    root.with_file_name("single")
}

struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    fs::create_dir_all(ro_tree(&root)).unwrap();
    fs::create_dir_all(root.join("d")).unwrap();
    fs::write(root.join("file"), b"inside").unwrap();
    fs::write(root.join("d/passwd"), b"inside").unwrap();
    fs::write(ro_tree(&root).join("frozen"), b"ice").unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("passwd"), SECRET).unwrap();
    // Symlinks a hostile client (or another tenant of the host tree) might plant.
    symlink("/", root.join("slash")).unwrap();
    symlink("../outside", root.join("up")).unwrap();
    symlink(&outside, root.join("alt")).unwrap();
    let bind = bind_tree(&root);
    fs::create_dir_all(bind.join("d")).unwrap();
    fs::write(bind.join("d/passwd"), b"inside").unwrap();
    symlink("../outside", bind.join("up")).unwrap();
    symlink(&outside, bind.join("alt")).unwrap();
    symlink("/", bind.join("slash")).unwrap();
    let single = single_dir(&root);
    fs::create_dir_all(&single).unwrap();
    fs::write(single.join("hosts"), b"127.0.0.1 localhost\n").unwrap();
    fs::write(single.join("secret"), SECRET).unwrap();
    Tree {
        _tmp: tmp,
        root,
        outside,
    }
}

fn spawn(mode: &str, t: &Tree, stdin: Stdio) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("GOFER_CHILD", mode)
        .env("GOFER_ROOT", &t.root)
        .env("GOFER_OUTSIDE", t.outside.join("passwd"))
        .stdin(stdin)
        .spawn()
        .unwrap()
}

fn confined_gofer(t: &Tree) -> (Client, Child) {
    let (c, s) = channel::pair().unwrap();
    let child = spawn("serve", t, Stdio::from(s));
    (Client::new(vec![c]), child)
}

fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut v = Vec::new();
    fs::File::from(fd).read_to_end(&mut v).unwrap();
    v
}

fn finish(client: Client, mut child: Child) {
    drop(client);
    let status = child.wait().unwrap();
    assert!(status.success(), "confined gofer exited with {status:?}");
}

/// The confined server still does everything it is for (so its filter is not too tight).
fn confined_gofer_serves_every_operation(t: &Tree) {
    let (c, child) = confined_gofer(t);
    let (root, _) = c.attach("/").unwrap();
    let (file, _) = c.walk(root, "file").unwrap();
    assert_eq!(read_all(c.open(file, libc::O_RDONLY).unwrap()), b"inside");
    let (d, _) = c.mkdir(root, "new", 0o755, 1, 1).unwrap();
    let (h, _, fd) = c.create(d, "f", libc::O_RDWR, 0o644, 2, 2).unwrap();
    drop(fd);
    c.symlink(d, "s", "f", NO_ID, NO_ID).unwrap();
    let (s, _) = c.walk(d, "s").unwrap();
    assert_eq!(c.readlink(s).unwrap(), b"f");
    c.link(d, "f2", h).unwrap();
    c.rename(d, "f2", root, "f3", libc::RENAME_NOREPLACE)
        .unwrap();
    assert_eq!(c.readdir(d, 0, 4096).unwrap().len(), 2);
    let (plus, end) = c.readdir_plus(d, 0, 4096).unwrap();
    assert!(end);
    assert_eq!(plus.len(), 2);
    assert!(plus.iter().any(|e| e.name.0 == b"s" && e.stat.is_symlink()));
    c.setxattr(h, "user.k", "v", 0).unwrap();
    assert_eq!(c.getxattr(h, "user.k", 10).unwrap().1, b"v");
    c.listxattr(h, 100).unwrap();
    c.removexattr(h, "user.k").unwrap();
    let attr = gofer::protocol::SetAttr {
        mask: gofer::protocol::SetAttrMask::all(),
        mode: 0o600,
        uid: 3,
        gid: 3,
        size: 10,
        atime: Default::default(),
        mtime: Default::default(),
    };
    assert_eq!(c.set_attr(h, attr).unwrap().size, 10);
    c.fallocate(h, 0, 0, 4096).unwrap();
    c.fsync(h, false).unwrap();
    c.statfs(root).unwrap();
    c.unlink(root, "f3", 0).unwrap();
    let (ro, _) = c.attach("/ro").unwrap();
    assert_eq!(
        c.mkdir(ro, "x", 0o755, NO_ID, NO_ID).unwrap_err(),
        Errno::EROFS
    );
    c.close(&[file, d, h, s, ro]).unwrap();
    assert_eq!(fs::metadata(t.root.join("new/f")).unwrap().len(), 4096);
    finish(c, child);
}

/// `..`, symlinks out of the root, and absolute symlinks never reach the host file.
fn confined_gofer_cannot_be_walked_out_of_its_root(t: &Tree) {
    let (c, child) = confined_gofer(t);
    let (root, _) = c.attach("/").unwrap();
    assert_eq!(c.walk(root, "..").unwrap_err(), Errno::EINVAL);
    assert_eq!(c.walk(root, "../outside").unwrap_err(), Errno::EINVAL);
    let (d, _) = c.walk(root, "d").unwrap();
    assert_eq!(c.walk(d, "..").unwrap_err(), Errno::EINVAL);
    for link in ["slash", "up", "alt"] {
        let (h, st) = c.walk(root, link).unwrap();
        assert!(st.is_symlink(), "{link} must be returned as a symlink");
        assert_eq!(c.walk(h, "passwd").unwrap_err(), Errno::ENOTDIR, "{link}");
        assert_eq!(
            c.open(h, libc::O_RDONLY).unwrap_err(),
            Errno::ELOOP,
            "{link}"
        );
        assert_eq!(
            c.create(h, "x", libc::O_RDWR, 0o600, NO_ID, NO_ID)
                .unwrap_err(),
            Errno::ENOTDIR
        );
    }
    finish(c, child);
}

/// A host thread swaps `d` with a symlink to the outside directory while the client walks
/// and opens `d/passwd`: every successful open must read the inside file.
fn confined_gofer_survives_a_swap_race(t: &Tree) {
    swap_race(&t.root, "/", || confined_gofer(t), finish);
}

/// The same race in a bind mount's tree, served beside the container root.
fn confined_gofer_survives_a_swap_race_in_a_bind(t: &Tree) {
    swap_race(&bind_tree(&t.root), "/data", || confined_gofer(t), finish);
}

fn swap_race<S>(
    host_dir: &Path,
    mount: &str,
    start: impl FnOnce() -> (Client, S),
    end: impl FnOnce(Client, S),
) {
    let (c, state) = start();
    let stop = AtomicBool::new(false);
    // Stops the swapper even when an assertion below panics (else the scope never ends).
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let (mut opened, mut refused) = (0u32, 0u32);
    std::thread::scope(|s| {
        let root = host_dir.to_path_buf();
        let stop = &stop;
        s.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    root.join("d"),
                    rustix::fs::CWD,
                    root.join("alt"),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
            }
        });
        let _stop = StopOnDrop(stop);
        let (root, _) = c.attach(mount).unwrap();
        for _ in 0..3000 {
            let mut handles = Vec::new();
            match c.walk(root, "d") {
                Ok((d, _)) => {
                    handles.push(d);
                    match c.walk(d, "passwd") {
                        Ok((p, _)) => {
                            handles.push(p);
                            match c.open(p, libc::O_RDONLY) {
                                Ok(fd) => {
                                    let data = read_all(fd);
                                    assert_ne!(data, SECRET, "read the host file through a swap");
                                    assert_eq!(data, b"inside");
                                    opened += 1;
                                }
                                Err(e) => panic!("open failed: {e:?}"),
                            }
                        }
                        Err(e) => {
                            assert_eq!(e, Errno::ENOTDIR);
                            refused += 1;
                        }
                    }
                }
                Err(e) => panic!("walk d failed: {e:?}"),
            }
            c.close(&handles).unwrap();
        }
    });
    println!("    swap race: {opened} opened inside, {refused} refused at the symlink");
    assert!(
        opened > 0 && refused > 0,
        "the race must hit both states ({opened}, {refused})"
    );
    end(c, state);
}

/// The same race against an unconfined server: only the server's own discipline
/// (O_PATH walks with RESOLVE_NO_SYMLINKS) stands between the client and the host file.
fn unconfined_server_survives_a_swap_race(t: &Tree) {
    let start = || {
        let server = std::sync::Arc::new(
            Server::new(vec![MountConfig {
                name: "/".into(),
                path: t.root.clone(),
                read_only: false,
            }])
            .unwrap(),
        );
        let (c, s) = channel::pair().unwrap();
        let threads = server.spawn(vec![s]);
        (Client::new(vec![c]), threads)
    };
    swap_race(&t.root, "/", start, |c, threads| {
        drop(c);
        for th in threads {
            th.join().unwrap().unwrap();
        }
    });
}

/// Every bind root is a root of its own: no `..` above it, no symlink out of it, writes
/// where it is writable and `EROFS` where not; a single-file root is that file only.
fn every_served_root_is_confined_to_itself(t: &Tree) {
    let (c, child) = confined_gofer(t);
    let (data, st) = c.attach("/data").unwrap();
    assert!(st.is_dir());
    assert_eq!(c.walk(data, "..").unwrap_err(), Errno::EINVAL);
    for link in ["up", "alt", "slash"] {
        let (h, st) = c.walk(data, link).unwrap();
        assert!(st.is_symlink(), "{link} must be returned as a symlink");
        assert_eq!(c.walk(h, "passwd").unwrap_err(), Errno::ENOTDIR, "{link}");
        assert_eq!(c.open(h, libc::O_RDONLY).unwrap_err(), Errno::ELOOP);
        c.close(&[h]).unwrap();
    }
    let (h, _, fd) = c
        .create(data, "written", libc::O_RDWR, 0o644, NO_ID, NO_ID)
        .unwrap();
    fs::File::from(fd).write_all(b"from the sandbox").unwrap();
    assert_eq!(
        fs::read(bind_tree(&t.root).join("written")).unwrap(),
        b"from the sandbox"
    );
    let (hosts, st) = c.attach("/etc/hosts").unwrap();
    assert!(!st.is_dir() && !st.is_symlink());
    assert_eq!(
        read_all(c.open(hosts, libc::O_RDONLY).unwrap()),
        b"127.0.0.1 localhost\n"
    );
    assert_eq!(c.walk(hosts, "secret").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(c.walk(hosts, "..").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(
        c.open(hosts, libc::O_RDWR).unwrap_err(),
        Errno::EROFS,
        "a read-only file root refuses writes"
    );
    assert_eq!(c.attach("/etc").unwrap_err(), Errno::ENOENT);
    assert_eq!(c.attach("/nope").unwrap_err(), Errno::ENOENT);
    c.close(&[data, h, hosts]).unwrap();
    finish(c, child);
}

fn status_field(pid: u32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// The filter and the namespaces are really in place in the serving process.
fn confined_gofer_has_its_filter_and_namespaces(t: &Tree) {
    let (c, child) = confined_gofer(t);
    c.attach("/").unwrap(); // the child is now past confine()
    let pid = child.id();
    assert_eq!(status_field(pid, "Seccomp:"), "2");
    assert_eq!(status_field(pid, "NoNewPrivs:"), "1");
    for ns in ["net", "mnt"] {
        let mine = fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let its = fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_ne!(mine, its, "the gofer must have its own {ns} namespace");
    }
    // Its root is the container root: its /file is ours root/file.
    let its_root = fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(
        its_root,
        Path::new("/"),
        "pivot_root must have made the tree its root"
    );
    assert_eq!(
        fs::read(format!("/proc/{pid}/root/file")).unwrap(),
        b"inside"
    );
    finish(c, child);
}

/// A syscall outside the allow-list kills the Gofer (SIGSYS), or fails with EPERM.
fn syscall_outside_the_filter_is_refused(t: &Tree) {
    let status = spawn("socket-kill", t, Stdio::null()).wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGSYS),
        "socket() must kill the gofer: {status:?}"
    );
    let status = spawn("socket-eperm", t, Stdio::null()).wait().unwrap();
    assert!(
        status.success(),
        "socket() must fail with EPERM: {status:?}"
    );
}

/// Landlock alone (host root still visible, no seccomp) denies the host file and
/// writes to the read-only tree, and allows the served tree.
fn landlock_denies_what_is_not_served(t: &Tree) {
    let status = spawn("landlock", t, Stdio::null()).wait().unwrap();
    assert!(status.success(), "landlock child failed: {status:?}");
}

type Case = fn(&Tree);

fn main() {
    if let Ok(mode) = std::env::var("GOFER_CHILD") {
        child_main(&mode);
    }
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let cases: [(&str, Case); 9] = [
        (
            "confined_gofer_serves_every_operation",
            confined_gofer_serves_every_operation,
        ),
        (
            "confined_gofer_cannot_be_walked_out_of_its_root",
            confined_gofer_cannot_be_walked_out_of_its_root,
        ),
        (
            "confined_gofer_survives_a_swap_race",
            confined_gofer_survives_a_swap_race,
        ),
        (
            "confined_gofer_survives_a_swap_race_in_a_bind",
            confined_gofer_survives_a_swap_race_in_a_bind,
        ),
        (
            "every_served_root_is_confined_to_itself",
            every_served_root_is_confined_to_itself,
        ),
        (
            "unconfined_server_survives_a_swap_race",
            unconfined_server_survives_a_swap_race,
        ),
        (
            "confined_gofer_has_its_filter_and_namespaces",
            confined_gofer_has_its_filter_and_namespaces,
        ),
        (
            "syscall_outside_the_filter_is_refused",
            syscall_outside_the_filter_is_refused,
        ),
        (
            "landlock_denies_what_is_not_served",
            landlock_denies_what_is_not_served,
        ),
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        ran += 1;
        let t = tree();
        match std::panic::catch_unwind(|| case(&t)) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
