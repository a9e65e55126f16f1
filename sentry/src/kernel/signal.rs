//! Signals: sets, actions, pending queues, and the frame a handler runs on.

use std::collections::VecDeque;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::errno::{Errno, SysResult};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGABRT: i32 = 6;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGUSR2: i32 = 12;
pub const SIGPIPE: i32 = 13;
pub const SIGALRM: i32 = 14;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGSTOP: i32 = 19;
pub const SIGTSTP: i32 = 20;
pub const SIGTTIN: i32 = 21;
pub const SIGTTOU: i32 = 22;
pub const SIGURG: i32 = 23;
pub const SIGXCPU: i32 = 24;
pub const SIGXFSZ: i32 = 25;
pub const SIGVTALRM: i32 = 26;
pub const SIGPROF: i32 = 27;
pub const SIGWINCH: i32 = 28;
pub const SIGSYS: i32 = 31;
pub const SIGRTMIN: i32 = 32;
pub const NSIG: i32 = 64;

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

pub const SA_NOCLDSTOP: u64 = 0x1;
pub const SA_NOCLDWAIT: u64 = 0x2;
pub const SA_SIGINFO: u64 = 0x4;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// `si_code` values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TKILL: i32 = -6;
pub const SEGV_MAPERR: i32 = 1;
pub const SEGV_ACCERR: i32 = 2;
pub const BUS_ADRERR: i32 = 2;
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_STOPPED: i32 = 5;
pub const CLD_CONTINUED: i32 = 6;

/// Notified whenever a signal is queued to any task (with the kick of its target):
/// signalfd readiness depends on the reader's pending signals, which any sender changes.
pub static SIGNAL_EVENTS: super::wait::WaitQueue = super::wait::WaitQueue::new();

/// A set of signals (bit `n - 1` for signal `n`), as the kernel's `sigset_t`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigSet(pub u64);

impl SigSet {
    /// SIGKILL and SIGSTOP, which cannot be blocked, caught or ignored.
    pub const UNBLOCKABLE: Self = Self((1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1)));

    pub fn of(sig: i32) -> Self {
        Self(1u64 << (sig - 1))
    }

    pub fn contains(self, sig: i32) -> bool {
        self.0 & Self::of(sig).0 != 0
    }

    pub fn add(&mut self, sig: i32) {
        self.0 |= Self::of(sig).0;
    }

    pub fn remove(&mut self, sig: i32) {
        self.0 &= !Self::of(sig).0;
    }

    /// The set with SIGKILL and SIGSTOP taken out, as every mask is stored.
    pub fn blockable(self) -> Self {
        Self(self.0 & !Self::UNBLOCKABLE.0)
    }
}

/// Checks a signal number from the application: 1..=64.
pub fn check_signal(sig: i32) -> SysResult<i32> {
    if (1..=NSIG).contains(&sig) {
        Ok(sig)
    } else {
        Err(Errno::EINVAL)
    }
}

/// `struct sigaction` as the kernel takes it (`rt_sigaction`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

const _: () = assert!(std::mem::size_of::<SigAction>() == 32);

