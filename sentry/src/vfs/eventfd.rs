//! `eventfd`: a 64-bit counter that `write` adds to and `read` takes (all of it, or one
//! at a time with `EFD_SEMAPHORE`), blocking at zero and at the top.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use super::file::{FileDescription, O_RDWR, POLLIN, POLLOUT};
use super::Stat;
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;

/// The largest value the counter holds.
const MAX: u64 = u64::MAX - 1;

/// The `eventfd-id`s in use: Linux numbers eventfds with an IDA, the lowest free one.
static IDS: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn alloc_id() -> u32 {
    let mut ids = IDS.lock().unwrap_or_else(|e| e.into_inner());
    let id = (0..).find(|i| !ids.contains(i)).unwrap_or(u32::MAX);
    ids.insert(id);
    id
}

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    flags: AtomicI32,
    queue: WaitQueue,
    /// The `eventfd-id` of `/proc/self/fdinfo`.
    id: u32,
}

impl Drop for EventFd {
    fn drop(&mut self) {
        IDS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl EventFd {
    pub fn new(initial: u64, semaphore: bool, flags: i32) -> Self {
        Self {
            count: Mutex::new(initial),
            semaphore,
            flags: AtomicI32::new(O_RDWR | flags),
            queue: WaitQueue::default(),
            id: alloc_id(),
        }
    }

    fn count(&self) -> std::sync::MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FileDescription for EventFd {
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut count = self.count();
        if *count == 0 {
            return Err(Errno::EAGAIN);
        }
        let value = if self.semaphore { 1 } else { *count };
        *count -= value;
        drop(count);
        buf[..8].copy_from_slice(&value.to_ne_bytes());
        // As Linux: a read announces room to write, a write something to read.
        self.queue.notify(u32::from(POLLOUT));
        Ok(8)
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        let bytes: [u8; 8] = buf
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(Errno::EINVAL)?;
        let value = u64::from_ne_bytes(bytes);
        if value == u64::MAX {
            return Err(Errno::EINVAL);
        }
        let mut count = self.count();
        if value > MAX - *count {
            return Err(Errno::EAGAIN);
        }
        *count += value;
        drop(count);
        self.queue.notify(u32::from(POLLIN));
        Ok(8)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::file::anon_stat())
    }

    fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }

    fn anon_name(&self) -> Vec<u8> {
        b"anon_inode:[eventfd]".to_vec()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn readiness(&self) -> u16 {
        let count = *self.count();
        let mut r = 0;
        if count > 0 {
            r |= POLLIN;
        }
        if count < MAX {
            r |= POLLOUT;
        }
        r
    }

    fn readable_bytes(&self) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    /// Linux's `eventfd_show_fdinfo`: the count in hex, the id, the semaphore flag.
    fn fdinfo(&self) -> Vec<u8> {
        format!(
            "eventfd-count: {:16x}\neventfd-id: {}\neventfd-semaphore: {}\n",
            *self.count(),
            self.id,
            u8::from(self.semaphore)
        )
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_semantics() {
        let e = EventFd::new(2, false, 0);
        let mut b = [0u8; 8];
        assert_eq!(e.read(&mut b[..4]), Err(Errno::EINVAL));
        assert_eq!(e.read(&mut b), Ok(8));
        assert_eq!(u64::from_ne_bytes(b), 2);
        assert_eq!(e.read(&mut b), Err(Errno::EAGAIN));
        assert_eq!(e.write(&u64::MAX.to_ne_bytes()), Err(Errno::EINVAL));
        assert_eq!(e.write(&MAX.to_ne_bytes()), Ok(8));
        assert_eq!(e.write(&1u64.to_ne_bytes()), Err(Errno::EAGAIN), "full");
        assert_eq!(e.readiness(), POLLIN);
        let s = EventFd::new(3, true, 0);
        s.read(&mut b).unwrap();
        assert_eq!(u64::from_ne_bytes(b), 1, "semaphore: one at a time");
    }

    #[test]
    fn fdinfo_shows_count_id_and_semaphore() {
        let e = EventFd::new(0x2a, true, 0);
        let text = String::from_utf8(e.fdinfo()).unwrap();
        let want = format!(
            "eventfd-count:               2a\neventfd-id: {}\neventfd-semaphore: 1\n",
            e.id
        );
        assert_eq!(text, want);
        let other = EventFd::new(0, false, 0);
        assert_ne!(other.id, e.id, "ids are unique while both live");
    }
}
