//! Timers that send signals: `alarm`/`setitimer(ITIMER_REAL)` and POSIX timers
//! (`timer_create` with `SIGEV_SIGNAL`, `SIGEV_THREAD_ID`, `SIGEV_NONE`).
//!
//! One thread per sandbox sleeps until the earliest deadline, fires what is due (queueing
//! the signal on the process or thread) and re-arms periodic timers.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::process::{TaskHandle, ThreadGroup};
use super::signal::SigInfo;

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

struct Timer {
    deadline: Option<Instant>,
    interval: Duration,
    target: Target,
    /// The signal as it is queued (signo, code, value).
    info: SigInfo,
    /// Expirations since the last one whose signal was queued.
    overrun: u64,
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

    /// A new, disarmed timer.
    pub fn create(self: &Arc<Self>, target: Target, info: SigInfo) -> u64 {
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.timers.insert(
            id,
            Timer {
                deadline: None,
                interval: Duration::ZERO,
                target,
                info,
                overrun: 0,
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

    /// Arms (`Some`) or disarms (`None`) a timer; returns the time that was left and the
    /// old interval.
    pub fn set(
        &self,
        id: u64,
        deadline: Option<Instant>,
        interval: Duration,
    ) -> Option<(Duration, Duration)> {
        let mut s = self.lock();
        let t = s.timers.get_mut(&id)?;
        let old = (remaining(t.deadline), t.interval);
        t.deadline = deadline;
        t.interval = interval;
        t.overrun = 0;
        // A deadline already past fires now, not when the timer thread next looks (an
        // absolute time in the past, read back at once, has expired on Linux).
        let now = Instant::now();
        let fire = if deadline.is_some_and(|d| d <= now) {
            due(&mut s, now)
        } else {
            Vec::new()
        };
        drop(s);
        self.changed.notify_all();
        for (target, info, overrun) in fire {
            deliver(target, info, overrun);
        }
        Some(old)
    }

    /// The time left and the interval.
    pub fn get(&self, id: u64) -> Option<(Duration, Duration)> {
        let s = self.lock();
        let t = s.timers.get(&id)?;
        Some((remaining(t.deadline), t.interval))
    }

    pub fn overrun(&self, id: u64) -> Option<u64> {
        self.lock().timers.get(&id).map(|t| t.overrun)
    }

    pub fn delete(&self, id: u64) -> bool {
        let removed = self.lock().timers.remove(&id).is_some();
        self.changed.notify_all();
        removed
    }
}

fn remaining(deadline: Option<Instant>) -> Duration {
    deadline.map_or(Duration::ZERO, |d| {
        d.saturating_duration_since(Instant::now())
    })
}

/// The timer thread: fires due timers until the `Timers` is gone.
fn run(timers: &Weak<Timers>) {
    loop {
        let Some(t) = timers.upgrade() else { return };
        let fire = due(&mut t.lock(), Instant::now());
        // Delivered without the lock held (queueing takes the targets' locks).
        for (target, info, overrun) in fire {
            deliver(target, info, overrun);
        }
        // Sleep until the next deadline, or a change; at most a while, to notice the end.
        // The deadlines are read again under the lock, so a change made while the signals
        // were being delivered is not missed.
        let s = t.lock();
        let now = Instant::now();
        let next = s.timers.values().filter_map(|t| t.deadline).min();
        if next.is_some_and(|d| d <= now) {
            continue;
        }
        let wait = next.map_or(Duration::from_secs(1), |d| d.duration_since(now));
        let (s, _) = t
            .changed
            .wait_timeout(s, wait.min(Duration::from_secs(1)))
            .unwrap_or_else(|e| e.into_inner());
        drop(s);
    }
}

/// Takes the timers due at `now`: disarms one-shot ones, re-arms periodic ones (counting
/// missed periods as overruns), and returns what to deliver.
fn due(s: &mut State, now: Instant) -> Vec<(Target, SigInfo, u64)> {
    let mut fire = Vec::new();
    for timer in s.timers.values_mut() {
        let Some(deadline) = timer.deadline.filter(|d| *d <= now) else {
            continue;
        };
        if timer.interval.is_zero() {
            timer.deadline = None;
        } else {
            let behind = now.duration_since(deadline).as_nanos() / timer.interval.as_nanos();
            let periods = u32::try_from(behind + 1).unwrap_or(u32::MAX);
            timer.overrun = u64::from(periods - 1);
            timer.deadline = Some(deadline + timer.interval * periods);
        }
        fire.push((timer.target.clone(), timer.info, timer.overrun));
    }
    fire
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
}
