//! Signal syscalls: actions, masks, sending, waiting, the alternate stack, and return
//! from a handler.

use std::sync::Arc;

use crate::errno::{Errno, SysResult};
use crate::kernel::signal::{
    check_signal, SigAction, SigInfo, SigSet, StackT, MINSIGSTKSZ, SA_RESTORER, SIGKILL, SIGSTOP,
    SI_QUEUE, SI_TKILL, SI_USER, SS_AUTODISARM, SS_DISABLE, SS_ONSTACK,
};
use crate::kernel::{signal_frame, Task};
use crate::mm::{UserAddr, UserPtr};

/// The sigset size the kernel takes (`sizeof(kernel sigset_t)`).
const SIGSET_SIZE: usize = 8;

const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;

/// Flags `rt_sigaction` accepts (Linux ignores unknown bits but reports them back; keep
/// what applications set).
const SA_KNOWN: u64 =
    0x1 | 0x2 | 0x4 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x4000_0000 | 0x8000_0000;

pub fn rt_sigaction(
    task: &mut Task,
    sig: i32,
    act: UserAddr,
    oldact: UserAddr,
    sigsetsize: usize,
) -> SysResult<i64> {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let sig = check_signal(sig)?;
    let new = if act.is_null() {
        None
    } else {
        Some(task.mm.read(UserPtr::<SigAction>::new(act))?)
    };
    if new.is_some() && (sig == SIGKILL || sig == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    let sighand = task.group.sighand();
    let old = {
        let mut actions = sighand.lock().unwrap_or_else(|e| e.into_inner());
        let old = actions.get(sig);
        if let Some(mut a) = new {
            a.mask = SigSet(a.mask).blockable().0;
            a.flags &= SA_KNOWN | SA_RESTORER;
            actions.set(sig, a);
            if actions.is_ignored(sig) {
                // Setting a signal to be ignored discards what is pending of it.
                drop(actions);
                task.group.state().pending.discard(sig);
                for t in task.group.state().threads.clone() {
                    t.signals().pending.discard(sig);
                }
            }
        }
        old
    };
    if !oldact.is_null() {
        task.mm.write(UserPtr::new(oldact), &old)?;
    }
    Ok(0)
}

pub fn rt_sigprocmask(
    task: &mut Task,
    how: i32,
    set: UserAddr,
    oldset: UserAddr,
    sigsetsize: usize,
) -> SysResult<i64> {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = if set.is_null() {
        None
    } else {
        Some(SigSet(task.mm.read(UserPtr::<u64>::new(set))?))
    };
    let old = task.handle.signals().mask;
    if let Some(new) = new {
        let mask = match how {
            SIG_BLOCK => SigSet(old.0 | new.0),
            SIG_UNBLOCK => SigSet(old.0 & !new.0),
            SIG_SETMASK => new,
            _ => return Err(Errno::EINVAL),
        };
        task.handle.signals().mask = mask.blockable();
    }
    if !oldset.is_null() {
        task.mm.write(UserPtr::<u64>::new(oldset), &old.0)?;
    }
    Ok(0)
}

pub fn rt_sigreturn(task: &mut Task) -> SysResult<i64> {
    let restored = match signal_frame::restore(&task.mm, &mut task.regs, task.ctx.fpu_mut()) {
        Ok(r) => r,
        Err(_) => {
            // A bad frame: Linux sends SIGSEGV.
            task.group.begin_exit(crate::kernel::ExitStatus::Signaled(
                crate::kernel::signal::SIGSEGV,
            ));
            task.exit = Some(crate::kernel::ExitStatus::Signaled(
                crate::kernel::signal::SIGSEGV,
            ));
            return Ok(0);
        }
    };
    task.handle.signals().mask = restored.mask.blockable();
    // uc_stack as restored: applied like sigaltstack, errors ignored (as Linux does).
    let _ = set_altstack(task, restored.stack);
    // rax comes from the frame: return it unchanged.
    Ok(task.regs.rax as i64)
}

pub fn rt_sigpending(task: &mut Task, set: UserAddr, sigsetsize: usize) -> SysResult<i64> {
    if sigsetsize > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let own = task.handle.signals().pending.set().0;
    let shared = task.group.state().pending.set().0;
    let mask = task.handle.signals().mask.0;
    let pending = (own | shared) & mask;
    task.mm
        .copy_out(set, &pending.to_le_bytes()[..sigsetsize])?;
    Ok(0)
}

pub fn rt_sigsuspend(task: &mut Task, set: UserAddr, sigsetsize: usize) -> SysResult<i64> {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let mask = SigSet(task.mm.read(UserPtr::<u64>::new(set))?).blockable();
    {
        let mut s = task.handle.signals();
        s.saved_mask = Some(s.mask);
        s.mask = mask;
    }
    // Sleep until a signal: the restart value becomes EINTR when a handler runs, and the
    // saved mask comes back after it.
    let r: SysResult<()> = task.block_until(None, || Ok(None));
    match r {
        Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        other => other.map(|()| 0),
    }
}

pub fn pause(task: &mut Task) -> SysResult<i64> {
    let r: SysResult<()> = task.block_until(None, || Ok(None));
    match r {
        Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        other => other.map(|()| 0),
    }
}

pub fn sigaltstack(task: &mut Task, ss: UserAddr, old: UserAddr) -> SysResult<i64> {
    let current = task.altstack;
    let on_stack =
        current.flags & SS_DISABLE == 0 && task.regs.rsp.wrapping_sub(current.sp) < current.size;
    if !ss.is_null() {
        let new: StackT = task.mm.read(UserPtr::new(ss))?;
        if on_stack {
            return Err(Errno::EPERM);
        }
        set_altstack(task, new)?;
    }
    if !old.is_null() {
        let report = StackT {
            flags: if on_stack { SS_ONSTACK } else { current.flags },
            ..current
        };
        task.mm.write(UserPtr::new(old), &report)?;
    }
    Ok(0)
}

fn set_altstack(task: &mut Task, new: StackT) -> SysResult<()> {
    let mode = new.flags & !SS_AUTODISARM;
    if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
        return Err(Errno::EINVAL);
    }
    if mode == SS_DISABLE {
        task.altstack = StackT {
            flags: SS_DISABLE,
            ..StackT::default()
        };
        return Ok(());
    }
    if new.size < MINSIGSTKSZ {
        return Err(Errno::ENOMEM);
    }
    task.altstack = StackT {
        flags: new.flags & SS_AUTODISARM,
        ..new
    };
    Ok(())
}

