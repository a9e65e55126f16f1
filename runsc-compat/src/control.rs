//! The control channel of a running sandbox. `bulwark exec`, `ps`, `pause`, `resume` and
//! `kill --all` reach the Sentry through a `SOCK_SEQPACKET` socket, `control.sock` in the
//! container's state directory. `create` binds it and hands the listening end to `boot`
//! (which never opens a path or creates a socket itself); `boot` serves each connection
//! on a thread of its own.
//!
//! One request per connection, as one JSON message; `exec` passes the new process's
//! standard input, output and error with it (`SCM_RIGHTS`). The replies are JSON messages
//! too: `exec` gets `started` at once and `exited` when the process ends.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

use sentry::kernel::signal::{SigInfo, SI_USER};
use sentry::kernel::{Credentials, ExitStatus, InitSpec, Kernel, Task};
use sentry::vfs::exec::VfsResolver;
use sentry::vfs::FsContext;

/// The largest message either side sends.
const MAX_MESSAGE: usize = 256 * 1024;
/// Descriptors an `exec` request carries: stdin, stdout, stderr.
const STDIO: usize = 3;
/// Most descriptors one message carries: `exec`'s standard I/O and what it preserves.
const MAX_FDS: usize = STDIO + crate::fds::MAX_PRESERVED as usize;

/// What a client asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Start a process in the sandbox, with the descriptors sent along as its stdio.
    Exec(ExecRequest),
    /// List the sandbox's processes.
    Ps,
    /// Answered once the program has been let go (after `bulwark start`'s byte): from
    /// then on a signal from outside is the program's, not the end of the sandbox.
    Started,
    /// Stop running application code until `Resume`.
    Pause,
    Resume,
    /// Send `signal` to init, or to every process with `all`.
    Signal {
        signal: i32,
        all: bool,
    },
    /// Wait until process `pid` (0: init) has exited: `exited` with its status.
    Wait {
        pid: i32,
    },
    /// On an `exec` connection with a terminal, after `started`: the host terminal's
    /// window size changed.
    Resize,
    /// `bulwark update`: the sandbox's memory limit (its total memory) and task limit in
    /// bytes and tasks (`u64::MAX`: none); `None` leaves one as it is.
    SetLimits {
        memory: Option<u64>,
        pids: Option<u64>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub groups: Vec<u32>,
    /// The descriptors are a host terminal: the process gets a terminal of the sandbox
    /// joined to it (`console.rs`), as its controlling terminal.
    #[serde(default)]
    pub terminal: bool,
}

/// What the Sentry answers.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Error {
        message: String,
    },
    Started {
        pid: i32,
    },
    /// The exec'd process ended: its status as a shell reports it (128 + N for signal N).
    Exited {
        status: i32,
    },
    Processes {
        list: Vec<Process>,
    },
}

/// One process, as `bulwark ps` prints it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    pub uid: u32,
    pub state: String,
    pub cmd: String,
}

// ---------------------------------------------------------------- transport

fn send<T: Serialize>(sock: BorrowedFd<'_>, msg: &T, fds: &[BorrowedFd<'_>]) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec(msg)?;
    if bytes.len() > MAX_MESSAGE {
        bail!("control message of {} bytes is too long", bytes.len());
    }
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        bail!("too many descriptors for one control message");
    }
    loop {
        match rustix::net::sendmsg(
            sock,
            &[IoSlice::new(&bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).context("sending on the control socket"),
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(n) => bail!("short send on the control socket ({n} of {})", bytes.len()),
        }
    }
}

