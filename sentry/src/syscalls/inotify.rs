//! inotify: inotify_init, inotify_init1, inotify_add_watch, inotify_rm_watch.

use std::sync::Arc;

use super::fs::{cx, read_path};
use super::open::install;
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::file::{O_CLOEXEC, O_NONBLOCK};
use crate::vfs::inotify::{
    Inotify, ALL_BITS, IN_DONT_FOLLOW, IN_MASK_ADD, IN_MASK_CREATE, IN_ONLYDIR,
};
use crate::vfs::{permitted, FileDescription, MAY_READ, S_IFDIR, S_IFMT};

pub fn inotify_init(task: &mut Task) -> SysResult<i64> {
    inotify_init1(task, 0)
}

pub fn inotify_init1(task: &mut Task, flags: i32) -> SysResult<i64> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let instance = Inotify::new(flags & O_NONBLOCK)?;
    install(
        task,
        instance as Arc<dyn FileDescription>,
        flags & O_CLOEXEC != 0,
    )
}

pub fn inotify_add_watch(task: &mut Task, fd: i32, path: UserAddr, mask: u32) -> SysResult<i64> {
    if mask & ALL_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    let file = task.fds.get(fd)?;
    let instance = file.as_inotify().ok_or(Errno::EINVAL)?;
    let name = read_path(task, path)?;
    let cx = cx(task);
    let start = super::fs::dir_of(task, super::fs::AT_FDCWD, &name)?;
    let at = task
        .fs
        .lookup(&cx, start.as_ref(), &name, mask & IN_DONT_FOLLOW == 0)?;
    let stat = at.inode().stat()?;
    if mask & IN_ONLYDIR != 0 && stat.mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    permitted(&stat, &cx.creds, MAY_READ)?;
    instance.add_watch(&**at.inode(), mask).map(i64::from)
}

pub fn inotify_rm_watch(task: &mut Task, fd: i32, wd: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let instance = file.as_inotify().ok_or(Errno::EINVAL)?;
    instance.remove_watch(wd)?;
    Ok(0)
}
