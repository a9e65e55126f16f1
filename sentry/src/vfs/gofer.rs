//! The gofer-backed filesystem: the container root (and bind mounts) served by the Gofer.
//!
//! Path resolution is the Sentry's: the Gofer only ever walks one component and never
//! follows a symlink, so `..`, symlinks (at most 40, then `ELOOP`) and trailing
//! components are handled here.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use gofer::{Client, Handle};
use platform::MemoryFile;

use crate::errno::{Errno, SysResult};
use crate::loader::{Executable, Resolver};
use crate::mm::cache::{FileCache, ReadAt};
use crate::mm::MemoryObject;

/// Linux's limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;
/// Linux's `PATH_MAX`.
pub const PATH_MAX: usize = 4096;

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// The Gofer's errno as the Sentry's.
pub fn errno(e: gofer::Errno) -> Errno {
    Errno::new(e.raw()).unwrap_or(Errno::EIO)
}

/// A tree the Gofer serves, attached under a mount name.
pub struct GoferTree {
    client: Arc<Client>,
    root: Handle,
    memory: Arc<MemoryFile>,
}

/// A node found by a lookup; its handle is closed when it is dropped.
pub struct Node {
    client: Arc<Client>,
    pub handle: Handle,
    pub stat: gofer::Stat,
    /// Whether the handle is this node's to close (the tree's root handle is not).
    owned: bool,
}

impl Drop for Node {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let Err(e) = self.client.close(&[self.handle]) {
            log::debug!("gofer close {:?}: {e:?}", self.handle);
        }
    }
}

impl GoferTree {
    pub fn attach(client: Arc<Client>, mount: &str, memory: Arc<MemoryFile>) -> SysResult<Self> {
        let (root, _) = client.attach(mount).map_err(errno)?;
        Ok(Self {
            client,
            root,
            memory,
        })
    }

    fn node(&self, handle: Handle, stat: gofer::Stat) -> Node {
        Node {
            client: Arc::clone(&self.client),
            handle,
            stat,
            owned: true,
        }
    }

    /// Resolves an absolute `path`, following symlinks (the last one too if `follow`).
    pub fn lookup(&self, path: &[u8], follow: bool) -> SysResult<Node> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut pending: VecDeque<Vec<u8>> = components(path);
        let trailing_slash = path.ends_with(b"/");
        // The directories walked so far; empty means the root.
        let mut stack: Vec<Node> = Vec::new();
        let mut links = 0usize;
        while let Some(name) = pending.pop_front() {
            if name == b".." {
                stack.pop();
                continue;
            }
            let dir = stack.last().map_or(self.root, |n| n.handle);
            let (handle, stat) = self.client.walk(dir, &name).map_err(errno)?;
            let node = self.node(handle, stat);
            let is_last = pending.is_empty();
            match node.stat.mode & S_IFMT {
                S_IFLNK if !is_last || follow || trailing_slash => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = self.client.readlink(node.handle).map_err(errno)?;
                    if target.first() == Some(&b'/') {
                        stack.clear();
                    }
                    for c in components(&target).into_iter().rev() {
                        pending.push_front(c);
                    }
                }
                S_IFDIR => stack.push(node),
                _ if !is_last => return Err(Errno::ENOTDIR),
                _ if trailing_slash => return Err(Errno::ENOTDIR),
                _ => stack.push(node),
            }
        }
        match stack.pop() {
            Some(node) => Ok(node),
            None => {
                let stat = self.client.stat(self.root).map_err(errno)?;
                Ok(Node {
                    client: Arc::clone(&self.client),
                    handle: self.root,
                    stat,
                    owned: false,
                })
            }
        }
    }
}

fn components(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .collect()
}

/// A regular file's contents through the descriptor the Gofer donated.
struct DonatedFile(std::fs::File);

impl ReadAt for DonatedFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset).map_err(Errno::from)
    }

    fn size(&self) -> SysResult<u64> {
        Ok(self.0.metadata().map_err(Errno::from)?.len())
    }
}

/// An executable opened through the Gofer.
struct GoferExecutable(Arc<FileCache>);

impl Executable for GoferExecutable {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        self.0.read_at(offset, buf)
    }

    fn memory_object(&self) -> Arc<dyn MemoryObject> {
        Arc::clone(&self.0) as Arc<dyn MemoryObject>
    }
}

impl Resolver for GoferTree {
    fn open_executable(&self, path: &[u8]) -> SysResult<Arc<dyn Executable>> {
        let node = self.lookup(path, true)?;
        match node.stat.mode & S_IFMT {
            S_IFREG => {}
            S_IFDIR => return Err(Errno::EACCES),
            _ => return Err(Errno::EACCES),
        }
        // Execute permission for someone; the credential check comes with the VFS.
        if node.stat.mode & 0o111 == 0 {
            return Err(Errno::EACCES);
        }
        let fd: OwnedFd = self
            .client
            .open(node.handle, libc::O_RDONLY)
            .map_err(errno)?;
        let name = String::from_utf8_lossy(path).into_owned();
        let cache = FileCache::new(
            &self.memory,
            Arc::new(DonatedFile(std::fs::File::from(fd))),
            name,
        );
        Ok(Arc::new(GoferExecutable(cache)))
    }
}
