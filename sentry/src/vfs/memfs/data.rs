//! File contents of the in-memory filesystem: pages of the memory file (so a mapping and
//! `read`/`write` see the same bytes), and the read-only Gofer file a lower node reads
//! through its donated descriptor and page cache.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use gofer::{Client, Handle};
use platform::MemoryFile;

use crate::errno::{Errno, SysResult};
use crate::mm::cache::{FileCache, ReadAt};
use crate::mm::{MemoryObject, Page, PAGE_SIZE};

/// The largest file tmpfs holds (Linux's `MAX_LFS_FILESIZE`).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// The pages a filesystem may hold: a tmpfs mounted with `size=` refuses more (`ENOSPC`,
/// or `SIGBUS` for a page a mapping touches).
#[derive(Debug, Default)]
pub struct Budget {
    /// The most pages (0: no limit but the sandbox's memory).
    limit: std::sync::atomic::AtomicU64,
    used: std::sync::atomic::AtomicU64,
}

impl Budget {
    pub fn set_limit(&self, pages: u64) {
        self.limit
            .store(pages, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn used(&self) -> u64 {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes one page, or `ENOSPC` at the limit.
    fn charge(&self) -> SysResult<()> {
        use std::sync::atomic::Ordering;
        let limit = self.limit.load(Ordering::Relaxed);
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |u| {
                (limit == 0 || u < limit).then_some(u + 1)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOSPC)
    }

    fn uncharge(&self, pages: u64) {
        use std::sync::atomic::Ordering;
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(pages))
            });
    }
}

/// A growable file held in memory-file pages; holes read as zeros.
pub struct Pages {
    memory: Arc<MemoryFile>,
    inner: Mutex<PagesInner>,
    /// The filesystem's page budget, charged for every page held.
    budget: Arc<Budget>,
}

struct PagesInner {
    pages: BTreeMap<u64, Arc<Page>>,
    size: u64,
}

impl Pages {
    pub fn new(memory: &Arc<MemoryFile>) -> Arc<Self> {
        Self::with_budget(memory, Arc::default())
    }

    /// Pages charged to `budget` (a filesystem's).
    pub fn with_budget(memory: &Arc<MemoryFile>, budget: Arc<Budget>) -> Arc<Self> {
        Arc::new(Self {
            memory: Arc::clone(memory),
            inner: Mutex::new(PagesInner {
                pages: BTreeMap::new(),
                size: 0,
            }),
            budget,
        })
    }

