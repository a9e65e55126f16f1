//! System V IPC: shmget, shmat, shmdt, shmctl; semget, semop, semtimedop, semctl; msgget,
//! msgsnd, msgrcv, msgctl.

use std::sync::Arc;
use std::time::Instant;

use platform::Perms;

use crate::errno::{Errno, SysResult};
use crate::kernel::ipc::msg::{
    Message, MsqidDs, Receive, Search, MSGMAX, MSG_COPY, MSG_EXCEPT, MSG_INFO, MSG_STAT,
    MSG_STAT_ANY,
};
use crate::kernel::ipc::sem::{
    self, SemBuf, SemInfo, SemidDs, SemopError, UndoList, GETALL, GETNCNT, GETPID, GETVAL, GETZCNT,
    SEMOPM, SEM_INFO, SEM_STAT, SEM_STAT_ANY, SEM_UNDO, SETALL, SETVAL,
};
use crate::kernel::ipc::shm::{
    attachment_of, AttachAccess, Caller, ShmidDs, SHM_INFO, SHM_LOCK, SHM_STAT, SHM_STAT_ANY,
    SHM_UNLOCK,
};
use crate::kernel::ipc::{IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, WRITE_UGO};
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
                attachment.record(false, task.tgid());
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

pub fn semget(task: &mut Task, key: i32, nsems: i32, flags: i32) -> SysResult<i64> {
    let sem = Arc::clone(&task.kernel.ipc.sem);
    let caller = sem::Caller {
        creds: &task.creds,
        pid: task.tgid(),
    };
    Ok(i64::from(sem.get(key, nsems, flags, &caller)?))
}

pub fn semop(task: &mut Task, id: i32, sops: UserAddr, nsops: u32) -> SysResult<i64> {
    semtimedop(task, id, sops, nsops, UserAddr::NULL)
}

pub fn semtimedop(
    task: &mut Task,
    id: i32,
    sops: UserAddr,
    nsops: u32,
    timeout: UserAddr,
) -> SysResult<i64> {
    let timeout = if timeout.is_null() {
        None
    } else {
        Some(super::time::read_timespec(task, timeout)?)
    };
    if nsops < 1 || id < 0 {
        return Err(Errno::EINVAL);
    }
    let count = usize::try_from(nsops).map_err(|_| Errno::E2BIG)?;
    if count > SEMOPM {
        return Err(Errno::E2BIG);
    }
    let mut ops = vec![SemBuf::default(); count];
    task.mm
        .copy_in(sops, zerocopy::IntoBytes::as_mut_bytes(ops.as_mut_slice()))?;
    let sem = Arc::clone(&task.kernel.ipc.sem);
    let waiters = sem.prepare(id, &ops, &task.creds)?;
    let undo = if ops.iter().any(|o| o.flags & SEM_UNDO != 0) {
        Some(Arc::clone(
            task.sem_undo.get_or_insert_with(|| UndoList::new(&sem)),
        ))
    } else {
        None
    };
    let pid = task.tgid();
    let ticket = sem.new_ticket();
    let deadline = timeout.map(|t| Instant::now() + t);
    let result = {
        let _registration = waiters.queue.register(&task.handle.waker);
        task.block_until(deadline, || {
            match sem.try_ops(id, &waiters, &ops, ticket, undo.as_deref(), pid) {
                Ok(()) => Ok(Some(())),
                Err(SemopError::Block { .. }) => Ok(None),
                Err(SemopError::Fail(e)) => Err(e),
            }
        })
    };
    sem.stop_waiting(id, ticket);
    match result {
        Ok(()) => Ok(0),
        // semop is never restarted after a signal, handler or not.
        Err(Errno::ERESTARTSYS) => Err(Errno::EINTR),
        Err(Errno::ETIMEDOUT) => Err(Errno::EAGAIN),
        Err(e) => Err(e),
    }
}

pub fn semctl(task: &mut Task, id: i32, num: i32, cmd: i32, arg: u64) -> SysResult<i64> {
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    let sem = Arc::clone(&task.kernel.ipc.sem);
    let ptr = UserAddr::new(arg);
    match cmd {
        IPC_INFO | SEM_INFO => {
            let (info, max): (SemInfo, i32) = sem.info(cmd == SEM_INFO);
            task.mm.write(UserPtr::from(arg), &info)?;
            Ok(i64::from(max))
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let (ds, ret) = sem.stat(id, cmd, &task.creds)?;
            task.mm.write(UserPtr::from(arg), &ds)?;
            Ok(i64::from(ret))
        }
        GETVAL | GETPID | GETNCNT | GETZCNT => {
            Ok(i64::from(sem.get_one(id, num, cmd, &task.creds)?))
        }
        GETALL => {
            let values = sem.get_all(id, &task.creds)?;
            task.mm
                .copy_out(ptr, zerocopy::IntoBytes::as_bytes(values.as_slice()))?;
            Ok(0)
        }
        SETVAL => {
            // The argument is a union; `val` is its low 32 bits.
            let val =
                i32::from_ne_bytes(u32::try_from(arg & 0xffff_ffff).unwrap_or(0).to_ne_bytes());
            let caller = sem::Caller {
                creds: &task.creds,
                pid: task.tgid(),
            };
            sem.set_values(id, Some(num), &[val], &caller)?;
            Ok(0)
        }
        SETALL => {
            let n = sem.nsems(id, &task.creds, WRITE_UGO)?;
            let mut values = vec![0u16; n];
            task.mm.copy_in(
                ptr,
                zerocopy::IntoBytes::as_mut_bytes(values.as_mut_slice()),
            )?;
            let values: Vec<i32> = values.into_iter().map(i32::from).collect();
            let caller = sem::Caller {
                creds: &task.creds,
                pid: task.tgid(),
            };
            sem.set_values(id, None, &values, &caller)?;
            Ok(0)
        }
        IPC_SET => {
            let new: SemidDs = task.mm.read(UserPtr::from(arg))?;
            sem.set(id, &new, &task.creds)?;
            Ok(0)
        }
        IPC_RMID => {
            sem.remove(id, &task.creds)?;
            Ok(0)
        }
        _ => {
            log::debug!("semctl: unknown command {cmd} (EINVAL)");
            Err(Errno::EINVAL)
        }
    }
}

