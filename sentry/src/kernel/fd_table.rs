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

/// How many descriptors a fresh table has room for (Linux's `NR_OPEN_DEFAULT`).
const INITIAL_CAPACITY: usize = 64;

/// The table; shared between threads (and with `CLONE_FILES` children) through an `Arc`.
pub struct FdTable {
    inner: Mutex<Inner>,
}

struct Inner {
    entries: BTreeMap<RawFd, Entry>,
    /// The size of Linux's descriptor array for this table: it grows when a descriptor at
    /// or beyond it is installed and never shrinks. `select` ignores descriptors beyond it.
    capacity: usize,
}

impl Inner {
    fn install(&mut self, fd: RawFd, entry: Entry) -> Option<Entry> {
        let needed = usize::try_from(fd).unwrap_or(0);
        if needed >= self.capacity {
            self.capacity = capacity_for(needed);
        }
        self.entries.insert(fd, entry)
    }
}

/// The array size Linux allocates to hold descriptor `fd` (`expand_fdtable`): a power of
/// two times 128 descriptors (1 KiB of pointers).
fn capacity_for(fd: usize) -> usize {
    const PER_KIB: usize = 128;
    ((fd / PER_KIB + 1).next_power_of_two() * PER_KIB).max(INITIAL_CAPACITY)
}

impl Default for FdTable {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: BTreeMap::new(),
                capacity: INITIAL_CAPACITY,
            }),
        }
    }
}

impl FdTable {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The size of the descriptor array (see `Inner::capacity`).
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// The open file description behind `fd`, or `EBADF`.
    pub fn get(&self, fd: RawFd) -> SysResult<Arc<dyn FileDescription>> {
        self.lock()
            .entries
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
        let mut inner = self.lock();
        let mut fd = min.max(0);
        for (&used, _) in inner.entries.range(fd..) {
            if used != fd {
                break;
            }
            fd += 1;
        }
        if u64::try_from(fd).map_or(true, |f| f >= limit) {
            return Err(Errno::EMFILE);
        }
        inner.install(fd, Entry { file, cloexec });
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
            .install(fd, Entry { file, cloexec })
            .map(|e| e.file)
    }

    /// The open descriptors, in order (for `/proc/self/fd`).
    pub fn fds(&self) -> Vec<RawFd> {
        self.lock().entries.keys().copied().collect()
    }

    /// `close_range(first, last)`: closes (or with `cloexec_only` marks close-on-exec)
    /// every open descriptor in the range; returns the closed descriptions.
    pub fn close_range(
        &self,
        first: RawFd,
        last: RawFd,
        cloexec_only: bool,
    ) -> Vec<Arc<dyn FileDescription>> {
        let mut inner = self.lock();
        let entries = &mut inner.entries;
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
        self.lock()
            .entries
            .remove(&fd)
            .map(|e| e.file)
            .ok_or(Errno::EBADF)
    }

    pub fn cloexec(&self, fd: RawFd) -> SysResult<bool> {
        self.lock()
            .entries
            .get(&fd)
            .map(|e| e.cloexec)
            .ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&self, fd: RawFd, cloexec: bool) -> SysResult<()> {
        self.lock()
            .entries
            .get_mut(&fd)
            .map(|e| e.cloexec = cloexec)
            .ok_or(Errno::EBADF)
    }

    /// A copy for `fork` (without `CLONE_FILES`): same descriptions, same flags. As in
    /// Linux's `dup_fd`, the copy is sized for the highest open descriptor, not for the
    /// parent's array.
    pub fn fork(&self) -> Self {
        let entries = self.lock().entries.clone();
        let highest = entries
            .keys()
            .next_back()
            .map_or(0, |&fd| fd.max(0) as usize);
        let open_words = highest / 64 + 1;
        let capacity = if open_words * 64 > INITIAL_CAPACITY {
            capacity_for(open_words * 64 - 1)
        } else {
            INITIAL_CAPACITY
        };
        Self {
            inner: Mutex::new(Inner { entries, capacity }),
        }
    }

    /// Closes every close-on-exec descriptor (at `execve`).
    pub fn close_on_exec(&self) {
        self.lock().entries.retain(|_, e| !e.cloexec);
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

    #[test]
    fn the_array_grows_as_linux_grows_it_and_a_fork_fits_its_highest_descriptor() {
        let t = FdTable::default();
        let (r, _w) = pipe(0);
        let file = || Arc::clone(&r) as Arc<dyn FileDescription>;
        t.insert(file(), 0, false, 4096).unwrap();
        assert_eq!(t.capacity(), 64);
        t.insert(file(), 64, false, 4096).unwrap();
        assert_eq!(t.capacity(), 128);
        t.insert_at(300, file(), false);
        assert_eq!(t.capacity(), 512);
        t.remove(300).unwrap();
        assert_eq!(t.capacity(), 512, "the array never shrinks");
        assert_eq!(t.fork().capacity(), 128, "the child's fits descriptor 64");
        t.remove(64).unwrap();
        assert_eq!(t.fork().capacity(), 64);
    }
}
