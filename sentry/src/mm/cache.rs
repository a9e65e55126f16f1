//! The page cache of one file: the memory-file pages that hold its contents, filled on
//! first use, shared by every mapping of the file (and every `exec` of the same binary, so
//! repeated runs do not re-read their libraries).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use platform::MemoryFile;

use super::{MemoryObject, Page, PAGE_BYTES, PAGE_SIZE};
use crate::errno::{Errno, SysResult};

/// Where a cached file's bytes come from (a host FD the Gofer donated, a tmpfs file).
pub trait ReadAt: Send + Sync {
    /// Reads at `offset` into `buf`, returning how many bytes were read (0 at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize>;

    /// The file's current size.
    fn size(&self) -> SysResult<u64>;
}

/// The cached contents of one file.
pub struct FileCache {
    memory: Arc<MemoryFile>,
    source: Arc<dyn ReadAt>,
    name: String,
    pages: Mutex<BTreeMap<u64, Arc<Page>>>,
}

impl FileCache {
    pub fn new(memory: &Arc<MemoryFile>, source: Arc<dyn ReadAt>, name: String) -> Arc<Self> {
        Arc::new(Self {
            memory: Arc::clone(memory),
            source,
            name,
            pages: Mutex::new(BTreeMap::new()),
        })
    }

    /// Reads `buf.len()` bytes at `offset` through the cache (short at the end of file).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        let size = self.source.size()?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset.checked_add(done as u64).ok_or(Errno::EINVAL)?;
            if at >= size {
                break;
            }
            let Some(page) = self.page(at / PAGE_SIZE)? else {
                break;
            };
            let in_page = at % PAGE_SIZE;
            let n = (PAGE_SIZE - in_page)
                .min(size - at)
                .min((buf.len() - done) as u64);
            let n = usize::try_from(n).map_err(|_| Errno::EINVAL)?;
            self.memory
                .read(page.offset() + in_page, &mut buf[done..done + n])
                .map_err(|_| Errno::EIO)?;
            done += n;
        }
        Ok(done)
    }
}

impl FileCache {
    /// Fills the missing pages `[first, first + count)` with one read of the source:
    /// the page a fault needs and the neighbours fault-around will map with it (Linux's
    /// read-around). Pages past the first are best effort: no memory for them, no error.
    fn fill(&self, pages: &mut BTreeMap<u64, Arc<Page>>, first: u64, count: u64) -> SysResult<()> {
        let mut fresh = Vec::new();
        for i in 0..count {
            match Page::new(&self.memory) {
                Ok(p) => fresh.push(p),
                Err(e) if i == 0 => return Err(e),
                Err(_) => break,
            }
        }
        let mut buf = vec![0u8; fresh.len() * PAGE_BYTES];
        let mut filled = 0;
        while filled < buf.len() {
            let n = self
                .source
                .read_at(first * PAGE_SIZE + filled as u64, &mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        // The rest of the last page stays zero, as Linux maps it.
        for (i, (page, bytes)) in fresh.into_iter().zip(buf.chunks(PAGE_BYTES)).enumerate() {
            self.memory
                .write(page.offset(), bytes)
                .map_err(|_| Errno::EIO)?;
            pages.insert(first + i as u64, page);
        }
        Ok(())
    }
}

/// How many pages a missing page of a cached file brings in with it (an aligned window,
/// as fault-around maps them).
const READ_AROUND_PAGES: u64 = super::FAULT_AROUND_PAGES;

impl MemoryObject for FileCache {
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>> {
        let size = self.source.size()?;
        let last = size.div_ceil(PAGE_SIZE);
        if index >= last {
            return Ok(None);
        }
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(page) = pages.get(&index) {
            return Ok(Some(Arc::clone(page)));
        }
        // The run of missing pages from `index` to the end of its window (or the next
        // cached page, or the end of the file).
        let window_end = ((index / READ_AROUND_PAGES) + 1) * READ_AROUND_PAGES;
        let run_end = pages
            .range(index..window_end.min(last))
            .next()
            .map_or(window_end.min(last), |(&i, _)| i);
        self.fill(&mut pages, index, run_end - index)?;
        Ok(pages.get(&index).cloned())
    }

    fn cached_pages(&self, first: u64, count: u64) -> Vec<(u64, Arc<Page>)> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .range(first..first.saturating_add(count))
            .map(|(&i, p)| (i, Arc::clone(p)))
            .collect()
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

/// A file's bytes held in memory, for tests and for files the Sentry makes up.
pub struct BytesSource(pub Vec<u8>);

impl ReadAt for BytesSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = self.0.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    fn size(&self) -> SysResult<u64> {
        Ok(self.0.len() as u64)
    }
}
