//! Where sockets are found by name: the sandbox's abstract namespace, and the socket
//! nodes `bind` made in the filesystem (by device and inode number, so a rename or a
//! hard link still reaches the socket, and an unlinked name does not).
//!
//! Abstract names are per socket type, as Linux hashes them: a stream and a datagram
//! socket may hold the same name, and a connect finds only its own type.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{Address, Endpoint, SockType};
use crate::errno::{Errno, SysResult};

/// Abstract names, by socket type and name.
type AbstractNames = HashMap<(SockType, Vec<u8>), Weak<Endpoint>>;

/// The names of one sandbox's Unix sockets.
#[derive(Default)]
pub struct Namespace {
    abstract_names: Mutex<AbstractNames>,
    inodes: Mutex<HashMap<(u64, u64), Weak<Endpoint>>>,
    next_auto: AtomicU32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many names autobind tries (Linux's 5 hex digits).
const AUTOBIND_NAMES: u32 = 0x10_0000;

impl Namespace {
    /// Claims abstract `name` (with its leading NUL) for `ep`: `EADDRINUSE` if a live
    /// socket holds it.
    pub fn bind_abstract(&self, name: &[u8], ep: &Arc<Endpoint>) -> SysResult<()> {
        let mut names = lock(&self.abstract_names);
        let key = (ep.kind, name.to_vec());
        if names.get(&key).is_some_and(|w| w.strong_count() > 0) {
            return Err(Errno::EADDRINUSE);
        }
        names.insert(key, Arc::downgrade(ep));
        Ok(())
    }

    /// A fresh abstract name for `ep` (`"\0" + 5 hex digits`), as `bind` with only the
    /// family, or a send that needs a name, gives one.
    pub fn autobind_name(&self, ep: &Arc<Endpoint>) -> SysResult<Address> {
        for _ in 0..AUTOBIND_NAMES {
            let n = self.next_auto.fetch_add(1, Ordering::Relaxed) % AUTOBIND_NAMES;
            let mut name = vec![0u8];
            name.extend_from_slice(format!("{n:05x}").as_bytes());
            if self.bind_abstract(&name, ep).is_ok() {
                return Ok(Address::Abstract(name));
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Records that the socket node `(dev, ino)` is `ep`'s.
    pub fn bind_inode(&self, key: (u64, u64), ep: &Arc<Endpoint>) {
        lock(&self.inodes).insert(key, Arc::downgrade(ep));
    }

    /// The live socket of type `kind` bound to abstract `name`.
    pub fn lookup_abstract(&self, kind: SockType, name: &[u8]) -> Option<Arc<Endpoint>> {
        lock(&self.abstract_names)
            .get(&(kind, name.to_vec()))
            .and_then(Weak::upgrade)
    }

    /// The live socket bound to the node `(dev, ino)`.
    pub fn lookup_inode(&self, key: (u64, u64)) -> Option<Arc<Endpoint>> {
        lock(&self.inodes).get(&key).and_then(Weak::upgrade)
    }

    /// Forgets `ep`'s name (at its close). The filesystem node stays, as on Linux: a
    /// connect to it is refused.
    pub(super) fn unbind(&self, addr: &Address, key: Option<(u64, u64)>, ep: &Endpoint) {
        let is_ep = |w: &Weak<Endpoint>| std::ptr::eq(w.as_ptr(), ep);
        match addr {
            Address::Abstract(name) => {
                let mut names = lock(&self.abstract_names);
                let key = (ep.kind, name.clone());
                if names.get(&key).is_some_and(is_ep) {
                    names.remove(&key);
                }
            }
            Address::Path(_) => {
                if let Some(key) = key {
                    let mut inodes = lock(&self.inodes);
                    if inodes.get(&key).is_some_and(is_ep) {
                        inodes.remove(&key);
                    }
                }
            }
        }
    }
}
