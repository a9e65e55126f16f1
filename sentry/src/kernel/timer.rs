//! Timers that send signals: `alarm`/`setitimer(ITIMER_REAL)` and POSIX timers
//! (`timer_create` with `SIGEV_SIGNAL`, `SIGEV_THREAD_ID`, `SIGEV_NONE`).
//!
//! A timer runs on the wall clock or on a CPU-time clock (`ITIMER_VIRTUAL`/`ITIMER_PROF`,
//! POSIX timers on CPU clocks, `RLIMIT_CPU`). One thread per sandbox sleeps until the
//! earliest deadline, fires what is due (queueing the signal on the process or thread) and
//! re-arms periodic timers. While a POSIX timer's signal waits undelivered, further
//! expirations count as its overrun instead of queueing again, as on Linux.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::process::{TaskHandle, ThreadGroup};
use super::signal::{SigInfo, SIGKILL, SIGXCPU};
use super::Kernel;

/// Where a timer's signal goes.
#[derive(Clone)]
pub enum Target {
    Process(Weak<ThreadGroup>),
    Thread(Weak<TaskHandle>),
    /// `SIGEV_NONE`: the timer only counts.
    Nothing,
    /// A timerfd: expirations are added to its count and its readers woken.
    Counter(Weak<Expirations>),
}

/// What a timerfd reads: expirations since the last read.
#[derive(Default)]
pub struct Expirations {
    pub count: Mutex<u64>,
    pub queue: super::wait::WaitQueue,
}

/// Reads a CPU-time clock: the CPU time used so far, or `None` once what it measures is
/// gone (the process or thread exited).
pub type CpuClock = Arc<dyn Fn() -> Option<Duration> + Send + Sync>;

/// `si_code` of a POSIX timer's signal: only these count overruns.
const SI_TIMER: i32 = -2;

/// How often armed CPU-time timers are looked at when one is near (Linux looks at its
/// tick, 4 ms at HZ=250). No CPU timer armed, no looking.
const CPU_POLL: Duration = Duration::from_millis(4);

/// How long the timer thread may sleep while CPU-time timers are armed, the nearest `left`
/// away on its clock: [`CPU_POLL`], or longer for one far away (a 1/16 of what is left:
/// sixteen threads spinning would not overshoot it).
fn cpu_poll(left: Duration) -> Duration {
    left.min(CPU_POLL)
        .max(left / 16)
        .clamp(Duration::from_micros(500), Duration::from_secs(1))
}

struct Timer {
    /// The clock: `None` for the wall clock, or a CPU-time clock.
    cpu: Option<CpuClock>,
    /// When it expires, on its clock (the wall clock counts from [`epoch`]).
    deadline: Option<Duration>,
    interval: Duration,
    target: Target,
    /// The signal as it is queued (signo, code, value).
    info: SigInfo,
    /// Expirations folded into the signal last queued (its `si_overrun`).
    overrun: u64,
    /// The overrun of the signal queued before that one: what `timer_getoverrun` reports
    /// while the newer signal waits.
    overrun_last: u64,
}

impl Timer {
    /// The timer's clock now: the wall clock, or the CPU clock as read in `cpu_now`.
    fn now(
        &self,
        id: u64,
        wall: Duration,
        cpu_now: &HashMap<u64, Option<Duration>>,
    ) -> Option<Duration> {
        match self.cpu {
            None => Some(wall),
            Some(_) => cpu_now.get(&id).copied().flatten(),
        }
    }
}

/// The origin of wall-clock deadlines.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as a wall-clock deadline (an instant before the epoch is due at once).
fn since_epoch(at: Instant) -> Duration {
    at.saturating_duration_since(epoch())
}

#[derive(Default)]
struct State {
    timers: HashMap<u64, Timer>,
    next_id: u64,
    thread_started: bool,
}

/// The sandbox's timers.
#[derive(Default)]
pub struct Timers {
    state: Mutex<State>,
    changed: Condvar,
}

impl Timers {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new, disarmed timer on the wall clock.
    pub fn create(self: &Arc<Self>, target: Target, info: SigInfo) -> u64 {
        self.create_on(None, target, info)
    }

    /// A new, disarmed timer on a CPU-time clock.
    pub fn create_cpu(self: &Arc<Self>, clock: CpuClock, target: Target, info: SigInfo) -> u64 {
        self.create_on(Some(clock), target, info)
    }

