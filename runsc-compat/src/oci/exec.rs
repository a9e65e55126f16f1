//! `exec`, `ps`, `pause` and `resume`: requests to a running container's Sentry over its
//! control socket (`crate::control`).

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::spec::{Process, Spec};
use super::state::{self, Stored};
use crate::console::{console_of, HostConsole};
use crate::control::{Connection, ExecRequest, Reply, Request};
use crate::GlobalFlags;

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process gives them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A JSON file with the process to run (the OCI `process` object).
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Return once the process has started.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Where to write the PID of a host process whose exit status is the process's.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// The AF_UNIX socket the terminal's master is sent to (with --tty and --detach).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The working directory.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Environment variables to add, `K=V`.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// `UID[:GID]`.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional groups.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Accepted for runc compatibility: capabilities inside the sandbox follow the user.
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Accepted for runc compatibility.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Accepted for runc compatibility (no AppArmor or SELinux inside the sandbox).
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long)]
    pub process_label: Option<String>,
    /// Pass this many descriptors after standard error (3, 4, …) to the process, as its
    /// own 3, 4, ….
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    pub id: String,
    /// table or json (json: the PIDs, as runc prints them).
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct ExecWaitArgs {
    /// The inherited control connection to wait on.
    #[arg(long)]
    pub fd: i32,
    /// The process's host terminal: taken as controlling terminal, so that its resizes
    /// are reported to the Sentry.
    #[arg(long)]
    pub tty_fd: Option<i32>,
}

/// A container that runs, and a connection to its Sentry.
pub(super) fn connect(flags: &GlobalFlags, id: &str) -> anyhow::Result<(Stored, Connection)> {
    let root = PathBuf::from(&flags.root);
    let stored = Stored::load(&root, id)?;
    match stored.status() {
        "running" | "paused" => {}
        status => bail!("container {id:?} is {status}, not running"),
    }
    let path = crate::control::socket_path(&state::dir(&root, id));
    Ok((stored, Connection::open(&path)?))
}

/// The process `exec` runs: from `--process`, or the container's own process with the
/// command and flags applied (as runc does).
fn process_of(stored: &Stored, args: &ExecArgs) -> anyhow::Result<Process> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()));
    }
    if args.command.is_empty() {
        bail!("exec: no command (give one, or --process)");
    }
    let spec = Spec::load(&stored.bundle)?;
    let mut p = spec.process.unwrap_or_default();
    p.args = args.command.clone();
    p.terminal = args.tty;
    p.env.extend(args.env.iter().cloned());
    if let Some(cwd) = &args.cwd {
        p.cwd = cwd.clone();
    }
    if let Some(user) = &args.user {
        let (uid, gid) = user.split_once(':').unwrap_or((user, "0"));
        p.user.uid = uid.parse().with_context(|| format!("--user {user}"))?;
        p.user.gid = gid.parse().with_context(|| format!("--user {user}"))?;
    }
    if !args.additional_gids.is_empty() {
        p.user.additional_gids = args.additional_gids.clone();
    }
    Ok(p)
}

