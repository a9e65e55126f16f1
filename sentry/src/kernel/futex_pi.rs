//! Priority-inheritance futexes (`FUTEX_LOCK_PI`, `FUTEX_TRYLOCK_PI`, `FUTEX_UNLOCK_PI`):
//! the kernel side of a lock whose word holds the owner's TID.
//!
//! The protocol is Linux's: a free word (TID 0) is taken by writing the caller's TID; a
//! contended one gets `FUTEX_WAITERS` and the caller queues; unlock hands the lock to the
//! first waiter by writing its TID (with `FUTEX_WAITERS`) before waking it. The Sentry has
//! no scheduler priorities, so there is nothing to boost: waiters are served in order.
//! A word left with TID 0 by a dead owner's robust list is taken over with
//! `FUTEX_OWNER_DIED` kept, so the waiter learns of the death.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::futex::{FutexKey, WaitEnd};
use super::wait::Waker;
use crate::errno::{Errno, SysResult};

pub const FUTEX_WAITERS: u32 = 0x8000_0000;
pub const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
pub const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

struct PiWaiter {
    tid: u32,
    waker: Arc<Waker>,
    /// Set by the unlock that handed this waiter the lock.
    granted: AtomicBool,
}

/// The waiters of every PI futex, in arrival order.
#[derive(Default)]
pub struct PiFutexes {
    queues: Mutex<HashMap<FutexKey, VecDeque<Arc<PiWaiter>>>>,
}

/// What a lock attempt found.
enum Attempt {
    Taken,
    /// Held by this TID.
    Held(u32),
}

impl PiFutexes {
    fn lock(&self) -> MutexGuard<'_, HashMap<FutexKey, VecDeque<Arc<PiWaiter>>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the word for `tid` if no one holds it (keeping `FUTEX_OWNER_DIED`, and
    /// `FUTEX_WAITERS` when others still wait).
    fn try_take(word: &AtomicU32, tid: u32, waiters: bool) -> SysResult<Attempt> {
        let mut v = word.load(Ordering::Acquire);
        loop {
            let owner = v & FUTEX_TID_MASK;
            if owner == tid {
                return Err(Errno::EDEADLK);
            }
            if owner != 0 {
                return Ok(Attempt::Held(owner));
            }
            let mut new = (v & FUTEX_OWNER_DIED) | tid;
            if waiters {
                new |= FUTEX_WAITERS;
            }
            match word.compare_exchange(v, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(Attempt::Taken),
                Err(now) => v = now,
            }
        }
    }

    /// `FUTEX_TRYLOCK_PI`.
    pub fn trylock(
        &self,
        word: &AtomicU32,
        tid: u32,
        alive: &dyn Fn(u32) -> bool,
    ) -> SysResult<()> {
        let _queues = self.lock();
        match Self::try_take(word, tid, false)? {
            Attempt::Taken => Ok(()),
            Attempt::Held(owner) if !alive(owner) => Err(Errno::ESRCH),
            Attempt::Held(_) => Err(Errno::EAGAIN),
        }
    }

    /// `FUTEX_LOCK_PI`: takes the lock, or waits for an unlock to hand it over, until the
    /// deadline (`ETIMEDOUT`) or a signal. `alive(tid)` tells whether an owner exists
    /// (`ESRCH` for a word naming no thread).
    #[allow(clippy::too_many_arguments)]
    pub fn lock_pi(
        &self,
        word: &AtomicU32,
        key: FutexKey,
        tid: u32,
        waker: &Arc<Waker>,
        deadline: Option<Instant>,
        alive: &dyn Fn(u32) -> bool,
        interrupted: &dyn Fn() -> bool,
    ) -> SysResult<WaitEnd> {
        let waiter = Arc::new(PiWaiter {
            tid,
            waker: Arc::clone(waker),
            granted: AtomicBool::new(false),
        });
        {
            let mut queues = self.lock();
            let others = queues.get(&key).is_some_and(|q| !q.is_empty());
            match Self::try_take(word, tid, others)? {
                Attempt::Taken => return Ok(WaitEnd::Woken),
                Attempt::Held(owner) if !alive(owner) => return Err(Errno::ESRCH),
                Attempt::Held(_) => {}
            }
            word.fetch_or(FUTEX_WAITERS, Ordering::AcqRel);
            queues
                .entry(key)
                .or_default()
                .push_back(Arc::clone(&waiter));
        }
        loop {
            let seen = waker.generation();
            {
                let mut queues = self.lock();
                if waiter.granted.load(Ordering::Acquire) {
                    return Ok(WaitEnd::Woken);
                }
                // An owner that died through its robust list leaves TID 0: take over.
                let others = queues.get(&key).is_some_and(|q| q.len() > 1);
                if let Ok(Attempt::Taken) = Self::try_take(word, tid, others) {
                    remove(&mut queues, key, &waiter);
                    return Ok(WaitEnd::Woken);
                }
            }
            let end = if interrupted() {
                Some(WaitEnd::Interrupted)
            } else if !waker.sleep(seen, deadline) {
                Some(WaitEnd::TimedOut)
            } else {
                None
            };
            if let Some(end) = end {
                let mut queues = self.lock();
                if waiter.granted.load(Ordering::Acquire) {
                    return Ok(WaitEnd::Woken);
                }
                remove(&mut queues, key, &waiter);
                return Ok(end);
            }
        }
    }

