//! Starting a sandbox: the Gofer (`bulwark gofer`) serving a root, and the Sentry
//! (`bulwark boot`) connected to it by `SOCK_SEQPACKET` channels. Used by `do` and by the
//! OCI `create`.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::Context;
use command_fds::{CommandFdExt, FdMapping};

use crate::GlobalFlags;

/// Gofer channels per sandbox: the Sentry's threads share them.
const GOFER_CHANNELS: i32 = 2;
/// Where the channels appear in the child processes.
const FIRST_CHANNEL_FD: i32 = 3;
/// Where `boot` finds the descriptor it reports readiness on (`--ready-fd`).
const READY_FD: i32 = FIRST_CHANNEL_FD + GOFER_CHANNELS;
/// Where `boot` finds its control socket (`--control-fd`).
const CONTROL_FD: i32 = READY_FD + 1;
/// Where `boot` finds the container config (`--config-fd`).
const CONFIG_FD: i32 = CONTROL_FD + 1;
/// Where `boot` finds the container's terminal (`--console-fd`).
const CONSOLE_FD: i32 = CONFIG_FD + 1;
/// Where `boot` finds the descriptors preserved for the program (`--preserved-fds`).
const FIRST_PRESERVED_FD: i32 = CONSOLE_FD + 1;

/// What to run, and how.
pub struct LaunchSpec {
    /// The platform, already chosen.
    pub platform: &'static str,
    /// The host directory served as the root.
    pub root: PathBuf,
    pub read_only: bool,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub hostname: Option<String>,
    /// `do`: the sandbox dies with the `bulwark` that started it. OCI containers outlive
    /// `bulwark create`.
    pub die_with_parent: bool,
    /// Signals from outside that init does not handle are dropped, as for the init of a
    /// PID namespace (OCI containers; `do` passes them on, so that Ctrl-C ends the program).
    pub protect_init: bool,
    /// The Sentry waits for a byte on this FIFO (`bulwark start`) before running the
    /// program.
    pub start_fifo: Option<PathBuf>,
    /// The Sentry reports on this pipe when it is ready (or why it failed).
    pub ready: Option<OwnedFd>,
    /// The listening control socket the Sentry serves `exec`, `ps`, … on.
    pub control: Option<OwnedFd>,
    pub allow_no_landlock: bool,
    /// Host trees the Gofer serves besides the root (OCI bind mounts).
    pub binds: Vec<crate::container::GoferBind>,
    /// The OCI container's mounts and process settings (`None` for `bulwark do`).
    pub container: Option<crate::container::ContainerConfig>,
    /// The host terminal of a container with `process.terminal` (see `console.rs`).
    pub console: Option<Console>,
    /// The container's cgroup (`oci::cgroups`), which the Sentry and the Gofer join.
    pub cgroup: Option<String>,
    /// Descriptors the program gets as its 3, 4, … (`--preserve-fds`).
    pub preserved: Vec<OwnedFd>,
}

/// A container's host terminal, for the Sentry to bridge.
pub struct Console {
    pub tty: OwnedFd,
    /// The Sentry takes it as its controlling terminal (a pty of its own, allocated for
    /// the console socket), to be sent `SIGWINCH`; not the caller's terminal.
    pub take_controlling: bool,
}

/// The two processes of a sandbox.
pub struct Sandbox {
    pub boot: Child,
    pub gofer: Child,
}

