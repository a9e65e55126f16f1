//! System V IPC: what shared memory, semaphores and message queues have in common — keys,
//! IDs, `ipc_perm` and its permission checks (Linux's `ipc/util.c`).
//!
//! The sandbox has one IPC namespace: one [`Ipc`] hangs off the kernel object.

pub mod msg;
pub mod sem;
pub mod shm;

use std::collections::BTreeMap;

use crate::errno::{Errno, SysResult};
use crate::kernel::creds::{Credentials, CAP_SYS_ADMIN};

/// The key that always makes a new object.
pub const IPC_PRIVATE: i32 = 0;
/// `*get` flags.
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_NOWAIT: i32 = 0o4000;
/// `*ctl` commands every kind takes.
pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;

/// An ID is `seq * SEQ_MULTIPLIER + index` (Linux's `IPCMNI`).
pub const SEQ_MULTIPLIER: i32 = 32768;
/// Indices are handed out cyclically below at least this many (Linux's `ipc_min_cycle`).
const MIN_CYCLE: u32 = 64;
/// The sequence number wraps here (`ipcid_seq_max`: `INT_MAX / SEQ_MULTIPLIER`).
const SEQ_MAX: i32 = i32::MAX / SEQ_MULTIPLIER;

/// Permission bits of the mode (`S_IRWXUGO`).
pub const MODE_BITS: u32 = 0o777;
/// Read and write for everyone, as a `requested` mode for [`IpcPerm::allowed`].
pub const READ_UGO: u32 = 0o444;
pub const WRITE_UGO: u32 = 0o222;

/// `CAP_IPC_LOCK` and `CAP_IPC_OWNER`.
pub const CAP_IPC_LOCK: u32 = 14;
pub const CAP_IPC_OWNER: u32 = 15;

/// The owner, creator and mode of an object (`struct kern_ipc_perm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpcPerm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// The permission bits, and a kind's own flags above them (`SHM_DEST`, …).
    pub mode: u32,
    pub seq: u16,
}

impl IpcPerm {
    /// A new object's: owned and created by the caller's effective IDs.
    pub fn new(key: i32, creds: &Credentials, flags: i32) -> Self {
        Self {
            key,
            uid: creds.euid,
            gid: creds.egid,
            cuid: creds.euid,
            cgid: creds.egid,
            mode: u32::try_from(flags).unwrap_or(0) & MODE_BITS,
            seq: 0,
        }
    }

    /// Whether `creds` may have the access in `requested` (mode bits in any of the three
    /// classes; Linux's `ipcperms`). `CAP_IPC_OWNER` overrides.
    pub fn allowed(&self, creds: &Credentials, requested: u32) -> bool {
        let requested = (requested >> 6) | (requested >> 3) | requested;
        let mut granted = self.mode;
        if creds.euid == self.uid || creds.euid == self.cuid {
            granted >>= 6;
        } else if creds.in_group(self.gid) || creds.in_group(self.cgid) {
            granted >>= 3;
        }
        requested & !granted & 0o7 == 0 || creds.capable(CAP_IPC_OWNER)
    }

