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
