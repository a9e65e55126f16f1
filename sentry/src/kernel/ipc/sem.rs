//! System V semaphore sets (Linux's `ipc/sem.c`).
//!
//! A blocked `semop` registers its task's waker with the set's wait queue and tries its
//! whole operation array again after every change to the set; each try is all or
//! nothing. `SEM_UNDO` adjustments live in the set, one row per [`UndoList`] (a process's,
//! shared by `CLONE_SYSVSEM` threads); the list's `Drop` applies them when its last
//! holder exits or unshares it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{
    get_or_create, now_seconds, Ids, IpcObject, IpcPerm, IpcPermAbi, IPC_NOWAIT, READ_UGO,
    WRITE_UGO,
};
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::Credentials;
use crate::kernel::wait::WaitQueue;

/// The most semaphores in a set (`SEMMSL`), semaphores in all (`SEMMNS`), sets
/// (`SEMMNI`), operations in one `semop` (`SEMOPM`), and the largest value (`SEMVMX`).
pub const SEMMSL: usize = 32000;
pub const SEMMNS: usize = SEMMNI * SEMMSL;
pub const SEMMNI: usize = 32000;
pub const SEMOPM: usize = 500;
pub const SEMVMX: i32 = 32767;
/// The largest undo adjustment (`SEMAEM`).
const SEMAEM: i32 = SEMVMX;

/// `sem_flg`: undo at exit.
pub const SEM_UNDO: i16 = 0x1000;

/// `semctl` commands of semaphores' own.
pub const GETPID: i32 = 11;
pub const GETVAL: i32 = 12;
pub const GETALL: i32 = 13;
pub const GETNCNT: i32 = 14;
pub const GETZCNT: i32 = 15;
pub const SETVAL: i32 = 16;
pub const SETALL: i32 = 17;
pub const SEM_STAT: i32 = 18;
pub const SEM_INFO: i32 = 19;
pub const SEM_STAT_ANY: i32 = 20;

/// `struct sembuf`.
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct SemBuf {
    pub num: u16,
    pub op: i16,
    pub flags: i16,
}
const _: () = assert!(std::mem::size_of::<SemBuf>() == 6);

/// `struct semid64_ds` on x86-64.
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct SemidDs {
    pub perm: IpcPermAbi,
    pub otime: i64,
    pub unused1: u64,
    pub ctime: i64,
    pub unused2: u64,
    pub nsems: u64,
    pub unused3: u64,
    pub unused4: u64,
}
const _: () = assert!(std::mem::size_of::<SemidDs>() == 104);

/// `struct seminfo` (`IPC_INFO`, `SEM_INFO`).
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct SemInfo {
    pub semmap: i32,
    pub semmni: i32,
    pub semmns: i32,
    pub semmnu: i32,
    pub semmsl: i32,
    pub semopm: i32,
    pub semume: i32,
    pub semusz: i32,
    pub semvmx: i32,
    pub semaem: i32,
}
const _: () = assert!(std::mem::size_of::<SemInfo>() == 40);

#[derive(Clone, Copy, Default)]
struct Semaphore {
    val: i32,
    /// The process that changed it last.
    pid: i32,
}

/// What the waiters of a set share with it: the queue they sleep on, and whether the set
/// was removed under them.
#[derive(Default)]
pub struct SetWaiters {
    pub queue: WaitQueue,
    removed: AtomicBool,
}

struct SemSet {
    perm: IpcPerm,
    sems: Vec<Semaphore>,
    otime: i64,
    ctime: i64,
    waiters: Arc<SetWaiters>,
    /// The semaphore each blocked `semop` waits on, and whether for zero, by ticket.
    blocked: BTreeMap<u64, (u16, bool)>,
    /// `SEM_UNDO` adjustments, one row per undo list.
    undo: BTreeMap<u64, Vec<i32>>,
}

impl IpcObject for SemSet {
    fn perm(&self) -> &IpcPerm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut IpcPerm {
        &mut self.perm
    }
}

impl SemSet {
    fn ds(&self) -> SemidDs {
        SemidDs {
            perm: self.perm.abi(),
            otime: self.otime,
            ctime: self.ctime,
            nsems: self.sems.len() as u64,
            ..SemidDs::default()
        }
    }

