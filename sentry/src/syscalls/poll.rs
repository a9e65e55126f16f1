//! Readiness: poll, ppoll, select, pselect6.
//!
//! Each description reports its readiness; a caller with nothing ready waits on the wait
//! queues of the descriptions that have one (pipes), looking again every few milliseconds
//! when one must be polled (the caller's host stdio), until the timeout or a signal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::open::nofile_limit;
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::SigSet;
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::file::{FileDescription, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};

/// Linux's `nr_open` default: no process has more descriptors, whatever its limit says.
const NR_OPEN: u64 = 1 << 20;
/// How often a wait that involves a polled descriptor looks again.
const POLL_PERIOD: Duration = Duration::from_millis(10);
/// `POLLRDNORM`/`POLLWRNORM`, which Linux reports with `POLLIN`/`POLLOUT`.
const POLLRDNORM: u16 = 0x40;
const POLLWRNORM: u16 = 0x100;

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

/// What one entry waits for: the file (or `None` for a bad descriptor) and the events.
pub(super) struct Entry {
    pub(super) file: Option<Arc<dyn FileDescription>>,
    pub(super) events: u16,
}

pub(super) fn ready(e: &Entry) -> u16 {
    let Some(file) = &e.file else {
        return POLLNVAL;
    };
    let mut r = file.readiness();
    if r & POLLIN != 0 {
        r |= POLLRDNORM;
    }
    if r & POLLOUT != 0 {
        r |= POLLWRNORM;
    }
    r & (e.events | POLLERR | POLLHUP)
}

/// Waits until some entry is ready or `deadline`; returns each entry's ready events.
pub(super) fn wait(
    task: &Task,
    entries: &[Entry],
    deadline: Option<Instant>,
) -> SysResult<Vec<u16>> {
    let files: Vec<&Arc<dyn FileDescription>> =
        entries.iter().filter_map(|e| e.file.as_ref()).collect();
    wait_with(task, &files, deadline, || {
        let now: Vec<u16> = entries.iter().map(ready).collect();
        (now.iter().any(|&r| r != 0), now)
    })
}

/// Waits on the queues of `files` until `check` says ready (its first value) or
/// `deadline`; returns what the last check found.
pub(super) fn wait_with<T>(
    task: &Task,
    files: &[&Arc<dyn FileDescription>],
    deadline: Option<Instant>,
    check: impl Fn() -> (bool, T),
) -> SysResult<T> {
    let (ready, first) = check();
    if ready || deadline.is_some_and(|d| d <= Instant::now()) {
        return Ok(first);
    }
    let polled = files.iter().any(|f| f.needs_polling());
    let _registered: Vec<_> = files
        .iter()
        .filter_map(|f| f.wait_queue())
        .map(|q| q.register(&task.handle.waker))
        .collect();
    loop {
        let until = if polled {
            let next = Instant::now() + POLL_PERIOD;
            Some(deadline.map_or(next, |d| d.min(next)))
        } else {
            deadline
        };
        let r = task.block_until(until, || {
            let (ready, now) = check();
            Ok(ready.then_some(now))
        });
        match r {
            Ok(now) => return Ok(now),
            Err(Errno::ETIMEDOUT) => {
                if deadline.is_some_and(|d| d <= Instant::now()) {
                    return Ok(check().1);
                }
            }
            // Not restarted after a handler, as Linux's poll and select.
            Err(Errno::ERESTARTSYS) => return Err(Errno::ERESTARTNOHAND),
            Err(e) => return Err(e),
        }
    }
}

fn entries_of(task: &Task, fds: &[PollFd]) -> Vec<Entry> {
    fds.iter()
        .map(|p| Entry {
            file: if p.fd < 0 {
                None
            } else {
                task.fds.get(p.fd).ok()
            },
            events: u16::from_ne_bytes(p.events.to_ne_bytes()),
        })
        .collect()
}