    /// `EACCES` unless [`IpcPerm::allowed`].
    pub fn check(&self, creds: &Credentials, requested: u32) -> SysResult<()> {
        if self.allowed(creds, requested) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// Whether `creds` may change or remove the object (`IPC_SET`, `IPC_RMID`): its owner,
    /// its creator, or `CAP_SYS_ADMIN` (`ipcctl_obtain_check`).
    pub fn may_control(&self, creds: &Credentials) -> SysResult<()> {
        if creds.euid == self.uid || creds.euid == self.cuid || creds.capable(CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// `IPC_SET`: the new owner and permission bits (`ipc_update_perm`).
    pub fn update(&mut self, new: &IpcPermAbi) -> SysResult<()> {
        // (uid_t)-1 is no user.
        if new.uid == u32::MAX || new.gid == u32::MAX {
            return Err(Errno::EINVAL);
        }
        self.uid = new.uid;
        self.gid = new.gid;
        self.mode = (self.mode & !MODE_BITS) | (new.mode & MODE_BITS);
        Ok(())
    }

    /// The ABI form, for `IPC_STAT`.
    pub fn abi(&self) -> IpcPermAbi {
        IpcPermAbi {
            key: self.key,
            uid: self.uid,
            gid: self.gid,
            cuid: self.cuid,
            cgid: self.cgid,
            mode: self.mode,
            seq: self.seq,
            ..IpcPermAbi::default()
        }
    }
}

/// `struct ipc64_perm` on x86-64.
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct IpcPermAbi {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub mode: u32,
    pub seq: u16,
    pub pad2: u16,
    pub pad3: u32,
    pub unused1: u64,
    pub unused2: u64,
}
const _: () = assert!(std::mem::size_of::<IpcPermAbi>() == 48);

/// An object an [`Ids`] table holds.
pub trait IpcObject {
    fn perm(&self) -> &IpcPerm;
    fn perm_mut(&mut self) -> &mut IpcPerm;
}

/// The objects of one kind, by index, with Linux's ID scheme (`struct ipc_ids`).
pub struct Ids<T> {
    objects: BTreeMap<i32, T>,
    /// The sequence number new IDs get; moves on when the indices wrap.
    seq: i32,
    /// The index handed out last (-1: none yet).
    last_index: i32,
}

impl<T> Default for Ids<T> {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            seq: 0,
            last_index: -1,
        }
    }
}

/// The index part of an ID.
pub fn index_of(id: i32) -> i32 {
    id % SEQ_MULTIPLIER
}

impl<T: IpcObject> Ids<T> {
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The ID of the object with `key` (never `IPC_PRIVATE`).
    pub fn find_key(&self, key: i32) -> Option<i32> {
        self.objects
            .iter()
            .find(|(_, o)| o.perm().key == key)
            .map(|(&index, o)| id_of(index, o.perm().seq))
    }

    /// Adds `object` and returns its new ID; `ENOSPC` if `limit` objects exist already.
    /// Indices are allocated cyclically (Linux's `idr_alloc_cyclic` below
    /// `max(in_use * 3 / 2, 64)`), the sequence number moving on each time they wrap.
    pub fn add(&mut self, mut object: T, limit: usize) -> SysResult<i32> {
        let in_use = self.objects.len();
        if in_use >= limit {
            return Err(Errno::ENOSPC);
        }
        let cycle = u32::try_from(in_use * 3 / 2)
            .unwrap_or(u32::MAX)
            .max(MIN_CYCLE)
            .min(u32::try_from(limit).unwrap_or(u32::MAX))
            .min(SEQ_MULTIPLIER.unsigned_abs());
        let cycle = i32::try_from(cycle).unwrap_or(SEQ_MULTIPLIER);
        let free = |from: i32, to: i32| (from..to).find(|i| !self.objects.contains_key(i));
        let index = free(self.last_index + 1, cycle)
            .or_else(|| free(0, (self.last_index + 1).min(cycle)))
            .ok_or(Errno::ENOSPC)?;
        if index <= self.last_index {
            self.seq += 1;
            if self.seq >= SEQ_MAX {
                self.seq = 0;
            }
        }
        self.last_index = index;
        let seq = u16::try_from(self.seq).unwrap_or(0);
        object.perm_mut().seq = seq;
        self.objects.insert(index, object);
        Ok(id_of(index, seq))
    }

    /// The object with `id`: `EINVAL` if there is none (or it has another sequence number).
    pub fn get(&self, id: i32) -> SysResult<&T> {
        let index = self.check(id)?;
        self.objects.get(&index).ok_or(Errno::EINVAL)
    }

    pub fn get_mut(&mut self, id: i32) -> SysResult<&mut T> {
        let index = self.check(id)?;
        self.objects.get_mut(&index).ok_or(Errno::EINVAL)
    }

