//! File I/O syscalls: read, write and their positional and vectored forms, lseek, sync,
//! truncate, fallocate; and the helpers the other file families share (the caller's
//! [`Cx`], reading a path, resolving a `dirfd`).

use std::sync::Arc;

use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::file::{FileDescription, O_ACCMODE, O_NONBLOCK, O_PATH, O_RDONLY};
use crate::vfs::path::PATH_MAX;
use crate::vfs::{permitted, Cx, Path, SetAttr, MAY_WRITE, S_IFDIR, S_IFMT, S_IFREG};

/// The most one read or write transfers (Linux's `MAX_RW_COUNT`).
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Bytes moved through the Sentry per step of a large read or write.
const CHUNK: usize = 256 * 1024;
/// The most iovecs one vectored call takes (Linux's `UIO_MAXIOV`).
const UIO_MAXIOV: i32 = 1024;

pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
pub const AT_REMOVEDIR: i32 = 0x200;
pub const AT_SYMLINK_FOLLOW: i32 = 0x400;
pub const AT_NO_AUTOMOUNT: i32 = 0x800;
pub const AT_EMPTY_PATH: i32 = 0x1000;

/// Who is calling, as the VFS sees it.
pub fn cx(task: &Task) -> Cx {
    Cx {
        creds: task.creds.clone(),
        tgid: task.group.tgid,
        tid: task.tid(),
        fds: Some(Arc::clone(&task.fds)),
        mm: Some(Arc::clone(&task.mm)),
        fs: Some(Arc::clone(&task.fs)),
        group: Some(Arc::clone(&task.group)),
        kernel: Some(Arc::clone(&task.kernel)),
    }
}

/// Reads a path argument.
pub fn read_path(task: &Task, addr: UserAddr) -> SysResult<Vec<u8>> {
    task.mm.read_c_string(addr, PATH_MAX - 1)
}

/// The directory a `*at` call starts from: `None` for the working directory.
pub fn dir_of(task: &Task, dirfd: i32, path: &[u8]) -> SysResult<Option<Path>> {
    if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
        return Ok(None);
    }
    let file = task.fds.get(dirfd)?;
    let at = file.path().cloned().ok_or(Errno::ENOTDIR)?;
    if !path.is_empty() && at.inode().mode() & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    Ok(Some(at))
}

/// Resolves `dirfd`/`path` with `AT_EMPTY_PATH` and `AT_SYMLINK_NOFOLLOW` semantics.
pub fn lookup_at(task: &Task, dirfd: i32, path: UserAddr, flags: i32) -> SysResult<Path> {
    lookup_name_at(task, dirfd, &read_path(task, path)?, flags)
}

/// [`lookup_at`] of a path already read from the application.
pub fn lookup_name_at(task: &Task, dirfd: i32, name: &[u8], flags: i32) -> SysResult<Path> {
    if name.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return Ok(task.fs.cwd());
        }
        let file = task.fds.get(dirfd)?;
        return file.path().cloned().ok_or(Errno::EBADF);
    }
    let start = dir_of(task, dirfd, name)?;
    task.fs.lookup(
        &cx(task),
        start.as_ref(),
        name,
        flags & AT_SYMLINK_NOFOLLOW == 0,
    )
}

/// Runs `op` on `file`; when the file would block (`EAGAIN` from a description with a
/// wait queue, opened without `O_NONBLOCK`), waits on its queue until `op` can proceed or
/// a signal interrupts the wait (`ERESTARTSYS`).
pub fn blocking<T>(
    task: &Task,
    file: &dyn FileDescription,
    mut op: impl FnMut() -> SysResult<T>,
) -> SysResult<T> {
    let first = op();
    let Some(queue) = file.wait_queue() else {
        return first;
    };
    if !matches!(first, Err(Errno::EAGAIN)) || file.flags() & O_NONBLOCK != 0 {
        return first;
    }
    let _registered = queue.register(&task.handle.waker);
    loop {
        let deadline = file
            .needs_polling()
            .then(|| std::time::Instant::now() + POLL_PERIOD);
        match task.block_until(deadline, || match op() {
            Ok(v) => Ok(Some(v)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e),
        }) {
            Err(Errno::ETIMEDOUT) => continue,
            result => return result,
        }
    }
}

