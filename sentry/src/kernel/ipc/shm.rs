//! System V shared memory segments (Linux's `ipc/shm.c`).
//!
//! A segment's memory is an [`AnonymousObject`], the object shared anonymous mappings
//! use. Each `shmat` maps it through a new [`Attachment`], and every VMA that maps an
//! attachment holds a reference to it: `fork` copies the VMA (and so the reference), a
//! split of the VMA adds one, `munmap`, `exec` and exit drop them. So the attach count is
//! the number of those references, as Linux counts the segment's VMAs. `shmat`, `shmdt`,
//! `fork`, `exec` and exit record the attach and detach times and the last process as they
//! happen; when the last reference to an attachment goes, its `Drop` records the detach
//! (of a plain `munmap`, say) and destroys a segment that `IPC_RMID` marked.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::{
    get_or_create, now_seconds, Ids, IpcObject, IpcPerm, IpcPermAbi, CAP_IPC_LOCK, IPC_PRIVATE,
    READ_UGO,
};
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::Credentials;
use platform::MemoryFile;

use crate::mm::{
    check_commit, AnonymousObject, MemoryManager, MemoryObject, Page, UserAddr, PAGE_SIZE,
};

/// The smallest and largest segment (`SHMMIN`, the default `shmmax`).
pub const SHMMIN: u64 = 1;
pub const SHMMAX: u64 = u64::MAX - (1 << 24);
/// The most pages all segments together may have (the default `shmall`).
pub const SHMALL: u64 = u64::MAX - (1 << 24);
/// The most segments (`shmmni`), and per process (`SHMSEG`, not enforced, as on Linux).
pub const SHMMNI: usize = 4096;

/// `shmget` flags: huge pages, and no commit check.
const SHM_HUGETLB: i32 = 0o4000;
const SHM_NORESERVE: i32 = 0o10000;
/// Mode flags: marked for destruction, and locked in memory.
pub const SHM_DEST: u32 = 0o1000;
pub const SHM_LOCKED: u32 = 0o2000;

/// `shmctl` commands of shared memory's own.
pub const SHM_LOCK: i32 = 11;
pub const SHM_UNLOCK: i32 = 12;
pub const SHM_STAT: i32 = 13;
pub const SHM_INFO: i32 = 14;
pub const SHM_STAT_ANY: i32 = 15;

struct Segment {
    perm: IpcPerm,
    size: u64,
    memory: Arc<AnonymousObject>,
    /// Every attachment made; the live ones hold the segment mapped.
    attachments: Vec<Weak<Attachment>>,
    atime: i64,
    dtime: i64,
    ctime: i64,
    cpid: i32,
    lpid: i32,
    /// Whose `RLIMIT_MEMLOCK` a `SHM_LOCK` counts against.
    locked_by: Option<u32>,
}

impl IpcObject for Segment {
    fn perm(&self) -> &IpcPerm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut IpcPerm {
        &mut self.perm
    }
}

impl Segment {
    /// `shm_nattch`: the VMAs that map it, in every address space.
    fn nattch(&self) -> u64 {
        self.attachments
            .iter()
            .map(|a| a.strong_count() as u64)
            .sum()
    }

    fn pages(&self) -> u64 {
        self.size.div_ceil(PAGE_SIZE)
    }

    fn ds(&self) -> ShmidDs {
        ShmidDs {
            perm: self.perm.abi(),
            segsz: self.size,
            atime: self.atime,
            dtime: self.dtime,
            ctime: self.ctime,
            cpid: self.cpid,
            lpid: self.lpid,
            nattch: self.nattch(),
            ..ShmidDs::default()
        }
    }
}

#[derive(Default)]
struct State {
    ids: Ids<Segment>,
    /// Pages of all segments (`shm_tot`).
    total_pages: u64,
}

/// The sandbox's shared memory segments.
#[derive(Default)]
pub struct Shm {
    state: Mutex<State>,
}

/// `struct shmid64_ds` on x86-64.
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct ShmidDs {
    pub perm: IpcPermAbi,
    pub segsz: u64,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub cpid: i32,
    pub lpid: i32,
    pub nattch: u64,
    pub unused4: u64,
    pub unused5: u64,
}
const _: () = assert!(std::mem::size_of::<ShmidDs>() == 112);