    fn check(&self, id: i32) -> SysResult<i32> {
        if id < 0 {
            return Err(Errno::EINVAL);
        }
        let index = index_of(id);
        let object = self.objects.get(&index).ok_or(Errno::EINVAL)?;
        if i32::from(object.perm().seq) != id / SEQ_MULTIPLIER {
            return Err(Errno::EINVAL);
        }
        Ok(index)
    }

    /// The object a stat command of `*ctl` names, and what the call returns: `IPC_STAT`
    /// takes an ID (and returns 0), the kind's `*_STAT` and `*_STAT_ANY` an index (and
    /// return its ID). The caller needs read permission except for `stat_any`.
    pub fn for_stat(
        &self,
        id: i32,
        cmd: i32,
        stat_any: i32,
        creds: &Credentials,
    ) -> SysResult<(i32, &T)> {
        let (ret, object) = if cmd == IPC_STAT {
            (0, self.get(id)?)
        } else {
            let object = self.objects.get(&id).ok_or(Errno::EINVAL)?;
            (id_of(id, object.perm().seq), object)
        };
        if cmd != stat_any {
            object.perm().check(creds, READ_UGO)?;
        }
        Ok((ret, object))
    }

    /// The object `IPC_SET` or `IPC_RMID` names, if `creds` may change it.
    pub fn controlled(&mut self, id: i32, creds: &Credentials) -> SysResult<&mut T> {
        let object = self.get_mut(id)?;
        object.perm().may_control(creds)?;
        Ok(object)
    }

    pub fn remove(&mut self, id: i32) -> Option<T> {
        let index = self.check(id).ok()?;
        self.objects.remove(&index)
    }

    /// The highest index in use, or -1 (`ipc_get_maxidx`).
    pub fn max_index(&self) -> i32 {
        self.objects.keys().next_back().copied().unwrap_or(-1)
    }

    /// Every object with its ID, by index.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &T)> {
        self.objects
            .iter()
            .map(|(&index, o)| (id_of(index, o.perm().seq), o))
    }
}

fn id_of(index: i32, seq: u16) -> i32 {
    i32::from(seq) * SEQ_MULTIPLIER + index
}

/// `*get`'s lookup (Linux's `ipcget`): a new object for `IPC_PRIVATE` or a missing key
/// with `IPC_CREAT`, else the existing one after `EEXIST`, the kind's own checks, and the
/// permission check of the mode bits in `flags`.
pub fn get_or_create<T: IpcObject>(
    ids: &mut Ids<T>,
    key: i32,
    flags: i32,
    creds: &Credentials,
    existing: impl FnOnce(&T) -> SysResult<()>,
    create: impl FnOnce() -> SysResult<(T, usize)>,
) -> SysResult<i32> {
    let found = if key == IPC_PRIVATE {
        None
    } else {
        ids.find_key(key)
    };
    let Some(id) = found else {
        if key != IPC_PRIVATE && flags & IPC_CREAT == 0 {
            return Err(Errno::ENOENT);
        }
        let (object, limit) = create()?;
        return ids.add(object, limit);
    };
    if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
        return Err(Errno::EEXIST);
    }
    let object = ids.get(id)?;
    existing(object)?;
    object
        .perm()
        .check(creds, u32::try_from(flags).unwrap_or(0) & MODE_BITS)?;
    Ok(id)
}

/// The wall clock in seconds, for the objects' times.
pub fn now_seconds() -> i64 {
    i64::try_from(crate::syscalls::time::Clock::Realtime.now().as_secs()).unwrap_or(i64::MAX)
}

/// The sandbox's System V IPC objects.
#[derive(Default)]
pub struct Ipc {
    pub shm: std::sync::Arc<shm::Shm>,
    pub sem: std::sync::Arc<sem::Sem>,
    pub msg: std::sync::Arc<msg::Msg>,
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Obj(IpcPerm);

    impl IpcObject for Obj {
        fn perm(&self) -> &IpcPerm {
            &self.0
        }
        fn perm_mut(&mut self) -> &mut IpcPerm {
            &mut self.0
        }
    }