/// A read of a stream: a terminal of the sandbox by its own rules, else [`blocking`].
fn read_stream(task: &Task, file: &dyn FileDescription, data: &mut [u8]) -> SysResult<usize> {
    if let Some(tty) = file.as_tty() {
        return super::tty::read(task, tty, data);
    }
    blocking(task, file, || file.read(data))
}

/// How often a blocked read of a host descriptor looks again.
const POLL_PERIOD: std::time::Duration = std::time::Duration::from_millis(10);

/// Writes all of `data` to `file` (a stream may take it in parts, waiting in between), as
/// a blocking `write` does; returns what was written if an error ends it early. `EPIPE`
/// comes with `SIGPIPE`.
fn write_stream(task: &Task, file: &dyn FileDescription, data: &[u8]) -> SysResult<usize> {
    if let Some(tty) = file.as_tty() {
        return super::tty::write(task, tty, data);
    }
    let mut done = 0;
    while done < data.len() || data.is_empty() {
        match blocking(task, file, || file.write(&data[done..])) {
            Ok(n) => {
                done += n;
                if data.is_empty() || n == 0 || file.wait_queue().is_none() {
                    break;
                }
            }
            Err(e) => {
                if e == Errno::EPIPE {
                    send_sigpipe(task);
                }
                if done == 0 {
                    return Err(e);
                }
                break;
            }
        }
    }
    Ok(done)
}

pub(super) fn send_sigpipe(task: &Task) {
    use crate::kernel::signal::{SigInfo, SIGPIPE};
    let ignored = task
        .group
        .sighand()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_ignored(SIGPIPE);
    if !ignored {
        task.handle.signals().pending.push(SigInfo::kernel(SIGPIPE));
    }
}

pub fn read(task: &mut Task, fd: i32, buf: UserAddr, count: usize) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    if super::msg::is_socket(&file) {
        return super::msg::read(task, &file, buf, count);
    }
    let count = count.min(MAX_RW_COUNT);
    if let Some(n) = file.read_host(None, &mut |fd, off| {
        task.mm.read_from_host(buf, count, fd, off)
    }) {
        return n.map(|n| n as i64);
    }
    read_into(task, buf, count, |data| read_stream(task, &*file, data))
}

pub fn pread64(task: &mut Task, fd: i32, buf: UserAddr, count: usize, off: i64) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let off = u64::try_from(off).map_err(|_| Errno::EINVAL)?;
    let count = count.min(MAX_RW_COUNT);
    if let Some(n) = file.read_host(Some(off), &mut |fd, at| {
        task.mm.read_from_host(buf, count, fd, at)
    }) {
        return n.map(|n| n as i64);
    }
    let mut at = off;
    read_into(task, buf, count, |data| {
        let n = file.pread(data, at)?;
        at += n as u64;
        Ok(n)
    })
}

/// Reads up to `count` bytes with `f` into application memory at `buf`, a chunk at a
/// time; stops at a short read (a stream returns what it has and is not waited on twice).
fn read_into(
    task: &Task,
    buf: UserAddr,
    count: usize,
    mut f: impl FnMut(&mut [u8]) -> SysResult<usize>,
) -> SysResult<i64> {
    let count = count.min(MAX_RW_COUNT);
    if !buf.range_is_user(count as u64) {
        return Err(Errno::EFAULT);
    }
    if count == 0 {
        let mut empty = [0u8; 0];
        return f(&mut empty).map(|_| 0);
    }
    let mut data = vec![0u8; count.min(CHUNK)];
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(CHUNK);
        let n = match f(&mut data[..want]) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let at = buf.checked_add(done as u64)?;
        let copied = copy_out_prefix(task, at, &data[..n]);
        done += copied;
        if copied < n {
            // A fault part way: what was copied is the result (the bytes read past it
            // are lost, as for a stream on Linux).
            return if done == 0 {
                Err(Errno::EFAULT)
            } else {
                Ok(done as i64)
            };
        }
        if n < want {
            break;
        }
    }
    Ok(done as i64)
}

