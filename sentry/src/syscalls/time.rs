//! Clocks and sleeps: clock_gettime, clock_getres, gettimeofday, time, nanosleep,
//! clock_nanosleep, sched_yield.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
const CLOCK_MONOTONIC_RAW: i32 = 4;
const CLOCK_REALTIME_COARSE: i32 = 5;
const CLOCK_MONOTONIC_COARSE: i32 = 6;
const CLOCK_BOOTTIME: i32 = 7;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const CLOCK_TAI: i32 = 11;

const TIMER_ABSTIME: i32 = 1;

/// `struct timespec`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    fn from_duration(d: Duration) -> Self {
        Self {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: i64::from(d.subsec_nanos()),
        }
    }
}

/// A clock the sandbox reads from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    Realtime,
    Monotonic,
    ThreadCpu,
}

impl Clock {
    fn from_id(id: i32) -> SysResult<Self> {
        match id {
            CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => {
                Ok(Self::Realtime)
            }
            CLOCK_MONOTONIC
            | CLOCK_MONOTONIC_RAW
            | CLOCK_MONOTONIC_COARSE
            | CLOCK_BOOTTIME
            | CLOCK_BOOTTIME_ALARM => Ok(Self::Monotonic),
            // The Sentry thread's CPU time stands for the task's (it runs the task's
            // syscalls and, on KVM, its guest code).
            CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => Ok(Self::ThreadCpu),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn now(self) -> Duration {
        match self {
            Self::Realtime => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
            Self::Monotonic => {
                let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                Duration::new(
                    t.tv_sec.unsigned_abs(),
                    u32::try_from(t.tv_nsec).unwrap_or(0),
                )
            }
            Self::ThreadCpu => {
                let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
                Duration::new(
                    t.tv_sec.unsigned_abs(),
                    u32::try_from(t.tv_nsec).unwrap_or(0),
                )
            }
        }
    }

    /// The `Instant` at which this clock reads `at`.
    pub fn deadline(self, at: Duration) -> Instant {
        let now = self.now();
        Instant::now() + at.saturating_sub(now)
    }
}

/// Reads a `timespec`, `EINVAL` unless 0 <= nsec < 1e9 and sec >= 0.
pub fn read_timespec(task: &Task, addr: UserAddr) -> SysResult<Duration> {
    let ts: Timespec = task.mm.read(UserPtr::new(addr))?;
    if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(
        ts.sec.unsigned_abs(),
        u32::try_from(ts.nsec).unwrap_or(0),
    ))
}

/// A clock ID for `clock_gettime`/`clock_getres`: a fixed one, or a CPU clock of a
/// process or thread as `clock_getcpuclockid`/`pthread_getcpuclockid` make them (negative:
/// the complemented PID above a per-thread bit and two bits of kind).
fn clock_of(task: &Task, id: i32) -> SysResult<Clock> {
    if id >= 0 {
        return Clock::from_id(id);
    }
    let (kind, per_thread, pid) = (id & 3, id & 4 != 0, !(id >> 3));
    if kind == 3 {
        return Err(Errno::EINVAL);
    }
    let exists = pid == 0
        || if per_thread {
            // Only a thread of the caller's own process.
            task.group.state().threads.iter().any(|t| t.tid() == pid)
        } else {
            task.kernel.group(pid).is_some()
        };
    if !exists {
        return Err(Errno::EINVAL);
    }
    // Read from the Sentry's accounting (`cpu_time`), as timers on it are
    // (`kernel::timer::process_clock`); only `clock_nanosleep` still goes by the Sentry
    // thread's CPU time and sleeps on the wall clock.
    Ok(Clock::ThreadCpu)
}

/// The CPU time a CPU clock reads, from the Sentry's accounting (`kernel::usage`); `None`
/// for the other clocks.
fn cpu_time(task: &Task, id: i32) -> Option<Duration> {
    let on_thread = task.kernel.platform.runs_on_caller_thread();
    let thread = |tid: i32| {
        let threads = task.group.state().threads.clone();
        threads
            .iter()
            .find(|t| t.tid() == tid)
            .map(|t| t.usage.usage(on_thread).total())
    };
    match id {
        CLOCK_PROCESS_CPUTIME_ID => Some(task.kernel.group_usage(&task.group).total()),
        CLOCK_THREAD_CPUTIME_ID => Some(task.handle.usage.usage(on_thread).total()),
        id if id < 0 => {
            let (per_thread, pid) = (id & 4 != 0, !(id >> 3));
            match (per_thread, pid) {
                (true, 0) => Some(task.handle.usage.usage(on_thread).total()),
                (true, tid) => thread(tid),
                (false, 0) => Some(task.kernel.group_usage(&task.group).total()),
                (false, pid) => task
                    .kernel
                    .group(pid)
                    .map(|g| task.kernel.group_usage(&g).total()),
            }
        }
        _ => None,
    }
}

pub fn clock_gettime(task: &mut Task, id: i32, tp: UserAddr) -> SysResult<i64> {
    let clock = clock_of(task, id)?;
    let now = cpu_time(task, id).unwrap_or_else(|| clock.now());
    task.mm
        .write(UserPtr::new(tp), &Timespec::from_duration(now))?;
    Ok(0)
}

/// `clock_settime`: the sandbox may not set the host's clocks (a container lacks
/// `CAP_SYS_TIME`): `EPERM` for a valid request, after Linux's `EINVAL` checks.
pub fn clock_settime(task: &mut Task, id: i32, tp: UserAddr) -> SysResult<i64> {
    let ts: Timespec = task.mm.read(UserPtr::new(tp))?;
    if clock_of(task, id)? != Clock::Realtime
        || !(0..1_000_000_000).contains(&ts.nsec)
        || ts.sec < 0
    {
        return Err(Errno::EINVAL);
    }
    Err(Errno::EPERM)
}

pub fn clock_getres(task: &mut Task, id: i32, res: UserAddr) -> SysResult<i64> {
    let clock = clock_of(task, id)?;
    if !res.is_null() {
        let coarse = matches!(id, CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE);
        let r = if coarse {
            Timespec {
                sec: 0,
                nsec: 4_000_000,
            }
        } else {
            Timespec { sec: 0, nsec: 1 }
        };
        let _ = clock;
        task.mm.write(UserPtr::new(res), &r)?;
    }
    Ok(0)
}

pub fn gettimeofday(task: &mut Task, tv: UserAddr, tz: UserAddr) -> SysResult<i64> {
    if !tv.is_null() {
        let now = Clock::Realtime.now();
        let timeval = Timespec {
            sec: i64::try_from(now.as_secs()).unwrap_or(0),
            nsec: i64::from(now.subsec_micros()),
        };
        task.mm.write(UserPtr::new(tv), &timeval)?;
    }
    if !tz.is_null() {
        // struct timezone: UTC, no DST.
        task.mm.write(UserPtr::<u64>::new(tz), &0)?;
    }
    Ok(0)
}

pub fn time(task: &mut Task, tloc: UserAddr) -> SysResult<i64> {
    let now = i64::try_from(Clock::Realtime.now().as_secs()).unwrap_or(0);
    if !tloc.is_null() {
        task.mm.write(UserPtr::<i64>::new(tloc), &now)?;
    }
    Ok(now)
}

/// Sleeps until `deadline`; on a signal, writes the time left to `rem` (if given).
fn sleep_until(task: &mut Task, deadline: Instant, rem: UserAddr) -> SysResult<i64> {
    match task.block_until::<()>(Some(deadline), || Ok(None)) {
        Err(Errno::ETIMEDOUT) => Ok(0),
        Err(Errno::ERESTARTSYS) => {
            if !rem.is_null() {
                let left = deadline.saturating_duration_since(Instant::now());
                task.mm
                    .write(UserPtr::new(rem), &Timespec::from_duration(left))?;
            }
            // Linux restarts through restart_syscall; without it, report the interruption
            // (the remaining time is written, so callers can resume).
            Err(Errno::EINTR)
        }
        other => other.map(|()| 0),
    }
}

pub fn nanosleep(task: &mut Task, req: UserAddr, rem: UserAddr) -> SysResult<i64> {
    let d = read_timespec(task, req)?;
    sleep_until(task, Instant::now() + d, rem)
}

pub fn clock_nanosleep(
    task: &mut Task,
    id: i32,
    flags: i32,
    req: UserAddr,
    rem: UserAddr,
) -> SysResult<i64> {
    let clock = match id {
        // A thread's CPU clock has no sleep in Linux's table of clocks.
        CLOCK_THREAD_CPUTIME_ID => return Err(Errno::EOPNOTSUPP),
        _ => Clock::from_id(id)?,
    };
    let d = read_timespec(task, req)?;
    if flags & TIMER_ABSTIME != 0 {
        sleep_until(task, clock.deadline(d), UserAddr::NULL)
    } else {
        sleep_until(task, Instant::now() + d, rem)
    }
}

pub fn sched_yield(_task: &mut Task) -> SysResult<i64> {
    std::thread::yield_now();
    Ok(0)
}