    fn create_on(self: &Arc<Self>, cpu: Option<CpuClock>, target: Target, info: SigInfo) -> u64 {
        let _ = epoch();
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.timers.insert(
            id,
            Timer {
                cpu,
                deadline: None,
                interval: Duration::ZERO,
                target,
                info,
                overrun: 0,
                overrun_last: 0,
            },
        );
        if !s.thread_started {
            s.thread_started = true;
            let weak = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("timers".to_string())
                .spawn(move || run(&weak));
            if spawned.is_err() {
                s.thread_started = false;
                log::error!("cannot start the timer thread");
            }
        }
        id
    }

    /// The clock of timer `id` now (`None`: no such timer, or its clock is gone).
    fn clock_now(&self, id: u64) -> Option<Duration> {
        let cpu = self.lock().timers.get(&id)?.cpu.clone();
        match cpu {
            None => Some(since_epoch(Instant::now())),
            Some(clock) => clock(),
        }
    }

    /// Arms (`Some`) or disarms (`None`) a wall-clock timer; returns the time that was
    /// left and the old interval.
    pub fn set(
        &self,
        id: u64,
        deadline: Option<Instant>,
        interval: Duration,
    ) -> Option<(Duration, Duration)> {
        self.arm(id, deadline.map(since_epoch), interval)
    }

    /// Arms (`Some`) or disarms (`None`) a CPU-time timer, `value` from now or, with
    /// `absolute`, as a reading of its clock; returns what [`Timers::set`] does.
    pub fn set_cpu(
        &self,
        id: u64,
        value: Option<Duration>,
        absolute: bool,
        interval: Duration,
    ) -> Option<(Duration, Duration)> {
        let deadline = match value {
            Some(v) if absolute => Some(v),
            // A clock that is gone never reaches the deadline.
            Some(v) => Some(
                self.clock_now(id)
                    .map_or(Duration::MAX, |now| now.saturating_add(v)),
            ),
            None => None,
        };
        self.arm(id, deadline, interval)
    }

    fn arm(
        &self,
        id: u64,
        deadline: Option<Duration>,
        interval: Duration,
    ) -> Option<(Duration, Duration)> {
        let old = self.get(id)?;
        let now = self.clock_now(id);
        let mut s = self.lock();
        let t = s.timers.get_mut(&id)?;
        t.deadline = deadline;
        t.interval = interval;
        t.overrun = 0;
        t.overrun_last = 0;
        // A deadline already past fires now, not when the timer thread next looks (an
        // absolute time in the past, read back at once, has expired on Linux).
        let fire = match (deadline, now) {
            (Some(d), Some(now)) if d <= now => fire(t, now).map(|f| (id, f)),
            _ => None,
        };
        drop(s);
        self.changed.notify_all();
        if let Some((id, f)) = fire {
            self.deliver(id, f);
        }
        Some(old)
    }

    /// The time left (on the timer's clock) and the interval.
    pub fn get(&self, id: u64) -> Option<(Duration, Duration)> {
        let now = self.clock_now(id);
        let s = self.lock();
        let t = s.timers.get(&id)?;
        let left = match (t.deadline, now) {
            (None, _) => Duration::ZERO,
            // Due but not yet fired: about to (Linux says 1 ns).
            (Some(d), Some(now)) => d.saturating_sub(now).max(Duration::from_nanos(1)),
            (Some(_), None) => Duration::MAX,
        };
        Some((left, t.interval))
    }

    /// `timer_getoverrun`: the overrun of the timer's signal last delivered.
    pub fn overrun(&self, id: u64) -> Option<u64> {
        let (target, info) = {
            let s = self.lock();
            let t = s.timers.get(&id)?;
            (t.target.clone(), t.info)
        };
        let waiting = with_queued(&target, &info, |_| ());
        let s = self.lock();
        let t = s.timers.get(&id)?;
        Some(if waiting { t.overrun_last } else { t.overrun })
    }

    pub fn delete(&self, id: u64) -> bool {
        let removed = self.lock().timers.remove(&id).is_some();
        self.changed.notify_all();
        removed
    }

