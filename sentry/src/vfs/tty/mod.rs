//! Pseudo-terminals: a master and a slave joined by a line discipline ([`ldisc`]), made
//! by opening `/dev/ptmx` and named in devpts ([`devpts`]); and what makes a terminal a
//! controlling terminal: its session and foreground process group.
//!
//! A process's controlling terminal is `GroupState::ctty` (Linux's `signal->tty`),
//! inherited at fork and dropped by `setsid`; the terminal records the session that owns
//! it and its foreground group. The syscall layer (`syscalls/tty.rs`) does the waiting,
//! the job-control checks and the ioctls; this module keeps the state.
//!
//! Lock order: a process's state, then a terminal's. Signals are sent with no terminal
//! lock held.

pub mod devpts;
pub mod ldisc;
pub mod termios;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use self::ldisc::{Canon, LineDiscipline};
use self::termios::Termios;
use super::file::{FileDescription, POLLERR, POLLHUP, POLLIN, POLLOUT};
use super::{Path, Stat};
use crate::errno::{Errno, SysResult};
use crate::kernel::signal::{SigInfo, SIGCONT, SIGHUP};
use crate::kernel::wait::WaitQueue;
use crate::kernel::{Kernel, Task, ThreadGroup};

/// The changing state of a pair.
pub struct PtyState {
    pub ld: LineDiscipline,
    /// `struct winsize`: rows, columns, x and y pixels.
    pub winsize: [u16; 4],
    /// `TIOCSPTLCK`: the slave cannot be opened while set (it starts set).
    pub locked: bool,
    /// Cleared when the master closes: the slave is hung up.
    pub master_open: bool,
    slave_opens: usize,
    /// Set when the last slave closes (Linux's `TTY_OTHER_CLOSED` on the master).
    pub slave_closed: bool,
    /// Master output (the slave's input) stopped by `TCXONC` on the master.
    pub master_stopped: bool,
    /// `TIOCEXCL`: only root may open the slave.
    pub exclusive: bool,
    /// The session whose controlling terminal this is, and its foreground group.
    pub session: Option<i32>,
    pub pgrp: Option<i32>,
}

/// A pseudo-terminal pair.
pub struct Pty {
    pub index: u32,
    state: Mutex<PtyState>,
    /// Notified on every change either side may wait for.
    pub queue: WaitQueue,
    kernel: Weak<Kernel>,
    devpts: Weak<devpts::DevPts>,
}

/// What one read attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStep {
    /// Bytes; `line` when they are a canonical read's whole answer.
    Data { n: usize, line: bool },
    /// Nothing yet.
    Empty,
    /// The other side is gone (`EIO`).
    Closed,
    /// The file is hung up: reads see end of file.
    HungUp,
}