/// What a signal does when its action is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    /// Terminate, and dump core (no core is written: `RLIMIT_CORE` is 0 by default).
    CoreDump,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: i32) -> DefaultAction {
    match sig {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::CoreDump,
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGCONT => DefaultAction::Continue,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// The actions of all signals: shared by threads, and with `CLONE_SIGHAND` children.
#[derive(Clone, Debug)]
pub struct SigActions(pub [SigAction; NSIG as usize]);

impl Default for SigActions {
    fn default() -> Self {
        Self([SigAction::default(); NSIG as usize])
    }
}

impl SigActions {
    pub fn get(&self, sig: i32) -> SigAction {
        self.0[(sig - 1) as usize]
    }

    pub fn set(&mut self, sig: i32, action: SigAction) {
        self.0[(sig - 1) as usize] = action;
    }

    /// At `execve`: caught signals go back to their default; ignored ones stay ignored.
    pub fn reset_for_exec(&mut self) {
        for a in &mut self.0 {
            let ignored = a.handler == SIG_IGN;
            *a = SigAction {
                handler: if ignored { SIG_IGN } else { SIG_DFL },
                ..SigAction::default()
            };
        }
    }

    /// Whether a signal would be discarded on arrival (ignored, explicitly or by default).
    pub fn is_ignored(&self, sig: i32) -> bool {
        let handler = self.get(sig).handler;
        handler == SIG_IGN || (handler == SIG_DFL && default_action(sig) == DefaultAction::Ignore)
    }
}

/// `si_code` of a `SIGSYS` raised by a seccomp policy.
pub const SYS_SECCOMP: i32 = 1;
/// `si_arch` of x86-64 (`AUDIT_ARCH_X86_64`).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// `siginfo_t`: 128 bytes; the union's fields are laid out by `SigInfo::bytes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub errno: i32,
    pub code: i32,
    /// `si_pid` (kill, SIGCHLD) or, for faults, the low half of `si_addr`.
    pub pid: i32,
    pub uid: u32,
    /// `si_status` of SIGCHLD, or `si_int` of a queued signal's value.
    pub status: i32,
    /// `si_addr` of a fault.
    pub addr: u64,
    /// `si_value` of `rt_sigqueueinfo` (the pointer/int union).
    pub value: u64,
    /// `si_band` and `si_fd` of a signal-driven I/O signal (`F_SETSIG`).
    pub poll: Option<(i64, i32)>,
}

impl SigInfo {
    pub fn user(sig: i32, code: i32, pid: i32, uid: u32) -> Self {
        Self {
            signo: sig,
            code,
            pid,
            uid,
            ..Self::default()
        }
    }

    pub fn kernel(sig: i32) -> Self {
        Self {
            signo: sig,
            code: SI_KERNEL,
            ..Self::default()
        }
    }

    pub fn fault(sig: i32, code: i32, addr: u64) -> Self {
        Self {
            signo: sig,
            code,
            addr,
            ..Self::default()
        }
    }

    /// The 128 bytes the application sees.
    pub fn bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        if let Some((band, fd)) = self.poll {
            b[16..24].copy_from_slice(&band.to_le_bytes());
            b[24..28].copy_from_slice(&fd.to_le_bytes());
        } else if self.addr != 0 {
            // Faults: si_addr at 16.
            b[16..24].copy_from_slice(&self.addr.to_le_bytes());
            if self.signo == SIGSYS && self.code == SYS_SECCOMP {
                // si_syscall and si_arch.
                b[24..28].copy_from_slice(&self.status.to_le_bytes());
                b[28..32].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
            }
        } else {
            b[16..20].copy_from_slice(&self.pid.to_le_bytes());
            b[20..24].copy_from_slice(&self.uid.to_le_bytes());
            if self.signo == SIGCHLD {
                b[24..28].copy_from_slice(&self.status.to_le_bytes());
            } else {
                b[24..32].copy_from_slice(&self.value.to_le_bytes());
            }
        }
        b
    }

    /// Parses a `siginfo_t` the application supplied (`rt_sigqueueinfo`).
    pub fn from_bytes(b: &[u8; 128]) -> Self {
        let i32_at = |o: usize| i32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[24..32]);
        Self {
            signo: i32_at(0),
            errno: i32_at(4),
            code: i32_at(8),
            pid: i32_at(16),
            uid: u32::from_le_bytes([b[20], b[21], b[22], b[23]]),
            value: u64::from_le_bytes(v),
            ..Self::default()
        }
    }
}

/// Signals waiting for delivery to a thread or to a whole process.
#[derive(Default, Debug)]
pub struct Pending {
    set: SigSet,
    /// One entry per standard signal pending; every queued real-time signal.
    queue: VecDeque<SigInfo>,
}

/// The most real-time signals queued per set (`RLIMIT_SIGPENDING`'s role).
const MAX_QUEUED: usize = 4096;

