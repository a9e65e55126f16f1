//! Memory syscalls: mmap, mprotect, munmap, brk.

use std::sync::atomic::Ordering;

use platform::Perms;

use crate::errno::{Errno, SysResult};
use crate::kernel::{Task, RLIM_INFINITY};
use crate::mm::{MapFlags, UserAddr, PAGE_SIZE};

const PROT_READ: u64 = 0x1;
const PROT_WRITE: u64 = 0x2;
const PROT_EXEC: u64 = 0x4;
const PROT_SEM: u64 = 0x8;
const PROT_GROWSDOWN: u64 = 0x0100_0000;
const PROT_GROWSUP: u64 = 0x0200_0000;

const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED_VALIDATE: u64 = 0x03;
const MAP_TYPE: u64 = 0x0f;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;
const MAP_DENYWRITE: u64 = 0x800;
const MAP_EXECUTABLE: u64 = 0x1000;
const MAP_LOCKED: u64 = 0x2000;
const MAP_NORESERVE: u64 = 0x4000;
const MAP_POPULATE: u64 = 0x8000;
const MAP_NONBLOCK: u64 = 0x1_0000;
const MAP_STACK: u64 = 0x2_0000;
const MAP_HUGETLB: u64 = 0x4_0000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// The flags `MAP_SHARED_VALIDATE` accepts (Linux's `LEGACY_MAP_MASK` plus `MAP_SYNC`,
/// which only DAX files support).
const LEGACY_MAP_MASK: u64 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_FIXED_NOREPLACE
    | (0x3f << 26); // the huge page size bits

fn perms_from_prot(prot: u64) -> SysResult<Perms> {
    if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | PROT_GROWSDOWN | PROT_GROWSUP) != 0
    {
        return Err(Errno::EINVAL);
    }
    let mut perms = Perms::empty();
    // On x86, a writable or executable page is also readable.
    if prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
        perms |= Perms::READ;
    }
    if prot & PROT_WRITE != 0 {
        perms |= Perms::WRITE;
    }
    if prot & PROT_EXEC != 0 {
        perms |= Perms::EXEC;
    }
    Ok(perms)
}

pub fn mmap(
    task: &mut Task,
    addr: UserAddr,
    len: u64,
    prot: u64,
    flags: u64,
    fd: i32,
    offset: u64,
) -> SysResult<i64> {
    let shared = match flags & MAP_TYPE {
        MAP_SHARED => true,
        MAP_PRIVATE => false,
        MAP_SHARED_VALIDATE => {
            if flags & !LEGACY_MAP_MASK != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            // An anonymous mapping takes only MAP_SHARED or MAP_PRIVATE, as on Linux.
            if flags & MAP_ANONYMOUS != 0 {
                return Err(Errno::EINVAL);
            }
            true
        }
        _ => return Err(Errno::EINVAL),
    };
    if len == 0 || !offset.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if prot & (PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
        return Err(Errno::EINVAL);
    }
    let perms = perms_from_prot(prot)?;
    if flags & MAP_HUGETLB != 0 {
        // No huge pages are reserved in the sandbox, as on a host with none configured.
        return Err(Errno::ENOMEM);
    }
    let mut map_flags = MapFlags {
        shared,
        fixed: flags & MAP_FIXED != 0,
        fixed_noreplace: flags & MAP_FIXED_NOREPLACE != 0 && flags & MAP_FIXED == 0,
        populate: flags & MAP_POPULATE != 0,
        growsdown: flags & MAP_GROWSDOWN != 0,
        noreserve: flags & MAP_NORESERVE != 0,
        max_perms: None,
    };
    let replaced = (map_flags.fixed).then_some(addr);
    within_as_limit(task, len, replaced)?;
    if flags & MAP_ANONYMOUS == 0 {
        let (object, writable) =
            super::mmap_file::object(task, fd, shared, prot & PROT_WRITE != 0, len, offset)?;
        if shared && !writable {
            // mprotect may not make it writable later either.
            map_flags.max_perms = Some(Perms::all() - Perms::WRITE);
        }
        let Some(object) = object else {
            // /dev/zero: anonymous memory.
            let at = task.mm.mmap(addr, len, perms, map_flags, None)?;
            return Ok(at.get() as i64);
        };
        let at = task
            .mm
            .mmap(addr, len, perms, map_flags, Some((object, offset)))?;
        return Ok(at.get() as i64);
    }
    let at = task.mm.mmap(addr, len, perms, map_flags, None)?;
    Ok(at.get() as i64)
}

pub fn mprotect(task: &mut Task, addr: UserAddr, len: u64, prot: u64) -> SysResult<i64> {
    if prot & PROT_GROWSDOWN != 0 && prot & PROT_GROWSUP != 0 {
        return Err(Errno::EINVAL);
    }
    let perms = perms_from_prot(prot & !(PROT_GROWSDOWN | PROT_GROWSUP))?;
    task.mm.mprotect(addr, len, perms)?;
    Ok(0)
}

