//! The task a host thread runs, as Linux's `current`: what a file that answers for "the
//! caller" (a signalfd) reads, where its operations get no task.
//!
//! Each application thread runs on its own host thread ([`super::Task::run`] sets it), so
//! a thread-local is exactly the caller. A host thread that runs no task has none.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use super::process::{TaskHandle, ThreadGroup};

thread_local! {
    static CURRENT: RefCell<Option<(Weak<TaskHandle>, Weak<ThreadGroup>)>> =
        const { RefCell::new(None) };
}

/// Records the task this host thread runs.
pub fn set(handle: &Arc<TaskHandle>, group: &Arc<ThreadGroup>) {
    CURRENT.with(|c| *c.borrow_mut() = Some((Arc::downgrade(handle), Arc::downgrade(group))));
}

/// The task this host thread runs, if it runs one that is still alive.
pub fn get() -> Option<(Arc<TaskHandle>, Arc<ThreadGroup>)> {
    CURRENT.with(|c| {
        let c = c.borrow();
        let (h, g) = c.as_ref()?;
        Some((h.upgrade()?, g.upgrade()?))
    })
}

/// The caller's `RLIMIT_FSIZE` (no limit when the thread runs no task).
pub fn file_size_limit() -> u64 {
    get().map_or(super::RLIM_INFINITY, |(_, group)| {
        group
            .limits()
            .get(RLIMIT_FSIZE)
            .map_or(super::RLIM_INFINITY, |l| l.cur)
    })
}

/// `RLIMIT_FSIZE` for a write of `len` bytes at `offset` of a regular file: how many may
/// be written; none past the limit, which is `EFBIG` with `SIGXFSZ` to the caller (as
/// Linux's `generic_write_check_limits`).
pub fn check_file_size(offset: u64, len: usize) -> crate::errno::SysResult<usize> {
    let limit = file_size_limit();
    if limit == super::RLIM_INFINITY || offset.saturating_add(len as u64) <= limit {
        return Ok(len);
    }
    if offset >= limit {
        exceeded_file_size();
        return Err(crate::errno::Errno::EFBIG);
    }
    Ok(usize::try_from(limit - offset).unwrap_or(len).min(len))
}

/// Sends `SIGXFSZ` to the caller (unless it ignores it).
pub fn exceeded_file_size() {
    use super::signal::{SigInfo, SIGXFSZ, SI_USER};
    let Some((handle, group)) = get() else { return };
    let ignored = group
        .sighand()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_ignored(SIGXFSZ);
    if !ignored {
        handle
            .signals()
            .pending
            .push(SigInfo::user(SIGXFSZ, SI_USER, group.tgid, 0));
    }
}

/// `RLIMIT_FSIZE`'s number.
const RLIMIT_FSIZE: u32 = 1;
