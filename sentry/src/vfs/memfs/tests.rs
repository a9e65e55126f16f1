//! The overlay over a real Gofer serving a temporary tree: copy-up, whiteouts, opaque
//! directories, and that nothing reaches the lower tree.

use std::path::PathBuf;
use std::sync::Arc;

use platform::MemoryFile;

use super::*;
use crate::vfs::{NewNode, S_IFREG};

struct Lower {
    dir: PathBuf,
}

impl Drop for Lower {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `lower/`: `file` ("lower data"), `dir/inner`, `link -> file`; served read-only.
fn overlay(tag: &str) -> (Lower, Arc<MemInode>) {
    let dir = std::env::temp_dir().join(format!("bulwark-overlay-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dir")).unwrap();
    std::fs::write(dir.join("file"), b"lower data").unwrap();
    std::fs::write(dir.join("dir/inner"), b"inner").unwrap();
    std::os::unix::fs::symlink("file", dir.join("link")).unwrap();
    let server = Arc::new(
        gofer::Server::new(vec![gofer::MountConfig {
            name: "/".into(),
            path: dir.clone(),
            read_only: true,
        }])
        .unwrap(),
    );
    let (a, b) = gofer::channel::pair().unwrap();
    drop(server.spawn(vec![b]));
    let client = Arc::new(gofer::Client::new(vec![a]));
    let memory = Arc::new(MemoryFile::new(1 << 24).unwrap());
    let root = crate::vfs::gofer::overlay_root(client, "/", &memory).unwrap();
    (Lower { dir }, root)
}

fn names(d: &MemInode) -> Vec<Vec<u8>> {
    let mut v: Vec<_> = d.list().unwrap().into_iter().map(|e| e.name).collect();
    v.sort();
    v
}

fn read_all(i: &dyn Inode) -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let n = i.read_at(0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn reads_lower_and_copies_up_on_write() {
    let (lower, root) = overlay("copyup");
    let cx = Cx::root();
    let file = root.child(b"file").unwrap();
    assert_eq!(read_all(&*file), b"lower data");
    assert_eq!(file.stat().unwrap().size, 10);
    file.prepare_write().unwrap();
    file.write_at(0, b"UPPER").unwrap();
    assert_eq!(read_all(&*file), b"UPPER data");
    assert_eq!(
        std::fs::read(lower.dir.join("file")).unwrap(),
        b"lower data"
    );
    assert_eq!(root.child(b"link").unwrap().readlink(&cx).unwrap(), b"file");
    file.setattr(&SetAttr {
        mode: Some(0o600),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(file.stat().unwrap().mode & 0o7777, 0o600);
}

#[test]
fn whiteouts_and_opaque_directories() {
    let (lower, root) = overlay("whiteout");
    let cx = Cx::root();
    assert_eq!(names(&root), [&b"dir"[..], b"file", b"link"]);
    root.remove(b"file", false).unwrap();
    assert_eq!(root.child(b"file").err(), Some(Errno::ENOENT));
    assert_eq!(names(&root), [&b"dir"[..], b"link"]);
    assert_eq!(
        root.remove(b"dir", true).err(),
        Some(Errno::ENOTEMPTY),
        "the lower entries count"
    );
    let dir = root.child(b"dir").unwrap();
    dir.remove(b"inner", false).unwrap();
    root.remove(b"dir", true).unwrap();
    let fresh = root
        .make(
            &cx,
            b"dir",
            NewNode::Node {
                mode: S_IFDIR | 0o755,
                rdev: 0,
            },
        )
        .unwrap();
    assert!(
        names(&fresh).is_empty(),
        "a directory made over a whiteout is opaque"
    );
    root.make(
        &cx,
        b"file",
        NewNode::Node {
            mode: S_IFREG | 0o644,
            rdev: 0,
        },
    )
    .unwrap();
    assert_eq!(read_all(&*root.child(b"file").unwrap()), b"");
    assert!(lower.dir.join("dir/inner").exists() && lower.dir.join("file").exists());
}

#[test]
fn renames_move_lower_nodes() {
    let (_lower, root) = overlay("rename");
    let root_dyn: Arc<dyn Inode> = root.clone();
    root.rename_to(b"dir", &root_dyn, b"moved", 0).unwrap();
    assert_eq!(root.child(b"dir").err(), Some(Errno::ENOENT));
    let moved = root.child(b"moved").unwrap();
    assert_eq!(read_all(&*moved.child(b"inner").unwrap()), b"inner");
    assert_eq!(root.child(b"nope").err(), Some(Errno::ENOENT));
    assert_eq!(
        root.child(b"nope").err(),
        Some(Errno::ENOENT),
        "a remembered miss"
    );
}

/// The Gofer requests of each kind a client sent, counted by a relay between the two.
#[derive(Default)]
struct Requests(std::sync::Mutex<std::collections::BTreeMap<&'static str, u32>>);

impl Requests {
    fn count(&self, kind: &str) -> u32 {
        lock(&self.0).get(kind).copied().unwrap_or(0)
    }

    fn total(&self) -> u32 {
        lock(&self.0).values().sum()
    }
}

fn request_kind(req: &gofer::protocol::Request) -> &'static str {
    use gofer::protocol::Request;
    match req {
        Request::Walk { .. } => "walk",
        Request::Readdir { .. } => "readdir",
        Request::ReaddirPlus { .. } => "readdir_plus",
        Request::Close { .. } => "close",
        _ => "other",
    }
}

/// Relays messages between the client's socket and the server's, counting requests.
fn relay(client_side: std::os::fd::OwnedFd, server_side: std::os::fd::OwnedFd) -> Arc<Requests> {
    use gofer::channel;
    use std::os::fd::AsFd;
    let requests = Arc::new(Requests::default());
    let counts = Arc::clone(&requests);
    std::thread::spawn(move || {
        let mut req_buf = channel::recv_buffer();
        let mut reply_buf = channel::recv_buffer();
        loop {
            let Ok((msg, _)) = channel::recv(client_side.as_fd(), &mut req_buf) else {
                return;
            };
            if let Ok(req) = gofer::protocol::Request::decode(msg) {
                *lock(&counts.0).entry(request_kind(&req)).or_default() += 1;
            }
            if channel::send(server_side.as_fd(), msg, None).is_err() {
                return;
            }
            let Ok((reply, fd)) = channel::recv(server_side.as_fd(), &mut reply_buf) else {
                return;
            };
            if channel::send(client_side.as_fd(), reply, channel::borrow(&fd)).is_err() {
                return;
            }
        }
    });
    requests
}

/// `lower/busy/`: files `f00`..`f29` (`f07` holds 7 bytes), a directory `sub` holding
/// `inner`, a symlink `ln -> f00` and a FIFO `pipe`; served read-only, the overlay's
/// requests counted.
fn busy_overlay(tag: &str) -> (Lower, Arc<MemInode>, Arc<Requests>) {
    let dir = std::env::temp_dir().join(format!("bulwark-busy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let busy = dir.join("busy");
    std::fs::create_dir_all(busy.join("sub")).unwrap();
    std::fs::write(busy.join("sub/inner"), b"inner").unwrap();
    for i in 0..30 {
        std::fs::write(busy.join(format!("f{i:02}")), vec![b'x'; i]).unwrap();
    }
    std::os::unix::fs::symlink("f00", busy.join("ln")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        busy.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    let (root, requests) = overlay_over(&dir);
    (Lower { dir }, root, requests)
}

/// An overlay over `dir` served read-only through a counting relay.
fn overlay_over(dir: &std::path::Path) -> (Arc<MemInode>, Arc<Requests>) {
    let server = Arc::new(
        gofer::Server::new(vec![gofer::MountConfig {
            name: "/".into(),
            path: dir.to_path_buf(),
            read_only: true,
        }])
        .unwrap(),
    );
    let (a, b) = gofer::channel::pair().unwrap();
    let (c, d) = gofer::channel::pair().unwrap();
    drop(server.spawn(vec![d]));
    let requests = relay(b, c);
    let client = Arc::new(gofer::Client::new(vec![a]));
    let memory = Arc::new(MemoryFile::new(1 << 24).unwrap());
    let root = crate::vfs::gofer::overlay_root(client, "/", &memory).unwrap();
    (root, requests)
}

fn file_node() -> NewNode {
    NewNode::Node {
        mode: S_IFREG | 0o644,
        rdev: 0,
    }
}

/// Every name in `busy/` but `sub`, and names it does not hold.
fn busy_files() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = (0..30).map(|i| format!("f{i:02}").into_bytes()).collect();
    v.extend([b"ln".to_vec(), b"pipe".to_vec()]);
    v
}

#[test]
fn a_busy_directory_is_listed_once_and_then_answers_without_round_trips() {
    use super::dir::LIST_AFTER_WALKS;
    let (_lower, root, requests) = busy_overlay("listed");
    let busy = root.child(b"busy").unwrap();
    let walks = requests.count("walk");
    // Below the threshold each new name is one walk, found or not.
    let first: Vec<String> = (0..LIST_AFTER_WALKS - 2)
        .map(|i| format!("f{i:02}"))
        .chain(["absent0".into(), "absent1".into()])
        .collect();
    for name in &first {
        let _ = busy.child(name.as_bytes());
    }
    assert_eq!(requests.count("walk") - walks, LIST_AFTER_WALKS);
    assert_eq!(requests.count("readdir_plus"), 0);
    // The next new name loads the listing: a walk for a handle of the listing's own,
    // and one ReaddirPlus for the 33 entries.
    let f29 = busy.child(b"f29").unwrap();
    assert_eq!(f29.stat().unwrap().size, 29);
    assert_eq!(requests.count("walk") - walks, LIST_AFTER_WALKS + 1);
    assert_eq!(requests.count("readdir_plus"), 1);
    // From then on, no round trip for a listed file, a symlink, a FIFO, or a name the
    // directory does not hold.
    let total = requests.total();
    for name in busy_files() {
        busy.child(&name).unwrap();
    }
    assert_eq!(busy.child(b"f07").unwrap().stat().unwrap().size, 7);
    for absent in ["absent0", "absent2", "absent3", "f30", "sub2", "inner"] {
        assert_eq!(
            busy.child(absent.as_bytes()).err(),
            Some(Errno::ENOENT),
            "{absent}"
        );
    }
    assert_eq!(requests.total(), total, "lookups after the listing");
    // A lower directory is walked once, for the handle it keeps.
    let sub = busy.child(b"sub").unwrap();
    assert!(Arc::ptr_eq(&sub, &busy.child(b"sub").unwrap()));
    assert_eq!(requests.count("walk") - walks, LIST_AFTER_WALKS + 2);
    assert_eq!(read_all(&*sub.child(b"inner").unwrap()), b"inner");
    let cx = Cx::root();
    assert_eq!(busy.child(b"ln").unwrap().readlink(&cx).unwrap(), b"f00");
    assert_eq!(read_all(&*busy.child(b"f03").unwrap()), b"xxx");
}

#[test]
fn a_listed_entry_has_the_attributes_a_walk_gives_it() {
    use super::dir::LIST_AFTER_WALKS;
    let (lower, listed_root, requests) = busy_overlay("attrs");
    let listed = listed_root.child(b"busy").unwrap();
    for i in 0..LIST_AFTER_WALKS {
        let _ = listed.child(format!("absent{i}").as_bytes());
    }
    let names = busy_files();
    listed.child(&names[0]).unwrap();
    assert_eq!(requests.count("readdir_plus"), 1, "the listing is loaded");
    // Each name walked to in a fresh overlay, below its threshold.
    for chunk in names.chunks(usize::try_from(LIST_AFTER_WALKS).unwrap()) {
        let (root, requests) = overlay_over(&lower.dir);
        let walked = root.child(b"busy").unwrap();
        for name in chunk {
            assert_eq!(
                listed.child(name).unwrap().stat().unwrap(),
                walked.child(name).unwrap().stat().unwrap(),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
        assert_eq!(requests.count("readdir_plus"), 0, "these were walks");
    }
}

#[test]
fn a_listed_directory_keeps_what_the_application_changed() {
    use super::dir::LIST_AFTER_WALKS;
    let (lower, root, requests) = busy_overlay("upper");
    let cx = Cx::root();
    let busy = root.child(b"busy").unwrap();
    let root_dyn: Arc<dyn Inode> = root.clone();
    let busy_dyn: Arc<dyn Inode> = busy.clone();
    // Before the listing: a removal, a file replaced by an upper one, a lower file moved
    // out, and a new file (four walks).
    busy.remove(b"f01", false).unwrap();
    busy.remove(b"f02", false).unwrap();
    busy.make(&cx, b"f02", file_node()).unwrap();
    busy.rename_to(b"f03", &root_dyn, b"moved", 0).unwrap();
    busy.make(&cx, b"new", file_node()).unwrap();
    for i in 4..=LIST_AFTER_WALKS {
        let _ = busy.child(format!("absent{i}").as_bytes());
    }
    assert_eq!(requests.count("readdir_plus"), 1, "the listing is loaded");
    assert_eq!(busy.child(b"f01").err(), Some(Errno::ENOENT));
    assert_eq!(busy.child(b"f02").unwrap().stat().unwrap().size, 0);
    assert_eq!(busy.child(b"f03").err(), Some(Errno::ENOENT));
    assert_eq!(read_all(&*root.child(b"moved").unwrap()), b"xxx");
    assert!(busy.child(b"new").is_ok());
    // After it: removals, renames within the directory, of a lower directory not
    // looked up yet, and into it, and names made over what was removed.
    busy.remove(b"f04", false).unwrap();
    assert_eq!(busy.child(b"f04").err(), Some(Errno::ENOENT));
    busy.rename_to(b"f05", &busy_dyn, b"f06", 0).unwrap();
    assert_eq!(busy.child(b"f05").err(), Some(Errno::ENOENT));
    assert_eq!(busy.child(b"f06").unwrap().stat().unwrap().size, 5);
    busy.rename_to(b"sub", &busy_dyn, b"sub2", 0).unwrap();
    assert_eq!(busy.child(b"sub").err(), Some(Errno::ENOENT));
    assert_eq!(
        read_all(&*busy.child(b"sub2").unwrap().child(b"inner").unwrap()),
        b"inner"
    );
    assert_eq!(
        busy.make(&cx, b"f07", file_node()).err(),
        Some(Errno::EEXIST)
    );
    let fresh = busy
        .make(
            &cx,
            b"sub",
            NewNode::Node {
                mode: S_IFDIR | 0o755,
                rdev: 0,
            },
        )
        .unwrap();
    assert!(names(&fresh).is_empty(), "made over a whiteout: opaque");
    root.rename_to(b"moved", &busy_dyn, b"back", 0).unwrap();
    assert_eq!(read_all(&*busy.child(b"back").unwrap()), b"xxx");
    busy.make(&cx, b"f04", file_node()).unwrap();
    assert_eq!(busy.child(b"f04").unwrap().stat().unwrap().size, 0);

    let mut want: Vec<Vec<u8>> = busy_files()
        .into_iter()
        .filter(|n| ![&b"f01"[..], b"f03", b"f05"].contains(&n.as_slice()))
        .collect();
    want.extend([
        b"back".to_vec(),
        b"new".to_vec(),
        b"sub".to_vec(),
        b"sub2".to_vec(),
    ]);
    want.sort();
    assert_eq!(names(&busy), want);
    for i in 0..30 {
        assert!(lower.dir.join(format!("busy/f{i:02}")).exists());
    }
    assert!(lower.dir.join("busy/sub/inner").exists());
}

#[test]
fn a_big_directory_is_listed_only_after_more_walks() {
    use super::dir::{list_after_walks, LIST_AFTER_WALKS};
    let dir = std::env::temp_dir().join(format!("bulwark-big-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let big = dir.join("big");
    std::fs::create_dir_all(&big).unwrap();
    let name = |i: usize| format!("a-library-with-a-name-as-long-as-they-come-{i:04}.so.1");
    for i in 0..600 {
        std::fs::write(big.join(name(i)), b"").unwrap();
    }
    let lower = Lower { dir };
    let (root, requests) = overlay_over(&lower.dir);
    let big = root.child(b"big").unwrap();
    let after = list_after_walks(big.stat().unwrap().size.try_into().unwrap());
    assert!(
        after > LIST_AFTER_WALKS + 8,
        "600 long names take more than one block ({after})"
    );
    for i in 0..usize::try_from(after).unwrap() {
        big.child(name(i).as_bytes()).unwrap();
    }
    assert_eq!(requests.count("readdir_plus"), 0, "{after} walks");
    assert_eq!(big.child(b"absent").err(), Some(Errno::ENOENT));
    assert_eq!(
        requests.count("readdir_plus"),
        2,
        "600 entries of ~170 bytes take two messages"
    );
    let total = requests.total();
    for i in 0..600 {
        big.child(name(i).as_bytes()).unwrap();
    }
    assert_eq!(requests.total(), total);
}