// Memory protection keys. The Sentry offers none but the default key 0, as Linux on a
// CPU without OSPKE (`arch_max_pkey() == 1`): `pkey_alloc` finds no free key (ENOSPC),
// `pkey_mprotect` takes -1 or 0 and is then `mprotect`, and `pkey_free(0)` gives the
// default key up, after which 0 is refused too. Programs that use keys (V8, OpenSSL's
// secure heap) check for ENOSPC and go on without them.

/// `PKEY_DISABLE_ACCESS | PKEY_DISABLE_WRITE`.
const PKEY_ACCESS_MASK: u64 = 0x3;

fn pkey_allocated(task: &Task, pkey: i32) -> bool {
    pkey == 0 && !task.mm.default_pkey_freed.load(Ordering::Relaxed)
}

pub fn pkey_mprotect(
    task: &mut Task,
    addr: UserAddr,
    len: u64,
    prot: u64,
    pkey: i32,
) -> SysResult<i64> {
    if pkey == -1 || pkey_allocated(task, pkey) {
        return mprotect(task, addr, len, prot);
    }
    // Linux checks the key after the range and the protection (Linux's
    // `do_mprotect_pkey`): an empty range succeeds whatever the key.
    if prot & PROT_GROWSDOWN != 0 && prot & PROT_GROWSUP != 0 {
        return Err(Errno::EINVAL);
    }
    perms_from_prot(prot & !(PROT_GROWSDOWN | PROT_GROWSUP))?;
    if !addr.get().is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let end = len
        .checked_next_multiple_of(PAGE_SIZE)
        .and_then(|len| addr.get().checked_add(len));
    if end.is_none() {
        return Err(Errno::ENOMEM);
    }
    Err(Errno::EINVAL)
}

pub fn pkey_alloc(_task: &mut Task, flags: u64, init: u64) -> SysResult<i64> {
    if flags != 0 || init & !PKEY_ACCESS_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    Err(Errno::ENOSPC)
}

pub fn pkey_free(task: &mut Task, pkey: i32) -> SysResult<i64> {
    if !pkey_allocated(task, pkey) {
        return Err(Errno::EINVAL);
    }
    task.mm.default_pkey_freed.store(true, Ordering::Relaxed);
    Ok(0)
}

pub fn munmap(task: &mut Task, addr: UserAddr, len: u64) -> SysResult<i64> {
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    task.mm.munmap(addr, len)?;
    Ok(0)
}

pub fn brk(task: &mut Task, addr: UserAddr) -> SysResult<i64> {
    Ok(task.mm.brk(addr).get() as i64)
}

const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;

pub fn mremap(
    task: &mut Task,
    old: UserAddr,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: UserAddr,
) -> SysResult<i64> {
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
        return Err(Errno::EINVAL);
    }
    let fixed = (flags & MREMAP_FIXED != 0).then_some(new_addr);
    if new_len > old_len {
        within_as_limit(task, new_len - old_len, None)?;
    }
    let at = task.mm.mremap(
        old,
        old_len,
        new_len,
        flags & MREMAP_MAYMOVE != 0,
        fixed,
        flags & MREMAP_DONTUNMAP != 0,
    )?;
    Ok(at.get() as i64)
}

/// `RLIMIT_AS`: `ENOMEM` unless `len` more bytes of mappings (less what a fixed mapping
/// at `replaced` takes over) fit, as Linux's `may_expand_vm`.
fn within_as_limit(task: &Task, len: u64, replaced: Option<UserAddr>) -> SysResult<()> {
    let limit = task
        .group
        .limits()
        .get(RLIMIT_AS)
        .map_or(RLIM_INFINITY, |l| l.cur);
    if limit == RLIM_INFINITY {
        return Ok(());
    }
    let len = len
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(Errno::ENOMEM)?;
    let vmas = task.mm.vmas();
    let total: u64 = vmas.iter().map(|v| v.end - v.start).sum();
    let overlap: u64 = replaced.map_or(0, |at| {
        let (start, end) = (at.get(), at.get().saturating_add(len));
        vmas.iter()
            .map(|v| v.end.min(end).saturating_sub(v.start.max(start)))
            .sum()
    });
    if total - overlap.min(total) + len > limit {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// `RLIMIT_AS`'s number.
const RLIMIT_AS: u32 = 9;

pub fn madvise(task: &mut Task, addr: UserAddr, len: u64, advice: i32) -> SysResult<i64> {
    task.mm.madvise(addr, len, advice)?;
    Ok(0)
}

const MS_ASYNC: i32 = 1;
const MS_INVALIDATE: i32 = 2;
const MS_SYNC: i32 = 4;

pub fn msync(task: &mut Task, addr: UserAddr, len: u64, flags: i32) -> SysResult<i64> {
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
    {
        return Err(Errno::EINVAL);
    }
    task.mm.msync(addr, len)?;
    Ok(0)
}

pub fn mincore(task: &mut Task, addr: UserAddr, len: u64, vec: UserAddr) -> SysResult<i64> {
    let residency = task.mm.mincore(addr, len)?;
    task.mm.copy_out(vec, &residency)?;
    Ok(0)
}
