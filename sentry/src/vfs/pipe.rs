//! Pipes: a 64 KiB buffer between a read end and a write end, with `PIPE_BUF` atomicity,
//! `O_NONBLOCK` and `EPIPE`.
//!
//! Reads and writes never wait here: they return `EAGAIN`, and a blocking caller waits
//! on the pipe's wait queue in the syscall layer, where a signal interrupts it. (A FIFO's
//! blocking open still waits on a condition variable, uninterruptibly.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::fasync::{AsyncList, Fasync, Reason};
use super::file::{FileDescription, O_NONBLOCK, O_RDONLY, O_WRONLY, POLLIN, POLLOUT};
use super::{Stat, Time, S_IFIFO};
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;

/// Linux's default pipe capacity.
pub const PIPE_CAPACITY: usize = 64 * 1024;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;
/// Linux's default `/proc/sys/fs/pipe-max-size`.
pub const PIPE_MAX_SIZE: usize = 1 << 20;

/// A new end of an existing pipe with `flags`' access mode, never waiting for the other
/// side (reopening through `/proc/self/fd`).
fn reopen_end(pipe: &Arc<Pipe>, flags: i32, path: Option<super::Path>) -> SysResult<Arc<PipeEnd>> {
    let acc = flags & super::file::O_ACCMODE;
    let (reader, writer) = match acc {
        O_RDONLY => (true, false),
        O_WRONLY => (false, true),
        _ => (true, true),
    };
    let mut s = pipe.lock();
    if reader {
        s.readers += 1;
        s.read_opens += 1;
    }
    if writer {
        s.writers += 1;
        s.write_opens += 1;
    }
    drop(s);
    pipe.notify();
    Ok(Arc::new(PipeEnd {
        pipe: Arc::clone(pipe),
        reader,
        writer,
        flags: AtomicI32::new(acc | (flags & O_NONBLOCK)),
        path,
    }))
}

static NEXT_INO: AtomicU64 = AtomicU64::new(1);
const PIPEFS_DEV: u64 = 0xc;

struct State {
    buf: VecDeque<u8>,
    /// `F_SETPIPE_SZ`: 64 KiB unless changed.
    capacity: usize,
    readers: usize,
    writers: usize,
    /// How many read and write opens there have been (a FIFO's blocking open waits for
    /// the other side's count to move).
    read_opens: u64,
    write_opens: u64,
}

impl State {
    /// Whether a writer could write `PIPE_BUF` bytes (or a smaller pipe's all) at once:
    /// what `POLLOUT` reports.
    fn writable(&self) -> bool {
        self.capacity.saturating_sub(self.buf.len()) >= PIPE_BUF.min(self.capacity)
    }
}

pub struct Pipe {
    ino: u64,
    state: Mutex<State>,
    moved: Condvar,
    queue: WaitQueue,
    /// The read and write ends with `O_ASYNC` set: a write signals the readers, a read
    /// the writers, a close both (Linux does so on every attempt, even one that gets
    /// `EAGAIN`).
    async_readers: AsyncList,
    async_writers: AsyncList,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.moved.wait(g).unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes everyone waiting for the pipe to move.
    fn notify(&self) {
        self.moved.notify_all();
        self.queue.notify_all();
    }

    /// Wakes everyone, announcing `mask` to edge-triggered watchers: Linux wakes the
    /// readers with `EPOLLIN` on a write and the writers with `EPOLLOUT` on a read.
    fn notify_events(&self, mask: u32) {
        self.moved.notify_all();
        self.queue.notify(mask);
    }
}

/// One end of a pipe (both ends for a FIFO opened `O_RDWR`).
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    reader: bool,
    writer: bool,
    flags: AtomicI32,
    /// Where a FIFO was opened.
    path: Option<super::Path>,
}

impl Pipe {
    /// The buffer behind a FIFO, with no ends open yet.
    pub fn new_fifo() -> Arc<Self> {
        Arc::new(Self {
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State {
                buf: VecDeque::new(),
                capacity: PIPE_CAPACITY,
                readers: 0,
                writers: 0,
                read_opens: 0,
                write_opens: 0,
            }),
            moved: Condvar::new(),
            queue: WaitQueue::default(),
            async_readers: AsyncList::default(),
            async_writers: AsyncList::default(),
        })
    }
}

