//! Blocking: how a task sleeps in a syscall until an event, a signal or a deadline.
//!
//! Every task has one [`Waker`]. A blocking syscall registers the task's waker with the
//! [`WaitQueue`]s of whatever it waits for (a futex word, a child's exit, a pipe), then
//! loops: check the condition, check for a pending signal, sleep. Anything that may
//! change the condition calls `WaitQueue::notify_all`, which wakes the registered wakers;
//! a signal wakes the target's waker directly. The generation counter makes the check and
//! the sleep race-free: a wake between them bumps the generation, and the sleep returns
//! at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

/// One task's means of being woken.
#[derive(Default)]
pub struct Waker {
    generation: Mutex<u64>,
    cond: Condvar,
    /// Set while the task sleeps in [`Waker::sleep`] (`S` in `/proc/PID/stat`).
    sleeping: std::sync::atomic::AtomicBool,
}

impl Waker {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.generation.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current generation; pass it to [`Waker::sleep`] after checking the condition.
    pub fn generation(&self) -> u64 {
        *self.lock()
    }

    /// Wakes the task if it sleeps, or makes its next sleep return at once.
    pub fn wake(&self) {
        *self.lock() += 1;
        self.cond.notify_all();
    }

    /// Sleeps until the generation moves past `seen` or `deadline` passes. Returns false
    /// on timeout.
    pub fn sleep(&self, seen: u64, deadline: Option<Instant>) -> bool {
        let generation = self.lock();
        if *generation != seen {
            return true;
        }
        self.sleeping.store(true, Ordering::Relaxed);
        let woken = self.wait(generation, seen, deadline);
        self.sleeping.store(false, Ordering::Relaxed);
        woken
    }

    /// Whether the task sleeps in [`Waker::sleep`] now.
    pub fn is_sleeping(&self) -> bool {
        self.sleeping.load(Ordering::Relaxed)
    }

    fn wait(
        &self,
        mut generation: MutexGuard<'_, u64>,
        seen: u64,
        deadline: Option<Instant>,
    ) -> bool {
        while *generation == seen {
            match deadline {
                None => {
                    generation = self
                        .cond
                        .wait(generation)
                        .unwrap_or_else(|e| e.into_inner());
                }
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return false;
                    }
                    generation = self
                        .cond
                        .wait_timeout(generation, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }
}

/// The poll bits that count as an input event (`POLLIN`, `POLLPRI`, `POLLRDNORM`,
/// `POLLRDBAND`, `POLLRDHUP`) and as an output one (`POLLOUT`, `POLLWRNORM`,
/// `POLLWRBAND`), for [`WaitQueue::notify`].
pub const INPUT_EVENTS: u32 = 0x1 | 0x2 | 0x40 | 0x80 | 0x2000;
pub const OUTPUT_EVENTS: u32 = 0x4 | 0x100 | 0x200;

/// The wakers of the tasks waiting for one thing, and a count of the input and output
/// events announced on it (what edge-triggered epoll watches: Linux's wake-up `key`).
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Weak<Waker>>>,
    input: AtomicU64,
    output: AtomicU64,
}

/// How many input and output events a queue has announced; see [`WaitQueue::events`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventCount {
    pub input: u64,
    pub output: u64,
}

impl WaitQueue {
    /// An empty queue (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            waiters: Mutex::new(Vec::new()),
            input: AtomicU64::new(0),
            output: AtomicU64::new(0),
        }
    }

    /// The events announced so far. Read it before looking at readiness: an event after
    /// the read moves the count, so it is never missed.
    pub fn events(&self) -> EventCount {
        EventCount {
            input: self.input.load(Ordering::Acquire),
            output: self.output.load(Ordering::Acquire),
        }
    }

    /// Announces an event of the classes in `mask` (poll bits; `POLLHUP`/`POLLERR` or
    /// anything else count as both) and wakes every registered waiter.
    pub fn notify(&self, mask: u32) {
        let only_output = mask & !OUTPUT_EVENTS == 0;
        let only_input = mask & !INPUT_EVENTS == 0;
        if !only_output {
            self.input.fetch_add(1, Ordering::AcqRel);
        }
        if !only_input {
            self.output.fetch_add(1, Ordering::AcqRel);
        }
        self.wake_all();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Weak<Waker>>> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `waker` until the returned guard is dropped.
    pub fn register<'q>(&'q self, waker: &Arc<Waker>) -> Registration<'q> {
        self.lock().push(Arc::downgrade(waker));
        Registration {
            queue: self,
            waker: Arc::downgrade(waker),
        }
    }

    /// Announces a change of any kind (input and output) and wakes every registered
    /// waiter.
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }

    fn wake_all(&self) {
        let waiters: Vec<Arc<Waker>> = {
            let mut list = self.lock();
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        for w in waiters {
            w.wake();
        }
    }
}

/// A waker's registration with a queue; dropping it unregisters.
pub struct Registration<'q> {
    queue: &'q WaitQueue,
    waker: Weak<Waker>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut list = self.queue.lock();
        if let Some(i) = list.iter().position(|w| w.ptr_eq(&self.waker)) {
            list.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_wake_between_check_and_sleep_is_not_lost() {
        let w = Waker::new();
        let seen = w.generation();
        w.wake();
        assert!(w.sleep(seen, None), "returns at once");
    }

    #[test]
    fn queue_wakes_registered_and_times_out_otherwise() {
        let q = Arc::new(WaitQueue::default());
        let w = Waker::new();
        let reg = q.register(&w);
        let seen = w.generation();
        let q2 = Arc::clone(&q);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            q2.notify_all();
        });
        assert!(w.sleep(seen, Some(Instant::now() + Duration::from_secs(5))));
        t.join().unwrap();
        drop(reg);
        let seen = w.generation();
        q.notify_all();
        assert!(
            !w.sleep(seen, Some(Instant::now() + Duration::from_millis(10))),
            "unregistered"
        );
    }

    #[test]
    fn notify_counts_input_and_output_events_apart() {
        let q = WaitQueue::new();
        let start = q.events();
        q.notify(0x1);
        assert_eq!(q.events().input, start.input + 1);
        assert_eq!(q.events().output, start.output);
        q.notify(0x4);
        assert_eq!(q.events().output, start.output + 1);
        q.notify_all();
        assert_eq!(q.events().input, start.input + 2);
        assert_eq!(q.events().output, start.output + 2);
    }
}
