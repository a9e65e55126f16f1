//! Signal-driven I/O: the owner `F_SETOWN` gives an open file description, the signal
//! `F_SETSIG` chooses, and the lists (`O_ASYNC`) through which a pipe or socket signals
//! the owner when it may be read or written (Linux's `fown_struct` and `fasync_struct`).
//!
//! Linux keeps the owner in every `struct file`; here a side table keyed by the
//! description keeps it, so every kind of file has one without a field of its own. Only
//! the files that call [`AsyncList::kill`] (pipes, Unix sockets) send signals; on others
//! `O_ASYNC` is stored and does nothing, as on a Linux file without `fasync`.
//!
//! Not modelled: the sender-credential check of Linux's `sigio_perm` (all processes of a
//! sandbox are allowed to signal each other here), and the owner outliving its PID (an
//! owner is kept by ID, so a reused PID would receive the signal).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::file::FileDescription;
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::{SigInfo, SIGBUS, SIGCHLD, SIGFPE, SIGILL, SIGSEGV, SIGSYS, SIGTRAP};
use crate::kernel::{Kernel, Task};

pub const SIGIO: i32 = 29;
/// `si_code` of a real-time signal whose number has signal-specific codes.
const SI_SIGIO: i32 = -5;

/// Why a file signals (`si_code` of `SIGPOLL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    In = 1,
    Out = 2,
    Msg = 3,
    Err = 4,
    Pri = 5,
    Hup = 6,
}

impl Reason {
    /// `si_band`: the poll events of the reason (Linux's `band_table`).
    fn band(self) -> i64 {
        match self {
            Self::In => 0x1 | 0x40,           // POLLIN | POLLRDNORM
            Self::Out => 0x4 | 0x100 | 0x200, // POLLOUT | POLLWRNORM | POLLWRBAND
            Self::Msg => 0x1 | 0x40 | 0x400,  // POLLIN | POLLRDNORM | POLLMSG
            Self::Err => 0x8,                 // POLLERR
            Self::Pri => 0x2 | 0x80,          // POLLPRI | POLLRDBAND
            Self::Hup => 0x10 | 0x8,          // POLLHUP | POLLERR
        }
    }
}

/// `struct f_owner_ex`'s `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerKind {
    /// `F_OWNER_TID`: one thread.
    Thread = 0,
    /// `F_OWNER_PID`: a process.
    Process = 1,
    /// `F_OWNER_PGRP`: a process group.
    Group = 2,
}

