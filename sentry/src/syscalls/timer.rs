//! Timers that signal: alarm, setitimer/getitimer, and the POSIX timer calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::time::{Clock, Timespec};
use crate::errno::{Errno, SysResult};
use crate::kernel::process::ThreadGroup;
use crate::kernel::signal::{check_signal, SigInfo, SIGALRM, SIGPROF, SIGVTALRM};
use crate::kernel::timer::{process_clock, thread_clock, CpuClock, PosixClock, Target};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};

const ITIMER_REAL: i32 = 0;
const ITIMER_VIRTUAL: i32 = 1;
const ITIMER_PROF: i32 = 2;
const SI_TIMER: i32 = -2;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;
const TIMER_ABSTIME: i32 = 1;
/// Linux's limit on a process's POSIX timers is RLIMIT_SIGPENDING; a fixed bound here.
const MAX_TIMERS: usize = 4096;

/// `struct itimerval`: interval then value, each a `timeval`.
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct ItimerVal {
    interval_sec: i64,
    interval_usec: i64,
    value_sec: i64,
    value_usec: i64,
}

/// `struct itimerspec`.
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct ItimerSpec {
    interval: Timespec,
    value: Timespec,
}

fn timeval(sec: i64, usec: i64) -> SysResult<Duration> {
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(
        sec.unsigned_abs(),
        u32::try_from(usec * 1000).unwrap_or(0),
    ))
}

fn timespec(t: Timespec) -> SysResult<Duration> {
    if t.sec < 0 || !(0..1_000_000_000).contains(&t.nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(
        t.sec.unsigned_abs(),
        u32::try_from(t.nsec).unwrap_or(0),
    ))
}

fn to_timespec(d: Duration) -> Timespec {
    Timespec {
        sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nsec: i64::from(d.subsec_nanos()),
    }
}

/// The process's interval timer `which` (`ITIMER_REAL`, `ITIMER_VIRTUAL`, `ITIMER_PROF`),
/// made on first use; `EINVAL` for another `which`.
fn itimer(task: &Task, which: i32) -> SysResult<u64> {
    let (signo, clock) = match which {
        ITIMER_REAL => (SIGALRM, None),
        ITIMER_VIRTUAL => (SIGVTALRM, Some(true)),
        ITIMER_PROF => (SIGPROF, Some(false)),
        _ => return Err(Errno::EINVAL),
    };
    let mut slots = task.group.itimers.lock().unwrap_or_else(|e| e.into_inner());
    let slot = &mut slots[usize::try_from(which).unwrap_or(0)];
    Ok(*slot.get_or_insert_with(|| {
        let target = Target::Process(Arc::downgrade(&task.group));
        let info = SigInfo::kernel(signo);
        match clock {
            None => task.kernel.timers.create(target, info),
            Some(user_only) => {
                let clock = process_clock(&task.kernel, &task.group, user_only);
                task.kernel.timers.create_cpu(clock, target, info)
            }
        }
    }))
}

fn itimerval(left: Duration, interval: Duration) -> ItimerVal {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    // A running timer never reports zero left (Linux rounds it up to 1 µs).
    let left = if left.is_zero() {
        left
    } else {
        left.max(Duration::from_micros(1))
    };
    ItimerVal {
        interval_sec: secs(interval),
        interval_usec: i64::from(interval.subsec_micros()),
        value_sec: secs(left),
        value_usec: i64::from(left.subsec_micros()),
    }
}

pub fn getitimer(task: &mut Task, which: i32, curr: UserAddr) -> SysResult<i64> {
    let id = itimer(task, which)?;
    let (left, interval) = task.kernel.timers.get(id).unwrap_or_default();
    task.mm
        .write(UserPtr::new(curr), &itimerval(left, interval))?;
    Ok(0)
}

pub fn setitimer(task: &mut Task, which: i32, new: UserAddr, old: UserAddr) -> SysResult<i64> {
    let id = itimer(task, which)?;
    let v: ItimerVal = if new.is_null() {
        ItimerVal::default()
    } else {
        task.mm.read(UserPtr::new(new))?
    };
    let value = timeval(v.value_sec, v.value_usec)?;
    let interval = timeval(v.interval_sec, v.interval_usec)?;
    let timers = &task.kernel.timers;
    let (left, old_interval) = if which == ITIMER_REAL {
        let deadline = (!value.is_zero()).then(|| Instant::now() + value);
        timers.set(id, deadline, interval)
    } else {
        // On the process's CPU time, from what it has used so far.
        timers.set_cpu(id, (!value.is_zero()).then_some(value), false, interval)
    }
    .unwrap_or_default();
    if !old.is_null() {
        task.mm
            .write(UserPtr::new(old), &itimerval(left, old_interval))?;
    }
    Ok(0)
}