/// `struct shminfo64` (`IPC_INFO`).
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct ShmInfo64 {
    pub shmmax: u64,
    pub shmmin: u64,
    pub shmmni: u64,
    pub shmseg: u64,
    pub shmall: u64,
    pub unused: [u64; 4],
}
const _: () = assert!(std::mem::size_of::<ShmInfo64>() == 72);

/// `struct shm_info` (`SHM_INFO`).
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct ShmSummary {
    pub used_ids: i32,
    pub pad: i32,
    pub shm_tot: u64,
    pub shm_rss: u64,
    pub shm_swp: u64,
    pub swap_attempts: u64,
    pub swap_successes: u64,
}
const _: () = assert!(std::mem::size_of::<ShmSummary>() == 48);

/// What a `shmat` maps: the segment's memory, as one attachment.
pub struct Attachment {
    shm: Weak<Shm>,
    id: i32,
    key: i32,
    size: u64,
    memory: Arc<AnonymousObject>,
    /// Set once the mapping is in place (a failed `shmat` records no attach or detach).
    mapped: std::sync::atomic::AtomicBool,
}

impl Attachment {
    /// The segment's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Records that process `pid` mapped (`fork`) or unmapped (`shmdt`, `exec`, exit) the
    /// segment: `shm_atime` or `shm_dtime`, and `shm_lpid`, as Linux's `shm_open` and
    /// `shm_close` do for each mapping.
    pub fn record(&self, attach: bool, pid: i32) {
        let Some(shm) = self.shm.upgrade() else {
            return;
        };
        let mut state = shm.lock();
        if let Ok(seg) = state.ids.get_mut(self.id) {
            if attach {
                seg.atime = now_seconds();
            } else {
                seg.dtime = now_seconds();
            }
            seg.lpid = pid;
        }
    }
}

impl MemoryObject for Attachment {
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>> {
        self.memory.page(index)
    }

    fn name(&self) -> String {
        format!("/SYSV{:08x} (deleted)", self.key)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let Some(shm) = self.shm.upgrade() else {
            return;
        };
        let pid = crate::kernel::current::get().map(|(_, group)| group.tgid);
        let mapped = self.mapped.load(std::sync::atomic::Ordering::Relaxed);
        shm.detached(self.id, mapped.then_some(pid).flatten());
    }
}

/// Who asks: the credentials and process ID of the caller.
pub struct Caller<'a> {
    pub creds: &'a Credentials,
    pub pid: i32,
}

/// Read, write and execute access wanted by `shmat`.
pub struct AttachAccess {
    pub write: bool,
    pub exec: bool,
}

impl Shm {
    /// Whether there are no segments (and so no attachments).
    fn is_empty(&self) -> bool {
        self.lock().ids.is_empty()
    }

    /// Unmaps every System V attachment of `mm` (the memory of process `pid`, which exits or
    /// execs), recording each detach.
    pub fn detach_all(&self, mm: &MemoryManager, pid: i32) {
        if self.is_empty() {
            return;
        }
        for vma in mm.vmas() {
            let Some((object, _)) = &vma.object else {
                continue;
            };
            if let Some(attachment) = attachment_of(&**object) {
                attachment.record(false, pid);
                // The range is a VMA's own: page-aligned and mapped.
                let _ = mm.munmap(UserAddr::new(vma.start), vma.end - vma.start);
            }
        }
    }

