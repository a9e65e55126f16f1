//! Descriptor plumbing: dup, dup2, dup3, fcntl, ioctl, pipe, pipe2.

use std::sync::Arc;

use super::lock::{F_GETLK, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_SETLK, F_SETLKW};
use super::open::{install, nofile_limit};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::fasync::{Fasync, OwnerKind};
use crate::vfs::file::{FileDescription, O_ASYNC, O_CLOEXEC, O_DIRECT, O_NONBLOCK, SEEK_CUR};
use crate::vfs::{pipe, S_IFMT, S_IFREG};

const F_DUPFD: i32 = 0;
const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_SETFL: i32 = 4;
const F_SETOWN: i32 = 8;
const F_GETOWN: i32 = 9;
const F_SETSIG: i32 = 10;
const F_GETSIG: i32 = 11;
const F_SETOWN_EX: i32 = 15;
const F_GETOWN_EX: i32 = 16;
const F_DUPFD_CLOEXEC: i32 = 1030;
const F_SETPIPE_SZ: i32 = 1031;
const F_GETPIPE_SZ: i32 = 1032;
const F_ADD_SEALS: i32 = 1033;
const F_GET_SEALS: i32 = 1034;
const FD_CLOEXEC: u64 = 1;

const TCGETS: u32 = 0x5401;
const TIOCGPGRP: u32 = 0x540f;
const TIOCGWINSZ: u32 = 0x5413;
const FIONREAD: u32 = 0x541b;
const FIONBIO: u32 = 0x5421;
const FIONCLEX: u32 = 0x5450;
const FIOCLEX: u32 = 0x5451;
const FIOASYNC: u32 = 0x5452;

pub fn dup(task: &mut Task, fd: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    install(task, file, false)
}

fn dup_to(task: &Task, old: i32, new: i32, cloexec: bool) -> SysResult<i64> {
    let file = task.fds.get(old)?;
    let limit = nofile_limit(task);
    if new < 0 || u64::try_from(new).map_or(true, |n| n >= limit) {
        return Err(Errno::EBADF);
    }
    let replaced = task.fds.insert_at(new, file, cloexec);
    drop(replaced);
    Ok(i64::from(new))
}

pub fn dup2(task: &mut Task, old: i32, new: i32) -> SysResult<i64> {
    if old == new {
        task.fds.get(old)?;
        return Ok(i64::from(new));
    }
    dup_to(task, old, new, false)
}

pub fn dup3(task: &mut Task, old: i32, new: i32, flags: i32) -> SysResult<i64> {
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    dup_to(task, old, new, flags & O_CLOEXEC != 0)
}

pub fn fcntl(task: &mut Task, fd: i32, cmd: i32, arg: u64) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg).map_err(|_| Errno::EINVAL)?;
            let limit = nofile_limit(task);
            if min < 0 || u64::try_from(min).map_or(true, |m| m >= limit) {
                return Err(Errno::EINVAL);
            }
            let fd = task.fds.insert(file, min, cmd == F_DUPFD_CLOEXEC, limit)?;
            Ok(i64::from(fd))
        }
        F_GETFD => Ok(i64::from(task.fds.cloexec(fd)?)),
        F_SETFD => {
            task.fds.set_cloexec(fd, arg & FD_CLOEXEC != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(i64::from(file.flags() & !O_CLOEXEC)),
        F_SETFL => {
            let flags =
                i32::from_ne_bytes(u32::try_from(arg & 0xffff_ffff).unwrap_or(0).to_ne_bytes());
            set_flags(&file, fd, flags);
            Ok(0)
        }
        F_SETOWN => {
            // A negative argument names a process group; INT_MIN has no negation.
            let who =
                i32::from_ne_bytes(u32::try_from(arg & 0xffff_ffff).unwrap_or(0).to_ne_bytes());
            let (kind, id) = match who {
                i32::MIN => return Err(Errno::EINVAL),
                w if w < 0 => (OwnerKind::Group, -w),
                w => (OwnerKind::Process, w),
            };
            Fasync::of(&file).set_owner(task, kind, id)?;
            Ok(0)
        }
        F_GETOWN => Ok(i64::from(Fasync::of(&file).getown())),
        F_SETOWN_EX => {
            let raw: [i32; 2] = task.mm.read(UserPtr::new(UserAddr::new(arg)))?;
            let kind = OwnerKind::from_raw(raw[0])?;
            Fasync::of(&file).set_owner(task, kind, raw[1])?;
            Ok(0)
        }
        F_GETOWN_EX => {
            let (kind, id) = Fasync::of(&file).owner();
            task.mm
                .write(UserPtr::new(UserAddr::new(arg)), &[kind as i32, id])?;
            Ok(0)
        }
        F_SETSIG => {
            Fasync::of(&file).set_sig(arg)?;
            Ok(0)
        }
        F_GETSIG => Ok(i64::from(Fasync::of(&file).sig())),
        F_GETPIPE_SZ => Ok(file.pipe_size()? as i64),
        F_SETPIPE_SZ => {
            let size = usize::try_from(arg & 0xffff_ffff).map_err(|_| Errno::EINVAL)?;
            Ok(file.set_pipe_size(size)? as i64)
        }
        F_ADD_SEALS | F_GET_SEALS => super::memfd::fcntl_seals(&*file, cmd, arg),
        F_GETLK | F_SETLK | F_SETLKW | F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW => {
            super::lock::fcntl_lock(task, fd, cmd, UserAddr::new(arg))
        }
        _ => {
            log::warn!("fcntl cmd {cmd}: not implemented (EINVAL)");
            Err(Errno::EINVAL)
        }
    }
}