impl OwnerKind {
    pub fn from_raw(raw: i32) -> SysResult<Self> {
        match raw {
            0 => Ok(Self::Thread),
            1 => Ok(Self::Process),
            2 => Ok(Self::Group),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// One description's owner and signal.
struct Own {
    kind: OwnerKind,
    /// The owner's ID (positive), or 0 for none.
    id: i32,
    /// `F_SETSIG`; 0 means plain `SIGIO`.
    sig: i32,
    kernel: Weak<Kernel>,
}

/// The signal-driven I/O state of one open file description.
pub struct Fasync {
    file: Weak<dyn FileDescription>,
    own: Mutex<Own>,
}

/// Every description that has had an owner or signal set, keyed by its address.
static TABLE: Mutex<Option<HashMap<usize, Arc<Fasync>>>> = Mutex::new(None);

fn key(file: &Arc<dyn FileDescription>) -> usize {
    Arc::as_ptr(file).cast::<()>() as usize
}

impl Fasync {
    /// The state of `file`, made (no owner, signal 0) on first use.
    pub fn of(file: &Arc<dyn FileDescription>) -> Arc<Self> {
        let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let table = table.get_or_insert_with(HashMap::new);
        if let Some(f) = table.get(&key(file)) {
            if f.file.strong_count() > 0 {
                return Arc::clone(f);
            }
        }
        // Descriptions closed since: their addresses may be reused.
        table.retain(|_, f| f.file.strong_count() > 0);
        let f = Arc::new(Self {
            file: Arc::downgrade(file),
            own: Mutex::new(Own {
                // A fresh description answers F_GETOWN_EX with type F_OWNER_TID, pid 0.
                kind: OwnerKind::Thread,
                id: 0,
                sig: 0,
                kernel: Weak::new(),
            }),
        });
        table.insert(key(file), Arc::clone(&f));
        f
    }

    fn own(&self) -> MutexGuard<'_, Own> {
        self.own.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `F_SETOWN`/`F_SETOWN_EX`: `ESRCH` when no such thread, process or group exists;
    /// an ID of 0 removes the owner.
    pub fn set_owner(&self, task: &Task, kind: OwnerKind, id: i32) -> SysResult<()> {
        if id < 0 {
            return Err(Errno::ESRCH);
        }
        if id != 0 {
            // Linux looks the number up as any PID (find_vpid): a thread's ID passes as a
            // process or group owner, which then signals no one and reads back as 0.
            let k = &task.kernel;
            let exists = k.thread(id).is_some()
                || k.group(id).is_some()
                || (kind == OwnerKind::Group && k.groups().iter().any(|g| g.state().pgid == id));
            if !exists {
                return Err(Errno::ESRCH);
            }
        }
        let mut own = self.own();
        own.kind = kind;
        own.id = id;
        own.kernel = Arc::downgrade(&task.kernel);
        Ok(())
    }

    /// `F_GETOWN_EX`: the owner's kind and ID (0 when it no longer exists).
    pub fn owner(&self) -> (OwnerKind, i32) {
        let own = self.own();
        let alive = own.kernel.upgrade().is_some_and(|k| match own.kind {
            OwnerKind::Thread => k.thread(own.id).is_some(),
            OwnerKind::Process => k.group(own.id).is_some(),
            OwnerKind::Group => k.groups().iter().any(|g| g.state().pgid == own.id),
        });
        (own.kind, if alive { own.id } else { 0 })
    }

    /// `F_GETOWN`: a process group is shown negated.
    pub fn getown(&self) -> i32 {
        match self.owner() {
            (OwnerKind::Group, id) => -id,
            (_, id) => id,
        }
    }

    /// `F_SETSIG` (the argument's low 32 bits, as an `int`): 0 or a valid signal
    /// number, else `EINVAL`.
    pub fn set_sig(&self, arg: u64) -> SysResult<()> {
        let sig = i32::from_ne_bytes(u32::try_from(arg & 0xffff_ffff).unwrap_or(0).to_ne_bytes());
        if !(0..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        self.own().sig = sig;
        Ok(())
    }

    pub fn sig(&self) -> i32 {
        self.own().sig
    }

    /// Signals the owner that the description's file is ready for `reason`, as Linux's
    /// `send_sigio`: plain `SIGIO` when no signal was set, else the set signal with
    /// `si_fd` and `si_band` (falling back to `SIGIO` when it cannot be queued).
    fn send(&self, fd: i32, reason: Reason) {
        let (kind, id, sig, kernel) = {
            let own = self.own();
            (own.kind, own.id, own.sig, own.kernel.upgrade())
        };
        let Some(kernel) = kernel else { return };
        if id == 0 {
            return;
        }
        let info = if sig == 0 {
            None
        } else {
            let specific = [SIGILL, SIGFPE, SIGSEGV, SIGBUS, SIGTRAP, SIGCHLD, SIGSYS];
            let mut info = SigInfo::kernel(sig);
            info.code = if specific.contains(&sig) {
                SI_SIGIO
            } else {
                reason as i32
            };
            info.poll = Some((reason.band(), fd));
            Some(info)
        };
        let deliver = |send: &dyn Fn(SigInfo) -> bool| {
            if !info.is_some_and(send) {
                send(SigInfo::kernel(SIGIO));
            }
        };
        match kind {
            OwnerKind::Thread => {
                if let Some((handle, group)) = kernel.thread(id) {
                    deliver(&|i: SigInfo| {
                        let ignored = group
                            .sighand()
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .is_ignored(i.signo);
                        if ignored {
                            return true;
                        }
                        let queued = handle.signals().pending.push(i);
                        handle.kick();
                        queued
                    });
                }
            }
            OwnerKind::Process => {
                if let Some(group) = kernel.group(id) {
                    deliver(&|i: SigInfo| Task::send_to_group(&kernel, &group, i));
                }
            }
            OwnerKind::Group => {
                for group in kernel.groups() {
                    let member = {
                        let s = group.state();
                        s.pgid == id && s.zombie.is_none()
                    };
                    if member {
                        deliver(&|i: SigInfo| Task::send_to_group(&kernel, &group, i));
                    }
                }
            }
        }
    }
}

/// The descriptions to signal about one file (a pipe's readers or writers, a socket):
/// those with `O_ASYNC` set, each with the descriptor number it was set through.
#[derive(Default)]
pub struct AsyncList {
    entries: Mutex<Vec<(Weak<Fasync>, i32)>>,
}

impl AsyncList {
    fn lock(&self) -> MutexGuard<'_, Vec<(Weak<Fasync>, i32)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds (`on`) or removes a description, as `F_SETFL` changes `O_ASYNC`.
    pub fn set(&self, who: &Arc<Fasync>, fd: i32, on: bool) {
        let mut entries = self.lock();
        entries.retain(|(w, _)| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), &**who));
        if on {
            entries.push((Arc::downgrade(who), fd));
        }
    }

    /// Signals every listed description's owner (Linux's `kill_fasync`). Call with no
    /// lock of the file held.
    pub fn kill(&self, reason: Reason) {
        let live: Vec<(Arc<Fasync>, i32)> = {
            let mut entries = self.lock();
            if entries.is_empty() {
                return;
            }
            // A closed description is no longer signalled.
            entries.retain(|(w, _)| w.upgrade().is_some_and(|f| f.file.strong_count() > 0));
            entries
                .iter()
                .filter_map(|(w, fd)| w.upgrade().map(|f| (f, *fd)))
                .collect()
        };
        for (f, fd) in live {
            f.send(fd, reason);
        }
    }
}