    /// Forgets every process's adjustment of semaphore `num` (all with `None`).
    fn clear_undo(&mut self, num: Option<usize>) {
        for row in self.undo.values_mut() {
            match num {
                Some(n) => row[n] = 0,
                None => row.fill(0),
            }
        }
    }
}

/// Why an operation array cannot complete now.
pub enum SemopError {
    /// It would block on semaphore `num` (waiting for zero, or for an increase).
    Block {
        num: u16,
        zero: bool,
    },
    Fail(Errno),
}

#[derive(Default)]
struct State {
    ids: Ids<SemSet>,
    /// Semaphores in all sets (`used_sems`).
    total: usize,
}

/// The sandbox's semaphore sets.
#[derive(Default)]
pub struct Sem {
    state: Mutex<State>,
    next_ticket: AtomicU64,
}

/// A process's `SEM_UNDO` adjustments (Linux's `sem_undo_list`), shared by the threads
/// that `CLONE_SYSVSEM` joins. Applied when the last holder lets go.
pub struct UndoList {
    sem: Weak<Sem>,
    id: u64,
}

impl UndoList {
    pub fn new(sem: &Arc<Sem>) -> Arc<Self> {
        Arc::new(Self {
            sem: Arc::downgrade(sem),
            id: sem.ticket(),
        })
    }
}

impl Drop for UndoList {
    fn drop(&mut self) {
        let Some(sem) = self.sem.upgrade() else {
            return;
        };
        let pid = crate::kernel::current::get().map_or(0, |(_, group)| group.tgid);
        let mut state = sem.lock();
        let ids: Vec<i32> = state.ids.iter().map(|(id, _)| id).collect();
        for id in ids {
            let Ok(set) = state.ids.get_mut(id) else {
                continue;
            };
            let Some(row) = set.undo.remove(&self.id) else {
                continue;
            };
            // Linux's `exit_sem`: the adjustment, clamped to what a semaphore may hold.
            for (sem, adj) in set.sems.iter_mut().zip(row) {
                if adj != 0 {
                    sem.val = (sem.val + adj).clamp(0, SEMVMX);
                    sem.pid = pid;
                }
            }
            set.waiters.queue.notify_all();
        }
    }
}

/// Who asks: the credentials and process ID of the caller.
pub struct Caller<'a> {
    pub creds: &'a Credentials,
    pub pid: i32,
}

impl Sem {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A number no other blocked `semop` or undo list has.
    fn ticket(&self) -> u64 {
        self.next_ticket.fetch_add(1, Ordering::Relaxed)
    }

    /// `semget`.
    pub fn get(&self, key: i32, nsems: i32, flags: i32, caller: &Caller<'_>) -> SysResult<i32> {
        let nsems = usize::try_from(nsems).map_err(|_| Errno::EINVAL)?;
        if nsems > SEMMSL {
            return Err(Errno::EINVAL);
        }
        let mut guard = self.lock();
        let state = &mut *guard;
        let total = state.total;
        let mut added = 0;
        let id = get_or_create(
            &mut state.ids,
            key,
            flags,
            caller.creds,
            |set| {
                if set.sems.len() < nsems {
                    return Err(Errno::EINVAL);
                }
                Ok(())
            },
            || {
                if nsems == 0 {
                    return Err(Errno::EINVAL);
                }
                if total + nsems > SEMMNS {
                    return Err(Errno::ENOSPC);
                }
                added = nsems;
                let set = SemSet {
                    perm: IpcPerm::new(key, caller.creds, flags),
                    sems: vec![Semaphore::default(); nsems],
                    otime: 0,
                    ctime: now_seconds(),
                    waiters: Arc::default(),
                    blocked: BTreeMap::new(),
                    undo: BTreeMap::new(),
                };
                Ok((set, SEMMNI))
            },
        )?;
        state.total += added;
        Ok(id)
    }

    /// The checks `semop` makes before trying (after `E2BIG` and the copy-in): the set,
    /// `EFBIG` for a semaphore number beyond it, and the permission the operations need.
    /// Returns what its waiters sleep on.
    pub fn prepare(
        &self,
        id: i32,
        ops: &[SemBuf],
        creds: &Credentials,
    ) -> SysResult<Arc<SetWaiters>> {
        let state = self.lock();
        let set = state.ids.get(id)?;
        let max = ops.iter().map(|o| usize::from(o.num)).max().unwrap_or(0);
        if max >= set.sems.len() {
            return Err(Errno::EFBIG);
        }
        let alter = ops.iter().any(|o| o.op != 0);
        set.perm
            .check(creds, if alter { WRITE_UGO } else { READ_UGO })?;
        Ok(Arc::clone(&set.waiters))
    }

