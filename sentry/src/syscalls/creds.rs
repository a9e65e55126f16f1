//! Credentials: the set*id and get*id families past the plain getters, supplementary
//! groups, and capget/capset.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::errno::{Errno, SysResult};
use crate::kernel::creds::{
    Credentials, CAP_FULL, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, NGROUPS_MAX,
};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};

/// `(uid_t)-1`: "leave unchanged", and never a valid ID.
const UNCHANGED: u32 = u32::MAX;

const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;

/// Installs `new` as the task's credentials, as Linux's `commit_creds`: a change of
/// effective or filesystem IDs clears the dumpable flag and the parent-death signal.
fn commit(task: &mut Task, new: Credentials) {
    let old = &task.creds;
    if old.euid != new.euid
        || old.egid != new.egid
        || old.fsuid != new.fsuid
        || old.fsgid != new.fsgid
    {
        task.group.control.dumpable.store(0, Ordering::Relaxed);
        task.handle
            .control
            .pdeath_signal
            .store(0, Ordering::Relaxed);
    }
    task.creds = new;
    if task.tid() == task.tgid() {
        task.publish_view();
    }
}

/// Which ID of a user/group triple a `set*` call changes.
#[derive(Clone, Copy)]
enum Kind {
    User,
    Group,
}

/// The (real, effective, saved, filesystem) IDs of `kind`, mutably.
fn ids(c: &mut Credentials, kind: Kind) -> [&mut u32; 4] {
    match kind {
        Kind::User => [&mut c.uid, &mut c.euid, &mut c.suid, &mut c.fsuid],
        Kind::Group => [&mut c.gid, &mut c.egid, &mut c.sgid, &mut c.fsgid],
    }
}

fn privileged(c: &Credentials, kind: Kind) -> bool {
    c.capable(match kind {
        Kind::User => CAP_SETUID,
        Kind::Group => CAP_SETGID,
    })
}

/// Applies `change` to a copy of the credentials and commits it, with the capability
/// fixups of a user ID change.
fn set_ids(
    task: &mut Task,
    kind: Kind,
    change: impl FnOnce(&mut [&mut u32; 4], bool) -> SysResult<()>,
) -> SysResult<i64> {
    let old = task.creds.clone();
    let mut new = old.clone();
    let privileged = privileged(&old, kind);
    change(&mut ids(&mut new, kind), privileged)?;
    if matches!(kind, Kind::User) {
        new.fix_setuid(&old);
    }
    commit(task, new);
    Ok(0)
}

fn set_id(task: &mut Task, kind: Kind, id: u32) -> SysResult<i64> {
    if id == UNCHANGED {
        return Err(Errno::EINVAL);
    }
    set_ids(task, kind, |[r, e, s, f], privileged| {
        if privileged {
            **r = id;
            **s = id;
        } else if id != **r && id != **s {
            return Err(Errno::EPERM);
        }
        **e = id;
        **f = id;
        Ok(())
    })
}

pub fn setuid(task: &mut Task, uid: u32) -> SysResult<i64> {
    set_id(task, Kind::User, uid)
}

pub fn setgid(task: &mut Task, gid: u32) -> SysResult<i64> {
    set_id(task, Kind::Group, gid)
}

fn set_re(task: &mut Task, kind: Kind, real: u32, eff: u32) -> SysResult<i64> {
    set_ids(task, kind, |[r, e, s, f], privileged| {
        let (old_r, old_e, old_s) = (**r, **e, **s);
        if real != UNCHANGED {
            if real != old_r && real != old_e && !privileged {
                return Err(Errno::EPERM);
            }
            **r = real;
        }
        if eff != UNCHANGED {
            if eff != old_r && eff != old_e && eff != old_s && !privileged {
                return Err(Errno::EPERM);
            }
            **e = eff;
        }
        if real != UNCHANGED || (eff != UNCHANGED && eff != old_r) {
            **s = **e;
        }
        **f = **e;
        Ok(())
    })
}

pub fn setreuid(task: &mut Task, ruid: u32, euid: u32) -> SysResult<i64> {
    set_re(task, Kind::User, ruid, euid)
}

pub fn setregid(task: &mut Task, rgid: u32, egid: u32) -> SysResult<i64> {
    set_re(task, Kind::Group, rgid, egid)
}

fn set_res(task: &mut Task, kind: Kind, real: u32, eff: u32, saved: u32) -> SysResult<i64> {
    set_ids(task, kind, |[r, e, s, f], privileged| {
        let old = [**r, **e, **s];
        let new_id = |id: u32| id != UNCHANGED && !old.contains(&id);
        if (new_id(real) || new_id(eff) || new_id(saved)) && !privileged {
            return Err(Errno::EPERM);
        }
        for (slot, id) in [(&mut **r, real), (&mut **e, eff), (&mut **s, saved)] {
            if id != UNCHANGED {
                *slot = id;
            }
        }
        **f = **e;
        Ok(())
    })
}

pub fn setresuid(task: &mut Task, ruid: u32, euid: u32, suid: u32) -> SysResult<i64> {
    set_res(task, Kind::User, ruid, euid, suid)
}

pub fn setresgid(task: &mut Task, rgid: u32, egid: u32, sgid: u32) -> SysResult<i64> {
    set_res(task, Kind::Group, rgid, egid, sgid)
}

fn get_res(task: &Task, vals: [u32; 3], ptrs: [UserAddr; 3]) -> SysResult<i64> {
    for (v, p) in vals.iter().zip(ptrs) {
        task.mm.write(UserPtr::<u32>::new(p), v)?;
    }
    Ok(0)
}

pub fn getresuid(task: &mut Task, r: UserAddr, e: UserAddr, s: UserAddr) -> SysResult<i64> {
    let c = &task.creds;
    get_res(task, [c.uid, c.euid, c.suid], [r, e, s])
}