    /// A new page, charged to the budget.
    fn new_page(&self) -> SysResult<Arc<Page>> {
        self.budget.charge()?;
        Page::new(&self.memory).inspect_err(|_| self.budget.uncharge(1))
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
                    // The sandbox's memory is the filesystem's space, as tmpfs's is.
                    let p = self.new_page().map_err(|_| Errno::ENOSPC)?;
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
            let before = inner.pages.len();
            inner.pages.retain(|&i, _| i < keep);
            self.budget.uncharge((before - inner.pages.len()) as u64);
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

impl Drop for Pages {
    fn drop(&mut self) {
        let held = self.inner.get_mut().map_or(0, |i| i.pages.len());
        self.budget.uncharge(held as u64);
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
        let p = self.new_page()?;
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
    /// Who closes the handle; `None` for the attach root, which is not closed.
    closer: Option<Arc<Closer>>,
}

impl Drop for LowerNode {
    fn drop(&mut self) {
        if let Some(closer) = &self.closer {
            closer.close(self.handle);
        }
    }
}

/// Handles closed in batches of this many (a `Close` message takes a list), so a walk
/// to stat a file costs one round trip, not two.
const CLOSE_BATCH: usize = 64;

/// Handles no longer used, waiting to be closed together.
pub struct Closer {
    client: Arc<Client>,
    pending: Mutex<Vec<Handle>>,
}

impl Closer {
    fn close(&self, handle: Handle) {
        let batch = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.push(handle);
            if pending.len() < CLOSE_BATCH {
                return;
            }
            std::mem::take(&mut *pending)
        };
        self.flush(&batch);
    }

    fn flush(&self, handles: &[Handle]) {
        if let Err(e) = self.client.close(handles) {
            log::debug!("gofer close of {} handles: {e:?}", handles.len());
        }
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !pending.is_empty() {
            self.flush(&pending);
        }
    }
}

/// How many lower directories keep a Gofer handle at once. Beyond it the least recently
/// acquired ones let theirs go and walk again from their parent when next used: the
/// Gofer holds a host descriptor per handle, and a tree has more directories than that.
const MAX_HELD_DIRS: usize = 1024;

/// The lower directories that hold a handle, oldest first.
#[derive(Default)]
pub struct HeldDirs(Mutex<VecDeque<Weak<LowerDir>>>);

impl HeldDirs {
    fn hold(&self, dir: &Arc<LowerDir>) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.push_back(Arc::downgrade(dir));
        while held.len() > MAX_HELD_DIRS {
            let Some(old) = held.pop_front() else { break };
            if let Some(old) = old.upgrade() {
                old.release();
            }
        }
    }
}

/// A directory of the Gofer's tree: its handle while it holds one, and how to walk to it
/// again (its parent and name) once it has let the handle go.
pub struct LowerDir {
    client: Arc<Client>,
    parent: Option<(Arc<LowerDir>, Vec<u8>)>,
    handle: Mutex<Option<Arc<LowerNode>>>,
    held: Arc<HeldDirs>,
    closer: Arc<Closer>,
}

impl LowerDir {
    /// The attach root, whose handle is kept for good.
    pub fn root(client: Arc<Client>, handle: Handle) -> Arc<Self> {
        let node = Arc::new(LowerNode {
            client: Arc::clone(&client),
            handle,
            closer: None,
        });
        let closer = Arc::new(Closer {
            client: Arc::clone(&client),
            pending: Mutex::new(Vec::new()),
        });
        Arc::new(Self {
            client,
            parent: None,
            handle: Mutex::new(Some(node)),
            held: Arc::new(HeldDirs::default()),
            closer,
        })
    }

    /// The child directory `name`, whose handle a walk just returned.
    pub fn child(self: &Arc<Self>, name: &[u8], node: LowerNode) -> Arc<Self> {
        let dir = Arc::new(Self {
            client: Arc::clone(&self.client),
            parent: Some((Arc::clone(self), name.to_vec())),
            handle: Mutex::new(Some(Arc::new(node))),
            held: Arc::clone(&self.held),
            closer: Arc::clone(&self.closer),
        });
        self.held.hold(&dir);
        dir
    }

    fn release(&self) {
        if self.parent.is_some() {
            *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// The directory's handle, walking to it again if it was let go.
    pub fn node(self: &Arc<Self>) -> SysResult<Arc<LowerNode>> {
        if let Some(n) = &*self.handle.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(Arc::clone(n));
        }
        let Some((parent, name)) = &self.parent else {
            return Err(Errno::EIO);
        };
        let (node, _) = parent.walk(name)?;
        let node = Arc::new(node);
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&node));
        self.held.hold(self);
        Ok(node)
    }

    /// Walks one component from this directory.
    pub fn walk(self: &Arc<Self>, name: &[u8]) -> SysResult<(LowerNode, gofer::Stat)> {
        let dir = self.node()?;
        let (handle, stat) = self
            .client
            .walk(dir.handle, name)
            .map_err(super::super::gofer::errno)?;
        let node = LowerNode {
            client: Arc::clone(&self.client),
            handle,
            closer: Some(Arc::clone(&self.closer)),
        };
        Ok((node, stat))
    }

    /// A handle for one listing: a fresh one, closed when dropped, so the Gofer does not
    /// keep a directory stream open for each directory ever listed.
    fn listing_node(self: &Arc<Self>) -> SysResult<Arc<LowerNode>> {
        match &self.parent {
            Some((parent, name)) => Ok(Arc::new(parent.walk(name)?.0)),
            None => self.node(),
        }
    }

    /// Every entry.
    pub fn readdir_all(self: &Arc<Self>, chunk: u32) -> SysResult<Vec<gofer::protocol::Dirent>> {
        let node = self.listing_node()?;
        let mut out = Vec::new();
        let mut cookie = 0u64;
        loop {
            let batch = self
                .client
                .readdir(node.handle, cookie, chunk)
                .map_err(super::super::gofer::errno)?;
            let Some(last) = batch.last() else {
                break;
            };
            cookie = last.next_cookie;
            out.extend(batch);
        }
        Ok(out)
    }

