//! Extended attributes, kept by the in-memory filesystems: `user.*` (with the file's read
//! or write permission, on regular files and directories), `trusted.*` and `security.*`
//! (root only). Other namespaces (`system.*` ACLs) are `EOPNOTSUPP`, as are files of
//! filesystems that keep none. A lower file's own host attributes are not shown.

use std::sync::Arc;

use super::fs::{lookup_at, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::{permitted, Inode, MAY_READ, MAY_WRITE, S_IFDIR, S_IFMT, S_IFREG};

/// Linux's `XATTR_NAME_MAX`, `XATTR_SIZE_MAX` and `XATTR_LIST_MAX`.
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
const XATTR_LIST_MAX: usize = 65536;
const XATTR_CREATE: i32 = 1;
const XATTR_REPLACE: i32 = 2;

/// Where the attributes live: a path (followed or not) or a descriptor.
enum Target {
    Path(UserAddr, bool),
    Fd(i32),
}

fn inode_of(task: &Task, target: &Target) -> SysResult<Arc<dyn Inode>> {
    match *target {
        Target::Path(p, follow) => {
            let flags = if follow { 0 } else { AT_SYMLINK_NOFOLLOW };
            Ok(Arc::clone(lookup_at(task, AT_FDCWD, p, flags)?.inode()))
        }
        Target::Fd(fd) => task.fds.get(fd)?.inode().cloned().ok_or(Errno::EOPNOTSUPP),
    }
}

fn read_name(task: &Task, at: UserAddr) -> SysResult<Vec<u8>> {
    let name = match task.mm.read_c_string(at, XATTR_NAME_MAX + 1) {
        Err(Errno::ENAMETOOLONG) => return Err(Errno::ERANGE),
        other => other?,
    };
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    Ok(name)
}

/// Linux's namespace and permission checks for `want` (`MAY_READ`/`MAY_WRITE`).
fn check(task: &Task, inode: &dyn Inode, name: &[u8], want: u32) -> SysResult<()> {
    let stat = inode.stat()?;
    if name.starts_with(b"user.") {
        let kind = stat.mode & S_IFMT;
        if kind != S_IFREG && kind != S_IFDIR {
            return Err(if want == MAY_WRITE {
                Errno::EPERM
            } else {
                Errno::ENODATA
            });
        }
        return permitted(&stat, &task.creds, want);
    }
    if name.starts_with(b"trusted.") || name.starts_with(b"security.") {
        let admin = task.creds.capable(crate::kernel::creds::CAP_SYS_ADMIN);
        if !admin && (want == MAY_WRITE || name.starts_with(b"trusted.")) {
            return Err(if want == MAY_WRITE {
                Errno::EPERM
            } else {
                Errno::ENODATA
            });
        }
        return Ok(());
    }
    Err(Errno::EOPNOTSUPP)
}

fn get(
    task: &Task,
    target: Target,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> SysResult<i64> {
    let inode = inode_of(task, &target)?;
    let name = read_name(task, name)?;
    let xattrs = inode.xattrs().ok_or(Errno::EOPNOTSUPP)?;
    check(task, &*inode, &name, MAY_READ)?;
    let v = xattrs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&name)
        .cloned()
        .ok_or(Errno::ENODATA)?;
    if size == 0 {
        return Ok(v.len() as i64);
    }
    if size < v.len() {
        return Err(Errno::ERANGE);
    }
    task.mm.copy_out(value, &v)?;
    Ok(v.len() as i64)
}

fn list(task: &Task, target: Target, out: UserAddr, size: usize) -> SysResult<i64> {
    let inode = inode_of(task, &target)?;
    let Some(xattrs) = inode.xattrs() else {
        return Ok(0);
    };
    let mut names = Vec::new();
    for name in xattrs.lock().unwrap_or_else(|e| e.into_inner()).keys() {
        // Only what the caller may read is listed (trusted.* is root's).
        if name.starts_with(b"trusted.") && !task.creds.capable(crate::kernel::creds::CAP_SYS_ADMIN)
        {
            continue;
        }
        names.extend_from_slice(name);
        names.push(0);
    }
    if names.len() > XATTR_LIST_MAX {
        return Err(Errno::E2BIG);
    }
    if size == 0 {
        return Ok(names.len() as i64);
    }
    if size < names.len() {
        return Err(Errno::ERANGE);
    }
    task.mm.copy_out(out, &names)?;
    Ok(names.len() as i64)
}

fn set(
    task: &Task,
    target: Target,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> SysResult<i64> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let inode = inode_of(task, &target)?;
    let name = read_name(task, name)?;
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let mut v = vec![0u8; size];
    task.mm.copy_in(value, &mut v)?;
    let xattrs = inode.xattrs().ok_or(Errno::EOPNOTSUPP)?;
    check(task, &*inode, &name, MAY_WRITE)?;
    if inode.read_only() {
        return Err(Errno::EROFS);
    }
    let mut map = xattrs.lock().unwrap_or_else(|e| e.into_inner());
    let exists = map.contains_key(&name);
    if flags & XATTR_CREATE != 0 && exists {
        return Err(Errno::EEXIST);
    }
    if flags & XATTR_REPLACE != 0 && !exists {
        return Err(Errno::ENODATA);
    }
    map.insert(name, v);
    drop(map);
    crate::vfs::inotify::object_event(&*inode, None, crate::vfs::inotify::IN_ATTRIB);
    Ok(0)
}

fn remove(task: &Task, target: Target, name: UserAddr) -> SysResult<i64> {
    let inode = inode_of(task, &target)?;
    let name = read_name(task, name)?;
    let xattrs = inode.xattrs().ok_or(Errno::EOPNOTSUPP)?;
    check(task, &*inode, &name, MAY_WRITE)?;
    let removed = xattrs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    removed.ok_or(Errno::ENODATA)?;
    crate::vfs::inotify::object_event(&*inode, None, crate::vfs::inotify::IN_ATTRIB);
    Ok(0)
}

pub fn getxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> SysResult<i64> {
    get(task, Target::Path(path, true), name, value, size)
}

pub fn lgetxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> SysResult<i64> {
    get(task, Target::Path(path, false), name, value, size)
}

pub fn fgetxattr(
    task: &mut Task,
    fd: i32,
    name: UserAddr,
    value: UserAddr,
    size: usize,
) -> SysResult<i64> {
    get(task, Target::Fd(fd), name, value, size)
}

pub fn listxattr(
    task: &mut Task,
    path: UserAddr,
    list_at: UserAddr,
    size: usize,
) -> SysResult<i64> {
    list(task, Target::Path(path, true), list_at, size)
}

pub fn llistxattr(
    task: &mut Task,
    path: UserAddr,
    list_at: UserAddr,
    size: usize,
) -> SysResult<i64> {
    list(task, Target::Path(path, false), list_at, size)
}

pub fn flistxattr(task: &mut Task, fd: i32, list_at: UserAddr, size: usize) -> SysResult<i64> {
    list(task, Target::Fd(fd), list_at, size)
}

pub fn setxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> SysResult<i64> {
    set(task, Target::Path(path, true), name, value, size, flags)
}

pub fn lsetxattr(
    task: &mut Task,
    path: UserAddr,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> SysResult<i64> {
    set(task, Target::Path(path, false), name, value, size, flags)
}

pub fn fsetxattr(
    task: &mut Task,
    fd: i32,
    name: UserAddr,
    value: UserAddr,
    size: usize,
    flags: i32,
) -> SysResult<i64> {
    set(task, Target::Fd(fd), name, value, size, flags)
}

pub fn removexattr(task: &mut Task, path: UserAddr, name: UserAddr) -> SysResult<i64> {
    remove(task, Target::Path(path, true), name)
}

pub fn lremovexattr(task: &mut Task, path: UserAddr, name: UserAddr) -> SysResult<i64> {
    remove(task, Target::Path(path, false), name)
}

pub fn fremovexattr(task: &mut Task, fd: i32, name: UserAddr) -> SysResult<i64> {
    remove(task, Target::Fd(fd), name)
}
