//! Extended attributes. The Sentry's filesystems keep none yet: reads find no attribute
//! (`ENODATA`), lists are empty, and writes are refused with `EOPNOTSUPP`, as on a
//! filesystem without xattr support. (The lower tree's own attributes are not shown.)

use super::fs::{lookup_at, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::UserAddr;

/// Linux's `XATTR_NAME_MAX`.
const XATTR_NAME_MAX: usize = 255;

fn check(
    task: &Task,
    path: Option<(UserAddr, bool)>,
    fd: i32,
    name: Option<UserAddr>,
) -> SysResult<()> {
    match path {
        Some((p, follow)) => {
            let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
            lookup_at(task, AT_FDCWD, p, flags)?;
        }
        None => {
            task.fds.get(fd)?;
        }
    }
    if let Some(n) = name {
        let name = task.mm.read_c_string(n, XATTR_NAME_MAX + 1)?;
        if name.is_empty() || name.len() > XATTR_NAME_MAX {
            return Err(Errno::ERANGE);
        }
    }
    Ok(())
}

pub fn getxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
) -> SysResult<i64> {
    check(task, Some((path, true)), 0, Some(name))?;
    Err(Errno::ENODATA)
}

pub fn lgetxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
) -> SysResult<i64> {
    check(task, Some((path, false)), 0, Some(name))?;
    Err(Errno::ENODATA)
}

pub fn fgetxattr(
    task: &mut Task,
    fd: i32,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
) -> SysResult<i64> {
    check(task, None, fd, Some(name))?;
    Err(Errno::ENODATA)
}

pub fn listxattr(task: &mut Task, path: UserAddr, _list: UserAddr, _s: usize) -> SysResult<i64> {
    check(task, Some((path, true)), 0, None)?;
    Ok(0)
}

pub fn llistxattr(task: &mut Task, path: UserAddr, _list: UserAddr, _s: usize) -> SysResult<i64> {
    check(task, Some((path, false)), 0, None)?;
    Ok(0)
}

pub fn flistxattr(task: &mut Task, fd: i32, _list: UserAddr, _s: usize) -> SysResult<i64> {
    check(task, None, fd, None)?;
    Ok(0)
}

pub fn setxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
    _f: i32,
) -> SysResult<i64> {
    check(task, Some((path, true)), 0, Some(name))?;
    Err(Errno::EOPNOTSUPP)
}

pub fn lsetxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
    _f: i32,
) -> SysResult<i64> {
    check(task, Some((path, false)), 0, Some(name))?;
    Err(Errno::EOPNOTSUPP)
}

pub fn fsetxattr(
    task: &mut Task,
    fd: i32,
    name: UserAddr,
    _v: UserAddr,
    _s: usize,
    _f: i32,
) -> SysResult<i64> {
    check(task, None, fd, Some(name))?;
    Err(Errno::EOPNOTSUPP)
}

pub fn removexattr(task: &mut Task, path: UserAddr, name: UserAddr) -> SysResult<i64> {
    check(task, Some((path, true)), 0, Some(name))?;
    Err(Errno::ENODATA)
}

pub fn lremovexattr(task: &mut Task, path: UserAddr, name: UserAddr) -> SysResult<i64> {
    check(task, Some((path, false)), 0, Some(name))?;
    Err(Errno::ENODATA)
}

pub fn fremovexattr(task: &mut Task, fd: i32, name: UserAddr) -> SysResult<i64> {
    check(task, None, fd, Some(name))?;
    Err(Errno::ENODATA)
}