/// The sender's identity for `si_pid`/`si_uid`.
pub(super) fn user_info(task: &Task, sig: i32, code: i32) -> SigInfo {
    SigInfo::user(sig, code, task.tgid(), task.creds.uid)
}

pub fn kill(task: &mut Task, pid: i32, sig: i32) -> SysResult<i64> {
    if sig != 0 {
        check_signal(sig)?;
    }
    let targets: Vec<_> = match pid {
        p if p > 0 => vec![task.kernel.group(p).ok_or(Errno::ESRCH)?],
        0 | -1 | i32::MIN => {
            let my_pgid = task.group.state().pgid;
            let init = task.kernel.tables().init.clone();
            task.kernel
                .groups()
                .into_iter()
                .filter(|g| {
                    if pid == 0 {
                        g.state().pgid == my_pgid
                    } else {
                        // kill(-1): every process but init and the caller.
                        !init.as_ref().is_some_and(|i| Arc::ptr_eq(i, g))
                            && !Arc::ptr_eq(g, &task.group)
                    }
                })
                .collect()
        }
        p => {
            let pgid = -p;
            task.kernel
                .groups()
                .into_iter()
                .filter(|g| g.state().pgid == pgid)
                .collect()
        }
    };
    let live: Vec<_> = targets
        .into_iter()
        .filter(|g| g.state().zombie.is_none() || pid > 0)
        .collect();
    if live.is_empty() {
        return Err(Errno::ESRCH);
    }
    if sig == 0 {
        return Ok(0);
    }
    for g in live {
        if g.state().zombie.is_some() {
            continue;
        }
        Task::send_to_group(&task.kernel, &g, user_info(task, sig, SI_USER));
    }
    Ok(0)
}

