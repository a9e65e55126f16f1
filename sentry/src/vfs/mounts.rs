//! The container's mount table as its OCI spec asks for it: the root (read-only or
//! under a writable overlay), the built-in procfs, devfs, devpts, sysfs and `/dev/shm`,
//! then each of the spec's mounts in order (binds the Gofer serves, tmpfs, and the
//! pseudo-filesystems at other places), then `maskedPaths` and `readonlyPaths`.
//!
//! Mount points missing from the image are made, as runc makes them in the rootfs: in
//! the overlay (so a read-only root can still have them, and the image is untouched),
//! or, under a writable bind, on the host.

use std::sync::Arc;

use gofer::Client;
use platform::MemoryFile;

use super::dev::StaticDir;
use super::memfs::MemFs;
use super::{Cx, FsContext, Inode, NewNode, Path, Vfs, S_IFDIR, S_IFMT, S_IFREG};
use crate::errno::{Errno, SysResult};

/// What the container's file tree is made of.
#[derive(Clone, Debug, Default)]
pub struct FsSpec {
    /// `root.readonly`: every change to the root fails with `EROFS`.
    pub root_read_only: bool,
    pub mounts: Vec<MountSpec>,
    /// Paths hidden behind an empty read-only file or directory.
    pub masked_paths: Vec<Vec<u8>>,
    /// Paths made read-only.
    pub readonly_paths: Vec<Vec<u8>>,
}

