//! `eventfd`: a 64-bit counter that `write` adds to and `read` takes (all of it, or one
//! at a time with `EFD_SEMAPHORE`), blocking at zero and at the top.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use super::file::{FileDescription, O_RDWR, POLLIN, POLLOUT};
use super::Stat;
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;

/// The largest value the counter holds.
const MAX: u64 = u64::MAX - 1;

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    flags: AtomicI32,
    queue: WaitQueue,
}

impl EventFd {
    pub fn new(initial: u64, semaphore: bool, flags: i32) -> Self {
        Self {
            count: Mutex::new(initial),
            semaphore,
            flags: AtomicI32::new(O_RDWR | flags),
            queue: WaitQueue::default(),
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
        self.queue.notify_all();
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
        self.queue.notify_all();
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
}