    /// Every entry with its attributes, as a walk to it would report them.
    pub fn readdir_plus_all(
        self: &Arc<Self>,
        chunk: u32,
    ) -> SysResult<Vec<gofer::protocol::DirentPlus>> {
        let node = self.listing_node()?;
        let mut out = Vec::new();
        let mut cookie = 0u64;
        loop {
            let (batch, end) = self
                .client
                .readdir_plus(node.handle, cookie, chunk)
                .map_err(super::super::gofer::errno)?;
            let next = batch.last().map(|e| e.next_cookie);
            out.extend(batch);
            match next {
                _ if end => break,
                Some(next) => cookie = next,
                // Not the end, yet nothing to go on from: a listing cut short would pass
                // for a whole one, so it is an error.
                None => return Err(Errno::EIO),
            }
        }
        Ok(out)
    }
}

/// A lower non-directory, named by its directory and name: it holds no handle of its own
/// (a tree has far more files than the Gofer has handles), and is walked again when it is
/// opened or its link read.
pub struct LowerRef {
    pub dir: Arc<LowerDir>,
    pub name: Vec<u8>,
}

impl LowerRef {
    /// A fresh handle to the node, closed when dropped.
    pub fn walk(&self) -> SysResult<LowerNode> {
        Ok(self.dir.walk(&self.name)?.0)
    }

    pub fn readlink(&self) -> SysResult<Vec<u8>> {
        let node = self.walk()?;
        node.client
            .readlink(node.handle)
            .map_err(super::super::gofer::errno)
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

impl crate::vfs::HostData for DonatedFile {
    fn host_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.file)
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

/// A lower regular file while it is open or mapped: its donated descriptor, which
/// `read` uses directly (the host's page cache serves it, and the lower tree does not
/// change under the sandbox), and the page cache its mappings use.
pub struct LowerOpen {
    file: Arc<DonatedFile>,
    cache: Arc<FileCache>,
}

impl LowerOpen {
    /// The donated descriptor, for reads straight into application memory.
    pub fn donated(&self) -> Arc<DonatedFile> {
        Arc::clone(&self.file)
    }

    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        if offset >= self.file.size {
            return Ok(0);
        }
        let mut done = 0;
        while done < buf.len() {
            let at = offset.checked_add(done as u64).ok_or(Errno::EINVAL)?;
            let n = self.file.read_at(at, &mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

impl MemoryObject for LowerOpen {
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>> {
        self.cache.page(index)
    }

    fn cached_pages(&self, first: u64, count: u64) -> Vec<(u64, Arc<Page>)> {
        self.cache.cached_pages(first, count)
    }

    fn name(&self) -> String {
        self.cache.name()
    }
}

/// Opens a lower regular file for reading.
pub fn open_lower(
    at: &LowerRef,
    memory: &Arc<MemoryFile>,
    name: String,
) -> SysResult<Arc<LowerOpen>> {
    let node = at.walk()?;
    let fd = node
        .client
        .open(node.handle, libc::O_RDONLY)
        .map_err(super::super::gofer::errno)?;
    let file = Arc::new(DonatedFile::new(fd)?);
    let cache = FileCache::new(memory, Arc::clone(&file) as Arc<dyn ReadAt>, name);
    Ok(Arc::new(LowerOpen { file, cache }))
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

    #[test]
    fn a_budget_limits_the_pages_and_gets_them_back() {
        let budget = Arc::new(Budget::default());
        budget.set_limit(2);
        let p = Pages::with_budget(&memory(), Arc::clone(&budget));
        let page = vec![1u8; 4096];
        p.write_at(0, &page).unwrap();
        p.write_at(PAGE_SIZE, &page).unwrap();
        assert_eq!(p.write_at(2 * PAGE_SIZE, &page), Err(Errno::ENOSPC));
        assert_eq!(budget.used(), 2);
        p.truncate(PAGE_SIZE).unwrap();
        assert_eq!(budget.used(), 1, "a shrink gives pages back");
        let q = Pages::with_budget(&memory(), Arc::clone(&budget));
        q.write_at(0, &page).unwrap();
        drop(p);
        drop(q);
        assert_eq!(budget.used(), 0, "dropped files give theirs back");
    }
}
