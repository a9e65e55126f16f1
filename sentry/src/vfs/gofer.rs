//! The gofer-backed filesystem: the container root the Gofer serves, mounted read-only
//! under the in-memory overlay of [`super::memfs`] (which walks it one component at a
//! time, never through a symlink, and reads regular files through donated descriptors).

use std::sync::Arc;

use gofer::Client;
use platform::MemoryFile;

use super::memfs::{MemFs, MemInode};
use crate::errno::{Errno, SysResult};

/// The Gofer's errno as the Sentry's.
pub fn errno(e: gofer::Errno) -> Errno {
    Errno::new(e.raw()).unwrap_or(Errno::EIO)
}

/// Attaches the Gofer's mount called `mount` and puts a writable in-memory overlay on it.
pub fn overlay_root(
    client: Arc<Client>,
    mount: &str,
    memory: &Arc<MemoryFile>,
) -> SysResult<Arc<MemInode>> {
    let (root, _) = client.attach(mount).map_err(errno)?;
    MemFs::overlay(memory, client, root)
}

/// The file tree of `bulwark do`: the overlay over the Gofer's root at `/`, procfs at
/// `/proc`, devfs at `/dev` with devpts at `/dev/pts` and a tmpfs at `/dev/shm`. Returns
/// the first process's filesystem context (root and working directory `/`).
pub fn container_fs(
    client: Arc<Client>,
    memory: &Arc<MemoryFile>,
) -> SysResult<Arc<super::FsContext>> {
    let root = overlay_root(client, "/", memory)?;
    let (devfs, devpts) = super::dev::devfs_with_pts();
    let vfs = super::Vfs::new(root, "overlay", "none");
    let fs = super::FsContext::new(std::sync::Arc::clone(&vfs));
    let cx = super::Cx::root();
    let mount = |at: &[u8], inode: Arc<dyn super::Inode>, fstype, source| -> SysResult<()> {
        let at = fs.lookup(&cx, None, at, true)?;
        vfs.mount(&at, inode, fstype, source)
    };
    // Linux mounts these over whatever the image has there; a missing mount point is
    // skipped, as an image without /proc has no procfs either.
    for (at, inode, fstype, source) in [
        (
            &b"/proc"[..],
            super::proc::ProcFs::new_root(memory) as Arc<dyn super::Inode>,
            "proc",
            "proc",
        ),
        (&b"/dev"[..], devfs, "devtmpfs", "dev"),
        (&b"/dev/pts"[..], devpts, "devpts", "devpts"),
        (&b"/sys"[..], super::sys::sysfs(), "sysfs", "sysfs"),
        (
            &b"/dev/shm"[..],
            MemFs::tmpfs(memory, 0o1777),
            "tmpfs",
            "shm",
        ),
    ] {
        match mount(at, inode, fstype, source) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(fs)
}