    /// Records the attaches a `fork` by process `pid` made: the child's copies of its
    /// mappings of segments.
    pub fn record_fork(&self, mm: &MemoryManager, pid: i32) {
        if self.is_empty() {
            return;
        }
        for vma in mm.vmas() {
            if let Some((object, _)) = &vma.object {
                if let Some(attachment) = attachment_of(&**object) {
                    attachment.record(true, pid);
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `shmget`: a new segment's memory comes from `memory`.
    pub fn get(
        &self,
        memory: &Arc<MemoryFile>,
        key: i32,
        size: u64,
        flags: i32,
        caller: &Caller<'_>,
    ) -> SysResult<i32> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let total = state.total_pages;
        let mut pages = 0;
        let id = get_or_create(
            &mut state.ids,
            key,
            flags,
            caller.creds,
            |seg| {
                if seg.size < size {
                    return Err(Errno::EINVAL);
                }
                Ok(())
            },
            || {
                if !(SHMMIN..=SHMMAX).contains(&size) {
                    return Err(Errno::EINVAL);
                }
                if flags & SHM_HUGETLB != 0 {
                    // No huge pages are reserved in the sandbox, as on a host with none
                    // configured (the same answer as mmap's MAP_HUGETLB).
                    log::debug!("shmget(SHM_HUGETLB): no huge pages (ENOMEM)");
                    return Err(Errno::ENOMEM);
                }
                pages = size.div_ceil(PAGE_SIZE);
                if total.checked_add(pages).is_none_or(|t| t > SHMALL) {
                    return Err(Errno::ENOSPC);
                }
                if flags & SHM_NORESERVE == 0 {
                    check_commit(size)?;
                }
                let memory = AnonymousObject::new(memory, size);
                let segment = Segment {
                    perm: IpcPerm::new(key, caller.creds, flags),
                    size,
                    memory,
                    attachments: Vec::new(),
                    atime: 0,
                    dtime: 0,
                    ctime: now_seconds(),
                    cpid: caller.pid,
                    lpid: 0,
                    locked_by: None,
                };
                Ok((segment, SHMMNI))
            },
        )?;
        state.total_pages += pages;
        Ok(id)
    }

    /// `shmat`'s half before the mapping: checks, and the attachment to map. Once it is
    /// mapped, [`Shm::attached`] records the attach.
    pub fn attach(
        self: &Arc<Self>,
        id: i32,
        access: &AttachAccess,
        caller: &Caller<'_>,
    ) -> SysResult<Arc<Attachment>> {
        let mut state = self.lock();
        let seg = state.ids.get_mut(id)?;
        let mut requested = READ_UGO;
        if access.write {
            requested |= super::WRITE_UGO;
        }
        if access.exec {
            requested |= 0o111;
        }
        seg.perm.check(caller.creds, requested)?;
        let attachment = Arc::new(Attachment {
            shm: Arc::downgrade(self),
            id,
            key: seg.perm.key,
            size: seg.size,
            memory: Arc::clone(&seg.memory),
            mapped: std::sync::atomic::AtomicBool::new(false),
        });
        seg.attachments.retain(|a| a.strong_count() > 0);
        seg.attachments.push(Arc::downgrade(&attachment));
        Ok(attachment)
    }

    /// Records a successful `shmat` of `attachment` by process `pid`.
    pub fn attached(&self, attachment: &Attachment, pid: i32) {
        attachment
            .mapped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut state = self.lock();
        if let Ok(seg) = state.ids.get_mut(attachment.id) {
            seg.atime = now_seconds();
            seg.lpid = pid;
        }
    }

    /// The last mapping of an attachment of segment `id` went (by process `pid`, if it
    /// was mapped at all): records the detach, and destroys a segment marked for it that
    /// nothing maps any more.
    fn detached(&self, id: i32, pid: Option<i32>) {
        let mut state = self.lock();
        let Ok(seg) = state.ids.get_mut(id) else {
            return;
        };
        if let Some(pid) = pid {
            seg.dtime = now_seconds();
            seg.lpid = pid;
        }
        seg.attachments.retain(|a| a.strong_count() > 0);
        if seg.perm.mode & SHM_DEST != 0 && seg.nattch() == 0 {
            Self::destroy(&mut state, id);
        }
    }

    fn destroy(state: &mut State, id: i32) {
        if let Some(seg) = state.ids.remove(id) {
            state.total_pages = state.total_pages.saturating_sub(seg.pages());
        }
    }

    /// `IPC_STAT` (by ID), `SHM_STAT` and `SHM_STAT_ANY` (by index): the segment's
    /// `shmid64_ds`, and what the call returns (0, or the ID for the index commands).
    pub fn stat(&self, id: i32, cmd: i32, creds: &Credentials) -> SysResult<(ShmidDs, i32)> {
        let state = self.lock();
        let (ret, seg) = state.ids.for_stat(id, cmd, SHM_STAT_ANY, creds)?;
        Ok((seg.ds(), ret))
    }

    /// `IPC_SET`: the owner and mode from `new`.
    pub fn set(&self, id: i32, new: &ShmidDs, creds: &Credentials) -> SysResult<()> {
        let mut state = self.lock();
        let seg = state.ids.controlled(id, creds)?;
        seg.perm.update(&new.perm)?;
        seg.ctime = now_seconds();
        Ok(())
    }

    /// `IPC_RMID`: destroys the segment now if nothing maps it, else when the last
    /// mapping goes; meanwhile its key no longer finds it.
    pub fn remove(&self, id: i32, creds: &Credentials) -> SysResult<()> {
        let mut state = self.lock();
        let seg = state.ids.controlled(id, creds)?;
        seg.attachments.retain(|a| a.strong_count() > 0);
        if seg.nattch() == 0 {
            Self::destroy(&mut state, id);
        } else {
            seg.perm.mode |= SHM_DEST;
            seg.perm.key = IPC_PRIVATE;
        }
        Ok(())
    }

    /// `SHM_LOCK` and `SHM_UNLOCK`. `memlock` is the caller's `RLIMIT_MEMLOCK` in bytes.
    /// The memory of the sandbox is never swapped, so locking only marks the segment and
    /// counts it against the limit, as Linux does.
    pub fn lock_segment(
        &self,
        id: i32,
        lock: bool,
        creds: &Credentials,
        memlock: u64,
    ) -> SysResult<()> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let privileged = creds.capable(CAP_IPC_LOCK);
        let seg = state.ids.get(id)?;
        if !privileged {
            if creds.euid != seg.perm.uid && creds.euid != seg.perm.cuid {
                return Err(Errno::EPERM);
            }
            if lock && memlock == 0 {
                return Err(Errno::EPERM);
            }
        }
        if !lock {
            let seg = state.ids.get_mut(id)?;
            seg.perm.mode &= !SHM_LOCKED;
            seg.locked_by = None;
            return Ok(());
        }
        if seg.perm.mode & SHM_LOCKED != 0 {
            return Ok(());
        }
        // Linux's `user_shm_lock`: the pages this user has locked, and these, within the
        // limit.
        let euid = creds.euid;
        let locked: u64 = state
            .ids
            .iter()
            .filter(|(_, s)| s.locked_by == Some(euid))
            .map(|(_, s)| s.pages())
            .sum();
        let limit = memlock / PAGE_SIZE;
        if memlock != u64::MAX && !privileged && locked.saturating_add(seg.pages()) > limit {
            return Err(Errno::ENOMEM);
        }
        let seg = state.ids.get_mut(id)?;
        seg.perm.mode |= SHM_LOCKED;
        seg.locked_by = Some(euid);
        Ok(())
    }

    /// `IPC_INFO`: the limits, and the highest index in use.
    pub fn limits(&self) -> (ShmInfo64, i32) {
        let info = ShmInfo64 {
            shmmax: SHMMAX,
            shmmin: SHMMIN,
            shmmni: SHMMNI as u64,
            shmseg: SHMMNI as u64,
            shmall: SHMALL,
            unused: [0; 4],
        };
        (info, self.lock().ids.max_index().max(0))
    }

    /// `SHM_INFO`: what all segments use, and the highest index in use.
    pub fn summary(&self) -> (ShmSummary, i32) {
        let state = self.lock();
        let info = ShmSummary {
            used_ids: i32::try_from(state.ids.len()).unwrap_or(i32::MAX),
            shm_tot: state.total_pages,
            shm_rss: state
                .ids
                .iter()
                .map(|(_, s)| s.memory.resident_pages())
                .sum(),
            ..ShmSummary::default()
        };
        (info, state.ids.max_index().max(0))
    }

    /// `/proc/sysvipc/shm`.
    pub fn proc_table(&self) -> String {
        use std::fmt::Write as _;
        let state = self.lock();
        let mut out = PROC_HEADER.to_string();
        for (id, s) in state.ids.iter() {
            let _ = writeln!(
                out,
                "{:>10} {:>10}  {:>4o} {:>21} {:>5} {:>5}  {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}",
                s.perm.key,
                id,
                s.perm.mode,
                s.size,
                s.cpid,
                s.lpid,
                s.nattch(),
                s.perm.uid,
                s.perm.gid,
                s.perm.cuid,
                s.perm.cgid,
                s.atime,
                s.dtime,
                s.ctime,
                s.memory.resident_pages() * PAGE_SIZE,
                0,
            );
        }
        out
    }
}

/// The first line of `/proc/sysvipc/shm`.
pub const PROC_HEADER: &str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n";

/// Whether `object` is a System V attachment, and which.
pub fn attachment_of(object: &dyn MemoryObject) -> Option<&Attachment> {
    object.as_any()?.downcast_ref::<Attachment>()
}
