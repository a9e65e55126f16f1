//! Process and thread identity and lifetime: exit, IDs, arch_prctl, set_tid_address,
//! set_robust_list.

use crate::errno::{Errno, SysResult};
use crate::kernel::{ExitStatus, Task};
use crate::mm::{UserAddr, UserPtr, USER_END};

const ARCH_SET_GS: i32 = 0x1001;
const ARCH_SET_FS: i32 = 0x1002;
const ARCH_GET_FS: i32 = 0x1003;
const ARCH_GET_GS: i32 = 0x1004;
const ARCH_GET_CPUID: i32 = 0x1011;
const ARCH_SET_CPUID: i32 = 0x1012;

/// `sizeof(struct robust_list_head)`.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

pub fn exit(task: &mut Task, status: i32) -> SysResult<i64> {
    // One thread per process so far: the thread's exit is the process's.
    task.exit = Some(ExitStatus::Exited(status & 0xff));
    Ok(0)
}

pub fn exit_group(task: &mut Task, status: i32) -> SysResult<i64> {
    task.exit = Some(ExitStatus::Exited(status & 0xff));
    Ok(0)
}

pub fn getpid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.group.tgid))
}

pub fn gettid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.tid))
}

pub fn getppid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.group.parent_tgid))
}

pub fn getuid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.creds.uid))
}

pub fn geteuid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.creds.euid))
}

pub fn getgid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.creds.gid))
}

pub fn getegid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.creds.egid))
}

pub fn arch_prctl(task: &mut Task, code: i32, addr: u64) -> SysResult<i64> {
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if addr >= USER_END {
                return Err(Errno::EPERM);
            }
            if code == ARCH_SET_FS {
                task.regs.fs_base = addr;
            } else {
                task.regs.gs_base = addr;
            }
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let value = if code == ARCH_GET_FS {
                task.regs.fs_base
            } else {
                task.regs.gs_base
            };
            task.mm.write(UserPtr::<u64>::from(addr), &value)?;
            Ok(0)
        }
        ARCH_GET_CPUID => Ok(1),
        // CPUID faulting is not available to the sandbox.
        ARCH_SET_CPUID => Err(Errno::ENODEV),
        _ => Err(Errno::EINVAL),
    }
}

pub fn set_tid_address(task: &mut Task, addr: UserAddr) -> SysResult<i64> {
    task.clear_child_tid = addr;
    Ok(i64::from(task.tid))
}

pub fn set_robust_list(task: &mut Task, head: UserAddr, len: u64) -> SysResult<i64> {
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    task.robust_list = (head, len);
    Ok(0)
}
