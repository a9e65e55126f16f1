//! `create`, `start`, `state`, `kill`, `delete`, `run`, `list` and `spec`, with runc's and
//! runsc's arguments.
//!
//! `create` starts the sandbox (Gofer and Sentry) and leaves the Sentry waiting on a FIFO
//! with the program loaded; `start` writes to the FIFO. The Sentry is the container's
//! process: its PID goes to `--pid-file`, and its exit status is the container's.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use super::cgroups::{self, Cgroup, Resources};
use super::spec::Spec;
use super::state::{self, Stored};
use crate::console::{self, HostConsole};
use crate::launch::{self, LaunchSpec, Sandbox};
use crate::GlobalFlags;

#[derive(Args, Debug)]
pub struct CreateArgs {
    pub id: String,
    /// The bundle directory (holding config.json); default: the current directory.
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
    /// Where to write the container's PID.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// The AF_UNIX socket the terminal's master is sent to (`process.terminal`).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility: the Sentry always pivots into an empty root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility: there are no session keyrings in the sandbox.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many descriptors after standard error (3, 4, …) to the container's
    /// process, as its own 3, 4, ….
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return after starting, leaving the container running.
    #[arg(short = 'd', long)]
    pub detach: bool,
}

#[derive(Args, Debug)]
pub struct IdArgs {
    pub id: String,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: String,
    /// The signal (name or number; default TERM).
    pub signal: Option<String>,
    /// Send to every process of the container (they all live in the one sandbox).
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill the container first if it runs.
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// `linux.resources` as JSON, from this file (`-`: standard input).
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (a `k`, `m` or `g` suffix multiplies).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory plus swap limit in bytes (-1: unlimited).
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// The most processes (tasks) at once.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// CFS quota in microseconds per period (-1: none).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long, alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    /// The CPUs it may run on (`0-3`, `0,2`).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// The memory nodes it may use.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Accepted for runc compatibility; not supported (said on standard error).
    #[arg(long)]
    pub kernel_memory: Option<String>,
    /// Accepted for runc compatibility; not supported (said on standard error).
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Accepted for runc compatibility; not supported (said on standard error).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json.
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Only the IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Where to write config.json (default: the current directory).
    #[arg(short = 'b', long)]
    pub bundle: Option<PathBuf>,
}

fn root(flags: &GlobalFlags) -> PathBuf {
    PathBuf::from(&flags.root)
}

