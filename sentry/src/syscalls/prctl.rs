//! prctl, and seccomp's strict mode.

use std::sync::atomic::Ordering;

use crate::errno::{Errno, SysResult};
use crate::kernel::creds::{bit, cap_valid, CAP_SETPCAP};
use crate::kernel::signal::NSIG;
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};

const PR_SET_PDEATHSIG: i32 = 1;
const PR_GET_PDEATHSIG: i32 = 2;
const PR_GET_DUMPABLE: i32 = 3;
const PR_SET_DUMPABLE: i32 = 4;
const PR_GET_KEEPCAPS: i32 = 7;
const PR_SET_KEEPCAPS: i32 = 8;
const PR_SET_NAME: i32 = 15;
const PR_GET_NAME: i32 = 16;
const PR_GET_SECCOMP: i32 = 21;
const PR_SET_SECCOMP: i32 = 22;
const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const PR_GET_SECUREBITS: i32 = 27;
const PR_GET_TIMERSLACK: i32 = 30;
const PR_SET_TIMERSLACK: i32 = 29;
const PR_GET_TID_ADDRESS: i32 = 40;
const PR_SET_CHILD_SUBREAPER: i32 = 36;
const PR_GET_CHILD_SUBREAPER: i32 = 37;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const PR_GET_NO_NEW_PRIVS: i32 = 39;
const PR_CAP_AMBIENT: i32 = 47;

const PR_CAP_AMBIENT_IS_SET: u64 = 1;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_LOWER: u64 = 3;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;

/// `SECBIT_KEEP_CAPS`, the one secure bit kept.
const SECBIT_KEEP_CAPS: i64 = 1 << 4;

const SECCOMP_MODE_STRICT: u64 = 1;
const SECCOMP_SET_MODE_STRICT: u32 = 0;

/// `TASK_COMM_LEN`.
const COMM_LEN: usize = 16;

