//! `timerfd`: a timer whose expirations are read from a file.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use super::file::{FileDescription, O_RDWR, POLLIN};
use super::Stat;
use crate::errno::{Errno, SysResult};
use crate::kernel::timer::{Expirations, Target, Timers};
use crate::kernel::wait::WaitQueue;

pub struct TimerFd {
    timers: Arc<Timers>,
    /// The kernel timer behind this file.
    pub id: u64,
    /// Whether its clock is the realtime one (for absolute times).
    pub realtime: bool,
    /// The clock `timerfd_create` named (for fdinfo).
    clockid: i32,
    /// The flags of the last `timerfd_settime` (for fdinfo).
    settime_flags: AtomicI32,
    expirations: Arc<Expirations>,
    flags: AtomicI32,
}

impl TimerFd {
    pub fn new(timers: &Arc<Timers>, clockid: i32, realtime: bool, flags: i32) -> Self {
        let expirations = Arc::new(Expirations::default());
        let id = timers.create(
            Target::Counter(Arc::downgrade(&expirations)),
            Default::default(),
        );
        Self {
            timers: Arc::clone(timers),
            id,
            realtime,
            clockid,
            settime_flags: AtomicI32::new(0),
            expirations,
            flags: AtomicI32::new(O_RDWR | flags),
        }
    }

    /// Setting the timer (with `timerfd_settime`'s `flags`) discards expirations not yet
    /// read.
    pub fn reset(&self, flags: i32) {
        self.settime_flags.store(flags, Ordering::Relaxed);
        *self
            .expirations
            .count
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = 0;
    }

    pub fn timers(&self) -> &Arc<Timers> {
        &self.timers
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        self.timers.delete(self.id);
    }
}

impl FileDescription for TimerFd {
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut count = self
            .expirations
            .count
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *count == 0 {
            return Err(Errno::EAGAIN);
        }
        buf[..8].copy_from_slice(&count.to_ne_bytes());
        *count = 0;
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
        b"anon_inode:[timerfd]".to_vec()
    }

    /// Linux's `timerfd_show`: the clock, the expirations not yet read, the last
    /// `timerfd_settime` flags, and the time left and the interval.
    fn fdinfo(&self) -> Vec<u8> {
        let ticks = *self
            .expirations
            .count
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (left, interval) = self.timers.get(self.id).unwrap_or_default();
        format!(
            "clockid: {}\nticks: {ticks}\nsettime flags: 0{:o}\nit_value: ({}, {})\n\
             it_interval: ({}, {})\n",
            self.clockid,
            self.settime_flags.load(Ordering::Relaxed),
            left.as_secs(),
            left.subsec_nanos(),
            interval.as_secs(),
            interval.subsec_nanos(),
        )
        .into_bytes()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.expirations.queue)
    }

    fn readiness(&self) -> u16 {
        if *self
            .expirations
            .count
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            > 0
        {
            POLLIN
        } else {
            0
        }
    }

    fn as_timerfd(&self) -> Option<&TimerFd> {
        Some(self)
    }
}