/// Starts the sandbox of a new container; returns it with its stored state. `detach`:
/// `bulwark` returns while the container runs (`create`, `run -d`).
fn create_sandbox(
    flags: &GlobalFlags,
    args: &CreateArgs,
    detach: bool,
) -> anyhow::Result<(Sandbox, Stored)> {
    state::check_id(&args.id)?;
    let preserved = crate::fds::take_preserved()?;
    let bundle = match &args.bundle {
        Some(b) => b.clone(),
        None => std::env::current_dir()?,
    };
    let bundle = bundle
        .canonicalize()
        .with_context(|| format!("bundle {}", bundle.display()))?;
    let spec = Spec::load(&bundle)?;
    let process = spec
        .process
        .as_ref()
        .context("config.json has no process")?;
    let console = console::console_of(process.terminal, args.console_socket.as_deref(), detach)?;
    if process.args.is_empty() {
        bail!("process.args is empty");
    }
    let root_spec = spec.root.as_ref().context("config.json has no root")?;
    let rootfs = bundle.join(&root_spec.path);
    let (container, binds) = super::config::from_spec(&spec, &bundle)?;
    let null = serde_json::Value::Null;
    let linux = spec.linux.as_ref().unwrap_or(&null);
    let resources = Resources::from_linux(linux)?;
    let cgroup_path = cgroups::path_for(
        linux.get("cgroupsPath").and_then(|p| p.as_str()),
        &args.id,
        flags.systemd_cgroup,
    )?;
    let hooks = spec.hooks.clone().unwrap_or_default();
    let root = root(flags);
    let dir = state::dir(&root, &args.id);
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container {:?} already exists", args.id)
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
    }
    let mut cgroup = None;
    let result = (|| {
        // After the state directory: a second `create` of the same ID stops above, and
        // leaves the first one's cgroup alone.
        cgroup = Cgroup::create(&cgroup_path, &resources)?;
        let fifo = state::fifo(&root, &args.id);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .with_context(|| format!("creating {}", fifo.display()))?;
        let (ready_read, ready_write) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).context("creating a pipe")?;
        let (name, _) = crate::cmd_do::choose_platform(flags)?;
        let control = crate::control::listen(&crate::control::socket_path(&dir))?;
        let launch = LaunchSpec {
            platform: name,
            root: rootfs,
            read_only: true,
            argv: process.args.clone(),
            env: process.env.clone(),
            cwd: if process.cwd.is_empty() {
                "/".to_string()
            } else {
                process.cwd.clone()
            },
            uid: process.user.uid,
            gid: process.user.gid,
            hostname: spec.hostname.clone(),
            die_with_parent: false,
            protect_init: true,
            start_fifo: Some(fifo),
            ready: Some(ready_write),
            control: Some(control),
            allow_no_landlock: false,
            binds,
            container: Some(container),
            console: match &console {
                Some(c) => Some(c.for_sentry()?),
                None => None,
            },
            cgroup: cgroup.as_ref().map(|_| cgroup_path.clone()),
            preserved,
        };
        let mut sandbox = launch::spawn(flags, launch)?;
        if let Some(adj) = process.oom_score_adj {
            // The Sentry is the container's process for the host's OOM killer.
            let path = format!("/proc/{}/oom_score_adj", sandbox.boot.id());
            if let Err(e) = std::fs::write(&path, adj.to_string()) {
                kill_sandbox(&mut sandbox);
                return Err(e).with_context(|| format!("process.oomScoreAdj: writing {path}"));
            }
        }
        let mut line = String::new();
        BufReader::new(std::fs::File::from(ready_read)).read_line(&mut line)?;
        if line.trim() != "ok" {
            kill_sandbox(&mut sandbox);
            let why = line.trim();
            bail!(
                "{}",
                if why.is_empty() {
                    "the sandbox failed to start"
                } else {
                    why
                }
            );
        }
        if let (Some(HostConsole::Pty(pty)), Some(socket)) = (&console, &args.console_socket) {
            if let Err(e) = console::send_master(socket, pty) {
                let _ = sandbox.boot.kill();
                let _ = sandbox.gofer.kill();
                let _ = sandbox.boot.wait();
                let _ = sandbox.gofer.wait();
                return Err(e);
            }
        }
        let pid = i32::try_from(sandbox.boot.id()).unwrap_or(0);
        let stored = Stored {
            id: args.id.clone(),
            bundle,
            pid,
            start_time: state::start_time(pid).unwrap_or(0),
            gofer_pid: i32::try_from(sandbox.gofer.id()).unwrap_or(0),
            started: false,
            paused: false,
            created: now_rfc3339(),
            annotations: spec.annotations.clone(),
            hooks: Some(hooks.clone()),
            cgroup: cgroup.as_ref().map(|_| cgroup_path.clone()),
        };
        let finish = || -> anyhow::Result<()> {
            stored.save(&root)?;
            // The sandbox is up and the program not yet started: the runtime's hooks,
            // then the container's (see `oci::hooks` for where they run).
            let creating = stored.hook_state("creating");
            super::hooks::run("prestart", &hooks.prestart, &creating)?;
            super::hooks::run("createRuntime", &hooks.create_runtime, &creating)?;
            super::hooks::run("createContainer", &hooks.create_container, &creating)?;
            if let Some(pid_file) = &args.pid_file {
                std::fs::write(pid_file, pid.to_string())
                    .with_context(|| format!("writing {}", pid_file.display()))?;
            }
            Ok(())
        };
        if let Err(e) = finish() {
            kill_sandbox(&mut sandbox);
            return Err(e);
        }
        Ok((sandbox, stored))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(c) = &cgroup {
            c.remove();
        }
    }
    result
}

