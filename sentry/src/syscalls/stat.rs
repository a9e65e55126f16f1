//! Attributes of files: stat, lstat, fstat, newfstatat, statx, access, faccessat(2),
//! statfs, fstatfs, readlink(at).

use zerocopy::{Immutable, IntoBytes};

use super::fs::{
    cx, lookup_at, lookup_name_at, read_path, AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT,
    AT_SYMLINK_NOFOLLOW,
};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::tty::devpts::{major, minor};
use crate::vfs::{permitted, Stat, S_IFLNK, S_IFMT};

const AT_EACCESS: i32 = 0x200;
const AT_STATX_SYNC_TYPE: i32 = 0x6000;
const STATX_BASIC_STATS: u32 = 0x7ff;

pub fn stat(task: &mut Task, path: UserAddr, statbuf: UserAddr) -> SysResult<i64> {
    newfstatat(task, AT_FDCWD, path, statbuf, 0)
}

pub fn lstat(task: &mut Task, path: UserAddr, statbuf: UserAddr) -> SysResult<i64> {
    newfstatat(task, AT_FDCWD, path, statbuf, AT_SYMLINK_NOFOLLOW)
}

pub fn fstat(task: &mut Task, fd: i32, statbuf: UserAddr) -> SysResult<i64> {
    let stat = task.fds.get(fd)?.stat()?;
    task.mm.write(UserPtr::new(statbuf), &stat)?;
    Ok(0)
}

fn stat_at(task: &Task, dirfd: i32, path: UserAddr, flags: i32) -> SysResult<Stat> {
    let name = read_path(task, path)?;
    if name.is_empty() && flags & AT_EMPTY_PATH != 0 && dirfd != AT_FDCWD {
        // The descriptor itself, which may have no path (a pipe, the caller's stdio).
        return task.fds.get(dirfd)?.stat();
    }
    lookup_name_at(task, dirfd, &name, flags)?.inode().stat()
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
    let stat = stat_at(task, dirfd, path, flags)?;
    task.mm.write(UserPtr::new(statbuf), &stat)?;
    Ok(0)
}

#[repr(C)]
#[derive(Clone, Copy, Default, IntoBytes, Immutable)]
struct StatxTimestamp {
    sec: i64,
    nsec: u32,
    reserved: i32,
}

/// `struct statx`.
#[repr(C)]
#[derive(Clone, Copy, Default, IntoBytes, Immutable)]
struct Statx {
    mask: u32,
    blksize: u32,
    attributes: u64,
    nlink: u32,
    uid: u32,
    gid: u32,
    mode: u16,
    spare0: u16,
    ino: u64,
    size: u64,
    blocks: u64,
    attributes_mask: u64,
    atime: StatxTimestamp,
    btime: StatxTimestamp,
    ctime: StatxTimestamp,
    mtime: StatxTimestamp,
    rdev_major: u32,
    rdev_minor: u32,
    dev_major: u32,
    dev_minor: u32,
    mnt_id: u64,
    dio_mem_align: u32,
    dio_offset_align: u32,
    spare3: [u64; 12],
}

const _: () = assert!(std::mem::size_of::<Statx>() == 256);

fn ts(sec: i64, nsec: i64) -> StatxTimestamp {
    StatxTimestamp {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0),
        reserved: 0,
    }
}

pub fn statx(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    flags: i32,
    mask: u32,
    buf: UserAddr,
) -> SysResult<i64> {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
    {
        return Err(Errno::EINVAL);
    }
    if mask & 0x8000_0000 != 0 {
        // STATX__RESERVED
        return Err(Errno::EINVAL);
    }
    let s = stat_at(task, dirfd, path, flags)?;
    let out = Statx {
        mask: STATX_BASIC_STATS,
        blksize: u32::try_from(s.blksize).unwrap_or(4096),
        nlink: u32::try_from(s.nlink).unwrap_or(u32::MAX),
        uid: s.uid,
        gid: s.gid,
        mode: u16::try_from(s.mode & 0xffff).unwrap_or(0),
        ino: s.ino,
        size: u64::try_from(s.size).unwrap_or(0),
        blocks: u64::try_from(s.blocks).unwrap_or(0),
        atime: ts(s.atime, s.atime_nsec),
        ctime: ts(s.ctime, s.ctime_nsec),
        mtime: ts(s.mtime, s.mtime_nsec),
        rdev_major: major(s.rdev),
        rdev_minor: minor(s.rdev),
        dev_major: major(s.dev),
        dev_minor: minor(s.dev),
        ..Statx::default()
    };
    task.mm.copy_out(buf, out.as_bytes())?;
    Ok(0)
}

pub fn access(task: &mut Task, path: UserAddr, mode: i32) -> SysResult<i64> {
    faccessat2(task, AT_FDCWD, path, mode, 0)
}

pub fn faccessat(task: &mut Task, dirfd: i32, path: UserAddr, mode: i32) -> SysResult<i64> {
    faccessat2(task, dirfd, path, mode, 0)
}

pub fn faccessat2(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    mode: i32,
    flags: i32,
) -> SysResult<i64> {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let at = lookup_at(
        task,
        dirfd,
        path,
        flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH),
    )?;
    if mode == 0 {
        return Ok(0);
    }
    let stat = at.inode().stat()?;
    // access() checks with the real IDs unless AT_EACCESS.
    let creds = if flags & AT_EACCESS != 0 {
        task.creds.clone()
    } else {
        task.creds.for_access()
    };
    let want = u32::try_from(mode).unwrap_or(0);
    permitted(&stat, &creds, want)?;
    if want & crate::vfs::MAY_WRITE != 0 && (at.mount.is_read_only() || at.inode().read_only()) {
        return Err(Errno::EROFS);
    }
    Ok(0)
}

pub fn statfs(task: &mut Task, path: UserAddr, buf: UserAddr) -> SysResult<i64> {
    let at = lookup_at(task, AT_FDCWD, path, 0)?;
    let s = at.inode().statfs()?;
    task.mm.copy_out(buf, s.as_bytes())?;
    Ok(0)
}

pub fn fstatfs(task: &mut Task, fd: i32, buf: UserAddr) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let s = match file.inode() {
        Some(i) => i.statfs()?,
        None => crate::vfs::StatFs {
            f_type: crate::vfs::PIPEFS_MAGIC,
            f_bsize: 4096,
            f_namelen: 255,
            f_frsize: 4096,
            ..crate::vfs::StatFs::default()
        },
    };
    task.mm.copy_out(buf, s.as_bytes())?;
    Ok(0)
}

pub fn readlink(task: &mut Task, path: UserAddr, buf: UserAddr, size: i32) -> SysResult<i64> {
    readlinkat(task, AT_FDCWD, path, buf, size)
}

pub fn readlinkat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    buf: UserAddr,
    size: i32,
) -> SysResult<i64> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let at = lookup_at(task, dirfd, path, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)?;
    if at.inode().mode() & S_IFMT != S_IFLNK {
        return Err(Errno::EINVAL);
    }
    let target = at.inode().readlink(&cx(task))?;
    let n = target.len().min(usize::try_from(size).unwrap_or(0));
    task.mm.copy_out(buf, &target[..n])?;
    Ok(n as i64)
}
