//! `signalfd`: reading the caller's pending signals of a mask as `signalfd_siginfo`
//! records. As on Linux, the file answers for whoever reads or polls it (its `current`),
//! not for its creator: a forked child reads its own signals through an inherited one.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use super::file::{FileDescription, O_RDWR, POLLIN};
use super::Stat;
use crate::errno::{Errno, SysResult};
use crate::kernel::current;
use crate::kernel::signal::{
    SigInfo, SigSet, SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGSEGV, SIGSYS, SIGTRAP, SI_KERNEL,
};
use crate::kernel::wait::WaitQueue;

/// `sizeof(struct signalfd_siginfo)`.
pub const SIGINFO_SIZE: usize = 128;
/// `si_code` of a POSIX timer's signal.
const SI_TIMER: i32 = -2;

pub struct SignalFd {
    mask: Mutex<SigSet>,
    flags: AtomicI32,
}

impl SignalFd {
    /// A signalfd for `mask` (SIGKILL and SIGSTOP are dropped from it, as Linux does).
    pub fn new(mask: SigSet, flags: i32) -> Self {
        Self {
            mask: Mutex::new(mask.blockable()),
            flags: AtomicI32::new(O_RDWR | flags),
        }
    }

    pub fn mask(&self) -> SigSet {
        *self.mask.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `signalfd(fd, mask, …)` on an existing one: replaces the mask.
    pub fn set_mask(&self, mask: SigSet) {
        *self.mask.lock().unwrap_or_else(|e| e.into_inner()) = mask.blockable();
        crate::kernel::signal::SIGNAL_EVENTS.notify_all();
    }

    /// Takes the caller's next pending signal of the mask: thread-directed first, then
    /// process-directed, as Linux's `dequeue_signal`.
    fn dequeue(&self) -> Option<SigInfo> {
        let (handle, group) = current::get()?;
        let others = SigSet(!self.mask().0);
        let own = handle.signals().pending.pop(others);
        own.or_else(|| group.state().pending.pop(others))
    }
}

/// `struct signalfd_siginfo` for `info`, with the fields its `si_code` layout carries (as
/// Linux's `signalfd_copyinfo`).
pub fn siginfo_record(info: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut b = [0u8; SIGINFO_SIZE];
    let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &info.signo.to_le_bytes());
    put(4, &info.errno.to_le_bytes());
    put(8, &info.code.to_le_bytes());
    let fault = matches!(
        info.signo,
        SIGILL | SIGFPE | SIGSEGV | SIGBUS | SIGTRAP | SIGSYS
    );
    let low = |v: u64| u32::try_from(v & 0xffff_ffff).unwrap_or(0).to_le_bytes();
    if info.code > 0 && info.code < SI_KERNEL && fault {
        put(72, &info.addr.to_le_bytes()); // ssi_addr
    } else if info.code > 0 && info.code < SI_KERNEL && info.signo == SIGCHLD {
        put(12, &info.pid.to_le_bytes());
        put(16, &info.uid.to_le_bytes());
        put(40, &info.status.to_le_bytes()); // ssi_status
    } else if info.code == SI_TIMER {
        put(24, &info.pid.to_le_bytes()); // ssi_tid: the timer's ID
        put(32, &info.uid.to_le_bytes()); // ssi_overrun
        put(44, &low(info.value)); // ssi_int
        put(48, &info.value.to_le_bytes()); // ssi_ptr
    } else {
        put(12, &info.pid.to_le_bytes());
        put(16, &info.uid.to_le_bytes());
        if info.code < 0 {
            put(44, &low(info.value));
            put(48, &info.value.to_le_bytes());
        }
    }
    b
}

impl FileDescription for SignalFd {
    /// As many whole records as fit; `EAGAIN` when none is pending (the syscall layer
    /// waits on the queue for a blocking read).
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        if buf.len() < SIGINFO_SIZE {
            return Err(Errno::EINVAL);
        }
        let mut done = 0;
        for slot in buf.chunks_exact_mut(SIGINFO_SIZE) {
            let Some(info) = self.dequeue() else { break };
            slot.copy_from_slice(&siginfo_record(&info));
            done += SIGINFO_SIZE;
        }
        if done == 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(done)
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
        b"anon_inode:[signalfd]".to_vec()
    }

    /// Linux's `signalfd_show_fdinfo`: the mask, bit N-1 for signal N.
    fn fdinfo(&self) -> Vec<u8> {
        let mask = self.mask.lock().unwrap_or_else(|e| e.into_inner()).0;
        format!("sigmask:\t{mask:016x}\n").into_bytes()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&crate::kernel::signal::SIGNAL_EVENTS)
    }

    fn readiness(&self) -> u16 {
        let Some((handle, group)) = current::get() else {
            return 0;
        };
        let mask = self.mask().0;
        let own = handle.signals().pending.set().0;
        let shared = group.state().pending.set().0;
        if (own | shared) & mask != 0 {
            POLLIN
        } else {
            0
        }
    }

    fn as_signalfd(&self) -> Option<&SignalFd> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::signal::{SIGUSR1, SI_QUEUE};

    #[test]
    fn record_layout_follows_the_code() {
        let user = siginfo_record(&SigInfo::user(SIGUSR1, 0, 42, 1000));
        assert_eq!(&user[0..4], &10u32.to_le_bytes());
        assert_eq!(&user[12..16], &42u32.to_le_bytes(), "ssi_pid");
        assert_eq!(&user[16..20], &1000u32.to_le_bytes(), "ssi_uid");
        let queued = siginfo_record(&SigInfo {
            value: 77,
            ..SigInfo::user(SIGUSR1, SI_QUEUE, 42, 0)
        });
        assert_eq!(&queued[44..48], &77i32.to_le_bytes(), "ssi_int");
        assert_eq!(&queued[48..56], &77u64.to_le_bytes(), "ssi_ptr");
    }

    #[test]
    fn sigkill_and_sigstop_leave_the_mask() {
        let f = SignalFd::new(SigSet(u64::MAX), 0);
        assert!(!f.mask().contains(crate::kernel::signal::SIGKILL));
        assert!(!f.mask().contains(crate::kernel::signal::SIGSTOP));
        let mut b = [0u8; 64];
        assert_eq!(f.read(&mut b), Err(Errno::EINVAL), "short buffer");
    }
}
