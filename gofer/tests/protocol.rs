//! Protocol round trips over real socketpairs against a temporary tree.

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use gofer::protocol::{
    Handle, Request, Response, SetAttr, SetAttrMask, Timespec, NO_ID, UTIME_NOW, UTIME_OMIT,
};
use gofer::{channel, Client, Errno, MountConfig, Server};

struct Fixture {
    dir: tempfile::TempDir,
    client: Client,
    _server: Arc<Server>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let ro = dir.path().join("ro");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::create_dir_all(&ro).unwrap();
    fs::write(root.join("file"), b"hello gofer").unwrap();
    fs::write(ro.join("frozen"), b"ice").unwrap();
    let server = Arc::new(
        Server::new(vec![
            MountConfig {
                name: "/".into(),
                path: root,
                read_only: false,
            },
            MountConfig {
                name: "/ro".into(),
                path: ro,
                read_only: true,
            },
        ])
        .unwrap(),
    );
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let (c, s) = channel::pair().unwrap();
        clients.push(c);
        servers.push(s);
    }
    server.spawn(servers);
    Fixture {
        dir,
        client: Client::new(clients),
        _server: server,
    }
}

impl Fixture {
    fn root(&self) -> Handle {
        self.client.attach("/").unwrap().0
    }
    fn host(&self, rel: &str) -> std::path::PathBuf {
        self.dir.path().join("root").join(rel)
    }
}

