//! Event files as syscalls: eventfd.

use std::sync::Arc;

use super::open::install;
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::vfs::eventfd::EventFd;
use crate::vfs::file::{O_CLOEXEC, O_NONBLOCK};
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