impl Pty {
    fn new(index: u32, kernel: Weak<Kernel>, devpts: Weak<devpts::DevPts>) -> Arc<Self> {
        Arc::new(Self {
            index,
            state: Mutex::new(PtyState {
                ld: LineDiscipline::new(),
                winsize: [0; 4],
                locked: true,
                master_open: true,
                slave_opens: 0,
                slave_closed: false,
                master_stopped: false,
                exclusive: false,
                session: None,
                pgrp: None,
            }),
            queue: WaitQueue::default(),
            kernel,
            devpts,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, PtyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn termios(&self) -> Termios {
        self.lock().ld.termios
    }

    /// Sends the foreground group the signals input processing raised, and wakes the
    /// waiters; call with no lock held.
    fn after_change(&self, signals: &[i32]) {
        self.queue.notify_all();
        if signals.is_empty() {
            return;
        }
        let fg = self.lock().pgrp;
        if let (Some(kernel), Some(fg)) = (self.kernel.upgrade(), fg) {
            for &sig in signals {
                kill_pgrp(&kernel, fg, sig);
            }
        }
    }

    /// One read attempt by the master or the slave.
    pub fn read(&self, master: bool, buf: &mut [u8]) -> ReadStep {
        let mut signals = Vec::new();
        let step = {
            let mut s = self.lock();
            if master {
                if s.ld.output_len() > 0 {
                    ReadStep::Data {
                        n: s.ld.read_output(buf),
                        line: false,
                    }
                } else if s.slave_closed {
                    ReadStep::Closed
                } else {
                    ReadStep::Empty
                }
            } else if !s.master_open {
                ReadStep::HungUp
            } else if s.ld.termios.lflag(termios::ICANON) {
                match s.ld.read_canon(buf) {
                    Canon::Line(n) => ReadStep::Data { n, line: true },
                    Canon::Empty => ReadStep::Empty,
                }
            } else if s.ld.input_available(1) {
                ReadStep::Data {
                    n: s.ld.read_raw(buf),
                    line: false,
                }
            } else {
                ReadStep::Empty
            }
        };
        if matches!(step, ReadStep::Data { .. }) {
            // Room was made: queued master input moves in.
            self.lock().ld.process_pending(&mut signals);
            self.after_change(&signals);
        }
        step
    }

    /// One write attempt: the bytes taken (0: wait for room).
    pub fn write(&self, master: bool, data: &[u8]) -> SysResult<usize> {
        let mut signals = Vec::new();
        let n = {
            let mut s = self.lock();
            if master {
                if s.master_stopped {
                    0
                } else {
                    s.ld.write_input(data, &mut signals)
                }
            } else {
                if !s.master_open {
                    return Err(Errno::EIO);
                }
                s.ld.write_output(data)
            }
        };
        if n > 0 || !signals.is_empty() {
            self.after_change(&signals);
        }
        Ok(n)
    }

    /// `poll` bits of one side.
    pub fn readiness(&self, master: bool) -> u16 {
        let s = self.lock();
        if master {
            let mut r = 0;
            if s.ld.output_len() > 0 {
                r |= POLLIN;
            }
            if s.slave_closed {
                r |= POLLHUP;
            }
            if !s.master_stopped && s.ld.pending_room() > 0 {
                r |= POLLOUT;
            }
            r
        } else {
            if !s.master_open {
                return POLLIN | POLLOUT | POLLERR | POLLHUP;
            }
            let mut r = 0;
            if s.ld.poll_in() {
                r |= POLLIN;
            }
            if !s.ld.stopped && !s.ld.tco_stopped && s.ld.output_room() > 0 {
                r |= POLLOUT;
            }
            r
        }
    }

    /// New settings for the slave (both sides' `TCSETS`).
    pub fn set_termios(&self, t: Termios, flush: bool) {
        let mut signals = Vec::new();
        {
            let mut s = self.lock();
            if flush {
                s.ld.flush_input();
            }
            s.ld.set_termios(t, &mut signals);
        }
        self.after_change(&signals);
    }

    /// `TIOCSWINSZ`: SIGWINCH to the foreground group when the size changes.
    pub fn set_winsize(&self, ws: [u16; 4]) {
        let fg = {
            let mut s = self.lock();
            if s.winsize == ws {
                return;
            }
            s.winsize = ws;
            s.pgrp
        };
        if let (Some(kernel), Some(fg)) = (self.kernel.upgrade(), fg) {
            kill_pgrp(&kernel, fg, crate::kernel::signal::SIGWINCH);
        }
    }

    /// Runs `f` on the state, then wakes the waiters and sends what it raised.
    pub fn update<T>(&self, f: impl FnOnce(&mut PtyState, &mut Vec<i32>) -> T) -> T {
        let mut signals = Vec::new();
        let out = f(&mut self.lock(), &mut signals);
        self.after_change(&signals);
        out
    }

    fn open_slave(&self, root: bool) -> SysResult<()> {
        let mut s = self.lock();
        if s.locked || !s.master_open {
            return Err(Errno::EIO);
        }
        if s.exclusive && !root {
            return Err(Errno::EBUSY);
        }
        s.slave_opens += 1;
        s.slave_closed = false;
        drop(s);
        self.queue.notify_all();
        Ok(())
    }

    fn close_slave(&self) {
        {
            let mut s = self.lock();
            s.slave_opens -= 1;
            if s.slave_opens == 0 {
                s.slave_closed = true;
            }
        }
        self.queue.notify_all();
    }

    /// The master's last close: the slave hangs up, its name goes, and the session
    /// that had it as controlling terminal loses it (its leader gets SIGHUP and
    /// SIGCONT, as Linux's `tty_signal_session_leader`).
    fn close_master(self: &Arc<Self>) {
        let session = {
            let mut s = self.lock();
            s.master_open = false;
            s.ld.flush_input();
            s.pgrp = None;
            s.session.take()
        };
        self.queue.notify_all();
        if let Some(fs) = self.devpts.upgrade() {
            fs.remove(self.index);
        }
        let (Some(kernel), Some(sid)) = (self.kernel.upgrade(), session) else {
            return;
        };
        for g in kernel.groups() {
            let leader = {
                let mut s = g.state();
                if s.sid != sid || s.zombie.is_some() {
                    continue;
                }
                if s.ctty.as_ref().is_some_and(|t| Arc::ptr_eq(t, self)) {
                    s.ctty = None;
                }
                g.tgid == sid
            };
            if leader {
                Task::send_to_group(&kernel, &g, SigInfo::kernel(SIGHUP));
                Task::send_to_group(&kernel, &g, SigInfo::kernel(SIGCONT));
            }
        }
    }
}

/// Sends `sig` to every live process of group `pgrp` (Linux's `kill_pgrp` from the
/// kernel).
pub fn kill_pgrp(kernel: &Kernel, pgrp: i32, sig: i32) {
    for g in kernel.groups() {
        let member = {
            let s = g.state();
            s.pgid == pgrp && s.zombie.is_none()
        };
        if member {
            Task::send_to_group(kernel, &g, SigInfo::kernel(sig));
        }
    }
}

/// Makes `pty` the controlling terminal of `group`'s session and its group the
/// foreground one (Linux's `__proc_set_tty`), if the group leads a session that has
/// none and the terminal belongs to no session. Returns whether it did.
pub fn acquire(group: &Arc<ThreadGroup>, pty: &Arc<Pty>) -> bool {
    let mut g = group.state();
    if g.sid != group.tgid || g.ctty.is_some() {
        return false;
    }
    let mut t = pty.lock();
    if t.session.is_some() || !t.master_open {
        return false;
    }
    t.session = Some(g.sid);
    t.pgrp = Some(g.pgid);
    drop(t);
    g.ctty = Some(Arc::clone(pty));
    true
}

/// Every process of session `sid` loses its controlling terminal (`session_clear_tty`).
pub fn session_clear_tty(kernel: &Kernel, sid: i32) {
    for g in kernel.groups() {
        let mut s = g.state();
        if s.sid == sid {
            s.ctty = None;
        }
    }
}

/// A session leader gives up its controlling terminal (Linux's `disassociate_ctty`):
/// the foreground group gets SIGHUP (and SIGCONT unless the leader is exiting), the
/// terminal forgets the session, and the session's processes lose it.
pub fn disassociate(kernel: &Kernel, group: &Arc<ThreadGroup>, on_exit: bool) {
    let (tty, sid) = {
        let s = group.state();
        (s.ctty.clone(), s.sid)
    };
    let Some(tty) = tty else {
        return;
    };
    let fg = tty.lock().pgrp;
    if let Some(fg) = fg {
        kill_pgrp(kernel, fg, SIGHUP);
        if !on_exit {
            kill_pgrp(kernel, fg, SIGCONT);
        }
    }
    {
        let mut t = tty.lock();
        t.session = None;
        t.pgrp = None;
    }
    session_clear_tty(kernel, sid);
}

/// At a process's exit: a session leader's controlling terminal is let go.
pub fn process_exit(kernel: &Kernel, group: &Arc<ThreadGroup>) {
    let leader = group.state().sid == group.tgid;
    if leader {
        disassociate(kernel, group, true);
    }
    group.state().ctty = None;
}

/// Opens `/dev/tty`: the caller's controlling terminal (`ENXIO` without one).
pub fn open_controlling(
    cx: &super::Cx,
    path: &Path,
    flags: i32,
) -> SysResult<Arc<dyn FileDescription>> {
    let pty = cx
        .group
        .as_ref()
        .and_then(|g| g.state().ctty.clone())
        .ok_or(Errno::ENXIO)?;
    let file = TtyFile::open_slave(&pty, flags, Some(path.clone()), cx.creds.euid == 0)?;
    Ok(file)
}

/// An open master or slave.
pub struct TtyFile {
    pty: Arc<Pty>,
    master: bool,
    flags: AtomicI32,
    path: Option<Path>,
}

impl TtyFile {
    /// Opens the slave of `pty` (`EIO` while locked or once the master is gone).
    pub fn open_slave(
        pty: &Arc<Pty>,
        flags: i32,
        path: Option<Path>,
        root: bool,
    ) -> SysResult<Arc<Self>> {
        pty.open_slave(root)?;
        Ok(Arc::new(Self {
            pty: Arc::clone(pty),
            master: false,
            flags: AtomicI32::new(flags),
            path,
        }))
    }

    fn new_master(pty: Arc<Pty>, flags: i32, path: Path) -> Arc<Self> {
        Arc::new(Self {
            pty,
            master: true,
            flags: AtomicI32::new(flags),
            path: Some(path),
        })
    }

    pub fn pty(&self) -> &Arc<Pty> {
        &self.pty
    }

    pub fn is_master(&self) -> bool {
        self.master
    }

    /// Whether this is a slave whose master has gone.
    pub fn hung_up(&self) -> bool {
        !self.master && !self.pty.lock().master_open
    }
}

impl Drop for TtyFile {
    fn drop(&mut self) {
        if self.master {
            self.pty.close_master();
        } else {
            self.pty.close_slave();
        }
    }
}

impl FileDescription for TtyFile {
    // Reads and writes that do not come through `read`/`write` (splice, sendfile):
    // one attempt, `EAGAIN` to wait.
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        match self.pty.read(self.master, buf) {
            ReadStep::Data { n, .. } => Ok(n),
            ReadStep::Empty => Err(Errno::EAGAIN),
            ReadStep::Closed => Err(Errno::EIO),
            ReadStep::HungUp => Ok(0),
        }
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        match self.pty.write(self.master, buf)? {
            0 if !buf.is_empty() => Err(Errno::EAGAIN),
            n => Ok(n),
        }
    }

    fn stat(&self) -> SysResult<Stat> {
        match &self.path {
            Some(p) => p.inode().stat(),
            None => Ok(super::file::anon_stat()),
        }
    }

    fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }

    fn path(&self) -> Option<&Path> {
        self.path.as_ref()
    }

    fn inode(&self) -> Option<&Arc<dyn super::Inode>> {
        self.path.as_ref().map(Path::inode)
    }

    fn readable_bytes(&self) -> SysResult<usize> {
        let s = self.pty.lock();
        Ok(if self.master {
            s.ld.output_len()
        } else {
            s.ld.input_len()
        })
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty.queue)
    }

