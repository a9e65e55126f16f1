//! Process and thread lifetime and identity: clone/fork/vfork, execve, exit, wait4, the
//! IDs, arch_prctl, set_tid_address, set_robust_list, process groups and sessions.

use crate::errno::{Errno, SysResult};
use crate::kernel::clone::{CloneArgs, CLONE_VFORK, CLONE_VM};
use crate::kernel::process::{JobEvent, ThreadGroup};
use crate::kernel::signal::{SigInfo, CLD_CONTINUED, CLD_EXITED, CLD_KILLED, CLD_STOPPED, SIGCHLD};
use crate::kernel::usage::Usage;
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

/// The longest argument list `execve` reads (pointers), and one string's limit.
const MAX_ARGS: usize = 0x7fff_ffff / 8;

pub fn exit(task: &mut Task, status: i32) -> SysResult<i64> {
    task.exit = Some(ExitStatus::Exited(status & 0xff));
    Ok(0)
}

pub fn exit_group(task: &mut Task, status: i32) -> SysResult<i64> {
    let status = ExitStatus::Exited(status & 0xff);
    task.group.begin_exit(status);
    task.exit = Some(status);
    Ok(0)
}

pub fn clone(
    task: &mut Task,
    flags: u64,
    stack: u64,
    parent_tid: UserAddr,
    child_tid: UserAddr,
    tls: u64,
) -> SysResult<i64> {
    let exit_signal = i32::try_from(flags & 0xff).unwrap_or(0);
    task.clone_task(CloneArgs {
        flags: flags & !0xff,
        stack,
        parent_tid,
        child_tid,
        tls,
        exit_signal,
    })
}

pub fn fork(task: &mut Task) -> SysResult<i64> {
    task.clone_task(CloneArgs {
        flags: 0,
        stack: 0,
        parent_tid: UserAddr::NULL,
        child_tid: UserAddr::NULL,
        tls: 0,
        exit_signal: SIGCHLD,
    })
}

pub fn vfork(task: &mut Task) -> SysResult<i64> {
    task.clone_task(CloneArgs {
        flags: CLONE_VM | CLONE_VFORK,
        stack: 0,
        parent_tid: UserAddr::NULL,
        child_tid: UserAddr::NULL,
        tls: 0,
        exit_signal: SIGCHLD,
    })
}

