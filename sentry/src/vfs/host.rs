//! A file the Sentry was handed as a host descriptor: the caller's stdio for `bulwark do`
//! (the Sentry never opens a host path itself). When it is a terminal, `TCGETS` and
//! `TIOCGWINSZ` read the host terminal's settings, so programs see the caller's tty.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use rustix::termios::SpecialCodeIndex as Cc;

use std::sync::atomic::{AtomicI32, Ordering};

use rustix::event::{PollFd, PollFlags};

use super::file::{Terminal, O_RDWR, SETFL_MASK};
use super::{FileDescription, Stat};
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;

pub struct HostFile {
    file: File,
    tty: bool,
    /// The status flags the application sees (`O_NONBLOCK` is the Sentry's to honour:
    /// the host description is shared with the caller and stays as it is).
    flags: AtomicI32,
    /// Never notified: readiness of a host descriptor is polled.
    queue: WaitQueue,
    /// Whether its readiness can change (not a regular file or a directory, which are
    /// always ready and which epoll refuses).
    pollable: bool,
}

impl HostFile {
    pub fn new(fd: OwnedFd) -> Self {
        let tty = rustix::termios::isatty(&fd);
        // The application sees the host description's access mode and status flags, as
        // a process that inherited it would.
        let flags = rustix::fs::fcntl_getfl(&fd)
            .map(|f| i32::from_ne_bytes(f.bits().to_ne_bytes()))
            .unwrap_or(O_RDWR);
        let pollable = rustix::fs::fstat(&fd).map_or(true, |st| {
            let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
            !matches!(
                kind,
                rustix::fs::FileType::RegularFile | rustix::fs::FileType::Directory
            )
        });
        Self {
            file: File::from(fd),
            tty,
            flags: AtomicI32::new(flags),
            queue: WaitQueue::default(),
            pollable,
        }
    }

    /// Whether a read would not block (data, end of file or an error is there).
    fn readable(&self) -> bool {
        let mut fds = [PollFd::new(&self.file, PollFlags::IN)];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&zero)) {
            Ok(0) => false,
            Ok(_) => true,
            // Let the read itself report what is wrong.
            Err(_) => true,
        }
    }
}

fn host_errno(err: &std::io::Error) -> Errno {
    if err.kind() == ErrorKind::Interrupted {
        return Errno::EINTR;
    }
    Errno::from_io(err)
}

impl FileDescription for HostFile {
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        // Never block in the host: a blocked reader waits in the Sentry, where signals
        // reach it.
        if !buf.is_empty() && !self.readable() {
            return Err(Errno::EAGAIN);
        }
        (&self.file).read(buf).map_err(|e| host_errno(&e))
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        (&self.file).write(buf).map_err(|e| host_errno(&e))
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

    fn wait_queue(&self) -> Option<&WaitQueue> {
        self.pollable.then_some(&self.queue)
    }

    fn needs_polling(&self) -> bool {
        self.pollable
    }

    fn readiness(&self) -> u16 {
        let mut fds = [PollFd::new(&self.file, PollFlags::IN | PollFlags::OUT)];
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&zero)) {
            Ok(0) => 0,
            Ok(_) => fds[0].revents().bits(),
            Err(_) => super::file::POLLERR,
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        let m = self.file.metadata().map_err(|e| host_errno(&e))?;
        Ok(Stat {
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            size: m.size().try_into().unwrap_or(i64::MAX),
            blksize: m.blksize().try_into().unwrap_or(4096),
            blocks: m.blocks().try_into().unwrap_or(0),
            atime: m.atime(),
            atime_nsec: m.atime_nsec(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
            ..Stat::default()
        })
    }

    fn anon_name(&self) -> Vec<u8> {
        let Ok(m) = self.file.metadata() else {
            return b"anon_inode:[host]".to_vec();
        };
        let t = m.file_type();
        let kind = if t.is_fifo() {
            "pipe"
        } else if t.is_socket() {
            "socket"
        } else {
            // A host terminal or file: its host name is not the sandbox's business.
            "host"
        };
        format!("{kind}:[{}]", m.ino()).into_bytes()
    }

    fn terminal(&self) -> Option<&dyn Terminal> {
        self.tty.then_some(self as &dyn Terminal)
    }
}

/// `c_cc` in Linux's x86-64 order (`VINTR` = 0 … `VEOL2` = 16).
const CC_ORDER: [Cc; 17] = [
    Cc::VINTR,
    Cc::VQUIT,
    Cc::VERASE,
    Cc::VKILL,
    Cc::VEOF,
    Cc::VTIME,
    Cc::VMIN,
    Cc::VSWTC,
    Cc::VSTART,
    Cc::VSTOP,
    Cc::VSUSP,
    Cc::VEOL,
    Cc::VREPRINT,
    Cc::VDISCARD,
    Cc::VWERASE,
    Cc::VLNEXT,
    Cc::VEOL2,
];

impl Terminal for HostFile {
    fn termios(&self) -> SysResult<[u8; 36]> {
        let t = rustix::termios::tcgetattr(&self.file)
            .map_err(|e| Errno::new(e.raw_os_error()).unwrap_or(Errno::ENOTTY))?;
        let mut out = [0u8; 36];
        out[0..4].copy_from_slice(&t.input_modes.bits().to_ne_bytes());
        out[4..8].copy_from_slice(&t.output_modes.bits().to_ne_bytes());
        out[8..12].copy_from_slice(&t.control_modes.bits().to_ne_bytes());
        out[12..16].copy_from_slice(&t.local_modes.bits().to_ne_bytes());
        out[16] = t.line_discipline;
        for (i, cc) in CC_ORDER.into_iter().enumerate() {
            out[17 + i] = t.special_codes[cc];
        }
        Ok(out)
    }

    fn winsize(&self) -> SysResult<[u8; 8]> {
        let w = rustix::termios::tcgetwinsize(&self.file)
            .map_err(|e| Errno::new(e.raw_os_error()).unwrap_or(Errno::ENOTTY))?;
        let mut out = [0u8; 8];
        for (i, v) in [w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel]
            .into_iter()
            .enumerate()
        {
            out[2 * i..2 * i + 2].copy_from_slice(&v.to_ne_bytes());
        }
        Ok(out)
    }
}
