//! File I/O syscalls: read, write, writev, newfstatat.

use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};

/// The most one read or write transfers (Linux's `MAX_RW_COUNT`).
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Bytes moved through the Sentry per step of a large read or write.
const CHUNK: usize = 64 * 1024;
/// The most iovecs one vectored call takes (Linux's `UIO_MAXIOV`).
const UIO_MAXIOV: i32 = 1024;

const AT_EMPTY_PATH: i32 = 0x1000;
const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
const AT_NO_AUTOMOUNT: i32 = 0x800;

pub fn read(task: &mut Task, fd: i32, buf: UserAddr, count: usize) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let count = count.min(MAX_RW_COUNT);
    if count == 0 {
        return Ok(0);
    }
    if !buf.range_is_user(count as u64) {
        return Err(Errno::EFAULT);
    }
    // One read from the file: a stream returns what it has, so this never waits for more.
    let mut data = vec![0u8; count.min(CHUNK)];
    let n = file.read(&mut data)?;
    task.mm.copy_out(buf, &data[..n])?;
    Ok(n as i64)
}

pub fn write(task: &mut Task, fd: i32, buf: UserAddr, count: usize) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    write_from(task, &*file, buf, count.min(MAX_RW_COUNT)).map(|n| n as i64)
}

/// Writes `count` bytes from application memory at `buf`, a chunk at a time; a fault or
/// a short write after some progress ends the call with what was written.
fn write_from(
    task: &Task,
    file: &dyn crate::vfs::FileDescription,
    buf: UserAddr,
    count: usize,
) -> SysResult<usize> {
    let mut done = 0usize;
    while done < count {
        let n = (count - done).min(CHUNK);
        let mut data = vec![0u8; n];
        let at = buf.checked_add(done as u64)?;
        if let Err(e) = task.mm.copy_in(at, &mut data) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        match file.write(&data) {
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

pub fn writev(task: &mut Task, fd: i32, iov: UserAddr, iovcnt: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let iovecs = read_iovecs(task, iov, iovcnt)?;
    let mut done = 0usize;
    let mut left = MAX_RW_COUNT;
    for v in iovecs {
        let len = usize::try_from(v.len).unwrap_or(usize::MAX).min(left);
        if len == 0 {
            continue;
        }
        match write_from(task, &*file, UserAddr::new(v.base), len) {
            Ok(n) => {
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

pub fn newfstatat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    statbuf: UserAddr,
    flags: i32,
) -> SysResult<i64> {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = task.mm.read_c_string(path, 4095)?;
    if !name.is_empty() || flags & AT_EMPTY_PATH == 0 {
        // Path lookup needs the VFS (the gofer-backed root); until it lands, say so.
        log::debug!("newfstatat of a path: not implemented yet (ENOSYS)");
        return Err(Errno::ENOSYS);
    }
    let stat = task.fds.get(dirfd)?.stat()?;
    task.mm.write(UserPtr::new(statbuf), &stat)?;
    Ok(0)
}
