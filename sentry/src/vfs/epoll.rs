//! An epoll instance: the interest list `epoll_ctl` edits and `epoll_wait` checks.
//!
//! Readiness comes from each description's `readiness()`, waits from their wait queues
//! (the machinery `poll` uses). Edge-triggered entries (`EPOLLET`) are reported as
//! level-triggered ones: a program written for edge triggering reads until `EAGAIN` and
//! sees at most extra wakeups.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::file::{FileDescription, O_RDWR, POLLIN};
use super::Stat;
use crate::errno::SysResult;

/// One watched descriptor.
#[derive(Clone)]
pub struct Interest {
    pub file: Weak<dyn FileDescription>,
    pub events: u32,
    pub data: u64,
    /// `EPOLLONESHOT` entries are disarmed after one report, until `EPOLL_CTL_MOD`.
    pub armed: bool,
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

    /// Readable when an armed entry is ready (an epoll inside poll or another epoll).
    fn readiness(&self) -> u16 {
        let ready = self.interests().values().any(|i| {
            i.armed
                && i.file
                    .upgrade()
                    .is_some_and(|f| u32::from(f.readiness()) & (i.events | 0x18) != 0)
        });
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
