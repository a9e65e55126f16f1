//! `bulwark do`: runs one program in a fresh sandbox, as `runsc do` does. The root is the
//! host's root filesystem, read-only, served by a Gofer; the caller's stdio is the
//! program's; the exit status is the program's (128 + N when signal N killed it).

use std::os::unix::process::ExitStatusExt;

use anyhow::{bail, Context};
use clap::Args;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;

use crate::launch::{self, LaunchSpec, Sandbox};
use crate::GlobalFlags;

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
    let cwd = match args.cwd {
        Some(cwd) => cwd,
        None => std::env::current_dir()
            .context("reading the current directory")?
            .display()
            .to_string(),
    };
    // The program's environment: the caller's, with --env applied.
    let mut env: Vec<(String, String)> = std::env::vars().collect();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--env {kv:?} is not K=V"))?;
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    // On a terminal, the program gets a terminal of the sandbox's own joined to it (as
    // `run` with `process.terminal` does): job control, `tty`, and the terminal's
    // modes are the sandbox's; the caller's is raw meanwhile, restored at the end.
    let stdin = std::io::stdin();
    let on_terminal = rustix::termios::isatty(&stdin);
    let console = if on_terminal {
        Some(crate::console::HostConsole::Caller.for_sentry()?)
    } else {
        None
    };
    let _raw = if on_terminal {
        Some(crate::console::RawMode::enter(std::os::fd::AsFd::as_fd(
            &stdin,
        ))?)
    } else {
        None
    };
    let spec = LaunchSpec {
        cgroup: None,
        preserved: Vec::new(),
        platform: name,
        root: "/".into(),
        read_only: true,
        argv: args.argv,
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        cwd,
        uid: 0,
        gid: 0,
        hostname: None,
        die_with_parent: true,
        protect_init: false,
        start_fifo: None,
        ready: None,
        control: None,
        allow_no_landlock: args.allow_no_landlock,
        binds: Vec::new(),
        container: None,
        console,
    };
    let Sandbox {
        mut boot,
        mut gofer,
    } = launch::spawn(flags, spec)?;

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
    if status.signal() == Some(libc::SIGSYS) {
        // The program's own SIGSYS is reported as an exit status: this is the Sentry's.
        eprintln!(
            "bulwark: the Sentry made a host syscall its seccomp filter refuses, and was \
             killed (run with --debug to have it named)"
        );
    }
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