fn do_poll(task: &Task, ufds: UserAddr, nfds: u32, deadline: Option<Instant>) -> SysResult<i64> {
    if u64::from(nfds) > nofile_limit(task).min(NR_OPEN) {
        return Err(Errno::EINVAL);
    }
    let ptr = UserPtr::<PollFd>::new(ufds);
    let mut fds = Vec::new();
    for i in 0..u64::from(nfds) {
        fds.push(task.mm.read(ptr.offset(i)?)?);
    }
    // A negative fd is ignored: no events, never ready, and no part of the wait (a closed
    // one, by contrast, is ready at once with POLLNVAL).
    let live: Vec<PollFd> = fds.iter().copied().filter(|p| p.fd >= 0).collect();
    let entries = entries_of(task, &live);
    let mut ready_now = wait(task, &entries, deadline)?.into_iter();
    let mut count = 0;
    for (i, p) in fds.iter_mut().enumerate() {
        let r = if p.fd < 0 {
            0
        } else {
            ready_now.next().unwrap_or(0)
        };
        p.revents = i16::from_ne_bytes(r.to_ne_bytes());
        if r != 0 {
            count += 1;
        }
        task.mm.write(ptr.offset(i as u64)?, p)?;
    }
    Ok(count)
}

pub(super) fn deadline_ms(timeout: i32) -> Option<Instant> {
    u64::try_from(timeout)
        .ok()
        .map(|ms| Instant::now() + Duration::from_millis(ms))
}

pub(super) fn read_timespec(task: &Task, at: UserAddr) -> SysResult<Option<Instant>> {
    if at.is_null() {
        return Ok(None);
    }
    let ts: Timespec = task.mm.read(UserPtr::new(at))?;
    if ts.sec < 0 || !(0..1_000_000_000).contains(&ts.nsec) {
        return Err(Errno::EINVAL);
    }
    let d = Duration::new(
        u64::try_from(ts.sec).unwrap_or(0),
        u32::try_from(ts.nsec).unwrap_or(0),
    );
    Ok(Some(Instant::now().checked_add(d).unwrap_or_else(|| {
        Instant::now() + Duration::from_secs(1 << 32)
    })))
}

/// Runs `f` with the signal mask `mask` (if given), restoring the old mask unless a
/// signal interrupted the call (then signal delivery restores it after the handler).
pub(super) fn with_mask(
    task: &Task,
    mask: Option<SigSet>,
    f: impl FnOnce() -> SysResult<i64>,
) -> SysResult<i64> {
    let Some(mask) = mask else {
        return f();
    };
    let old = {
        let mut s = task.handle.signals();
        let old = s.mask;
        s.saved_mask = Some(old);
        s.mask = mask.blockable();
        old
    };
    let r = f();
    if r != Err(Errno::ERESTARTNOHAND) {
        let mut s = task.handle.signals();
        s.mask = old;
        s.saved_mask = None;
    }
    r
}

