//! The rest of the memory calls: moving and resizing mappings (`mremap`), advice
//! (`madvise`), `msync` and `mincore`.

use std::sync::Arc;

use super::{Inner, MemoryManager, Vma, PAGE_SIZE};
use crate::errno::{Errno, SysResult};
use crate::mm::UserAddr;

/// `madvise` advice values.
pub mod madv {
    pub const NORMAL: i32 = 0;
    pub const RANDOM: i32 = 1;
    pub const SEQUENTIAL: i32 = 2;
    pub const WILLNEED: i32 = 3;
    pub const DONTNEED: i32 = 4;
    pub const FREE: i32 = 8;
    pub const REMOVE: i32 = 9;
    pub const DONTFORK: i32 = 10;
    pub const DOFORK: i32 = 11;
    pub const MERGEABLE: i32 = 12;
    pub const UNMERGEABLE: i32 = 13;
    pub const HUGEPAGE: i32 = 14;
    pub const NOHUGEPAGE: i32 = 15;
    pub const DONTDUMP: i32 = 16;
    pub const DODUMP: i32 = 17;
    pub const WIPEONFORK: i32 = 18;
    pub const KEEPONFORK: i32 = 19;
    pub const COLD: i32 = 20;
    pub const PAGEOUT: i32 = 21;
    pub const POPULATE_READ: i32 = 22;
    pub const POPULATE_WRITE: i32 = 23;
}

impl MemoryManager {
    /// `mremap`: resizes the mapping at `old`, moving it if `may_move` (to `fixed` if
    /// given) when it cannot grow in place.
    pub fn mremap(
        &self,
        old: UserAddr,
        old_len: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<UserAddr>,
        dont_unmap: bool,
    ) -> SysResult<UserAddr> {
        if !old.is_page_aligned() || new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let round = |l: u64| l.checked_next_multiple_of(PAGE_SIZE).ok_or(Errno::EINVAL);
        let (old_len, new_len) = (round(old_len)?, round(new_len)?);
        if dont_unmap && (!may_move || old_len != new_len) {
            return Err(Errno::EINVAL);
        }
        let start = old.get();
        let old_end = start.checked_add(old_len).ok_or(Errno::EFAULT)?;
        let mut inner = self.lock();
        // The old range must lie in one VMA.
        let vma = inner
            .vmas
            .range(..=start)
            .next_back()
            .map(|(_, v)| v.clone())
            .filter(|v| v.end > start && v.end >= old_end)
            .ok_or(Errno::EFAULT)?;
        if old_len == 0 {
            // A second mapping of the same shared pages; a private one cannot be duplicated.
            return self.duplicate_shared(&mut inner, &vma, start, new_len, may_move, fixed);
        }
        if dont_unmap && vma.shared {
            // Linux allows it for shared mappings too; the Sentry only for private ones.
            log::warn!("mremap: MREMAP_DONTUNMAP of a shared mapping is not implemented (EINVAL)");
            return Err(Errno::EINVAL);
        }
        if let Some(dest) = fixed {
            if !dest.is_page_aligned() {
                return Err(Errno::EINVAL);
            }
            let d = dest.get();
            let overlap = d < old_end && start < d.saturating_add(new_len);
            if overlap || !inner.in_user(d, new_len) {
                return Err(Errno::EINVAL);
            }
            self.remove_range(&mut inner, d, d + new_len)?;
            return self
                .move_range(&mut inner, start, old_len, d, new_len, dont_unmap)
                .map(UserAddr::new);
        }
        if dont_unmap {
            let dest = inner.find_free(new_len).ok_or(Errno::ENOMEM)?;
            return self
                .move_range(&mut inner, start, old_len, dest, new_len, true)
                .map(UserAddr::new);
        }
        if new_len <= old_len {
            self.remove_range(&mut inner, start + new_len, old_end)?;
            return Ok(old);
        }
        let grow_end = start.checked_add(new_len).ok_or(Errno::ENOMEM)?;
        if vma.end == old_end && inner.in_user(start, new_len) && !inner.overlaps(old_end, grow_end)
        {
            // Grow in place.
            inner.split_at(start);
            if let Some(v) = inner.vmas.get_mut(&vma.start) {
                v.end = grow_end;
            }
            return Ok(old);
        }
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let dest = inner.find_free(new_len).ok_or(Errno::ENOMEM)?;
        self.move_range(&mut inner, start, old_len, dest, new_len, false)
            .map(UserAddr::new)
    }