/// `struct clone_args` of clone3, up to `set_tid_size` (the fields Bulwark reads).
#[repr(C)]
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
struct Clone3Args {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

pub fn clone3(task: &mut Task, args: UserAddr, size: usize) -> SysResult<i64> {
    // CLONE_ARGS_SIZE_VER0 is 64 bytes; larger structs must be zero past what we read.
    if !(64..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let a: Clone3Args = task.mm.read(UserPtr::new(args))?;
    if size > 64 {
        let mut rest = vec![0u8; size - 64];
        task.mm.copy_in(args.checked_add(64)?, &mut rest)?;
        if rest.iter().any(|&b| b != 0) {
            log::warn!("clone3: set_tid/cgroup not implemented (E2BIG)");
            return Err(Errno::E2BIG);
        }
    }
    if a.exit_signal > 64 || a.flags & 0xff != 0 {
        return Err(Errno::EINVAL);
    }
    let stack = if a.stack != 0 {
        a.stack.checked_add(a.stack_size).ok_or(Errno::EINVAL)?
    } else {
        0
    };
    task.clone_task(CloneArgs {
        flags: a.flags,
        stack,
        parent_tid: UserAddr::new(a.parent_tid),
        child_tid: UserAddr::new(a.child_tid),
        tls: a.tls,
        exit_signal: i32::try_from(a.exit_signal).unwrap_or(0),
    })
}

/// Reads a NULL-terminated array of string pointers (argv or envp).
fn read_strings(task: &Task, array: UserAddr) -> SysResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if array.is_null() {
        return Ok(out);
    }
    let mut total = 0usize;
    for i in 0..MAX_ARGS as u64 {
        let ptr: u64 = task.mm.read(UserPtr::<u64>::new(array).offset(i)?)?;
        if ptr == 0 {
            return Ok(out);
        }
        let s = task
            .mm
            .read_c_string(UserAddr::new(ptr), crate::loader::MAX_ARG_STRLEN)
            .map_err(|e| {
                if e == Errno::ENAMETOOLONG {
                    Errno::E2BIG
                } else {
                    e
                }
            })?;
        total = total.saturating_add(s.len() + 1 + 8);
        if total > 2 * 1024 * 1024 {
            return Err(Errno::E2BIG);
        }
        out.push(s);
    }
    Err(Errno::E2BIG)
}

pub fn execve(task: &mut Task, path: UserAddr, argv: UserAddr, envp: UserAddr) -> SysResult<i64> {
    let path = task.mm.read_c_string(path, 4095)?;
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let argv = read_strings(task, argv)?;
    let envp = read_strings(task, envp)?;
    task.exec(&path, argv, envp)
}

/// `execveat` flags.
const AT_SYMLINK_NOFOLLOW: i32 = 0x100;
const AT_EMPTY_PATH: i32 = 0x1000;

pub fn execveat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    argv: UserAddr,
    envp: UserAddr,
    flags: i32,
) -> SysResult<i64> {
    use crate::kernel::clone::ExecTarget;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = task.mm.read_c_string(path, 4095)?;
    let argv = read_strings(task, argv)?;
    let envp = read_strings(task, envp)?;
    if name.is_empty() {
        if flags & AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        // fexecve: the program is the descriptor's file; Linux names it /dev/fd/N.
        let at = task.fds.get(dirfd)?.path().cloned().ok_or(Errno::EACCES)?;
        let shown = format!("/dev/fd/{dirfd}").into_bytes();
        return task.exec_at(ExecTarget::Exactly(at), &shown, argv, envp);
    }
    let start = super::fs::dir_of(task, dirfd, &name)?;
    let follow = flags & AT_SYMLINK_NOFOLLOW == 0;
    task.exec_at(ExecTarget::Path { start, follow }, &name, argv, envp)
}

const WNOHANG: i32 = 1;
const WUNTRACED: i32 = 2;
const WCONTINUED: i32 = 8;
const WNOWAIT: i32 = 0x0100_0000;
const WNOTHREAD: i32 = 0x2000_0000;
const WALL: i32 = 0x4000_0000;
const WCLONE: i32 = -0x8000_0000;

/// What a wait found.
struct Reaped {
    pid: i32,
    /// The `wait4` status word.
    status: i32,
    /// For `waitid`: `si_code` (`CLD_*`) and `si_status`.
    code: i32,
    value: i32,
    /// A reaped child's CPU time (with its own reaped children's); zero otherwise.
    usage: Usage,
}

pub fn wait4(
    task: &mut Task,
    pid: i32,
    status: UserAddr,
    options: i32,
    rusage: UserAddr,
) -> SysResult<i64> {
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    let group = std::sync::Arc::clone(&task.group);
    let which = match pid {
        -1 => Which::Any,
        0 => Which::Pgid(group.state().pgid),
        p if p > 0 => Which::Pid(p),
        p => Which::Pgid(p.checked_neg().ok_or(Errno::ESRCH)?),
    };
    let events = Events {
        exited: true,
        stopped: options & WUNTRACED != 0,
        continued: options & WCONTINUED != 0,
    };
    let Some(r) = wait_child(task, which, events, options)? else {
        return Ok(0);
    };
    if !status.is_null() {
        task.mm.write(UserPtr::<i32>::new(status), &r.status)?;
    }
    if !rusage.is_null() {
        task.mm.copy_out(rusage, &rusage_bytes(r.usage, 0))?;
    }
    Ok(i64::from(r.pid))
}