    /// Queues a fired timer's signal, or adds to the overrun of the one still queued.
    fn deliver(&self, id: u64, f: Fired) {
        let extra = f.periods - 1;
        let overrun = u32::try_from(f.periods).unwrap_or(u32::MAX);
        if with_queued(&f.target, &f.info, |q| {
            q.uid = q.uid.saturating_add(overrun)
        }) {
            if let Some(t) = self.lock().timers.get_mut(&id) {
                t.overrun = t.overrun.saturating_add(f.periods);
            }
            return;
        }
        let mut info = f.info;
        if info.code == SI_TIMER {
            if let Some(t) = self.lock().timers.get_mut(&id) {
                t.overrun_last = t.overrun;
                t.overrun = extra;
            }
            // `si_overrun`, where `si_uid` is for other signals.
            info.uid = u32::try_from(extra).unwrap_or(u32::MAX);
        }
        deliver(f.target, info, extra);
    }
}

/// The clock of a POSIX timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PosixClock {
    Realtime,
    Monotonic,
    /// A process's or thread's CPU time.
    Cpu,
}

/// A process's CPU time as a timer's clock: user time only (`ITIMER_VIRTUAL`) or user and
/// system (`ITIMER_PROF`, `CLOCK_PROCESS_CPUTIME_ID`). Gone once the process has no
/// threads left.
pub fn process_clock(kernel: &Kernel, group: &Arc<ThreadGroup>, user_only: bool) -> CpuClock {
    let on_thread = kernel.platform.runs_on_caller_thread();
    let group = Arc::downgrade(group);
    Arc::new(move || {
        let group = group.upgrade()?;
        let threads = group.state().threads.clone();
        if threads.is_empty() {
            return None;
        }
        let mut usage = group.usage.exited();
        for t in &threads {
            usage += t.usage.usage(on_thread);
        }
        Some(if user_only { usage.user } else { usage.total() })
    })
}

/// A thread's CPU time (user and system) as a timer's clock; gone once the thread has
/// left its process.
pub fn thread_clock(
    kernel: &Kernel,
    group: &Arc<ThreadGroup>,
    thread: &Arc<TaskHandle>,
) -> CpuClock {
    let on_thread = kernel.platform.runs_on_caller_thread();
    let (group, thread) = (Arc::downgrade(group), Arc::downgrade(thread));
    Arc::new(move || {
        let (group, thread) = (group.upgrade()?, thread.upgrade()?);
        let live = group
            .state()
            .threads
            .iter()
            .any(|t| Arc::ptr_eq(t, &thread));
        live.then(|| thread.usage.usage(on_thread).total())
    })
}

/// Arms `group`'s `RLIMIT_CPU` timers for its limit (`live`), or only removes them (at
/// exit). As Linux: SIGXCPU at the soft limit and every second after, SIGKILL at the hard
/// limit (only where the soft limit is finite).
pub fn apply_cpu_limit(kernel: &Kernel, group: &Arc<ThreadGroup>, live: bool) {
    let mut slot = group.cpu_limit.lock().unwrap_or_else(|e| e.into_inner());
    for id in slot.drain(..) {
        kernel.timers.delete(id);
    }
    let Ok(limit) = group.limits().get(0) else {
        return;
    };
    if !live || limit.cur == super::limits::RLIM_INFINITY {
        return;
    }
    let secs = |s: u64| Duration::from_secs(s);
    let target = || Target::Process(Arc::downgrade(group));
    let clock = process_clock(kernel, group, false);
    if limit.cur < limit.max {
        let id = kernel
            .timers
            .create_cpu(Arc::clone(&clock), target(), SigInfo::kernel(SIGXCPU));
        kernel
            .timers
            .set_cpu(id, Some(secs(limit.cur)), true, secs(1));
        slot.push(id);
    }
    if limit.max != super::limits::RLIM_INFINITY {
        let id = kernel
            .timers
            .create_cpu(clock, target(), SigInfo::kernel(SIGKILL));
        kernel
            .timers
            .set_cpu(id, Some(secs(limit.max)), true, Duration::ZERO);
        slot.push(id);
    }
}

/// What an expiry delivers.
struct Fired {
    target: Target,
    info: SigInfo,
    /// Periods gone by since the deadline (1 plus the missed ones).
    periods: u64,
}

/// Expires `t` (due at `now`): disarms a one-shot timer, re-arms a periodic one past
/// `now` (missed periods are overruns).
fn fire(t: &mut Timer, now: Duration) -> Option<Fired> {
    let deadline = t.deadline.filter(|d| *d <= now)?;
    let periods = if t.interval.is_zero() {
        t.deadline = None;
        1
    } else {
        let behind = (now - deadline).as_nanos() / t.interval.as_nanos();
        let periods = u32::try_from(behind + 1).unwrap_or(u32::MAX);
        t.deadline = Some(deadline.saturating_add(t.interval.saturating_mul(periods)));
        u64::from(periods)
    };
    Some(Fired {
        target: t.target.clone(),
        info: t.info,
        periods,
    })
}

