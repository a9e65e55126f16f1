//! System information and resources: uname, prlimit64, getrandom.

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
    let hostname = task.kernel.hostname();
    let fields: [&[u8]; 6] = [
        SYSNAME.as_bytes(),
        &hostname,
        RELEASE.as_bytes(),
        VERSION.as_bytes(),
        MACHINE.as_bytes(),
        b"(none)",
    ];
    for (i, bytes) in fields.iter().enumerate() {
        let n = bytes.len().min(UTS_FIELD - 1);
        uts[i * UTS_FIELD..i * UTS_FIELD + n].copy_from_slice(&bytes[..n]);
    }
    task.mm.copy_out(buf, &uts)?;
    Ok(0)
}

pub fn prlimit64(
    task: &mut Task,
    pid: i32,
    resource: u32,
    new: UserAddr,
    old: UserAddr,
) -> SysResult<i64> {
    if pid != 0 && pid != task.group.tgid {
        // The sandbox has one process so far.
        return Err(Errno::ESRCH);
    }
    let new_limit = if new.is_null() {
        None
    } else {
        Some(task.mm.read(UserPtr::<Rlimit>::new(new))?)
    };
    let privileged = task.creds.capable(crate::kernel::creds::CAP_SYS_RESOURCE);
    let mut limits = task.group.limits();
    let previous = limits.get(resource)?;
    if let Some(limit) = new_limit {
        limits.set(resource, limit, privileged)?;
    }
    drop(limits);
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
        getrandom::fill(&mut chunk).map_err(|_| Errno::EIO)?;
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
    let total = memory.size();
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
