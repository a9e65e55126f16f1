//! File contents of the in-memory filesystem: pages of the memory file (so a mapping and
//! `read`/`write` see the same bytes), and the read-only Gofer file a lower node reads
//! through its donated descriptor and page cache.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use gofer::{Client, Handle};
use platform::MemoryFile;

use crate::errno::{Errno, SysResult};
use crate::mm::cache::{FileCache, ReadAt};
use crate::mm::{MemoryObject, Page, PAGE_SIZE};

/// The largest file tmpfs holds (Linux's `MAX_LFS_FILESIZE`).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// A growable file held in memory-file pages; holes read as zeros.
pub struct Pages {
    memory: Arc<MemoryFile>,
    inner: Mutex<PagesInner>,
}

struct PagesInner {
    pages: BTreeMap<u64, Arc<Page>>,
    size: u64,
}

impl Pages {
    pub fn new(memory: &Arc<MemoryFile>) -> Arc<Self> {
        Arc::new(Self {
            memory: Arc::clone(memory),
            inner: Mutex::new(PagesInner {
                pages: BTreeMap::new(),
                size: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, PagesInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn size(&self) -> u64 {
        self.lock().size
    }

    /// Pages allocated (for `st_blocks`).
    pub fn allocated(&self) -> u64 {
        self.lock().pages.len() as u64
    }

    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        let inner = self.lock();
        if offset >= inner.size {
            return Ok(0);
        }
        let len = (inner.size - offset).min(buf.len() as u64);
        let mut done = 0u64;
        while done < len {
            let at = offset + done;
            let in_page = at % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(len - done);
            let dst = &mut buf[usize::try_from(done).map_err(|_| Errno::EINVAL)?
                ..usize::try_from(done + n).map_err(|_| Errno::EINVAL)?];
            match inner.pages.get(&(at / PAGE_SIZE)) {
                Some(page) => self
                    .memory
                    .read(page.offset() + in_page, dst)
                    .map_err(|_| Errno::EIO)?,
                None => dst.fill(0),
            }
            done += n;
        }
        usize::try_from(len).map_err(|_| Errno::EINVAL)
    }

    pub fn write_at(&self, offset: u64, buf: &[u8]) -> SysResult<usize> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        let mut inner = self.lock();
        let mut done = 0u64;
        while done < buf.len() as u64 {
            let at = offset + done;
            let in_page = at % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page).min(buf.len() as u64 - done);
            let page = match inner.pages.get(&(at / PAGE_SIZE)) {
                Some(p) => Arc::clone(p),
                None => {
                    let p = Page::new(&self.memory)?;
                    inner.pages.insert(at / PAGE_SIZE, Arc::clone(&p));
                    p
                }
            };
            let src = &buf[usize::try_from(done).map_err(|_| Errno::EINVAL)?
                ..usize::try_from(done + n).map_err(|_| Errno::EINVAL)?];
            self.memory
                .write(page.offset() + in_page, src)
                .map_err(|_| Errno::EIO)?;
            done += n;
        }
        inner.size = inner.size.max(end);
        Ok(buf.len())
    }

    /// Sets the size; bytes past a shrink are gone (zero if the file grows again).
    pub fn truncate(&self, size: u64) -> SysResult<()> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut inner = self.lock();
        if size < inner.size {
            let keep = size.div_ceil(PAGE_SIZE);
            inner.pages.retain(|&i, _| i < keep);
            let in_page = size % PAGE_SIZE;
            if in_page != 0 {
                if let Some(page) = inner.pages.get(&(size / PAGE_SIZE)) {
                    let zeros = vec![0u8; usize::try_from(PAGE_SIZE - in_page).unwrap_or(0)];
                    self.memory
                        .write(page.offset() + in_page, &zeros)
                        .map_err(|_| Errno::EIO)?;
                }
            }
        }
        inner.size = size;
        Ok(())
    }
}

impl MemoryObject for Pages {
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>> {
        let mut inner = self.lock();
        if index >= inner.size.div_ceil(PAGE_SIZE) {
            return Ok(None);
        }
        if let Some(p) = inner.pages.get(&index) {
            return Ok(Some(Arc::clone(p)));
        }
        let p = Page::new(&self.memory)?;
        inner.pages.insert(index, Arc::clone(&p));
        Ok(Some(p))
    }

    fn name(&self) -> String {
        "/memfd: (deleted)".to_string()
    }
}

/// A node of the Gofer's tree; its handle is closed when the last user lets go.
pub struct LowerNode {
    pub client: Arc<Client>,
    pub handle: Handle,
    /// Whether the handle is this node's to close (the attach root is not).
    pub owned: bool,
}

impl Drop for LowerNode {
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = self.client.close(&[self.handle]) {
                log::debug!("gofer close {:?}: {e:?}", self.handle);
            }
        }
    }
}

/// A read-only lower file's bytes through the donated host descriptor. The lower tree is
/// read-only under the overlay, so its size is fixed at open.
pub struct DonatedFile {
    file: std::fs::File,
    size: u64,
}

impl DonatedFile {
    pub fn new(fd: std::os::fd::OwnedFd) -> SysResult<Self> {
        let file = std::fs::File::from(fd);
        let size = file.metadata().map_err(Errno::from)?.len();
        Ok(Self { file, size })
    }
}

impl ReadAt for DonatedFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset).map_err(Errno::from)
    }

    fn size(&self) -> SysResult<u64> {
        Ok(self.size)
    }
}

/// Opens a lower regular file for reading, with a page cache over it.
pub fn open_lower(
    node: &LowerNode,
    memory: &Arc<MemoryFile>,
    name: String,
) -> SysResult<Arc<FileCache>> {
    let fd = node
        .client
        .open(node.handle, libc::O_RDONLY)
        .map_err(super::super::gofer::errno)?;
    Ok(FileCache::new(
        memory,
        Arc::new(DonatedFile::new(fd)?),
        name,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Arc<MemoryFile> {
        Arc::new(MemoryFile::new(1 << 24).unwrap())
    }

    #[test]
    fn sparse_write_read_truncate() {
        let p = Pages::new(&memory());
        assert_eq!(p.write_at(10_000, b"xyz").unwrap(), 3);
        assert_eq!(p.size(), 10_003);
        assert_eq!(p.allocated(), 1, "the hole takes no pages");
        let mut buf = vec![1u8; 10_010];
        assert_eq!(p.read_at(0, &mut buf).unwrap(), 10_003);
        assert!(buf[..10_000].iter().all(|&b| b == 0));
        assert_eq!(&buf[10_000..10_003], b"xyz");
        p.truncate(10_001).unwrap();
        p.truncate(10_003).unwrap();
        let mut tail = [9u8; 3];
        p.read_at(10_000, &mut tail).unwrap();
        assert_eq!(
            tail,
            [b'x', 0, 0],
            "bytes cut by a shrink read back as zero"
        );
        assert_eq!(p.write_at(u64::MAX - 1, b"ab").err(), Some(Errno::EFBIG));
    }
}
