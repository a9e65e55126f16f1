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