    /// One try of `semop`'s operation array on set `id`, all or nothing. `ticket` names a
    /// waiter (counted by `GETNCNT`/`GETZCNT` while it blocks); `undo` is the caller's
    /// undo list when an operation has `SEM_UNDO`.
    pub fn try_ops(
        &self,
        id: i32,
        waiters: &SetWaiters,
        ops: &[SemBuf],
        ticket: u64,
        undo: Option<&UndoList>,
        pid: i32,
    ) -> Result<(), SemopError> {
        let mut state = self.lock();
        if waiters.removed.load(Ordering::Relaxed) {
            return Err(SemopError::Fail(Errno::EIDRM));
        }
        let set = state
            .ids
            .get_mut(id)
            .map_err(|_| SemopError::Fail(Errno::EIDRM))?;
        let mut vals: Vec<i32> = set.sems.iter().map(|s| s.val).collect();
        let mut adj: Option<Vec<i32>> = undo.map(|u| {
            set.undo
                .get(&u.id)
                .cloned()
                .unwrap_or_else(|| vec![0; vals.len()])
        });
        for op in ops {
            let n = usize::from(op.num);
            let Some(val) = vals.get_mut(n) else {
                return Err(SemopError::Fail(Errno::EFBIG));
            };
            let delta = i32::from(op.op);
            let block = || {
                if i32::from(op.flags) & IPC_NOWAIT != 0 {
                    SemopError::Fail(Errno::EAGAIN)
                } else {
                    SemopError::Block {
                        num: op.num,
                        zero: delta == 0,
                    }
                }
            };
            if delta == 0 && *val != 0 {
                let e = block();
                if let SemopError::Block { num, zero } = e {
                    set.blocked.insert(ticket, (num, zero));
                }
                return Err(e);
            }
            let result = *val + delta;
            if result < 0 {
                let e = block();
                if let SemopError::Block { num, zero } = e {
                    set.blocked.insert(ticket, (num, zero));
                }
                return Err(e);
            }
            if result > SEMVMX {
                set.blocked.remove(&ticket);
                return Err(SemopError::Fail(Errno::ERANGE));
            }
            if op.flags & SEM_UNDO != 0 {
                if let Some(adj) = adj.as_mut() {
                    let undo = adj[n] - delta;
                    if !(-SEMAEM - 1..=SEMAEM).contains(&undo) {
                        set.blocked.remove(&ticket);
                        return Err(SemopError::Fail(Errno::ERANGE));
                    }
                    adj[n] = undo;
                }
            }
            *val = result;
        }
        set.blocked.remove(&ticket);
        let mut changed = false;
        for op in ops {
            let sem = &mut set.sems[usize::from(op.num)];
            sem.pid = pid;
            changed |= op.op != 0;
        }
        for (sem, val) in set.sems.iter_mut().zip(vals) {
            sem.val = val;
        }
        if let (Some(u), Some(adj)) = (undo, adj) {
            if ops.iter().any(|o| o.flags & SEM_UNDO != 0) {
                set.undo.insert(u.id, adj);
            }
        }
        set.otime = now_seconds();
        if changed {
            set.waiters.queue.notify_all();
        }
        Ok(())
    }

    /// A blocked `semop` gave up (signal, timeout, removal).
    pub fn stop_waiting(&self, id: i32, ticket: u64) {
        if let Ok(set) = self.lock().ids.get_mut(id) {
            set.blocked.remove(&ticket);
        }
    }

    /// A fresh ticket for a `semop`.
    pub fn new_ticket(&self) -> u64 {
        self.ticket()
    }

