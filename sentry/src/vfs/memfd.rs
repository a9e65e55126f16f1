//! memfd files: an unnamed tmpfs file (`/memfd:NAME (deleted)`) with file seals.
//!
//! The file is a tmpfs inode wrapped in [`MemfdInode`], which keeps the seals and refuses
//! what they forbid: writes, growth and shrinking (through `write`, `truncate`,
//! `fallocate`), exec-bit changes, and writable shared mappings.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Cx, Inode, SetAttr, Stat, StatFs, S_IFMT, S_IFREG, TMPFS_MAGIC};
use crate::errno::{Errno, SysResult};
use crate::mm::{MemoryObject, Page};

pub const F_SEAL_SEAL: u32 = 0x1;
pub const F_SEAL_SHRINK: u32 = 0x2;
pub const F_SEAL_GROW: u32 = 0x4;
pub const F_SEAL_WRITE: u32 = 0x8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;
/// Every seal Linux knows.
pub const F_ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;

/// A memfd's seals, and how many writable shared mappings of it exist (`F_SEAL_WRITE`
/// cannot be added while one does).
#[derive(Default)]
pub struct Seals {
    bits: Mutex<u32>,
    writable_maps: AtomicUsize,
}

impl Seals {
    pub fn new(bits: u32) -> Arc<Self> {
        Arc::new(Self {
            bits: Mutex::new(bits),
            writable_maps: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, u32> {
        self.bits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `F_GET_SEALS`.
    pub fn get(&self) -> u32 {
        *self.lock()
    }

    /// `F_ADD_SEALS` (the caller checked that the file is open for writing).
    pub fn add(&self, seals: u32) -> SysResult<()> {
        if seals & !F_ALL_SEALS != 0 {
            return Err(Errno::EINVAL);
        }
        let mut bits = self.lock();
        if *bits & F_SEAL_SEAL != 0 {
            return Err(Errno::EPERM);
        }
        if seals & F_SEAL_WRITE != 0
            && *bits & F_SEAL_WRITE == 0
            && self.writable_maps.load(Ordering::Acquire) > 0
        {
            return Err(Errno::EBUSY);
        }
        *bits |= seals;
        Ok(())
    }

    /// The object a shared mapping maps, and whether it may be made writable: `EPERM`
    /// for a writable one of a write-sealed file; a mapping that may become writable is
    /// counted while it exists.
    pub fn map_shared(
        self: &Arc<Self>,
        inner: Arc<dyn MemoryObject>,
        write: bool,
        may_write: bool,
    ) -> SysResult<(Arc<dyn MemoryObject>, bool)> {
        let bits = self.lock();
        if *bits & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            if write {
                return Err(Errno::EPERM);
            }
            return Ok((inner, false));
        }
        if !may_write {
            return Ok((inner, false));
        }
        self.writable_maps.fetch_add(1, Ordering::AcqRel);
        drop(bits);
        let counted = WritableMapping {
            inner,
            seals: Arc::clone(self),
        };
        Ok((Arc::new(counted), true))
    }
}

/// A shared mapping that may write: counted in its file's seals while it lives.
struct WritableMapping {
    inner: Arc<dyn MemoryObject>,
    seals: Arc<Seals>,
}

impl Drop for WritableMapping {
    fn drop(&mut self) {
        self.seals.writable_maps.fetch_sub(1, Ordering::AcqRel);
    }
}

impl MemoryObject for WritableMapping {
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>> {
        self.inner.page(index)
    }

    fn name(&self) -> String {
        self.inner.name()
    }

    fn sync(&self) -> SysResult<()> {
        self.inner.sync()
    }
}

/// `F_GET_SEALS` of a regular file that is no memfd: tmpfs files are sealed against
/// sealing (as Linux's shmem files), others have no seals (`EINVAL`).
pub fn seals_of(inode: &dyn Inode) -> SysResult<u32> {
    if let Some(s) = inode.seals() {
        return Ok(s.get());
    }
    let tmpfs =
        inode.mode() & S_IFMT == S_IFREG && inode.statfs().is_ok_and(|s| s.f_type == TMPFS_MAGIC);
    if tmpfs {
        Ok(F_SEAL_SEAL)
    } else {
        Err(Errno::EINVAL)
    }
}

/// A memfd's inode: a tmpfs file and its seals.
pub struct MemfdInode {
    inner: Arc<dyn Inode>,
    seals: Arc<Seals>,
}

impl MemfdInode {
    pub fn new(inner: Arc<dyn Inode>, seals: u32) -> Self {
        Self {
            inner,
            seals: Seals::new(seals),
        }
    }
}

impl Inode for MemfdInode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn dev(&self) -> u64 {
        self.inner.dev()
    }

    fn ino(&self) -> u64 {
        self.inner.ino()
    }

    fn stat(&self) -> SysResult<Stat> {
        self.inner.stat()
    }

    fn mode(&self) -> u32 {
        self.inner.mode()
    }

    fn statfs(&self) -> SysResult<StatFs> {
        self.inner.statfs()
    }

    fn setattr(&self, attr: &SetAttr) -> SysResult<()> {
        let bits = self.seals.lock();
        if let Some(size) = attr.size {
            let current = self.inner.size();
            if (size < current && *bits & F_SEAL_SHRINK != 0)
                || (size > current && *bits & F_SEAL_GROW != 0)
            {
                return Err(Errno::EPERM);
            }
        }
        if let Some(mode) = attr.mode {
            if *bits & F_SEAL_EXEC != 0 && (mode ^ self.inner.mode()) & 0o111 != 0 {
                return Err(Errno::EPERM);
            }
        }
        self.inner.setattr(attr)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        self.inner.read_at(offset, buf)
    }

    /// As Linux's `shmem_write_begin`: nothing under a write seal, nothing past the end
    /// under a grow seal.
    fn write_at(&self, offset: u64, buf: &[u8]) -> SysResult<usize> {
        let bits = self.seals.lock();
        if *bits & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(Errno::EPERM);
        }
        if *bits & F_SEAL_GROW != 0 && offset.saturating_add(buf.len() as u64) > self.inner.size() {
            return Err(Errno::EPERM);
        }
        self.inner.write_at(offset, buf)
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn pin(&self) -> SysResult<Option<Arc<dyn Any + Send + Sync>>> {
        self.inner.pin()
    }

    fn memory_object(&self) -> SysResult<Arc<dyn MemoryObject>> {
        self.inner.memory_object()
    }

    fn open(
        &self,
        cx: &Cx,
        path: &super::Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn super::FileDescription>>> {
        self.inner.open(cx, path, flags)
    }

    fn fsync(&self) -> SysResult<()> {
        self.inner.fsync()
    }

    fn xattrs(&self) -> Option<&Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>> {
        self.inner.xattrs()
    }

    fn locks(&self) -> Option<&super::lock::FileLocks> {
        self.inner.locks()
    }

    fn seals(&self) -> Option<&Arc<Seals>> {
        Some(&self.seals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_seal_ends_sealing_and_write_seal_waits_for_mappings() {
        let s = Seals::new(0);
        assert_eq!(s.add(0x100), Err(Errno::EINVAL));
        s.writable_maps.store(1, Ordering::Release);
        assert_eq!(s.add(F_SEAL_WRITE), Err(Errno::EBUSY));
        s.writable_maps.store(0, Ordering::Release);
        assert_eq!(s.add(F_SEAL_WRITE | F_SEAL_SEAL), Ok(()));
        assert_eq!(s.add(F_SEAL_GROW), Err(Errno::EPERM));
        assert_eq!(s.get(), F_SEAL_WRITE | F_SEAL_SEAL);
    }
}
