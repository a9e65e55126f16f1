//! Terminals for OCI containers (`process.terminal`), as runc gives them.
//!
//! The host side: `create` (or `exec`) allocates a pseudo-terminal on the host, sends its
//! master to `--console-socket` as runc's `utils.SendFd` does (one message, the pty's
//! name as payload, the master as `SCM_RIGHTS`), and hands the slave to the Sentry.
//! Without a console socket, `run` and `exec` in the foreground use the caller's own
//! terminal.
//!
//! In the Sentry the host terminal is not the application's terminal: a [`Bridge`] opens
//! a pseudo-terminal of the sandbox (as `/dev/ptmx` would) whose slave becomes the
//! process's stdin, stdout, stderr and controlling terminal, and copies bytes between
//! its master and the host terminal, which stays in raw mode. So the line discipline,
//! job control (foreground group, `SIGINT` from Ctrl-C, `SIGTSTP`, `SIGTTIN`) and
//! `/dev/tty` are the Sentry's own, exactly those of a pty inside the sandbox. The
//! window size is the host terminal's: copied at start and on each `SIGWINCH` (which the
//! host sends the session leader that holds the host terminal as its controlling one:
//! the Sentry for init's terminal, `exec`'s waiter for an exec'd process's).

use std::fs::File;
use std::io::{IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::termios::{OptionalActions, Termios};
use sentry::kernel::wait::Waker;
use sentry::kernel::{Credentials, Kernel, Task};
use sentry::vfs::file::{FileDescription, O_NOCTTY, O_RDWR};
use sentry::vfs::tty::{Pty, ReadStep};
use sentry::vfs::{Cx, FsContext};

// ---------------------------------------------------------------- host side

/// A pseudo-terminal of the host.
pub struct HostPty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    /// The slave's name (`/dev/pts/N`), what the console socket is sent.
    pub name: String,
}

/// Allocates a host pseudo-terminal, its slave in raw mode (the Sentry's own line
/// discipline does the terminal's work).
pub fn allocate() -> anyhow::Result<HostPty> {
    use rustix::pty::OpenptFlags;
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .context("opening /dev/ptmx")?;
    rustix::pty::grantpt(&master).context("grantpt")?;
    rustix::pty::unlockpt(&master).context("unlockpt")?;
    let name = rustix::pty::ptsname(&master, Vec::new())
        .context("ptsname")?
        .into_string()
        .map_err(|_| anyhow!("the pty's name is not UTF-8"))?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .with_context(|| format!("opening {name}"))?;
    let mut t = rustix::termios::tcgetattr(&slave).context("reading the pty's modes")?;
    t.make_raw();
    rustix::termios::tcsetattr(&slave, OptionalActions::Now, &t)
        .context("setting the pty to raw mode")?;
    Ok(HostPty {
        master,
        slave,
        name,
    })
}

/// Where a container's terminal comes from.
pub enum HostConsole {
    /// A pty allocated here, its master for the console socket.
    Pty(HostPty),
    /// The caller's own terminal (`run` and `exec` in the foreground).
    Caller,
}

impl HostConsole {
    /// The terminal the Sentry is given.
    pub fn for_sentry(&self) -> anyhow::Result<crate::launch::Console> {
        Ok(match self {
            Self::Pty(pty) => crate::launch::Console {
                tty: pty.slave.try_clone().context("duplicating the pty")?,
                take_controlling: true,
            },
            Self::Caller => crate::launch::Console {
                tty: std::io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .context("duplicating standard input")?,
                take_controlling: false,
            },
        })
    }
}

/// The terminal of a process with `process.terminal` set to `terminal`, checked as
/// runc's `checkTerminal` does: a detached process needs a console socket, and a
/// console socket is for a detached process with a terminal.
pub fn console_of(
    terminal: bool,
    console_socket: Option<&Path>,
    detach: bool,
) -> anyhow::Result<Option<HostConsole>> {
    match (terminal, console_socket) {
        (false, None) => Ok(None),
        (true, None) if detach => bail!(
            "process.terminal: cannot allocate a terminal for a detached process without \
             --console-socket"
        ),
        (true, None) => {
            if !rustix::termios::isatty(std::io::stdin()) {
                bail!(
                    "process.terminal: standard input is not a terminal (run from one, or \
                     detach with --console-socket)"
                );
            }
            Ok(Some(HostConsole::Caller))
        }
        (true, Some(_)) if detach => Ok(Some(HostConsole::Pty(allocate()?))),
        (_, Some(_)) => {
            bail!("--console-socket: only for a detached process with process.terminal (as runc)")
        }
    }
}