pub fn msgget(task: &mut Task, key: i32, flags: i32) -> SysResult<i64> {
    let msg = Arc::clone(&task.kernel.ipc.msg);
    Ok(i64::from(msg.get(key, flags, &task.creds)?))
}

/// The offset of `mtext` in `struct msgbuf`.
const MTEXT: u64 = 8;

pub fn msgsnd(task: &mut Task, id: i32, msgp: UserAddr, size: u64, flags: i32) -> SysResult<i64> {
    let mtype: i64 = task.mm.read(UserPtr::from(msgp.get()))?;
    if size > MSGMAX as u64 || id < 0 || mtype < 1 {
        return Err(Errno::EINVAL);
    }
    let mut text = vec![0u8; usize::try_from(size).map_err(|_| Errno::EINVAL)?];
    task.mm.copy_in(msgp.checked_add(MTEXT)?, &mut text)?;
    let msg = Arc::clone(&task.kernel.ipc.msg);
    let waiters = msg.waiters(id)?;
    let mut message = Some(Message { mtype, text });
    let pid = task.tgid();
    let creds = task.creds.clone();
    let mut attempt = || msg.try_send(id, &waiters, &mut message, &creds, pid);
    if flags & IPC_NOWAIT != 0 {
        return match attempt()? {
            Some(()) => Ok(0),
            None => Err(Errno::EAGAIN),
        };
    }
    let _registration = waiters.queue.register(&task.handle.waker);
    match task.block_until(None, attempt) {
        Ok(()) => Ok(0),
        // Restarted only when no handler ran.
        Err(Errno::ERESTARTSYS) => Err(Errno::ERESTARTNOHAND),
        Err(e) => Err(e),
    }
}

pub fn msgrcv(
    task: &mut Task,
    id: i32,
    msgp: UserAddr,
    size: u64,
    msgtyp: i64,
    flags: i32,
) -> SysResult<i64> {
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| i64::try_from(s).is_ok())
        .ok_or(Errno::EINVAL)?;
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MSG_COPY != 0 && (flags & MSG_EXCEPT != 0 || flags & IPC_NOWAIT == 0) {
        return Err(Errno::EINVAL);
    }
    let want = Receive {
        search: Search::new(msgtyp, flags),
        size,
        flags,
    };
    let msg = Arc::clone(&task.kernel.ipc.msg);
    let waiters = msg.waiters(id)?;
    let pid = task.tgid();
    let creds = task.creds.clone();
    let attempt = || msg.try_receive(id, &waiters, &want, &creds, pid);
    let message = if flags & IPC_NOWAIT != 0 {
        attempt()?.ok_or(Errno::ENOMSG)?
    } else {
        let _registration = waiters.queue.register(&task.handle.waker);
        match task.block_until(None, attempt) {
            Ok(m) => m,
            Err(Errno::ERESTARTSYS) => return Err(Errno::ERESTARTNOHAND),
            Err(e) => return Err(e),
        }
    };
    task.mm.write(UserPtr::from(msgp.get()), &message.mtype)?;
    let n = size.min(message.text.len());
    task.mm
        .copy_out(msgp.checked_add(MTEXT)?, &message.text[..n])?;
    Ok(n as i64)
}

pub fn msgctl(task: &mut Task, id: i32, cmd: i32, buf: UserAddr) -> SysResult<i64> {
    if id < 0 || cmd < 0 {
        return Err(Errno::EINVAL);
    }
    let msg = Arc::clone(&task.kernel.ipc.msg);
    match cmd {
        IPC_INFO | MSG_INFO => {
            let (info, max) = msg.info(cmd == MSG_INFO);
            task.mm.write(UserPtr::from(buf.get()), &info)?;
            Ok(i64::from(max))
        }
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            let (ds, ret) = msg.stat(id, cmd, &task.creds)?;
            task.mm.write(UserPtr::from(buf.get()), &ds)?;
            Ok(i64::from(ret))
        }
        IPC_SET => {
            let new: MsqidDs = task.mm.read(UserPtr::from(buf.get()))?;
            msg.set(id, &new, &task.creds)?;
            Ok(0)
        }
        IPC_RMID => {
            msg.remove(id, &task.creds)?;
            Ok(0)
        }
        _ => {
            log::debug!("msgctl: unknown command {cmd} (EINVAL)");
            Err(Errno::EINVAL)
        }
    }
}