/// Copies `data` to application memory at `at` page by page; returns how much was
/// copied before the first page that faults.
fn copy_out_prefix(task: &Task, at: UserAddr, data: &[u8]) -> usize {
    if task.mm.copy_out(at, data).is_ok() {
        return data.len();
    }
    let mut done = 0usize;
    while done < data.len() {
        let Ok(here) = at.checked_add(done as u64) else {
            break;
        };
        let to_page = usize::try_from(crate::mm::PAGE_SIZE - here.get() % crate::mm::PAGE_SIZE)
            .unwrap_or(data.len());
        let n = to_page.min(data.len() - done);
        if task.mm.copy_out(here, &data[done..done + n]).is_err() {
            break;
        }
        done += n;
    }
    done
}

/// Copies from application memory at `at` into `data` page by page; returns how much
/// was copied before the first page that faults.
fn copy_in_prefix(task: &Task, at: UserAddr, data: &mut [u8]) -> usize {
    if task.mm.copy_in(at, data).is_ok() {
        return data.len();
    }
    let mut done = 0usize;
    while done < data.len() {
        let Ok(here) = at.checked_add(done as u64) else {
            break;
        };
        let to_page = usize::try_from(crate::mm::PAGE_SIZE - here.get() % crate::mm::PAGE_SIZE)
            .unwrap_or(data.len());
        let n = to_page.min(data.len() - done);
        if task.mm.copy_in(here, &mut data[done..done + n]).is_err() {
            break;
        }
        done += n;
    }
    done
}

pub fn write(task: &mut Task, fd: i32, buf: UserAddr, count: usize) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    if super::msg::is_socket(&file) {
        return super::msg::write(task, &file, buf, count);
    }
    write_from(task, buf, count.min(MAX_RW_COUNT), |d| {
        write_stream(task, &*file, d)
    })
    .map(|n| n as i64)
}

pub fn pwrite64(task: &mut Task, fd: i32, buf: UserAddr, count: usize, off: i64) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let mut at = u64::try_from(off).map_err(|_| Errno::EINVAL)?;
    write_from(task, buf, count.min(MAX_RW_COUNT), |d| {
        let n = file.pwrite(d, at)?;
        at += n as u64;
        Ok(n)
    })
    .map(|n| n as i64)
}

