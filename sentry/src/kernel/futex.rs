//! Futexes: wait queues keyed by a user address, as Linux's `futex(2)`.
//!
//! A private futex is keyed by its address space and address; a shared one by the
//! memory-file offset of its word when it lies in a shared mapping (so processes sharing
//! the memory meet on it), else as a private one. The value check and the enqueue happen
//! under the table lock, and every wake takes the same lock, so a wake between them is
//! never lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use platform::Access;

use super::wait::Waker;
use crate::errno::{Errno, SysResult};
use crate::mm::{MemoryManager, UserAddr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FutexKey {
    Private { mm: usize, addr: u64 },
    Shared { offset: u64 },
}

struct Waiter {
    waker: Arc<Waker>,
    bitset: u32,
    woken: AtomicBool,
}

#[derive(Default)]
pub struct Futexes {
    queues: Mutex<HashMap<FutexKey, Vec<Arc<Waiter>>>>,
    /// The priority-inheritance futexes' waiters.
    pub pi: super::futex_pi::PiFutexes,
}

/// The outcome of a wait that did not end with a wake.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitEnd {
    Woken,
    TimedOut,
    Interrupted,
}

impl Futexes {
    fn lock(&self) -> MutexGuard<'_, HashMap<FutexKey, Vec<Arc<Waiter>>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of the futex word at `addr` (4-aligned, else `EINVAL`).
    pub fn key(mm: &Arc<MemoryManager>, addr: UserAddr, private: bool) -> SysResult<FutexKey> {
        if !addr.get().is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let private_key = FutexKey::Private {
            mm: Arc::as_ptr(mm) as usize,
            addr: addr.get(),
        };
        if private {
            return Ok(private_key);
        }
        let (offset, shared) = mm.translate(addr, Access::Read)?;
        Ok(if shared {
            FutexKey::Shared { offset }
        } else {
            private_key
        })
    }

    /// `FUTEX_WAIT`: sleeps if the word at `addr` is `expected`, until a wake whose bitset
    /// meets `bitset`, the deadline, or `interrupted()` (a pending signal).
    #[allow(clippy::too_many_arguments)]
    pub fn wait(
        &self,
        mm: &Arc<MemoryManager>,
        addr: UserAddr,
        key: FutexKey,
        expected: u32,
        bitset: u32,
        waker: &Arc<Waker>,
        deadline: Option<Instant>,
        interrupted: &dyn Fn() -> bool,
    ) -> SysResult<WaitEnd> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let waiter = Arc::new(Waiter {
            waker: Arc::clone(waker),
            bitset,
            woken: AtomicBool::new(false),
        });
        {
            let mut queues = self.lock();
            let value: u32 = mm.read(crate::mm::UserPtr::new(addr))?;
            if value != expected {
                return Err(Errno::EAGAIN);
            }
            queues.entry(key).or_default().push(Arc::clone(&waiter));
        }
        loop {
            let seen = waker.generation();
            if waiter.woken.load(Ordering::Acquire) {
                return Ok(WaitEnd::Woken);
            }
            let end = if interrupted() {
                Some(WaitEnd::Interrupted)
            } else if !waker.sleep(seen, deadline) {
                Some(WaitEnd::TimedOut)
            } else {
                None
            };
            if let Some(end) = end {
                // Leave the queue, unless a wake took us out meanwhile (then it counts).
                let mut queues = self.lock();
                if waiter.woken.load(Ordering::Acquire) {
                    return Ok(WaitEnd::Woken);
                }
                remove(&mut queues, &waiter);
                return Ok(end);
            }
        }
    }

    /// `FUTEX_WAKE`: wakes up to `n` waiters on `key` whose bitset meets `bitset`.
    pub fn wake(&self, key: FutexKey, n: u32, bitset: u32) -> SysResult<u32> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let mut queues = self.lock();
        let woken = wake_locked(&mut queues, key, n, bitset);
        drop(queues);
        // A robust owner's death wakes the word: PI waiters look at it again.
        self.pi.poke(key);
        Ok(woken)
    }

    #[allow(clippy::too_many_arguments)]
    /// `FUTEX_CMP_REQUEUE`/`FUTEX_REQUEUE`: wakes `n` waiters of `from`, moves up to
    /// `requeue` more to `to`. With `expected`, first checks the word at `addr`.
    pub fn requeue(
        &self,
        mm: &MemoryManager,
        addr: UserAddr,
        from: FutexKey,
        to: FutexKey,
        n: u32,
        requeue: u32,
        expected: Option<u32>,
    ) -> SysResult<u32> {
        let mut queues = self.lock();
        if let Some(expected) = expected {
            let value: u32 = mm.read(crate::mm::UserPtr::new(addr))?;
            if value != expected {
                return Err(Errno::EAGAIN);
            }
        }
        let woken = wake_locked(&mut queues, from, n, u32::MAX);
        let mut moved = 0u32;
        if from != to {
            let mut taken = Vec::new();
            if let Some(list) = queues.get_mut(&from) {
                while moved < requeue && !list.is_empty() {
                    taken.push(list.remove(0));
                    moved += 1;
                }
            }
            queues.entry(to).or_default().extend(taken);
        }
        Ok(woken + moved)
    }

    /// Runs `op` with the table locked (for `FUTEX_WAKE_OP`, whose read-modify-write must
    /// not race with waiters checking the word).
    pub fn with_lock<R>(&self, op: impl FnOnce(&mut dyn FnMut(FutexKey, u32) -> u32) -> R) -> R {
        let mut queues = self.lock();
        let mut wake = |key, n| wake_locked(&mut queues, key, n, u32::MAX);
        op(&mut wake)
    }
}

fn wake_locked(
    queues: &mut HashMap<FutexKey, Vec<Arc<Waiter>>>,
    key: FutexKey,
    n: u32,
    bitset: u32,
) -> u32 {
    let Some(list) = queues.get_mut(&key) else {
        return 0;
    };
    let mut woken = 0u32;
    list.retain(|w| {
        if woken < n && w.bitset & bitset != 0 {
            w.woken.store(true, Ordering::Release);
            w.waker.wake();
            woken += 1;
            false
        } else {
            true
        }
    });
    if list.is_empty() {
        queues.remove(&key);
    }
    woken
}

fn remove(queues: &mut HashMap<FutexKey, Vec<Arc<Waiter>>>, waiter: &Arc<Waiter>) {
    queues.retain(|_, list| {
        list.retain(|w| !Arc::ptr_eq(w, waiter));
        !list.is_empty()
    });
}
