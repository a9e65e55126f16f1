//! The kernel proper: tasks and thread groups, and what they share.

pub mod clone;
pub mod control;
pub mod creds;
pub mod current;
mod fd_table;
pub mod futex;
pub mod futex_pi;
pub mod ipc;
mod limits;
pub mod oom;
pub mod process;
pub mod seccomp;
pub mod signal;
pub mod signal_frame;
mod task;
pub mod timer;
pub mod usage;
pub mod uts;
pub mod wait;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::errno::{Errno, SysResult};
use platform::{MemoryFile, Platform};

pub use creds::Credentials;
pub use fd_table::{FdTable, RawFd};
pub use limits::{Limits, Rlimit, RLIMIT_NLIMITS, RLIM_INFINITY};
pub use process::{TaskHandle, ThreadGroup};
pub use task::{InitSpec, Task, VforkDone};

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

/// One process as `bulwark ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    /// `R`, `T` (stopped) or `Z`.
    pub state: char,
    /// The arguments, each ended by a NUL (as `/proc/PID/cmdline`).
    pub cmdline: Vec<u8>,
}

/// What the whole sandbox shares: the platform, its memory, the IDs and the processes.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    next_id: AtomicI32,
    tables: Mutex<Tables>,
    pub futexes: futex::Futexes,
    pub timers: Arc<timer::Timers>,
    /// The vDSO mapped into every program (none if it could not be set up).
    pub vdso: Option<Arc<crate::vdso::Vdso>>,
    /// The UTS namespace the sandbox starts with (the OCI spec's `hostname` and
    /// `kernel.*name` sysctls set its names); a thread may move to another.
    pub uts: Arc<uts::UtsNamespace>,
    /// The container's seccomp policy (OCI `linux.seccomp`), checked on every
    /// application syscall once set.
    pub seccomp: std::sync::OnceLock<seccomp::Policy>,
    /// `bulwark pause`: application code does not run while set.
    frozen: std::sync::atomic::AtomicBool,
    thawed: std::sync::Condvar,
    freeze_lock: Mutex<()>,
    /// `--strace`: log every syscall with its arguments and result.
    pub strace: std::sync::atomic::AtomicBool,
    /// The names of the sandbox's Unix sockets.
    pub unix_names: Arc<crate::vfs::socket::Namespace>,
    /// The most tasks (threads) the sandbox may have at once: the container's pids limit
    /// (`u64::MAX`: none). Each task is a host thread of the Sentry, so the Sentry keeps
    /// to the limit itself, failing `clone` with `EAGAIN` as Linux's pids controller does.
    pids_limit: AtomicU64,
    /// The OOM killer's last victim.
    oom: oom::OomState,
    /// System V shared memory, semaphores and message queues (one IPC namespace).
    pub ipc: ipc::Ipc,
}

/// Processes and threads by ID (the sandbox's own PID namespace).
#[derive(Default)]
pub struct Tables {
    pub groups: BTreeMap<i32, Weak<ThreadGroup>>,
    /// Thread ID → the thread and its process.
    pub threads: BTreeMap<i32, (Weak<TaskHandle>, Weak<ThreadGroup>)>,
    /// The sandbox's init (PID 1): orphans are reparented to it.
    pub init: Option<Arc<ThreadGroup>>,
}

impl Kernel {
    pub fn new(platform: Arc<dyn Platform>) -> Arc<Self> {
        usage::init();
        let vdso = crate::vdso::Vdso::new(platform.memory_file(), platform.host_tsc())
            .map_err(|e| log::warn!("no vDSO: {e}"))
            .ok();
        Arc::new(Self {
            vdso,
            platform,
            next_id: AtomicI32::new(1),
            tables: Mutex::new(Tables::default()),
            futexes: futex::Futexes::default(),
            timers: Arc::new(timer::Timers::default()),
            strace: std::sync::atomic::AtomicBool::new(false),
            uts: Arc::default(),
            seccomp: std::sync::OnceLock::new(),
            frozen: std::sync::atomic::AtomicBool::new(false),
            thawed: std::sync::Condvar::new(),
            freeze_lock: Mutex::new(()),
            unix_names: Arc::default(),
            pids_limit: AtomicU64::new(u64::MAX),
            oom: oom::OomState::default(),
            ipc: ipc::Ipc::default(),
        })
    }

