//! Advisory locks: `fcntl` record locks (`F_GETLK`, `F_SETLK`, `F_SETLKW` and the
//! open-file-description `F_OFD_*` forms) and `flock`.

use std::sync::Arc;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::file::{
    FileDescription, O_ACCMODE, O_PATH, O_RDONLY, O_WRONLY, SEEK_CUR, SEEK_END, SEEK_SET,
};
use crate::vfs::lock::{FileLocks, Kind, Owner};

pub const F_GETLK: i32 = 5;
pub const F_SETLK: i32 = 6;
pub const F_SETLKW: i32 = 7;
pub const F_OFD_GETLK: i32 = 36;
pub const F_OFD_SETLK: i32 = 37;
pub const F_OFD_SETLKW: i32 = 38;

const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;

const LOCK_SH: i32 = 1;
const LOCK_EX: i32 = 2;
const LOCK_NB: i32 = 4;
const LOCK_UN: i32 = 8;

/// `struct flock`.
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable)]
struct Flock {
    l_type: i16,
    l_whence: i16,
    pad0: u32,
    l_start: i64,
    l_len: i64,
    l_pid: i32,
    pad1: u32,
}

const _: () = assert!(std::mem::size_of::<Flock>() == 32);

fn description_owner(file: &Arc<dyn FileDescription>) -> Owner {
    Owner::Description(Arc::as_ptr(file).cast::<()>().addr())
}

/// The file's locks, or why it has none.
fn locks_of(file: &Arc<dyn FileDescription>) -> SysResult<&FileLocks> {
    if file.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    file.inode().and_then(|i| i.locks()).ok_or(Errno::ENOLCK)
}

/// The absolute, inclusive byte range a `struct flock` names.
fn range(file: &dyn FileDescription, fl: &Flock) -> SysResult<(u64, u64)> {
    let base = match i32::from(fl.l_whence) {
        SEEK_SET => 0,
        SEEK_CUR => i64::try_from(file.seek(0, SEEK_CUR)?).map_err(|_| Errno::EOVERFLOW)?,
        SEEK_END => {
            i64::try_from(file.inode().map_or(0, |i| i.size())).map_err(|_| Errno::EOVERFLOW)?
        }
        _ => return Err(Errno::EINVAL),
    };
    let start = base.checked_add(fl.l_start).ok_or(Errno::EOVERFLOW)?;
    let (start, end) = match fl.l_len {
        0 => (start, i64::MAX),
        len if len > 0 => (start, start.checked_add(len - 1).ok_or(Errno::EOVERFLOW)?),
        len => (start.checked_add(len).ok_or(Errno::EINVAL)?, start - 1),
    };
    let start = u64::try_from(start).map_err(|_| Errno::EINVAL)?;
    let end = u64::try_from(end).map_err(|_| Errno::EINVAL)?;
    Ok((start, end))
}

/// `fcntl` with a lock command.
pub fn fcntl_lock(task: &Task, fd: i32, cmd: i32, arg: UserAddr) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let ptr = UserPtr::<Flock>::new(arg);
    let mut fl: Flock = task.mm.read(ptr)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    if ofd && fl.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let owner = if ofd {
        description_owner(&file)
    } else {
        Owner::Process(task.group.tgid)
    };
    let locks = locks_of(&file)?;
    let (start, end) = range(&*file, &fl)?;
    let kind = match fl.l_type {
        F_RDLCK => Some(Kind::Read),
        F_WRLCK => Some(Kind::Write),
        F_UNLCK => None,
        _ => return Err(Errno::EINVAL),
    };
    if matches!(cmd, F_GETLK | F_OFD_GETLK) {
        let Some(kind) = kind else {
            return Err(Errno::EINVAL);
        };
        match locks.conflict(owner, kind, start, end) {
            None => fl.l_type = F_UNLCK,
            Some(r) => {
                fl.l_type = if r.kind == Kind::Write {
                    F_WRLCK
                } else {
                    F_RDLCK
                };
                fl.l_whence = 0;
                fl.l_start = i64::try_from(r.start).unwrap_or(i64::MAX);
                fl.l_len = if r.end >= i64::MAX as u64 {
                    0
                } else {
                    i64::try_from(r.end - r.start + 1).unwrap_or(0)
                };
                fl.l_pid = match r.owner {
                    Owner::Process(p) => p,
                    Owner::Description(_) => -1,
                };
            }
        }
        task.mm.write(ptr, &fl)?;
        return Ok(0);
    }
    let Some(kind) = kind else {
        locks.unlock(owner, start, end);
        return Ok(0);
    };
    let acc = file.flags() & O_ACCMODE;
    if (kind == Kind::Read && acc == O_WRONLY) || (kind == Kind::Write && acc == O_RDONLY) {
        return Err(Errno::EBADF);
    }
    let wait = matches!(cmd, F_SETLKW | F_OFD_SETLKW);
    take(task, locks, owner, kind, start, end, wait)?;
    if !ofd {
        file.add_locker(task.group.tgid);
    }
    Ok(0)
}

/// Takes a lock, waiting (interruptibly) for conflicts to go if `wait`.
fn take(
    task: &Task,
    locks: &FileLocks,
    owner: Owner,
    kind: Kind,
    start: u64,
    end: u64,
    wait: bool,
) -> SysResult<()> {
    match locks.try_lock(owner, kind, start, end) {
        Err(Errno::EAGAIN) if wait => {}
        other => return other,
    }
    let _registered = locks.queue.register(&task.handle.waker);
    task.block_until(None, || match locks.try_lock(owner, kind, start, end) {
        Ok(()) => Ok(Some(())),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    })
}

pub fn flock(task: &mut Task, fd: i32, op: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let locks = locks_of(&file)?;
    let owner = description_owner(&file);
    let kind = match op & !LOCK_NB {
        LOCK_SH => Kind::Read,
        LOCK_EX => Kind::Write,
        LOCK_UN => {
            locks.release(owner);
            return Ok(0);
        }
        _ => return Err(Errno::EINVAL),
    };
    take(task, locks, owner, kind, 0, u64::MAX, op & LOCK_NB == 0).map_err(|e| {
        if e == Errno::EAGAIN {
            Errno::EWOULDBLOCK
        } else {
            e
        }
    })?;
    Ok(0)
}

/// At `close`: a process's record locks on the file go, whichever descriptor took them.
pub fn release_on_close(task: &Task, file: &Arc<dyn FileDescription>) {
    if let Some(locks) = file.inode().and_then(|i| i.locks()) {
        locks.release(Owner::Process(task.group.tgid));
    }
}