pub fn ioctl(task: &mut Task, fd: i32, cmd: u32, arg: UserAddr) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    match cmd {
        FIOCLEX | FIONCLEX => {
            task.fds.set_cloexec(fd, cmd == FIOCLEX)?;
            Ok(0)
        }
        FIOASYNC => {
            let on: i32 = task.mm.read(UserPtr::new(arg))?;
            let flags = file.flags();
            set_flags(
                &file,
                fd,
                if on != 0 {
                    flags | O_ASYNC
                } else {
                    flags & !O_ASYNC
                },
            );
            Ok(0)
        }
        FIONBIO => {
            let on: i32 = task.mm.read(UserPtr::new(arg))?;
            let flags = file.flags();
            file.set_flags(if on != 0 {
                flags | O_NONBLOCK
            } else {
                flags & !O_NONBLOCK
            });
            Ok(0)
        }
        _ if file.as_tty().is_some() => super::tty::ioctl(task, &file, cmd, arg),
        FIONREAD => {
            let n = readable(&*file)?;
            let n = i32::try_from(n).unwrap_or(i32::MAX);
            task.mm.write(UserPtr::new(arg), &n)?;
            Ok(0)
        }
        TCGETS | TIOCGWINSZ | TIOCGPGRP => match file.terminal() {
            Some(tty) => {
                if cmd == TCGETS {
                    task.mm.copy_out(arg, &tty.termios()?)?;
                } else if cmd == TIOCGWINSZ {
                    task.mm.copy_out(arg, &tty.winsize()?)?;
                } else {
                    return Err(Errno::ENOTTY);
                }
                Ok(0)
            }
            None => Err(Errno::ENOTTY),
        },
        _ => {
            log::debug!("ioctl {cmd:#x} on fd {fd}: ENOTTY");
            Err(Errno::ENOTTY)
        }
    }
}

/// `F_SETFL`: the status flags, and the file told when `O_ASYNC` changes.
fn set_flags(file: &Arc<dyn FileDescription>, fd: i32, flags: i32) {
    let was = file.flags() & O_ASYNC;
    file.set_flags(flags);
    let now = file.flags() & O_ASYNC;
    if was != now {
        file.set_async(&Fasync::of(file), fd, now != 0);
    }
}

/// `FIONREAD`: a stream's buffered bytes, or a regular file's bytes past the offset.
fn readable(file: &dyn FileDescription) -> SysResult<u64> {
    if let Ok(n) = file.readable_bytes() {
        return Ok(n as u64);
    }
    match file.inode() {
        Some(inode) if inode.mode() & S_IFMT == S_IFREG => {
            let pos = file.seek(0, SEEK_CUR)?;
            Ok(inode.size().saturating_sub(pos))
        }
        _ => Err(Errno::ENOTTY),
    }
}

pub fn pipe(task: &mut Task, fds: UserAddr) -> SysResult<i64> {
    pipe2(task, fds, 0)
}

pub fn pipe2(task: &mut Task, fds: UserAddr, flags: i32) -> SysResult<i64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & O_DIRECT != 0 {
        // Packet-mode pipes are not served yet.
        log::warn!("pipe2(O_DIRECT): EINVAL");
        return Err(Errno::EINVAL);
    }
    let (r, w) = pipe::pipe(flags);
    let cloexec = flags & O_CLOEXEC != 0;
    let rfd = install(task, r as Arc<dyn FileDescription>, cloexec)?;
    let wfd = match install(task, w as Arc<dyn FileDescription>, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = task.fds.remove(i32::try_from(rfd).unwrap_or(-1));
            return Err(e);
        }
    };
    let pair = [
        i32::try_from(rfd).unwrap_or(-1),
        i32::try_from(wfd).unwrap_or(-1),
    ];
    if let Err(e) = task.mm.write(UserPtr::new(fds), &pair) {
        let _ = task.fds.remove(pair[0]);
        let _ = task.fds.remove(pair[1]);
        return Err(e);
    }
    Ok(0)
}
