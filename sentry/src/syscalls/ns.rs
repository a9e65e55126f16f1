//! `unshare`, `setns` and `membarrier`.
//!
//! The sandbox is one set of namespaces but for UTS namespaces: every process in it
//! shares the mount, IPC, PID, network, user, cgroup and time namespaces the Sentry gives
//! it (the isolation is the sandbox's, not the namespaces'). So `unshare` of one of those
//! is refused as Linux refuses it without the namespace built in (`EINVAL`, after the
//! capability check), and `setns` through a pidfd can only join the namespaces the caller
//! is already in, and the target's UTS namespace. A UTS namespace (the host and domain
//! names) is cheap and programs use one to set a name of their own, so it is made. What
//! `unshare` does carry out is un-sharing a thread's descriptor table and filesystem
//! context from its `CLONE_FILES`/`CLONE_FS` relatives.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::errno::{Errno, SysResult};
use crate::kernel::clone::{
    CLONE_FILES, CLONE_FS, CLONE_NAMESPACES, CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWUTS,
    CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_VM,
};
use crate::kernel::creds::CAP_SYS_ADMIN;
use crate::kernel::Task;
use crate::vfs::nsfs::{Namespace, NsKind};

/// The flags `unshare` accepts (Linux's `check_unshare_flags`).
const UNSHARE_FLAGS: u64 = CLONE_THREAD
    | CLONE_FS
    | CLONE_SIGHAND
    | CLONE_VM
    | CLONE_FILES
    | CLONE_SYSVSEM
    | CLONE_NAMESPACES;

pub fn unshare(task: &mut Task, flags: u64) -> SysResult<i64> {
    if flags & !UNSHARE_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    // A new user namespace implies a thread of its own and its own filesystem context;
    // a new mount namespace, its own filesystem context.
    let mut flags = flags;
    if flags & CLONE_NEWUSER != 0 {
        flags |= CLONE_THREAD | CLONE_FS;
    }
    if flags & CLONE_NEWNS != 0 {
        flags |= CLONE_FS;
    }
    // Un-sharing the thread group, the signal actions or the address space is possible
    // only when there is nothing to un-share them from.
    if flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != 0
        && task.group.state().threads.len() > 1
    {
        return Err(Errno::EINVAL);
    }
    let namespaces = flags & CLONE_NAMESPACES;
    if namespaces != 0 {
        if namespaces & !CLONE_NEWUSER != 0 && !task.creds.capable(CAP_SYS_ADMIN) {
            return Err(Errno::EPERM);
        }
        if namespaces != CLONE_NEWUTS {
            log::warn!(
                "unshare: namespaces {:#x} not implemented: the sandbox has one set (EINVAL)",
                namespaces & !CLONE_NEWUTS
            );
            return Err(Errno::EINVAL);
        }
    }
    let leader = task.tid() == task.tgid();
    if flags & CLONE_FILES != 0 {
        task.fds = Arc::new(task.fds.fork());
    }
    if flags & CLONE_FS != 0 {
        task.fs = task.fs.fork();
    }
    if leader && flags & (CLONE_FILES | CLONE_FS) != 0 {
        task.publish_view();
    }
    if flags & CLONE_NEWUTS != 0 {
        task.handle.set_uts(task.handle.uts().copy());
    }
    // CLONE_SYSVSEM un-shares the System V semaphore undo list: the caller lets go of
    // its share (applying the adjustments if it was the last) and starts a new one on
    // its next SEM_UNDO.
    if flags & CLONE_SYSVSEM != 0 {
        task.sem_undo = None;
    }
    Ok(0)
}