/// Waits (unless `WNOHANG`) until a child matching `which` has one of `events` to report.
fn wait_child(
    task: &Task,
    which: Which,
    events: Events,
    options: i32,
) -> SysResult<Option<Reaped>> {
    let group = std::sync::Arc::clone(&task.group);
    let _reg = group.child_events.register(&task.handle.waker);
    task.block_until(None, || {
        match find_child(task, &group, which, events, options)? {
            Some(r) => Ok(Some(Some(r))),
            None if options & WNOHANG != 0 => Ok(Some(None)),
            None => Ok(None),
        }
    })
}

/// Which children a wait is for.
#[derive(Clone, Copy)]
enum Which {
    Any,
    Pid(i32),
    Pgid(i32),
}

/// Which state changes a wait reports.
#[derive(Clone, Copy)]
struct Events {
    exited: bool,
    stopped: bool,
    continued: bool,
}

/// Looks for a child matching `which` with something to report; `ECHILD` if none
/// matches. Without `WNOWAIT` what it reports is collected (a zombie is reaped).
fn find_child(
    task: &Task,
    group: &ThreadGroup,
    which: Which,
    events: Events,
    options: i32,
) -> SysResult<Option<Reaped>> {
    let children = group.state().children.clone();
    let consume = options & WNOWAIT == 0;
    let mut any = false;
    for child in children {
        let mut s = child.state();
        let matches = match which {
            Which::Any => true,
            Which::Pid(p) => child.tgid == p,
            Which::Pgid(g) => s.pgid == g,
        };
        // Without __WALL, __WCLONE selects children that report with a signal other than
        // SIGCHLD, and only those.
        let clone_child = s.exit_signal != SIGCHLD;
        if !matches || (options & WALL == 0 && (options & WCLONE != 0) != clone_child) {
            continue;
        }
        any = true;
        let pid = child.tgid;
        if let Some(exit) = s.zombie.filter(|_| events.exited) {
            let (status, code, value) = match exit {
                ExitStatus::Exited(c) => ((c & 0xff) << 8, CLD_EXITED, c & 0xff),
                ExitStatus::Signaled(sig) => (sig & 0x7f, CLD_KILLED, sig),
            };
            drop(s);
            let mut usage = task.kernel.group_usage(&child);
            usage += child.usage.children();
            if consume {
                group.state().children.retain(|c| c.tgid != pid);
                task.kernel.tables().groups.remove(&pid);
                group.usage.add_children(usage);
            }
            return Ok(Some(Reaped {
                pid,
                status,
                code,
                value,
                usage,
            }));
        }
        match s.job_event {
            Some(JobEvent::Stopped(sig)) if events.stopped => {
                if consume {
                    s.job_event = None;
                }
                let status = (sig << 8) | 0x7f;
                return Ok(Some(Reaped {
                    pid,
                    status,
                    code: CLD_STOPPED,
                    value: sig,
                    usage: Usage::default(),
                }));
            }
            Some(JobEvent::Continued) if events.continued => {
                if consume {
                    s.job_event = None;
                }
                let value = crate::kernel::signal::SIGCONT;
                return Ok(Some(Reaped {
                    pid,
                    status: 0xffff,
                    code: CLD_CONTINUED,
                    value,
                    usage: Usage::default(),
                }));
            }
            _ => {}
        }
    }
    if any {
        Ok(None)
    } else {
        Err(Errno::ECHILD)
    }
}

const P_ALL: i32 = 0;
const P_PID: i32 = 1;
const P_PGID: i32 = 2;
const P_PIDFD: i32 = 3;
const WSTOPPED: i32 = 2;
const WEXITED: i32 = 4;