    /// `FUTEX_UNLOCK_PI`: `EPERM` unless `tid` owns the word; hands the lock to the first
    /// waiter, or frees the word.
    pub fn unlock_pi(&self, word: &AtomicU32, key: FutexKey, tid: u32) -> SysResult<()> {
        let mut queues = self.lock();
        let v = word.load(Ordering::Acquire);
        if v & FUTEX_TID_MASK != tid {
            return Err(Errno::EPERM);
        }
        let next = queues.get_mut(&key).and_then(VecDeque::pop_front);
        if queues.get(&key).is_some_and(VecDeque::is_empty) {
            queues.remove(&key);
        }
        let new = next.as_ref().map_or(0, |w| FUTEX_WAITERS | w.tid);
        // The owner holds the word: only the waiters bit may change under us.
        let mut cur = v;
        while let Err(now) = word.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
            if now & FUTEX_TID_MASK != tid {
                return Err(Errno::EINVAL);
            }
            cur = now;
        }
        if let Some(w) = next {
            w.granted.store(true, Ordering::Release);
            w.waker.wake();
        }
        Ok(())
    }

    /// Makes the waiters of `key` look at the word again (a robust owner's death).
    pub fn poke(&self, key: FutexKey) {
        if let Some(q) = self.lock().get(&key) {
            for w in q {
                w.waker.wake();
            }
        }
    }
}

fn remove(
    queues: &mut HashMap<FutexKey, VecDeque<Arc<PiWaiter>>>,
    key: FutexKey,
    waiter: &Arc<PiWaiter>,
) {
    if let Some(q) = queues.get_mut(&key) {
        q.retain(|w| !Arc::ptr_eq(w, waiter));
        if q.is_empty() {
            queues.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncontended_lock_unlock_and_errors() {
        let pi = PiFutexes::default();
        let word = AtomicU32::new(0);
        let key = FutexKey::Private { mm: 1, addr: 4 };
        let w = Waker::new();
        let alive = |_| true;
        let never = || false;
        assert_eq!(
            pi.lock_pi(&word, key, 7, &w, None, &alive, &never),
            Ok(WaitEnd::Woken)
        );
        assert_eq!(word.load(Ordering::Relaxed), 7);
        assert_eq!(
            pi.lock_pi(&word, key, 7, &w, None, &alive, &never),
            Err(Errno::EDEADLK)
        );
        assert_eq!(pi.trylock(&word, 8, &alive), Err(Errno::EAGAIN));
        assert_eq!(pi.unlock_pi(&word, key, 8), Err(Errno::EPERM));
        assert_eq!(pi.unlock_pi(&word, key, 7), Ok(()));
        assert_eq!(word.load(Ordering::Relaxed), 0);
        word.store(FUTEX_OWNER_DIED, Ordering::Relaxed);
        assert_eq!(pi.trylock(&word, 9, &alive), Ok(()));
        assert_eq!(word.load(Ordering::Relaxed), FUTEX_OWNER_DIED | 9);
    }

    #[test]
    fn unlock_hands_the_lock_to_the_waiter() {
        let pi = Arc::new(PiFutexes::default());
        let word = Arc::new(AtomicU32::new(5));
        let key = FutexKey::Private { mm: 1, addr: 8 };
        let (pi2, word2) = (Arc::clone(&pi), Arc::clone(&word));
        let t = std::thread::spawn(move || {
            let w = Waker::new();
            pi2.lock_pi(&word2, key, 6, &w, None, &|_| true, &|| false)
        });
        while word.load(Ordering::Acquire) & FUTEX_WAITERS == 0 {
            std::thread::yield_now();
        }
        pi.unlock_pi(&word, key, 5).unwrap();
        assert_eq!(t.join().unwrap(), Ok(WaitEnd::Woken));
        assert_eq!(word.load(Ordering::Relaxed), FUTEX_WAITERS | 6);
    }
}
