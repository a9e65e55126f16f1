//! `bulwark do`: runs one program in a fresh sandbox, as `runsc do` does. The root is the
//! host's root filesystem, read-only, served by a Gofer; the caller's stdio is the
//! program's; the exit status is the program's (128 + N when signal N killed it).

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use clap::Args;
use command_fds::{CommandFdExt, FdMapping};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;

use crate::GlobalFlags;

/// Gofer channels per sandbox: the Sentry's threads share them.
const GOFER_CHANNELS: i32 = 2;
/// Where the channels appear in the child processes.
const FIRST_CHANNEL_FD: i32 = 3;

#[derive(Args, Debug)]
pub struct DoArgs {
    /// Working directory of the program (default: the caller's).
    #[arg(long)]
    pub cwd: Option<String>,
    /// Adds or replaces an environment variable (`K=V`); may be repeated.
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// Start even where Landlock cannot confine the Gofer (with a warning).
    #[arg(long)]
    pub allow_no_landlock: bool,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

/// The platform to run on, and why it was chosen.
pub fn choose_platform(flags: &GlobalFlags) -> anyhow::Result<(&'static str, String)> {
    let available = platform::available();
    if let Some(name) = &flags.platform {
        let Some(&known) = ["kvm", "systrap"].iter().find(|&&p| p == name.as_str()) else {
            bail!("unknown platform {name:?} (use --platform=kvm or --platform=systrap)");
        };
        if known == "kvm" && !available.contains(&"kvm") {
            if let Err(e) = platform::kvm::Kvm::probe() {
                bail!("{e}");
            }
        }
        return Ok((known, "chosen with --platform".to_string()));
    }
    match platform::default_platform() {
        Some((name, why)) => Ok((name, why.to_string())),
        None => bail!("no platform works on this host: /dev/kvm is missing and systrap failed"),
    }
}

pub fn run(flags: &GlobalFlags, args: DoArgs) -> anyhow::Result<i32> {
    let (name, why) = choose_platform(flags)?;
    log::debug!("platform: {name} ({why})");
    let exe = std::env::current_exe().context("finding the bulwark binary")?;
    let cwd = match args.cwd {
        Some(cwd) => cwd,
        None => std::env::current_dir()
            .context("reading the current directory")?
            .display()
            .to_string(),
    };

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
    let mappings = |ends: Vec<std::os::fd::OwnedFd>| -> Vec<FdMapping> {
        ends.into_iter()
            .zip(FIRST_CHANNEL_FD..)
            .map(|(parent_fd, child_fd)| FdMapping {
                parent_fd,
                child_fd,
            })
            .collect()
    };

    let mut command = Command::new(&exe);
    command.args(global_args(flags, name));
    command.args([
        "gofer",
        "--serve",
        "/",
        "--read-only",
        "--channels",
        &channel_list,
    ]);
    if args.allow_no_landlock {
        command.arg("--allow-no-landlock");
    }
    command.stdin(Stdio::null()).stdout(Stdio::null());
    command
        .fd_mappings(mappings(gofer_ends))
        .context("passing the gofer its channels")?;
    let mut gofer = command.spawn().context("starting the gofer")?;
    // The command holds our copies of the gofer's channel ends: close them, so the Sentry
    // sees the channels end if the Gofer dies.
    drop(command);

    // The program's environment: the caller's, with --env applied.
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {kv:?} is not K=V"))?;
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    let mut command = Command::new(&exe);
    command.args(global_args(flags, name));
    command.args(["boot", "--gofer-fds", &channel_list, "--cwd", &cwd]);
    for (k, v) in &env {
        command.arg(format!("--env={k}={v}"));
    }
    command.arg("--").args(&args.argv);
    command
        .fd_mappings(mappings(sentry_ends))
        .context("passing the sentry its channels")?;
    let mut boot = command.spawn().context("starting the sentry")?;
    drop(command);

    // Signals sent to `bulwark do` go to the sandbox, whose Sentry delivers them to the
    // program. Those the terminal sends reach the Sentry directly (it stays in the
    // terminal's foreground process group, so the program can read the terminal): only
    // signals another process sent are forwarded, so none arrives twice.
    let boot_pid = rustix::process::Pid::from_child(&boot);
    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        .context("installing signal handlers")?;
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for origin in signals.forever() {
            if !matches!(origin.cause, Cause::Sent(_)) {
                continue;
            }
            if let Some(sig) = rustix::process::Signal::from_named_raw(origin.signal) {
                let _ = rustix::process::kill_process(boot_pid, sig);
            }
        }
    });

    let status = boot.wait().context("waiting for the sentry")?;
    handle.close();
    let _ = forwarder.join();
    let _ = gofer.kill();
    let _ = gofer.wait();
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 128,
    })
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
    args
}