/// Opens a FIFO as `open(2)` does: a reader waits for a writer and a writer for a reader
/// unless `O_NONBLOCK` (then a lone writer gets `ENXIO`); `O_RDWR` never waits.
pub fn open_fifo(pipe: &Arc<Pipe>, flags: i32, path: super::Path) -> SysResult<Arc<PipeEnd>> {
    let acc = flags & super::file::O_ACCMODE;
    let (reader, writer) = match acc {
        O_RDONLY => (true, false),
        O_WRONLY => (false, true),
        _ => (true, true),
    };
    let nonblock = flags & O_NONBLOCK != 0;
    let mut s = pipe.lock();
    if writer && !reader && nonblock && s.readers == 0 {
        return Err(Errno::ENXIO);
    }
    if reader {
        s.readers += 1;
        s.read_opens += 1;
    }
    if writer {
        s.writers += 1;
        s.write_opens += 1;
    }
    pipe.notify();
    if !nonblock && reader != writer {
        let seen = if reader { s.write_opens } else { s.read_opens };
        loop {
            let (others, opens) = if reader {
                (s.writers, s.write_opens)
            } else {
                (s.readers, s.read_opens)
            };
            if others > 0 || opens != seen {
                break;
            }
            s = pipe.wait(s);
        }
    }
    drop(s);
    Ok(Arc::new(PipeEnd {
        pipe: Arc::clone(pipe),
        reader,
        writer,
        flags: AtomicI32::new(flags & !(super::file::O_CREAT | super::file::O_EXCL)),
        path: Some(path),
    }))
}

/// A new pipe: (read end, write end); `flags` may hold `O_NONBLOCK`.
pub fn pipe(flags: i32) -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let pipe = Arc::new(Pipe {
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        state: Mutex::new(State {
            buf: VecDeque::new(),
            capacity: PIPE_CAPACITY,
            readers: 1,
            writers: 1,
            read_opens: 1,
            write_opens: 1,
        }),
        moved: Condvar::new(),
        queue: WaitQueue::default(),
        async_readers: AsyncList::default(),
        async_writers: AsyncList::default(),
    });
    let nb = flags & O_NONBLOCK;
    let r = Arc::new(PipeEnd {
        pipe: Arc::clone(&pipe),
        reader: true,
        writer: false,
        flags: AtomicI32::new(O_RDONLY | nb),
        path: None,
    });
    let w = Arc::new(PipeEnd {
        pipe,
        reader: false,
        writer: true,
        flags: AtomicI32::new(O_WRONLY | nb),
        path: None,
    });
    (r, w)
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut s = self.pipe.lock();
        if self.writer {
            s.writers -= 1;
        }
        if self.reader {
            s.readers -= 1;
        }
        drop(s);
        self.pipe.notify();
        self.pipe.async_readers.kill(Reason::In);
        self.pipe.async_writers.kill(Reason::Out);
    }
}

