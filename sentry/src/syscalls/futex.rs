//! `futex(2)`.

use std::time::Instant;

use platform::Access;

use super::time::{read_timespec, Clock};
use crate::errno::{Errno, SysResult};
use crate::kernel::futex::{Futexes, WaitEnd};
use crate::kernel::Task;
use crate::mm::UserAddr;

const FUTEX_WAIT: i32 = 0;
const FUTEX_WAKE: i32 = 1;
const FUTEX_REQUEUE: i32 = 3;
const FUTEX_CMP_REQUEUE: i32 = 4;
const FUTEX_WAKE_OP: i32 = 5;
const FUTEX_LOCK_PI: i32 = 6;
const FUTEX_UNLOCK_PI: i32 = 7;
const FUTEX_TRYLOCK_PI: i32 = 8;
const FUTEX_WAIT_BITSET: i32 = 9;
const FUTEX_WAKE_BITSET: i32 = 10;
const FUTEX_PRIVATE_FLAG: i32 = 128;
const FUTEX_CLOCK_REALTIME: i32 = 256;
const FUTEX_LOCK_PI2: i32 = 13;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

pub fn futex(
    task: &mut Task,
    uaddr: UserAddr,
    op: i32,
    val: u32,
    timeout: UserAddr,
    uaddr2: UserAddr,
    val3: u32,
) -> SysResult<i64> {
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if op & FUTEX_CLOCK_REALTIME != 0
        && !matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET | FUTEX_LOCK_PI2)
    {
        return Err(Errno::ENOSYS);
    }
    let key = Futexes::key(&task.mm, uaddr, private)?;
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            let deadline = if timeout.is_null() {
                None
            } else {
                let ts = read_timespec(task, timeout)?;
                Some(if cmd == FUTEX_WAIT {
                    // FUTEX_WAIT takes a relative timeout.
                    Instant::now() + ts
                } else {
                    // FUTEX_WAIT_BITSET takes an absolute one, on the chosen clock.
                    let clock = if op & FUTEX_CLOCK_REALTIME != 0 {
                        Clock::Realtime
                    } else {
                        Clock::Monotonic
                    };
                    clock.deadline(ts)
                })
            };
            let waker = std::sync::Arc::clone(&task.handle.waker);
            let end = task.kernel.futexes.wait(
                &task.mm,
                uaddr,
                key,
                val,
                bitset,
                &waker,
                deadline,
                &|| task.signal_pending(),
            )?;
            match end {
                WaitEnd::Woken => Ok(0),
                WaitEnd::TimedOut => Err(Errno::ETIMEDOUT),
                WaitEnd::Interrupted => Err(Errno::ERESTARTSYS),
            }
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            Ok(i64::from(task.kernel.futexes.wake(key, val, bitset)?))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // val2 (the requeue count) travels in the timeout argument.
            let requeue = u32::try_from(timeout.get() & 0xffff_ffff).unwrap_or(0);
            let to = Futexes::key(&task.mm, uaddr2, private)?;
            let expected = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
            let n = task
                .kernel
                .futexes
                .requeue(&task.mm, uaddr, key, to, val, requeue, expected)?;
            Ok(i64::from(n))
        }
        FUTEX_WAKE_OP => {
            let key2 = Futexes::key(&task.mm, uaddr2, private)?;
            let nr_wake2 = u32::try_from(timeout.get() & 0xffff_ffff).unwrap_or(0);
            let (offset, _) = task.mm.translate(uaddr2, Access::Write)?;
            if !uaddr2.get().is_multiple_of(4) {
                return Err(Errno::EINVAL);
            }
            let memory = std::sync::Arc::clone(task.mm.memory_file());
            let word = memory.atomic_u32(offset).map_err(|_| Errno::EFAULT)?;
            task.kernel.futexes.with_lock(|wake| {
                let old = apply_op(word, val3)?;
                let mut n = wake(key, val);
                if compare(old, val3)? {
                    n += wake(key2, nr_wake2);
                }
                Ok(i64::from(n))
            })
        }
        FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_TRYLOCK_PI | FUTEX_UNLOCK_PI => {
            pi(task, uaddr, key, cmd, op, timeout)
        }
        _ => {
            log::warn!("futex op {cmd}: not implemented (ENOSYS)");
            Err(Errno::ENOSYS)
        }
    }
}