/// Ends both processes of a sandbox that failed to come up.
fn kill_sandbox(sandbox: &mut Sandbox) {
    let _ = sandbox.boot.kill();
    let _ = sandbox.gofer.kill();
    let _ = sandbox.boot.wait();
    let _ = sandbox.gofer.wait();
}

pub fn create(flags: &GlobalFlags, args: CreateArgs) -> anyhow::Result<i32> {
    // The sandbox outlives this process: its processes are reparented when it exits.
    let _ = create_sandbox(flags, &args, true)?;
    Ok(0)
}

fn start_stored(root: &Path, stored: &mut Stored) -> anyhow::Result<()> {
    match stored.status() {
        "created" => {}
        status => bail!("container {:?} is {status}, not created", stored.id),
    }
    let hooks = stored.hooks.clone().unwrap_or_default();
    if let Err(e) = super::hooks::run(
        "startContainer",
        &hooks.start_container,
        &stored.hook_state("created"),
    ) {
        // As runc: the container does not start, and is gone.
        if let Some(pid) = rustix::process::Pid::from_raw(stored.pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
        return Err(e);
    }
    let fifo = state::fifo(root, &stored.id);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .with_context(|| format!("opening {}", fifo.display()))?;
    f.write_all(b"s").context("starting the container")?;
    // Wait until the Sentry has taken the byte and let the program go: a `kill` right
    // after `start` returns must reach the program, not end a sandbox still waiting. A
    // sandbox that is gone by then (a program that ended at once) has started too.
    let path = crate::control::socket_path(&state::dir(root, &stored.id));
    if let Err(e) = crate::control::Connection::open(&path)
        .and_then(|c| c.call(&crate::control::Request::Started, &[]))
    {
        log::debug!("start: no answer from the sandbox ({e:#}); it has ended");
    }
    stored.started = true;
    stored.save(root)?;
    super::hooks::run_logged("poststart", &hooks.poststart, &stored.hook_state("running"));
    Ok(())
}

/// Removes the container's cgroup, once its processes are gone.
fn remove_cgroup(stored: &Stored) {
    if let Some(path) = &stored.cgroup {
        Cgroup::new(path).remove();
    }
}

/// The poststop hooks, once the container is gone.
fn poststop(stored: &Stored) {
    if let Some(hooks) = &stored.hooks {
        super::hooks::run_logged("poststop", &hooks.poststop, &stored.hook_state("stopped"));
    }
}

pub fn start(flags: &GlobalFlags, args: IdArgs) -> anyhow::Result<i32> {
    let root = root(flags);
    let mut stored = Stored::load(&root, &args.id)?;
    start_stored(&root, &mut stored)?;
    Ok(0)
}

pub fn run(flags: &GlobalFlags, args: RunArgs) -> anyhow::Result<i32> {
    let root = root(flags);
    let (mut sandbox, mut stored) = create_sandbox(flags, &args.create, args.detach)?;
    // In the foreground with a terminal, the caller's is the container's: raw, so that
    // the sandbox's own terminal does the work (restored when this returns).
    let terminal = Spec::load(&stored.bundle)
        .ok()
        .and_then(|s| s.process)
        .is_some_and(|p| p.terminal);
    let _raw = if terminal && !args.detach {
        Some(crate::console::RawMode::enter(std::os::fd::AsFd::as_fd(
            &std::io::stdin(),
        ))?)
    } else {
        None
    };
    if let Err(e) = start_stored(&root, &mut stored) {
        kill_sandbox(&mut sandbox);
        remove_cgroup(&stored);
        let _ = std::fs::remove_dir_all(state::dir(&root, &stored.id));
        return Err(e);
    }
    if args.detach {
        return Ok(0);
    }
    let status = sandbox.boot.wait().context("waiting for the container")?;
    let _ = sandbox.gofer.kill();
    let _ = sandbox.gofer.wait();
    remove_cgroup(&stored);
    poststop(&stored);
    let _ = std::fs::remove_dir_all(state::dir(&root, &stored.id));
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

pub fn state(flags: &GlobalFlags, args: IdArgs) -> anyhow::Result<i32> {
    let stored = Stored::load(&root(flags), &args.id)?;
    println!("{}", serde_json::to_string_pretty(&stored.oci())?);
    Ok(0)
}

/// A signal from its name (`TERM`, `SIGTERM`) or number.
fn parse_signal(s: &str) -> anyhow::Result<rustix::process::Signal> {
    let raw = match s.parse::<i32>() {
        Ok(n) => n,
        Err(_) => {
            let name = s.trim_start_matches("SIG").to_ascii_uppercase();
            const NAMES: [&str; 31] = [
                "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
                "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN",
                "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
            ];
            let at = NAMES
                .iter()
                .position(|n| *n == name)
                .with_context(|| format!("unknown signal {s:?}"))?;
            i32::try_from(at + 1).unwrap_or(0)
        }
    };
    rustix::process::Signal::from_named_raw(raw).with_context(|| format!("invalid signal {s:?}"))
}

pub fn kill(flags: &GlobalFlags, args: KillArgs) -> anyhow::Result<i32> {
    let stored = Stored::load(&root(flags), &args.id)?;
    let sig = parse_signal(args.signal.as_deref().unwrap_or("TERM"))?;
    if !stored.alive() {
        bail!("container {:?} is not running", args.id);
    }
    if args.all && stored.started {
        return super::exec::signal_all(flags, &args.id, sig.as_raw()).map(|()| 0);
    }
    // The Sentry delivers it to the container's init (or, before start, it ends the
    // sandbox: the OCI spec allows kill in the created state).
    let pid = rustix::process::Pid::from_raw(stored.pid).context("bad PID")?;
    rustix::process::kill_process(pid, sig).context("sending the signal")?;
    Ok(0)
}

pub fn delete(flags: &GlobalFlags, args: DeleteArgs) -> anyhow::Result<i32> {
    let root = root(flags);
    let stored = match Stored::load(&root, &args.id) {
        Ok(s) => s,
        Err(e) if args.force && state::check_id(&args.id).is_ok() => {
            // A broken state: --force still removes it. No state at all: --force has
            // nothing to do and succeeds, as with runc and runsc (Podman deletes with
            // --force after a create that failed, which left nothing behind).
            let dir = state::dir(&root, &args.id);
            if dir.exists() {
                log::warn!("{e:#}");
                std::fs::remove_dir_all(dir)?;
            }
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    if stored.alive() {
        if !args.force && stored.started {
            bail!(
                "container {:?} is running: stop it first, or use --force",
                args.id
            );
        }
        for pid in [stored.pid, stored.gofer_pid] {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while stored.alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    remove_cgroup(&stored);
    poststop(&stored);
    std::fs::remove_dir_all(state::dir(&root, &args.id))
        .with_context(|| format!("removing the state of {:?}", args.id))?;
    Ok(0)
}

pub fn list(flags: &GlobalFlags, args: ListArgs) -> anyhow::Result<i32> {
    let root = root(flags);
    let mut all = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(s) = Stored::load(&root, &id) {
                all.push(s);
            }
        }
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    match (args.format.as_str(), args.quiet) {
        (_, true) => all.iter().for_each(|s| println!("{}", s.id)),
        ("json", _) => {
            let states: Vec<_> = all.iter().map(Stored::oci).collect();
            println!("{}", serde_json::to_string(&states)?);
        }
        ("table", _) => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} CREATED",
                "ID", "PID", "STATUS", "BUNDLE"
            );
            for s in &all {
                let o = s.oci();
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {}",
                    o.id, o.pid, o.status, o.bundle, o.created
                );
            }
        }
        (other, _) => bail!("unknown format {other:?} (table or json)"),
    }
    Ok(0)
}

pub fn spec(_flags: &GlobalFlags, args: SpecArgs) -> anyhow::Result<i32> {
    let dir = match args.bundle {
        Some(b) => b,
        None => std::env::current_dir()?,
    };
    let path = dir.join("config.json");
    if path.exists() {
        bail!("{} already exists", path.display());
    }
    std::fs::write(&path, serde_json::to_string_pretty(&Spec::example())?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(0)
}

/// The current UTC time as RFC 3339 (what `state` reports as `created`).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A size in bytes: a number with an optional `k`, `m`, `g` suffix (as runc's `update`
/// and docker take them), or `-1` for no limit.
fn parse_bytes(s: &str) -> anyhow::Result<i64> {
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (digits, shift) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 10),
        Some('m') => (&lower[..lower.len() - 1], 20),
        Some('g') => (&lower[..lower.len() - 1], 30),
        _ => (lower, 0),
    };
    let n: i64 = digits
        .trim()
        .parse()
        .with_context(|| format!("{s:?} is not a size in bytes"))?;
    if n < 0 {
        return Ok(-1);
    }
    n.checked_mul(1 << shift)
        .with_context(|| format!("{s:?} is too large"))
}

