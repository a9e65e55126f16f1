//! Pipes: a 64 KiB buffer between a read end and a write end, with `PIPE_BUF` atomicity,
//! `O_NONBLOCK` and `EPIPE`.
//!
//! A blocked reader or writer waits on the pipe's condition variable; it is woken by the
//! other end or by the other end's last close. (Interruption by signals comes with the
//! Sentry's wait queues: until then a blocked pipe call waits until the pipe moves.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::file::{FileDescription, O_NONBLOCK, O_RDONLY, O_WRONLY, SETFL_MASK};
use super::{Stat, Time, S_IFIFO};
use crate::errno::{Errno, SysResult};

/// Linux's default pipe capacity.
pub const PIPE_CAPACITY: usize = 64 * 1024;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;

static NEXT_INO: AtomicU64 = AtomicU64::new(1);
const PIPEFS_DEV: u64 = 0xc;

struct State {
    buf: VecDeque<u8>,
    readers: usize,
    writers: usize,
}

pub struct Pipe {
    ino: u64,
    state: Mutex<State>,
    moved: Condvar,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.moved.wait(g).unwrap_or_else(|e| e.into_inner())
    }
}

/// One end of a pipe.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    writer: bool,
    flags: AtomicI32,
}

/// A new pipe: (read end, write end); `flags` may hold `O_NONBLOCK`.
pub fn pipe(flags: i32) -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let pipe = Arc::new(Pipe {
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
        state: Mutex::new(State {
            buf: VecDeque::new(),
            readers: 1,
            writers: 1,
        }),
        moved: Condvar::new(),
    });
    let nb = flags & O_NONBLOCK;
    let r = Arc::new(PipeEnd {
        pipe: Arc::clone(&pipe),
        writer: false,
        flags: AtomicI32::new(O_RDONLY | nb),
    });
    let w = Arc::new(PipeEnd {
        pipe,
        writer: true,
        flags: AtomicI32::new(O_WRONLY | nb),
    });
    (r, w)
}

impl PipeEnd {
    fn nonblocking(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & O_NONBLOCK != 0
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut s = self.pipe.lock();
        if self.writer {
            s.writers -= 1;
        } else {
            s.readers -= 1;
        }
        drop(s);
        self.pipe.moved.notify_all();
    }
}

impl FileDescription for PipeEnd {
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        if self.writer {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut s = self.pipe.lock();
        while s.buf.is_empty() {
            if s.writers == 0 {
                return Ok(0);
            }
            if self.nonblocking() {
                return Err(Errno::EAGAIN);
            }
            s = self.pipe.wait(s);
        }
        let n = buf.len().min(s.buf.len());
        for (dst, src) in buf.iter_mut().zip(s.buf.drain(..n)) {
            *dst = src;
        }
        drop(s);
        self.pipe.moved.notify_all();
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        if !self.writer {
            return Err(Errno::EBADF);
        }
        let mut done = 0usize;
        let mut s = self.pipe.lock();
        while done < buf.len() {
            if s.readers == 0 {
                // SIGPIPE goes with EPIPE once signals can be sent from here.
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EPIPE)
                };
            }
            let space = PIPE_CAPACITY - s.buf.len();
            let left = buf.len() - done;
            // A write of at most PIPE_BUF bytes goes in whole or waits.
            let fits = if buf.len() <= PIPE_BUF {
                space >= left
            } else {
                space > 0
            };
            if !fits {
                if self.nonblocking() {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(Errno::EAGAIN)
                    };
                }
                s = self.pipe.wait(s);
                continue;
            }
            let n = left.min(space);
            s.buf.extend(&buf[done..done + n]);
            done += n;
            self.pipe.moved.notify_all();
        }
        Ok(done)
    }

    fn stat(&self) -> SysResult<Stat> {
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
        let old = self.flags.load(Ordering::Relaxed);
        self.flags.store(
            (old & !SETFL_MASK) | (flags & SETFL_MASK),
            Ordering::Relaxed,
        );
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
    fn blocking_reader_wakes() {
        let (r, w) = pipe(0);
        let t = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            let n = r.read(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        w.write(b"ok").unwrap();
        assert_eq!(t.join().unwrap(), b"ok");
    }
}