/// Receives one message and the descriptors sent with it; `None` when the peer closed.
fn recv<T: for<'de> Deserialize<'de>>(
    sock: BorrowedFd<'_>,
) -> anyhow::Result<Option<(T, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match rustix::net::recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.context("receiving on the control socket")?,
        }
    };
    let mut fds = Vec::new();
    for cmsg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = cmsg {
            fds.extend(received);
        }
    }
    if msg.bytes == 0 {
        return Ok(None);
    }
    if msg.bytes > MAX_MESSAGE
        || msg
            .flags
            .intersects(rustix::net::ReturnFlags::TRUNC | rustix::net::ReturnFlags::CTRUNC)
    {
        bail!("truncated control message");
    }
    let value = serde_json::from_slice(&buf[..msg.bytes]).context("a malformed control message")?;
    Ok(Some((value, fds)))
}

// ---------------------------------------------------------------- client

/// Where a container's control socket is.
pub fn socket_path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("control.sock")
}

/// The address of the socket file `path`. One longer than a socket address holds (108
/// bytes; Docker's state root and a 64-digit container ID make 111) is reached through a
/// descriptor of its directory, `/proc/self/fd/N/NAME`, which stays open while the address
/// is used.
fn socket_addr(path: &Path) -> anyhow::Result<(rustix::net::SocketAddrUnix, Option<OwnedFd>)> {
    use rustix::fs::{Mode, OFlags};
    if let Ok(addr) = rustix::net::SocketAddrUnix::new(path) {
        return Ok((addr, None));
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("{}: not a socket path", path.display());
    };
    let dir = rustix::fs::open(
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", parent.display()))?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    let addr = rustix::net::SocketAddrUnix::new(&short)
        .with_context(|| format!("{}: too long for a socket address", path.display()))?;
    Ok((addr, Some(dir)))
}

/// Creates the listening control socket at `path` (for `create`).
pub fn listen(path: &Path) -> anyhow::Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (addr, _dir) = socket_addr(path)?;
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("creating the control socket")?;
    rustix::net::bind(&sock, &addr).with_context(|| format!("binding {}", path.display()))?;
    rustix::net::listen(&sock, 64).context("listening on the control socket")?;
    Ok(sock)
}

/// A connection to a sandbox's Sentry.
pub struct Connection(OwnedFd);

impl Connection {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        use rustix::net::{AddressFamily, SocketFlags, SocketType};
        let (addr, _dir) = socket_addr(path)?;
        let sock = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        rustix::net::connect(&sock, &addr)
            .with_context(|| format!("connecting to the sandbox ({})", path.display()))?;
        Ok(Self(sock))
    }

    /// Sends `request` (with `fds`) and returns the first reply.
    pub fn call(&self, request: &Request, fds: &[BorrowedFd<'_>]) -> anyhow::Result<Reply> {
        send(self.0.as_fd(), request, fds)?;
        self.next()
    }

    /// The next reply.
    pub fn next(&self) -> anyhow::Result<Reply> {
        match recv::<Reply>(self.0.as_fd())? {
            Some((Reply::Error { message }, _)) => Err(anyhow!("{message}")),
            Some((reply, _)) => Ok(reply),
            None => bail!("the sandbox closed the control connection"),
        }
    }

    /// Sends a message that has no reply (`Resize`).
    pub fn notify(&self, request: &Request) -> anyhow::Result<()> {
        send(self.0.as_fd(), request, &[])
    }

    pub fn into_fd(self) -> OwnedFd {
        self.0
    }

    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }
}

// ---------------------------------------------------------------- server

