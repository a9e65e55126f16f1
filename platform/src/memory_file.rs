//! The one memfd that backs all application memory and page tables.
//!
//! The Sentry maps the whole file once (`MAP_SHARED | MAP_NORESERVE`) and reads and writes
//! application memory through that mapping; the platforms map ranges of it into
//! application address spaces (as KVM guest-physical memory, or into a systrap stub). Space
//! is handed out in page-granular [`FileRange`]s by a first-fit allocator; freed ranges are
//! punched out of the file, so they give their memory back to the host and read as zero
//! when allocated again.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

/// The most ranges one `read_from` takes (Linux's `UIO_MAXIOV`).
pub const IOV_MAX: usize = 1024;

pub const PAGE_SIZE: u64 = 4096;

/// Errors of the memory file.
#[derive(Debug, thiserror::Error)]
pub enum MemoryFileError {
    #[error("Creating the memory file failed")]
    Create(#[source] std::io::Error),
    #[error("Sizing the memory file to {size:#x} bytes failed")]
    Resize {
        size: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("Mapping the memory file into the Sentry failed")]
    Map(#[source] std::io::Error),
    #[error("The memory file is full ({requested:#x} bytes requested)")]
    OutOfMemory { requested: u64 },
    #[error("Range {offset:#x}+{len:#x} lies outside the memory file or is misaligned")]
    OutOfRange { offset: u64, len: u64 },
}

/// A page-aligned range of the memory file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileRange {
    pub offset: u64,
    pub len: u64,
}

impl FileRange {
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// The memory file. Safe to share between threads: its allocator is locked, and reads and
/// writes of its contents are copies through raw pointers into a mapping that lives as long
/// as the file (the application may change the same bytes concurrently; a copy then sees
/// some mix of old and new bytes, as a read of shared memory on Linux does).
pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    size: u64,
    /// `size` as the host's mapping length.
    len: usize,
    allocator: Mutex<Allocator>,
    /// The most that may be allocated at once (the container's memory limit; the file's
    /// size when there is none).
    limit: AtomicU64,
    /// Freed ranges whose memory is not yet given back to the host, nor to the allocator:
    /// punched together once they add up to [`PUNCH_BATCH`] (or an allocation needs them),
    /// in as few calls as their contiguity allows, rather than one `fallocate` per page.
    freed: Mutex<Freed>,
}

#[derive(Default)]
struct Freed {
    ranges: Vec<(u64, u64)>,
    bytes: u64,
}

/// How many freed bytes wait for their hole punch (a process's exit frees page by page).
const PUNCH_BATCH: u64 = 1 << 20;

// SAFETY: `base` points into a shared mapping owned by this struct for its whole life; all
// access through it is bounds-checked copies, which are sound from any thread.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; the allocator state is behind a Mutex.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    /// Creates a memory file of `size` bytes (sparse: memory is only used when touched).
    pub fn new(size: u64) -> Result<Self, MemoryFileError> {
        let size = size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        let len = usize::try_from(size).map_err(|_| MemoryFileError::OutOfRange {
            offset: 0,
            len: size,
        })?;
        // SAFETY: the name is a NUL-terminated string; the flags are valid.
        let raw = unsafe { libc::memfd_create(c"bulwark-memory".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(MemoryFileError::Create(std::io::Error::last_os_error()));
        }
        // SAFETY: memfd_create just returned this descriptor, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let file_len = libc::off_t::try_from(size).map_err(|_| MemoryFileError::OutOfRange {
            offset: 0,
            len: size,
        })?;
        // SAFETY: `fd` is a valid memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), file_len) } != 0 {
            return Err(MemoryFileError::Resize {
                size,
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: a fresh shared mapping of a file we own; the kernel picks the address.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(MemoryFileError::Map(std::io::Error::last_os_error()));
        }
        Ok(Self {
            fd,
            base: base.cast::<u8>(),
            size,
            len,
            allocator: Mutex::new(Allocator::new(size)),
            limit: AtomicU64::new(size),
            freed: Mutex::default(),
        })
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Caps what may be allocated at once at `bytes` (rounded down to whole pages, and
    /// never above the file's size): the container's memory limit, which the sandbox then
    /// sees as its total memory and cannot go beyond.
    pub fn set_limit(&self, bytes: u64) {
        let limit = (bytes / PAGE_SIZE * PAGE_SIZE).min(self.size);
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// The memory the sandbox has: the limit if one was set, else the file's size.
    pub fn total(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// The memfd, for the platforms to map.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Allocates `len` bytes (rounded up to whole pages) of zeroed memory.
    pub fn allocate(&self, len: u64) -> Result<FileRange, MemoryFileError> {
        self.try_allocate(len).or_else(|_| {
            // Memory freed but not yet punched may be what is missing.
            self.release_freed();
            self.try_allocate(len)
        })
    }

    fn try_allocate(&self, len: u64) -> Result<FileRange, MemoryFileError> {
        let len = len
            .checked_next_multiple_of(PAGE_SIZE)
            .filter(|&l| l != 0)
            .ok_or(MemoryFileError::OutOfMemory { requested: len })?;
        let mut allocator = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        if allocator.allocated.saturating_add(len) > self.total() {
            return Err(MemoryFileError::OutOfMemory { requested: len });
        }
        let offset = allocator
            .allocate(len)
            .ok_or(MemoryFileError::OutOfMemory { requested: len })?;
        Ok(FileRange { offset, len })
    }

    /// Returns `range` to the allocator and its memory to the host (batched: see
    /// `freed`). No one gets the range again before its memory is punched, so a new owner
    /// never sees the old one's bytes.
    pub fn free(&self, range: FileRange) {
        if self.check(range.offset, range.len).is_err() || !range.offset.is_multiple_of(PAGE_SIZE) {
            log::error!("MemoryFile::free of a bad range {range:?}");
            return;
        }
        let batch = {
            let mut freed = self.freed.lock().unwrap_or_else(|e| e.into_inner());
            freed.ranges.push((range.offset, range.len));
            freed.bytes += range.len;
            (freed.bytes >= PUNCH_BATCH).then(|| std::mem::take(&mut *freed))
        };
        if let Some(batch) = batch {
            self.punch_and_release(batch);
        }
    }

    /// Punches and gives back every range freed so far.
    pub fn release_freed(&self) {
        let batch = std::mem::take(&mut *self.freed.lock().unwrap_or_else(|e| e.into_inner()));
        self.punch_and_release(batch);
    }

    fn punch_and_release(&self, mut batch: Freed) {
        if batch.ranges.is_empty() {
            return;
        }
        batch.ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(batch.ranges.len());
        for (offset, len) in batch.ranges {
            match merged.last_mut() {
                Some((o, l)) if *o + *l == offset => *l += len,
                _ => merged.push((offset, len)),
            }
        }
        for &(offset, len) in &merged {
            self.punch(offset, len);
        }
        let mut allocator = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
        for (offset, len) in merged {
            allocator.free(offset, len);
        }
    }

    /// Bytes currently allocated.
    pub fn allocated(&self) -> u64 {
        // Freed memory waiting for its punch belongs to no one any more.
        let waiting = self.freed.lock().unwrap_or_else(|e| e.into_inner()).bytes;
        self.allocator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocated
            .saturating_sub(waiting)
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemoryFileError> {
        let src = self.ptr(offset, buf.len() as u64)?;
        // SAFETY: `ptr` checked that the range lies inside the mapping; `buf` is a distinct
        // Rust allocation, so the two cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Reads from the host descriptor `fd` at `fd_offset` straight into the memory-file
    /// `ranges` (offset, length), in order, with one `preadv`: the bytes are copied once,
    /// by the host kernel, where a read into a buffer and a copy would copy them twice.
    /// Returns the bytes read, short at the end of the host file. At most `IOV_MAX`
    /// ranges.
    pub fn read_from(
        &self,
        fd: BorrowedFd<'_>,
        fd_offset: u64,
        ranges: &[(u64, u64)],
    ) -> Result<usize, std::io::Error> {
        if ranges.len() > IOV_MAX {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut iov = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges {
            let base = self
                .ptr(offset, len)
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EFAULT))?;
            iov.push(libc::iovec {
                iov_base: base.cast(),
                iov_len: self.host_len(len),
            });
        }
        let off = libc::off_t::try_from(fd_offset)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        let count = libc::c_int::try_from(iov.len()).unwrap_or(0);
        // SAFETY: every iovec was checked by `ptr` to lie inside the mapping, which lives
        // as long as `self`; the kernel writes only there (the same bytes `write` may
        // copy to: application memory has no Rust references into it). `iov` outlives
        // the call.
        let n = unsafe { libc::preadv(fd.as_raw_fd(), iov.as_ptr(), count, off) };
        usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
    }

    /// Copies `buf` to `offset`.
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<(), MemoryFileError> {
        let dst = self.ptr(offset, buf.len() as u64)?;
        // SAFETY: as in `read`.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
        Ok(())
    }

    /// Sets `len` bytes at `offset` to zero.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), MemoryFileError> {
        let dst = self.ptr(offset, len)?;
        // SAFETY: `ptr` checked the range, so `len` is at most the mapping's length.
        unsafe { std::ptr::write_bytes(dst, 0, self.host_len(len)) };
        Ok(())
    }

    /// Copies `len` bytes from `src` to `dst` within the file (the ranges may overlap).
    pub fn copy(&self, src: u64, dst: u64, len: u64) -> Result<(), MemoryFileError> {
        let from = self.ptr(src, len)?;
        let to = self.ptr(dst, len)?;
        // SAFETY: both ranges were checked; `copy` allows overlap.
        unsafe { std::ptr::copy(from, to, self.host_len(len)) };
        Ok(())
    }

    /// The 8-byte word at `offset` (which must be 8-aligned), for page-table entries and
    /// other words shared with running code.
    pub fn atomic_u64(&self, offset: u64) -> Result<&AtomicU64, MemoryFileError> {
        if !offset.is_multiple_of(8) {
            return Err(MemoryFileError::OutOfRange { offset, len: 8 });
        }
        let ptr = self.ptr(offset, 8)?;
        // SAFETY: the pointer is 8-aligned (the mapping is page-aligned and `offset` is a
        // multiple of 8), inside the mapping, which lives as long as `self`; AtomicU64 has
        // the layout of u64 and any bit pattern is valid.
        Ok(unsafe { &*ptr.cast::<AtomicU64>() })
    }

    /// The 4-byte word at `offset` (which must be 4-aligned), for futexes.
    pub fn atomic_u32(&self, offset: u64) -> Result<&AtomicU32, MemoryFileError> {
        if !offset.is_multiple_of(4) {
            return Err(MemoryFileError::OutOfRange { offset, len: 4 });
        }
        let ptr = self.ptr(offset, 4)?;
        // SAFETY: the pointer is 4-aligned (the mapping is page-aligned and `offset` is a
        // multiple of 4), inside the mapping, which lives as long as `self`; AtomicU32 has
        // the layout of u32 and any bit pattern is valid.
        Ok(unsafe { &*ptr.cast::<AtomicU32>() })
    }

    /// Reads the 8-byte word at `offset`.
    pub fn read_u64(&self, offset: u64) -> Result<u64, MemoryFileError> {
        Ok(self.atomic_u64(offset)?.load(Ordering::Acquire))
    }

    /// Writes the 8-byte word at `offset`.
    pub fn write_u64(&self, offset: u64, value: u64) -> Result<(), MemoryFileError> {
        self.atomic_u64(offset)?.store(value, Ordering::Release);
        Ok(())
    }

    /// The Sentry's address of `offset`, after checking that `len` bytes from there lie in
    /// the file. For the platforms, which hand it to the host (KVM memory slots, I/O).
    pub(crate) fn ptr(&self, offset: u64, len: u64) -> Result<*mut u8, MemoryFileError> {
        self.check(offset, len)?;
        // SAFETY: `check` proved offset + len <= size, and the mapping is `size` bytes.
        Ok(unsafe { self.base.add(self.host_len(offset)) })
    }

    /// A length or offset already checked against `size` (so at most `self.len`), as usize.
    fn host_len(&self, checked: u64) -> usize {
        usize::try_from(checked).unwrap_or(self.len)
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), MemoryFileError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(MemoryFileError::OutOfRange { offset, len }),
        }
    }

    fn punch(&self, offset: u64, len: u64) {
        // Both values are at most `size`, which fits in off_t (checked in `new`).
        let (Ok(off), Ok(l)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return;
        };
        // SAFETY: fallocate on our own memfd; the range is inside the file.
        let rc = unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                l,
            )
        };
        if rc != 0 {
            // Without the punch the pages keep their contents: zero them instead, so the
            // next owner never sees the previous one's data.
            log::warn!(
                "punching the memory file failed: {}",
                std::io::Error::last_os_error()
            );
            let _ = self.zero(offset, len);
        }
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: `base` and `size` describe the mapping made in `new`, and no reference
        // into it outlives `self`.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

impl std::fmt::Debug for MemoryFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryFile")
            .field("fd", &self.fd)
            .field("size", &self.size)
            .finish()
    }
}

