//! Thread groups (processes) and the shared half of each thread: what other threads use to
//! signal, wake or wait for them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use platform::Interrupter;

use super::signal::{Pending, SigActions, SigInfo, SigSet};
use super::wait::{WaitQueue, Waker};
use super::{ExitStatus, Limits};

/// The host's CPU count, as the sandbox shows it everywhere (sched_getaffinity, /proc,
/// /sys). Computed once: std's `available_parallelism` opens files in `/proc` each time,
/// which the Sentry's seccomp filter forbids once the program runs.
pub fn host_cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The mask of every CPU the sandbox shows (the host's count, at most 64).
pub fn all_cpus() -> u64 {
    let n = host_cpus().min(64);
    if n == 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// What other threads hold of a task: its ID, how to wake it, its signal state.
pub struct TaskHandle {
    pub tid: Mutex<i32>,
    /// Set to make just this thread exit (the others of an `execve`).
    exit_alone: AtomicBool,
    /// `sched_setaffinity`: the CPUs the thread may run on (bit N: CPU N).
    pub affinity: std::sync::atomic::AtomicU64,
    pub waker: Arc<Waker>,
    interrupter: Interrupter,
    signals: Mutex<ThreadSignals>,
    /// What `prctl` set on the thread.
    pub control: super::control::ThreadControl,
    /// CPU time.
    pub usage: super::usage::ThreadUsage,
    /// Entries into and exits from application code: odd while the thread runs it.
    /// `membarrier` waits for a running thread's count to move (each exit to the
    /// Sentry is a full memory barrier on the CPU it ran on).
    pub app_switches: std::sync::atomic::AtomicU64,
    /// The thread's UTS namespace.
    uts: Mutex<Arc<super::uts::UtsNamespace>>,
}

/// A thread's own signal state.
#[derive(Default)]
pub struct ThreadSignals {
    pub mask: SigSet,
    pub pending: Pending,
    /// The mask to restore after `rt_sigsuspend`/`ppoll` delivered a signal.
    pub saved_mask: Option<SigSet>,
}

impl TaskHandle {
    pub fn new(
        tid: i32,
        interrupter: Interrupter,
        mask: SigSet,
        uts: Arc<super::uts::UtsNamespace>,
    ) -> Arc<Self> {
        Arc::new(Self {
            tid: Mutex::new(tid),
            exit_alone: AtomicBool::new(false),
            affinity: std::sync::atomic::AtomicU64::new(all_cpus()),
            waker: Waker::new(),
            interrupter,
            signals: Mutex::new(ThreadSignals {
                mask,
                ..ThreadSignals::default()
            }),
            control: super::control::ThreadControl::default(),
            usage: super::usage::ThreadUsage::default(),
            app_switches: std::sync::atomic::AtomicU64::new(0),
            uts: Mutex::new(uts),
        })
    }

    /// The thread's UTS namespace.
    pub fn uts(&self) -> Arc<super::uts::UtsNamespace> {
        Arc::clone(&self.uts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Moves the thread to another UTS namespace (`unshare`, `setns`).
    pub fn set_uts(&self, uts: Arc<super::uts::UtsNamespace>) {
        *self.uts.lock().unwrap_or_else(|e| e.into_inner()) = uts;
    }

    /// Makes the thread pass through a full memory barrier if it is running application
    /// code now: interrupts it and waits (up to `limit`) until it has left that code.
    /// A thread in the Sentry needs nothing: it barriers on its way back in.
    pub fn barrier(&self, limit: std::time::Duration) {
        let seen = self.app_switches.load(Ordering::SeqCst);
        if seen.is_multiple_of(2) {
            return;
        }
        self.interrupter.interrupt();
        let start = std::time::Instant::now();
        while self.app_switches.load(Ordering::SeqCst) == seen && start.elapsed() < limit {
            std::thread::yield_now();
        }
    }

    pub fn tid(&self) -> i32 {
        *self.tid.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn signals(&self) -> MutexGuard<'_, ThreadSignals> {
        self.signals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes this thread (only) exit.
    pub fn exit_thread_only(&self) {
        self.exit_alone.store(true, Ordering::Release);
        self.kick();
    }

    pub fn must_exit_alone(&self) -> bool {
        self.exit_alone.load(Ordering::Acquire)
    }

    /// Makes the task look at its state: wakes it from a blocking wait and stops its
    /// application code.
    pub fn kick(&self) {
        self.waker.wake();
        self.interrupter.interrupt();
        // Every queued signal kicks a thread of its target: signalfd readers look again.
        super::signal::SIGNAL_EVENTS.notify_all();
    }
}

/// What procfs shows of a process: its leader's credentials, descriptors, memory and
/// filesystem context, kept current at creation, exec and credential changes.
#[derive(Clone)]
pub struct ProcessView {
    pub creds: super::Credentials,
    pub fds: Arc<super::FdTable>,
    pub mm: Arc<crate::mm::MemoryManager>,
    pub fs: Arc<crate::vfs::FsContext>,
}

/// A stop or continue a parent has not yet collected with `wait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    Stopped(i32),
    Continued,
}

/// A process's shared, changing state.
pub struct GroupState {
    pub parent: Weak<ThreadGroup>,
    pub children: Vec<Arc<ThreadGroup>>,
    pub threads: Vec<Arc<TaskHandle>>,
    /// Process-directed pending signals.
    pub pending: Pending,
    /// Set when the whole group is exiting (`exit_group`, a fatal signal).
    pub exiting: Option<ExitStatus>,
    /// Set once the last thread is gone: the status the parent collects.
    pub zombie: Option<ExitStatus>,
    /// Stopped by a stop signal (job control).
    pub stopped: bool,
    pub job_event: Option<JobEvent>,
    pub pgid: i32,
    pub sid: i32,
    /// The controlling terminal (Linux's `signal->tty`): inherited at fork, dropped by
    /// `setsid`.
    pub ctty: Option<Arc<crate::vfs::tty::Pty>>,
    /// The signal sent to the parent at exit (SIGCHLD, or clone's choice; 0 for none).
    pub exit_signal: i32,
}

impl GroupState {
    /// The state `ps` and `/proc/PID/stat` show for thread `tid` of the process: `Z` (a
    /// zombie), `T` (stopped), `S` (the thread sleeps in a syscall) or `R`, with its name
    /// as `/proc/PID/status` spells it. For the process, Linux shows its main thread's.
    pub fn run_state(&self, tid: i32) -> (char, &'static str) {
        if self.zombie.is_some() {
            ('Z', "zombie")
        } else if self.stopped {
            ('T', "stopped")
        } else if self
            .threads
            .iter()
            .find(|t| t.tid() == tid)
            .is_some_and(|t| t.waker.is_sleeping())
        {
            ('S', "sleeping")
        } else {
            ('R', "running")
        }
    }
}

/// A process.
pub struct ThreadGroup {
    pub tgid: i32,
    pub limits: Mutex<Limits>,
    /// Signal actions; shared with `CLONE_SIGHAND` relatives.
    pub sighand: Mutex<Arc<Mutex<SigActions>>>,
    state: Mutex<GroupState>,
    /// Notified when a child changes state (exits, stops, continues): `wait` sleeps here.
    pub child_events: WaitQueue,
    /// Notified when this group becomes a zombie.
    pub exited: WaitQueue,
    /// The interval timers (`setitimer`), by `which`: `ITIMER_REAL` (also `alarm`),
    /// `ITIMER_VIRTUAL`, `ITIMER_PROF`: the kernel timers behind them, once made.
    pub itimers: Mutex<[Option<u64>; 3]>,
    /// `RLIMIT_CPU`'s kernel timers (SIGXCPU at the soft limit, SIGKILL at the hard one),
    /// while the limit is finite.
    pub cpu_limit: Mutex<Vec<u64>>,
    /// What procfs shows of it (`None` once it has exited).
    pub view: Mutex<Option<ProcessView>>,
    /// POSIX timers: the process's timer IDs to kernel timers, and the timer's clock.
    pub posix_timers: Mutex<std::collections::BTreeMap<i32, (u64, super::timer::PosixClock)>>,
    /// What `prctl` set on the process.
    pub control: super::control::ProcessControl,
    /// CPU time of exited threads and of reaped children.
    pub usage: super::usage::GroupUsage,
    /// When the process was created, as time since boot (`CLOCK_BOOTTIME`).
    pub start_time: std::time::Duration,
}

impl ThreadGroup {
    pub fn new(
        tgid: i32,
        parent: Option<&Arc<ThreadGroup>>,
        sighand: Arc<Mutex<SigActions>>,
        limits: Limits,
        exit_signal: i32,
    ) -> Arc<Self> {
        let (pgid, sid, ctty) = match parent {
            Some(p) => {
                let s = p.state();
                (s.pgid, s.sid, s.ctty.clone())
            }
            None => (tgid, tgid, None),
        };
        Arc::new(Self {
            tgid,
            limits: Mutex::new(limits),
            sighand: Mutex::new(sighand),
            state: Mutex::new(GroupState {
                parent: parent.map(Arc::downgrade).unwrap_or_default(),
                children: Vec::new(),
                threads: Vec::new(),
                pending: Pending::default(),
                exiting: None,
                zombie: None,
                stopped: false,
                job_event: None,
                pgid,
                sid,
                ctty,
                exit_signal,
            }),
            child_events: WaitQueue::default(),
            exited: WaitQueue::default(),
            itimers: Mutex::new([None; 3]),
            cpu_limit: Mutex::new(Vec::new()),
            view: Mutex::new(None),
            posix_timers: Mutex::new(std::collections::BTreeMap::new()),
            control: super::control::ProcessControl::default(),
            usage: super::usage::GroupUsage::default(),
            start_time: crate::syscalls::time::Clock::Monotonic.now(),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn limits(&self) -> MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn sighand(&self) -> Arc<Mutex<SigActions>> {
        Arc::clone(&self.sighand.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn parent(&self) -> Option<Arc<ThreadGroup>> {
        self.state().parent.upgrade()
    }

    pub fn view(&self) -> Option<ProcessView> {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_view(&self, view: Option<ProcessView>) {
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = view;
    }

    /// Starts the exit of every thread with `status` (the first cause wins).
    pub fn begin_exit(&self, status: ExitStatus) {
        let threads = {
            let mut s = self.state();
            if s.exiting.is_none() {
                s.exiting = Some(status);
            }
            s.stopped = false;
            s.threads.clone()
        };
        for t in threads {
            t.kick();
        }
    }

    /// Queues a process-directed signal and kicks a thread that does not block it.
    pub fn queue_signal(&self, info: SigInfo) -> bool {
        // An ignored signal is discarded when it is sent, as on Linux, unless the main
        // thread blocks it (its action may change before it is unblocked); a pending
        // ignored signal would otherwise interrupt a blocking syscall.
        let ignored = self
            .sighand()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_ignored(info.signo);
        let threads = {
            let mut s = self.state();
            let blocked = s
                .threads
                .first()
                .is_some_and(|t| t.signals().mask.contains(info.signo));
            if ignored && !blocked {
                return true;
            }
            if !s.pending.push(info) {
                return false;
            }
            s.threads.clone()
        };
        let target = threads
            .iter()
            .find(|t| !t.signals().mask.contains(info.signo))
            .or_else(|| threads.first());
        if let Some(t) = target {
            t.kick();
        }
        true
    }

    /// Waits until the group is a zombie and returns its status.
    pub fn wait_exit(&self, waker: &Arc<Waker>) -> ExitStatus {
        let _reg = self.exited.register(waker);
        loop {
            let seen = waker.generation();
            if let Some(status) = self.state().zombie {
                return status;
            }
            waker.sleep(seen, None);
        }
    }
}