pub fn waitid(
    task: &mut Task,
    idtype: i32,
    id: i32,
    infop: UserAddr,
    options: i32,
    rusage: UserAddr,
) -> SysResult<i64> {
    if options & !(WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)
        != 0
        || options & (WSTOPPED | WEXITED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    let group = std::sync::Arc::clone(&task.group);
    let which = match idtype {
        P_ALL => Which::Any,
        P_PID if id > 0 => Which::Pid(id),
        P_PGID if id >= 0 => Which::Pgid(if id == 0 { group.state().pgid } else { id }),
        P_PID | P_PGID => return Err(Errno::EINVAL),
        P_PIDFD => {
            let child = super::pidfd::group_of(task, id)?;
            // Only the caller's own child can be waited for.
            if !group
                .state()
                .children
                .iter()
                .any(|c| std::sync::Arc::ptr_eq(c, &child))
            {
                return Err(Errno::ECHILD);
            }
            Which::Pid(child.tgid)
        }
        // P_ALL, P_PID, P_PGID and P_PIDFD are all there is.
        _ => return Err(Errno::EINVAL),
    };
    let events = Events {
        exited: options & WEXITED != 0,
        stopped: options & WSTOPPED != 0,
        continued: options & WCONTINUED != 0,
    };
    let found = wait_child(task, which, events, options)?;
    if !infop.is_null() {
        let info = match &found {
            Some(r) => SigInfo {
                status: r.value,
                ..SigInfo::user(SIGCHLD, r.code, r.pid, task.creds.uid)
            },
            // WNOHANG with nothing to report: a zeroed siginfo (si_pid 0).
            None => SigInfo::default(),
        };
        task.mm.copy_out(infop, &info.bytes())?;
    }
    if !rusage.is_null() {
        let usage = found.as_ref().map_or(Usage::default(), |r| r.usage);
        task.mm.copy_out(rusage, &rusage_bytes(usage, 0))?;
    }
    Ok(0)
}

/// `struct rusage` (144 bytes): user and system time as timevals, then 14 longs of which
/// the Sentry fills `ru_maxrss` (KiB) only.
fn rusage_bytes(usage: Usage, maxrss_kb: u64) -> [u8; 144] {
    let mut b = [0u8; 144];
    let timeval = |d: std::time::Duration| {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&d.as_secs().to_ne_bytes());
        t[8..].copy_from_slice(&u64::from(d.subsec_micros()).to_ne_bytes());
        t
    };
    b[..16].copy_from_slice(&timeval(usage.user));
    b[16..32].copy_from_slice(&timeval(usage.system));
    b[32..40].copy_from_slice(&maxrss_kb.to_ne_bytes());
    b
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

pub fn getrusage(task: &mut Task, who: i32, usage: UserAddr) -> SysResult<i64> {
    let on_thread = task.kernel.platform.runs_on_caller_thread();
    // ru_maxrss: the resident set now stands for its peak (the peak is not tracked).
    let rss_kb = task.mm.resident_pages() * (crate::mm::PAGE_SIZE / 1024);
    let (u, rss) = match who {
        RUSAGE_SELF => (task.kernel.group_usage(&task.group), rss_kb),
        RUSAGE_THREAD => (task.handle.usage.usage(on_thread), rss_kb),
        RUSAGE_CHILDREN => (task.group.usage.children(), 0),
        _ => return Err(Errno::EINVAL),
    };
    task.mm.copy_out(usage, &rusage_bytes(u, rss))?;
    Ok(0)
}

pub fn times(task: &mut Task, buf: UserAddr) -> SysResult<i64> {
    let ticks = crate::kernel::usage::clock_ticks;
    if !buf.is_null() {
        let own = task.kernel.group_usage(&task.group);
        let children = task.group.usage.children();
        let mut b = [0u8; 32];
        for (i, d) in [own.user, own.system, children.user, children.system]
            .into_iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&ticks(d).to_ne_bytes());
        }
        task.mm.copy_out(buf, &b)?;
    }
    // Ticks since boot, as Linux's jiffies-based answer (which starts near -5 minutes of
    // ticks; only differences are meaningful).
    Ok(i64::try_from(ticks(task.kernel.uptime())).unwrap_or(i64::MAX))
}

pub fn getpid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.tgid()))
}

pub fn gettid(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.tid()))
}

