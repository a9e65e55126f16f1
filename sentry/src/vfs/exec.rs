//! `execve`'s view of the VFS: the loader's [`Resolver`] over the caller's mount
//! namespace, with Linux's checks (a regular file, execute permission).

use std::sync::Arc;

use super::{permitted, Cx, FsContext, Path, MAY_EXEC, S_IFMT, S_IFREG};
use crate::errno::{Errno, SysResult};
use crate::loader::{Executable, Resolver};
use crate::mm::{MemoryObject, Page};

/// A memory object shown in `/proc/self/maps` under a path name.
pub struct Named {
    pub inner: Arc<dyn MemoryObject>,
    pub name: String,
}

impl MemoryObject for Named {
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>> {
        self.inner.page(index)
    }

    fn cached_pages(&self, first: u64, count: u64) -> Vec<(u64, Arc<Page>)> {
        self.inner.cached_pages(first, count)
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// An executable found through the VFS.
pub struct VfsExecutable {
    path: Path,
    object: Arc<dyn MemoryObject>,
}

impl Executable for VfsExecutable {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        let mut done = 0;
        while done < buf.len() {
            let at = offset.checked_add(done as u64).ok_or(Errno::EINVAL)?;
            let n = self.path.inode().read_at(at, &mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    fn memory_object(&self) -> Arc<dyn MemoryObject> {
        Arc::clone(&self.object)
    }
}

/// Resolves executables for the loader as the calling process would.
pub struct VfsResolver {
    pub fs: Arc<FsContext>,
    pub cx: Cx,
}

impl VfsResolver {
    /// The view of the calling task.
    pub fn for_task(task: &crate::kernel::Task) -> Self {
        Self {
            fs: Arc::clone(&task.fs),
            cx: crate::syscalls::fs::cx(task),
        }
    }

    /// Finds and checks the executable at `path`, returning where it is too.
    pub fn open(&self, path: &[u8]) -> SysResult<(Path, Arc<dyn Executable>)> {
        self.open_at(None, path, true)
    }

    /// As [`VfsResolver::open`], with `path` relative to `start` (`execveat`'s directory)
    /// and a final symlink followed only with `follow`.
    pub fn open_at(
        &self,
        start: Option<&Path>,
        path: &[u8],
        follow: bool,
    ) -> SysResult<(Path, Arc<dyn Executable>)> {
        let at = self.fs.lookup(&self.cx, start, path, follow)?;
        self.check(at)
    }

    /// Checks that `at` is an executable the caller may run.
    pub fn check(&self, at: Path) -> SysResult<(Path, Arc<dyn Executable>)> {
        let stat = at.inode().stat()?;
        if stat.mode & S_IFMT != S_IFREG {
            return Err(Errno::EACCES);
        }
        permitted(&stat, &self.cx.creds, MAY_EXEC)?;
        let inner = at.inode().memory_object()?;
        let name = String::from_utf8_lossy(&at.name_from(&self.fs.root())).into_owned();
        let exe = VfsExecutable {
            path: at.clone(),
            object: Arc::new(Named { inner, name }),
        };
        Ok((at, Arc::new(exe)))
    }
}

impl Resolver for VfsResolver {
    fn open_executable(&self, path: &[u8]) -> SysResult<Arc<dyn Executable>> {
        self.open(path).map(|(_, exe)| exe)
    }
}