/// What the Sentry needs to serve requests.
pub struct Server {
    pub kernel: Arc<Kernel>,
    /// The sandbox's root filesystem context (exec'd processes get a copy).
    pub fs: Arc<FsContext>,
    pub tree: Arc<VfsResolver>,
    /// `PATH` used to find an exec'd program when its environment has none.
    pub default_path: String,
    /// `wait` requests not answered yet: the Sentry lets them answer before it exits.
    pub waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl Server {
    /// Serves connections on `listener` from a thread of its own.
    pub fn spawn(self: Arc<Self>, listener: OwnedFd) -> anyhow::Result<()> {
        std::thread::Builder::new()
            .name("control".to_string())
            .spawn(move || loop {
                match rustix::net::accept_with(&listener, rustix::net::SocketFlags::CLOEXEC) {
                    Ok(conn) => {
                        let server = Arc::clone(&self);
                        let spawned = std::thread::Builder::new()
                            .name("control-conn".to_string())
                            .spawn(move || server.serve(conn));
                        if let Err(e) = spawned {
                            log::warn!("control: no thread for a connection: {e}");
                        }
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => {
                        log::warn!("control: accept failed, no more requests: {e}");
                        return;
                    }
                }
            })
            .context("starting the control thread")?;
        Ok(())
    }

    fn serve(&self, conn: OwnedFd) {
        let result = match recv::<Request>(conn.as_fd()) {
            Ok(Some((request, fds))) => self.handle(conn.as_fd(), request, fds),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            log::debug!("control: {e:#}");
            let _ = send(
                conn.as_fd(),
                &Reply::Error {
                    message: format!("{e:#}"),
                },
                &[],
            );
        }
    }

    fn handle(
        &self,
        conn: BorrowedFd<'_>,
        request: Request,
        fds: Vec<OwnedFd>,
    ) -> anyhow::Result<()> {
        log::debug!("control: {request:?}");
        match request {
            Request::Exec(exec) => return self.exec(conn, exec, fds),
            Request::Resize => bail!("resize: not on an exec connection with a terminal"),
            // The server runs only once the Sentry has marked the program started.
            Request::Started => send(conn, &Reply::Ok, &[])?,
            Request::Ps => {
                let list = self
                    .kernel
                    .processes()
                    .into_iter()
                    .map(|p| Process {
                        pid: p.pid,
                        ppid: p.ppid,
                        uid: p.uid,
                        state: p.state.to_string(),
                        cmd: p
                            .cmdline
                            .split(|&b| b == 0)
                            .filter(|a| !a.is_empty())
                            .map(|a| String::from_utf8_lossy(a).into_owned())
                            .collect::<Vec<_>>()
                            .join(" "),
                    })
                    .collect();
                send(conn, &Reply::Processes { list }, &[])?;
            }
            Request::Pause => {
                self.kernel.freeze();
                send(conn, &Reply::Ok, &[])?;
            }
            Request::Resume => {
                self.kernel.thaw();
                send(conn, &Reply::Ok, &[])?;
            }
            Request::SetLimits { memory, pids } => {
                if let Some(bytes) = memory {
                    self.kernel.memory().set_limit(bytes);
                }
                if let Some(tasks) = pids {
                    self.kernel.set_pids_limit(tasks);
                }
                send(conn, &Reply::Ok, &[])?;
            }
            Request::Wait { pid } => {
                use std::sync::atomic::Ordering;
                self.waiting.fetch_add(1, Ordering::SeqCst);
                let answered = self.wait(conn, pid);
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                answered?;
            }
            Request::Signal { signal, all } => {
                if !(1..=64).contains(&signal) {
                    bail!("invalid signal {signal}");
                }
                let info = SigInfo::user(signal, SI_USER, 0, 0);
                let targets = if all {
                    self.kernel.groups()
                } else {
                    self.kernel.tables().init.clone().into_iter().collect()
                };
                // Answered first: a signal that ends init ends the Sentry with it.
                send(conn, &Reply::Ok, &[])?;
                for group in targets {
                    Task::send_to_group(&self.kernel, &group, info);
                }
            }
        }
        Ok(())
    }

    /// Answers a `wait`: the exit status of process `pid` (0: init) once it has exited.
    fn wait(&self, conn: BorrowedFd<'_>, pid: i32) -> anyhow::Result<()> {
        let group = if pid == 0 {
            self.kernel.tables().init.clone()
        } else {
            self.kernel.group(pid)
        }
        .with_context(|| format!("no process {pid} in the sandbox"))?;
        let status = match group.wait_exit(&sentry::kernel::wait::Waker::new()) {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(sig) => 128 + sig,
        };
        send(conn, &Reply::Exited { status }, &[])
    }

    fn exec(
        &self,
        conn: BorrowedFd<'_>,
        req: ExecRequest,
        mut stdio: Vec<OwnedFd>,
    ) -> anyhow::Result<()> {
        if stdio.len() < STDIO {
            bail!("exec needs 3 descriptors for stdio, got {}", stdio.len());
        }
        // After standard I/O, the descriptors `exec --preserve-fds` passes on.
        let preserved = stdio.split_off(STDIO);
        let program = req.args.first().context("exec: no program")?.clone();
        let mut creds = Credentials::new(req.uid, req.gid);
        creds.groups = req.groups.clone().into();
        let fs = self.fs.fork();
        let cx = sentry::vfs::Cx {
            creds: creds.clone(),
            ..sentry::vfs::Cx::root()
        };
        let cwd = fs
            .lookup(&cx, None, req.cwd.as_bytes(), true)
            .map_err(|e| anyhow!("cwd {}: {}", req.cwd, crate::cmd_boot::describe(e)))?;
        fs.set_cwd(cwd);
        let path_var = req
            .env
            .iter()
            .find_map(|kv| kv.strip_prefix("PATH="))
            .unwrap_or(&self.default_path);
        let (path, exe) = crate::cmd_boot::find_program(&self.tree, &program, &req.cwd, path_var)
            .map_err(|e| crate::cmd_boot::program_error(&program, e))?;
        if let Ok(at) = fs.lookup(&cx, None, path.as_bytes(), true) {
            fs.set_exe(at);
        }
        let argv: Vec<Vec<u8>> = req.args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let envp: Vec<Vec<u8>> = req.env.iter().map(|e| e.as_bytes().to_vec()).collect();
        fs.set_cmdline(sentry::vfs::path::cmdline(&argv));
        fs.set_environ(sentry::vfs::path::cmdline(&envp));
        let (stdio, tty) = if req.terminal {
            (Vec::new(), stdio.into_iter().next())
        } else {
            (stdio, None)
        };
        let spec = InitSpec {
            path: path.as_bytes(),
            argv,
            envp,
            creds: creds.clone(),
            stdio,
            preserved,
            fs: Arc::clone(&fs),
        };
        let task = Task::new_exec(&self.kernel, &*self.tree, exe, spec)
            .map_err(|e| anyhow!("{program}: {}", crate::cmd_boot::describe(e)))?;
        let console = match tty {
            Some(tty) => {
                let bridge = crate::console::Bridge::attach(&self.kernel, &fs, &creds, tty)?;
                bridge.give_to(&task)?;
                Some(bridge)
            }
            None => None,
        };
        let group = Arc::clone(&task.group);
        let pid = group.tgid;
        std::thread::Builder::new()
            .name(format!("task-{pid}"))
            .spawn(move || {
                task.run();
            })
            .context("starting the process's thread")?;
        send(conn, &Reply::Started { pid }, &[])?;
        let status = std::thread::scope(|scope| {
            if let Some(resizer) = console.as_ref().map(crate::console::Bridge::resizer) {
                // The client reports resizes until it closes the connection, or the
                // shutdown below ends the wait.
                scope.spawn(move || {
                    while let Ok(Some((Request::Resize, _))) = recv::<Request>(conn) {
                        resizer.sync();
                    }
                });
            }
            let status = group.wait_exit(&sentry::kernel::wait::Waker::new());
            if let Some(console) = console {
                console.finish();
            }
            let status = match status {
                ExitStatus::Exited(code) => code,
                ExitStatus::Signaled(sig) => 128 + sig,
            };
            let sent = send(conn, &Reply::Exited { status }, &[]);
            let _ = rustix::net::shutdown(conn, rustix::net::Shutdown::Read);
            sent
        });
        status
    }
}
