//! Terminals from the syscall side: reads (canonical, or `VMIN`/`VTIME`) and writes that
//! wait interruptibly and obey job control, and the terminal ioctls of tty_ioctl(4)
//! with Linux's errnos. The state lives in `vfs::tty`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::errno::{Errno, SysResult};
use crate::kernel::signal::{SIGTTIN, SIGTTOU};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::file::{FileDescription, O_ACCMODE, O_CLOEXEC, O_NOCTTY, O_NONBLOCK, O_WRONLY};
use crate::vfs::tty::devpts::SlaveNode;
use crate::vfs::tty::termios::{Termios, ICANON, TOSTOP, VMIN, VSTART, VSTOP, VTIME};
use crate::vfs::tty::{self, Pty, ReadStep, TtyFile};

const TCGETS: u32 = 0x5401;
const TCSETS: u32 = 0x5402;
const TCSETSW: u32 = 0x5403;
const TCSETSF: u32 = 0x5404;
const TCSBRK: u32 = 0x5409;
const TCXONC: u32 = 0x540a;
const TCFLSH: u32 = 0x540b;
const TIOCEXCL: u32 = 0x540c;
const TIOCNXCL: u32 = 0x540d;
const TIOCSCTTY: u32 = 0x540e;
const TIOCGPGRP: u32 = 0x540f;
const TIOCSPGRP: u32 = 0x5410;
const TIOCOUTQ: u32 = 0x5411;
const TIOCGWINSZ: u32 = 0x5413;
const TIOCSWINSZ: u32 = 0x5414;
/// Also `TIOCINQ`.
const FIONREAD: u32 = 0x541b;
const TIOCNOTTY: u32 = 0x5422;
const TIOCSETD: u32 = 0x5423;
const TIOCGETD: u32 = 0x5424;
const TCSBRKP: u32 = 0x5425;
const TIOCGSID: u32 = 0x5429;
const TCGETS2: u32 = 0x802c_542a;
const TCSETS2: u32 = 0x402c_542b;
const TCSETSW2: u32 = 0x402c_542c;
const TCSETSF2: u32 = 0x402c_542d;
const TIOCGPTN: u32 = 0x8004_5430;
const TIOCSPTLCK: u32 = 0x4004_5431;
const TIOCGPTLCK: u32 = 0x8004_5439;
const TIOCGEXCL: u32 = 0x8004_5440;
const TIOCGPTPEER: u32 = 0x5441;

const TCOOFF: u64 = 0;
const TCOON: u64 = 1;
const TCIOFF: u64 = 2;
const TCION: u64 = 3;
const TCIFLUSH: u64 = 0;
const TCOFLUSH: u64 = 1;
const TCIOFLUSH: u64 = 2;
/// `N_TTY`, the one line discipline.
const N_TTY: i32 = 0;

/// Whether `sig` is blocked or ignored by the caller (Linux's `is_ignored`).
fn blocked_or_ignored(task: &Task, sig: i32) -> bool {
    task.handle.signals().mask.contains(sig)
        || task
            .group
            .sighand()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sig)
            .handler
            == crate::kernel::signal::SIG_IGN
}

/// Whether process group `pgid` of session `sid` is orphaned: no member has a parent
/// in another group of the same session (init does not count).
fn pgrp_orphaned(task: &Task, pgid: i32, sid: i32) -> bool {
    let init = task.kernel.tables().init.clone();
    for g in task.kernel.groups() {
        let (member, parent) = {
            let s = g.state();
            (s.pgid == pgid && s.zombie.is_none(), s.parent.upgrade())
        };
        let Some(parent) = parent.filter(|_| member) else {
            continue;
        };
        if init.as_ref().is_some_and(|i| Arc::ptr_eq(i, &parent)) {
            continue;
        }
        let p = parent.state();
        if p.pgid != pgid && p.sid == sid {
            return false;
        }
    }
    true
}

/// The caller's session and whether `pty` is its controlling terminal.
fn controlling(task: &Task, pty: &Arc<Pty>) -> (i32, bool) {
    let s = task.group.state();
    (s.sid, s.ctty.as_ref().is_some_and(|t| Arc::ptr_eq(t, pty)))
}

/// Linux's `__tty_check_change`: a caller in a background group of its controlling
/// terminal gets `sig` (the call restarts once the group is continued), or `EIO` for
/// `SIGTTIN` it blocks or ignores, or when its group is orphaned.
fn check_change(task: &Task, pty: &Arc<Pty>, sig: i32) -> SysResult<()> {
    let (pgid, sid, mine) = {
        let s = task.group.state();
        (
            s.pgid,
            s.sid,
            s.ctty.as_ref().is_some_and(|t| Arc::ptr_eq(t, pty)),
        )
    };
    if !mine {
        return Ok(());
    }
    let Some(fg) = pty.lock().pgrp else {
        return Ok(());
    };
    if fg == pgid {
        return Ok(());
    }
    if blocked_or_ignored(task, sig) {
        return if sig == SIGTTIN {
            Err(Errno::EIO)
        } else {
            Ok(())
        };
    }
    if pgrp_orphaned(task, pgid, sid) {
        return Err(Errno::EIO);
    }
    tty::kill_pgrp(&task.kernel, pgid, sig);
    Err(Errno::ERESTARTSYS)
}

