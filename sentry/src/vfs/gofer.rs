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
/// the first process's filesystem context (root and working directory `/`). An OCI
/// container's tree, with its spec's mounts, is [`super::mounts::build`]'s.
pub fn container_fs(
    client: Arc<Client>,
    memory: &Arc<MemoryFile>,
) -> SysResult<Arc<super::FsContext>> {
    super::mounts::build(client, memory, &super::mounts::FsSpec::default())
}