pub(super) fn read_sigmask(task: &Task, set: UserAddr, size: usize) -> SysResult<Option<SigSet>> {
    if set.is_null() {
        return Ok(None);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    Ok(Some(SigSet(task.mm.read(UserPtr::<u64>::new(set))?)))
}

pub fn poll(task: &mut Task, ufds: UserAddr, nfds: u32, timeout: i32) -> SysResult<i64> {
    do_poll(task, ufds, nfds, deadline_ms(timeout))
}

pub fn ppoll(
    task: &mut Task,
    ufds: UserAddr,
    nfds: u32,
    tsp: UserAddr,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> SysResult<i64> {
    let deadline = read_timespec(task, tsp)?;
    let mask = read_sigmask(task, sigmask, sigsetsize)?;
    let r = with_mask(task, mask, || do_poll(task, ufds, nfds, deadline))?;
    write_left(task, tsp, deadline)?;
    Ok(r)
}

/// The descriptors of an `fd_set` of `nfds` bits.
fn read_fd_set(task: &Task, at: UserAddr, nfds: usize) -> SysResult<Vec<u64>> {
    let words = nfds.div_ceil(64);
    if at.is_null() {
        return Ok(vec![0; words]);
    }
    let ptr = UserPtr::<u64>::new(at);
    (0..words as u64)
        .map(|i| task.mm.read(ptr.offset(i)?))
        .collect()
}

fn do_select(
    task: &Task,
    nfds: i32,
    sets: [UserAddr; 3],
    deadline: Option<Instant>,
) -> SysResult<i64> {
    // Linux ignores the bits beyond the descriptor array (no EINVAL for a large `nfds`):
    // a descriptor that was never in the array is not reported as `EBADF`.
    let nfds = usize::try_from(nfds)
        .map_err(|_| Errno::EINVAL)?
        .min(task.fds.capacity());
    let [r, w, x] = [
        read_fd_set(task, sets[0], nfds)?,
        read_fd_set(task, sets[1], nfds)?,
        read_fd_set(task, sets[2], nfds)?,
    ];
    let bit = |set: &[u64], fd: usize| set[fd / 64] >> (fd % 64) & 1 == 1;
    let mut fds = Vec::new();
    let mut entries = Vec::new();
    for fd in 0..nfds {
        let mut events = 0;
        if bit(&r, fd) {
            events |= POLLIN;
        }
        if bit(&w, fd) {
            events |= POLLOUT;
        }
        if bit(&x, fd) {
            events |= POLLPRI;
        }
        if events == 0 {
            continue;
        }
        let file = task.fds.get(i32::try_from(fd).map_err(|_| Errno::EBADF)?)?;
        fds.push(fd);
        entries.push(Entry {
            file: Some(file),
            events,
        });
    }
    let ready_now = wait(task, &entries, deadline)?;
    let (mut ro, mut wo, mut xo) = (
        vec![0u64; r.len()],
        vec![0u64; w.len()],
        vec![0u64; x.len()],
    );
    let mut count = 0i64;
    for (&fd, &rd) in fds.iter().zip(&ready_now) {
        let set = |out: &mut Vec<u64>| out[fd / 64] |= 1 << (fd % 64);
        if bit(&r, fd) && rd & (POLLIN | POLLHUP | POLLERR) != 0 {
            set(&mut ro);
            count += 1;
        }
        if bit(&w, fd) && rd & (POLLOUT | POLLERR) != 0 {
            set(&mut wo);
            count += 1;
        }
        if bit(&x, fd) && rd & POLLPRI != 0 {
            set(&mut xo);
            count += 1;
        }
    }
    for (at, out) in [(sets[0], ro), (sets[1], wo), (sets[2], xo)] {
        if !at.is_null() {
            task.mm.copy_out(at, out.as_bytes())?;
        }
    }
    Ok(count)
}

#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct Timeval {
    sec: i64,
    usec: i64,
}

pub fn select(
    task: &mut Task,
    nfds: i32,
    readfds: UserAddr,
    writefds: UserAddr,
    exceptfds: UserAddr,
    timeout: UserAddr,
) -> SysResult<i64> {
    let deadline = if timeout.is_null() {
        None
    } else {
        let tv: Timeval = task.mm.read(UserPtr::new(timeout))?;
        if tv.sec < 0 || !(0..1_000_000).contains(&tv.usec) {
            return Err(Errno::EINVAL);
        }
        let d = Duration::from_secs(u64::try_from(tv.sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(tv.usec).unwrap_or(0));
        Instant::now().checked_add(d)
    };
    let r = do_select(task, nfds, [readfds, writefds, exceptfds], deadline)?;
    if let Some(d) = deadline {
        // Linux writes back the time left.
        let left = d.saturating_duration_since(Instant::now());
        let tv = Timeval {
            sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            usec: i64::from(left.subsec_micros()),
        };
        task.mm.write(UserPtr::new(timeout), &tv)?;
    }
    Ok(r)
}

/// Writes back the time left until `deadline` (ppoll, pselect6).
fn write_left(task: &Task, at: UserAddr, deadline: Option<Instant>) -> SysResult<()> {
    if let Some(d) = deadline {
        let left = d.saturating_duration_since(Instant::now());
        let ts = Timespec {
            sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
            nsec: i64::from(left.subsec_nanos()),
        };
        task.mm.write(UserPtr::new(at), &ts)?;
    }
    Ok(())
}

/// `pselect6`'s sixth argument: `{ const sigset_t *ss; size_t ss_len; }`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct SigsetArg {
    ss: u64,
    len: u64,
}

pub fn pselect6(
    task: &mut Task,
    nfds: i32,
    readfds: UserAddr,
    writefds: UserAddr,
    exceptfds: UserAddr,
    tsp: UserAddr,
    sig: UserAddr,
) -> SysResult<i64> {
    let deadline = read_timespec(task, tsp)?;
    let mask = if sig.is_null() {
        None
    } else {
        let arg: SigsetArg = task.mm.read(UserPtr::new(sig))?;
        read_sigmask(
            task,
            UserAddr::new(arg.ss),
            usize::try_from(arg.len).unwrap_or(0),
        )?
    };
    let r = with_mask(task, mask, || {
        do_select(task, nfds, [readfds, writefds, exceptfds], deadline)
    })?;
    write_left(task, tsp, deadline)?;
    Ok(r)
}