/// Makes a slave just opened without `O_NOCTTY` the controlling terminal of a session
/// leader that has none (and a reader: Linux asks for read access).
pub fn acquire_on_open(task: &Task, file: &dyn FileDescription, flags: i32) {
    let Some(t) = file.as_tty() else {
        return;
    };
    if t.is_master() || flags & O_NOCTTY != 0 || flags & O_ACCMODE == O_WRONLY {
        return;
    }
    tty::acquire(&task.group, t.pty());
}

/// `read` of a master or slave (Linux's `n_tty_read`).
pub fn read(task: &Task, file: &TtyFile, buf: &mut [u8]) -> SysResult<usize> {
    let pty = file.pty();
    let master = file.is_master();
    if file.hung_up() {
        return Ok(0);
    }
    if !master {
        check_change(task, pty, SIGTTIN)?;
    }
    if buf.is_empty() {
        return Ok(0);
    }
    let t = pty.termios();
    let tenths = |n: u8| Duration::from_millis(100 * u64::from(n));
    // How many bytes end the read, the timer between bytes, and the overall timeout.
    let (minimum, inter, timeout) = if master || t.lflag(ICANON) {
        (1, None, None)
    } else if t.cc[VMIN] > 0 {
        let time = t.cc[VTIME];
        (
            usize::from(t.cc[VMIN]),
            (time > 0).then(|| tenths(time)),
            None,
        )
    } else {
        (1, None, Some(tenths(t.cc[VTIME])))
    };
    let nonblock = file.flags() & O_NONBLOCK != 0;
    let waker = &task.handle.waker;
    let _registered = pty.queue.register(waker);
    let mut deadline = timeout.map(|d| Instant::now() + d);
    let mut done = 0;
    loop {
        let seen = waker.generation();
        match pty.read(master, &mut buf[done..]) {
            ReadStep::Data { n, line } => {
                done += n;
                if line || done >= minimum || done == buf.len() {
                    break;
                }
                if let Some(i) = inter {
                    deadline = Some(Instant::now() + i);
                }
            }
            ReadStep::HungUp => break,
            ReadStep::Closed => {
                if done == 0 {
                    return Err(Errno::EIO);
                }
                break;
            }
            ReadStep::Empty => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if nonblock {
                    if done == 0 {
                        return Err(Errno::EAGAIN);
                    }
                    break;
                }
                if task.signal_pending() {
                    if done == 0 {
                        return Err(Errno::ERESTARTSYS);
                    }
                    break;
                }
                waker.sleep(seen, deadline);
            }
        }
    }
    Ok(done)
}

/// `write` to a master or slave: waits for room; a slave write from a background group
/// with `TOSTOP` gets `SIGTTOU`.
pub fn write(task: &Task, file: &TtyFile, data: &[u8]) -> SysResult<usize> {
    let pty = file.pty();
    let master = file.is_master();
    if !master {
        if file.hung_up() {
            return Err(Errno::EIO);
        }
        if pty.termios().lflag(TOSTOP) {
            check_change(task, pty, SIGTTOU)?;
        }
    }
    let nonblock = file.flags() & O_NONBLOCK != 0;
    let waker = &task.handle.waker;
    let _registered = pty.queue.register(waker);
    let mut done = 0;
    loop {
        let seen = waker.generation();
        let n = match pty.write(master, &data[done..]) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += n;
        if done == data.len() {
            break;
        }
        if n > 0 {
            continue;
        }
        if nonblock {
            if done == 0 {
                return Err(Errno::EAGAIN);
            }
            break;
        }
        if task.signal_pending() {
            if done == 0 {
                return Err(Errno::ERESTARTSYS);
            }
            break;
        }
        waker.sleep(seen, None);
    }
    Ok(done)
}

fn read_i32(task: &Task, arg: UserAddr) -> SysResult<i32> {
    task.mm.read(UserPtr::<i32>::new(arg))
}

fn write_i32(task: &Task, arg: UserAddr, v: i32) -> SysResult<i64> {
    task.mm.write(UserPtr::<i32>::new(arg), &v)?;
    Ok(0)
}