impl PipeEnd {
    fn read_buf(&self, buf: &mut [u8]) -> SysResult<usize> {
        let mut s = self.pipe.lock();
        if s.buf.is_empty() {
            return if s.writers == 0 {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        let n = buf.len().min(s.buf.len());
        let was_writable = s.writable();
        for (dst, src) in buf.iter_mut().zip(s.buf.drain(..n)) {
            *dst = src;
        }
        // Writers hear of an event only when the pipe becomes writable (Linux wakes them
        // with EPOLLOUT when a read empties a slot of a full pipe).
        let mask = if !was_writable && s.writable() {
            u32::from(POLLOUT)
        } else {
            0
        };
        drop(s);
        self.pipe.notify_events(mask);
        Ok(n)
    }

    fn write_buf(&self, buf: &[u8]) -> SysResult<usize> {
        let mut s = self.pipe.lock();
        if s.readers == 0 {
            // The caller sends SIGPIPE with EPIPE.
            return Err(Errno::EPIPE);
        }
        let space = s.capacity.saturating_sub(s.buf.len());
        // A write of at most PIPE_BUF bytes goes in whole or not at all.
        let fits = if buf.len() <= PIPE_BUF {
            space >= buf.len()
        } else {
            space > 0
        };
        if !fits {
            return Err(Errno::EAGAIN);
        }
        let n = buf.len().min(space);
        s.buf.extend(&buf[..n]);
        drop(s);
        self.pipe.notify_events(u32::from(POLLIN));
        Ok(n)
    }
}

impl FileDescription for PipeEnd {
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        if !self.reader {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.read_buf(buf);
        self.pipe.async_writers.kill(Reason::Out);
        r
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        if !self.writer {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let r = self.write_buf(buf);
        self.pipe.async_readers.kill(Reason::In);
        r
    }

    fn set_async(&self, who: &Arc<Fasync>, fd: i32, on: bool) {
        if self.reader {
            self.pipe.async_readers.set(who, fd, on);
        }
        if self.writer {
            self.pipe.async_writers.set(who, fd, on);
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        if let Some(p) = &self.path {
            return p.inode().stat();
        }
        let t = Time::now();
        Ok(Stat {
            dev: PIPEFS_DEV,
            ino: self.pipe.ino,
            nlink: 1,
            mode: S_IFIFO | 0o600,
            blksize: 4096,
            atime: t.sec,
            mtime: t.sec,
            ctime: t.sec,
            ..Stat::default()
        })
    }

    fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }

    fn path(&self) -> Option<&super::Path> {
        self.path.as_ref()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.queue)
    }

    fn readiness(&self) -> u16 {
        use super::file::{POLLERR, POLLHUP};
        let s = self.pipe.lock();
        let mut r = 0;
        if self.reader {
            if !s.buf.is_empty() {
                r |= POLLIN;
            }
            if s.writers == 0 {
                r |= POLLHUP;
            }
        }
        if self.writer {
            if s.readers == 0 {
                r |= POLLERR;
            } else if s.writable() {
                r |= POLLOUT;
            }
        }
        r
    }

    fn peek(&self, buf: &mut [u8]) -> SysResult<usize> {
        if !self.reader {
            return Err(Errno::EBADF);
        }
        let s = self.pipe.lock();
        if s.buf.is_empty() {
            return if s.writers == 0 {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        let n = buf.len().min(s.buf.len());
        for (dst, src) in buf.iter_mut().zip(s.buf.iter()) {
            *dst = *src;
        }
        Ok(n)
    }

    fn pipe_size(&self) -> SysResult<usize> {
        Ok(self.pipe.lock().capacity)
    }

    fn set_pipe_size(&self, size: usize) -> SysResult<usize> {
        // At least a page, a power of two; more than pipe-max-size needs a privilege
        // the sandbox does not grant.
        let size = size
            .max(4096)
            .checked_next_power_of_two()
            .ok_or(Errno::EPERM)?;
        if size > PIPE_MAX_SIZE {
            return Err(Errno::EPERM);
        }
        let mut s = self.pipe.lock();
        if s.buf.len() > size {
            return Err(Errno::EBUSY);
        }
        s.capacity = size;
        drop(s);
        self.pipe.notify();
        Ok(size)
    }

    fn reopen(&self, flags: i32) -> Option<SysResult<Arc<dyn FileDescription>>> {
        Some(
            reopen_end(&self.pipe, flags, self.path.clone()).map(|e| e as Arc<dyn FileDescription>),
        )
    }

    fn readable_bytes(&self) -> SysResult<usize> {
        Ok(self.pipe.lock().buf.len())
    }

    fn anon_name(&self) -> Vec<u8> {
        format!("pipe:[{}]", self.pipe.ino).into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eof_epipe_and_nonblocking() {
        let (r, w) = pipe(O_NONBLOCK);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).err(), Some(Errno::EAGAIN));
        assert_eq!(w.write(b"hello").unwrap(), 5);
        assert_eq!(r.readable_bytes().unwrap(), 5);
        assert_eq!(r.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(w.read(&mut buf).err(), Some(Errno::EBADF));
        let big = vec![0u8; PIPE_CAPACITY + 10];
        assert_eq!(w.write(&big).unwrap(), PIPE_CAPACITY, "partial when full");
        assert_eq!(w.write(b"x").err(), Some(Errno::EAGAIN));
        drop(w);
        let mut all = vec![0u8; PIPE_CAPACITY];
        assert_eq!(r.read(&mut all).unwrap(), PIPE_CAPACITY);
        assert_eq!(r.read(&mut buf).unwrap(), 0, "EOF once the writer is gone");
        let (r, w) = pipe(0);
        drop(r);
        assert_eq!(w.write(b"x").err(), Some(Errno::EPIPE));
    }

    #[test]
    fn fifo_opens() {
        use crate::vfs::file::O_RDWR;
        let memory = Arc::new(platform::MemoryFile::new(1 << 20).unwrap());
        let root = crate::vfs::memfs::MemFs::tmpfs(&memory, 0o755);
        let vfs = crate::vfs::Vfs::new(root, "tmpfs", "none");
        let at = vfs.root();
        let fifo = Pipe::new_fifo();
        assert_eq!(
            open_fifo(&fifo, O_WRONLY | O_NONBLOCK, at.clone()).err(),
            Some(Errno::ENXIO),
            "no reader"
        );
        let r = open_fifo(&fifo, O_RDONLY | O_NONBLOCK, at.clone()).unwrap();
        let w = open_fifo(&fifo, O_WRONLY, at.clone()).unwrap();
        assert_eq!(w.write(b"fifo").unwrap(), 4);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        let rw = open_fifo(&fifo, O_RDWR, at).unwrap();
        drop(w);
        assert_eq!(rw.write(b"x").unwrap(), 1);
        assert_eq!(rw.read(&mut buf).unwrap(), 1);
    }

    #[test]
    fn writers_and_closes_wake_the_queue() {
        use crate::kernel::wait::Waker;
        let (r, w) = pipe(0);
        let waker = Waker::new();
        let _reg = r.wait_queue().unwrap().register(&waker);
        let mut buf = [0u8; 4];
        assert_eq!(
            r.read(&mut buf).err(),
            Some(Errno::EAGAIN),
            "a blocking caller waits"
        );
        let seen = waker.generation();
        w.write(b"ok").unwrap();
        assert!(waker.generation() != seen, "the write woke the reader");
        let seen = waker.generation();
        drop(w);
        assert!(waker.generation() != seen, "the last close woke the reader");
    }
}