pub fn exec(flags: &GlobalFlags, args: ExecArgs) -> anyhow::Result<i32> {
    let preserved = crate::fds::take_preserved()?;
    let (stored, conn) = connect(flags, &args.id)?;
    let process = process_of(&stored, &args)?;
    let console = console_of(
        process.terminal,
        args.console_socket.as_deref(),
        args.detach,
    )?;
    if process.args.is_empty() {
        bail!("exec: the process has no args");
    }
    let request = Request::Exec(ExecRequest {
        args: process.args,
        env: process.env,
        cwd: if process.cwd.is_empty() {
            "/".to_string()
        } else {
            process.cwd
        },
        uid: process.user.uid,
        gid: process.user.gid,
        groups: process.user.additional_gids,
        terminal: console.is_some(),
    });
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let stdio = match &console {
        Some(HostConsole::Pty(pty)) => [pty.slave.as_fd(); 3],
        _ => [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
    };
    // In the foreground with a terminal, the caller's is the process's: raw, so that the
    // sandbox's own terminal does the work (restored when this returns).
    let _raw = match &console {
        Some(HostConsole::Caller) => Some(crate::console::RawMode::enter(stdin.as_fd())?),
        _ => None,
    };
    let passed: Vec<BorrowedFd<'_>> = stdio
        .iter()
        .copied()
        .chain(preserved.iter().map(AsFd::as_fd))
        .collect();
    match conn.call(&request, &passed)? {
        Reply::Started { pid } => log::debug!("exec: PID {pid} in the sandbox"),
        other => bail!("exec: unexpected reply {other:?}"),
    }
    if let (Some(HostConsole::Pty(pty)), Some(socket)) = (&console, &args.console_socket) {
        crate::console::send_master(socket, pty)?;
    }
    if !args.detach {
        let code = if console.is_some() {
            wait_with_resizes(&conn)
        } else {
            wait_exited(&conn)
        };
        if let Some(pid_file) = &args.pid_file {
            // Without --detach the PID is this process's own.
            let _ = std::fs::write(pid_file, std::process::id().to_string());
        }
        return Ok(code);
    }
    // Detached: a child `bulwark` holds the connection and exits with the process's
    // status, so that the PID in --pid-file behaves as the process does for a shim.
    let exe = std::env::current_exe().context("finding the bulwark binary")?;
    let mut command = std::process::Command::new(exe);
    command
        .arg(format!("--root={}", flags.root))
        .args(["exec-wait", "--fd", "3"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    use command_fds::{CommandFdExt, FdMapping};
    let mut fds = vec![FdMapping {
        parent_fd: conn.into_fd(),
        child_fd: 3,
    }];
    if let Some(HostConsole::Pty(pty)) = &console {
        command.args(["--tty-fd", "4"]);
        fds.push(FdMapping {
            parent_fd: pty.slave.try_clone().context("duplicating the pty")?,
            child_fd: 4,
        });
    }
    command
        .fd_mappings(fds)
        .context("passing the connection on")?;
    let child = command.spawn().context("starting the exec waiter")?;
    if let Some(pid_file) = &args.pid_file {
        std::fs::write(pid_file, child.id().to_string())
            .with_context(|| format!("writing {}", pid_file.display()))?;
    }
    Ok(0)
}

/// Waits for the `exited` reply; a sandbox that ends first killed the process (137).
fn wait_exited(conn: &Connection) -> i32 {
    match conn.next() {
        Ok(Reply::Exited { status }) => status,
        Ok(other) => {
            log::warn!("exec: unexpected reply {other:?}");
            255
        }
        Err(e) => {
            log::debug!("exec: {e:#}: the sandbox ended, taking the process with it");
            128 + 9
        }
    }
}

/// Waits for the `exited` reply, reporting the terminal's resizes (`SIGWINCH`, which
/// this process gets as the terminal's controlling process or foreground job) meanwhile.
fn wait_with_resizes(conn: &Connection) -> i32 {
    let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("exec: resizes will not reach the process: {e}");
            return wait_exited(conn);
        }
    };
    let handle = signals.handle();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for _ in signals.forever() {
                let _ = conn.notify(&Request::Resize);
            }
        });
        // A resize before the handler was in place.
        let _ = conn.notify(&Request::Resize);
        let code = wait_exited(conn);
        handle.close();
        code
    })
}

/// The hidden `exec-wait`: the detached half of `exec`.
pub fn exec_wait(_flags: &GlobalFlags, args: ExecWaitArgs) -> anyhow::Result<i32> {
    let fd = crate::fds::take(&[args.fd])?.remove(0);
    let conn = Connection::from_fd(fd);
    match args.tty_fd {
        Some(tty) => {
            let tty = crate::fds::take(&[tty])?.remove(0);
            crate::console::take_controlling(tty.as_fd())?;
            Ok(wait_with_resizes(&conn))
        }
        None => Ok(wait_exited(&conn)),
    }
}

