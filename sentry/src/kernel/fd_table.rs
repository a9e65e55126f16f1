//! A process's file descriptor table: lowest free number first, close-on-exec flags, and
//! the `RLIMIT_NOFILE` bound.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::errno::{Errno, SysResult};
use crate::vfs::FileDescription;

pub type RawFd = i32;

#[derive(Clone)]
struct Entry {
    file: Arc<dyn FileDescription>,
    cloexec: bool,
}

/// The table; shared between threads (and with `CLONE_FILES` children) through an `Arc`.
#[derive(Default)]
pub struct FdTable {
    entries: Mutex<BTreeMap<RawFd, Entry>>,
}

impl FdTable {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<RawFd, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The open file description behind `fd`, or `EBADF`.
    pub fn get(&self, fd: RawFd) -> SysResult<Arc<dyn FileDescription>> {
        self.lock()
            .get(&fd)
            .map(|e| Arc::clone(&e.file))
            .ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free number at or above `min`, below `limit`
    /// (`RLIMIT_NOFILE`): `EMFILE` when there is none.
    pub fn insert(
        &self,
        file: Arc<dyn FileDescription>,
        min: RawFd,
        cloexec: bool,
        limit: u64,
    ) -> SysResult<RawFd> {
        let mut entries = self.lock();
        let mut fd = min.max(0);
        for (&used, _) in entries.range(fd..) {
            if used != fd {
                break;
            }
            fd += 1;
        }
        if u64::try_from(fd).map_or(true, |f| f >= limit) {
            return Err(Errno::EMFILE);
        }
        entries.insert(fd, Entry { file, cloexec });
        Ok(fd)
    }

    /// Installs `file` at exactly `fd`, replacing what was there (dup2/dup3); the
    /// replaced description is returned so that it is released outside the table's lock.
    pub fn insert_at(
        &self,
        fd: RawFd,
        file: Arc<dyn FileDescription>,
        cloexec: bool,
    ) -> Option<Arc<dyn FileDescription>> {
        self.lock()
            .insert(fd, Entry { file, cloexec })
            .map(|e| e.file)
    }

    /// The open descriptors, in order (for `/proc/self/fd`).
    pub fn fds(&self) -> Vec<RawFd> {
        self.lock().keys().copied().collect()
    }

    /// `close_range(first, last)`: closes (or with `cloexec_only` marks close-on-exec)
    /// every open descriptor in the range; returns the closed descriptions.
    pub fn close_range(
        &self,
        first: RawFd,
        last: RawFd,
        cloexec_only: bool,
    ) -> Vec<Arc<dyn FileDescription>> {
        let mut entries = self.lock();
        let fds: Vec<RawFd> = entries.range(first..=last).map(|(&fd, _)| fd).collect();
        let mut closed = Vec::new();
        for fd in fds {
            if cloexec_only {
                if let Some(e) = entries.get_mut(&fd) {
                    e.cloexec = true;
                }
            } else if let Some(e) = entries.remove(&fd) {
                closed.push(e.file);
            }
        }
        closed
    }

    /// Removes `fd`; `EBADF` if it was not open.
    pub fn remove(&self, fd: RawFd) -> SysResult<Arc<dyn FileDescription>> {
        self.lock().remove(&fd).map(|e| e.file).ok_or(Errno::EBADF)
    }

    pub fn cloexec(&self, fd: RawFd) -> SysResult<bool> {
        self.lock().get(&fd).map(|e| e.cloexec).ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&self, fd: RawFd, cloexec: bool) -> SysResult<()> {
        self.lock()
            .get_mut(&fd)
            .map(|e| e.cloexec = cloexec)
            .ok_or(Errno::EBADF)
    }

    /// A copy for `fork` (without `CLONE_FILES`): same descriptions, same flags.
    pub fn fork(&self) -> Self {
        Self {
            entries: Mutex::new(self.lock().clone()),
        }
    }

    /// Closes every close-on-exec descriptor (at `execve`).
    pub fn close_on_exec(&self) {
        self.lock().retain(|_, e| !e.cloexec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::Stat;

    struct NullFile;

    impl FileDescription for NullFile {
        fn read(&self, _: &mut [u8]) -> SysResult<usize> {
            Ok(0)
        }
        fn write(&self, buf: &[u8]) -> SysResult<usize> {
            Ok(buf.len())
        }
        fn stat(&self) -> SysResult<Stat> {
            Ok(Stat::default())
        }
    }

    #[test]
    fn lowest_free_and_limits() {
        let t = FdTable::default();
        let f: Arc<dyn FileDescription> = Arc::new(NullFile);
        assert_eq!(t.insert(Arc::clone(&f), 0, false, 4).unwrap(), 0);
        assert_eq!(t.insert(Arc::clone(&f), 0, true, 4).unwrap(), 1);
        assert_eq!(t.insert(Arc::clone(&f), 0, false, 4).unwrap(), 2);
        t.remove(1).unwrap();
        assert_eq!(
            t.insert(Arc::clone(&f), 0, false, 4).unwrap(),
            1,
            "the hole is reused"
        );
        assert_eq!(t.insert(Arc::clone(&f), 0, false, 4).unwrap(), 3);
        assert_eq!(
            t.insert(Arc::clone(&f), 0, false, 4).err(),
            Some(Errno::EMFILE)
        );
        assert_eq!(t.remove(9).err(), Some(Errno::EBADF));
        t.set_cloexec(2, true).unwrap();
        t.close_on_exec();
        assert!(t.get(2).is_err() && t.get(3).is_ok());
    }
}

#[cfg(test)]
mod range_tests {
    use super::*;
    use crate::vfs::pipe::pipe;

    #[test]
    fn close_range_closes_or_marks() {
        let t = FdTable::default();
        let (r, _w) = pipe(0);
        for _ in 0..6 {
            t.insert(Arc::clone(&r) as Arc<dyn FileDescription>, 0, false, 64)
                .unwrap();
        }
        assert_eq!(t.close_range(1, 2, true).len(), 0);
        assert_eq!((t.cloexec(1), t.cloexec(3)), (Ok(true), Ok(false)));
        assert_eq!(t.close_range(2, i32::MAX, false).len(), 4);
        assert_eq!(t.fds(), vec![0, 1]);
        let old = t.insert_at(1, Arc::clone(&r) as Arc<dyn FileDescription>, false);
        assert!(
            old.is_some(),
            "dup2 over an open descriptor returns the old one"
        );
        assert_eq!(t.cloexec(1), Ok(false));
    }
}