/// The priority-inheritance operations.
fn pi(
    task: &Task,
    uaddr: UserAddr,
    key: crate::kernel::futex::FutexKey,
    cmd: i32,
    op: i32,
    timeout: UserAddr,
) -> SysResult<i64> {
    let (offset, _) = task.mm.translate(uaddr, Access::Write)?;
    let memory = std::sync::Arc::clone(task.mm.memory_file());
    let word = memory.atomic_u32(offset).map_err(|_| Errno::EFAULT)?;
    let tid = u32::try_from(task.tid()).map_err(|_| Errno::EINVAL)?;
    let alive = |owner: u32| i32::try_from(owner).is_ok_and(|t| task.kernel.thread(t).is_some());
    let pi = &task.kernel.futexes.pi;
    match cmd {
        FUTEX_UNLOCK_PI => pi.unlock_pi(word, key, tid).map(|()| 0),
        FUTEX_TRYLOCK_PI => pi.trylock(word, tid, &alive).map(|()| 0),
        _ => {
            // An absolute timeout: CLOCK_REALTIME for LOCK_PI, the chosen clock for
            // LOCK_PI2.
            let deadline = if timeout.is_null() {
                None
            } else {
                let ts = read_timespec(task, timeout)?;
                let realtime = cmd == FUTEX_LOCK_PI || op & FUTEX_CLOCK_REALTIME != 0;
                Some(
                    if realtime {
                        Clock::Realtime
                    } else {
                        Clock::Monotonic
                    }
                    .deadline(ts),
                )
            };
            let waker = std::sync::Arc::clone(&task.handle.waker);
            match pi.lock_pi(word, key, tid, &waker, deadline, &alive, &|| {
                task.signal_pending()
            })? {
                WaitEnd::Woken => Ok(0),
                WaitEnd::TimedOut => Err(Errno::ETIMEDOUT),
                // Restarted after a handler, as Linux's futex_lock_pi.
                WaitEnd::Interrupted => Err(Errno::ERESTARTNOINTR),
            }
        }
    }
}

/// The operation encoded in `FUTEX_WAKE_OP`'s `val3`, applied atomically; returns the old
/// value.
fn apply_op(word: &std::sync::atomic::AtomicU32, encoded: u32) -> SysResult<u32> {
    use std::sync::atomic::Ordering::SeqCst;
    let op = (encoded >> 28) & 0x7;
    let shift = (encoded >> 28) & 0x8 != 0;
    let mut oparg = (encoded >> 12) & 0xfff;
    if shift {
        if oparg > 31 {
            return Err(Errno::EINVAL);
        }
        oparg = 1 << oparg;
    }
    let f = |v: u32| -> Option<u32> {
        Some(match op {
            0 => oparg,
            1 => v.wrapping_add(oparg),
            2 => v | oparg,
            3 => v & !oparg,
            4 => v ^ oparg,
            _ => return None,
        })
    };
    if op > 4 {
        return Err(Errno::ENOSYS);
    }
    word.fetch_update(SeqCst, SeqCst, f)
        .map_err(|_| Errno::ENOSYS)
}

fn compare(old: u32, encoded: u32) -> SysResult<bool> {
    let cmp = (encoded >> 24) & 0xf;
    let arg = encoded & 0xfff;
    let old = i32::from_ne_bytes(old.to_ne_bytes());
    let arg = i32::try_from(arg).unwrap_or(0);
    Ok(match cmp {
        0 => old == arg,
        1 => old != arg,
        2 => old < arg,
        3 => old <= arg,
        4 => old > arg,
        5 => old >= arg,
        _ => return Err(Errno::ENOSYS),
    })
}
