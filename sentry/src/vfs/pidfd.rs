//! Process file descriptors (`pidfd_open`): a file that refers to one process, readable
//! (`POLLIN`) once the process has exited, for `pidfd_send_signal` and `waitid(P_PIDFD)`.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use super::file::{FileDescription, O_RDWR, POLLIN};
use super::Stat;
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;
use crate::kernel::ThreadGroup;

pub struct PidFd {
    pub group: Arc<ThreadGroup>,
    flags: AtomicI32,
}

impl PidFd {
    pub fn new(group: Arc<ThreadGroup>, flags: i32) -> Self {
        Self {
            group,
            flags: AtomicI32::new(O_RDWR | flags),
        }
    }
}

impl FileDescription for PidFd {
    fn read(&self, _: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    fn write(&self, _: &[u8]) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::file::anon_stat())
    }

    fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }

    fn anon_name(&self) -> Vec<u8> {
        b"anon_inode:[pidfd]".to_vec()
    }

    /// Linux's `pidfd_show_fdinfo`: the process ID (the sandbox has one PID namespace,
    /// so the list of IDs has one), or -1 once the process has been reaped (a zombie no
    /// longer among its parent's children).
    fn fdinfo(&self) -> Vec<u8> {
        let zombie = self.group.state().zombie.is_some();
        let reaped = zombie
            && self.group.parent().is_none_or(|parent| {
                !parent
                    .state()
                    .children
                    .iter()
                    .any(|c| Arc::ptr_eq(c, &self.group))
            });
        let pid = if reaped { -1 } else { self.group.tgid };
        format!("Pid:\t{pid}\nNSpid:\t{pid}\n").into_bytes()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.group.exited)
    }

    fn readiness(&self) -> u16 {
        if self.group.state().zombie.is_some() {
            POLLIN
        } else {
            0
        }
    }

    fn as_pidfd(&self) -> Option<&PidFd> {
        Some(self)
    }
}
