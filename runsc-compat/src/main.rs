//! `bulwark`: an OCI runtime with a runsc-compatible command line.
//!
//! Process model (DESIGN.md): `bulwark do` starts two more copies of this binary, the
//! Gofer (`bulwark gofer`, serving the root filesystem) and the Sentry (`bulwark boot`,
//! running the program), connected by `SOCK_SEQPACKET` socketpairs.
#![deny(unsafe_code)]

mod cmd_boot;
mod cmd_do;
mod cmd_gofer;
mod confine;
mod console;
mod container;
mod control;
mod fds;
mod launch;
mod logging;
mod oci;
mod sandbox;

use clap::{Args, Parser, Subcommand};

/// Flags every command accepts, as runsc and runc spell them.
#[derive(Args, Clone, Debug)]
pub struct GlobalFlags {
    /// Where container state lives.
    #[arg(long, global = true, default_value = "/var/run/bulwark")]
    root: String,
    /// Log file (default: standard error).
    #[arg(long, global = true)]
    log: Option<String>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Verbose logging, including which platform was chosen and why.
    #[arg(long, global = true)]
    debug: bool,
    /// Where debug logs go (a file, or a directory prefix ending in `/`).
    #[arg(long = "debug-log", global = true)]
    debug_log: Option<String>,
    /// Log every application syscall.
    #[arg(long, global = true)]
    strace: bool,
    /// The platform: kvm or systrap (default: the fastest that works here).
    #[arg(long, global = true)]
    platform: Option<String>,
    /// Networking: none is the only mode so far.
    #[arg(long, global = true, default_value = "none")]
    network: String,
    /// Use the systemd cgroup driver (not supported: `create` refuses it).
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
}

#[derive(Parser, Debug)]
#[command(
    name = "bulwark",
    version,
    about = "Bulwark: an application kernel for containers"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a program in a fresh sandbox whose root is the host's root, read-only, with
    /// the caller's standard input, output and error.
    Do(cmd_do::DoArgs),
    /// Creates a container from a bundle; it waits for `start`.
    Create(oci::commands::CreateArgs),
    /// Starts a created container's program.
    Start(oci::commands::IdArgs),
    /// Prints a container's OCI state.
    State(oci::commands::IdArgs),
    /// Sends a signal to a container.
    Kill(oci::commands::KillArgs),
    /// Removes a container (killing it first with --force).
    Delete(oci::commands::DeleteArgs),
    /// Creates and starts a container, and waits for it (unless --detach).
    Run(oci::commands::RunArgs),
    /// Lists the containers under --root.
    List(oci::commands::ListArgs),
    /// Writes an example config.json.
    Spec(oci::commands::SpecArgs),
    /// Resource usage of a container, from its cgroup (JSON lines).
    Events(oci::events::EventsArgs),
    /// Waits for a container's init (or a process in it) to exit; prints its status.
    Wait(oci::exec::WaitArgs),
    /// What this runtime supports of the OCI spec (JSON).
    Features,
    /// Runs a process in a running container.
    Exec(oci::exec::ExecArgs),
    /// Lists the processes of a container.
    Ps(oci::exec::PsArgs),
    /// Freezes every process of a container.
    Pause(oci::commands::IdArgs),
    /// Lets a paused container run again.
    Resume(oci::commands::IdArgs),
    /// Changes a container's resource limits (its cgroup's).
    Update(oci::commands::UpdateArgs),
    /// The detached half of `exec` (started by it).
    #[command(hide = true)]
    ExecWait(oci::exec::ExecWaitArgs),
    /// The Sentry of one sandbox (started by the other commands).
    #[command(hide = true)]
    Boot(cmd_boot::BootArgs),
    /// The Gofer of one container (started by the other commands).
    #[command(hide = true)]
    Gofer(cmd_gofer::GoferArgs),
}

impl Command {
    /// The subcommand as typed (names per-process log files).
    fn name(&self) -> &'static str {
        match self {
            Self::Do(_) => "do",
            Self::Create(_) => "create",
            Self::Start(_) => "start",
            Self::State(_) => "state",
            Self::Kill(_) => "kill",
            Self::Delete(_) => "delete",
            Self::Run(_) => "run",
            Self::List(_) => "list",
            Self::Spec(_) => "spec",
            Self::Exec(_) => "exec",
            Self::Ps(_) => "ps",
            Self::Pause(_) => "pause",
            Self::Resume(_) => "resume",
            Self::Update(_) => "update",
            Self::Features => "features",
            Self::Wait(_) => "wait",
            Self::Events(_) => "events",
            Self::ExecWait(_) => "exec-wait",
            Self::Boot(_) => "boot",
            Self::Gofer(_) => "gofer",
        }
    }
}

fn main() {
    let cli = Cli::parse();
    // Before anything of this process's own takes a low descriptor number.
    let preserve = match &cli.command {
        Command::Create(a) => a.preserve_fds,
        Command::Run(a) => a.create.preserve_fds,
        Command::Exec(a) => a.preserve_fds,
        _ => 0,
    };
    fds::capture_preserved(preserve);
    // The sandbox's own processes take the descriptors their parent `bulwark` named; every
    // other command keeps whatever its client leaked from reaching them.
    if !matches!(
        cli.command,
        Command::Boot(_) | Command::Gofer(_) | Command::ExecWait(_)
    ) {
        fds::cloexec_inherited();
    }
    if let Err(err) = logging::init(&cli.global, cli.command.name()) {
        eprintln!("bulwark: {err:#}");
        std::process::exit(1);
    }
    // The OCI commands fail with 1, as runc's do; `do` and the sandbox processes with 128,
    // apart from any status a program could exit with by itself.
    let failure = match cli.command {
        Command::Do(_) | Command::Boot(_) | Command::Gofer(_) => 128,
        _ => 1,
    };
    let result = match cli.command {
        Command::Do(args) => cmd_do::run(&cli.global, args),
        Command::Create(args) => oci::commands::create(&cli.global, args),
        Command::Start(args) => oci::commands::start(&cli.global, args),
        Command::State(args) => oci::commands::state(&cli.global, args),
        Command::Kill(args) => oci::commands::kill(&cli.global, args),
        Command::Delete(args) => oci::commands::delete(&cli.global, args),
        Command::Run(args) => oci::commands::run(&cli.global, args),
        Command::List(args) => oci::commands::list(&cli.global, args),
        Command::Spec(args) => oci::commands::spec(&cli.global, args),
        Command::Exec(args) => oci::exec::exec(&cli.global, args),
        Command::Features => oci::features::features(&cli.global),
        Command::Wait(args) => oci::exec::wait(&cli.global, args),
        Command::Events(args) => oci::events::events(&cli.global, args),
        Command::Ps(args) => oci::exec::ps(&cli.global, args),
        Command::Pause(args) => oci::exec::pause(&cli.global, args),
        Command::Resume(args) => oci::exec::resume(&cli.global, args),
        Command::Update(args) => oci::commands::update(&cli.global, args),
        Command::ExecWait(args) => oci::exec::exec_wait(&cli.global, args),
        Command::Boot(args) => cmd_boot::run(&cli.global, args),
        Command::Gofer(args) => cmd_gofer::run(&cli.global, args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            log::error!("{err:#}");
            eprintln!("bulwark: {err:#}");
            std::process::exit(failure);
        }
    }
}