impl Pending {
    pub fn set(&self) -> SigSet {
        self.set
    }

    /// Queues `info`. A standard signal already pending is not queued twice. Returns false
    /// when the queue is full (`EAGAIN` for `rt_sigqueueinfo`).
    pub fn push(&mut self, info: SigInfo) -> bool {
        let sig = info.signo;
        if sig < SIGRTMIN && self.set.contains(sig) {
            return true;
        }
        if self.queue.len() >= MAX_QUEUED {
            return false;
        }
        self.set.add(sig);
        self.queue.push_back(info);
        true
    }

    /// Takes the lowest-numbered pending signal not in `blocked`.
    pub fn pop(&mut self, blocked: SigSet) -> Option<SigInfo> {
        let ready = self.set.0 & !blocked.0;
        if ready == 0 {
            return None;
        }
        let sig = i32::try_from(ready.trailing_zeros()).ok()? + 1;
        self.take(sig)
    }

    /// Takes the first queued instance of `sig`.
    pub fn take(&mut self, sig: i32) -> Option<SigInfo> {
        let at = self.queue.iter().position(|i| i.signo == sig)?;
        let info = self.queue.remove(at)?;
        if !self.queue.iter().any(|i| i.signo == sig) {
            self.set.remove(sig);
        }
        Some(info)
    }

    /// The first queued signal that `matches`, to update in place (a timer's overrun).
    pub fn queued_mut(&mut self, matches: impl Fn(&SigInfo) -> bool) -> Option<&mut SigInfo> {
        self.queue.iter_mut().find(|i| matches(i))
    }

    /// Drops every pending instance of `sig` (when it becomes ignored, or SIGCONT/stop).
    pub fn discard(&mut self, sig: i32) {
        self.queue.retain(|i| i.signo != sig);
        self.set.remove(sig);
    }
}

/// `stack_t` (`sigaltstack`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct StackT {
    pub sp: u64,
    pub flags: i32,
    pub pad: i32,
    pub size: u64,
}

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
pub const SS_AUTODISARM: i32 = 1 << 31;
pub const MINSIGSTKSZ: u64 = 2048;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_signals_coalesce_realtime_queue() {
        let mut p = Pending::default();
        assert!(p.push(SigInfo::kernel(SIGUSR1)));
        assert!(p.push(SigInfo::kernel(SIGUSR1)));
        assert!(p.push(SigInfo {
            value: 1,
            ..SigInfo::kernel(SIGRTMIN)
        }));
        assert!(p.push(SigInfo {
            value: 2,
            ..SigInfo::kernel(SIGRTMIN)
        }));
        assert_eq!(p.pop(SigSet::default()).unwrap().signo, SIGUSR1);
        assert_eq!(p.pop(SigSet::of(SIGUSR1)).unwrap().value, 1);
        assert_eq!(p.pop(SigSet::default()).unwrap().value, 2);
        assert!(p.pop(SigSet::default()).is_none());
        assert_eq!(p.set(), SigSet::default());
    }

    #[test]
    fn blocked_signals_stay_pending() {
        let mut p = Pending::default();
        p.push(SigInfo::kernel(SIGTERM));
        assert!(p.pop(SigSet::of(SIGTERM)).is_none());
        assert!(p.set().contains(SIGTERM));
    }

    #[test]
    fn siginfo_layout() {
        let i = SigInfo::fault(SIGSEGV, SEGV_MAPERR, 0xdead_0000);
        let b = i.bytes();
        assert_eq!(&b[0..4], &11i32.to_le_bytes());
        assert_eq!(&b[8..12], &1i32.to_le_bytes());
        assert_eq!(&b[16..24], &0xdead_0000u64.to_le_bytes());
        let c = SigInfo {
            status: 3,
            ..SigInfo::user(SIGCHLD, CLD_EXITED, 42, 0)
        };
        assert_eq!(&c.bytes()[24..28], &3i32.to_le_bytes());
    }
}