/// Writes `count` bytes from application memory at `buf`, a chunk at a time; a fault or
/// a short write after some progress ends the call with what was written.
fn write_from(
    task: &Task,
    buf: UserAddr,
    count: usize,
    mut f: impl FnMut(&[u8]) -> SysResult<usize>,
) -> SysResult<usize> {
    if count == 0 {
        return f(&[]);
    }
    let mut done = 0usize;
    while done < count {
        let n = (count - done).min(CHUNK);
        let mut data = vec![0u8; n];
        let at = buf.checked_add(done as u64)?;
        let readable = copy_in_prefix(task, at, &mut data);
        if readable == 0 {
            return if done > 0 {
                Ok(done)
            } else {
                Err(Errno::EFAULT)
            };
        }
        // A fault part way writes what could be read, as Linux does.
        let n = readable;
        match f(&data[..n]) {
            Ok(written) => {
                done += written;
                if written < n {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
struct IoVec {
    base: u64,
    len: u64,
}

fn read_iovecs(task: &Task, iov: UserAddr, iovcnt: i32) -> SysResult<Vec<IoVec>> {
    if !(0..=UIO_MAXIOV).contains(&iovcnt) {
        return Err(Errno::EINVAL);
    }
    let ptr = UserPtr::<IoVec>::new(iov);
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..u64::from(iovcnt.unsigned_abs()) {
        let v = task.mm.read(ptr.offset(i)?)?;
        total = total.checked_add(v.len).ok_or(Errno::EINVAL)?;
        if total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        out.push(v);
    }
    Ok(out)
}

/// Runs `one(base, len, offset so far)` over each iovec until one is short.
fn vectored(
    task: &Task,
    iov: UserAddr,
    iovcnt: i32,
    mut one: impl FnMut(UserAddr, usize, u64) -> SysResult<i64>,
) -> SysResult<i64> {
    let iovecs = read_iovecs(task, iov, iovcnt)?;
    let mut done = 0usize;
    let mut left = MAX_RW_COUNT;
    for v in iovecs {
        let len = usize::try_from(v.len).unwrap_or(usize::MAX).min(left);
        if len == 0 {
            continue;
        }
        match one(UserAddr::new(v.base), len, done as u64) {
            Ok(n) => {
                let n = usize::try_from(n).unwrap_or(0);
                done += n;
                left -= n;
                if n < len {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done as i64)
}

pub fn readv(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    if super::msg::is_socket(&file) {
        return super::msg::readv(task, &file, iov, iovcnt);
    }
    vectored(task, iov, iovcnt, |base, len, _| {
        read_into(task, base, len, |d| read_stream(task, &*file, d))
    })
}

pub fn writev(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    if super::msg::is_socket(&file) {
        return super::msg::writev(task, &file, iov, iovcnt);
    }
    vectored(task, iov, iovcnt, |base, len, _| {
        write_from(task, base, len, |d| write_stream(task, &*file, d)).map(|n| n as i64)
    })
}

pub fn preadv(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32, off: i64) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let start = u64::try_from(off).map_err(|_| Errno::EINVAL)?;
    vectored(task, iov, iovcnt, |base, len, so_far| {
        let mut at = start.checked_add(so_far).ok_or(Errno::EINVAL)?;
        read_into(task, base, len, |d| {
            let n = file.pread(d, at)?;
            at += n as u64;
            Ok(n)
        })
    })
}

pub fn pwritev(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32, off: i64) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let start = u64::try_from(off).map_err(|_| Errno::EINVAL)?;
    vectored(task, iov, iovcnt, |base, len, so_far| {
        let mut at = start.checked_add(so_far).ok_or(Errno::EINVAL)?;
        write_from(task, base, len, |d| {
            let n = file.pwrite(d, at)?;
            at += n as u64;
            Ok(n)
        })
        .map(|n| n as i64)
    })
}

pub fn lseek(task: &mut Task, fd: i32, offset: i64, whence: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let at = file.seek(offset, whence)?;
    i64::try_from(at).map_err(|_| Errno::EOVERFLOW)
}

pub fn fsync(task: &mut Task, fd: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    if let Some(inode) = file.inode() {
        inode.fsync()?;
    }
    Ok(0)
}

pub fn fdatasync(task: &mut Task, fd: i32) -> SysResult<i64> {
    fsync(task, fd)
}

fn truncate_inode(inode: &Arc<dyn crate::vfs::Inode>, length: i64) -> SysResult<i64> {
    let size = u64::try_from(length).map_err(|_| Errno::EINVAL)?;
    match inode.mode() & S_IFMT {
        S_IFDIR => return Err(Errno::EISDIR),
        S_IFREG => {}
        _ => return Err(Errno::EINVAL),
    }
    if inode.read_only() {
        return Err(Errno::EROFS);
    }
    if size > inode.size() {
        crate::kernel::current::check_file_size(size, 0)?;
    }
    inode.setattr(&SetAttr {
        size: Some(size),
        ..SetAttr::default()
    })?;
    Ok(0)
}

pub fn truncate(task: &mut Task, path: UserAddr, length: i64) -> SysResult<i64> {
    let at = lookup_at(task, AT_FDCWD, path, 0)?;
    let stat = at.inode().stat()?;
    if stat.mode & S_IFMT == S_IFDIR {
        return Err(Errno::EISDIR);
    }
    permitted(&stat, &task.creds, MAY_WRITE)?;
    truncate_inode(at.inode(), length)?;
    crate::vfs::inotify::path_event(&at, crate::vfs::inotify::IN_MODIFY);
    Ok(0)
}

pub fn ftruncate(task: &mut Task, fd: i32, length: i64) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let flags = file.flags();
    if flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let inode = file.inode().cloned().ok_or(Errno::EINVAL)?;
    if flags & O_ACCMODE == O_RDONLY {
        return Err(Errno::EINVAL);
    }
    truncate_inode(&inode, length)?;
    match file.path() {
        Some(p) => crate::vfs::inotify::path_event(p, crate::vfs::inotify::IN_MODIFY),
        None => crate::vfs::inotify::object_event(&*inode, None, crate::vfs::inotify::IN_MODIFY),
    }
    Ok(0)
}

pub fn fallocate(task: &mut Task, fd: i32, mode: i32, offset: i64, len: i64) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if file.flags() & O_ACCMODE == O_RDONLY {
        return Err(Errno::EBADF);
    }
    let inode = file.inode().cloned().ok_or(Errno::ESPIPE)?;
    if inode.mode() & S_IFMT != S_IFREG {
        return Err(Errno::ENODEV);
    }
    const FALLOC_FL_KEEP_SIZE: i32 = 1;
    const FALLOC_FL_PUNCH_HOLE: i32 = 2;
    let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
    let end = u64::try_from(end).map_err(|_| Errno::EFBIG)?;
    let start = u64::try_from(offset).map_err(|_| Errno::EINVAL)?;
    match mode {
        0 => {}
        // Space is taken when written (the memory file is sparse): nothing to reserve.
        FALLOC_FL_KEEP_SIZE => return Ok(0),
        m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
            // The range reads as zeros; the size stays.
            let size = inode.size();
            let stop = end.min(size);
            let mut at = start;
            let zeros = vec![0u8; CHUNK];
            while at < stop {
                let n = usize::try_from((stop - at).min(CHUNK as u64)).unwrap_or(CHUNK);
                inode.write_at(at, &zeros[..n])?;
                at += n as u64;
            }
            return Ok(0);
        }
        FALLOC_FL_PUNCH_HOLE => return Err(Errno::EOPNOTSUPP),
        _ => {
            log::warn!("fallocate mode {mode:#x}: EOPNOTSUPP");
            return Err(Errno::EOPNOTSUPP);
        }
    }
    if end > inode.size() {
        crate::kernel::current::check_file_size(end, 0)?;
        inode.setattr(&SetAttr {
            size: Some(end),
            ..SetAttr::default()
        })?;
    }
    Ok(0)
}

/// The description behind `fd` for a call that needs a real open file (not `O_PATH`).
pub fn file_for_io(task: &Task, fd: i32) -> SysResult<Arc<dyn FileDescription>> {
    let file = task.fds.get(fd)?;
    if file.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    Ok(file)
}

pub fn sendfile(
    task: &mut Task,
    out_fd: i32,
    in_fd: i32,
    offset: UserAddr,
    count: usize,
) -> SysResult<i64> {
    let input = file_for_io(task, in_fd)?;
    let output = file_for_io(task, out_fd)?;
    if input.flags() & O_ACCMODE == crate::vfs::file::O_WRONLY
        || output.flags() & O_ACCMODE == O_RDONLY
    {
        return Err(Errno::EBADF);
    }
    let count = count.min(MAX_RW_COUNT);
    let ptr = UserPtr::<i64>::new(offset);
    let mut pos = if offset.is_null() {
        None
    } else {
        let at: i64 = task.mm.read(ptr)?;
        Some(u64::try_from(at).map_err(|_| Errno::EINVAL)?)
    };
    let mut buf = vec![0u8; count.min(CHUNK)];
    let mut done = 0usize;
    while done < count {
        let want = (count - done).min(CHUNK);
        let got = match pos {
            Some(p) => input.pread(&mut buf[..want], p),
            None => blocking(task, &*input, || input.read(&mut buf[..want])),
        };
        let n = match got {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let written = match write_stream(task, &*output, &buf[..n]) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => 0,
        };
        done += written;
        if let Some(p) = &mut pos {
            *p += written as u64;
        }
        if written < n || n < want {
            break;
        }
    }
    if let Some(p) = pos {
        task.mm
            .write(ptr, &i64::try_from(p).map_err(|_| Errno::EOVERFLOW)?)?;
    }
    Ok(done as i64)
}

pub fn fadvise64(task: &mut Task, fd: i32, _offset: i64, len: i64, advice: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    if !(0..=5).contains(&advice) || len < 0 {
        return Err(Errno::EINVAL);
    }
    // Advice is a hint the Sentry's page cache does not act on; pipes refuse it.
    if file.inode().is_none() && file.readable_bytes().is_ok() {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}

/// `preadv2`/`pwritev2` flags this Sentry honours (none change behaviour here:
/// `RWF_HIPRI` and `RWF_DSYNC`/`RWF_SYNC` are hints or no-ops on in-memory files).
const RWF_HIPRI: i32 = 0x1;
const RWF_DSYNC: i32 = 0x2;
const RWF_SYNC: i32 = 0x4;
const RWF_NOWAIT: i32 = 0x8;
const RWF_APPEND: i32 = 0x10;

pub fn preadv2(
    task: &mut Task,
    fd: i32,
    iov: UserAddr,
    iovcnt: i32,
    off: i64,
    _off_hi: i64,
    flags: i32,
) -> SysResult<i64> {
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if off == -1 {
        return readv(task, fd, iov, iovcnt);
    }
    preadv(task, fd, iov, iovcnt, off)
}

pub fn pwritev2(
    task: &mut Task,
    fd: i32,
    iov: UserAddr,
    iovcnt: i32,
    off: i64,
    _off_hi: i64,
    flags: i32,
) -> SysResult<i64> {
    if flags & !(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if flags & RWF_APPEND != 0 {
        // As O_APPEND for this one call: at the end, whatever the offset.
        let file = task.fds.get(fd)?;
        if let Some(inode) = file.inode().filter(|i| i.mode() & S_IFMT == S_IFREG) {
            let end = i64::try_from(inode.size()).map_err(|_| Errno::EFBIG)?;
            if off == -1 {
                file.seek(0, crate::vfs::file::SEEK_END)?;
                return writev(task, fd, iov, iovcnt);
            }
            return pwritev(task, fd, iov, iovcnt, end);
        }
    }
    if off == -1 {
        return writev(task, fd, iov, iovcnt);
    }
    pwritev(task, fd, iov, iovcnt, off)
}

/// Copies through the Sentry in chunks; both files must be regular.
pub fn copy_file_range(
    task: &mut Task,
    fd_in: i32,
    off_in: UserAddr,
    fd_out: i32,
    off_out: UserAddr,
    len: usize,
    flags: u32,
) -> SysResult<i64> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let input = file_for_io(task, fd_in)?;
    let output = file_for_io(task, fd_out)?;
    if input.flags() & O_ACCMODE == crate::vfs::file::O_WRONLY
        || output.flags() & O_ACCMODE == O_RDONLY
        || output.flags() & crate::vfs::file::O_APPEND != 0
    {
        return Err(Errno::EBADF);
    }
    let kind = |f: &Arc<dyn FileDescription>| f.inode().map_or(0, |i| i.mode() & S_IFMT);
    if kind(&input) == S_IFDIR || kind(&output) == S_IFDIR {
        return Err(Errno::EISDIR);
    }
    if kind(&input) != S_IFREG || kind(&output) != S_IFREG {
        return Err(Errno::EINVAL);
    }
    let read_off = |p: UserAddr| -> SysResult<Option<u64>> {
        if p.is_null() {
            return Ok(None);
        }
        let v: i64 = task.mm.read(UserPtr::<i64>::new(p))?;
        u64::try_from(v).map(Some).map_err(|_| Errno::EINVAL)
    };
    let mut pin = read_off(off_in)?;
    let mut pout = read_off(off_out)?;
    let len = len.min(MAX_RW_COUNT);
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0usize;
    while done < len {
        let want = (len - done).min(CHUNK);
        let n = match pin {
            Some(p) => input.pread(&mut buf[..want], p),
            None => input.read(&mut buf[..want]),
        };
        let n = match n {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let w = match pout {
            Some(p) => output.pwrite(&buf[..n], p),
            None => output.write(&buf[..n]),
        };
        let w = match w {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w;
        pin = pin.map(|p| p + w as u64);
        pout = pout.map(|p| p + w as u64);
        if w < n || n < want {
            break;
        }
    }
    for (ptr, pos) in [(off_in, pin), (off_out, pout)] {
        if let Some(p) = pos {
            let v = i64::try_from(p).map_err(|_| Errno::EOVERFLOW)?;
            task.mm.write(UserPtr::<i64>::new(ptr), &v)?;
        }
    }
    Ok(done as i64)
}

/// `sync`: the Sentry's filesystems are in memory (the Gofer's tree is never written), so
/// there is nothing to write back.
pub fn sync(_task: &mut Task) -> SysResult<i64> {
    Ok(0)
}

pub fn syncfs(task: &mut Task, fd: i32) -> SysResult<i64> {
    task.fds.get(fd)?;
    Ok(0)
}