pub fn getresgid(task: &mut Task, r: UserAddr, e: UserAddr, s: UserAddr) -> SysResult<i64> {
    let c = &task.creds;
    get_res(task, [c.gid, c.egid, c.sgid], [r, e, s])
}

/// `setfsuid`/`setfsgid`: always the old ID; the change happens when permitted.
fn set_fs(task: &mut Task, kind: Kind, id: u32) -> SysResult<i64> {
    let old = task.creds.clone();
    let mut new = old.clone();
    let privileged = privileged(&old, kind);
    let [r, e, s, f] = ids(&mut new, kind);
    let previous = *f;
    let allowed = id == *r || id == *e || id == *s || id == *f || privileged;
    if id != UNCHANGED && allowed && id != previous {
        *f = id;
        if matches!(kind, Kind::User) {
            new.fix_setfsuid(&old);
        }
        commit(task, new);
    }
    Ok(i64::from(previous))
}

pub fn setfsuid(task: &mut Task, uid: u32) -> SysResult<i64> {
    set_fs(task, Kind::User, uid)
}

pub fn setfsgid(task: &mut Task, gid: u32) -> SysResult<i64> {
    set_fs(task, Kind::Group, gid)
}

pub fn getgroups(task: &mut Task, size: i32, list: UserAddr) -> SysResult<i64> {
    let size = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
    let groups = Arc::clone(&task.creds.groups);
    if size == 0 {
        return Ok(groups.len() as i64);
    }
    if size < groups.len() {
        return Err(Errno::EINVAL);
    }
    let bytes: Vec<u8> = groups.iter().flat_map(|g| g.to_ne_bytes()).collect();
    task.mm.copy_out(list, &bytes)?;
    Ok(groups.len() as i64)
}

pub fn setgroups(task: &mut Task, size: i32, list: UserAddr) -> SysResult<i64> {
    if !task.creds.capable(CAP_SETGID) {
        return Err(Errno::EPERM);
    }
    let size = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
    if size > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; size * 4];
    task.mm.copy_in(list, &mut raw)?;
    let mut groups: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if groups.contains(&UNCHANGED) {
        return Err(Errno::EINVAL);
    }
    groups.sort_unstable();
    let mut new = task.creds.clone();
    new.groups = Arc::from(groups);
    commit(task, new);
    Ok(0)
}

/// Reads a capability header's version: how many data structs follow it, or `EINVAL`
/// after writing the preferred version back (as Linux's `cap_validate_magic`).
fn cap_version(task: &Task, header: UserAddr) -> SysResult<usize> {
    let version: u32 = task.mm.read(UserPtr::new(header))?;
    match version {
        CAP_V1 => Ok(1),
        CAP_V2 | CAP_V3 => Ok(2),
        _ => {
            task.mm.write(UserPtr::<u32>::new(header), &CAP_V3)?;
            Err(Errno::EINVAL)
        }
    }
}

fn header_pid(task: &Task, header: UserAddr) -> SysResult<i32> {
    task.mm.read(UserPtr::new(header.checked_add(4)?))
}

pub fn capget(task: &mut Task, header: UserAddr, data: UserAddr) -> SysResult<i64> {
    let count = match cap_version(task, header) {
        Ok(n) => n,
        // A probe for the version: no data to fill.
        Err(Errno::EINVAL) if data.is_null() => return Ok(0),
        Err(e) => return Err(e),
    };
    if data.is_null() {
        return Ok(0);
    }
    let pid = header_pid(task, header)?;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let caps = if pid == 0 || pid == task.tid() {
        task.creds.caps
    } else {
        let (_, group) = task.kernel.thread(pid).ok_or(Errno::ESRCH)?;
        group.view().ok_or(Errno::ESRCH)?.creds.caps
    };
    let mut out = Vec::with_capacity(24);
    for i in 0..count {
        for set in [caps.effective, caps.permitted, caps.inheritable] {
            let word = u32::try_from((set >> (32 * i)) & 0xffff_ffff).unwrap_or(0);
            out.extend_from_slice(&word.to_ne_bytes());
        }
    }
    task.mm.copy_out(data, &out)?;
    Ok(0)
}

pub fn capset(task: &mut Task, header: UserAddr, data: UserAddr) -> SysResult<i64> {
    let count = cap_version(task, header)?;
    let pid = header_pid(task, header)?;
    if pid != 0 && pid != task.tid() {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; count * 12];
    task.mm.copy_in(data, &mut raw)?;
    let word = |i: usize, field: usize| {
        let at = i * 12 + field * 4;
        u64::from(u32::from_ne_bytes([
            raw[at],
            raw[at + 1],
            raw[at + 2],
            raw[at + 3],
        ])) << (32 * i)
    };
    let set = |field: usize| (0..count).map(|i| word(i, field)).fold(0, |a, b| a | b) & CAP_FULL;
    let (effective, permitted, inheritable) = (set(0), set(1), set(2));
    let old = task.creds.caps;
    let subset = |a: u64, b: u64| a & !b == 0;
    if !task.creds.capable(CAP_SETPCAP) && !subset(inheritable, old.inheritable | old.permitted) {
        return Err(Errno::EPERM);
    }
    if !subset(inheritable, old.inheritable | old.bounding)
        || !subset(permitted, old.permitted)
        || !subset(effective, permitted)
    {
        return Err(Errno::EPERM);
    }
    let mut new = task.creds.clone();
    new.caps.effective = effective;
    new.caps.permitted = permitted;
    new.caps.inheritable = inheritable;
    new.caps.ambient &= permitted & inheritable;
    commit(task, new);
    Ok(0)
}
