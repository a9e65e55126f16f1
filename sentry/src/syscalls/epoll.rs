//! epoll: epoll_create, epoll_create1, epoll_ctl, epoll_wait, epoll_pwait, epoll_pwait2.

use std::sync::Arc;
use std::time::Instant;

use super::open::install;
use super::poll::{deadline_ms, read_sigmask, read_timespec, wait, with_mask, Entry};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::epoll::{key_of, Epoll, Interest};
use crate::vfs::file::O_CLOEXEC;
use crate::vfs::FileDescription;

const EPOLL_CTL_ADD: i32 = 1;
const EPOLL_CTL_DEL: i32 = 2;
const EPOLL_CTL_MOD: i32 = 3;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLONESHOT: u32 = 1 << 30;
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
            let file = Arc::downgrade(&target);
            interests.insert(
                key,
                Interest {
                    file,
                    events,
                    data,
                    armed: true,
                },
            );
        }
        EPOLL_CTL_MOD => {
            let i = interests.get_mut(&key).ok_or(Errno::ENOENT)?;
            if events & EPOLLEXCLUSIVE != 0 || i.events & EPOLLEXCLUSIVE != 0 {
                return Err(Errno::EINVAL);
            }
            i.events = events;
            i.data = data;
            i.armed = true;
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
    let entries: Vec<Entry> = watched
        .iter()
        .map(|(_, i, f)| Entry {
            file: Some(Arc::clone(f)),
            events: (i.events & 0xffff) as u16,
        })
        .collect();
    let ready = match wait(task, &entries, deadline) {
        // epoll_wait is never restarted after a handler.
        Err(Errno::ERESTARTNOHAND) => return Err(Errno::EINTR),
        r => r?,
    };
    let mut out = Vec::new();
    let mut fired = Vec::new();
    for ((key, interest, _), r) in watched.iter().zip(ready) {
        if r == 0 {
            continue;
        }
        if out.len() / EVENT_SIZE >= usize::try_from(max).unwrap_or(0) {
            break;
        }
        out.extend_from_slice(&u32::from(r).to_le_bytes());
        out.extend_from_slice(&interest.data.to_le_bytes());
        if interest.events & EPOLLONESHOT != 0 {
            fired.push(*key);
        }
    }
    task.mm.copy_out(events, &out)?;
    let mut interests = ep.interests();
    for key in fired {
        if let Some(i) = interests.get_mut(&key) {
            i.armed = false;
        }
    }
    Ok((out.len() / EVENT_SIZE) as i64)
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