pub fn spawn(flags: &GlobalFlags, spec: LaunchSpec) -> anyhow::Result<Sandbox> {
    let exe = std::env::current_exe().context("finding the bulwark binary")?;
    let mut sentry_ends = Vec::new();
    let mut gofer_ends = Vec::new();
    for _ in 0..GOFER_CHANNELS {
        let (a, b) = gofer::channel::pair().context("creating a gofer channel")?;
        sentry_ends.push(a);
        gofer_ends.push(b);
    }
    let channel_list = (0..GOFER_CHANNELS)
        .map(|i| (FIRST_CHANNEL_FD + i).to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mappings = |ends: Vec<OwnedFd>| -> Vec<FdMapping> {
        ends.into_iter()
            .zip(FIRST_CHANNEL_FD..)
            .map(|(parent_fd, child_fd)| FdMapping {
                parent_fd,
                child_fd,
            })
            .collect()
    };

    let mut command = Command::new(&exe);
    command.args(global_args(flags, spec.platform));
    command.arg("gofer");
    command
        .arg("--serve")
        .arg(serve_arg("/", &spec.root, spec.read_only));
    for b in &spec.binds {
        command
            .arg("--serve")
            .arg(serve_arg(&b.attach, &b.path, b.read_only));
    }
    command.args(["--channels", &channel_list]);
    if let Some(cgroup) = &spec.cgroup {
        command.arg(format!("--cgroup={cgroup}"));
    }
    if spec.allow_no_landlock {
        command.arg("--allow-no-landlock");
    }
    if spec.die_with_parent {
        command.arg("--die-with-parent");
    }
    // A container with a terminal of its own (a console socket's) has it for all its stdio,
    // and the sandbox keeps none of the caller's: a runc shim reads `create`'s output to
    // its end, which would never come while the sandbox runs (`docker run -t` hung).
    let own_terminal = spec.console.as_ref().is_some_and(|c| c.take_controlling);
    command.stdin(Stdio::null()).stdout(Stdio::null());
    if own_terminal {
        command.stderr(Stdio::null());
    }
    // Its own process group: a Ctrl-C at the terminal is for the program, not the Gofer.
    command.process_group(0);
    command
        .fd_mappings(mappings(gofer_ends))
        .context("passing the gofer its channels")?;
    let mut gofer = command.spawn().context("starting the gofer")?;
    // The command holds our copies of the gofer's channel ends: close them, so the Sentry
    // sees the channels end if the Gofer dies.
    drop(command);

    let mut command = Command::new(&exe);
    command.args(global_args(flags, spec.platform));
    command.args(["boot", "--gofer-fds", &channel_list, "--cwd", &spec.cwd]);
    command.args([
        "--uid",
        &spec.uid.to_string(),
        "--gid",
        &spec.gid.to_string(),
    ]);
    for kv in &spec.env {
        command.arg(format!("--env={kv}"));
    }
    if let Some(h) = &spec.hostname {
        command.arg(format!("--hostname={h}"));
    }
    if let Some(cgroup) = &spec.cgroup {
        command.arg(format!("--cgroup={cgroup}"));
    }
    if spec.die_with_parent {
        command.arg("--die-with-parent");
    }
    if spec.protect_init {
        command.arg("--protect-init");
    }
    if let Some(fifo) = &spec.start_fifo {
        command.arg("--start-fifo").arg(fifo);
    }
    let mut fds = mappings(sentry_ends);
    if let Some(ready) = spec.ready {
        command.arg(format!("--ready-fd={READY_FD}"));
        fds.push(FdMapping {
            parent_fd: ready,
            child_fd: READY_FD,
        });
    }
    if let Some(control) = spec.control {
        command.arg(format!("--control-fd={CONTROL_FD}"));
        fds.push(FdMapping {
            parent_fd: control,
            child_fd: CONTROL_FD,
        });
    }
    if let Some(config) = &spec.container {
        command.arg(format!("--config-fd={CONFIG_FD}"));
        fds.push(FdMapping {
            parent_fd: config.to_memfd()?,
            child_fd: CONFIG_FD,
        });
    }
    if own_terminal {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    }
    if let Some(console) = spec.console {
        command.arg(format!("--console-fd={CONSOLE_FD}"));
        if console.take_controlling {
            command.arg("--console-ctty");
        }
        fds.push(FdMapping {
            parent_fd: console.tty,
            child_fd: CONSOLE_FD,
        });
    }
    if !spec.preserved.is_empty() {
        let list = (FIRST_PRESERVED_FD..)
            .take(spec.preserved.len())
            .map(|fd| fd.to_string())
            .collect::<Vec<_>>()
            .join(",");
        command.arg(format!("--preserved-fds={list}"));
        fds.extend(spec.preserved.into_iter().zip(FIRST_PRESERVED_FD..).map(
            |(parent_fd, child_fd)| FdMapping {
                parent_fd,
                child_fd,
            },
        ));
    }
    command.arg("--").args(&spec.argv);
    command
        .fd_mappings(fds)
        .context("passing the sentry its channels")?;
    // The Sentry is the init of a PID namespace of its own (DESIGN.md), and our child.
    let boot = match crate::confine::spawn_in_new_pid_namespace(&mut command) {
        Ok(b) => b,
        Err(e) => {
            let _ = gofer.kill();
            let _ = gofer.wait();
            return Err(e).context("starting the sentry");
        }
    };
    drop(command);
    Ok(Sandbox { boot, gofer })
}

/// A `--serve NAME=PATH[:ro]` value of `bulwark gofer`.
fn serve_arg(name: &str, path: &std::path::Path, read_only: bool) -> std::ffi::OsString {
    let mut arg = std::ffi::OsString::from(format!("{name}="));
    arg.push(path);
    if read_only {
        arg.push(":ro");
    }
    arg
}

/// The global flags a child `bulwark` needs, with the platform already decided.
fn global_args(flags: &GlobalFlags, platform: &str) -> Vec<String> {
    let mut args = vec![
        format!("--platform={platform}"),
        format!("--root={}", flags.root),
    ];
    if flags.debug {
        args.push("--debug".to_string());
    }
    if flags.strace {
        args.push("--strace".to_string());
    }
    if let Some(log) = &flags.log {
        args.push(format!("--log={log}"));
    }
    if let Some(log) = &flags.debug_log {
        args.push(format!("--debug-log={log}"));
    }
    args.push(format!("--log-format={}", flags.log_format));
    args
}