/// One of the spec's mounts.
#[derive(Clone, Debug)]
pub struct MountSpec {
    /// An absolute path in the container.
    pub destination: Vec<u8>,
    pub kind: MountKind,
    pub read_only: bool,
    /// What `/proc/mounts` shows as the source.
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// A host directory or file the Gofer serves under this attach name.
    Bind {
        attach: String,
    },
    /// A new tmpfs: its root's mode, and its size (`statfs` shows it).
    Tmpfs {
        mode: u32,
        size: Option<u64>,
    },
    Proc,
    Sysfs,
    Devpts,
    /// POSIX message queues are not implemented: an empty tmpfs stands in.
    Mqueue,
    /// cgroups are not visible inside yet: an empty read-only tmpfs stands in.
    Cgroup {
        v2: bool,
    },
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// A built-in mount: where, what, its type and source.
type Builtin = (&'static [u8], Arc<dyn Inode>, &'static str, &'static str);

/// Builds the container's file tree on the Gofer's root (attach name `/`).
pub fn build(
    client: Arc<Client>,
    memory: &Arc<MemoryFile>,
    spec: &FsSpec,
) -> SysResult<Arc<FsContext>> {
    let root = super::gofer::overlay_root(Arc::clone(&client), "/", memory)?;
    let vfs = Vfs::new_with(root, "overlay", "none", spec.root_read_only);
    let fs = FsContext::new(Arc::clone(&vfs));
    let cx = Cx::root();
    let (devfs, devpts) = super::dev::devfs_with_pts();
    // The spec's tmpfs at /dev/shm (Docker's, with its size) takes the built-in's place.
    let shm = spec
        .mounts
        .iter()
        .find_map(|m| match (&m.kind, m.destination.as_slice()) {
            (MountKind::Tmpfs { mode, size }, b"/dev/shm") => Some((*mode, *size)),
            _ => None,
        })
        .unwrap_or((0o1777, None));
    let builtins: [Builtin; 5] = [
        (
            b"/proc",
            super::proc::ProcFs::new_root(memory),
            "proc",
            "proc",
        ),
        (b"/dev", devfs, "devtmpfs", "dev"),
        (b"/dev/pts", devpts, "devpts", "devpts"),
        (b"/sys", super::sys::sysfs(), "sysfs", "sysfs"),
        (
            b"/dev/shm",
            MemFs::tmpfs_sized(memory, shm.0, shm.1),
            "tmpfs",
            "shm",
        ),
    ];
    // Linux mounts these over whatever the image has there; a missing mount point the
    // spec does not name is skipped (`bulwark do` on a tree without /proc).
    for (at, inode, fstype, source) in builtins {
        // One the spec names gets its mount point made if missing, and keeps the spec's
        // `ro` (Docker's /sys is read-only).
        let named = spec
            .mounts
            .iter()
            .find(|m| m.destination == at && is_builtin(m));
        let read_only = named.is_some_and(|m| m.read_only);
        let place = match named {
            Some(_) => ensure(&fs, &cx, at, true),
            None => fs.lookup(&cx, None, at, true),
        };
        let mounted = place.and_then(|at| vfs.mount_with(&at, inode, fstype, source, read_only));
        match mounted {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    for m in &spec.mounts {
        if is_builtin(m) {
            continue;
        }
        mount_one(&client, memory, &fs, &cx, m).inspect_err(|e| {
            log::error!("mount {} ({:?}): {e}", show(&m.destination), m.kind);
        })?;
    }
    for p in &spec.masked_paths {
        match fs.lookup(&cx, None, p, true) {
            Ok(at) => mask(memory, &vfs, &cx, &at)?,
            Err(Errno::ENOENT) => {}
            Err(e) => log::warn!("maskedPaths {}: {e}", show(p)),
        }
    }
    for p in &spec.readonly_paths {
        match fs.lookup(&cx, None, p, true) {
            Ok(at) => {
                let inode = Arc::clone(at.inode());
                let (fstype, source) = (at.mount.fstype, at.mount.source.clone());
                vfs.mount_with(&at, inode, fstype, &source, true)?;
            }
            Err(Errno::ENOENT) => {}
            Err(e) => log::warn!("readonlyPaths {}: {e}", show(p)),
        }
    }
    Ok(fs)
}

/// Whether one of the built-in mounts already serves `m` (the spec's `/dev` tmpfs is
/// the Sentry's devfs, its /proc procfs the Sentry's, …).
fn is_builtin(m: &MountSpec) -> bool {
    matches!(
        (m.destination.as_slice(), &m.kind),
        (b"/proc", MountKind::Proc)
            | (b"/dev", MountKind::Tmpfs { .. })
            | (b"/dev/pts", MountKind::Devpts)
            | (b"/sys", MountKind::Sysfs)
            | (b"/dev/shm", MountKind::Tmpfs { .. })
    )
}

fn mount_one(
    client: &Arc<Client>,
    memory: &Arc<MemoryFile>,
    fs: &FsContext,
    cx: &Cx,
    m: &MountSpec,
) -> SysResult<()> {
    let (inode, fstype, read_only): (Arc<dyn Inode>, &'static str, bool) = match &m.kind {
        MountKind::Bind { attach } => {
            let root = super::bind::attach(Arc::clone(client), attach, memory, m.read_only)?;
            (root, "bind", m.read_only)
        }
        MountKind::Tmpfs { mode, size } => (
            MemFs::tmpfs_sized(memory, *mode, *size),
            "tmpfs",
            m.read_only,
        ),
        MountKind::Proc => (super::proc::ProcFs::new_root(memory), "proc", m.read_only),
        MountKind::Sysfs => (super::sys::sysfs(), "sysfs", m.read_only),
        MountKind::Devpts => {
            log::warn!(
                "mount {}: devpts is served at /dev/pts only; left out",
                show(&m.destination)
            );
            return Ok(());
        }
        MountKind::Mqueue => {
            log::info!(
                "mount {}: POSIX message queues are not implemented; an empty tmpfs stands in",
                show(&m.destination)
            );
            (MemFs::tmpfs(memory, 0o1777), "mqueue", m.read_only)
        }
        MountKind::Cgroup { v2 } => {
            log::info!(
                "mount {}: cgroups are not visible in the sandbox yet; an empty read-only \
                 tmpfs stands in",
                show(&m.destination)
            );
            let fstype = if *v2 { "cgroup2" } else { "cgroup" };
            (MemFs::tmpfs(memory, 0o555), fstype, true)
        }
    };
    let want_dir = inode.mode() & S_IFMT == S_IFDIR;
    let at = ensure(fs, cx, &m.destination, want_dir)?;
    fs.vfs.mount_with(&at, inode, fstype, &m.source, read_only)
}

/// The mount point `path`, made if missing: directories all the way, and the last
/// component a directory or (for a bind of one file) an empty file.
pub fn ensure(fs: &FsContext, cx: &Cx, path: &[u8], want_dir: bool) -> SysResult<Path> {
    match fs.lookup(cx, None, path, true) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if parts.contains(&&b".."[..]) {
        return Err(Errno::EINVAL);
    }
    let mut at = fs.root();
    for (i, name) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        at = match fs.lookup(cx, Some(&at), name, true) {
            Ok(next) => next,
            Err(Errno::ENOENT) => {
                let mode = if last && !want_dir {
                    S_IFREG | 0o644
                } else {
                    S_IFDIR | 0o755
                };
                let static_dir = at.inode().as_any().downcast_ref::<StaticDir>();
                match static_dir {
                    // devfs and sysfs are built, not written: a directory is added.
                    Some(d) if mode & S_IFMT == S_IFDIR => {
                        d.add_mount_point(name)?;
                    }
                    _ => {
                        at.inode()
                            .create(cx, name, NewNode::Node { mode, rdev: 0 })?;
                    }
                }
                fs.lookup(cx, Some(&at), name, true)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(at)
}

/// Hides `at` behind an empty read-only directory or file, as runc does for
/// `maskedPaths` (it binds /dev/null over files).
fn mask(memory: &Arc<MemoryFile>, vfs: &Vfs, cx: &Cx, at: &Path) -> SysResult<()> {
    let empty = MemFs::tmpfs(memory, 0o555);
    if at.inode().mode() & S_IFMT == S_IFDIR {
        return vfs.mount_with(at, empty, "tmpfs", "masked", true);
    }
    let file = empty.create(
        cx,
        b"masked",
        NewNode::Node {
            mode: S_IFREG | 0o444,
            rdev: 0,
        },
    )?;
    vfs.mount_with(at, file, "tmpfs", "masked", true)
}