/// First-fit allocator over free extents, coalescing on free.
struct Allocator {
    /// Free extents: start → length.
    free: BTreeMap<u64, u64>,
    allocated: u64,
}

impl Allocator {
    fn new(size: u64) -> Self {
        let mut free = BTreeMap::new();
        if size > 0 {
            free.insert(0, size);
        }
        Self { free, allocated: 0 }
    }

    fn allocate(&mut self, len: u64) -> Option<u64> {
        let (&start, &extent) = self.free.iter().find(|(_, &l)| l >= len)?;
        self.free.remove(&start);
        if extent > len {
            self.free.insert(start + len, extent - len);
        }
        self.allocated += len;
        Some(start)
    }

    fn free(&mut self, mut start: u64, mut len: u64) {
        self.allocated = self.allocated.saturating_sub(len);
        if let Some((&prev, &prev_len)) = self.free.range(..start).next_back() {
            if prev + prev_len == start {
                self.free.remove(&prev);
                start = prev;
                len += prev_len;
            }
        }
        if let Some(next_len) = self.free.remove(&(start + len)) {
            len += next_len;
        }
        self.free.insert(start, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_free_coalesce() {
        let mf = MemoryFile::new(16 * PAGE_SIZE).unwrap();
        let a = mf.allocate(1).unwrap();
        let b = mf.allocate(2 * PAGE_SIZE).unwrap();
        let c = mf.allocate(PAGE_SIZE).unwrap();
        assert_eq!((a.len, b.len), (PAGE_SIZE, 2 * PAGE_SIZE));
        assert_eq!(mf.allocated(), 4 * PAGE_SIZE);
        mf.free(a);
        mf.free(b);
        mf.release_freed();
        // a and b coalesced: a 3-page request fits where they were.
        assert_eq!(mf.allocate(3 * PAGE_SIZE).unwrap().offset, a.offset);
        mf.free(c);
        assert!(mf.allocate(64 * PAGE_SIZE).is_err());
    }

    #[test]
    fn the_limit_caps_allocation_and_is_the_total() {
        let mf = MemoryFile::new(16 * PAGE_SIZE).unwrap();
        assert_eq!(mf.total(), 16 * PAGE_SIZE);
        mf.set_limit(4 * PAGE_SIZE + 1);
        assert_eq!(mf.total(), 4 * PAGE_SIZE);
        let a = mf.allocate(3 * PAGE_SIZE).unwrap();
        assert!(mf.allocate(2 * PAGE_SIZE).is_err());
        mf.free(a);
        assert!(mf.allocate(4 * PAGE_SIZE).is_ok());
        mf.set_limit(u64::MAX);
        assert_eq!(mf.total(), 16 * PAGE_SIZE);
    }

    #[test]
    fn freed_memory_reads_zero_when_reallocated() {
        let mf = MemoryFile::new(4 * PAGE_SIZE).unwrap();
        let all: Vec<FileRange> = (0..4).map(|_| mf.allocate(PAGE_SIZE).unwrap()).collect();
        for r in &all {
            mf.write(r.offset + 100, b"secret").unwrap();
        }
        let r = all[2];
        mf.free(r);
        // The file is full but for the freed page, whose punch waits: the allocation
        // punches it and gets it.
        let r2 = mf.allocate(PAGE_SIZE).unwrap();
        assert_eq!(r2.offset, r.offset);
        let mut buf = [0xffu8; 6];
        mf.read(r2.offset + 100, &mut buf).unwrap();
        assert_eq!(buf, [0; 6]);
    }

    #[test]
    fn frees_are_punched_in_batches_and_merged() {
        let mf = MemoryFile::new(1024 * PAGE_SIZE).unwrap();
        let pages: Vec<FileRange> = (0..300).map(|_| mf.allocate(PAGE_SIZE).unwrap()).collect();
        for p in &pages {
            mf.write(p.offset, b"x").unwrap();
        }
        for p in &pages[..200] {
            mf.free(*p);
        }
        // Under the batch size: not reusable yet, but no one's either.
        assert_eq!(mf.allocated(), 100 * PAGE_SIZE);
        for p in &pages[200..] {
            mf.free(*p);
        }
        assert_eq!(mf.allocated(), 0);
        mf.release_freed();
        let again = mf.allocate(300 * PAGE_SIZE).unwrap();
        let mut b = [1u8; 1];
        for i in 0..300 {
            mf.read(again.offset + i * PAGE_SIZE, &mut b).unwrap();
            assert_eq!(b, [0], "page {i}");
        }
    }

    #[test]
    fn bounds_are_checked() {
        let mf = MemoryFile::new(PAGE_SIZE).unwrap();
        let mut buf = [0u8; 2];
        assert!(mf.read(PAGE_SIZE - 1, &mut buf).is_err());
        assert!(mf.write(u64::MAX, &buf).is_err());
        assert!(mf.atomic_u64(4).is_err());
        mf.write_u64(8, 0x1122).unwrap();
        assert_eq!(mf.read_u64(8).unwrap(), 0x1122);
    }
}
