//! System information and resources: uname, getrlimit, setrlimit, prlimit64, getrandom.

use std::sync::atomic::Ordering;

use crate::errno::{Errno, SysResult};
use crate::kernel::{Rlimit, Task};
use crate::mm::{UserAddr, UserPtr};

/// What `uname` reports: a Linux 6.x kernel, tagged as Bulwark's.
pub const SYSNAME: &str = "Linux";
pub const RELEASE: &str = "6.8.0-bulwark";
pub const VERSION: &str = "#1 SMP PREEMPT_DYNAMIC Bulwark";
pub const MACHINE: &str = "x86_64";

/// `struct utsname`: six fields of 65 bytes.
const UTS_FIELD: usize = 65;

pub fn uname(task: &mut Task, buf: UserAddr) -> SysResult<i64> {
    let mut uts = [0u8; UTS_FIELD * 6];
    let names = task.handle.uts();
    let (hostname, domainname) = (names.hostname(), names.domainname());
    let fields: [&[u8]; 6] = [
        SYSNAME.as_bytes(),
        &hostname,
        RELEASE.as_bytes(),
        VERSION.as_bytes(),
        MACHINE.as_bytes(),
        &domainname,
    ];
    for (i, bytes) in fields.iter().enumerate() {
        let n = bytes.len().min(UTS_FIELD - 1);
        uts[i * UTS_FIELD..i * UTS_FIELD + n].copy_from_slice(&bytes[..n]);
    }
    task.mm.copy_out(buf, &uts)?;
    Ok(0)
}

/// The longest host or domain name (`__NEW_UTS_LEN`).
const UTS_NAME_MAX: i32 = 64;