/// `ioctl` on a master or slave. The master's termios, window size, foreground group
/// and session are the slave's, as on Linux.
pub fn ioctl(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    cmd: u32,
    arg: UserAddr,
) -> SysResult<i64> {
    let Some(tf) = file.as_tty() else {
        return Err(Errno::ENOTTY);
    };
    if tf.hung_up() {
        return Err(if cmd == TIOCSPGRP {
            Errno::ENOTTY
        } else {
            Errno::EIO
        });
    }
    let pty = tf.pty();
    let master = tf.is_master();
    // Checks that apply to the file's own side (a master is never a controlling
    // terminal, so they pass there).
    let check_side = |sig| {
        if master {
            Ok(())
        } else {
            check_change(task, pty, sig)
        }
    };
    match cmd {
        TCGETS => {
            task.mm.copy_out(arg, &pty.termios().to_bytes())?;
            Ok(0)
        }
        TCGETS2 => {
            task.mm.copy_out(arg, &pty.termios().to_bytes2())?;
            Ok(0)
        }
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
            check_change(task, pty, SIGTTOU)?;
            let new = if matches!(cmd, TCSETS | TCSETSW | TCSETSF) {
                let mut raw = [0u8; 36];
                task.mm.copy_in(arg, &mut raw)?;
                Termios::from_bytes(&raw)
            } else {
                let mut raw = [0u8; 44];
                task.mm.copy_in(arg, &mut raw)?;
                Termios::from_bytes2(&raw)
            };
            // A pseudo-terminal has no output to drain: the W forms set at once.
            pty.set_termios(new, cmd == TCSETSF || cmd == TCSETSF2);
            Ok(0)
        }
        TIOCGWINSZ => {
            let ws = pty.lock().winsize;
            let mut out = [0u8; 8];
            for (i, v) in ws.iter().enumerate() {
                out[2 * i..2 * i + 2].copy_from_slice(&v.to_ne_bytes());
            }
            task.mm.copy_out(arg, &out)?;
            Ok(0)
        }
        TIOCSWINSZ => {
            let mut raw = [0u8; 8];
            task.mm.copy_in(arg, &mut raw)?;
            let ws: [u16; 4] =
                std::array::from_fn(|i| u16::from_ne_bytes([raw[2 * i], raw[2 * i + 1]]));
            pty.set_winsize(ws);
            Ok(0)
        }
        FIONREAD => {
            let n = file.readable_bytes()?;
            write_i32(task, arg, i32::try_from(n).unwrap_or(i32::MAX))
        }
        // Bytes written but not yet sent: a pseudo-terminal hands them over at once.
        TIOCOUTQ => write_i32(task, arg, 0),
        TCFLSH => {
            check_side(SIGTTOU)?;
            if !matches!(arg.get(), TCIFLUSH | TCOFLUSH | TCIOFLUSH) {
                return Err(Errno::EINVAL);
            }
            // TCOFLUSH on a pseudo-terminal drops nothing (Linux's pty_flush_buffer).
            if arg.get() != TCOFLUSH {
                pty.update(|s, _| {
                    if master {
                        s.ld.flush_output();
                    } else {
                        s.ld.flush_input();
                    }
                });
            }
            Ok(0)
        }
        TCXONC => {
            check_side(SIGTTOU)?;
            match arg.get() {
                TCOOFF | TCOON => pty.update(|s, _| {
                    let on = arg.get() == TCOOFF;
                    if master {
                        s.master_stopped = on;
                    } else {
                        s.ld.tco_stopped = on;
                    }
                }),
                TCIOFF | TCION => pty.update(|s, signals| {
                    let c = s.ld.termios.cc[if arg.get() == TCIOFF { VSTOP } else { VSTART }];
                    if c != 0 {
                        if master {
                            s.ld.write_input(&[c], signals);
                        } else {
                            s.ld.send_raw(c);
                        }
                    }
                }),
                _ => return Err(Errno::EINVAL),
            }
            Ok(0)
        }
        TCSBRK | TCSBRKP => {
            // Nothing to drain and no line to break on a pseudo-terminal.
            check_side(SIGTTOU)?;
            Ok(0)
        }
        TIOCSCTTY => tiocsctty(task, file, pty, arg.get()),
        TIOCNOTTY => {
            let (_, mine) = controlling(task, pty);
            if master || !mine {
                return Err(Errno::ENOTTY);
            }
            if task.group.state().sid == task.tgid() {
                tty::disassociate(&task.kernel, &task.group, false);
            }
            task.group.state().ctty = None;
            Ok(0)
        }
        TIOCGPGRP | TIOCGSID => {
            let (_, mine) = controlling(task, pty);
            if !master && !mine {
                return Err(Errno::ENOTTY);
            }
            let (pgrp, session) = {
                let s = pty.lock();
                (s.pgrp, s.session)
            };
            if cmd == TIOCGPGRP {
                write_i32(task, arg, pgrp.unwrap_or(0))
            } else {
                write_i32(task, arg, session.ok_or(Errno::ENOTTY)?)
            }
        }
        TIOCSPGRP => tiocspgrp(task, pty, arg),
        TIOCGETD => write_i32(task, arg, N_TTY),
        TIOCSETD => {
            check_side(SIGTTOU)?;
            if read_i32(task, arg)? != N_TTY {
                log::warn!("TIOCSETD: only N_TTY is served (EINVAL)");
                return Err(Errno::EINVAL);
            }
            Ok(0)
        }
        TIOCEXCL | TIOCNXCL => {
            pty.lock().exclusive = cmd == TIOCEXCL;
            Ok(0)
        }
        TIOCGEXCL => {
            let on = pty.lock().exclusive;
            write_i32(task, arg, i32::from(on))
        }
        TIOCGPTN | TIOCSPTLCK | TIOCGPTLCK | TIOCGPTPEER if master => match cmd {
            TIOCGPTN => {
                task.mm.write(UserPtr::<u32>::new(arg), &pty.index)?;
                Ok(0)
            }
            TIOCSPTLCK => {
                let lock = read_i32(task, arg)? != 0;
                pty.lock().locked = lock;
                Ok(0)
            }
            TIOCGPTLCK => {
                let locked = pty.lock().locked;
                write_i32(task, arg, i32::from(locked))
            }
            _ => open_peer(task, pty, arg.get()),
        },
        _ => {
            log::debug!("terminal ioctl {cmd:#x}: not served (ENOTTY)");
            Err(Errno::ENOTTY)
        }
    }
}