pub(super) fn send_to_thread(
    task: &Task,
    tgid: Option<i32>,
    tid: i32,
    sig: i32,
    info: SigInfo,
) -> SysResult<i64> {
    if tid <= 0 || tgid.is_some_and(|t| t <= 0) {
        return Err(Errno::EINVAL);
    }
    if sig != 0 {
        check_signal(sig)?;
    }
    let (handle, group) = task.kernel.thread(tid).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|t| t != group.tgid) {
        return Err(Errno::ESRCH);
    }
    if sig == 0 {
        return Ok(0);
    }
    if sig == SIGKILL || sig == crate::kernel::signal::SIGCONT || sig == SIGSTOP {
        // These act on the whole process.
        Task::send_to_group(&task.kernel, &group, info);
        return Ok(0);
    }
    let ignored = group
        .sighand()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_ignored(sig);
    if !ignored {
        if !handle.signals().pending.push(info) {
            return Err(Errno::EAGAIN);
        }
        handle.kick();
    }
    Ok(0)
}

pub fn tgkill(task: &mut Task, tgid: i32, tid: i32, sig: i32) -> SysResult<i64> {
    let info = user_info(task, sig, SI_TKILL);
    send_to_thread(task, Some(tgid), tid, sig, info)
}

pub fn tkill(task: &mut Task, tid: i32, sig: i32) -> SysResult<i64> {
    let info = user_info(task, sig, SI_TKILL);
    send_to_thread(task, None, tid, sig, info)
}

pub(super) fn queued_info(task: &Task, sig: i32, uinfo: UserAddr) -> SysResult<SigInfo> {
    let mut raw = [0u8; 128];
    task.mm.copy_in(uinfo, &mut raw)?;
    let mut info = SigInfo::from_bytes(&raw);
    // Only the kernel may claim to be the kernel or kill(2) (unless it is to oneself).
    if info.code >= 0 || info.code == SI_TKILL {
        return Err(Errno::EPERM);
    }
    info.signo = sig;
    if info.code != SI_QUEUE {
        info.code = SI_QUEUE.min(info.code);
    }
    Ok(info)
}

pub fn rt_sigqueueinfo(task: &mut Task, tgid: i32, sig: i32, uinfo: UserAddr) -> SysResult<i64> {
    check_signal(sig)?;
    let info = queued_info(task, sig, uinfo)?;
    let group = task.kernel.group(tgid).ok_or(Errno::ESRCH)?;
    if !Task::send_to_group(&task.kernel, &group, info) {
        return Err(Errno::EAGAIN);
    }
    Ok(0)
}

pub fn rt_tgsigqueueinfo(
    task: &mut Task,
    tgid: i32,
    tid: i32,
    sig: i32,
    uinfo: UserAddr,
) -> SysResult<i64> {
    check_signal(sig)?;
    let info = queued_info(task, sig, uinfo)?;
    send_to_thread(task, Some(tgid), tid, sig, info)
}

pub fn rt_sigtimedwait(
    task: &mut Task,
    set: UserAddr,
    info: UserAddr,
    timeout: UserAddr,
    sigsetsize: usize,
) -> SysResult<i64> {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let wanted = SigSet(task.mm.read(UserPtr::<u64>::new(set))?).blockable();
    let deadline = if timeout.is_null() {
        None
    } else {
        Some(std::time::Instant::now() + super::time::read_timespec(task, timeout)?)
    };
    // Everything outside `wanted` counts as blocked for the dequeue.
    let others = SigSet(!wanted.0);
    let found = task.block_until(deadline, || {
        let own = task.handle.signals().pending.pop(others);
        Ok(own.or_else(|| task.group.state().pending.pop(others)))
    });
    let got = match found {
        Ok(i) => i,
        Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
        Err(Errno::ERESTARTSYS) => return Err(Errno::EINTR),
        Err(e) => return Err(e),
    };
    if !info.is_null() {
        task.mm.copy_out(info, &got.bytes())?;
    }
    Ok(i64::from(got.signo))
}
