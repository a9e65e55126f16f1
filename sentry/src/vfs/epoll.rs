//! An epoll instance: the interest list `epoll_ctl` edits and `epoll_wait` checks.
//!
//! Readiness comes from each description's `readiness()`, waits from their wait queues
//! (the machinery `poll` uses). An edge-triggered entry (`EPOLLET`) is reported when it
//! is ready and its description's queue has announced an event of a class it watches
//! (input or output, [`EventCount`]) since the entry was last reported, or when it was
//! added or modified: Linux's ready list, filled by the wake-up callback. A description
//! with no queue (one that must be polled) has no events to count; its edge-triggered
//! entries are reported as level-triggered ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::file::{FileDescription, O_RDWR, POLLIN};
use super::tty::devpts;
use super::Stat;
use crate::errno::SysResult;
use crate::kernel::wait::{EventCount, INPUT_EVENTS, OUTPUT_EVENTS};

pub const EPOLLET: u32 = 1 << 31;
pub const EPOLLONESHOT: u32 = 1 << 30;
/// `EPOLLERR | EPOLLHUP`, reported whether asked for or not.
const ALWAYS: u32 = 0x18;

/// One watched descriptor.
#[derive(Clone)]
pub struct Interest {
    pub file: Weak<dyn FileDescription>,
    pub events: u32,
    pub data: u64,
    /// `EPOLLONESHOT` entries are disarmed after one report, until `EPOLL_CTL_MOD`.
    pub armed: bool,
    /// For an `EPOLLET` entry, the events its description's queue had announced when it
    /// was last reported; `None` until its first report after `ADD` or `MOD`.
    pub reported_at: Option<EventCount>,
}

impl Interest {
    pub fn new(file: Weak<dyn FileDescription>, events: u32, data: u64) -> Self {
        Self {
            file,
            events,
            data,
            armed: true,
            reported_at: None,
        }
    }

    /// What this entry would report now, with the event count to remember if it is
    /// reported (for an edge-triggered one); 0 when disarmed, not ready, or (edge
    /// triggered) not ready anew.
    pub fn poll(&self, file: &dyn FileDescription) -> (u32, Option<EventCount>) {
        if !self.armed {
            return (0, None);
        }
        let count = match file.wait_queue() {
            Some(q) if self.events & EPOLLET != 0 => Some(q.events()),
            _ => None,
        };
        if let (Some(now), Some(then)) = (count, self.reported_at) {
            let input = now.input != then.input;
            let output = now.output != then.output;
            let watches_input = self.events & INPUT_EVENTS != 0;
            let watches_output = self.events & OUTPUT_EVENTS != 0;
            let new = if watches_input || watches_output {
                (watches_input && input) || (watches_output && output)
            } else {
                input || output
            };
            if !new {
                return (0, count);
            }
        }
        let mut r = u32::from(file.readiness());
        // POLLRDNORM/POLLWRNORM come with POLLIN/POLLOUT, as Linux's poll methods say.
        if r & 0x1 != 0 {
            r |= 0x40;
        }
        if r & 0x4 != 0 {
            r |= 0x100;
        }
        (r & (self.events | ALWAYS), count)
    }
}

/// The interest list, keyed by descriptor number and description (as Linux keys it).
#[derive(Default)]
pub struct Epoll {
    interests: Mutex<BTreeMap<(i32, usize), Interest>>,
}

/// The identity of a description, for the key.
pub fn key_of(fd: i32, file: &Arc<dyn FileDescription>) -> (i32, usize) {
    (fd, Arc::as_ptr(file).cast::<()>() as usize)
}

impl Epoll {
    pub fn interests(&self) -> MutexGuard<'_, BTreeMap<(i32, usize), Interest>> {
        self.interests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileDescription for Epoll {
    fn stat(&self) -> SysResult<Stat> {
        Ok(super::file::anon_stat())
    }

    fn flags(&self) -> i32 {
        O_RDWR
    }

    fn anon_name(&self) -> Vec<u8> {
        b"anon_inode:[eventpoll]".to_vec()
    }

    /// Linux's `ep_show_fdinfo`: a line per entry whose description is still open, with
    /// the events as `EPOLL_CTL_ADD` stored them (`EPOLLERR | EPOLLHUP` added), the
    /// target's offset, inode and device (as the kernel encodes a device number).
    fn fdinfo(&self) -> Vec<u8> {
        let mut out = String::new();
        for (&(fd, _), interest) in self.interests().iter() {
            let Some(file) = interest.file.upgrade() else {
                continue;
            };
            let pos = file.seek(0, super::file::SEEK_CUR).unwrap_or(0);
            let (ino, dev) = file.stat().map_or((0, 0), |s| (s.ino, s.dev));
            let (major, minor) = (devpts::major(dev), devpts::minor(dev));
            out.push_str(&format!(
                "tfd: {fd:8} events: {:8x} data: {:16x}  pos:{pos} ino:{ino:x} sdev:{:x}\n",
                interest.events | ALWAYS,
                interest.data,
                (u64::from(major) << 20) | u64::from(minor),
            ));
        }
        out.into_bytes()
    }

    /// Readable when an armed entry is ready (an epoll inside poll or another epoll).
    fn readiness(&self) -> u16 {
        let ready = self
            .interests()
            .values()
            .any(|i| i.file.upgrade().is_some_and(|f| i.poll(&*f).0 != 0));
        if ready {
            POLLIN
        } else {
            0
        }
    }

    /// Its entries' queues are not its own: a waiter looks again every few milliseconds.
    fn needs_polling(&self) -> bool {
        true
    }

    fn as_epoll(&self) -> Option<&Epoll> {
        Some(self)
    }
}
