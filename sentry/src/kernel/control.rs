//! What `prctl` sets on a thread or a process: its name, the parent-death signal, timer
//! slack, strict seccomp, and the dumpable flag.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::signal::{SigInfo, SI_USER};
use super::{Kernel, Task, ThreadGroup};

/// Linux's default timer slack (50 µs).
pub const DEFAULT_TIMER_SLACK_NS: u64 = 50_000;
/// The longest thread name (`TASK_COMM_LEN` less the NUL).
pub const NAME_MAX: usize = 15;

/// A thread's `prctl` state.
pub struct ThreadControl {
    /// `PR_SET_NAME`, or the program's name at `execve`; `None`: the executable's name.
    name: Mutex<Option<Vec<u8>>>,
    /// `PR_SET_PDEATHSIG`: sent to the process when its parent exits.
    pub pdeath_signal: AtomicI32,
    pub timer_slack_ns: AtomicU64,
    /// `SECCOMP_MODE_STRICT`: only read, write, exit and rt_sigreturn; anything else kills.
    pub seccomp_strict: AtomicBool,
    /// `set_robust_list`'s head, for `get_robust_list` from other threads.
    pub robust_list: AtomicU64,
    /// The nice value (`setpriority`), -20..=19.
    pub nice: AtomicI32,
}

impl Default for ThreadControl {
    fn default() -> Self {
        Self {
            name: Mutex::new(None),
            pdeath_signal: AtomicI32::new(0),
            timer_slack_ns: AtomicU64::new(DEFAULT_TIMER_SLACK_NS),
            seccomp_strict: AtomicBool::new(false),
            robust_list: AtomicU64::new(0),
            nice: AtomicI32::new(0),
        }
    }
}

impl ThreadControl {
    pub fn name(&self) -> Option<Vec<u8>> {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets the name, cut to [`NAME_MAX`] bytes.
    pub fn set_name(&self, name: Option<&[u8]>) {
        let name = name.map(|n| n[..n.len().min(NAME_MAX)].to_vec());
        *self.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
    }

    /// What a new thread or process takes from its creator (the parent-death signal is
    /// not inherited).
    pub fn inherit(&self, parent: &ThreadControl) {
        self.set_name(parent.name().as_deref());
        self.timer_slack_ns.store(
            parent.timer_slack_ns.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.seccomp_strict.store(
            parent.seccomp_strict.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.nice
            .store(parent.nice.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// At `execve` of `path`: the name becomes its last component.
    pub fn exec(&self, path: &[u8]) {
        self.robust_list.store(0, Ordering::Relaxed);
        let base = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
        self.set_name((!base.is_empty()).then_some(base));
    }
}

/// A process's `prctl` state.
pub struct ProcessControl {
    /// `PR_SET_DUMPABLE`: 1 by default, 0 when cleared.
    pub dumpable: AtomicI32,
    /// `PR_SET_CHILD_SUBREAPER`: orphaned descendants are reparented here rather than to
    /// init. Not inherited by `fork`.
    pub child_subreaper: AtomicBool,
}

impl Default for ProcessControl {
    fn default() -> Self {
        Self {
            dumpable: AtomicI32::new(1),
            child_subreaper: AtomicBool::new(false),
        }
    }
}

impl ProcessControl {
    /// A forked process's copy (Linux keeps the flag with the copied memory).
    pub fn inherit(&self, parent: &ProcessControl) {
        self.dumpable
            .store(parent.dumpable.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// Whether strict seccomp lets syscall `nr` through.
pub fn strict_seccomp_allows(nr: u64) -> bool {
    // read, write, exit, rt_sigreturn.
    matches!(nr, 0 | 1 | 60 | 15)
}

/// The parent of `children` is exiting: each child thread with a parent-death signal
/// gets it, from the parent (`SI_USER`, as Linux's `SEND_SIG_NOINFO`).
pub fn parent_died(kernel: &Kernel, children: &[Arc<ThreadGroup>], tgid: i32, uid: u32) {
    for child in children {
        let threads = child.state().threads.clone();
        for t in threads {
            let sig = t.control.pdeath_signal.load(Ordering::Relaxed);
            if sig > 0 {
                Task::send_to_group(kernel, child, SigInfo::user(sig, SI_USER, tgid, uid));
            }
        }
    }
}
