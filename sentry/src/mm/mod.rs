//! Application memory: the VMAs of an address space, demand paging, copy-on-write, and the
//! copies between the Sentry and the application (`copy_in`/`copy_out`).
//!
//! A `MemoryManager` owns one platform `AddressSpace` and decides every mapping in it. It
//! keeps its own record of which memory-file page backs each application page (`pages`),
//! so the Sentry never reads page tables: a copy to or from the application resolves each
//! page through the same path a page fault takes, with the same permission checks.
//!
//! Pages are mapped into the platform lazily, on fault. A private page shared with a
//! forked child (an `Arc` with more than one owner) is mapped read-only and copied on the
//! first write; a page that only this address space owns is written in place.

pub mod addr;
pub mod advice;
pub mod cache;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use platform::{Access, AddressSpace, FileRange, MemoryFile, Perms};

pub use addr::{UserAddr, UserPtr, PAGE_BYTES, PAGE_SIZE, USER_END};

use crate::errno::{Errno, SysResult};

/// The lowest address `mmap` hands out or accepts (Linux's default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 0x1_0000;

/// One page of the memory file, freed when its last owner lets go.
#[derive(Debug)]
pub struct Page {
    memory: Arc<MemoryFile>,
    range: FileRange,
}

impl Page {
    /// A new zeroed page.
    pub fn new(memory: &Arc<MemoryFile>) -> SysResult<Arc<Self>> {
        let range = memory.allocate(PAGE_SIZE).map_err(|_| Errno::ENOMEM)?;
        Ok(Arc::new(Self {
            memory: Arc::clone(memory),
            range,
        }))
    }

    /// `count` new zeroed pages, contiguous in the memory file (one allocation).
    fn contiguous(memory: &Arc<MemoryFile>, count: u64) -> SysResult<Vec<Arc<Self>>> {
        let range = memory
            .allocate(count * PAGE_SIZE)
            .map_err(|_| Errno::ENOMEM)?;
        Ok((0..count)
            .map(|i| {
                Arc::new(Self {
                    memory: Arc::clone(memory),
                    range: FileRange {
                        offset: range.offset + i * PAGE_SIZE,
                        len: PAGE_SIZE,
                    },
                })
            })
            .collect())
    }

    /// A new page holding a copy of `self`.
    fn duplicate(&self) -> SysResult<Arc<Self>> {
        let copy = Self::new(&self.memory)?;
        self.memory
            .copy(self.range.offset, copy.range.offset, PAGE_SIZE)
            .map_err(|_| Errno::EFAULT)?;
        Ok(copy)
    }

    /// The page's offset in the memory file.
    pub fn offset(&self) -> u64 {
        self.range.offset
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        self.memory.free(self.range);
    }
}

/// Something that can be mapped: a file's page cache, or the memory of a shared anonymous
/// mapping. Pages are numbered from the start of the object.
pub trait MemoryObject: Send + Sync {
    /// The page at `index`, or `None` past the end of the object (an access there is
    /// `SIGBUS`).
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>>;

    /// How `/proc/PID/maps` names a mapping of it.
    fn name(&self) -> String;

    /// The pages among `count` from `first` that are at hand without I/O or allocation,
    /// with their indices: a fault maps them too (fault-around), as Linux maps the
    /// page-cache neighbours of a faulting page. The default: none.
    fn cached_pages(&self, _first: u64, _count: u64) -> Vec<(u64, Arc<Page>)> {
        Vec::new()
    }

    /// Writes modified pages back to where the object's data lives (`msync`, `fsync`).
    /// Memory-only objects have nowhere else to write: the default does nothing.
    fn sync(&self) -> SysResult<()> {
        Ok(())
    }

    /// The object itself, for a caller that looks for a kind of its own (`shmdt` finds
    /// the mappings of a System V segment). The default: not offered.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// The memory of a `MAP_SHARED | MAP_ANONYMOUS` mapping and of a System V shared memory
/// segment: zero pages allocated on first touch, shared by everyone who maps it.
pub struct AnonymousObject {
    memory: Arc<MemoryFile>,
    pages: Mutex<BTreeMap<u64, Arc<Page>>>,
    len: u64,
}

impl AnonymousObject {
    pub fn new(memory: &Arc<MemoryFile>, len: u64) -> Arc<Self> {
        Arc::new(Self {
            memory: Arc::clone(memory),
            pages: Mutex::new(BTreeMap::new()),
            len,
        })
    }

    /// How many of its pages have been touched (and so hold memory).
    pub fn resident_pages(&self) -> u64 {
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).len() as u64
    }
}

impl MemoryObject for AnonymousObject {
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>> {
        if index >= self.len.div_ceil(PAGE_SIZE) {
            return Ok(None);
        }
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(page) = pages.get(&index) {
            return Ok(Some(Arc::clone(page)));
        }
        let page = Page::new(&self.memory)?;
        pages.insert(index, Arc::clone(&page));
        Ok(Some(page))
    }

    fn name(&self) -> String {
        "/dev/zero (deleted)".to_string()
    }
}

/// What a VMA is, for `/proc/PID/maps` and for `brk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    Plain,
    Heap,
    Stack,
}