pub fn prctl(
    task: &mut Task,
    option: i32,
    arg2: u64,
    arg3: u64,
    arg4: u64,
    arg5: u64,
) -> SysResult<i64> {
    let control = &task.handle.control;
    match option {
        PR_SET_PDEATHSIG => {
            let sig = i32::try_from(arg2).ok().filter(|s| (0..=NSIG).contains(s));
            control
                .pdeath_signal
                .store(sig.ok_or(Errno::EINVAL)?, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            let sig = control.pdeath_signal.load(Ordering::Relaxed);
            task.mm
                .write(UserPtr::<i32>::new(UserAddr::new(arg2)), &sig)?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(i64::from(
            task.group.control.dumpable.load(Ordering::Relaxed),
        )),
        PR_SET_DUMPABLE => {
            let value = match arg2 {
                0 | 1 => i32::from(arg2 == 1),
                _ => return Err(Errno::EINVAL),
            };
            task.group.control.dumpable.store(value, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_KEEPCAPS => Ok(i64::from(task.creds.keep_caps)),
        PR_SET_KEEPCAPS => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            task.creds.keep_caps = arg2 == 1;
            Ok(0)
        }
        PR_GET_SECUREBITS => Ok(if task.creds.keep_caps {
            SECBIT_KEEP_CAPS
        } else {
            0
        }),
        PR_SET_NAME => {
            let mut name = vec![0u8; COMM_LEN - 1];
            let read = task.mm.read_c_string(UserAddr::new(arg2), COMM_LEN - 2);
            let name = match read {
                Ok(n) => n,
                // Longer than the name holds: its first 15 bytes.
                Err(Errno::ENAMETOOLONG) => {
                    task.mm.copy_in(UserAddr::new(arg2), &mut name)?;
                    name
                }
                Err(e) => return Err(e),
            };
            control.set_name(Some(&name));
            Ok(0)
        }
        PR_GET_NAME => {
            let mut out = [0u8; COMM_LEN];
            let name = control.name().unwrap_or_else(|| exe_name(task));
            let n = name.len().min(COMM_LEN - 1);
            out[..n].copy_from_slice(&name[..n]);
            task.mm.copy_out(UserAddr::new(arg2), &out)?;
            Ok(0)
        }
        PR_SET_CHILD_SUBREAPER => {
            task.group
                .control
                .child_subreaper
                .store(arg2 != 0, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            let on = task.group.control.child_subreaper.load(Ordering::Relaxed);
            task.mm
                .write(UserPtr::<i32>::new(UserAddr::new(arg2)), &i32::from(on))?;
            Ok(0)
        }
        PR_GET_SECCOMP => Ok(i64::from(control.seccomp_strict.load(Ordering::Relaxed))),
        PR_SET_SECCOMP => {
            if arg2 != SECCOMP_MODE_STRICT {
                log::warn!("prctl(PR_SET_SECCOMP, {arg2}): only strict mode is served (EINVAL)");
                return Err(Errno::EINVAL);
            }
            control.seccomp_strict.store(true, Ordering::Relaxed);
            Ok(0)
        }
        PR_CAPBSET_READ => {
            if !cap_valid(arg2) {
                return Err(Errno::EINVAL);
            }
            Ok(i64::from(task.creds.caps.bounding & (1 << arg2) != 0))
        }
        PR_CAPBSET_DROP => {
            if !task.creds.capable(CAP_SETPCAP) {
                return Err(Errno::EPERM);
            }
            if !cap_valid(arg2) {
                return Err(Errno::EINVAL);
            }
            task.creds.caps.bounding &= !(1 << arg2);
            Ok(0)
        }
        PR_SET_TIMERSLACK => {
            let slack = if arg2 == 0 {
                crate::kernel::control::DEFAULT_TIMER_SLACK_NS
            } else {
                arg2
            };
            control.timer_slack_ns.store(slack, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_TIMERSLACK => {
            Ok(i64::try_from(control.timer_slack_ns.load(Ordering::Relaxed)).unwrap_or(i64::MAX))
        }
        PR_GET_TID_ADDRESS => {
            let addr = task.clear_child_tid.get();
            task.mm
                .write(UserPtr::<u64>::new(UserAddr::new(arg2)), &addr)?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if arg2 != 1 || arg3 != 0 || arg4 != 0 || arg5 != 0 {
                return Err(Errno::EINVAL);
            }
            task.creds.no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => {
            if arg2 != 0 || arg3 != 0 || arg4 != 0 || arg5 != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(i64::from(task.creds.no_new_privs))
        }
        PR_CAP_AMBIENT => cap_ambient(task, arg2, arg3, arg4, arg5),
        _ => {
            log::warn!("prctl option {option}: not implemented (EINVAL)");
            Err(Errno::EINVAL)
        }
    }
}

/// The executable's name, the thread's name until one is set.
fn exe_name(task: &Task) -> Vec<u8> {
    task.fs
        .exe()
        .map(|p| p.dentry.name.clone())
        .unwrap_or_default()
}

fn cap_ambient(task: &mut Task, op: u64, cap: u64, arg4: u64, arg5: u64) -> SysResult<i64> {
    let caps = &mut task.creds.caps;
    if op == PR_CAP_AMBIENT_CLEAR_ALL {
        if cap != 0 || arg4 != 0 || arg5 != 0 {
            return Err(Errno::EINVAL);
        }
        caps.ambient = 0;
        return Ok(0);
    }
    if !cap_valid(cap) || arg4 != 0 || arg5 != 0 {
        return Err(Errno::EINVAL);
    }
    let b = bit(u32::try_from(cap).unwrap_or(0));
    match op {
        PR_CAP_AMBIENT_IS_SET => Ok(i64::from(caps.ambient & b != 0)),
        PR_CAP_AMBIENT_RAISE => {
            if caps.permitted & b == 0 || caps.inheritable & b == 0 {
                return Err(Errno::EPERM);
            }
            caps.ambient |= b;
            Ok(0)
        }
        PR_CAP_AMBIENT_LOWER => {
            caps.ambient &= !b;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn seccomp(task: &mut Task, op: u32, flags: u32, args: UserAddr) -> SysResult<i64> {
    if op != SECCOMP_SET_MODE_STRICT {
        log::warn!("seccomp operation {op}: only strict mode is served (EINVAL)");
        return Err(Errno::EINVAL);
    }
    if flags != 0 || !args.is_null() {
        return Err(Errno::EINVAL);
    }
    task.handle
        .control
        .seccomp_strict
        .store(true, Ordering::Relaxed);
    Ok(0)
}
