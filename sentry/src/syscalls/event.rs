//! Event files as syscalls: eventfd, signalfd.

use std::sync::Arc;

use super::open::install;
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigSet;
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::eventfd::EventFd;
use crate::vfs::file::{O_CLOEXEC, O_NONBLOCK};
use crate::vfs::signalfd::SignalFd;
use crate::vfs::FileDescription;

const EFD_SEMAPHORE: i32 = 1;

pub fn eventfd(task: &mut Task, initval: u32) -> SysResult<i64> {
    eventfd2(task, initval, 0)
}

pub fn eventfd2(task: &mut Task, initval: u32, flags: i32) -> SysResult<i64> {
    if flags & !(EFD_SEMAPHORE | O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = EventFd::new(
        u64::from(initval),
        flags & EFD_SEMAPHORE != 0,
        flags & O_NONBLOCK,
    );
    install(
        task,
        Arc::new(file) as Arc<dyn FileDescription>,
        flags & O_CLOEXEC != 0,
    )
}

/// `sizeof(sigset_t)` as the kernel takes it.
const SIGSET_SIZE: usize = 8;

pub fn signalfd(task: &mut Task, fd: i32, mask: UserAddr, sizemask: usize) -> SysResult<i64> {
    signalfd4(task, fd, mask, sizemask, 0)
}

pub fn signalfd4(
    task: &mut Task,
    fd: i32,
    mask: UserAddr,
    sizemask: usize,
    flags: i32,
) -> SysResult<i64> {
    if sizemask != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask = SigSet(task.mm.read(UserPtr::<u64>::new(mask))?);
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    if fd != -1 {
        let file = task.fds.get(fd)?;
        file.as_signalfd().ok_or(Errno::EINVAL)?.set_mask(mask);
        return Ok(i64::from(fd));
    }
    install(
        task,
        Arc::new(SignalFd::new(mask, flags & O_NONBLOCK)) as Arc<dyn FileDescription>,
        flags & O_CLOEXEC != 0,
    )
}
