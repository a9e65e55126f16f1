//! Blocking: how a task sleeps in a syscall until an event, a signal or a deadline.
//!
//! Every task has one [`Waker`]. A blocking syscall registers the task's waker with the
//! [`WaitQueue`]s of whatever it waits for (a futex word, a child's exit, a pipe), then
//! loops: check the condition, check for a pending signal, sleep. Anything that may
//! change the condition calls `WaitQueue::notify_all`, which wakes the registered wakers;
//! a signal wakes the target's waker directly. The generation counter makes the check and
//! the sleep race-free: a wake between them bumps the generation, and the sleep returns
//! at once.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

/// One task's means of being woken.
#[derive(Default)]
pub struct Waker {
    generation: Mutex<u64>,
    cond: Condvar,
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
        let mut generation = self.lock();
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

/// The wakers of the tasks waiting for one thing.
#[derive(Default)]
pub struct WaitQueue {
    waiters: Mutex<Vec<Weak<Waker>>>,
}

impl WaitQueue {
    /// An empty queue (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            waiters: Mutex::new(Vec::new()),
        }
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

    /// Wakes every registered waiter.
    pub fn notify_all(&self) {
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
}