    fn readiness(&self) -> u16 {
        self.pty.readiness(self.master)
    }

    fn anon_name(&self) -> Vec<u8> {
        format!("/dev/pts/{}", self.pty.index).into_bytes()
    }

    fn as_tty(&self) -> Option<&TtyFile> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Arc<devpts::DevPts>, Arc<TtyFile>, Arc<TtyFile>) {
        let fs = devpts::DevPts::new();
        let pty = fs.new_pty(&super::super::Cx::root()).unwrap();
        let m = Arc::new(TtyFile {
            pty: Arc::clone(&pty),
            master: true,
            flags: AtomicI32::new(0),
            path: None,
        });
        assert_eq!(
            TtyFile::open_slave(&pty, 0, None, true).err(),
            Some(Errno::EIO),
            "locked"
        );
        pty.lock().locked = false;
        let s = TtyFile::open_slave(&pty, 0, None, true).unwrap();
        (fs, m, s)
    }

    #[test]
    fn bytes_cross_with_echo_and_hangup() {
        let (fs, m, s) = pair();
        assert_eq!(m.readiness(), POLLOUT);
        assert_eq!(m.write(b"hi\n").unwrap(), 3);
        let mut buf = [0u8; 16];
        assert_eq!(m.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"hi\r\n");
        assert_eq!(s.readiness(), POLLIN | POLLOUT);
        assert_eq!(s.read(&mut buf).unwrap(), 3);
        assert_eq!(s.read(&mut buf).err(), Some(Errno::EAGAIN));
        assert!(fs.lookup_index(0).is_some());
        drop(m);
        assert!(
            fs.lookup_index(0).is_none(),
            "the name goes with the master"
        );
        assert_eq!(s.readiness(), POLLIN | POLLOUT | POLLERR | POLLHUP);
        assert_eq!(s.read(&mut buf).unwrap(), 0);
        assert_eq!(s.write(b"x").err(), Some(Errno::EIO));
    }

    #[test]
    fn slave_close_is_eio_and_pollhup_on_the_master() {
        let (_fs, m, s) = pair();
        assert_eq!(s.write(b"out").unwrap(), 3);
        drop(s);
        assert_eq!(m.readiness(), POLLIN | POLLOUT | POLLHUP);
        let mut buf = [0u8; 8];
        assert_eq!(m.read(&mut buf).unwrap(), 3, "data first");
        assert_eq!(m.read(&mut buf).err(), Some(Errno::EIO));
    }
}