/// Runs `update` on the target's queued instance of a POSIX timer's signal, if one waits
/// (not yet delivered); whether one did.
fn with_queued(target: &Target, info: &SigInfo, update: impl FnOnce(&mut SigInfo)) -> bool {
    if info.code != SI_TIMER {
        return false;
    }
    let same = |q: &SigInfo| q.signo == info.signo && q.code == SI_TIMER && q.pid == info.pid;
    let found = match target {
        Target::Process(g) => g.upgrade().and_then(|g| {
            let mut s = g.state();
            s.pending.queued_mut(same).map(update)
        }),
        Target::Thread(h) => h.upgrade().and_then(|h| {
            let mut s = h.signals();
            s.pending.queued_mut(same).map(update)
        }),
        Target::Nothing | Target::Counter(_) => None,
    };
    found.is_some()
}

/// The timer thread: fires due timers until the `Timers` is gone. It sleeps until the
/// next wall-clock deadline; while a CPU-time timer is armed, it also wakes every few
/// milliseconds to read the CPU clocks (a thread spinning in application code makes no
/// syscall that could notice; the signal's kick interrupts it).
fn run(timers: &Weak<Timers>) {
    loop {
        let Some(t) = timers.upgrade() else { return };
        // The CPU clocks are read without the lock held (they take the processes' locks).
        let clocks: Vec<(u64, CpuClock)> = t
            .lock()
            .timers
            .iter()
            .filter(|(_, t)| t.deadline.is_some())
            .filter_map(|(id, t)| Some((*id, t.cpu.clone()?)))
            .collect();
        let cpu_now: HashMap<u64, Option<Duration>> = clocks
            .into_iter()
            .map(|(id, clock)| (id, clock()))
            .collect();
        let wall = since_epoch(Instant::now());
        let mut fired = Vec::new();
        let mut cpu_wait: Option<Duration> = None;
        {
            let mut s = t.lock();
            for (id, timer) in s.timers.iter_mut() {
                let Some(deadline) = timer.deadline else {
                    continue;
                };
                let Some(now) = timer.now(*id, wall, &cpu_now) else {
                    if timer.cpu.is_some() && cpu_now.contains_key(id) {
                        // Its process or thread is gone: it can never expire.
                        timer.deadline = None;
                    }
                    continue;
                };
                if let Some(f) = fire(timer, now) {
                    fired.push((*id, f));
                } else if timer.cpu.is_some() {
                    let left = deadline.saturating_sub(now);
                    cpu_wait = Some(cpu_wait.map_or(left, |w| w.min(left)));
                }
            }
        }
        // Delivered without the lock held (queueing takes the targets' locks).
        for (id, f) in fired {
            t.deliver(id, f);
        }
        // Sleep until the next deadline, or a change; at most a while, to notice the end.
        // The deadlines are read again under the lock, so a change made while the signals
        // were being delivered is not missed.
        let s = t.lock();
        let wall = since_epoch(Instant::now());
        let next = s
            .timers
            .values()
            .filter(|t| t.cpu.is_none())
            .filter_map(|t| t.deadline)
            .min();
        if next.is_some_and(|d| d <= wall) {
            continue;
        }
        let mut wait = next.map_or(Duration::from_secs(1), |d| d - wall);
        let cpu_armed = s
            .timers
            .values()
            .any(|t| t.cpu.is_some() && t.deadline.is_some());
        if cpu_armed {
            wait = wait.min(cpu_poll(cpu_wait.unwrap_or(CPU_POLL)));
        }
        let (s, _) = t
            .changed
            .wait_timeout(s, wait.min(Duration::from_secs(1)))
            .unwrap_or_else(|e| e.into_inner());
        drop(s);
    }
}

