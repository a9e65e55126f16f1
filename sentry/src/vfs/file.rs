//! Open file descriptions: what a file descriptor refers to, shared across `dup` and
//! `fork`, with their own offset and status flags.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{dirent_type, DirEntry, Inode, Path, Stat, DT_DIR};
use crate::errno::{Errno, SysResult};
use crate::mm::MemoryObject;

pub const O_ACCMODE: i32 = 0o3;
pub const O_RDONLY: i32 = 0o0;
pub const O_WRONLY: i32 = 0o1;
pub const O_RDWR: i32 = 0o2;
pub const O_CREAT: i32 = 0o100;
pub const O_EXCL: i32 = 0o200;
pub const O_NOCTTY: i32 = 0o400;
pub const O_TRUNC: i32 = 0o1000;
pub const O_APPEND: i32 = 0o2000;
pub const O_NONBLOCK: i32 = 0o4000;
pub const O_DSYNC: i32 = 0o10000;
pub const O_ASYNC: i32 = 0o20000;
pub const O_DIRECT: i32 = 0o40000;
pub const O_LARGEFILE: i32 = 0o100000;
pub const O_DIRECTORY: i32 = 0o200000;
pub const O_NOFOLLOW: i32 = 0o400000;
pub const O_NOATIME: i32 = 0o1000000;
pub const O_CLOEXEC: i32 = 0o2000000;
pub const O_SYNC: i32 = 0o4010000;
pub const O_PATH: i32 = 0o10000000;
pub const O_TMPFILE: i32 = 0o20200000;

/// The status flags `F_SETFL` may change.
pub const SETFL_MASK: i32 = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;

pub const POLLIN: u16 = 0x1;
pub const POLLPRI: u16 = 0x2;
pub const POLLOUT: u16 = 0x4;
pub const POLLERR: u16 = 0x8;
pub const POLLHUP: u16 = 0x10;
pub const POLLNVAL: u16 = 0x20;

pub const SEEK_SET: i32 = 0;
pub const SEEK_CUR: i32 = 1;
pub const SEEK_END: i32 = 2;
pub const SEEK_DATA: i32 = 3;
pub const SEEK_HOLE: i32 = 4;