    /// The system's uptime as the sandbox sees it: its `CLOCK_BOOTTIME`, which the Sentry
    /// serves from the host's monotonic clock (so `/proc/uptime` and `sysinfo` agree with
    /// `clock_gettime`).
    pub fn uptime(&self) -> std::time::Duration {
        crate::syscalls::time::Clock::Monotonic.now()
    }

    /// The UTS namespace of thread `tid` (the sandbox's first one if there is no such
    /// thread).
    pub fn uts_of(&self, tid: i32) -> Arc<uts::UtsNamespace> {
        self.thread(tid)
            .map_or_else(|| Arc::clone(&self.uts), |(thread, _)| thread.uts())
    }

    pub fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The process with ID `tgid`, if it exists (zombies included).
    pub fn group(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        self.tables().groups.get(&tgid).and_then(Weak::upgrade)
    }

    /// The thread with ID `tid` and its process.
    pub fn thread(&self, tid: i32) -> Option<(Arc<TaskHandle>, Arc<ThreadGroup>)> {
        let tables = self.tables();
        let (t, g) = tables.threads.get(&tid)?;
        Some((t.upgrade()?, g.upgrade()?))
    }

    /// Every live process.
    pub fn groups(&self) -> Vec<Arc<ThreadGroup>> {
        self.tables()
            .groups
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    pub fn memory(&self) -> &Arc<MemoryFile> {
        self.platform.memory_file()
    }

    /// Stops every application thread before it next runs application code
    /// (`bulwark pause`); threads blocked in syscalls stay blocked, and stop on their way
    /// back.
    pub fn freeze(&self) {
        {
            let _guard = self.freeze_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.frozen.store(true, Ordering::SeqCst);
        }
        for group in self.groups() {
            for thread in group.state().threads.iter() {
                thread.kick();
            }
        }
    }

    /// Lets frozen threads run again (`bulwark resume`).
    pub fn thaw(&self) {
        let _guard = self.freeze_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.frozen.store(false, Ordering::SeqCst);
        self.thawed.notify_all();
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Relaxed)
    }

    /// Waits until the sandbox is thawed, or `group` is exiting (a SIGKILL ends a frozen
    /// process, as it does a cgroup-frozen one on Linux).
    pub fn wait_while_frozen(&self, group: &ThreadGroup) {
        let mut guard = self.freeze_lock.lock().unwrap_or_else(|e| e.into_inner());
        while self.frozen.load(Ordering::SeqCst) && group.state().exiting.is_none() {
            guard = self
                .thawed
                .wait_timeout(guard, std::time::Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The sandbox's processes, by PID, as `bulwark ps` shows them.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        let mut list: Vec<ProcessInfo> = self
            .groups()
            .into_iter()
            .map(|g| {
                let view = g.view();
                let state = g.state().run_state(g.tgid).0;
                ProcessInfo {
                    pid: g.tgid,
                    ppid: g.parent().map_or(0, |p| p.tgid),
                    uid: view.as_ref().map_or(0, |v| v.creds.uid),
                    state,
                    cmdline: view.map(|v| v.fs.cmdline()).unwrap_or_default(),
                }
            })
            .collect();
        list.sort_by_key(|p| p.pid);
        list
    }

    /// A process's CPU time: its exited threads' and its live threads'.
    pub fn group_usage(&self, group: &ThreadGroup) -> usage::Usage {
        let on_thread = self.platform.runs_on_caller_thread();
        let mut total = group.usage.exited();
        for t in group.state().threads.iter() {
            total += t.usage.usage(on_thread);
        }
        total
    }

    /// A new thread ID (the first is 1: the sandbox's init).
    /// Sets the most tasks the sandbox may have at once (the container's pids limit).
    pub fn set_pids_limit(&self, limit: u64) {
        self.pids_limit.store(limit, Ordering::Relaxed);
    }

    /// `EAGAIN` if one more task would go beyond the pids limit.
    pub fn check_pids_limit(&self) -> SysResult<()> {
        let limit = self.pids_limit.load(Ordering::Relaxed);
        let tasks = self.tables().threads.len() as u64;
        if tasks >= limit {
            return Err(Errno::EAGAIN);
        }
        Ok(())
    }

    pub fn allocate_tid(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}