/// Reads the new name of `sethostname`/`setdomainname`, checking as Linux does: the
/// length, then the privilege (`CAP_SYS_ADMIN`), then the buffer.
fn new_uts_name(task: &Task, name: UserAddr, len: i32) -> SysResult<Vec<u8>> {
    if !(0..=UTS_NAME_MAX).contains(&len) {
        return Err(Errno::EINVAL);
    }
    if !task.creds.capable(crate::kernel::creds::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    task.mm.copy_in(name, &mut buf)?;
    Ok(buf)
}

pub fn sethostname(task: &mut Task, name: UserAddr, len: i32) -> SysResult<i64> {
    let name = new_uts_name(task, name, len)?;
    task.handle.uts().set_hostname(&name);
    Ok(0)
}

pub fn setdomainname(task: &mut Task, name: UserAddr, len: i32) -> SysResult<i64> {
    let name = new_uts_name(task, name, len)?;
    task.handle.uts().set_domainname(&name);
    Ok(0)
}

const RLIMIT_CPU: u32 = 0;

pub fn getrlimit(task: &mut Task, resource: u32, old: UserAddr) -> SysResult<i64> {
    let limit = task.group.limits().get(resource)?;
    task.mm.write(UserPtr::new(old), &limit)?;
    Ok(0)
}

pub fn setrlimit(task: &mut Task, resource: u32, new: UserAddr) -> SysResult<i64> {
    let limit: Rlimit = task.mm.read(UserPtr::new(new))?;
    let privileged = task.creds.capable(crate::kernel::creds::CAP_SYS_RESOURCE);
    task.group.limits().set(resource, limit, privileged)?;
    if resource == RLIMIT_CPU {
        crate::kernel::timer::apply_cpu_limit(&task.kernel, &task.group, true);
    }
    Ok(0)
}

pub fn prlimit64(
    task: &mut Task,
    pid: i32,
    resource: u32,
    new: UserAddr,
    old: UserAddr,
) -> SysResult<i64> {
    let new_limit = if new.is_null() {
        None
    } else {
        Some(task.mm.read(UserPtr::<Rlimit>::new(new))?)
    };
    if resource as usize >= crate::kernel::RLIMIT_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let privileged = task.creds.capable(crate::kernel::creds::CAP_SYS_RESOURCE);
    let group = if pid == 0 || pid == task.group.tgid {
        std::sync::Arc::clone(&task.group)
    } else {
        let group = task.kernel.group(pid).ok_or(Errno::ESRCH)?;
        // As Linux's check_prlimit_permission: the same user in all three IDs, or
        // CAP_SYS_RESOURCE.
        let view = group.view().ok_or(Errno::ESRCH)?;
        let (me, them) = (&task.creds, &view.creds);
        let same = [them.uid, them.euid, them.suid]
            .iter()
            .all(|&u| u == me.uid)
            && [them.gid, them.egid, them.sgid]
                .iter()
                .all(|&g| g == me.gid);
        if !same && !privileged {
            return Err(Errno::EPERM);
        }
        group
    };
    let mut limits = group.limits();
    let previous = limits.get(resource)?;
    if let Some(limit) = new_limit {
        limits.set(resource, limit, privileged)?;
    }
    drop(limits);
    if new_limit.is_some() && resource == RLIMIT_CPU {
        crate::kernel::timer::apply_cpu_limit(&task.kernel, &group, true);
    }
    if !old.is_null() {
        task.mm.write(UserPtr::new(old), &previous)?;
    }
    Ok(0)
}

const GRND_NONBLOCK: u32 = 1;
const GRND_RANDOM: u32 = 2;
const GRND_INSECURE: u32 = 4;
/// The most one `getrandom` call returns (`getrandom(2)`: 33554431 bytes).
const GETRANDOM_MAX: usize = 33_554_431;

pub fn getrandom(task: &mut Task, buf: UserAddr, len: usize, flags: u32) -> SysResult<i64> {
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    let len = len.min(GETRANDOM_MAX);
    let mut done = 0usize;
    while done < len {
        let mut chunk = vec![0u8; (len - done).min(64 * 1024)];
        crate::random::fill(&mut chunk)?;
        if let Err(e) = task.mm.copy_out(buf.checked_add(done as u64)?, &chunk) {
            return if done > 0 { Ok(done as i64) } else { Err(e) };
        }
        done += chunk.len();
    }
    Ok(done as i64)
}

/// `struct sysinfo` (x86-64: 112 bytes).
#[repr(C)]
#[derive(Default, zerocopy::IntoBytes, zerocopy::Immutable)]
struct SysInfo {
    uptime: i64,
    loads: [u64; 3],
    totalram: u64,
    freeram: u64,
    sharedram: u64,
    bufferram: u64,
    totalswap: u64,
    freeswap: u64,
    procs: u16,
    pad: [u16; 3],
    totalhigh: u64,
    freehigh: u64,
    mem_unit: u32,
    reserved: [u8; 4],
}

const _: () = assert!(std::mem::size_of::<SysInfo>() == 112);

pub fn sysinfo(task: &mut Task, info: UserAddr) -> SysResult<i64> {
    let memory = task.kernel.memory();
    // The container's memory limit when it has one (`MemoryFile::total`).
    let total = memory.total();
    let procs = task.kernel.tables().threads.len();
    let s = SysInfo {
        uptime: i64::try_from(task.kernel.uptime().as_secs()).unwrap_or(0),
        totalram: total,
        freeram: total.saturating_sub(memory.allocated()),
        procs: u16::try_from(procs).unwrap_or(u16::MAX),
        mem_unit: 1,
        ..SysInfo::default()
    };
    task.mm.copy_out(info, zerocopy::IntoBytes::as_bytes(&s))?;
    Ok(0)
}

/// `sizeof(cpumask_t)` as Linux reports it from sched_getaffinity: the CPU count rounded
/// up to whole longs.
const CPUMASK_BYTES: usize = 8;

fn affinity_target(task: &Task, pid: i32) -> SysResult<std::sync::Arc<crate::kernel::TaskHandle>> {
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    if pid == 0 || pid == task.tid() {
        return Ok(std::sync::Arc::clone(&task.handle));
    }
    task.kernel.thread(pid).map(|(h, _)| h).ok_or(Errno::ESRCH)
}

pub fn sched_getaffinity(task: &mut Task, pid: i32, len: usize, mask: UserAddr) -> SysResult<i64> {
    if len < CPUMASK_BYTES || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let bits = affinity_target(task, pid)?
        .affinity
        .load(std::sync::atomic::Ordering::Relaxed);
    task.mm.copy_out(mask, &bits.to_le_bytes())?;
    Ok(CPUMASK_BYTES as i64)
}

pub fn sched_setaffinity(task: &mut Task, pid: i32, len: usize, mask: UserAddr) -> SysResult<i64> {
    let handle = affinity_target(task, pid)?;
    let mut bytes = vec![0u8; len.min(CPUMASK_BYTES)];
    task.mm.copy_in(mask, &mut bytes)?;
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(&bytes);
    let wanted = u64::from_le_bytes(word) & crate::kernel::process::all_cpus();
    if wanted == 0 {
        return Err(Errno::EINVAL);
    }
    handle
        .affinity
        .store(wanted, std::sync::atomic::Ordering::Relaxed);
    Ok(0)
}

/// `getcpu`: the sandbox reports CPU 0, node 0, as its vDSO does.
pub fn getcpu(task: &mut Task, cpu: UserAddr, node: UserAddr) -> SysResult<i64> {
    if !cpu.is_null() {
        task.mm.write(UserPtr::<u32>::new(cpu), &0)?;
    }
    if !node.is_null() {
        task.mm.write(UserPtr::<u32>::new(node), &0)?;
    }
    Ok(0)
}

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;
/// `RLIMIT_NICE`'s number.
const RLIMIT_NICE: u32 = 13;

/// The threads `which`/`who` names for getpriority/setpriority, each with its process's
/// real user ID.
fn priority_targets(
    task: &Task,
    which: i32,
    who: i32,
) -> SysResult<Vec<(std::sync::Arc<crate::kernel::TaskHandle>, u32)>> {
    let uid_of = |g: &crate::kernel::ThreadGroup| g.view().map_or(u32::MAX, |v| v.creds.uid);
    let targets = match which {
        PRIO_PROCESS => {
            if who == 0 {
                vec![(std::sync::Arc::clone(&task.handle), task.creds.uid)]
            } else {
                let (h, g) = task.kernel.thread(who).ok_or(Errno::ESRCH)?;
                let uid = if std::sync::Arc::ptr_eq(&g, &task.group) {
                    task.creds.uid
                } else {
                    uid_of(&g)
                };
                vec![(h, uid)]
            }
        }
        PRIO_PGRP | PRIO_USER => {
            let pgid = if who == 0 {
                task.group.state().pgid
            } else {
                who
            };
            let uid = if who == 0 {
                task.creds.uid
            } else {
                u32::try_from(who).unwrap_or(u32::MAX)
            };
            let mut out = Vec::new();
            for g in task.kernel.groups() {
                let (threads, zombie, gpgid) = {
                    let s = g.state();
                    (s.threads.clone(), s.zombie.is_some(), s.pgid)
                };
                let guid = uid_of(&g);
                let chosen = if which == PRIO_PGRP {
                    gpgid == pgid
                } else {
                    guid == uid
                };
                if chosen && !zombie {
                    out.extend(threads.into_iter().map(|t| (t, guid)));
                }
            }
            out
        }
        _ => return Err(Errno::EINVAL),
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    Ok(targets)
}

/// The raw syscall's answer: 20 - nice of the highest-priority target (1..=40).
pub fn getpriority(task: &mut Task, which: i32, who: i32) -> SysResult<i64> {
    let best = priority_targets(task, which, who)?
        .iter()
        .map(|(t, _)| 20 - t.control.nice.load(Ordering::Relaxed))
        .max()
        .unwrap_or(20);
    Ok(i64::from(best))
}

pub fn setpriority(task: &mut Task, which: i32, who: i32, nice: i32) -> SysResult<i64> {
    let nice = nice.clamp(-20, 19);
    let targets = priority_targets(task, which, who)?;
    let nice_cap = task.creds.capable(crate::kernel::creds::CAP_SYS_NICE);
    let nice_limit = task.group.limits().get(RLIMIT_NICE)?.cur;
    let mut result = Ok(0);
    for (t, uid) in targets {
        // As Linux's set_one_prio: another user's thread needs CAP_SYS_NICE; lowering the
        // nice value needs RLIMIT_NICE room or CAP_SYS_NICE.
        if uid != task.creds.euid && uid != task.creds.uid && !nice_cap {
            result = Err(Errno::EPERM);
            continue;
        }
        let current = t.control.nice.load(Ordering::Relaxed);
        let room = u64::try_from(20 - nice).unwrap_or(0) <= nice_limit;
        if nice < current && !room && !nice_cap {
            result = Err(Errno::EACCES);
            continue;
        }
        t.control.nice.store(nice, Ordering::Relaxed);
    }
    result
}