/// `F_SETFL` on stored status flags: only the bits of [`SETFL_MASK`] change.
pub fn set_status_flags(stored: &std::sync::atomic::AtomicI32, flags: i32) {
    let old = stored.load(std::sync::atomic::Ordering::Relaxed);
    stored.store(
        (old & !SETFL_MASK) | (flags & SETFL_MASK),
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// What `fstat` shows of an anonymous-inode file (eventfd, timerfd, epoll).
pub fn anon_stat() -> Stat {
    Stat {
        mode: 0o600,
        nlink: 1,
        blksize: 4096,
        ..Stat::default()
    }
}

/// An open file description. Defaults are Linux's answers for a file that lacks the
/// operation.
/// A host descriptor whose bytes at each offset are a file's (see [`Inode::host_data`]).
pub trait HostData: Send + Sync {
    fn host_fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

/// How [`FileDescription::read_host`] reads: from a host descriptor at an offset into the
/// caller's destination, returning the bytes read.
pub type HostReader<'a> = dyn FnMut(std::os::fd::BorrowedFd<'_>, u64) -> SysResult<usize> + 'a;

pub trait FileDescription: Send + Sync {
    /// Reads at the current offset (or from the stream).
    fn read(&self, _buf: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    /// Writes at the current offset (or to the stream).
    fn write(&self, _buf: &[u8]) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    /// `pread64`.
    fn pread(&self, _buf: &mut [u8], _offset: u64) -> SysResult<usize> {
        Err(Errno::ESPIPE)
    }

    /// `read` (`at` is `None`) or `pread64` (at `at`) of a file whose bytes a host
    /// descriptor holds, done by `read` straight into the destination; `None` when the
    /// file has no such descriptor (use `read` or `pread`).
    fn read_host(&self, _at: Option<u64>, _read: &mut HostReader<'_>) -> Option<SysResult<usize>> {
        None
    }

    /// `pwrite64`.
    fn pwrite(&self, _buf: &[u8], _offset: u64) -> SysResult<usize> {
        Err(Errno::ESPIPE)
    }

    /// `lseek`.
    fn seek(&self, _offset: i64, _whence: i32) -> SysResult<u64> {
        Err(Errno::ESPIPE)
    }

    /// `fstat`.
    fn stat(&self) -> SysResult<Stat>;

    /// The status flags and access mode (`F_GETFL`).
    fn flags(&self) -> i32 {
        O_RDWR
    }

    /// `F_SETFL`: only the bits of [`SETFL_MASK`] change.
    fn set_flags(&self, _flags: i32) {}

    /// Where the file was opened, for `fchdir`, `*at` lookups, `/proc/self/fd`.
    fn path(&self) -> Option<&Path> {
        None
    }

    /// The inode behind the file, if it has one.
    fn inode(&self) -> Option<&Arc<dyn Inode>> {
        None
    }

    /// The next directory entries from the current position; `fill` returns false when
    /// the caller's buffer is full (that entry is not consumed).
    fn getdents(&self, _fill: &mut dyn FnMut(&DirEntry, u64) -> bool) -> SysResult<()> {
        Err(Errno::ENOTDIR)
    }

    /// The pages `mmap` maps.
    fn memory_object(&self) -> SysResult<Arc<dyn MemoryObject>> {
        Err(Errno::ENODEV)
    }

    /// `FIONREAD`: bytes that can be read without blocking, for streams.
    fn readable_bytes(&self) -> SysResult<usize> {
        Err(Errno::ENOTTY)
    }

    /// `O_ASYNC` turned on or off through descriptor `fd` (Linux's `fasync`): a file
    /// that signals readiness lists or unlists `who`. Others keep only the flag.
    fn set_async(&self, _who: &Arc<super::fasync::Fasync>, _fd: i32, _on: bool) {}

    /// The lines `/proc/self/fdinfo/N` shows after the common ones (Linux's
    /// `show_fdinfo`), each ending in a newline.
    fn fdinfo(&self) -> Vec<u8> {
        Vec::new()
    }

    /// A name for `/proc/self/fd/N` of files with no path (`pipe:[N]`).
    fn anon_name(&self) -> Vec<u8> {
        b"anon_inode:[unknown]".to_vec()
    }

    /// For a description whose reads and writes return `EAGAIN` rather than wait (a
    /// pipe): the queue notified when it may be ready. A blocking call that got `EAGAIN`
    /// waits on it, interruptibly, in the syscall layer.
    fn wait_queue(&self) -> Option<&crate::kernel::wait::WaitQueue> {
        None
    }

    /// What `poll` reports (`POLLIN`, `POLLOUT`, `POLLHUP`, `POLLERR` bits): a file
    /// whose reads and writes never wait is always ready.
    fn readiness(&self) -> u16 {
        POLLIN | POLLOUT
    }

    /// `tee`: copies buffered bytes without consuming them (pipes only); `EAGAIN` when
    /// there are none yet.
    fn peek(&self, _buf: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    /// This description as an epoll instance, for `epoll_ctl`/`epoll_wait`.
    fn as_epoll(&self) -> Option<&super::epoll::Epoll> {
        None
    }

    /// This description as a timerfd, for `timerfd_settime`/`gettime`.
    fn as_timerfd(&self) -> Option<&super::timerfd::TimerFd> {
        None
    }

    /// This description as a Unix socket, for the socket syscalls (`ENOTSOCK` if not).
    fn as_socket(&self) -> Option<&super::socket::UnixSocket> {
        None
    }

    /// This description as a process file descriptor (`pidfd_send_signal`, `waitid`).
    fn as_pidfd(&self) -> Option<&super::pidfd::PidFd> {
        None
    }

    /// This description as a namespace file (`setns`).
    fn as_namespace(&self) -> Option<&super::nsfs::NsFile> {
        None
    }

    /// This description as a signalfd, for `signalfd` on an existing one.
    fn as_signalfd(&self) -> Option<&super::signalfd::SignalFd> {
        None
    }

    /// This description as an inotify instance, for `inotify_add_watch`/`rm_watch`.
    fn as_inotify(&self) -> Option<&super::inotify::Inotify> {
        None
    }

    /// `F_GETPIPE_SZ`/`F_SETPIPE_SZ`: a pipe's capacity (`EBADF` for other files).
    fn pipe_size(&self) -> SysResult<usize> {
        Err(Errno::EBADF)
    }

    fn set_pipe_size(&self, _size: usize) -> SysResult<usize> {
        Err(Errno::EBADF)
    }

    /// Opening `/proc/self/fd/N` of a pathless description: a new description of the
    /// same object with `flags`, where the object allows one (a pipe); `None`: the
    /// description itself.
    fn reopen(&self, _flags: i32) -> Option<SysResult<Arc<dyn FileDescription>>> {
        None
    }

    /// Whether readiness must be polled for: the wait queue is never notified (a host
    /// descriptor), so a blocked caller looks again every few milliseconds.
    fn needs_polling(&self) -> bool {
        false
    }

    /// Notes that process `tgid` took a record lock through this description.
    fn add_locker(&self, _tgid: i32) {}

    /// Whether the description is a terminal (for `TCGETS`).
    fn terminal(&self) -> Option<&dyn Terminal> {
        None
    }

    /// This description as a pseudo-terminal master or slave of the sandbox.
    fn as_tty(&self) -> Option<&super::tty::TtyFile> {
        None
    }
}

/// What `ioctl` can ask of a terminal.
pub trait Terminal {
    /// `struct termios` (36 bytes).
    fn termios(&self) -> SysResult<[u8; 36]>;
    /// `struct winsize` (8 bytes).
    fn winsize(&self) -> SysResult<[u8; 8]>;
}

/// A file opened through an inode: regular files, directories, devices, procfs files.
pub struct InodeFile {
    path: Path,
    flags: AtomicI32,
    offset: Mutex<u64>,
    /// Generated contents fixed at open (procfs), read instead of the inode's data.
    snapshot: Option<Vec<u8>>,
    /// A directory's listing, taken at the first `getdents` and at rewind.
    listing: Mutex<Option<Vec<DirEntry>>>,
    /// Whether the listing was fixed at open (procfs, whose listings depend on the
    /// opener's process, which the description must not keep alive).
    fixed_listing: bool,
    cx: super::Cx,
    /// What the inode asked to be held while the file is open.
    _pin: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// Processes that took record locks through this description: their locks go when
    /// it does (a process's exit closes its descriptors).
    lockers: Mutex<Vec<i32>>,
}

impl Drop for InodeFile {
    fn drop(&mut self) {
        if super::inotify::active() && !self.is_path() {
            let mask = if self.access() == O_RDONLY {
                super::inotify::IN_CLOSE_NOWRITE
            } else {
                super::inotify::IN_CLOSE_WRITE
            };
            super::inotify::path_event(&self.path, mask);
        }
        let Some(locks) = self.path.inode().locks() else {
            return;
        };
        locks.release(super::lock::Owner::Description(
            std::ptr::from_ref(self).cast::<()>().addr(),
        ));
        for tgid in self
            .lockers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            locks.release(super::lock::Owner::Process(tgid));
        }
    }
}

impl InodeFile {
    pub fn new(cx: &super::Cx, path: Path, flags: i32) -> Self {
        Self {
            path,
            flags: AtomicI32::new(flags),
            offset: Mutex::new(0),
            snapshot: None,
            listing: Mutex::new(None),
            fixed_listing: false,
            _pin: None,
            lockers: Mutex::new(Vec::new()),
            cx: super::Cx {
                creds: cx.creds.clone(),
                tgid: cx.tgid,
                tid: cx.tid,
                ..super::Cx::default()
            },
        }
    }

    /// Opens `path` for I/O, holding what its inode needs held while open.
    pub fn open(cx: &super::Cx, path: Path, flags: i32) -> SysResult<Self> {
        let pin = path.inode().pin()?;
        let mut f = Self::new(cx, path, flags);
        f._pin = pin;
        Ok(f)
    }

    /// A file whose contents are `data` (procfs).
    pub fn with_snapshot(cx: &super::Cx, path: Path, flags: i32, data: Vec<u8>) -> Self {
        let mut f = Self::new(cx, path, flags);
        f.snapshot = Some(data);
        f
    }

    /// A directory whose entries are `entries` (without `.` and `..`), fixed at open.
    pub fn with_listing(cx: &super::Cx, path: Path, flags: i32, entries: Vec<DirEntry>) -> Self {
        let mut f = Self::new(cx, path, flags);
        let mut all = f.dot_entries();
        all.extend(entries);
        f.listing = Mutex::new(Some(all));
        f.fixed_listing = true;
        f
    }

    fn dot_entries(&self) -> Vec<DirEntry> {
        let inode = self.inode_ref();
        vec![
            DirEntry {
                ino: inode.ino(),
                kind: DT_DIR,
                name: b".".to_vec(),
            },
            DirEntry {
                ino: self
                    .path
                    .dentry
                    .parent
                    .as_ref()
                    .map_or(inode.ino(), |p| p.inode.ino()),
                kind: DT_DIR,
                name: b"..".to_vec(),
            },
        ]
    }

    fn offset(&self) -> MutexGuard<'_, u64> {
        self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn access(&self) -> i32 {
        self.flags.load(Ordering::Relaxed) & O_ACCMODE
    }

    fn is_path(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & O_PATH != 0
    }

    fn inode_ref(&self) -> &Arc<dyn Inode> {
        self.path.inode()
    }

    fn check_read(&self) -> SysResult<()> {
        if self.is_path() || self.access() == O_WRONLY {
            return Err(Errno::EBADF);
        }
        if self.inode_ref().mode() & super::S_IFMT == super::S_IFDIR {
            return Err(Errno::EISDIR);
        }
        Ok(())
    }

    fn check_write(&self) -> SysResult<()> {
        if self.is_path() || self.access() == O_RDONLY {
            return Err(Errno::EBADF);
        }
        Ok(())
    }

    fn read_data(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        match &self.snapshot {
            Some(data) => {
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let n = buf.len().min(data.len() - start);
                buf[..n].copy_from_slice(&data[start..start + n]);
                Ok(n)
            }
            None => self.inode_ref().read_at(offset, buf),
        }
    }

    /// The part of `buf` a regular file may take at `offset` under the caller's
    /// `RLIMIT_FSIZE`.
    fn within_size_limit<'b>(&self, offset: u64, buf: &'b [u8]) -> SysResult<&'b [u8]> {
        if crate::kernel::current::file_size_limit() == crate::kernel::RLIM_INFINITY
            || self.inode_ref().mode() & super::S_IFMT != super::S_IFREG
        {
            return Ok(buf);
        }
        let n = crate::kernel::current::check_file_size(offset, buf.len())?;
        Ok(&buf[..n])
    }

    /// inotify's `IN_ACCESS`/`IN_MODIFY` for a transfer of `n` bytes (none for 0).
    #[inline]
    fn notify(&self, n: usize, mask: u32) {
        if n > 0 && super::inotify::active() {
            super::inotify::path_event(&self.path, mask);
        }
    }

    fn size(&self) -> u64 {
        match &self.snapshot {
            Some(d) => d.len() as u64,
            None => self.inode_ref().size(),
        }
    }
}

impl FileDescription for InodeFile {
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        self.check_read()?;
        let mut off = self.offset();
        let n = self.read_data(*off, buf)?;
        *off = off.checked_add(n as u64).ok_or(Errno::EOVERFLOW)?;
        drop(off);
        self.notify(n, super::inotify::IN_ACCESS);
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        self.check_write()?;
        let mut off = self.offset();
        if self.flags.load(Ordering::Relaxed) & O_APPEND != 0 {
            *off = self.size();
        }
        let buf = self.within_size_limit(*off, buf)?;
        let n = self.inode_ref().write_at(*off, buf)?;
        *off = off.checked_add(n as u64).ok_or(Errno::EFBIG)?;
        drop(off);
        self.notify(n, super::inotify::IN_MODIFY);
        Ok(n)
    }

    fn pread(&self, buf: &mut [u8], offset: u64) -> SysResult<usize> {
        self.check_read()?;
        if self.inode_ref().is_stream() {
            return Err(Errno::ESPIPE);
        }
        let n = self.read_data(offset, buf)?;
        self.notify(n, super::inotify::IN_ACCESS);
        Ok(n)
    }

    fn read_host(&self, at: Option<u64>, read: &mut HostReader<'_>) -> Option<SysResult<usize>> {
        if self.snapshot.is_some() {
            return None;
        }
        if let Err(e) = self.check_read() {
            return Some(Err(e));
        }
        let data = match self.inode_ref().host_data() {
            Ok(Some(data)) => data,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        let n = match at {
            Some(offset) => read(data.host_fd(), offset),
            None => {
                let mut off = self.offset();
                read(data.host_fd(), *off).and_then(|n| {
                    *off = off.checked_add(n as u64).ok_or(Errno::EOVERFLOW)?;
                    Ok(n)
                })
            }
        };
        if let Ok(n) = n {
            self.notify(n, super::inotify::IN_ACCESS);
        }
        Some(n)
    }

    fn pwrite(&self, buf: &[u8], offset: u64) -> SysResult<usize> {
        self.check_write()?;
        if self.inode_ref().is_stream() {
            return Err(Errno::ESPIPE);
        }
        // As Linux: with O_APPEND, pwrite appends whatever the offset.
        let offset = if self.flags.load(Ordering::Relaxed) & O_APPEND != 0 {
            self.size()
        } else {
            offset
        };
        let buf = self.within_size_limit(offset, buf)?;
        let n = self.inode_ref().write_at(offset, buf)?;
        self.notify(n, super::inotify::IN_MODIFY);
        Ok(n)
    }

    fn seek(&self, offset: i64, whence: i32) -> SysResult<u64> {
        if self.is_path() {
            return Err(Errno::EBADF);
        }
        let mut off = self.offset();
        if self.inode_ref().is_stream() {
            // /dev/null, /dev/zero and the like: every seek lands at 0, as Linux's.
            *off = 0;
            return Ok(0);
        }
        let is_dir = self.inode_ref().mode() & super::S_IFMT == super::S_IFDIR;
        let size = i64::try_from(self.size()).map_err(|_| Errno::EOVERFLOW)?;
        let cur = i64::try_from(*off).map_err(|_| Errno::EOVERFLOW)?;
        let new = match whence {
            SEEK_SET => offset,
            SEEK_CUR => cur.checked_add(offset).ok_or(Errno::EOVERFLOW)?,
            SEEK_END if !is_dir => size.checked_add(offset).ok_or(Errno::EOVERFLOW)?,
            SEEK_DATA if !is_dir => {
                if offset < 0 || offset >= size {
                    return Err(Errno::ENXIO);
                }
                offset
            }
            SEEK_HOLE if !is_dir => {
                if offset < 0 || offset >= size {
                    return Err(Errno::ENXIO);
                }
                size
            }
            _ => return Err(Errno::EINVAL),
        };
        let new = u64::try_from(new).map_err(|_| Errno::EINVAL)?;
        if is_dir && new == 0 && !self.fixed_listing {
            *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        *off = new;
        Ok(new)
    }

    fn stat(&self) -> SysResult<Stat> {
        self.inode_ref().stat()
    }

    fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        let old = self.flags.load(Ordering::Relaxed);
        self.flags.store(
            (old & !SETFL_MASK) | (flags & SETFL_MASK),
            Ordering::Relaxed,
        );
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn inode(&self) -> Option<&Arc<dyn Inode>> {
        Some(self.inode_ref())
    }

    fn getdents(&self, fill: &mut dyn FnMut(&DirEntry, u64) -> bool) -> SysResult<()> {
        if self.is_path() {
            return Err(Errno::EBADF);
        }
        let inode = self.inode_ref();
        if inode.mode() & super::S_IFMT != super::S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let mut off = self.offset();
        let mut listing = self.listing.lock().unwrap_or_else(|e| e.into_inner());
        if !self.fixed_listing && (listing.is_none() || *off == 0) {
            let mut all = self.dot_entries();
            all.extend(inode.readdir(&self.cx)?);
            *listing = Some(all);
        }
        let entries = listing.as_deref().unwrap_or_default();
        let start = usize::try_from(*off).unwrap_or(usize::MAX);
        for (i, e) in entries.iter().enumerate().skip(start) {
            if !fill(e, i as u64 + 1) {
                break;
            }
            *off = i as u64 + 1;
        }
        Ok(())
    }

    fn add_locker(&self, tgid: i32) {
        let mut l = self.lockers.lock().unwrap_or_else(|e| e.into_inner());
        if !l.contains(&tgid) {
            l.push(tgid);
        }
    }

    fn memory_object(&self) -> SysResult<Arc<dyn MemoryObject>> {
        if self.is_path() {
            return Err(Errno::EBADF);
        }
        self.inode_ref().memory_object()
    }
}

/// Linux's `d_type` for an inode.
pub fn kind_of(inode: &dyn Inode) -> u8 {
    dirent_type(inode.mode())
}