    /// `GETVAL`, `GETPID`, `GETNCNT` and `GETZCNT` of semaphore `num`.
    pub fn get_one(&self, id: i32, num: i32, cmd: i32, creds: &Credentials) -> SysResult<i32> {
        let state = self.lock();
        let set = state.ids.get(id)?;
        set.perm.check(creds, READ_UGO)?;
        let n = usize::try_from(num)
            .ok()
            .filter(|&n| n < set.sems.len())
            .ok_or(Errno::EINVAL)?;
        let count = |zero: bool| {
            let count = set
                .blocked
                .values()
                .filter(|&&(num, z)| usize::from(num) == n && z == zero)
                .count();
            i32::try_from(count).unwrap_or(i32::MAX)
        };
        Ok(match cmd {
            GETVAL => set.sems[n].val,
            GETPID => set.sems[n].pid,
            GETNCNT => count(false),
            _ => count(true),
        })
    }

    /// `GETALL`: every value (after the read permission check).
    pub fn get_all(&self, id: i32, creds: &Credentials) -> SysResult<Vec<u16>> {
        let state = self.lock();
        let set = state.ids.get(id)?;
        set.perm.check(creds, READ_UGO)?;
        Ok(set
            .sems
            .iter()
            .map(|s| u16::try_from(s.val).unwrap_or(u16::MAX))
            .collect())
    }

    /// The number of semaphores in set `id`, for `SETALL`'s copy-in.
    pub fn nsems(&self, id: i32, creds: &Credentials, requested: u32) -> SysResult<usize> {
        let state = self.lock();
        let set = state.ids.get(id)?;
        set.perm.check(creds, requested)?;
        Ok(set.sems.len())
    }

    /// `SETVAL` (`num` given) or `SETALL`: new values, which also forget every process's
    /// undo adjustments of them.
    pub fn set_values(
        &self,
        id: i32,
        num: Option<i32>,
        values: &[i32],
        caller: &Caller<'_>,
    ) -> SysResult<()> {
        if values.iter().any(|v| !(0..=SEMVMX).contains(v)) {
            return Err(Errno::ERANGE);
        }
        let mut state = self.lock();
        let set = state.ids.get_mut(id)?;
        let index = match num {
            Some(num) => Some(
                usize::try_from(num)
                    .ok()
                    .filter(|&n| n < set.sems.len())
                    .ok_or(Errno::EINVAL)?,
            ),
            None => None,
        };
        set.perm.check(caller.creds, WRITE_UGO)?;
        match index {
            Some(n) => {
                set.sems[n] = Semaphore {
                    val: values.first().copied().unwrap_or(0),
                    pid: caller.pid,
                };
            }
            None => {
                for (sem, &val) in set.sems.iter_mut().zip(values) {
                    *sem = Semaphore {
                        val,
                        pid: caller.pid,
                    };
                }
            }
        }
        set.clear_undo(index);
        set.ctime = now_seconds();
        set.waiters.queue.notify_all();
        Ok(())
    }

    /// `IPC_STAT` (by ID), `SEM_STAT` and `SEM_STAT_ANY` (by index).
    pub fn stat(&self, id: i32, cmd: i32, creds: &Credentials) -> SysResult<(SemidDs, i32)> {
        let state = self.lock();
        let (ret, set) = state.ids.for_stat(id, cmd, SEM_STAT_ANY, creds)?;
        Ok((set.ds(), ret))
    }

    /// `IPC_SET`.
    pub fn set(&self, id: i32, new: &SemidDs, creds: &Credentials) -> SysResult<()> {
        let mut state = self.lock();
        let set = state.ids.controlled(id, creds)?;
        set.perm.update(&new.perm)?;
        set.ctime = now_seconds();
        Ok(())
    }

    /// `IPC_RMID`: the set goes at once; its waiters fail with `EIDRM`.
    pub fn remove(&self, id: i32, creds: &Credentials) -> SysResult<()> {
        let mut state = self.lock();
        state.ids.controlled(id, creds)?;
        if let Some(set) = state.ids.remove(id) {
            state.total = state.total.saturating_sub(set.sems.len());
            set.waiters.removed.store(true, Ordering::Relaxed);
            set.waiters.queue.notify_all();
        }
        Ok(())
    }

    /// `IPC_INFO` and `SEM_INFO`, and the highest index in use.
    pub fn info(&self, usage: bool) -> (SemInfo, i32) {
        let state = self.lock();
        let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
        let (semusz, semaem) = if usage {
            (n(state.ids.len()), n(state.total))
        } else {
            (20, SEMAEM)
        };
        let info = SemInfo {
            semmap: n(SEMMNS),
            semmni: n(SEMMNI),
            semmns: n(SEMMNS),
            semmnu: n(SEMMNS),
            semmsl: n(SEMMSL),
            semopm: n(SEMOPM),
            semume: n(SEMOPM),
            semusz,
            semvmx: SEMVMX,
            semaem,
        };
        (info, state.ids.max_index().max(0))
    }