pub fn getppid(task: &mut Task) -> SysResult<i64> {
    Ok(task.group.parent().map_or(0, |p| i64::from(p.tgid)))
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

fn group_of(task: &Task, pid: i32) -> SysResult<std::sync::Arc<ThreadGroup>> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 || pid == task.tgid() {
        return Ok(std::sync::Arc::clone(&task.group));
    }
    task.kernel.group(pid).ok_or(Errno::ESRCH)
}

pub fn getpgid(task: &mut Task, pid: i32) -> SysResult<i64> {
    Ok(i64::from(group_of(task, pid)?.state().pgid))
}

pub fn getpgrp(task: &mut Task) -> SysResult<i64> {
    Ok(i64::from(task.group.state().pgid))
}

pub fn getsid(task: &mut Task, pid: i32) -> SysResult<i64> {
    Ok(i64::from(group_of(task, pid)?.state().sid))
}

pub fn setpgid(task: &mut Task, pid: i32, pgid: i32) -> SysResult<i64> {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let target = group_of(task, pid)?;
    let is_self = std::sync::Arc::ptr_eq(&target, &task.group);
    if !is_self
        && !target
            .parent()
            .is_some_and(|p| std::sync::Arc::ptr_eq(&p, &task.group))
    {
        return Err(Errno::ESRCH);
    }
    let my_sid = task.group.state().sid;
    let mut s = target.state();
    if s.sid != my_sid {
        return Err(Errno::EPERM);
    }
    if s.sid == target.tgid {
        // A session leader cannot change its group.
        return Err(Errno::EPERM);
    }
    let pgid = if pgid == 0 { target.tgid } else { pgid };
    if pgid != target.tgid {
        drop(s);
        let exists = task.kernel.groups().iter().any(|g| {
            let gs = g.state();
            gs.pgid == pgid && gs.sid == my_sid
        });
        if !exists {
            return Err(Errno::EPERM);
        }
        s = target.state();
    }
    s.pgid = pgid;
    Ok(0)
}

pub fn setsid(task: &mut Task) -> SysResult<i64> {
    let tgid = task.tgid();
    let leads_group = task.kernel.groups().iter().any(|g| g.state().pgid == tgid);
    if leads_group {
        return Err(Errno::EPERM);
    }
    let mut s = task.group.state();
    s.sid = tgid;
    s.pgid = tgid;
    s.ctty = None;
    Ok(i64::from(tgid))
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
    Ok(i64::from(task.tid()))
}

pub fn set_robust_list(task: &mut Task, head: UserAddr, len: u64) -> SysResult<i64> {
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    task.robust_list = (head, len);
    task.handle
        .control
        .robust_list
        .store(head.get(), std::sync::atomic::Ordering::Relaxed);
    Ok(0)
}

pub fn get_robust_list(task: &mut Task, pid: i32, head: UserAddr, len: UserAddr) -> SysResult<i64> {
    let addr = if pid == 0 || pid == task.tid() {
        task.robust_list.0.get()
    } else {
        let (handle, group) = task.kernel.thread(pid).ok_or(Errno::ESRCH)?;
        if !std::sync::Arc::ptr_eq(&group, &task.group) {
            // As ptrace_may_access: the same user and group in every ID, or CAP_SYS_PTRACE.
            let view = group.view().ok_or(Errno::ESRCH)?;
            let (me, them) = (&task.creds, &view.creds);
            let same = [them.uid, them.euid, them.suid]
                .iter()
                .all(|&u| u == me.uid)
                && [them.gid, them.egid, them.sgid]
                    .iter()
                    .all(|&g| g == me.gid);
            if !same && !task.creds.capable(CAP_SYS_PTRACE) {
                return Err(Errno::EPERM);
            }
        }
        handle
            .control
            .robust_list
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    task.mm
        .write(UserPtr::<u64>::new(len), &ROBUST_LIST_HEAD_SIZE)?;
    task.mm.write(UserPtr::<u64>::new(head), &addr)?;
    Ok(0)
}

/// `CAP_SYS_PTRACE`.
const CAP_SYS_PTRACE: u32 = 19;