    /// `mremap` with an old size of 0: maps the pages of the shared mapping `vma` from
    /// `start` a second time, `new_len` bytes of them.
    fn duplicate_shared(
        &self,
        inner: &mut Inner,
        vma: &Vma,
        start: u64,
        new_len: u64,
        may_move: bool,
        fixed: Option<UserAddr>,
    ) -> SysResult<UserAddr> {
        let Some((object, offset)) = vma.object.as_ref().filter(|_| vma.shared) else {
            return Err(Errno::EINVAL);
        };
        if !may_move {
            return Err(Errno::ENOMEM);
        }
        let dest = match fixed {
            Some(d) => {
                let d = d.get();
                if !inner.in_user(d, new_len) {
                    return Err(Errno::EINVAL);
                }
                self.remove_range(inner, d, d + new_len)?;
                d
            }
            None => inner.find_free(new_len).ok_or(Errno::ENOMEM)?,
        };
        let mut copy = vma.clone();
        copy.start = dest;
        copy.end = dest + new_len;
        copy.object = Some((Arc::clone(object), offset + (start - vma.start)));
        inner.vmas.insert(dest, copy);
        Ok(UserAddr::new(dest))
    }

    /// Moves `[from, from + old_len)` to `to`, giving it `new_len` bytes there (the tail is
    /// the old VMA's continuation: zero for anonymous memory, the file beyond).
    fn move_range(
        &self,
        inner: &mut Inner,
        from: u64,
        old_len: u64,
        to: u64,
        new_len: u64,
        dont_unmap: bool,
    ) -> SysResult<u64> {
        inner.split_at(from);
        inner.split_at(from + old_len);
        let mut vma = inner.vmas.remove(&from).ok_or(Errno::EFAULT)?;
        if dont_unmap {
            // The old range stays mapped, empty: it reads as zeroes (or the file) again.
            inner.vmas.insert(from, vma.clone());
        }
        let keep = old_len.min(new_len);
        let delta = to.wrapping_sub(from);
        let pages: Vec<u64> = inner
            .pages
            .range(from..from + old_len)
            .map(|(&a, _)| a)
            .collect();
        for a in pages {
            if let Some(mut entry) = inner.pages.remove(&a) {
                if a < from + keep {
                    entry.mapped = None;
                    inner.pages.insert(a.wrapping_add(delta), entry);
                }
            }
        }
        self.space.unmap(from, old_len).map_err(|_| Errno::ENOMEM)?;
        vma.start = to;
        vma.end = to + new_len;
        inner.vmas.insert(to, vma);
        Ok(to)
    }

