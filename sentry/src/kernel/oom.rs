//! The OOM killer. When the sandbox's memory (the container's memory limit, which the
//! memory file enforces) is used up and a page fault or a copy into application memory
//! cannot get a page, the Sentry kills the process holding the most resident memory with
//! `SIGKILL`, as Linux's memory-cgroup OOM killer does: the sandbox goes on and the host
//! never sees the pressure. While a victim is still dying, no second one is chosen.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::process::ThreadGroup;
use super::signal::SIGKILL;
use super::ExitStatus;
use super::Kernel;
use crate::mm::MemoryManager;

/// How long a victim may take to give its memory back before another is chosen.
const VICTIM_GRACE: Duration = Duration::from_secs(1);

/// How long after a victim's memory was released a failing fault is still taken as
/// racing with the release rather than as a new shortage.
const RELEASE_SETTLE: Duration = Duration::from_millis(50);

/// The OOM killer's memory of its last victim.
#[derive(Default)]
pub struct OomState {
    victim: Mutex<Option<Victim>>,
}

struct Victim {
    /// Its memory, in use while its threads are still exiting.
    memory: Weak<MemoryManager>,
    killed: Instant,
    /// When its memory was first seen released.
    released: Option<Instant>,
}

/// What the OOM killer did.
#[derive(Clone)]
pub enum OomOutcome {
    /// It killed this process.
    Killed(Arc<ThreadGroup>),
    /// An earlier victim is still exiting: wait for its memory.
    Waiting,
    /// Nothing is left to kill.
    NoVictim,
}

impl Kernel {
    /// Frees memory by killing the process with the most resident pages (see the module
    /// documentation).
    pub fn out_of_memory(&self) -> OomOutcome {
        let mut last = self.oom.victim.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(victim) = &mut *last {
            if victim.memory.strong_count() > 0 {
                if victim.killed.elapsed() < VICTIM_GRACE {
                    return OomOutcome::Waiting;
                }
            } else {
                // The victim's memory is gone, or going (the pages are freed one by one
                // as its memory manager drops): a fault that failed meanwhile is to try
                // again before anyone else dies.
                let released = *victim.released.get_or_insert_with(Instant::now);
                if released.elapsed() < RELEASE_SETTLE {
                    return OomOutcome::Waiting;
                }
            }
        }
        let candidates = self.groups().into_iter().filter_map(|g| {
            if g.state().exiting.is_some() {
                return None;
            }
            let mm = g.view()?.mm;
            Some((mm.resident_pages(), mm, g))
        });
        // The largest; on a tie, the newest (the sandbox's init last).
        let Some((pages, mm, victim)) = candidates.max_by_key(|(pages, _, g)| (*pages, g.tgid))
        else {
            *last = None;
            return OomOutcome::NoVictim;
        };
        let comm = victim
            .view()
            .map(|v| v.fs.cmdline())
            .and_then(|c| c.split(|&b| b == 0).next().map(<[u8]>::to_vec))
            .unwrap_or_default();
        log::warn!(
            "out of memory: killed process {} ({}), {} KiB resident",
            victim.tgid,
            String::from_utf8_lossy(&comm),
            pages * 4
        );
        victim.begin_exit(ExitStatus::Signaled(SIGKILL));
        *last = Some(Victim {
            memory: Arc::downgrade(&mm),
            killed: Instant::now(),
            released: None,
        });
        OomOutcome::Killed(victim)
    }
}
