//! UTS namespaces: the host and domain names `uname` reports.
//!
//! Every thread holds one (Linux's `nsproxy->uts_ns`). The sandbox starts with one, which
//! the OCI spec's `hostname` and `kernel.{host,domain}name` sysctls set; a thread with
//! `CAP_SYS_ADMIN` gets a copy of its own through `unshare(CLONE_NEWUTS)` or
//! `clone(CLONE_NEWUTS)`, and joins another process's through `setns` on a pidfd.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One UTS namespace's names.
#[derive(Debug)]
pub struct UtsNamespace {
    names: Mutex<Names>,
    /// Its inode number in `/proc/PID/ns/uts`.
    ino: u64,
}

/// The inode of the sandbox's first UTS namespace (Linux's `PROC_UTS_INIT_INO`).
const FIRST_INO: u64 = 0xEFFF_FFFE;

/// The next inode number for a new namespace (after those Linux gives the first mount
/// and network namespaces, which the sandbox shows too).
fn next_ino() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0xF000_0100);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[derive(Clone, Debug)]
struct Names {
    hostname: Vec<u8>,
    domainname: Vec<u8>,
}

impl Default for UtsNamespace {
    /// The sandbox's first namespace: Linux's defaults but for the host name, which is
    /// the sandbox's own.
    fn default() -> Self {
        Self {
            names: Mutex::new(Names {
                hostname: b"bulwark".to_vec(),
                domainname: b"(none)".to_vec(),
            }),
            ino: FIRST_INO,
        }
    }
}

impl UtsNamespace {
    fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new namespace that starts with this one's names (`CLONE_NEWUTS`).
    pub fn copy(&self) -> Arc<Self> {
        Arc::new(Self {
            names: Mutex::new(self.names().clone()),
            ino: next_ino(),
        })
    }

    pub fn ino(&self) -> u64 {
        self.ino
    }

    pub fn hostname(&self) -> Vec<u8> {
        self.names().hostname.clone()
    }

    pub fn set_hostname(&self, name: &[u8]) {
        self.names().hostname = name.to_vec();
    }

    pub fn domainname(&self) -> Vec<u8> {
        self.names().domainname.clone()
    }

    pub fn set_domainname(&self, name: &[u8]) {
        self.names().domainname = name.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_starts_equal_and_then_is_its_own() {
        let first = UtsNamespace::default();
        first.set_hostname(b"box");
        let second = first.copy();
        assert_eq!(second.hostname(), b"box");
        second.set_hostname(b"other");
        second.set_domainname(b"example");
        assert_eq!(first.hostname(), b"box");
        assert_eq!(first.domainname(), b"(none)");
        assert_eq!(second.domainname(), b"example");
        assert_ne!(first.ino(), second.ino());
    }
}
