//! epoll: epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait, epoll_pwait2.

use std::sync::Arc;
use std::time::Instant;

use super::open::install;
use super::poll::{deadline_ms, read_sigmask, read_timespec, wait_with, with_mask};
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::EventCount;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::epoll::{key_of, Epoll, Interest, EPOLLONESHOT};
use crate::vfs::file::O_CLOEXEC;
use crate::vfs::FileDescription;

const EPOLL_CTL_ADD: i32 = 1;
const EPOLL_CTL_DEL: i32 = 2;
const EPOLL_CTL_MOD: i32 = 3;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
/// `sizeof(struct epoll_event)` on x86-64 (packed: u32 events, u64 data).
const EVENT_SIZE: usize = 12;
/// The most events one call returns (Linux: `INT_MAX / sizeof(struct epoll_event)`).
const MAX_EVENTS: i32 = i32::MAX / 12;

pub fn epoll_create(task: &mut Task, size: i32) -> SysResult<i64> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    epoll_create1(task, 0)
}

pub fn epoll_create1(task: &mut Task, flags: i32) -> SysResult<i64> {
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let ep: Arc<dyn FileDescription> = Arc::new(Epoll::default());
    install(task, ep, flags & O_CLOEXEC != 0)
}

/// Whether `file` can be watched: it has readiness that changes (a wait queue, a polled
/// host descriptor, another epoll). Regular files and directories cannot (`EPERM`).
fn pollable(file: &Arc<dyn FileDescription>) -> bool {
    file.wait_queue().is_some() || file.needs_polling() || file.as_epoll().is_some()
}

pub fn epoll_ctl(task: &mut Task, epfd: i32, op: i32, fd: i32, event: UserAddr) -> SysResult<i64> {
    let ep_file = task.fds.get(epfd)?;
    let target = task.fds.get(fd)?;
    let ep = ep_file.as_epoll().ok_or(Errno::EINVAL)?;
    if fd == epfd || Arc::ptr_eq(&ep_file, &target) {
        return Err(Errno::EINVAL);
    }
    if !pollable(&target) {
        return Err(Errno::EPERM);
    }
    let (events, data) = if op == EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let mut raw = [0u8; EVENT_SIZE];
        task.mm.copy_in(event, &mut raw)?;
        let events = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let mut d = [0u8; 8];
        d.copy_from_slice(&raw[4..12]);
        (events, u64::from_le_bytes(d))
    };
    let key = key_of(fd, &target);
    let mut interests = ep.interests();
    match op {
        EPOLL_CTL_ADD => {
            if interests.contains_key(&key) {
                return Err(Errno::EEXIST);
            }
            interests.insert(key, Interest::new(Arc::downgrade(&target), events, data));
        }
        EPOLL_CTL_MOD => {
            let i = interests.get_mut(&key).ok_or(Errno::ENOENT)?;
            if events & EPOLLEXCLUSIVE != 0 || i.events & EPOLLEXCLUSIVE != 0 {
                return Err(Errno::EINVAL);
            }
            i.events = events;
            i.data = data;
            i.armed = true;
            i.reported_at = None;
        }
        EPOLL_CTL_DEL => {
            interests.remove(&key).ok_or(Errno::ENOENT)?;
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// An armed entry being waited on: its key, its interest, and its description.
type Watched = ((i32, usize), Interest, Arc<dyn FileDescription>);

/// What one look at the watched entries found: each one's events and, for an
/// edge-triggered one, the event count to remember when it is reported.
type Found = Vec<(u32, Option<EventCount>)>;

fn do_wait(
    task: &Task,
    epfd: i32,
    events: UserAddr,
    max: i32,
    deadline: Option<Instant>,
) -> SysResult<i64> {
    if max <= 0 || max > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let max = usize::try_from(max).map_err(|_| Errno::EINVAL)?;
    let ep_file = task.fds.get(epfd)?;
    let ep = ep_file.as_epoll().ok_or(Errno::EINVAL)?;
    // The armed entries whose description still exists (closing it removes the entry).
    let watched: Vec<Watched> = {
        let mut interests = ep.interests();
        interests.retain(|_, i| i.file.strong_count() > 0);
        interests
            .iter()
            .filter(|(_, i)| i.armed)
            .filter_map(|(k, i)| i.file.upgrade().map(|f| (*k, i.clone(), f)))
            .collect()
    };
    let files: Vec<&Arc<dyn FileDescription>> = watched.iter().map(|(_, _, f)| f).collect();
    let found: Found = match wait_with(task, &files, deadline, || {
        let found: Found = watched.iter().map(|(_, i, f)| i.poll(&**f)).collect();
        (found.iter().any(|(r, _)| *r != 0), found)
    }) {
        // epoll_wait is never restarted after a handler.
        Err(Errno::ERESTARTNOHAND) => return Err(Errno::EINTR),
        r => r?,
    };
    // Reported entries are consumed under the lock, once the events are copied out (a
    // failed copy consumes nothing, as Linux puts them back): a one-shot entry is
    // disarmed, an edge-triggered one remembers the events it was reported at. An entry
    // changed meanwhile (by epoll_ctl or another waiter) is left for the next look.
    let mut interests = ep.interests();
    let mut out = Vec::new();
    let mut consumed = Vec::new();
    for ((key, seen, _), (r, count)) in watched.iter().zip(found) {
        if r == 0 || consumed.len() >= max {
            continue;
        }
        let Some(i) = interests.get(key) else {
            continue;
        };
        if !i.armed || i.events != seen.events || i.reported_at != seen.reported_at {
            continue;
        }
        out.extend_from_slice(&r.to_le_bytes());
        out.extend_from_slice(&i.data.to_le_bytes());
        consumed.push((*key, count));
    }
    task.mm.copy_out(events, &out)?;
    for (key, count) in &consumed {
        if let Some(i) = interests.get_mut(key) {
            if i.events & EPOLLONESHOT != 0 {
                i.armed = false;
            }
            if count.is_some() {
                i.reported_at = *count;
            }
        }
    }
    Ok(consumed.len() as i64)
}

pub fn epoll_wait(
    task: &mut Task,
    epfd: i32,
    events: UserAddr,
    max: i32,
    timeout: i32,
) -> SysResult<i64> {
    do_wait(task, epfd, events, max, deadline_ms(timeout))
}

pub fn epoll_pwait(
    task: &mut Task,
    epfd: i32,
    events: UserAddr,
    max: i32,
    timeout: i32,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> SysResult<i64> {
    let mask = read_sigmask(task, sigmask, sigsetsize)?;
    with_mask(task, mask, || {
        do_wait(task, epfd, events, max, deadline_ms(timeout))
    })
}

pub fn epoll_pwait2(
    task: &mut Task,
    epfd: i32,
    events: UserAddr,
    max: i32,
    timeout: UserAddr,
    sigmask: UserAddr,
    sigsetsize: usize,
) -> SysResult<i64> {
    let deadline = read_timespec(task, timeout)?;
    let mask = read_sigmask(task, sigmask, sigsetsize)?;
    with_mask(task, mask, || do_wait(task, epfd, events, max, deadline))
}