    /// `/proc/sysvipc/sem`.
    pub fn proc_table(&self) -> String {
        use std::fmt::Write as _;
        let state = self.lock();
        let mut out = PROC_HEADER.to_string();
        for (id, s) in state.ids.iter() {
            let _ = writeln!(
                out,
                "{:>10} {:>10}  {:>4o} {:>10} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10}",
                s.perm.key,
                id,
                s.perm.mode,
                s.sems.len(),
                s.perm.uid,
                s.perm.gid,
                s.perm.cuid,
                s.perm.cgid,
                s.otime,
                s.ctime,
            );
        }
        out
    }
}

/// The first line of `/proc/sysvipc/sem`.
pub const PROC_HEADER: &str =
    "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn op(num: u16, op: i16, flags: i16) -> SemBuf {
        SemBuf { num, op, flags }
    }

    fn values(sem: &Sem, id: i32, creds: &Credentials) -> Vec<u16> {
        sem.get_all(id, creds).unwrap()
    }

    #[test]
    fn operation_arrays_are_all_or_nothing() {
        let sem = Arc::new(Sem::default());
        let root = Credentials::default();
        let caller = Caller {
            creds: &root,
            pid: 7,
        };
        let id = sem.get(0, 2, 0o600, &caller).unwrap();
        let waiters = sem.prepare(id, &[op(1, 1, 0)], &root).unwrap();
        let ops = [op(0, 1, 0), op(1, -1, 0)];
        let blocked = sem.try_ops(id, &waiters, &ops, 1, None, 7);
        assert!(matches!(
            blocked,
            Err(SemopError::Block {
                num: 1,
                zero: false
            })
        ));
        assert_eq!(values(&sem, id, &root), [0, 0]);
        assert_eq!(sem.get_one(id, 1, GETNCNT, &root), Ok(1));
        let nowait = [op(0, 1, 0), op(1, -1, 0o4000)];
        assert!(matches!(
            sem.try_ops(id, &waiters, &nowait, 2, None, 7),
            Err(SemopError::Fail(Errno::EAGAIN))
        ));
        assert!(sem
            .try_ops(id, &waiters, &[op(1, 2, 0)], 3, None, 7)
            .is_ok());
        assert!(sem.try_ops(id, &waiters, &ops, 1, None, 7).is_ok());
        assert_eq!(values(&sem, id, &root), [1, 1]);
        assert_eq!(sem.get_one(id, 1, GETNCNT, &root), Ok(0));
        assert!(matches!(
            sem.try_ops(id, &waiters, &[op(0, i16::MAX, 0)], 4, None, 7),
            Err(SemopError::Fail(Errno::ERANGE))
        ));
        assert_eq!(
            sem.prepare(id, &[op(2, 1, 0)], &root).map(|_| ()),
            Err(Errno::EFBIG)
        );
    }

    #[test]
    fn undo_is_applied_when_the_list_goes() {
        let sem = Arc::new(Sem::default());
        let root = Credentials::default();
        let caller = Caller {
            creds: &root,
            pid: 7,
        };
        let id = sem.get(0, 1, 0o600, &caller).unwrap();
        sem.set_values(id, None, &[3], &caller).unwrap();
        let waiters = sem.prepare(id, &[op(0, 1, 0)], &root).unwrap();
        let list = UndoList::new(&sem);
        let ops = [op(0, 2, SEM_UNDO)];
        assert!(sem.try_ops(id, &waiters, &ops, 1, Some(&list), 7).is_ok());
        assert_eq!(values(&sem, id, &root), [5]);
        let shared = Arc::clone(&list);
        drop(list);
        assert_eq!(values(&sem, id, &root), [5]);
        drop(shared);
        assert_eq!(values(&sem, id, &root), [3]);
        // A removed set fails its waiters with EIDRM.
        sem.remove(id, &root).unwrap();
        assert!(matches!(
            sem.try_ops(id, &waiters, &ops, 2, None, 7),
            Err(SemopError::Fail(Errno::EIDRM))
        ));
    }
}