pub fn setns(task: &mut Task, fd: i32, nstype: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    if let Some(ns) = file.as_namespace() {
        return setns_file(task, &ns.namespace, nstype);
    }
    let Some(pidfd) = file.as_pidfd() else {
        return Err(Errno::EINVAL);
    };
    // The int's bits: a negative value is no combination of flags (EINVAL below).
    let nstype = u64::from(u32::from_ne_bytes(nstype.to_ne_bytes()));
    if nstype == 0 || nstype & !CLONE_NAMESPACES != 0 {
        return Err(Errno::EINVAL);
    }
    if pidfd.group.state().zombie.is_some() {
        return Err(Errno::ESRCH);
    }
    if !task.creds.capable(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if nstype & CLONE_NEWUSER != 0 {
        // Joining one's own user namespace is refused, as on Linux.
        return Err(Errno::EINVAL);
    }
    // The target's namespaces are the caller's own but for its UTS namespace, which the
    // caller joins (its main thread's, as Linux takes the pidfd's task).
    if nstype & CLONE_NEWUTS != 0 {
        let leader = {
            let state = pidfd.group.state();
            let threads = &state.threads;
            threads
                .iter()
                .find(|t| t.tid() == pidfd.group.tgid)
                .or(threads.first())
                .cloned()
        };
        if let Some(leader) = leader {
            task.handle.set_uts(leader.uts());
        }
    }
    Ok(0)
}

/// `setns` through a namespace file (`/proc/PID/ns/*`): `nstype` is 0 or the file's
/// type. Joining the sandbox's one namespace of a type changes nothing; a UTS namespace
/// is joined.
fn setns_file(task: &mut Task, namespace: &Namespace, nstype: i32) -> SysResult<i64> {
    let kind = namespace.kind();
    if nstype != 0 && u64::from(nstype.unsigned_abs()) != kind.clone_flag() || nstype < 0 {
        return Err(Errno::EINVAL);
    }
    // Joining one's own user namespace is refused, as on Linux, before any privilege
    // check.
    if kind == NsKind::User {
        return Err(Errno::EINVAL);
    }
    if !task.creds.capable(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    match namespace {
        Namespace::Sandbox(_) => Ok(0),
        Namespace::Uts(uts) => {
            task.handle.set_uts(Arc::clone(uts));
            Ok(0)
        }
    }
}

const MEMBARRIER_CMD_QUERY: i32 = 0;
const MEMBARRIER_CMD_GLOBAL: i32 = 1;
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: i32 = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: i32 = 1 << 2;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: i32 = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: i32 = 1 << 4;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 1 << 5;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: i32 = 1 << 6;
const MEMBARRIER_CMD_GET_REGISTRATIONS: i32 = 1 << 9;

/// The commands served. The `RSEQ` ones need `rseq`, which the Sentry does not implement.
/// `SYNC_CORE` holds too: leaving application code for the Sentry (a VM exit, a signal
/// in a stub) serialises the core.
const MEMBARRIER_SUPPORTED: i32 = MEMBARRIER_CMD_GLOBAL
    | MEMBARRIER_CMD_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
    | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE
    | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE
    | MEMBARRIER_CMD_GET_REGISTRATIONS;

/// How long a barrier waits for one thread to leave application code (a thread that
/// does not, on a platform that failed to interrupt it, is not waited for forever).
const BARRIER_WAIT: Duration = Duration::from_secs(1);

pub fn membarrier(task: &mut Task, cmd: i32, flags: u32, _cpu_id: i32) -> SysResult<i64> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let registered = &task.mm.membarrier_registered;
    match cmd {
        MEMBARRIER_CMD_QUERY => Ok(i64::from(MEMBARRIER_SUPPORTED)),
        MEMBARRIER_CMD_GET_REGISTRATIONS => Ok(i64::from(registered.load(Ordering::SeqCst))),
        MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED
        | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            registered.fetch_or(cmd.unsigned_abs(), Ordering::SeqCst);
            Ok(0)
        }
        MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_GLOBAL_EXPEDITED => {
            std::sync::atomic::fence(Ordering::SeqCst);
            for group in task.kernel.groups() {
                barrier_group(task, &group);
            }
            Ok(0)
        }
        MEMBARRIER_CMD_PRIVATE_EXPEDITED | MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE => {
            // The matching registration (the command's bit shifted to its REGISTER one).
            if registered.load(Ordering::SeqCst) & (cmd.unsigned_abs() << 1) == 0 {
                return Err(Errno::EPERM);
            }
            std::sync::atomic::fence(Ordering::SeqCst);
            let group = Arc::clone(&task.group);
            barrier_group(task, &group);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Makes every other thread of `group` that runs application code pass a full barrier.
fn barrier_group(task: &Task, group: &Arc<crate::kernel::ThreadGroup>) {
    let threads = group.state().threads.clone();
    for t in threads.iter().filter(|t| !Arc::ptr_eq(t, &task.handle)) {
        t.barrier(BARRIER_WAIT);
    }
}