pub fn update(flags: &GlobalFlags, args: UpdateArgs) -> anyhow::Result<i32> {
    let stored = Stored::load(&root(flags), &args.id)?;
    if !stored.alive() {
        bail!("container {:?} is not running", args.id);
    }
    let mut resources = match &args.resources {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading standard input")?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).context("parsing the resources")?;
            Resources::parse(&value)?
        }
        None => Resources::default(),
    };
    if args.memory.is_some() || args.memory_swap.is_some() {
        let m = resources.memory.get_or_insert_with(Default::default);
        if let Some(v) = &args.memory {
            m.limit = Some(parse_bytes(v)?);
        }
        if let Some(v) = &args.memory_swap {
            m.swap = Some(parse_bytes(v)?);
        }
    }
    if let Some(limit) = args.pids_limit {
        resources.pids = Some(cgroups::Pids { limit });
    }
    if args.cpu_quota.is_some()
        || args.cpu_period.is_some()
        || args.cpu_shares.is_some()
        || args.cpuset_cpus.is_some()
        || args.cpuset_mems.is_some()
    {
        let c = resources.cpu.get_or_insert_with(Default::default);
        c.quota = args.cpu_quota.or(c.quota);
        c.period = args.cpu_period.or(c.period);
        c.shares = args.cpu_shares.or(c.shares);
        c.cpus = args.cpuset_cpus.clone().or(c.cpus.take());
        c.mems = args.cpuset_mems.clone().or(c.mems.take());
    }
    let mut notes = resources.unsupported();
    for (set, flag) in [
        (args.kernel_memory.is_some(), "--kernel-memory"),
        (args.memory_reservation.is_some(), "--memory-reservation"),
        (args.blkio_weight.is_some(), "--blkio-weight"),
    ] {
        if set {
            notes.push(format!("{flag} is not supported (ignored)"));
        }
    }
    for note in &notes {
        eprintln!("bulwark: update: {note}");
    }
    let Some(path) = &stored.cgroup else {
        if resources.any() {
            bail!(
                "container {:?} has no cgroup (it was created without limits where cgroups \
                 could not be written): its limits cannot change",
                args.id
            );
        }
        return Ok(0);
    };
    Cgroup::new(path).apply(&resources)?;
    // The Sentry's own view and count follow (MemTotal, what it allocates, its tasks).
    // Before `start` it serves no requests: a created container keeps the limits it
    // was created with inside, the cgroup has the new ones.
    let unlimited = |v: i64| u64::try_from(v).ok().filter(|&v| v > 0).unwrap_or(u64::MAX);
    let memory = resources
        .memory
        .as_ref()
        .and_then(|m| m.limit)
        .map(unlimited);
    let pids = resources
        .pids
        .as_ref()
        .filter(|p| p.limit != 0)
        .map(|p| unlimited(p.limit));
    if memory.is_some() || pids.is_some() {
        if stored.started {
            let (_, conn) = super::exec::connect(flags, &args.id)?;
            conn.call(&crate::control::Request::SetLimits { memory, pids }, &[])
                .context("telling the sandbox its new limits")?;
        } else {
            eprintln!(
                "bulwark: update: the container is not started: inside, it keeps the \
                 memory and pids limits it was created with"
            );
        }
    }
    Ok(0)
}