    fn user(uid: u32, gid: u32) -> Credentials {
        Credentials::new(uid, gid)
    }

    fn create(ids: &mut Ids<Obj>, key: i32, flags: i32, creds: &Credentials) -> SysResult<i32> {
        get_or_create(
            ids,
            key,
            flags,
            creds,
            |_| Ok(()),
            || Ok((Obj(IpcPerm::new(key, creds, flags)), 4)),
        )
    }

    #[test]
    fn keys_find_create_and_refuse() {
        let mut ids = Ids::default();
        let me = user(1000, 1000);
        assert_eq!(create(&mut ids, 7, 0o600, &me), Err(Errno::ENOENT));
        let id = create(&mut ids, 7, IPC_CREAT | 0o600, &me).unwrap();
        assert_eq!(create(&mut ids, 7, 0, &me), Ok(id));
        assert_eq!(
            create(&mut ids, 7, IPC_CREAT | IPC_EXCL | 0o600, &me),
            Err(Errno::EEXIST)
        );
        let private = create(&mut ids, IPC_PRIVATE, 0o600, &me).unwrap();
        assert_ne!(private, id);
        assert_eq!(
            create(&mut ids, IPC_PRIVATE, 0o600, &me).map(|i| i != private),
            Ok(true)
        );
        assert_eq!(create(&mut ids, 8, IPC_CREAT, &me).map(|_| ()), Ok(()));
        // The fifth object goes beyond the limit of 4.
        assert_eq!(create(&mut ids, 9, IPC_CREAT, &me), Err(Errno::ENOSPC));
    }

    #[test]
    fn ids_carry_a_sequence_number() {
        let mut ids: Ids<Obj> = Ids::default();
        let me = user(0, 0);
        let first = ids.add(Obj(IpcPerm::new(1, &me, 0)), 64).unwrap();
        assert_eq!(first, 0);
        let second = ids.add(Obj(IpcPerm::new(2, &me, 0)), 64).unwrap();
        assert_eq!(second, 1);
        ids.remove(first);
        assert_eq!(ids.get(first).map(|_| ()), Err(Errno::EINVAL));
        // Indices go on cyclically, not back to the freed 0.
        assert_eq!(ids.add(Obj(IpcPerm::new(3, &me, 0)), 64), Ok(2));
        // Past the cycle, a reused index gets a new sequence number.
        for i in 3..64 {
            assert_eq!(ids.add(Obj(IpcPerm::new(10 + i, &me, 0)), 64), Ok(i));
        }
        let wrapped = ids.add(Obj(IpcPerm::new(99, &me, 0)), 64).unwrap();
        assert_eq!(wrapped, SEQ_MULTIPLIER);
        assert_eq!(ids.get(0).map(|_| ()), Err(Errno::EINVAL));
        assert!(ids.get(wrapped).is_ok());
        assert_eq!(ids.get(-1).map(|_| ()), Err(Errno::EINVAL));
        assert_eq!(ids.max_index(), 63);
    }

    #[test]
    fn permissions_by_class_and_capability() {
        let owner = user(1000, 100);
        let perm = IpcPerm::new(1, &owner, 0o640);
        assert!(perm.allowed(&owner, READ_UGO | WRITE_UGO));
        let group = user(2000, 100);
        assert!(perm.allowed(&group, READ_UGO));
        assert!(!perm.allowed(&group, WRITE_UGO));
        let other = user(3000, 300);
        assert_eq!(perm.check(&other, READ_UGO), Err(Errno::EACCES));
        assert!(perm.allowed(&other, 0));
        let mut capable = other.clone();
        capable.caps.effective |= crate::kernel::creds::bit(CAP_IPC_OWNER);
        assert!(perm.allowed(&capable, READ_UGO | WRITE_UGO));
        assert_eq!(perm.may_control(&other), Err(Errno::EPERM));
        assert_eq!(perm.may_control(&owner), Ok(()));
        assert_eq!(perm.may_control(&user(0, 0)), Ok(()));
    }
}
