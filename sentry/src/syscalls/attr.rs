//! Changing attributes: chmod, chown, utimensat and their variants, and umask.

use super::fs::{lookup_at, AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW};
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::{CAP_CHOWN, CAP_FOWNER};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::{inotify, permitted, Inode, Path, SetAttr, Time, MAY_WRITE};

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

/// What an attribute change applies to: the inode, whether its mount is read-only, and
/// where it was found (for inotify's event in its directory).
struct Target {
    inode: std::sync::Arc<dyn Inode>,
    ro: bool,
    path: Option<Path>,
}

impl Target {
    /// Reports the change to inotify watches on the inode and its directory.
    fn changed(&self, mask: u32) {
        match &self.path {
            Some(p) => inotify::path_event(p, mask),
            None => inotify::object_event(&*self.inode, None, mask),
        }
    }
}

/// The inode at `dirfd`/`path`.
fn target(task: &Task, dirfd: i32, path: UserAddr, flags: i32) -> SysResult<Target> {
    let at = lookup_at(task, dirfd, path, flags)?;
    Ok(Target {
        inode: std::sync::Arc::clone(at.inode()),
        ro: at.mount.is_read_only() || at.inode().read_only(),
        path: Some(at),
    })
}

/// The inode behind `fd`.
fn fd_target(task: &Task, fd: i32) -> SysResult<Target> {
    let file = task.fds.get(fd)?;
    let inode = file.inode().cloned().ok_or(Errno::EBADF)?;
    let ro = file.path().is_some_and(|p| p.mount.is_read_only()) || inode.read_only();
    Ok(Target {
        inode,
        ro,
        path: file.path().cloned(),
    })
}

fn set_mode(task: &Task, t: &Target, mode: u32) -> SysResult<i64> {
    let (inode, ro) = (&*t.inode, t.ro);
    let stat = inode.stat()?;
    if task.creds.fsuid != stat.uid && !task.creds.capable(CAP_FOWNER) {
        return Err(Errno::EPERM);
    }
    if ro {
        return Err(Errno::EROFS);
    }
    inode.setattr(&SetAttr {
        mode: Some(mode & 0o7777),
        ..SetAttr::default()
    })?;
    t.changed(inotify::IN_ATTRIB);
    Ok(0)
}

pub fn chmod(task: &mut Task, path: UserAddr, mode: u32) -> SysResult<i64> {
    fchmodat(task, AT_FDCWD, path, mode)
}

pub fn fchmod(task: &mut Task, fd: i32, mode: u32) -> SysResult<i64> {
    set_mode(task, &fd_target(task, fd)?, mode)
}

pub fn fchmodat(task: &mut Task, dirfd: i32, path: UserAddr, mode: u32) -> SysResult<i64> {
    set_mode(task, &target(task, dirfd, path, 0)?, mode)
}

fn set_owner(task: &Task, t: &Target, uid: u32, gid: u32) -> SysResult<i64> {
    let (inode, ro) = (&*t.inode, t.ro);
    let stat = inode.stat()?;
    let uid = (uid != u32::MAX).then_some(uid);
    let gid = (gid != u32::MAX).then_some(gid);
    // As Linux's chown_ok and chgrp_ok: the owner may give the file to itself and to
    // its own groups; anything else takes CAP_CHOWN.
    let c = &task.creds;
    let owner = c.fsuid == stat.uid;
    let uid_ok = uid.is_none_or(|u| owner && u == stat.uid);
    let gid_ok = gid.is_none_or(|g| owner && (g == stat.gid || c.in_group(g)));
    let allowed = (uid_ok && gid_ok) || c.capable(CAP_CHOWN);
    if !allowed {
        return Err(Errno::EPERM);
    }
    if ro {
        return Err(Errno::EROFS);
    }
    inode.setattr(&SetAttr {
        uid,
        gid,
        ..SetAttr::default()
    })?;
    t.changed(inotify::IN_ATTRIB);
    Ok(0)
}

pub fn chown(task: &mut Task, path: UserAddr, uid: u32, gid: u32) -> SysResult<i64> {
    fchownat(task, AT_FDCWD, path, uid, gid, 0)
}

pub fn lchown(task: &mut Task, path: UserAddr, uid: u32, gid: u32) -> SysResult<i64> {
    fchownat(task, AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW)
}

pub fn fchown(task: &mut Task, fd: i32, uid: u32, gid: u32) -> SysResult<i64> {
    set_owner(task, &fd_target(task, fd)?, uid, gid)
}

pub fn fchownat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    uid: u32,
    gid: u32,
    flags: i32,
) -> SysResult<i64> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    set_owner(task, &target(task, dirfd, path, flags)?, uid, gid)
}

#[repr(C)]
#[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

pub fn utimensat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    times: UserAddr,
    flags: i32,
) -> SysResult<i64> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let t = if path.is_null() {
        // futimens: the descriptor itself.
        fd_target(task, dirfd)?
    } else {
        target(task, dirfd, path, flags)?
    };
    let (inode, ro) = (&t.inode, t.ro);
    let now = Time::now();
    let (atime, mtime, explicit) = if times.is_null() {
        (Some(now), Some(now), false)
    } else {
        let ptr = UserPtr::<Timespec>::new(times);
        let a: Timespec = task.mm.read(ptr)?;
        let m: Timespec = task.mm.read(ptr.offset(1)?)?;
        let conv = |t: Timespec| -> SysResult<Option<Time>> {
            match t.nsec {
                UTIME_OMIT => Ok(None),
                UTIME_NOW => Ok(Some(now)),
                0..=999_999_999 => Ok(Some(Time {
                    sec: t.sec,
                    nsec: t.nsec,
                })),
                _ => Err(Errno::EINVAL),
            }
        };
        let explicit = ![a.nsec, m.nsec]
            .iter()
            .all(|&n| n == UTIME_NOW || n == UTIME_OMIT);
        (conv(a)?, conv(m)?, explicit)
    };
    if atime.is_none() && mtime.is_none() {
        return Ok(0);
    }
    let stat = inode.stat()?;
    if task.creds.fsuid != stat.uid && !task.creds.capable(CAP_FOWNER) {
        if explicit {
            return Err(Errno::EPERM);
        }
        permitted(&stat, &task.creds, MAY_WRITE)?;
    }
    if ro {
        return Err(Errno::EROFS);
    }
    inode.setattr(&SetAttr {
        atime,
        mtime,
        ..SetAttr::default()
    })?;
    // As Linux's fsnotify_change: both times are a utime (IN_ATTRIB); one alone is an
    // access or a modification.
    let mask = match (atime.is_some(), mtime.is_some()) {
        (true, true) => inotify::IN_ATTRIB,
        (true, false) => inotify::IN_ACCESS,
        _ => inotify::IN_MODIFY,
    };
    t.changed(mask);
    Ok(0)
}

pub fn umask(task: &mut Task, mask: u32) -> SysResult<i64> {
    Ok(i64::from(task.fs.set_umask(mask)))
}