/// One mapping: a page-aligned range with uniform permissions and backing.
#[derive(Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub perms: Perms,
    /// What `mprotect` may raise `perms` to (a read-only file shared writably may not).
    pub max_perms: Perms,
    /// `MAP_SHARED`: writes go to the object; otherwise private copy-on-write.
    pub shared: bool,
    /// The object and the byte offset in it of `start`; `None` for private anonymous memory.
    pub object: Option<(Arc<dyn MemoryObject>, u64)>,
    pub growsdown: bool,
    pub dontfork: bool,
    pub kind: VmaKind,
}

impl Vma {
    /// An anonymous private mapping.
    pub fn anonymous(start: u64, end: u64, perms: Perms) -> Self {
        Self {
            start,
            end,
            perms,
            max_perms: Perms::all(),
            shared: false,
            object: None,
            growsdown: false,
            dontfork: false,
            kind: VmaKind::Plain,
        }
    }

    fn object_page_index(&self, page: u64) -> Option<(&Arc<dyn MemoryObject>, u64)> {
        self.object
            .as_ref()
            .map(|(obj, offset)| (obj, (offset + (page - self.start)) / PAGE_SIZE))
    }

    /// The VMA cut to `[start, end)`, keeping the object offset in step.
    fn slice(&self, start: u64, end: u64) -> Self {
        let mut vma = self.clone();
        if let Some((_, offset)) = &mut vma.object {
            *offset += start - self.start;
        }
        vma.start = start;
        vma.end = end;
        vma
    }
}

/// How an application page is backed.
#[derive(Clone)]
enum PageRef {
    /// A page of this address space's own (private anonymous, or a private copy of a
    /// file page). Shared with a forked relative while the `Arc` has other owners.
    Private(Arc<Page>),
    /// A page of a `MemoryObject` (or the zero page): written in place if the VMA is
    /// shared, copied on the first write if it is private.
    Object(Arc<Page>),
}

impl PageRef {
    fn page(&self) -> &Arc<Page> {
        match self {
            Self::Private(p) | Self::Object(p) => p,
        }
    }
}

/// An application page the Sentry has resolved.
#[derive(Clone)]
struct PageEntry {
    backing: PageRef,
    /// The permissions the platform currently maps it with, if it is mapped.
    mapped: Option<Perms>,
}

impl PageEntry {
    /// The page's memory-file offset if an `access` needs no change to the entry or to
    /// the platform's translation: the same answer `MemoryManager::resolve` gives
    /// without copying or mapping.
    fn settled(&self, vma_perms: Perms, shared: bool, access: Access) -> Option<u64> {
        let writable = match (&self.backing, shared) {
            (PageRef::Object(_), true) => true,
            (PageRef::Private(p), _) => Arc::strong_count(p) == 1,
            (PageRef::Object(_), false) => false,
        };
        if access == Access::Write && !writable {
            return None;
        }
        let perms = if writable {
            vma_perms
        } else {
            vma_perms - Perms::WRITE
        };
        match self.mapped {
            None => Some(self.backing.page().offset()),
            Some(m) if m == perms => Some(self.backing.page().offset()),
            Some(_) => None,
        }
    }
}

/// How many pages around a faulting page of a file mapping are mapped with it, if the
/// file's cache has them (Linux's `fault_around_bytes`, 64 KiB).
pub const FAULT_AROUND_PAGES: u64 = 16;

/// The smallest private anonymous mapping whose write faults fill their whole window
/// (see `MemoryManager::fault_ahead`).
pub const FAULT_AHEAD_MIN: u64 = 16 * PAGE_SIZE;

/// The part of `vma` in the aligned window of [`FAULT_AROUND_PAGES`] around `page`.
fn fault_window(vma: &Vma, page: u64) -> (u64, u64) {
    let window = FAULT_AROUND_PAGES * PAGE_SIZE;
    let aligned = page & !(window - 1);
    (
        aligned.max(vma.start),
        aligned.saturating_add(window).min(vma.end),
    )
}

/// Why an access failed: the signal the application gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `SIGSEGV` with `SEGV_MAPERR`: nothing mapped there.
    MapErr,
    /// `SIGSEGV` with `SEGV_ACCERR`: mapped, but not with this access.
    AccErr,
    /// `SIGBUS` with `BUS_ADRERR`: past the end of the mapped object.
    Bus,
    /// The Sentry ran out of memory serving the fault.
    OutOfMemory,
}

/// Flags of an `mmap` request that the memory manager acts on.
#[derive(Clone, Copy, Debug, Default)]
pub struct MapFlags {
    pub shared: bool,
    pub fixed: bool,
    pub fixed_noreplace: bool,
    pub populate: bool,
    pub growsdown: bool,
    /// `MAP_NORESERVE`: no commit check for a private writable mapping.
    pub noreserve: bool,
    /// What `mprotect` may raise the permissions to (`None`: anything). A shared mapping
    /// of a file opened read-only may never become writable.
    pub max_perms: Option<Perms>,
}

