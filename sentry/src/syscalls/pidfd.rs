//! Process file descriptors: `pidfd_open`, `pidfd_send_signal` (and `waitid(P_PIDFD)`,
//! in `process.rs`).

use std::sync::Arc;

use super::open::install;
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::{check_signal, SigInfo, SI_USER};
use crate::kernel::{Task, ThreadGroup};
use crate::mm::UserAddr;
use crate::vfs::file::O_NONBLOCK;
use crate::vfs::pidfd::PidFd;
use crate::vfs::FileDescription;

const PIDFD_SIGNAL_THREAD: u32 = 1;
const PIDFD_SIGNAL_THREAD_GROUP: u32 = 2;
const PIDFD_SIGNAL_PROCESS_GROUP: u32 = 4;

/// `PIDFD_NONBLOCK`.
const PIDFD_NONBLOCK: u32 = O_NONBLOCK.unsigned_abs();

pub fn pidfd_open(task: &mut Task, pid: i32, flags: u32) -> SysResult<i64> {
    if flags & !PIDFD_NONBLOCK != 0 {
        return Err(Errno::EINVAL);
    }
    if pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let group = match task.kernel.group(pid) {
        Some(g) => g,
        // A thread that is not a process's leader (PIDFD_THREAD is not supported).
        None if task.kernel.thread(pid).is_some() => return Err(Errno::ENOENT),
        None => return Err(Errno::ESRCH),
    };
    let nonblock = if flags & PIDFD_NONBLOCK != 0 {
        O_NONBLOCK
    } else {
        0
    };
    // A pidfd is always close-on-exec.
    install(
        task,
        Arc::new(PidFd::new(group, nonblock)) as Arc<dyn FileDescription>,
        true,
    )
}

/// The process a pidfd refers to.
pub fn group_of(task: &Task, fd: i32) -> SysResult<Arc<ThreadGroup>> {
    let file = task.fds.get(fd)?;
    let pidfd = file.as_pidfd().ok_or(Errno::EBADF)?;
    Ok(Arc::clone(&pidfd.group))
}

pub fn pidfd_send_signal(
    task: &mut Task,
    fd: i32,
    sig: i32,
    info: UserAddr,
    flags: u32,
) -> SysResult<i64> {
    // At most one scope: the process (default), its main thread, or its process group.
    if flags & !(PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP) != 0
        || flags.count_ones() > 1
    {
        return Err(Errno::EINVAL);
    }
    let group = group_of(task, fd)?;
    if sig != 0 {
        check_signal(sig)?;
    }
    if group.state().zombie.is_some() {
        return Err(Errno::ESRCH);
    }
    let info = if info.is_null() {
        super::signal::user_info(task, sig, SI_USER)
    } else {
        let mut raw = [0u8; 128];
        task.mm.copy_in(info, &mut raw)?;
        let mut given = SigInfo::from_bytes(&raw);
        if given.signo != sig {
            return Err(Errno::EINVAL);
        }
        if Arc::ptr_eq(&group, &task.group) {
            // To itself a process may claim any code, as with rt_sigqueueinfo.
            given.signo = sig;
            given
        } else {
            super::signal::queued_info(task, sig, info)?
        }
    };
    if sig == 0 {
        return Ok(0);
    }
    match flags {
        PIDFD_SIGNAL_THREAD => {
            // The process's main thread, as tgkill sends to a thread.
            super::signal::send_to_thread(task, Some(group.tgid), group.tgid, sig, info)?;
        }
        PIDFD_SIGNAL_PROCESS_GROUP => {
            let pgid = group.state().pgid;
            for g in task.kernel.groups() {
                if g.state().pgid == pgid && g.state().zombie.is_none() {
                    Task::send_to_group(&task.kernel, &g, info);
                }
            }
        }
        _ => {
            if !Task::send_to_group(&task.kernel, &group, info) {
                return Err(Errno::EAGAIN);
            }
        }
    }
    Ok(0)
}