#[test]
fn attach_walk_stat() {
    let f = fixture();
    let (root, st) = f.client.attach("/").unwrap();
    assert!(st.is_dir());
    let (file, st) = f.client.walk(root, "file").unwrap();
    assert!(st.is_file());
    assert_eq!(st.size, 11);
    assert_eq!(st.ino, fs::metadata(f.host("file")).unwrap().ino());
    assert_eq!(f.client.stat(file).unwrap(), st);
    assert_eq!(f.client.walk(root, "missing").unwrap_err(), Errno::ENOENT);
    assert_eq!(f.client.walk(file, "x").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(f.client.attach("/nope").unwrap_err(), Errno::ENOENT);
}

#[test]
fn open_donates_an_fd_for_reading_and_writing() {
    let f = fixture();
    let root = f.root();
    let (file, _) = f.client.walk(root, "file").unwrap();
    let mut rd = fs::File::from(f.client.open(file, libc::O_RDONLY).unwrap());
    let mut s = String::new();
    rd.read_to_string(&mut s).unwrap();
    assert_eq!(s, "hello gofer");
    let mut wr = fs::File::from(f.client.open(file, libc::O_WRONLY | libc::O_TRUNC).unwrap());
    wr.write_all(b"new").unwrap();
    assert_eq!(fs::read(f.host("file")).unwrap(), b"new");
    // Directories open read-only only.
    let (sub, _) = f.client.walk(root, "sub").unwrap();
    f.client.open(sub, libc::O_RDONLY).unwrap();
    assert_eq!(f.client.open(sub, libc::O_RDWR).unwrap_err(), Errno::EISDIR);
    // Flags that would make the server create or follow are refused.
    assert_eq!(
        f.client
            .open(file, libc::O_RDONLY | libc::O_CREAT)
            .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(
        f.client
            .open(file, libc::O_RDONLY | libc::O_PATH)
            .unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn create_is_exclusive_and_owned_by_the_caller() {
    let f = fixture();
    let root = f.root();
    let (h, st, fd) = f
        .client
        .create(root, "new", libc::O_RDWR, 0o640, 1234, 5678)
        .unwrap();
    assert!(st.is_file());
    assert_eq!((st.mode & 0o7777, st.uid, st.gid), (0o640, 1234, 5678));
    let mut file = fs::File::from(fd);
    file.write_all(b"data").unwrap();
    file.rewind().unwrap();
    assert_eq!(f.client.stat(h).unwrap().size, 4);
    let meta = fs::metadata(f.host("new")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (1234, 5678, 0o640)
    );
    assert_eq!(
        f.client
            .create(root, "new", libc::O_RDWR, 0o600, NO_ID, NO_ID)
            .unwrap_err(),
        Errno::EEXIST
    );
}

#[test]
fn mkdir_mknod_symlink_readlink() {
    let f = fixture();
    let root = f.root();
    let (d, st) = f.client.mkdir(root, "d", 0o750, NO_ID, NO_ID).unwrap();
    assert!(st.is_dir());
    assert_eq!(st.mode & 0o7777, 0o750);
    assert_eq!(
        f.client.mkdir(root, "d", 0o750, NO_ID, NO_ID).unwrap_err(),
        Errno::EEXIST
    );
    let (_, st) = f
        .client
        .mknod(d, "fifo", libc::S_IFIFO | 0o600, 0, NO_ID, NO_ID)
        .unwrap();
    assert_eq!(st.file_type(), libc::S_IFIFO);
    assert_eq!(
        f.client
            .mknod(
                d,
                "null",
                libc::S_IFCHR | 0o600,
                libc::makedev(1, 3),
                NO_ID,
                NO_ID
            )
            .unwrap_err(),
        Errno::EPERM
    );
    let (l, st) = f
        .client
        .symlink(root, "link", "/etc/passwd", 42, 43)
        .unwrap();
    assert!(st.is_symlink());
    assert_eq!((st.uid, st.gid), (42, 43));
    assert_eq!(f.client.readlink(l).unwrap(), b"/etc/passwd");
    assert_eq!(
        fs::read_link(f.host("link")).unwrap().to_str(),
        Some("/etc/passwd")
    );
    // Walk returns the symlink itself; opening it for I/O is ELOOP.
    let (l2, st) = f.client.walk(root, "link").unwrap();
    assert!(st.is_symlink());
    assert_eq!(f.client.open(l2, libc::O_RDONLY).unwrap_err(), Errno::ELOOP);
    assert_eq!(f.client.readlink(d).unwrap_err(), Errno::EINVAL);
    assert_eq!(
        f.client
            .symlink(root, "empty", "", NO_ID, NO_ID)
            .unwrap_err(),
        Errno::ENOENT
    );
}

#[test]
fn link_and_unlink() {
    let f = fixture();
    let root = f.root();
    let (file, _) = f.client.walk(root, "file").unwrap();
    let (_, st) = f.client.link(root, "hard", file).unwrap();
    assert_eq!(st.nlink, 2);
    assert_eq!(st.ino, fs::metadata(f.host("file")).unwrap().ino());
    let (sub, _) = f.client.walk(root, "sub").unwrap();
    assert_eq!(
        f.client.link(root, "dirlink", sub).unwrap_err(),
        Errno::EPERM
    );
    // A hard link to a symlink links the symlink itself.
    let (sl, _) = f.client.symlink(root, "sl", "file", NO_ID, NO_ID).unwrap();
    let (_, st) = f.client.link(root, "sl2", sl).unwrap();
    assert!(st.is_symlink());
    f.client.unlink(root, "hard", 0).unwrap();
    assert!(!f.host("hard").exists());
    assert_eq!(f.client.unlink(root, "sub", 0).unwrap_err(), Errno::EISDIR);
    assert_eq!(
        f.client
            .unlink(root, "file", libc::AT_REMOVEDIR as u32)
            .unwrap_err(),
        Errno::ENOTDIR
    );
    f.client
        .unlink(root, "sub", libc::AT_REMOVEDIR as u32)
        .unwrap();
    assert_eq!(f.client.unlink(root, "sub", 0).unwrap_err(), Errno::ENOENT);
    assert_eq!(
        f.client.unlink(root, "x", 0x100).unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn rename_with_flags() {
    let f = fixture();
    let root = f.root();
    let (sub, _) = f.client.walk(root, "sub").unwrap();
    fs::write(f.host("other"), b"other").unwrap();
    assert_eq!(
        f.client
            .rename(root, "file", root, "other", libc::RENAME_NOREPLACE)
            .unwrap_err(),
        Errno::EEXIST
    );
    f.client
        .rename(root, "file", root, "other", libc::RENAME_EXCHANGE)
        .unwrap();
    assert_eq!(fs::read(f.host("file")).unwrap(), b"other");
    assert_eq!(fs::read(f.host("other")).unwrap(), b"hello gofer");
    f.client.rename(root, "other", sub, "moved", 0).unwrap();
    assert_eq!(fs::read(f.host("sub/moved")).unwrap(), b"hello gofer");
    assert_eq!(
        f.client.rename(root, "gone", root, "x", 0).unwrap_err(),
        Errno::ENOENT
    );
    assert_eq!(
        f.client
            .rename(root, "file", root, "x", 1 << 10)
            .unwrap_err(),
        Errno::EINVAL
    );
}

#[test]
fn readdir_in_batches_with_cookies() {
    let f = fixture();
    let root = f.root();
    let (d, _) = f.client.mkdir(root, "many", 0o755, NO_ID, NO_ID).unwrap();
    let mut want: Vec<String> = (0..300)
        .map(|i| format!("entry-with-a-long-name-{i:04}"))
        .collect();
    for n in &want {
        fs::write(f.host("many").join(n), b"").unwrap();
    }
    let mut got = Vec::new();
    let mut cookie = 0;
    let mut batches = 0;
    loop {
        let entries = f.client.readdir(d, cookie, 1024).unwrap();
        if entries.is_empty() {
            break;
        }
        batches += 1;
        for e in &entries {
            assert_eq!(e.kind, libc::DT_REG);
            got.push(String::from_utf8(e.name.0.clone()).unwrap());
        }
        cookie = entries.last().unwrap().next_cookie;
    }
    assert!(
        batches > 5,
        "1 KiB batches must split 300 entries ({batches})"
    );
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(f.client.readdir(d, 0, 4).unwrap_err(), Errno::EINVAL);
    let (file, _) = f.client.walk(root, "file").unwrap();
    assert_eq!(f.client.readdir(file, 0, 4096).unwrap_err(), Errno::ENOTDIR);
}

#[test]
fn readdir_plus_gives_each_entry_the_attributes_a_walk_gives() {
    let f = fixture();
    let root = f.root();
    let (d, _) = f.client.mkdir(root, "many", 0o755, NO_ID, NO_ID).unwrap();
    let mut want: Vec<String> = (0..300)
        .map(|i| format!("entry-with-a-long-name-{i:04}"))
        .collect();
    for (i, n) in want.iter().enumerate() {
        fs::write(f.host("many").join(n), vec![b'x'; i]).unwrap();
    }
    fs::create_dir(f.host("many/sub")).unwrap();
    // A symlink out of the tree: its own attributes, never the target's.
    std::os::unix::fs::symlink("/", f.host("many/escape")).unwrap();
    want.extend(["sub".to_string(), "escape".to_string()]);
    let mut got = Vec::new();
    let mut cookie = 0;
    let mut batches = 0;
    loop {
        let (entries, end) = f.client.readdir_plus(d, cookie, 4096).unwrap();
        batches += 1;
        for e in &entries {
            let (h, walked) = f.client.walk(d, &e.name.0).unwrap();
            assert_eq!(e.stat, walked, "{:?}", e.name);
            f.client.close(&[h]).unwrap();
            got.push(String::from_utf8(e.name.0.clone()).unwrap());
        }
        if end {
            break;
        }
        assert!(!entries.is_empty(), "only the last batch may be empty");
        cookie = entries.last().unwrap().next_cookie;
    }
    assert!(
        batches > 5,
        "4 KiB batches must split 302 entries ({batches})"
    );
    got.sort();
    want.sort();
    assert_eq!(got, want);

    let (all, end) = f.client.readdir_plus(d, 0, u32::MAX).unwrap();
    assert!(end, "302 entries fit in one message");
    assert_eq!(all.len(), 302);
    let escape = all.iter().find(|e| e.name.0 == b"escape").unwrap();
    assert!(escape.stat.is_symlink());
    assert_eq!(escape.stat.size, 1);
    assert!(all.iter().any(|e| e.name.0 == b"sub" && e.stat.is_dir()));

    assert_eq!(f.client.readdir_plus(d, 0, 16).unwrap_err(), Errno::EINVAL);
    let (file, _) = f.client.walk(root, "file").unwrap();
    assert_eq!(
        f.client.readdir_plus(file, 0, 4096).unwrap_err(),
        Errno::ENOTDIR
    );
    let (escape, _) = f.client.walk(d, "escape").unwrap();
    assert_eq!(
        f.client.readdir_plus(escape, 0, 4096).unwrap_err(),
        Errno::ENOTDIR
    );
    f.client.close(&[d]).unwrap();
    assert_eq!(f.client.readdir_plus(d, 0, 4096).unwrap_err(), Errno::EBADF);
}

#[test]
fn setattr_mode_owner_size_times() {
    let f = fixture();
    let root = f.root();
    let (file, _) = f.client.walk(root, "file").unwrap();
    let st = f
        .client
        .set_attr(
            file,
            SetAttr {
                mask: SetAttrMask::all(),
                mode: 0o4711,
                uid: 100,
                gid: 200,
                size: 3,
                atime: Timespec {
                    sec: 1_000_000,
                    nsec: 5,
                },
                mtime: Timespec {
                    sec: 2_000_000,
                    nsec: 7,
                },
            },
        )
        .unwrap();
    assert_eq!(
        (st.mode & 0o7777, st.uid, st.gid, st.size),
        (0o4711, 100, 200, 3)
    );
    assert_eq!(
        st.atime,
        Timespec {
            sec: 1_000_000,
            nsec: 5
        }
    );
    assert_eq!(
        st.mtime,
        Timespec {
            sec: 2_000_000,
            nsec: 7
        }
    );
    // UTIME_OMIT leaves atime alone; UTIME_NOW sets mtime to now.
    let st = f
        .client
        .set_attr(
            file,
            SetAttr {
                mask: SetAttrMask::ATIME | SetAttrMask::MTIME,
                atime: Timespec {
                    sec: 0,
                    nsec: UTIME_OMIT,
                },
                mtime: Timespec {
                    sec: 0,
                    nsec: UTIME_NOW,
                },
                ..SetAttr::default()
            },
        )
        .unwrap();
    assert_eq!(
        st.atime,
        Timespec {
            sec: 1_000_000,
            nsec: 5
        }
    );
    assert!(st.mtime.sec > 1_700_000_000);
    let (sub, _) = f.client.walk(root, "sub").unwrap();
    let size = SetAttr {
        mask: SetAttrMask::SIZE,
        ..SetAttr::default()
    };
    assert_eq!(
        f.client.set_attr(sub, size.clone()).unwrap_err(),
        Errno::EISDIR
    );
    let (l, _) = f.client.symlink(root, "l", "file", NO_ID, NO_ID).unwrap();
    let mode = SetAttr {
        mask: SetAttrMask::MODE,
        mode: 0o777,
        ..SetAttr::default()
    };
    assert_eq!(f.client.set_attr(l, mode).unwrap_err(), Errno::EOPNOTSUPP);
    // Owner and times of a symlink itself can change.
    let own = SetAttr {
        mask: SetAttrMask::UID,
        uid: 7,
        ..SetAttr::default()
    };
    assert_eq!(f.client.set_attr(l, own).unwrap().uid, 7);
    assert_eq!(
        fs::metadata(f.host("file")).unwrap().uid(),
        100,
        "chown must not follow the symlink"
    );
    let bad = SetAttr {
        mask: SetAttrMask::from_bits_retain(1 << 20),
        ..SetAttr::default()
    };
    assert_eq!(f.client.set_attr(file, bad).unwrap_err(), Errno::EINVAL);
}

#[test]
fn xattrs() {
    let f = fixture();
    let root = f.root();
    let (file, _) = f.client.walk(root, "file").unwrap();
    f.client.setxattr(file, "user.colour", "blue", 0).unwrap();
    assert_eq!(
        f.client.getxattr(file, "user.colour", 0).unwrap(),
        (4, vec![])
    );
    assert_eq!(
        f.client.getxattr(file, "user.colour", 100).unwrap(),
        (4, b"blue".to_vec())
    );
    assert_eq!(
        f.client.getxattr(file, "user.colour", 2).unwrap_err(),
        Errno::ERANGE
    );
    assert_eq!(
        f.client
            .setxattr(file, "user.colour", "red", libc::XATTR_CREATE as u32)
            .unwrap_err(),
        Errno::EEXIST
    );
    let (len, names) = f.client.listxattr(file, 1000).unwrap();
    assert_eq!(usize::try_from(len).unwrap(), names.len());
    assert!(names.split(|b| *b == 0).any(|n| n == b"user.colour"));
    f.client.removexattr(file, "user.colour").unwrap();
    assert_eq!(
        f.client.getxattr(file, "user.colour", 100).unwrap_err(),
        Errno::ENODATA
    );
    assert_eq!(f.client.getxattr(file, "", 100).unwrap_err(), Errno::ERANGE);
    let (l, _) = f.client.symlink(root, "l", "file", NO_ID, NO_ID).unwrap();
    assert_eq!(
        f.client.setxattr(l, "user.x", "1", 0).unwrap_err(),
        Errno::EPERM
    );
    assert_eq!(
        f.client.getxattr(l, "user.x", 10).unwrap_err(),
        Errno::ENODATA
    );
}

#[test]
fn statfs_fsync_fallocate() {
    let f = fixture();
    let root = f.root();
    let (file, _) = f.client.walk(root, "file").unwrap();
    let sfs = f.client.statfs(root).unwrap();
    assert!(sfs.bsize > 0 && sfs.namelen >= 255);
    assert_eq!(sfs.flags & libc::ST_RDONLY, 0);
    f.client.fsync(file, false).unwrap();
    f.client.fsync(root, true).unwrap();
    f.client.fallocate(file, 0, 0, 1 << 20).unwrap();
    assert_eq!(fs::metadata(f.host("file")).unwrap().len(), 1 << 20);
    f.client
        .fallocate(file, libc::FALLOC_FL_KEEP_SIZE as u32, 0, 4 << 20)
        .unwrap();
    assert_eq!(fs::metadata(f.host("file")).unwrap().len(), 1 << 20);
    assert_eq!(
        f.client.fallocate(root, 0, 0, 10).unwrap_err(),
        Errno::EISDIR
    );
}

#[test]
fn read_only_mount_refuses_every_write_with_erofs() {
    let f = fixture();
    let (ro, _) = f.client.attach("/ro").unwrap();
    let (frozen, _) = f.client.walk(ro, "frozen").unwrap();
    let mut s = String::new();
    fs::File::from(f.client.open(frozen, libc::O_RDONLY).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "ice");
    let e = Errno::EROFS;
    assert_eq!(f.client.open(frozen, libc::O_WRONLY).unwrap_err(), e);
    assert_eq!(
        f.client
            .open(frozen, libc::O_RDONLY | libc::O_TRUNC)
            .unwrap_err(),
        e
    );
    assert_eq!(
        f.client
            .create(ro, "n", libc::O_RDWR, 0o600, NO_ID, NO_ID)
            .unwrap_err(),
        e
    );
    assert_eq!(f.client.mkdir(ro, "n", 0o700, NO_ID, NO_ID).unwrap_err(), e);
    assert_eq!(
        f.client
            .mknod(ro, "n", libc::S_IFIFO, 0, NO_ID, NO_ID)
            .unwrap_err(),
        e
    );
    assert_eq!(f.client.symlink(ro, "n", "t", NO_ID, NO_ID).unwrap_err(), e);
    assert_eq!(f.client.link(ro, "n", frozen).unwrap_err(), e);
    assert_eq!(f.client.unlink(ro, "frozen", 0).unwrap_err(), e);
    assert_eq!(f.client.rename(ro, "frozen", ro, "n", 0).unwrap_err(), e);
    let attr = SetAttr {
        mask: SetAttrMask::MODE,
        mode: 0o777,
        ..SetAttr::default()
    };
    assert_eq!(f.client.set_attr(frozen, attr).unwrap_err(), e);
    assert_eq!(f.client.fallocate(frozen, 0, 0, 10).unwrap_err(), e);
    assert_eq!(f.client.setxattr(frozen, "user.a", "b", 0).unwrap_err(), e);
    assert_eq!(f.client.removexattr(frozen, "user.a").unwrap_err(), e);
    assert_ne!(f.client.statfs(ro).unwrap().flags & libc::ST_RDONLY, 0);
    // A rename from the writable mount into the read-only one is refused too.
    let root = f.root();
    assert_eq!(f.client.rename(root, "file", ro, "file", 0).unwrap_err(), e);
    assert_eq!(fs::read(f.dir.path().join("ro/frozen")).unwrap(), b"ice");
}

#[test]
fn unknown_and_closed_handles_are_ebadf() {
    let f = fixture();
    let root = f.root();
    let bogus = Handle(0xdead_beef);
    assert_eq!(f.client.stat(bogus).unwrap_err(), Errno::EBADF);
    assert_eq!(f.client.walk(bogus, "file").unwrap_err(), Errno::EBADF);
    assert_eq!(f.client.open(bogus, 0).unwrap_err(), Errno::EBADF);
    assert_eq!(
        f.client.rename(root, "file", bogus, "x", 0).unwrap_err(),
        Errno::EBADF
    );
    assert_eq!(f.client.link(root, "x", bogus).unwrap_err(), Errno::EBADF);
    let (file, _) = f.client.walk(root, "file").unwrap();
    f.client.close(&[file]).unwrap();
    assert_eq!(f.client.stat(file).unwrap_err(), Errno::EBADF);
    assert_eq!(f.client.close(&[file]).unwrap_err(), Errno::EBADF);
    assert_eq!(f.client.stat(Handle(0)).unwrap_err(), Errno::EBADF);
}

#[test]
fn names_that_are_not_one_component_are_refused() {
    let f = fixture();
    let root = f.root();
    for (name, errno) in [
        (&b".."[..], Errno::EINVAL),
        (b".", Errno::EINVAL),
        (b"sub/../..", Errno::EINVAL),
        (b"/etc", Errno::EINVAL),
        (b"fi\0le", Errno::EINVAL),
        (b"", Errno::ENOENT),
    ] {
        assert_eq!(
            f.client.walk(root, name).unwrap_err(),
            errno,
            "walk {name:?}"
        );
        assert_eq!(
            f.client.mkdir(root, name, 0o700, NO_ID, NO_ID).unwrap_err(),
            errno
        );
        assert_eq!(f.client.unlink(root, name, 0).unwrap_err(), errno);
        assert_eq!(
            f.client.rename(root, "file", root, name, 0).unwrap_err(),
            errno
        );
    }
    assert_eq!(
        f.client.walk(root, vec![b'a'; 256]).unwrap_err(),
        Errno::ENAMETOOLONG
    );
    assert!(f.host("file").exists());
}

#[test]
fn a_symlink_to_the_host_root_is_a_node_not_a_path() {
    let f = fixture();
    let root = f.root();
    std::os::unix::fs::symlink("/", f.host("escape")).unwrap();
    let (h, st) = f.client.walk(root, "escape").unwrap();
    assert!(st.is_symlink());
    assert_eq!(f.client.walk(h, "etc").unwrap_err(), Errno::ENOTDIR);
    assert_eq!(f.client.readdir(h, 0, 4096).unwrap_err(), Errno::ENOTDIR);
    assert_eq!(
        f.client.mkdir(h, "x", 0o700, NO_ID, NO_ID).unwrap_err(),
        Errno::ENOTDIR
    );
}

#[test]
fn malformed_and_oversized_messages_get_errors_and_the_channel_survives() {
    let (c, s) = channel::pair().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(
        Server::new(vec![MountConfig {
            name: "/".into(),
            path: dir.path().into(),
            read_only: false,
        }])
        .unwrap(),
    );
    server.spawn(vec![s]);
    let mut buf = channel::recv_buffer();
    use std::os::fd::AsFd;
    let mut ask = |msg: &[u8]| {
        channel::send(c.as_fd(), msg, None).unwrap();
        let (bytes, fd) = channel::recv(c.as_fd(), &mut buf).unwrap();
        assert!(fd.is_none());
        Response::decode(bytes).unwrap()
    };
    assert_eq!(
        ask(&[1, 2, 3]),
        Response::Error {
            errno: libc::EINVAL
        }
    );
    assert_eq!(
        ask(&vec![0; 70_000]),
        Response::Error {
            errno: libc::EMSGSIZE
        }
    );
    let mut bad_len = Request::Stat { node: Handle(1) }.encode().unwrap();
    bad_len[0] = 200;
    assert_eq!(
        ask(&bad_len),
        Response::Error {
            errno: libc::EINVAL
        }
    );
    let ok = Request::Attach { mount: "/".into() }.encode().unwrap();
    assert!(matches!(ask(&ok), Response::Node { .. }));
}

#[test]
fn many_threads_share_one_client() {
    let f = fixture();
    let root = f.root();
    let client = &f.client;
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for i in 0..50 {
                    let name = format!("t{t}-{i}");
                    let (h, _) = client.mkdir(root, &name, 0o700, NO_ID, NO_ID).unwrap();
                    let (h2, st) = client.walk(root, &name).unwrap();
                    assert!(st.is_dir());
                    client.close(&[h, h2]).unwrap();
                }
            });
        }
    });
    assert_eq!(
        fs::read_dir(f.dir.path().join("root")).unwrap().count(),
        2 + 400
    );
}