    /// `madvise`. The range must be page-aligned; unmapped parts make it `ENOMEM` (after
    /// the advice is applied to the mapped parts, as Linux does).
    pub fn madvise(&self, addr: UserAddr, len: u64, advice: i32) -> SysResult<()> {
        if !addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        let len = len
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Errno::EINVAL)?;
        let start = addr.get();
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        let known = matches!(
            advice,
            madv::NORMAL
                | madv::RANDOM
                | madv::SEQUENTIAL
                | madv::WILLNEED
                | madv::DONTNEED
                | madv::FREE
                | madv::DONTFORK
                | madv::DOFORK
                | madv::MERGEABLE
                | madv::UNMERGEABLE
                | madv::HUGEPAGE
                | madv::NOHUGEPAGE
                | madv::DONTDUMP
                | madv::DODUMP
                | madv::COLD
                | madv::PAGEOUT
                | madv::POPULATE_READ
                | madv::POPULATE_WRITE
        );
        if !known {
            if matches!(advice, madv::REMOVE | madv::WIPEONFORK | madv::KEEPONFORK) {
                log::warn!("madvise advice {advice}: not implemented (EINVAL)");
            }
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let mut inner = self.lock();
        let hole = !inner.covered(start, end);
        match advice {
            madv::DONTNEED | madv::FREE => {
                // Private pages go (anonymous memory reads zero again, a private file
                // mapping reads the file again); shared memory keeps its contents.
                let private: Vec<(u64, u64)> = inner
                    .vmas
                    .range(..end)
                    .map(|(_, v)| v)
                    .filter(|v| v.end > start && !v.shared)
                    .map(|v| (v.start.max(start), v.end.min(end)))
                    .collect();
                if advice == madv::FREE
                    && inner
                        .vmas
                        .range(..end)
                        .any(|(_, v)| v.end > start && v.object.is_some() && !v.shared)
                {
                    // MADV_FREE works on private anonymous memory only.
                    return Err(Errno::EINVAL);
                }
                for (s, e) in private {
                    let pages: Vec<u64> = inner.pages.range(s..e).map(|(&a, _)| a).collect();
                    for a in pages {
                        inner.pages.remove(&a);
                    }
                }
                let mapped: Vec<u64> = inner.pages.range(start..end).map(|(&a, _)| a).collect();
                for a in mapped {
                    if let Some(e) = inner.pages.get_mut(&a) {
                        e.mapped = None;
                    }
                }
                self.space.unmap(start, len).map_err(|_| Errno::ENOMEM)?;
            }
            madv::DONTFORK | madv::DOFORK => {
                inner.split_at(start);
                inner.split_at(end);
                for (_, v) in inner.vmas.range_mut(start..end) {
                    v.dontfork = advice == madv::DONTFORK;
                }
            }
            madv::POPULATE_READ | madv::POPULATE_WRITE | madv::WILLNEED => {
                let access = if advice == madv::POPULATE_WRITE {
                    platform::Access::Write
                } else {
                    platform::Access::Read
                };
                let pages: Vec<u64> = inner
                    .vmas
                    .range(..end)
                    .map(|(_, v)| v)
                    .filter(|v| v.end > start)
                    .flat_map(|v| {
                        let (s, e) = (v.start.max(start), v.end.min(end));
                        (0..(e - s) / PAGE_SIZE).map(move |i| s + i * PAGE_SIZE)
                    })
                    .collect();
                for page in pages {
                    let r = self.fault_locked(&mut inner, page, access, true);
                    if r.is_err() && advice != madv::WILLNEED {
                        return Err(Errno::EFAULT);
                    }
                }
            }
            // The rest are hints with no effect on what the application observes.
            _ => {}
        }
        if hole {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `msync`: checks the range and writes shared file pages back through their objects.
    pub fn msync(&self, addr: UserAddr, len: u64) -> SysResult<()> {
        if !addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        let len = len
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Errno::ENOMEM)?;
        let start = addr.get();
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        let objects: Vec<_> = {
            let inner = self.lock();
            if !inner.covered(start, end) {
                return Err(Errno::ENOMEM);
            }
            inner
                .vmas
                .range(..end)
                .map(|(_, v)| v)
                .filter(|v| v.end > start && v.shared)
                .filter_map(|v| v.object.as_ref().map(|(o, _)| std::sync::Arc::clone(o)))
                .collect()
        };
        for object in objects {
            object.sync()?;
        }
        Ok(())
    }

    /// `mincore`: one byte per page, 1 where the page is resident (the Sentry holds a page
    /// for it).
    pub fn mincore(&self, addr: UserAddr, len: u64) -> SysResult<Vec<u8>> {
        if !addr.is_page_aligned() {
            return Err(Errno::EINVAL);
        }
        let len = len
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(Errno::ENOMEM)?;
        let start = addr.get();
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        let inner = self.lock();
        if !inner.in_user(start, len) || !inner.covered(start, end) {
            return Err(Errno::ENOMEM);
        }
        Ok((0..len / PAGE_SIZE)
            .map(|i| u8::from(inner.pages.contains_key(&(start + i * PAGE_SIZE))))
            .collect())
    }
}

impl Inner {
    /// Whether VMAs cover `[start, end)` without holes.
    pub(super) fn covered(&self, start: u64, end: u64) -> bool {
        let mut cursor = start;
        for v in self
            .vmas
            .range(..end)
            .map(|(_, v)| v)
            .filter(|v| v.end > start)
        {
            if v.start > cursor {
                return false;
            }
            cursor = v.end;
        }
        cursor >= end
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use platform::{MemoryFile, Perms};

    use crate::mm::{MapFlags, MemoryManager, UserAddr, PAGE_SIZE, USER_END};

    fn mm() -> MemoryManager {
        let memory = Arc::new(MemoryFile::new(64 << 20).unwrap());
        struct Null;
        impl platform::AddressSpace for Null {
            fn map(&self, _: u64, _: u64, _: u64, _: Perms) -> Result<(), platform::PlatformError> {
                Ok(())
            }
            fn unmap(&self, _: u64, _: u64) -> Result<(), platform::PlatformError> {
                Ok(())
            }
            fn protect(&self, _: u64, _: u64, _: Perms) -> Result<(), platform::PlatformError> {
                Ok(())
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
        }
        MemoryManager::new(memory, Arc::new(Null), USER_END).unwrap()
    }

    const RW: Perms = Perms::READ.union(Perms::WRITE);

    #[test]
    fn mremap_grows_shrinks_and_moves_keeping_contents() {
        let mm = mm();
        let a = mm
            .mmap(UserAddr::NULL, 2 * PAGE_SIZE, RW, MapFlags::default(), None)
            .unwrap();
        mm.copy_out(a, b"keep me").unwrap();
        // Block growth in place.
        let fixed = MapFlags {
            fixed: true,
            ..MapFlags::default()
        };
        mm.mmap(
            a.checked_add(2 * PAGE_SIZE).unwrap(),
            PAGE_SIZE,
            RW,
            fixed,
            None,
        )
        .unwrap();
        assert_eq!(
            mm.mremap(a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, false, None, false),
            Err(crate::errno::Errno::ENOMEM)
        );
        let b = mm
            .mremap(a, 2 * PAGE_SIZE, 4 * PAGE_SIZE, true, None, false)
            .unwrap();
        assert_ne!(a, b);
        let mut buf = [0u8; 7];
        mm.copy_in(b, &mut buf).unwrap();
        assert_eq!(&buf, b"keep me");
        assert!(mm.copy_in(a, &mut buf).is_err(), "the old place is gone");
        mm.copy_out(b.checked_add(3 * PAGE_SIZE).unwrap(), b"tail")
            .unwrap();
        assert_eq!(
            mm.mremap(b, 4 * PAGE_SIZE, PAGE_SIZE, false, None, false)
                .unwrap(),
            b
        );
        assert!(mm
            .copy_in(b.checked_add(PAGE_SIZE).unwrap(), &mut buf)
            .is_err());
        assert_eq!(
            mm.mremap(UserAddr::new(0x1234), 1, 1, true, None, false),
            Err(crate::errno::Errno::EINVAL)
        );
    }

    #[test]
    fn dontneed_zeroes_private_memory_and_mincore_sees_it() {
        let mm = mm();
        let a = mm
            .mmap(UserAddr::NULL, 2 * PAGE_SIZE, RW, MapFlags::default(), None)
            .unwrap();
        mm.copy_out(a, b"data").unwrap();
        assert_eq!(mm.mincore(a, 2 * PAGE_SIZE).unwrap(), vec![1, 0]);
        mm.madvise(a, PAGE_SIZE, super::madv::DONTNEED).unwrap();
        assert_eq!(mm.mincore(a, 2 * PAGE_SIZE).unwrap(), vec![0, 0]);
        let mut buf = [1u8; 4];
        mm.copy_in(a, &mut buf).unwrap();
        assert_eq!(buf, [0; 4]);
        assert_eq!(
            mm.madvise(a, PAGE_SIZE, 999),
            Err(crate::errno::Errno::EINVAL)
        );
        assert_eq!(
            mm.madvise(a, 8 * PAGE_SIZE, super::madv::NORMAL),
            Err(crate::errno::Errno::ENOMEM)
        );
        assert_eq!(mm.msync(a, 8 * PAGE_SIZE), Err(crate::errno::Errno::ENOMEM));
        assert_eq!(
            mm.mincore(a.checked_add(1).unwrap(), 1),
            Err(crate::errno::Errno::EINVAL)
        );
    }
}