/// Sends `pty`'s master to the console socket at `path` (runc's `utils.SendFd`).
pub fn send_master(path: &Path, pty: &HostPty) -> anyhow::Result<()> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let addr = SocketAddrUnix::new(path)
        .with_context(|| format!("--console-socket {}: not a socket path", path.display()))?;
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("creating a socket")?;
    rustix::net::connect(&sock, &addr)
        .with_context(|| format!("connecting to the console socket {}", path.display()))?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [pty.master.as_fd()];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        bail!("no room for the descriptor");
    }
    let name = pty.name.as_bytes();
    let sent = rustix::net::sendmsg(
        &sock,
        &[IoSlice::new(name)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .context("sending the terminal to the console socket")?;
    if sent != name.len() {
        bail!("short send on the console socket");
    }
    Ok(())
}

/// The caller's terminal in raw mode, restored when dropped (`run` and `exec` in the
/// foreground without a console socket).
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    pub fn enter(fd: BorrowedFd<'_>) -> anyhow::Result<Self> {
        let fd = fd
            .try_clone_to_owned()
            .context("duplicating the terminal")?;
        let saved = rustix::termios::tcgetattr(&fd).context("reading the terminal's modes")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&fd, OptionalActions::Now, &raw)
            .context("setting the terminal to raw mode")?;
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(&self.fd, OptionalActions::Now, &self.saved);
    }
}

/// Makes `tty` this process's controlling terminal, in a new session, so that the host
/// sends it `SIGWINCH` when the terminal's size changes.
pub fn take_controlling(tty: BorrowedFd<'_>) -> anyhow::Result<()> {
    rustix::process::setsid().context("setsid")?;
    rustix::process::ioctl_tiocsctty(tty).context("making the pty the controlling terminal")?;
    Ok(())
}

// ---------------------------------------------------------------- in the Sentry

/// How long a bridge thread sleeps before looking at its stop flag again.
const TICK: Duration = Duration::from_millis(100);
/// How long the end of a process waits for its last output to reach the host.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A pseudo-terminal of the sandbox joined to a host terminal.
pub struct Bridge {
    host: Arc<File>,
    pty: Arc<Pty>,
    slave: Arc<dyn FileDescription>,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    drained: mpsc::Receiver<()>,
}

impl Bridge {
    /// Opens a pseudo-terminal in the sandbox's devpts (its slave owned by `creds`), and
    /// starts copying between it and the host terminal `host`.
    pub fn attach(
        kernel: &Arc<Kernel>,
        fs: &FsContext,
        creds: &Credentials,
        host: OwnedFd,
    ) -> anyhow::Result<Self> {
        let cx = Cx {
            creds: creds.clone(),
            kernel: Some(Arc::clone(kernel)),
            ..Cx::root()
        };
        let open = |path: &[u8]| -> anyhow::Result<Arc<dyn FileDescription>> {
            let name = String::from_utf8_lossy(path).into_owned();
            let at = fs
                .lookup(&cx, None, path, true)
                .map_err(|e| anyhow!("{name}: {}", crate::cmd_boot::describe(e)))?;
            at.inode()
                .open(&cx, &at, O_RDWR | O_NOCTTY)
                .map_err(|e| anyhow!("opening {name}: {}", crate::cmd_boot::describe(e)))?
                .with_context(|| format!("{name} is not a terminal"))
        };
        let master = open(b"/dev/ptmx")?;
        let pty = Arc::clone(
            master
                .as_tty()
                .context("/dev/ptmx is not a terminal")?
                .pty(),
        );
        pty.lock().locked = false;
        let slave = open(format!("/dev/pts/{}", pty.index).as_bytes())?;
        let host = Arc::new(File::from(host));
        let stop = Arc::new(AtomicBool::new(false));
        let waker = Waker::new();
        let (done, drained) = mpsc::channel();
        let bridge = Self {
            host: Arc::clone(&host),
            pty: Arc::clone(&pty),
            slave,
            stop: Arc::clone(&stop),
            waker: Arc::clone(&waker),
            drained,
        };
        bridge.sync_winsize();
        // Each thread holds the master: the sandbox's terminal hangs up when both end.
        let input = {
            let (host, pty, stop, master) = (
                Arc::clone(&host),
                Arc::clone(&pty),
                Arc::clone(&stop),
                Arc::clone(&master),
            );
            move || {
                copy_in(&host, &pty, &stop);
                drop(master);
            }
        };
        let output = move || {
            copy_out(&host, &pty, &stop, &waker);
            drop(master);
            let _ = done.send(());
        };
        std::thread::Builder::new()
            .name("console-in".to_string())
            .spawn(input)
            .context("starting the console thread")?;
        std::thread::Builder::new()
            .name("console-out".to_string())
            .spawn(output)
            .context("starting the console thread")?;
        Ok(bridge)
    }