/// The most memory one private writable mapping may commit: the host's RAM and swap, as
/// Linux's heuristic overcommit (mode 0) refuses a single request larger than that.
fn commit_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let i = rustix::system::sysinfo();
        let unit = u64::from(i.mem_unit.max(1));
        (i.totalram + i.totalswap).saturating_mul(unit)
    })
}

/// `ENOMEM` for a request of `len` bytes that no amount of reclaim could back.
pub fn check_commit(len: u64) -> SysResult<()> {
    if len > commit_limit() {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// One application address space.
pub struct MemoryManager {
    memory: Arc<MemoryFile>,
    space: Arc<dyn AddressSpace>,
    inner: Mutex<Inner>,
    /// Set when a page could not be had because the sandbox's memory is used up, so
    /// that the caller (a syscall copying to or from application memory) can call in
    /// the OOM killer; see [`MemoryManager::take_out_of_memory`].
    out_of_memory: std::sync::atomic::AtomicBool,
    /// The `membarrier` commands registered for this address space (Linux keeps them
    /// per mm too, so an `execve` starts with none).
    pub membarrier_registered: std::sync::atomic::AtomicU32,
    /// Set once `pkey_free(0)` gave up the default protection key (the only key there
    /// is; see `syscalls::mm::pkey_alloc`). Copied by `fork`, as Linux copies the key
    /// map with the mm.
    pub default_pkey_freed: std::sync::atomic::AtomicBool,
}

struct Inner {
    vmas: BTreeMap<u64, Vma>,
    pages: BTreeMap<u64, PageEntry>,
    zero: Arc<Page>,
    /// `mmap` without a hint searches down from here.
    mmap_base: u64,
    /// One past the highest application address.
    user_end: u64,
    brk_start: u64,
    brk: u64,
}

impl MemoryManager {
    /// A manager for `space`, whose application addresses end at `user_end` (the
    /// platform's `max_user_address`, at most [`USER_END`]).
    pub fn new(
        memory: Arc<MemoryFile>,
        space: Arc<dyn AddressSpace>,
        user_end: u64,
    ) -> SysResult<Self> {
        let user_end = user_end.min(USER_END) & !(PAGE_SIZE - 1);
        let zero = Page::new(&memory)?;
        Ok(Self {
            memory,
            space,
            inner: Mutex::new(Inner {
                vmas: BTreeMap::new(),
                pages: BTreeMap::new(),
                zero,
                mmap_base: (user_end / 3 * 2) & !(PAGE_SIZE - 1),
                user_end,
                brk_start: 0,
                brk: 0,
            }),
            out_of_memory: std::sync::atomic::AtomicBool::new(false),
            membarrier_registered: std::sync::atomic::AtomicU32::new(0),
            default_pkey_freed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// One past the highest application address.
    pub fn user_end(&self) -> u64 {
        self.lock().user_end
    }

    /// The platform address space this manager drives.
    pub fn address_space(&self) -> &Arc<dyn AddressSpace> {
        &self.space
    }

    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.memory
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where `mmap` without a hint starts looking (the loader sets it below the stack).
    pub fn set_mmap_base(&self, base: UserAddr) {
        self.lock().mmap_base = base.page_down().get();
    }

    /// Marks the mapping that contains `addr` as the main thread's stack (`[stack]`).
    pub fn mark_stack(&self, addr: UserAddr) {
        let mut inner = self.lock();
        if let Some((_, vma)) = inner.vmas.range_mut(..=addr.get()).next_back() {
            if vma.end > addr.get() {
                vma.kind = VmaKind::Stack;
            }
        }
    }

    /// Sets the start of the heap (just past the loaded program's data).
    pub fn set_brk_start(&self, start: UserAddr) {
        let mut inner = self.lock();
        let start = start.page_up().map_or(inner.user_end, UserAddr::get);
        inner.brk_start = start;
        inner.brk = start;
    }

    /// Maps `len` bytes. `addr` is a hint, or the exact place with `flags.fixed`.
    pub fn mmap(
        &self,
        addr: UserAddr,
        len: u64,
        perms: Perms,
        flags: MapFlags,
        object: Option<(Arc<dyn MemoryObject>, u64)>,
    ) -> SysResult<UserAddr> {
        let len = len
            .checked_next_multiple_of(PAGE_SIZE)
            .filter(|&l| l != 0)
            .ok_or(Errno::ENOMEM)?;
        if flags.max_perms.is_some_and(|max| !max.contains(perms)) {
            return Err(Errno::EACCES);
        }
        if !flags.shared && !flags.noreserve && perms.contains(Perms::WRITE) {
            check_commit(len)?;
        }
        let mut inner = self.lock();
        if len > inner.user_end {
            return Err(Errno::ENOMEM);
        }
        let start = if flags.fixed || flags.fixed_noreplace {
            if !addr.is_page_aligned() {
                return Err(Errno::EINVAL);
            }
            if addr.get() < MMAP_MIN_ADDR || !inner.in_user(addr.get(), len) {
                return Err(if flags.fixed_noreplace {
                    Errno::EPERM
                } else {
                    Errno::ENOMEM
                });
            }
            if flags.fixed_noreplace && inner.overlaps(addr.get(), addr.get() + len) {
                return Err(Errno::EEXIST);
            }
            addr.get()
        } else {
            let hint = addr.page_down().get();
            if hint >= MMAP_MIN_ADDR
                && inner.in_user(hint, len)
                && !inner.overlaps(hint, hint + len)
            {
                hint
            } else {
                inner.find_free(len).ok_or(Errno::ENOMEM)?
            }
        };
        let end = start + len;
        self.remove_range(&mut inner, start, end)?;
        let mut vma = Vma::anonymous(start, end, perms);
        vma.max_perms = flags.max_perms.unwrap_or(Perms::all());
        vma.shared = flags.shared;
        vma.growsdown = flags.growsdown;
        vma.object = object;
        if vma.shared && vma.object.is_none() {
            vma.object = Some((AnonymousObject::new(&self.memory, len), 0));
        }
        inner.vmas.insert(start, vma);
        if flags.populate {
            let access = if perms.contains(Perms::WRITE) {
                Access::Write
            } else {
                Access::Read
            };
            for i in 0..len / PAGE_SIZE {
                let page = start + i * PAGE_SIZE;
                // Populating is best effort, as on Linux: a page past the end of a file
                // stays unmapped and faults later.
                if self.fault_locked(&mut inner, page, access, true).is_err() {
                    break;
                }
            }
        }
        Ok(UserAddr::new(start))
    }

    /// Unmaps `[addr, addr + len)`.
    pub fn munmap(&self, addr: UserAddr, len: u64) -> SysResult<()> {
        let (start, end) = checked_range(addr, len)?;
        let mut inner = self.lock();
        self.remove_range(&mut inner, start, end)
    }

    /// Changes the permissions of `[addr, addr + len)`, which must be mapped throughout.
    pub fn mprotect(&self, addr: UserAddr, len: u64, perms: Perms) -> SysResult<()> {
        let (start, end) = checked_range(addr, len)?;
        if start == end {
            return Ok(());
        }
        let mut inner = self.lock();
        // Linux checks the whole range before changing any of it.
        let mut cursor = start;
        for vma in inner
            .vmas
            .range(..end)
            .map(|(_, v)| v)
            .filter(|v| v.end > start)
        {
            if vma.start > cursor {
                return Err(Errno::ENOMEM);
            }
            if !vma.max_perms.contains(perms) {
                return Err(Errno::EACCES);
            }
            cursor = vma.end;
        }
        if cursor < end {
            return Err(Errno::ENOMEM);
        }
        inner.split_at(start);
        inner.split_at(end);
        for (_, vma) in inner.vmas.range_mut(start..end) {
            vma.perms = perms;
        }
        // Drop the translations; the next access faults them back in with the new
        // permissions (and copy-on-write pages stay read-only).
        self.space
            .unmap(start, end - start)
            .map_err(|_| Errno::ENOMEM)?;
        for (_, entry) in inner.pages.range_mut(start..end) {
            entry.mapped = None;
        }
        Ok(())
    }

    /// `brk(2)`: moves the end of the heap, returning the new (or unchanged) end.
    pub fn brk(&self, addr: UserAddr) -> UserAddr {
        let mut inner = self.lock();
        let (start, old) = (inner.brk_start, inner.brk);
        let new = addr.get();
        if new < start || !addr.range_is_user(0) {
            return UserAddr::new(old);
        }
        let (Some(old_top), Some(new_top)) =
            (UserAddr::new(old).page_up(), UserAddr::new(new).page_up())
        else {
            return UserAddr::new(old);
        };
        let (old_top, new_top) = (old_top.get(), new_top.get());
        if new_top > old_top {
            // Linux keeps a page free between the break and the next mapping.
            if check_commit(new_top - old_top).is_err()
                || inner.overlaps(old_top, new_top.saturating_add(PAGE_SIZE))
            {
                return UserAddr::new(old);
            }
            let mut vma = Vma::anonymous(old_top, new_top, Perms::READ | Perms::WRITE);
            vma.kind = VmaKind::Heap;
            inner.vmas.insert(old_top, vma);
        } else if new_top < old_top && self.remove_range(&mut inner, new_top, old_top).is_err() {
            return UserAddr::new(old);
        }
        inner.brk = new;
        UserAddr::new(new)
    }

    /// Serves a page fault at `addr`: maps the page into the platform address space, or
    /// says which signal the application gets.
    pub fn handle_fault(&self, addr: UserAddr, access: Access) -> Result<(), Fault> {
        let mut inner = self.lock();
        let page = addr.page_down().get();
        self.fault_locked(&mut inner, page, access, true)?;
        if access == Access::Write {
            self.fault_ahead(&mut inner, page);
        } else {
            self.fault_around(&mut inner, page);
        }
        Ok(())
    }

    /// After a write fault at `page` of private anonymous memory, gives the untouched
    /// pages of its aligned window ([`FAULT_AROUND_PAGES`]) fresh pages too and maps them
    /// in one platform call, so that a program filling a buffer or a heap takes a fault
    /// per window, not per page (what transparent huge pages do for Linux, at a smaller
    /// scale). Only in mappings of at least [`FAULT_AHEAD_MIN`]: a small mapping keeps
    /// Linux's page-by-page residency (`mincore`). Best effort: no memory, no pages.
    fn fault_ahead(&self, inner: &mut Inner, page: u64) {
        let Some(vma) = inner.vma_containing(page) else {
            return;
        };
        if vma.object.is_some()
            || vma.shared
            || vma.end - vma.start < FAULT_AHEAD_MIN
            || !vma.perms.contains(Perms::READ | Perms::WRITE)
        {
            return;
        }
        let perms = vma.perms;
        let (start, end) = fault_window(vma, page);
        let missing: Vec<u64> = (start..end)
            .step_by(PAGE_BYTES)
            .filter(|a| !inner.pages.contains_key(a))
            .collect();
        if missing.is_empty() {
            return;
        }
        let Ok(fresh) = Page::contiguous(&self.memory, missing.len() as u64) else {
            return;
        };
        let pages = missing
            .into_iter()
            .zip(fresh.into_iter().map(PageRef::Private));
        self.map_neighbours(inner, pages, perms);
    }

    /// After a read or execute fault at `page` of a file mapping, maps the neighbours the
    /// file's cache already holds (an aligned window of [`FAULT_AROUND_PAGES`]) in one
    /// platform call, so that a program walking through its code and libraries takes a
    /// fault per window, not per page. Private mappings get them read-only (a write
    /// still faults, for the copy).
    fn fault_around(&self, inner: &mut Inner, page: u64) {
        let Some(vma) = inner.vma_containing(page) else {
            return;
        };
        let Some((object, object_offset)) = vma.object.clone() else {
            return;
        };
        let perms = if vma.shared {
            vma.perms
        } else {
            vma.perms - Perms::WRITE
        };
        if !perms.contains(Perms::READ) {
            return;
        }
        let (start, end) = fault_window(vma, page);
        let first = (object_offset + (start - vma.start)) / PAGE_SIZE;
        let pages: Vec<(u64, PageRef)> = object
            .cached_pages(first, (end - start) / PAGE_SIZE)
            .into_iter()
            .filter_map(|(index, p)| {
                let addr = start + index.checked_sub(first)? * PAGE_SIZE;
                let fresh = addr < end && addr != page && !inner.pages.contains_key(&addr);
                fresh.then_some((addr, PageRef::Object(p)))
            })
            .collect();
        self.map_neighbours(inner, pages, perms);
    }

    /// Records `pages` (address and backing, ascending) as mapped with `perms` and maps
    /// them in one platform call, runs that are contiguous in both the address space and
    /// the memory file as one range each. They are an optimisation: if the platform
    /// refuses, they are forgotten again (they fault in one by one later), leaving no
    /// translation the entries do not record.
    fn map_neighbours(
        &self,
        inner: &mut Inner,
        pages: impl IntoIterator<Item = (u64, PageRef)>,
        perms: Perms,
    ) {
        let mut ranges: Vec<platform::MapRange> = Vec::new();
        for (addr, backing) in pages {
            let offset = backing.page().offset();
            inner.pages.insert(
                addr,
                PageEntry {
                    backing,
                    mapped: Some(perms),
                },
            );
            match ranges.last_mut() {
                Some(r) if r.addr + r.len == addr && r.offset + r.len == offset => {
                    r.len += PAGE_SIZE;
                }
                _ => ranges.push(platform::MapRange {
                    addr,
                    len: PAGE_SIZE,
                    offset,
                    perms,
                }),
            }
        }
        if ranges.is_empty() || self.space.map_many(&ranges).is_ok() {
            return;
        }
        for r in &ranges {
            let _ = self.space.unmap(r.addr, r.len);
            for a in (r.addr..r.addr + r.len).step_by(PAGE_BYTES) {
                inner.pages.remove(&a);
            }
        }
    }

    /// Copies application memory at `addr` into `buf`.
    pub fn copy_in(&self, addr: UserAddr, buf: &mut [u8]) -> SysResult<()> {
        self.for_each_page(addr, buf.len() as u64, Access::Read, |offset, at, n| {
            self.memory
                .read(offset, &mut buf[at..at + n])
                .map_err(|_| Errno::EFAULT)
        })
    }

    /// Copies `buf` into application memory at `addr`.
    pub fn copy_out(&self, addr: UserAddr, buf: &[u8]) -> SysResult<()> {
        self.for_each_page(addr, buf.len() as u64, Access::Write, |offset, at, n| {
            self.memory
                .write(offset, &buf[at..at + n])
                .map_err(|_| Errno::EFAULT)
        })
    }

    /// Reads up to `len` bytes of the host descriptor `fd` at `fd_offset` into application
    /// memory at `addr`, page by page straight into the pages behind it (see
    /// [`MemoryFile::read_from`]), as `read(2)` of a host-backed file does. Returns the
    /// bytes read: short at the end of the file, or before the first page that cannot be
    /// written (`EFAULT` if that is the first).
    pub fn read_from_host(
        &self,
        addr: UserAddr,
        len: usize,
        fd: std::os::fd::BorrowedFd<'_>,
        fd_offset: u64,
    ) -> SysResult<usize> {
        /// Bytes read under one hold of the lock, so that a fault elsewhere waits little.
        const STEP: u64 = 1 << 20;
        if !addr.range_is_user(len as u64) {
            return Err(Errno::EFAULT);
        }
        let len = len as u64;
        let mut done = 0u64;
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        while done < len {
            let want = (len - done).min(STEP);
            ranges.clear();
            let mut covered = 0u64;
            let mut inner = self.lock();
            while covered < want {
                let at = addr.get() + done + covered;
                let page = at & !(PAGE_SIZE - 1);
                let n = (PAGE_SIZE - (at - page)).min(want - covered);
                if !inner.in_user(at, n) {
                    break;
                }
                let Ok(offset) = self.fault_locked(&mut inner, page, Access::Write, false) else {
                    break;
                };
                let offset = offset + (at - page);
                let full = ranges.len() == platform::memory_file::IOV_MAX;
                match ranges.last_mut() {
                    Some((start, l)) if *start + *l == offset => *l += n,
                    _ if full => break,
                    _ => ranges.push((offset, n)),
                }
                covered += n;
            }
            if covered == 0 && done == 0 {
                // The first page cannot be written.
                return Err(Errno::EFAULT);
            }
            if covered == 0 {
                break;
            }
            let n = match self.memory.read_from(fd, fd_offset + done, &ranges) {
                Ok(n) => n as u64,
                Err(e) if done == 0 => return Err(Errno::from(e)),
                Err(_) => break,
            };
            drop(inner);
            done += n;
            if n < want {
                break;
            }
        }
        usize::try_from(done).map_err(|_| Errno::EOVERFLOW)
    }

    /// Reads a `T` from application memory.
    pub fn read<T: zerocopy::FromBytes + zerocopy::IntoBytes>(
        &self,
        ptr: UserPtr<T>,
    ) -> SysResult<T> {
        let mut value = T::new_zeroed();
        self.copy_in(ptr.addr(), value.as_mut_bytes())?;
        Ok(value)
    }

    /// Writes a `T` to application memory.
    pub fn write<T: zerocopy::IntoBytes + zerocopy::Immutable>(
        &self,
        ptr: UserPtr<T>,
        value: &T,
    ) -> SysResult<()> {
        self.copy_out(ptr.addr(), value.as_bytes())
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL):
    /// `ENAMETOOLONG` if no NUL comes within `max` bytes, `EFAULT` on a bad address.
    pub fn read_c_string(&self, addr: UserAddr, max: usize) -> SysResult<Vec<u8>> {
        /// Bytes copied at a time: most paths fit in one copy, and a short string costs
        /// no copy (nor zeroed buffer) of the rest of its page.
        const CHUNK: usize = 256;
        let mut buf = [0u8; CHUNK];
        let mut out = Vec::new();
        let mut cursor = addr;
        while out.len() <= max {
            // Never past the end of the current page, so a string that ends just before
            // an unmapped page is still read.
            let page_end = cursor.page_down().checked_add(PAGE_SIZE)?;
            let to_page_end =
                usize::try_from(page_end.get() - cursor.get()).map_err(|_| Errno::EFAULT)?;
            let chunk = &mut buf[..to_page_end.min(CHUNK).min(max + 1 - out.len())];
            self.copy_in(cursor, chunk)?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(chunk);
            cursor = cursor.checked_add(chunk.len() as u64)?;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// A copy of this address space for `fork`, in `space`: private pages are shared
    /// copy-on-write, shared mappings stay shared, `MADV_DONTFORK` ranges are left out.
    pub fn fork(&self, space: Arc<dyn AddressSpace>) -> SysResult<Self> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let mut vmas = BTreeMap::new();
        let mut pages = BTreeMap::new();
        for vma in inner.vmas.values().filter(|v| !v.dontfork) {
            vmas.insert(vma.start, vma.clone());
            for (&addr, entry) in inner.pages.range(vma.start..vma.end) {
                pages.insert(
                    addr,
                    PageEntry {
                        backing: entry.backing.clone(),
                        mapped: None,
                    },
                );
            }
            if !vma.shared && vma.perms.contains(Perms::WRITE) {
                // The parent's writable private pages become copy-on-write too.
                let perms = vma.perms - Perms::WRITE;
                self.space
                    .protect(vma.start, vma.end - vma.start, perms)
                    .map_err(|_| Errno::ENOMEM)?;
                for (_, entry) in inner.pages.range_mut(vma.start..vma.end) {
                    entry.mapped = entry.mapped.map(|_| perms);
                }
            }
        }
        Ok(Self {
            memory: Arc::clone(&self.memory),
            space,
            inner: Mutex::new(Inner {
                vmas,
                pages,
                zero: Arc::clone(&inner.zero),
                mmap_base: inner.mmap_base,
                user_end: inner.user_end,
                brk_start: inner.brk_start,
                brk: inner.brk,
            }),
            out_of_memory: std::sync::atomic::AtomicBool::new(false),
            membarrier_registered: std::sync::atomic::AtomicU32::new(0),
            default_pkey_freed: std::sync::atomic::AtomicBool::new(
                self.default_pkey_freed
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
        })
    }

    /// The memory-file offset behind `addr` (faulting the page in for `access`, as a
    /// copy would), and whether the mapping there is shared: for futexes.
    pub fn translate(&self, addr: UserAddr, access: Access) -> SysResult<(u64, bool)> {
        if !addr.range_is_user(1) {
            return Err(Errno::EFAULT);
        }
        let mut inner = self.lock();
        if !inner.in_user(addr.get(), 1) {
            return Err(Errno::EFAULT);
        }
        let page = addr.page_down().get();
        let offset = self
            .fault_locked(&mut inner, page, access, false)
            .map_err(|_| Errno::EFAULT)?;
        let shared = inner.vma_containing(page).is_some_and(|v| v.shared);
        Ok((offset + (addr.get() - page), shared))
    }

    /// Whether a page was refused for want of memory since the last call (and clears it).
    pub fn take_out_of_memory(&self) -> bool {
        // Asked after every syscall: a plain load keeps the common answer off the bus.
        self.out_of_memory
            .load(std::sync::atomic::Ordering::Relaxed)
            && self
                .out_of_memory
                .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Pages the Sentry holds for this address space (`/proc/PID/statm`'s resident).
    pub fn resident_pages(&self) -> u64 {
        self.lock().pages.len() as u64
    }

    /// The VMAs, for `/proc/PID/maps`, `mincore` and tests.
    pub fn vmas(&self) -> Vec<Vma> {
        self.lock().vmas.values().cloned().collect()
    }

    /// Calls `f(file offset, offset in the caller's buffer, length)` for each piece of
    /// `[addr, addr + len)`, faulting each page in for `access` first.
    fn for_each_page(
        &self,
        addr: UserAddr,
        len: u64,
        access: Access,
        mut f: impl FnMut(u64, usize, usize) -> SysResult<()>,
    ) -> SysResult<()> {
        if len == 0 {
            return Ok(());
        }
        if !addr.range_is_user(len) {
            return Err(Errno::EFAULT);
        }
        let mut inner = self.lock();
        if !inner.in_user(addr.get(), len) {
            return Err(Errno::EFAULT);
        }
        let mut done = 0u64;
        while done < len {
            let at = addr.get() + done;
            let page = at & !(PAGE_SIZE - 1);
            let n = (PAGE_SIZE - (at - page)).min(len - done);
            let file_offset = self
                .fault_locked(&mut inner, page, access, false)
                .map_err(|_| Errno::EFAULT)?;
            let (Ok(buf_at), Ok(n_usize)) = (usize::try_from(done), usize::try_from(n)) else {
                return Err(Errno::EFAULT);
            };
            f(file_offset + (at - page), buf_at, n_usize)?;
            done += n;
        }
        Ok(())
    }

    /// Resolves the page at `page` for `access` and returns its memory-file offset. With
    /// `map`, the page is also mapped into the platform address space (a fault); without,
    /// only the Sentry touches it (a copy), but a translation the platform already has is
    /// kept true (after a copy-on-write it points at the new page).
    fn fault_locked(
        &self,
        inner: &mut Inner,
        page: u64,
        access: Access,
        map: bool,
    ) -> Result<u64, Fault> {
        let vma = inner.vma_for_fault(page)?;
        let allowed = match access {
            Access::Read => vma.perms.contains(Perms::READ),
            Access::Write => vma.perms.contains(Perms::WRITE),
            Access::Exec => vma.perms.contains(Perms::EXEC),
        };
        if !allowed {
            return Err(Fault::AccErr);
        }
        // The common case of a copy (`read(2)` into a buffer used before): the page is
        // there and `resolve` would change nothing. Skips the VMA clone and the map churn.
        let (perms, shared) = (vma.perms, vma.shared);
        if !map {
            if let Some(offset) = inner
                .pages
                .get(&page)
                .and_then(|e| e.settled(perms, shared, access))
            {
                return Ok(offset);
            }
        }
        let vma = inner.vma_for_fault(page)?.clone();
        let entry = match inner.pages.remove(&page) {
            Some(e) => e,
            None => {
                let backing = match vma.object_page_index(page) {
                    Some((obj, index)) => match obj.page(index) {
                        Ok(Some(p)) => PageRef::Object(p),
                        Ok(None) => return Err(Fault::Bus),
                        Err(_) => {
                            self.out_of_memory
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                            return Err(Fault::OutOfMemory);
                        }
                    },
                    None => PageRef::Object(Arc::clone(&inner.zero)),
                };
                PageEntry {
                    backing,
                    mapped: None,
                }
            }
        };
        let zero = Arc::clone(&inner.zero);
        let (entry, result) = self.resolve(entry, &vma, page, access, map, &zero);
        inner.pages.insert(page, entry);
        if result == Err(Fault::OutOfMemory) {
            self.out_of_memory
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// The page-level half of `fault_locked`: takes the page's entry (out of the map, so
    /// that its `Arc` count says exactly how many address spaces share it) and returns the
    /// entry to put back, changed or not.
    fn resolve(
        &self,
        entry: PageEntry,
        vma: &Vma,
        page: u64,
        access: Access,
        map: bool,
        zero: &Arc<Page>,
    ) -> (PageEntry, Result<u64, Fault>) {
        let write = access == Access::Write;
        let (backing, writable) = match (&entry.backing, vma.shared) {
            (PageRef::Object(p), true) => (PageRef::Object(Arc::clone(p)), true),
            (PageRef::Private(p), _) if Arc::strong_count(p) == 1 => {
                (PageRef::Private(Arc::clone(p)), true)
            }
            (current, false) | (current @ PageRef::Private(_), true) if write => {
                // A first write to anonymous memory: a fresh page is zero already, so
                // there is nothing to copy from the zero page.
                let copied = if Arc::ptr_eq(current.page(), zero) {
                    Page::new(&self.memory)
                } else {
                    current.page().duplicate()
                };
                match copied {
                    Ok(copy) => (PageRef::Private(copy), true),
                    Err(_) => return (entry, Err(Fault::OutOfMemory)),
                }
            }
            (current, _) => (current.clone(), false),
        };
        let replaced = !Arc::ptr_eq(backing.page(), entry.backing.page());
        let perms = if writable {
            vma.perms
        } else {
            vma.perms - Perms::WRITE
        };
        let mut mapped = entry.mapped;
        if map || (mapped.is_some() && (replaced || mapped != Some(perms))) {
            if self
                .space
                .map(page, PAGE_SIZE, backing.page().offset(), perms)
                .is_err()
            {
                return (entry, Err(Fault::OutOfMemory));
            }
            mapped = Some(perms);
        }
        let offset = backing.page().offset();
        drop(entry);
        (PageEntry { backing, mapped }, Ok(offset))
    }

    fn remove_range(&self, inner: &mut Inner, start: u64, end: u64) -> SysResult<()> {
        if start >= end {
            return Ok(());
        }
        inner.split_at(start);
        inner.split_at(end);
        let doomed: Vec<u64> = inner.vmas.range(start..end).map(|(&s, _)| s).collect();
        for s in doomed {
            inner.vmas.remove(&s);
        }
        let pages: Vec<u64> = inner.pages.range(start..end).map(|(&a, _)| a).collect();
        for a in pages {
            inner.pages.remove(&a);
        }
        self.space
            .unmap(start, end - start)
            .map_err(|_| Errno::ENOMEM)
    }
}

impl Inner {
    fn in_user(&self, addr: u64, len: u64) -> bool {
        addr.checked_add(len)
            .is_some_and(|end| end <= self.user_end)
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.vmas
            .range(..end)
            .next_back()
            .is_some_and(|(_, v)| v.end > start)
    }

    /// The VMA holding `addr`, if any.
    fn vma_containing(&self, addr: u64) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.end > addr)
    }

    /// The VMA holding `page`, growing a `MAP_GROWSDOWN` VMA just above it if needed.
    fn vma_for_fault(&mut self, page: u64) -> Result<&Vma, Fault> {
        let found = self
            .vmas
            .range(..=page)
            .next_back()
            .filter(|(_, v)| v.end > page)
            .map(|(&s, _)| s);
        if let Some(start) = found {
            return self.vmas.get(&start).ok_or(Fault::MapErr);
        }
        // A stack grows down into the page below it (Linux also keeps a guard gap; the
        // rlimit check comes with the rlimits).
        let above = self
            .vmas
            .range(page..)
            .next()
            .map(|(&s, v)| (s, v.growsdown));
        match above {
            Some((start, true)) if start - page <= 256 * PAGE_SIZE => {
                let mut vma = self.vmas.remove(&start).ok_or(Fault::MapErr)?;
                vma.start = page;
                self.vmas.insert(page, vma);
                self.vmas.get(&page).ok_or(Fault::MapErr)
            }
            _ => Err(Fault::MapErr),
        }
    }

    /// Makes `addr` a VMA boundary (splitting the VMA that spans it).
    fn split_at(&mut self, addr: u64) {
        let Some((&start, vma)) = self.vmas.range(..addr).next_back() else {
            return;
        };
        if vma.end <= addr {
            return;
        }
        let (low, high) = (vma.slice(start, addr), vma.slice(addr, vma.end));
        self.vmas.insert(start, low);
        self.vmas.insert(addr, high);
    }

    /// The highest free range of `len` bytes below `mmap_base`.
    fn find_free(&self, len: u64) -> Option<u64> {
        let mut gap_end = self.mmap_base;
        for vma in self.vmas.values().rev() {
            if vma.start >= gap_end {
                continue;
            }
            if gap_end.saturating_sub(vma.end) >= len && vma.end <= gap_end {
                return Some(gap_end - len);
            }
            gap_end = gap_end.min(vma.start);
        }
        (gap_end >= MMAP_MIN_ADDR + len).then(|| gap_end - len)
    }
}

fn checked_range(addr: UserAddr, len: u64) -> SysResult<(u64, u64)> {
    if !addr.is_page_aligned() {
        return Err(Errno::EINVAL);
    }
    let len = len
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(Errno::EINVAL)?;
    if !addr.range_is_user(len) {
        return Err(Errno::EINVAL);
    }
    Ok((addr.get(), addr.get() + len))
}

#[cfg(test)]
mod tests;
