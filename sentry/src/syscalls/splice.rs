//! splice and tee: moving bytes to or from a pipe without a user buffer. The Sentry
//! copies them through its own (there is no page to move between address spaces).

use std::sync::Arc;

use super::fs::{blocking, file_for_io};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::file::{FileDescription, O_ACCMODE, O_APPEND, O_RDONLY, O_WRONLY};

const SPLICE_F_MOVE: u32 = 1;
const SPLICE_F_NONBLOCK: u32 = 2;
const SPLICE_F_MORE: u32 = 4;
const SPLICE_F_GIFT: u32 = 8;
/// Bytes moved per call at most (a pipe's default capacity).
const MAX_SPLICE: usize = 64 * 1024;

fn is_pipe(f: &Arc<dyn FileDescription>) -> bool {
    f.pipe_size().is_ok()
}

/// Runs `op`, waiting for the pipe unless the call is non-blocking.
fn maybe_blocking<T>(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    nonblock: bool,
    op: impl FnMut() -> SysResult<T>,
) -> SysResult<T> {
    let mut op = op;
    if nonblock {
        op()
    } else {
        blocking(task, &**file, op)
    }
}

fn read_offset(
    task: &Task,
    at: UserAddr,
    file: &Arc<dyn FileDescription>,
) -> SysResult<Option<u64>> {
    if at.is_null() {
        return Ok(None);
    }
    if is_pipe(file) {
        return Err(Errno::ESPIPE);
    }
    let v: i64 = task.mm.read(UserPtr::<i64>::new(at))?;
    u64::try_from(v).map(Some).map_err(|_| Errno::EINVAL)
}

pub fn splice(
    task: &mut Task,
    fd_in: i32,
    off_in: UserAddr,
    fd_out: i32,
    off_out: UserAddr,
    len: usize,
    flags: u32,
) -> SysResult<i64> {
    if flags & !(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT) != 0 {
        return Err(Errno::EINVAL);
    }
    let input = file_for_io(task, fd_in)?;
    let output = file_for_io(task, fd_out)?;
    if input.flags() & O_ACCMODE == O_WRONLY
        || output.flags() & O_ACCMODE == O_RDONLY
        || output.flags() & O_APPEND != 0
    {
        return Err(Errno::EBADF);
    }
    if !is_pipe(&input) && !is_pipe(&output) {
        return Err(Errno::EINVAL);
    }
    let pin = read_offset(task, off_in, &input)?;
    let pout = read_offset(task, off_out, &output)?;
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let mut buf = vec![0u8; len.min(MAX_SPLICE)];
    let n = maybe_blocking(task, &input, nonblock, || match pin {
        Some(p) => input.pread(&mut buf, p),
        None => input.read(&mut buf),
    })?;
    if n == 0 {
        return Ok(0);
    }
    let mut written = 0;
    while written < n {
        let w = maybe_blocking(task, &output, nonblock, || match pout {
            Some(p) => output.pwrite(&buf[written..n], p + written as u64),
            None => output.write(&buf[written..n]),
        });
        match w {
            Ok(0) => break,
            Ok(w) => written += w,
            Err(e) if written == 0 => return Err(e),
            Err(_) => break,
        }
    }
    if written < n && pin.is_none() && !is_pipe(&input) {
        // Only what moved is consumed from a file.
        let back = i64::try_from(n - written).map_err(|_| Errno::EOVERFLOW)?;
        input.seek(-back, crate::vfs::file::SEEK_CUR)?;
    }
    for (at, pos, moved) in [(off_in, pin, written), (off_out, pout, written)] {
        if let Some(p) = pos {
            let v = i64::try_from(p + moved as u64).map_err(|_| Errno::EOVERFLOW)?;
            task.mm.write(UserPtr::<i64>::new(at), &v)?;
        }
    }
    Ok(written as i64)
}

pub fn tee(task: &mut Task, fd_in: i32, fd_out: i32, len: usize, flags: u32) -> SysResult<i64> {
    if flags & !(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT) != 0 {
        return Err(Errno::EINVAL);
    }
    let input = file_for_io(task, fd_in)?;
    let output = file_for_io(task, fd_out)?;
    if !is_pipe(&input) || !is_pipe(&output) || input.anon_name() == output.anon_name() {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let mut buf = vec![0u8; len.min(MAX_SPLICE)];
    let n = maybe_blocking(task, &input, nonblock, || input.peek(&mut buf))?;
    if n == 0 {
        return Ok(0);
    }
    let w = maybe_blocking(task, &output, nonblock, || output.write(&buf[..n]))?;
    Ok(w as i64)
}