    /// Makes the sandbox's terminal `task`'s standard input, output and error, and the
    /// controlling terminal of its session (it leads one, as init and exec'd processes
    /// do), its group in the foreground.
    pub fn give_to(&self, task: &Task) -> anyhow::Result<()> {
        for fd in 0..3 {
            task.fds.insert_at(fd, Arc::clone(&self.slave), false);
        }
        if !sentry::vfs::tty::acquire(&task.group, &self.pty) {
            bail!("the terminal could not become the process's controlling terminal");
        }
        Ok(())
    }

    /// Copies the host terminal's window size to the sandbox's terminal (whose
    /// foreground group gets `SIGWINCH` if it changed).
    pub fn sync_winsize(&self) {
        match rustix::termios::tcgetwinsize(&*self.host) {
            Ok(w) => self
                .pty
                .set_winsize([w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel]),
            Err(e) => log::debug!("console: reading the window size: {e}"),
        }
    }

    /// A handle that syncs the window size, for the thread that receives `SIGWINCH`.
    pub fn resizer(&self) -> Resizer {
        Resizer {
            host: Arc::clone(&self.host),
            pty: Arc::clone(&self.pty),
        }
    }

    /// The process has ended: its last output is copied to the host (for a while, if
    /// the host side does not read), then the bridge stops.
    pub fn finish(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.waker.wake();
        if self.drained.recv_timeout(DRAIN_TIMEOUT).is_err() {
            log::warn!("console: the output was not all read in time");
        }
    }
}

/// Syncs a bridge's window size from another thread.
#[derive(Clone)]
pub struct Resizer {
    host: Arc<File>,
    pty: Arc<Pty>,
}

impl Resizer {
    pub fn sync(&self) {
        if let Ok(w) = rustix::termios::tcgetwinsize(&*self.host) {
            self.pty
                .set_winsize([w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel]);
        }
    }
}

/// Host terminal → the sandbox terminal's master (the input side), until the host
/// terminal hangs up or the bridge stops. The host is polled, never read blocking, so
/// that a stop is seen.
fn copy_in(host: &File, pty: &Pty, stop: &AtomicBool) {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let waker = Waker::new();
    let _registered = pty.queue.register(&waker);
    let mut buf = [0u8; 4096];
    let tick = Timespec {
        tv_sec: 0,
        tv_nsec: i64::try_from(TICK.as_nanos()).unwrap_or(0),
    };
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(host, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&tick)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => {
                log::debug!("console: polling the host terminal: {e}");
                return;
            }
        }
        let n = match (&*host).read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            // EIO: the master side closed.
            Err(e) => {
                log::debug!("console: the host terminal ended: {e}");
                return;
            }
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() && !stop.load(Ordering::SeqCst) {
            let seen = waker.generation();
            match pty.write(true, rest) {
                Ok(0) => {
                    waker.sleep(seen, Some(Instant::now() + TICK));
                }
                Ok(k) => rest = &rest[k..],
                Err(_) => return,
            }
        }
    }
}

/// The sandbox terminal's master → host terminal (the output side), until the bridge
/// stops and nothing is left to copy.
fn copy_out(host: &File, pty: &Pty, stop: &AtomicBool, waker: &Arc<Waker>) {
    let _registered = pty.queue.register(waker);
    let mut buf = [0u8; 4096];
    let mut host_gone = false;
    loop {
        let seen = waker.generation();
        match pty.read(true, &mut buf) {
            ReadStep::Data { n, .. } => {
                // Once the host terminal is gone, output is read and dropped, so that
                // writers in the sandbox do not block.
                if !host_gone {
                    if let Err(e) = (&*host).write_all(&buf[..n]) {
                        log::debug!("console: writing to the host terminal: {e}");
                        host_gone = true;
                    }
                }
            }
            // No slave open (`Closed`) may change: `/dev/tty` opens it again.
            ReadStep::Empty | ReadStep::Closed => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                waker.sleep(seen, Some(Instant::now() + TICK));
            }
            ReadStep::HungUp => return,
        }
    }
}