pub fn ps(flags: &GlobalFlags, args: PsArgs) -> anyhow::Result<i32> {
    let (stored, conn) = connect(flags, &args.id)?;
    let Reply::Processes { list } = conn.call(&Request::Ps, &[])? else {
        bail!("ps: unexpected reply");
    };
    match args.format.as_str() {
        "json" => {
            // Host PIDs, as runc prints them: clients look them up on the host (`docker
            // top` filters the host's `ps -ef` by them), so the sandbox's own PIDs would
            // name unrelated host processes (PID 1 is the host's init).
            println!("{}", serde_json::to_string(&host_pids(&stored))?);
        }
        "table" => {
            println!("{:<8} {:<8} {:<8} {:<2} CMD", "UID", "PID", "PPID", "S");
            for p in &list {
                println!(
                    "{:<8} {:<8} {:<8} {:<2} {}",
                    p.uid, p.pid, p.ppid, p.state, p.cmd
                );
            }
        }
        other => bail!("unknown format {other:?} (table or json)"),
    }
    Ok(0)
}

/// The host processes of a container's sandbox: the Sentry, the processes it started (the
/// systrap stubs), and the Gofer.
fn host_pids(stored: &Stored) -> Vec<i32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            // Field 4 of /proc/PID/stat, after the command name in parentheses.
            let ppid: Option<i32> = std::fs::read_to_string(e.path().join("stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut pids = vec![stored.pid];
    let mut at = 0;
    while let Some(&parent) = pids.get(at) {
        let mut children: Vec<i32> = parents
            .iter()
            .filter(|&&(_, ppid)| ppid == parent)
            .map(|&(pid, _)| pid)
            .collect();
        children.sort_unstable();
        pids.extend(children);
        at += 1;
    }
    if stored.gofer_pid > 0 && state::start_time(stored.gofer_pid).is_some() {
        pids.push(stored.gofer_pid);
    }
    pids
}

fn set_paused(flags: &GlobalFlags, id: &str, paused: bool) -> anyhow::Result<i32> {
    let (mut stored, conn) = connect(flags, id)?;
    if stored.paused == paused {
        bail!(
            "container {id:?} is {}",
            if paused {
                "paused already"
            } else {
                "not paused"
            }
        );
    }
    let request = if paused {
        Request::Pause
    } else {
        Request::Resume
    };
    conn.call(&request, &[])?;
    stored.paused = paused;
    stored.save(&PathBuf::from(&flags.root))?;
    Ok(0)
}

pub fn pause(flags: &GlobalFlags, args: super::commands::IdArgs) -> anyhow::Result<i32> {
    set_paused(flags, &args.id, true)
}

pub fn resume(flags: &GlobalFlags, args: super::commands::IdArgs) -> anyhow::Result<i32> {
    set_paused(flags, &args.id, false)
}

/// `kill --all` of a running container: every process of the sandbox.
pub fn signal_all(flags: &GlobalFlags, id: &str, signal: i32) -> anyhow::Result<()> {
    let (_, conn) = connect(flags, id)?;
    conn.call(&Request::Signal { signal, all: true }, &[])?;
    Ok(())
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    pub id: String,
    /// A process of the sandbox to wait for (default: the container's init).
    #[arg(long, default_value_t = 0)]
    pub pid: i32,
}

/// `bulwark wait`: waits until the container's init (or `--pid`) exits and prints its
/// status as runsc does, `{"id":…,"exitStatus":N}`.
pub fn wait(flags: &GlobalFlags, args: WaitArgs) -> anyhow::Result<i32> {
    let (_, conn) = connect(flags, &args.id)?;
    let Reply::Exited { status } = conn.call(&Request::Wait { pid: args.pid }, &[])? else {
        bail!("wait: unexpected reply");
    };
    println!(
        "{}",
        serde_json::json!({"id": args.id, "exitStatus": status})
    );
    Ok(0)
}