/// `TIOCSCTTY` (Linux's `tiocsctty`): a session leader without a controlling terminal
/// takes this one; root may steal it from another session with `arg` 1.
fn tiocsctty(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    pty: &Arc<Pty>,
    arg: u64,
) -> SysResult<i64> {
    let (sid, leader, has_tty) = {
        let s = task.group.state();
        (s.sid, s.sid == task.tgid(), s.ctty.is_some())
    };
    let owner = pty.lock().session;
    if leader && owner == Some(sid) {
        return Ok(0);
    }
    if !leader || has_tty {
        return Err(Errno::EPERM);
    }
    let root = task.creds.euid == 0;
    if let Some(other) = owner {
        if arg != 1 || !root {
            return Err(Errno::EPERM);
        }
        tty::session_clear_tty(&task.kernel, other);
        let mut s = pty.lock();
        s.session = None;
        s.pgrp = None;
    }
    if file.flags() & O_ACCMODE == O_WRONLY && !root {
        return Err(Errno::EPERM);
    }
    if !tty::acquire(&task.group, pty) {
        return Err(Errno::EPERM);
    }
    Ok(0)
}

/// `TIOCSPGRP` (Linux's `tiocspgrp`): the foreground group must be of the caller's
/// session, and the terminal the caller's controlling one.
fn tiocspgrp(task: &Task, pty: &Arc<Pty>, arg: UserAddr) -> SysResult<i64> {
    match check_change(task, pty, SIGTTOU) {
        Err(Errno::EIO) => return Err(Errno::ENOTTY),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    let (sid, mine) = controlling(task, pty);
    if !mine || pty.lock().session != Some(sid) {
        return Err(Errno::ENOTTY);
    }
    let pgrp = read_i32(task, arg)?;
    if pgrp < 0 {
        return Err(Errno::EINVAL);
    }
    // The session of the group, or else of the process with that ID.
    let groups = task.kernel.groups();
    let owner = groups
        .iter()
        .find(|g| g.state().pgid == pgrp)
        .or_else(|| groups.iter().find(|g| g.tgid == pgrp))
        .ok_or(Errno::ESRCH)?;
    if owner.state().sid != sid {
        return Err(Errno::EPERM);
    }
    pty.lock().pgrp = Some(pgrp);
    Ok(0)
}

/// `TIOCGPTPEER`: opens the slave from its master, by the master's pair rather than by
/// name.
fn open_peer(task: &Task, pty: &Arc<Pty>, flags: u64) -> SysResult<i64> {
    let flags = i32::try_from(flags).map_err(|_| Errno::EINVAL)?;
    if flags & !(O_ACCMODE | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let cx = super::fs::cx(task);
    let name = format!("/dev/pts/{}", pty.index);
    let path = task
        .fs
        .lookup(&cx, None, name.as_bytes(), true)
        .ok()
        .filter(|p| {
            p.inode()
                .as_any()
                .downcast_ref::<SlaveNode>()
                .is_some_and(|n| Arc::ptr_eq(n.pty(), pty))
        });
    let kept = flags & !(O_NOCTTY | O_CLOEXEC);
    let file: Arc<dyn FileDescription> =
        TtyFile::open_slave(pty, kept, path, task.creds.euid == 0)?;
    acquire_on_open(task, &*file, flags);
    super::open::install(task, file, flags & O_CLOEXEC != 0)
}