fn deliver(target: Target, info: SigInfo, overrun: u64) {
    match target {
        Target::Process(g) => {
            if let Some(g) = g.upgrade() {
                g.queue_signal(info);
            }
        }
        Target::Thread(h) => {
            if let Some(h) = h.upgrade() {
                h.signals().pending.push(info);
                h.kick();
            }
        }
        Target::Nothing => {}
        Target::Counter(c) => {
            if let Some(c) = c.upgrade() {
                let mut n = c.count.lock().unwrap_or_else(|e| e.into_inner());
                *n = n.saturating_add(1 + overrun);
                drop(n);
                c.queue.notify_all();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_get_disarm() {
        let timers = Arc::new(Timers::default());
        let id = timers.create(Target::Nothing, SigInfo::default());
        assert_eq!(timers.get(id), Some((Duration::ZERO, Duration::ZERO)));
        timers.set(
            id,
            Some(Instant::now() + Duration::from_secs(10)),
            Duration::from_secs(1),
        );
        let (left, interval) = timers.get(id).unwrap();
        assert!(left > Duration::from_secs(9) && interval == Duration::from_secs(1));
        let (old_left, _) = timers.set(id, None, Duration::ZERO).unwrap();
        assert!(old_left > Duration::from_secs(9));
        assert_eq!(timers.get(id).unwrap().0, Duration::ZERO);
        assert!(timers.delete(id));
        assert!(timers.get(id).is_none());
    }

    #[test]
    fn periodic_timer_fires_and_rearms() {
        let timers = Arc::new(Timers::default());
        let id = timers.create(Target::Nothing, SigInfo::default());
        timers.set(
            id,
            Some(Instant::now() + Duration::from_millis(5)),
            Duration::from_millis(5),
        );
        std::thread::sleep(Duration::from_millis(60));
        let (left, _) = timers.get(id).unwrap();
        assert!(
            left <= Duration::from_millis(5),
            "re-armed for the next period"
        );
    }

    #[test]
    fn a_one_shot_timer_is_delivered_at_its_deadline() {
        // Delivery used to wait for the timer thread's next sleep to end (up to 1 s).
        let timers = Arc::new(Timers::default());
        let counter = Arc::new(Expirations::default());
        let id = timers.create(
            Target::Counter(Arc::downgrade(&counter)),
            SigInfo::default(),
        );
        let start = Instant::now();
        timers.set(id, Some(start + Duration::from_millis(20)), Duration::ZERO);
        while *counter.count.lock().unwrap() == 0 {
            assert!(
                start.elapsed() < Duration::from_millis(500),
                "not delivered"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn cpu_timers_are_looked_at_often_only_when_near() {
        assert_eq!(cpu_poll(Duration::from_millis(20)), CPU_POLL);
        assert_eq!(cpu_poll(Duration::from_millis(1)), Duration::from_millis(1));
        assert_eq!(cpu_poll(Duration::ZERO), Duration::from_micros(500));
        assert_eq!(
            cpu_poll(Duration::from_millis(160)),
            Duration::from_millis(10)
        );
        assert_eq!(cpu_poll(Duration::from_secs(100)), Duration::from_secs(1));
    }

    #[test]
    fn a_cpu_timer_follows_its_clock_not_the_wall_clock() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let used = Arc::new(AtomicU64::new(0));
        let reading = Arc::clone(&used);
        let clock: CpuClock =
            Arc::new(move || Some(Duration::from_millis(reading.load(Ordering::SeqCst))));
        let timers = Arc::new(Timers::default());
        let counter = Arc::new(Expirations::default());
        let target = Target::Counter(Arc::downgrade(&counter));
        let id = timers.create_cpu(clock, target, SigInfo::default());
        used.store(100, Ordering::SeqCst);
        timers.set_cpu(id, Some(Duration::from_millis(10)), false, Duration::ZERO);
        assert_eq!(timers.get(id).unwrap().0, Duration::from_millis(10));
        // Wall time passes, the CPU clock stands still: nothing fires.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(*counter.count.lock().unwrap(), 0);
        used.store(105, Ordering::SeqCst);
        assert_eq!(timers.get(id).unwrap().0, Duration::from_millis(5));
        used.store(111, Ordering::SeqCst);
        let start = Instant::now();
        while *counter.count.lock().unwrap() == 0 {
            assert!(start.elapsed() < Duration::from_secs(1), "not fired");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(timers.get(id).unwrap().0, Duration::ZERO, "one-shot");
        // Absolute and periodic: 3 periods behind count as 2 overruns on top of one.
        timers.set_cpu(
            id,
            Some(Duration::from_millis(120)),
            true,
            Duration::from_millis(10),
        );
        used.store(141, Ordering::SeqCst);
        let start = Instant::now();
        while *counter.count.lock().unwrap() < 4 {
            assert!(start.elapsed() < Duration::from_secs(1), "not fired");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(timers.get(id).unwrap().0, Duration::from_millis(9));
    }
}
