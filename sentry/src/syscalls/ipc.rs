//! System V IPC: shmget, shmat, shmdt, shmctl.

use std::sync::Arc;

use platform::Perms;

use crate::errno::{Errno, SysResult};
use crate::kernel::ipc::shm::{
    attachment_of, AttachAccess, Caller, ShmidDs, SHM_INFO, SHM_LOCK, SHM_STAT, SHM_STAT_ANY,
    SHM_UNLOCK,
};
use crate::kernel::ipc::{IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT};
use crate::kernel::{Task, RLIM_INFINITY};
use crate::mm::{MapFlags, MemoryObject, UserAddr, UserPtr, PAGE_SIZE};

/// `shmat` flags.
const SHM_RDONLY: i32 = 0o10000;
const SHM_RND: i32 = 0o20000;
const SHM_REMAP: i32 = 0o40000;
const SHM_EXEC: i32 = 0o100000;
/// Attach addresses are rounded to this (`SHMLBA`: the page size on x86-64).
const SHMLBA: u64 = PAGE_SIZE;

/// `RLIMIT_MEMLOCK`'s number.
const RLIMIT_MEMLOCK: u32 = 8;

fn caller(task: &Task) -> Caller<'_> {
    Caller {
        creds: &task.creds,
        pid: task.tgid(),
    }
}

pub fn shmget(task: &mut Task, key: i32, size: u64, flags: i32) -> SysResult<i64> {
    let shm = Arc::clone(&task.kernel.ipc.shm);
    let id = shm.get(task.kernel.memory(), key, size, flags, &caller(task))?;
    Ok(i64::from(id))
}

pub fn shmat(task: &mut Task, id: i32, addr: UserAddr, flags: i32) -> SysResult<i64> {
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    let mut at = addr.get();
    let fixed = at != 0;
    if fixed {
        if at & (SHMLBA - 1) != 0 {
            if flags & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            at &= !(SHMLBA - 1);
            if at == 0 && flags & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        }
    } else if flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let access = AttachAccess {
        write: flags & SHM_RDONLY == 0,
        exec: flags & SHM_EXEC != 0,
    };
    let shm = Arc::clone(&task.kernel.ipc.shm);
    let attachment = shm.attach(id, &access, &caller(task))?;
    let size = attachment.size();
    let mut perms = Perms::READ;
    if access.write {
        perms |= Perms::WRITE;
    }
    if access.exec {
        perms |= Perms::EXEC;
    }
    let map_flags = MapFlags {
        shared: true,
        fixed: fixed && flags & SHM_REMAP != 0,
        // Without SHM_REMAP an attach may not replace anything (EINVAL, below).
        fixed_noreplace: fixed && flags & SHM_REMAP == 0,
        max_perms: (!access.write).then_some(Perms::all() - Perms::WRITE),
        ..MapFlags::default()
    };
    if fixed && at.checked_add(size).is_none() {
        return Err(Errno::EINVAL);
    }
    let object: Arc<dyn MemoryObject> = Arc::clone(&attachment) as Arc<dyn MemoryObject>;
    let mapped = task
        .mm
        .mmap(UserAddr::new(at), size, perms, map_flags, Some((object, 0)))
        .map_err(|e| if e == Errno::EEXIST { Errno::EINVAL } else { e })?;
    shm.attached(&attachment, task.tgid());
    Ok(mapped.get() as i64)
}

pub fn shmdt(task: &mut Task, addr: UserAddr) -> SysResult<i64> {
    if !addr.is_page_aligned() {
        return Err(Errno::EINVAL);
    }
    let at = addr.get();
    // As Linux: the first mapping at or above `addr` of an attachment whose start is
    // `addr`, then every other mapping of that attachment within its size.
    let vmas = task.mm.vmas();
    let mut found: Option<(Arc<dyn MemoryObject>, u64)> = None;
    let mut ranges = Vec::new();
    for vma in vmas.iter().filter(|v| v.end > at) {
        let Some((object, offset)) = &vma.object else {
            continue;
        };
        let Some(attachment) = attachment_of(&**object) else {
            continue;
        };
        if vma.start.checked_sub(*offset) != Some(at) {
            continue;
        }
        match &found {
            None => {
                let size = attachment.size().next_multiple_of(PAGE_SIZE);
                found = Some((Arc::clone(object), size));
                ranges.push((vma.start, vma.end));
            }
            Some((first, size)) => {
                if same_object(first, object) && vma.end - at <= *size {
                    ranges.push((vma.start, vma.end));
                }
            }
        }
    }
    drop(vmas);
    if found.is_none() {
        return Err(Errno::EINVAL);
    }
    drop(found);
    for (start, end) in ranges {
        task.mm.munmap(UserAddr::new(start), end - start)?;
    }
    Ok(0)
}

fn same_object(a: &Arc<dyn MemoryObject>, b: &Arc<dyn MemoryObject>) -> bool {
    std::ptr::eq(Arc::as_ptr(a).cast::<()>(), Arc::as_ptr(b).cast::<()>())
}

pub fn shmctl(task: &mut Task, id: i32, cmd: i32, buf: UserAddr) -> SysResult<i64> {
    if id < 0 || cmd < 0 {
        return Err(Errno::EINVAL);
    }
    let shm = Arc::clone(&task.kernel.ipc.shm);
    match cmd {
        IPC_INFO => {
            let (info, max) = shm.limits();
            task.mm.write(UserPtr::from(buf.get()), &info)?;
            Ok(i64::from(max))
        }
        SHM_INFO => {
            let (info, max) = shm.summary();
            task.mm.write(UserPtr::from(buf.get()), &info)?;
            Ok(i64::from(max))
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let (ds, ret) = shm.stat(id, cmd, &task.creds)?;
            task.mm.write(UserPtr::from(buf.get()), &ds)?;
            Ok(i64::from(ret))
        }
        IPC_SET => {
            let new: ShmidDs = task.mm.read(UserPtr::from(buf.get()))?;
            shm.set(id, &new, &task.creds)?;
            Ok(0)
        }
        IPC_RMID => {
            shm.remove(id, &task.creds)?;
            Ok(0)
        }
        SHM_LOCK | SHM_UNLOCK => {
            let memlock = task
                .group
                .limits()
                .get(RLIMIT_MEMLOCK)
                .map_or(RLIM_INFINITY, |l| l.cur);
            shm.lock_segment(id, cmd == SHM_LOCK, &task.creds, memlock)?;
            Ok(0)
        }
        _ => {
            log::debug!("shmctl: unknown command {cmd} (EINVAL)");
            Err(Errno::EINVAL)
        }
    }
}