pub fn alarm(task: &mut Task, seconds: u32) -> SysResult<i64> {
    let deadline = (seconds != 0).then(|| Instant::now() + Duration::from_secs(u64::from(seconds)));
    let (left, _) = task
        .kernel
        .timers
        .set(itimer(task, ITIMER_REAL)?, deadline, Duration::ZERO)
        .unwrap_or_default();
    // The old alarm's seconds, rounded to the nearest, and at least 1 if it was set.
    let mut secs = left.as_secs() + u64::from(left.subsec_millis() >= 500);
    if secs == 0 && !left.is_zero() {
        secs = 1;
    }
    Ok(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// `struct sigevent` (the fields Bulwark reads).
#[repr(C)]
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct SigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    pad: [i32; 11],
}

const _: () = assert!(std::mem::size_of::<SigEvent>() == 64);

/// A POSIX timer's clock: a wall clock, or a CPU clock (`CLOCK_PROCESS_CPUTIME_ID`,
/// `CLOCK_THREAD_CPUTIME_ID`, or one of `clock_getcpuclockid`'s: the complemented PID above
/// a per-thread bit and two bits of kind) with what reads it.
fn timer_clock(task: &Task, clock: i32) -> SysResult<(PosixClock, Option<CpuClock>)> {
    let process =
        |group: &Arc<ThreadGroup>, user_only| Some(process_clock(&task.kernel, group, user_only));
    let cpu = match clock {
        0 | 8 | 11 => return Ok((PosixClock::Realtime, None)),
        1 | 4 | 7 | 9 => return Ok((PosixClock::Monotonic, None)),
        2 => process(&task.group, false),
        3 => Some(thread_clock(&task.kernel, &task.group, &task.handle)),
        id if id < 0 => {
            let (kind, per_thread, pid) = (id & 3, id & 4 != 0, !(id >> 3));
            // CPUCLOCK_PROF and CPUCLOCK_SCHED count all CPU time, CPUCLOCK_VIRT user time.
            let user_only = kind == 1;
            if kind == 3 {
                return Err(Errno::EINVAL);
            }
            match (per_thread, pid) {
                (true, 0) => Some(thread_clock(&task.kernel, &task.group, &task.handle)),
                (true, tid) => {
                    // Only a thread of the caller's own process.
                    let thread = task
                        .group
                        .state()
                        .threads
                        .iter()
                        .find(|t| t.tid() == tid)
                        .cloned()
                        .ok_or(Errno::EINVAL)?;
                    Some(thread_clock(&task.kernel, &task.group, &thread))
                }
                (false, 0) => process(&task.group, user_only),
                (false, pid) => {
                    let group = task.kernel.group(pid).ok_or(Errno::EINVAL)?;
                    process(&group, user_only)
                }
            }
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok((PosixClock::Cpu, cpu))
}

pub fn timer_create(
    task: &mut Task,
    clock: i32,
    sevp: UserAddr,
    timerid: UserAddr,
) -> SysResult<i64> {
    let (kind, cpu) = timer_clock(task, clock)?;
    let mut timers = task
        .group
        .posix_timers
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if timers.len() >= MAX_TIMERS {
        return Err(Errno::EAGAIN);
    }
    let user_id = (0..).find(|i| !timers.contains_key(i)).unwrap_or(0);
    let ev = if sevp.is_null() {
        SigEvent {
            value: u64::try_from(user_id).unwrap_or(0),
            signo: SIGALRM,
            notify: SIGEV_SIGNAL,
            ..SigEvent::default()
        }
    } else {
        task.mm.read(UserPtr::new(sevp))?
    };
    let target = match ev.notify {
        SIGEV_NONE => Target::Nothing,
        SIGEV_SIGNAL => Target::Process(Arc::downgrade(&task.group)),
        SIGEV_THREAD_ID => {
            let (handle, group) = task.kernel.thread(ev.tid).ok_or(Errno::EINVAL)?;
            if !Arc::ptr_eq(&group, &task.group) {
                return Err(Errno::EINVAL);
            }
            Target::Thread(Arc::downgrade(&handle))
        }
        _ => return Err(Errno::EINVAL),
    };
    if ev.notify != SIGEV_NONE {
        check_signal(ev.signo)?;
    }
    let info = SigInfo {
        signo: ev.signo,
        code: SI_TIMER,
        pid: user_id,
        value: ev.value,
        ..SigInfo::default()
    };
    let id = match cpu {
        Some(clock) => task.kernel.timers.create_cpu(clock, target, info),
        None => task.kernel.timers.create(target, info),
    };
    timers.insert(user_id, (id, kind));
    drop(timers);
    task.mm.write(UserPtr::<i32>::new(timerid), &user_id)?;
    Ok(0)
}

/// The kernel timer behind the process's timer `id`, and its clock.
fn kernel_timer(task: &Task, id: i32) -> SysResult<(u64, PosixClock)> {
    let timers = task
        .group
        .posix_timers
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    timers.get(&id).copied().ok_or(Errno::EINVAL)
}

pub fn timer_settime(
    task: &mut Task,
    id: i32,
    flags: i32,
    new: UserAddr,
    old: UserAddr,
) -> SysResult<i64> {
    let (kid, kind) = kernel_timer(task, id)?;
    let spec: ItimerSpec = task.mm.read(UserPtr::new(new))?;
    let value = timespec(spec.value)?;
    let interval = timespec(spec.interval)?;
    let absolute = flags & TIMER_ABSTIME != 0;
    let armed = (!value.is_zero()).then_some(value);
    let timers = &task.kernel.timers;
    let (left, old_interval) = match kind {
        // Absolute on the timer's own clock.
        PosixClock::Realtime if absolute => {
            timers.set(kid, armed.map(|v| Clock::Realtime.deadline(v)), interval)
        }
        PosixClock::Monotonic if absolute => {
            timers.set(kid, armed.map(|v| Clock::Monotonic.deadline(v)), interval)
        }
        PosixClock::Realtime | PosixClock::Monotonic => {
            timers.set(kid, armed.map(|v| Instant::now() + v), interval)
        }
        PosixClock::Cpu => timers.set_cpu(kid, armed, absolute, interval),
    }
    .ok_or(Errno::EINVAL)?;
    if !old.is_null() {
        let o = ItimerSpec {
            interval: to_timespec(old_interval),
            value: to_timespec(left),
        };
        task.mm.write(UserPtr::new(old), &o)?;
    }
    Ok(0)
}

pub fn timer_gettime(task: &mut Task, id: i32, curr: UserAddr) -> SysResult<i64> {
    let (kid, _) = kernel_timer(task, id)?;
    let (left, interval) = task.kernel.timers.get(kid).ok_or(Errno::EINVAL)?;
    let c = ItimerSpec {
        interval: to_timespec(interval),
        value: to_timespec(left),
    };
    task.mm.write(UserPtr::new(curr), &c)?;
    Ok(0)
}

pub fn timer_getoverrun(task: &mut Task, id: i32) -> SysResult<i64> {
    let (kid, _) = kernel_timer(task, id)?;
    let n = task.kernel.timers.overrun(kid).ok_or(Errno::EINVAL)?;
    Ok(i64::try_from(n.min(i32::MAX as u64)).unwrap_or(0))
}

pub fn timer_delete(task: &mut Task, id: i32) -> SysResult<i64> {
    let (kid, _) = task
        .group
        .posix_timers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id)
        .ok_or(Errno::EINVAL)?;
    task.kernel.timers.delete(kid);
    Ok(0)
}

const TFD_TIMER_ABSTIME: i32 = 1;
const TFD_TIMER_CANCEL_ON_SET: i32 = 2;

pub fn timerfd_create(task: &mut Task, clock: i32, flags: i32) -> SysResult<i64> {
    use crate::vfs::file::{O_CLOEXEC, O_NONBLOCK};
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let realtime = match clock {
        0 | 8 => true,
        1 | 7 | 9 => false,
        _ => return Err(Errno::EINVAL),
    };
    let file =
        crate::vfs::timerfd::TimerFd::new(&task.kernel.timers, clock, realtime, flags & O_NONBLOCK);
    let file: Arc<dyn crate::vfs::FileDescription> = Arc::new(file);
    super::open::install(task, file, flags & O_CLOEXEC != 0)
}

pub fn timerfd_settime(
    task: &mut Task,
    fd: i32,
    flags: i32,
    new: UserAddr,
    old: UserAddr,
) -> SysResult<i64> {
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = task.fds.get(fd)?;
    let tfd = file.as_timerfd().ok_or(Errno::EINVAL)?;
    let spec: ItimerSpec = task.mm.read(UserPtr::new(new))?;
    let value = timespec(spec.value)?;
    let interval = timespec(spec.interval)?;
    let deadline = if value.is_zero() {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        let clock = if tfd.realtime {
            Clock::Realtime
        } else {
            Clock::Monotonic
        };
        Some(clock.deadline(value))
    } else {
        Some(Instant::now() + value)
    };
    tfd.reset(flags);
    let (left, old_interval) = tfd
        .timers()
        .set(tfd.id, deadline, interval)
        .ok_or(Errno::EINVAL)?;
    if !old.is_null() {
        let o = ItimerSpec {
            interval: to_timespec(old_interval),
            value: to_timespec(left),
        };
        task.mm.write(UserPtr::new(old), &o)?;
    }
    Ok(0)
}

pub fn timerfd_gettime(task: &mut Task, fd: i32, curr: UserAddr) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let tfd = file.as_timerfd().ok_or(Errno::EINVAL)?;
    let (left, interval) = tfd.timers().get(tfd.id).ok_or(Errno::EINVAL)?;
    let c = ItimerSpec {
        interval: to_timespec(interval),
        value: to_timespec(left),
    };
    task.mm.write(UserPtr::new(curr), &c)?;
    Ok(0)
}
