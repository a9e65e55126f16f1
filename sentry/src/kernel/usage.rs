//! CPU time accounting, for `getrusage`, `times`, `wait4`'s rusage and the CPU-time
//! clocks.
//!
//! User time is the time a thread spends inside `Context::switch` (running application
//! code, or ready to), counted in TSC cycles: two `rdtsc` per switch, and a switch still
//! in progress counts up to the moment it is read (so that a CPU-time timer sees a thread
//! that spins in user code without a syscall). System time is the
//! CPU time of the host thread that serves the task; on a platform that runs application
//! code on that same thread (KVM), the user time is taken out of it.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// User and system time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
}

impl Usage {
    pub fn total(self) -> Duration {
        self.user + self.system
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.user += other.user;
        self.system += other.system;
    }
}

/// Clock ticks per second, as `times` and `/proc` count CPU and start times (`USER_HZ`).
const USER_HZ: u128 = 100;

/// `d` in clock ticks (`USER_HZ`).
pub fn clock_ticks(d: Duration) -> u64 {
    u64::try_from(d.as_nanos() * USER_HZ / 1_000_000_000).unwrap_or(u64::MAX)
}

/// A reference point for turning TSC cycles into time: the first reading, taken when
/// the first kernel starts.
fn origin() -> (u64, Instant) {
    static ORIGIN: OnceLock<(u64, Instant)> = OnceLock::new();
    *ORIGIN.get_or_init(|| (platform::rdtsc(), Instant::now()))
}

/// Takes the reference reading (call early, so that later conversions are accurate).
pub fn init() {
    let _ = origin();
}

/// `cycles` of the TSC as time, at the rate measured since [`init`].
fn cycles_to_duration(cycles: u64) -> Duration {
    let (tsc0, t0) = origin();
    let (elapsed, ticks) = (t0.elapsed(), platform::rdtsc().saturating_sub(tsc0));
    if ticks == 0 || elapsed.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u128::from(cycles) * elapsed.as_nanos() / u128::from(ticks);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// One thread's counters.
#[derive(Debug, Default)]
pub struct ThreadUsage {
    user_cycles: AtomicU64,
    /// The TSC when the switch in progress began; 0 outside a switch.
    switched_in: AtomicU64,
    /// The host thread serving the task (0 before it first runs).
    host_tid: AtomicI32,
}

impl ThreadUsage {
    /// Records the host thread now serving the task.
    pub fn set_host_thread(&self) {
        self.host_tid.store(
            rustix::thread::gettid().as_raw_nonzero().get(),
            Ordering::Relaxed,
        );
    }

    pub fn add_user_cycles(&self, cycles: u64) {
        self.user_cycles.fetch_add(cycles, Ordering::Relaxed);
    }

    /// The task enters `Context::switch` (`tsc`: the counter now).
    pub fn enter_switch(&self, tsc: u64) {
        self.switched_in.store(tsc.max(1), Ordering::SeqCst);
    }

    /// The task is back from `Context::switch`: its time there becomes user time.
    pub fn leave_switch(&self, tsc: u64) {
        let entered = self.switched_in.swap(0, Ordering::SeqCst);
        // Cleared before the cycles are added: a reader in between sees the switch
        // neither as running nor as counted, and under-counts for a moment rather than
        // counting it twice (a CPU timer must not fire early).
        self.user_cycles
            .fetch_add(tsc.wrapping_sub(entered), Ordering::SeqCst);
    }

    /// User cycles so far, with the switch in progress.
    fn cycles(&self) -> u64 {
        let done = self.user_cycles.load(Ordering::SeqCst);
        match self.switched_in.load(Ordering::SeqCst) {
            0 => done,
            entered => done.saturating_add(platform::rdtsc().saturating_sub(entered)),
        }
    }

    /// The thread's usage so far. `guest_on_thread`: the platform runs application code
    /// on the serving thread ([`platform::Platform::runs_on_caller_thread`]).
    pub fn usage(&self, guest_on_thread: bool) -> Usage {
        let user = cycles_to_duration(self.cycles());
        let cpu = match self.host_tid.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            tid => platform::thread_cpu_time(tid).unwrap_or_default(),
        };
        if guest_on_thread {
            // The host counts the thread's time in application code as its own CPU time,
            // and only while it ran: the cycles between entering and leaving application
            // code also count time the host gave to others, so they bound user time
            // from above and the host's figure is the total.
            let user = user.min(cpu);
            Usage {
                user,
                system: cpu - user,
            }
        } else {
            Usage { user, system: cpu }
        }
    }
}

/// A process's counters beyond its live threads.
#[derive(Debug, Default)]
pub struct GroupUsage {
    /// Threads that have exited.
    pub exited: Mutex<Usage>,
    /// Children that have been waited for (with what they had reaped themselves).
    pub children: Mutex<Usage>,
}

impl GroupUsage {
    pub fn add_exited(&self, u: Usage) {
        *self.exited.lock().unwrap_or_else(|e| e.into_inner()) += u;
    }

    pub fn add_children(&self, u: Usage) {
        *self.children.lock().unwrap_or_else(|e| e.into_inner()) += u;
    }

    pub fn exited(&self) -> Usage {
        *self.exited.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn children(&self) -> Usage {
        *self.children.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_threads_cpu_time_advances_and_cycles_convert() {
        init();
        let u = ThreadUsage::default();
        u.set_host_thread();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(u.usage(false).system >= Duration::from_millis(10));
        let t0 = platform::rdtsc();
        std::thread::sleep(Duration::from_millis(20));
        u.add_user_cycles(platform::rdtsc() - t0);
        let user = u.usage(false).user;
        assert!(
            user >= Duration::from_millis(15) && user < Duration::from_millis(200),
            "{user:?}"
        );
    }

    #[test]
    fn a_switch_in_progress_counts_as_user_time() {
        init();
        let u = ThreadUsage::default();
        u.enter_switch(platform::rdtsc());
        std::thread::sleep(Duration::from_millis(20));
        let running = u.usage(false).user;
        assert!(running >= Duration::from_millis(15), "{running:?}");
        u.leave_switch(platform::rdtsc());
        let after = u.usage(false).user;
        assert!(
            after >= running && after < Duration::from_millis(200),
            "{after:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
        // (The same cycles, converted at a rate measured a little later.)
        let later = u.usage(false).user;
        assert!(
            later.abs_diff(after) < Duration::from_millis(1),
            "{later:?} vs {after:?}: not counted outside a switch"
        );
    }
}
