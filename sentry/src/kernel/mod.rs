//! The kernel proper: tasks and thread groups, and what they share.

mod fd_table;
mod limits;
mod task;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use platform::{MemoryFile, Platform};

pub use fd_table::{FdTable, RawFd};
pub use limits::{Limits, Rlimit, RLIMIT_NLIMITS, RLIM_INFINITY};
pub use task::{InitSpec, Task, ThreadGroup};

/// How a task or thread group ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit`/`exit_group` with this status (the low 8 bits are what `wait` reports).
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The status a shell reports: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            Self::Exited(code) => code & 0xff,
            Self::Signaled(sig) => 128 + sig,
        }
    }
}

/// A task's user and group IDs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
}

impl Credentials {
    /// The same IDs in every slot.
    pub fn new(uid: u32, gid: u32) -> Self {
        Self {
            uid,
            euid: uid,
            suid: uid,
            gid,
            egid: gid,
            sgid: gid,
        }
    }
}

/// What the whole sandbox shares: the platform, its memory, the ID allocator.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    next_id: AtomicI32,
}

impl Kernel {
    pub fn new(platform: Arc<dyn Platform>) -> Arc<Self> {
        Arc::new(Self {
            platform,
            next_id: AtomicI32::new(1),
        })
    }

    pub fn memory(&self) -> &Arc<MemoryFile> {
        self.platform.memory_file()
    }

    /// A new thread ID (the first is 1: the sandbox's init).
    pub fn allocate_tid(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
