//! Advisory locks of one file: POSIX record locks (`fcntl` `F_SETLK`/`F_SETLKW`/
//! `F_GETLK`, owned by a process) and `flock` locks (owned by an open file description).
//!
//! Every process of the sandbox is the Sentry's, so the locks are complete here. A
//! conflicting request fails with `EAGAIN` or, for the waiting forms, waits on the file's
//! wait queue (interruptibly, in the syscall layer).

use std::sync::{Mutex, MutexGuard};

use crate::errno::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;

/// A lock's kind (`F_RDLCK`/`F_WRLCK`, `LOCK_SH`/`LOCK_EX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
}

/// Who holds a lock: a process (record locks) or an open file description (`flock`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Process(i32),
    Description(usize),
}

/// A held range, `end` inclusive (`u64::MAX`: to the end of any file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub kind: Kind,
    pub owner: Owner,
    pub start: u64,
    pub end: u64,
}

impl Range {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }
}

/// The locks of one file.
#[derive(Default)]
pub struct FileLocks {
    held: Mutex<Vec<Range>>,
    pub queue: WaitQueue,
}

impl FileLocks {
    fn lock(&self) -> MutexGuard<'_, Vec<Range>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first lock of another owner that conflicts with `kind` over `[start, end]`.
    pub fn conflict(&self, owner: Owner, kind: Kind, start: u64, end: u64) -> Option<Range> {
        self.lock()
            .iter()
            .find(|r| {
                r.owner != owner
                    && same_family(r.owner, owner)
                    && r.overlaps(start, end)
                    && (kind == Kind::Write || r.kind == Kind::Write)
            })
            .copied()
    }

    /// Takes `kind` over `[start, end]` for `owner`, replacing what it held there, or
    /// fails with `EAGAIN` on a conflict.
    pub fn try_lock(&self, owner: Owner, kind: Kind, start: u64, end: u64) -> SysResult<()> {
        let mut held = self.lock();
        let conflict = held.iter().any(|r| {
            r.owner != owner
                && same_family(r.owner, owner)
                && r.overlaps(start, end)
                && (kind == Kind::Write || r.kind == Kind::Write)
        });
        if conflict {
            return Err(Errno::EAGAIN);
        }
        cut(&mut held, owner, start, end);
        held.push(Range {
            kind,
            owner,
            start,
            end,
        });
        Ok(())
    }

    /// Releases `owner`'s locks over `[start, end]`.
    pub fn unlock(&self, owner: Owner, start: u64, end: u64) {
        cut(&mut self.lock(), owner, start, end);
        self.queue.notify_all();
    }

    /// Releases everything `owner` holds (its close, or its exit).
    pub fn release(&self, owner: Owner) {
        let mut held = self.lock();
        let before = held.len();
        held.retain(|r| r.owner != owner);
        if held.len() != before {
            drop(held);
            self.queue.notify_all();
        }
    }
}

/// Record locks and `flock` locks do not conflict with each other (on Linux they are
/// independent).
fn same_family(a: Owner, b: Owner) -> bool {
    matches!(
        (a, b),
        (Owner::Process(_), Owner::Process(_)) | (Owner::Description(_), Owner::Description(_))
    )
}

/// Removes `owner`'s coverage of `[start, end]`, splitting ranges that stick out.
fn cut(held: &mut Vec<Range>, owner: Owner, start: u64, end: u64) {
    let mut kept = Vec::with_capacity(held.len() + 1);
    for r in held.drain(..) {
        if r.owner != owner || !r.overlaps(start, end) {
            kept.push(r);
            continue;
        }
        if r.start < start {
            kept.push(Range {
                end: start - 1,
                ..r
            });
        }
        if r.end > end {
            kept.push(Range {
                start: end + 1,
                ..r
            });
        }
    }
    *held = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Owner = Owner::Process(1);
    const B: Owner = Owner::Process(2);

    #[test]
    fn conflicts_splits_and_release() {
        let l = FileLocks::default();
        l.try_lock(A, Kind::Read, 0, 99).unwrap();
        l.try_lock(B, Kind::Read, 50, 149).unwrap();
        assert_eq!(l.try_lock(B, Kind::Write, 0, 9), Err(Errno::EAGAIN));
        l.unlock(A, 0, 9);
        l.try_lock(B, Kind::Write, 0, 9).unwrap();
        assert_eq!(
            l.conflict(A, Kind::Write, 0, 200)
                .map(|r| (r.owner, r.start)),
            Some((B, 50))
        );
        assert_eq!(l.try_lock(A, Kind::Write, 5, 20), Err(Errno::EAGAIN));
        l.release(B);
        l.try_lock(A, Kind::Write, 5, 20).unwrap();
        assert_eq!(l.conflict(B, Kind::Read, 0, 4), None);
        assert_eq!(
            l.conflict(B, Kind::Read, 21, 99),
            None,
            "A's read lock is shared"
        );
        assert!(
            l.conflict(B, Kind::Write, 21, 21).is_some(),
            "A's lock was split"
        );
        assert!(l.conflict(B, Kind::Read, 20, 20).is_some());
        let flock = Owner::Description(7);
        l.try_lock(flock, Kind::Write, 0, u64::MAX).unwrap();
    }
}
