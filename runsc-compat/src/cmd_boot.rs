//! `bulwark boot`: the Sentry of one sandbox. It loads the program through the Gofer and
//! runs it on the chosen platform; its exit status is the program's (128 + N when signal
//! N killed it).

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use clap::Args;
use platform::MemoryFile;
use sentry::errno::Errno;
use sentry::kernel::signal::{SigInfo, SI_USER};
use sentry::kernel::{Credentials, ExitStatus, InitSpec, Kernel, Task, ThreadGroup};
use sentry::loader::{Executable, Resolver};
use sentry::vfs::exec::VfsResolver;
use sentry::vfs::{Cx, FsContext, NewNode, Path, S_IFDIR};
use signal_hook::iterator::Signals;

use crate::container::ContainerConfig;
use crate::{confine, console, control, fds, sandbox, GlobalFlags};

/// Size of the memory file (sparse: only what the sandbox touches is used).
const MEMORY_FILE_SIZE: u64 = 8 << 30;
/// The `PATH` used to find the program when the environment has none (runsc's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Args, Debug)]
pub struct BootArgs {
    /// Inherited descriptors of the Gofer channels (`3,4`).
    #[arg(long)]
    pub gofer_fds: String,
    /// Working directory of the program.
    #[arg(long, default_value = "/")]
    pub cwd: String,
    /// The program's environment, `K=V` each.
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// User and group IDs of the program.
    #[arg(long, default_value_t = 0)]
    pub uid: u32,
    #[arg(long, default_value_t = 0)]
    pub gid: u32,
    /// The sandbox's hostname (uname's nodename).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Exit when the `bulwark` that started this one does (`do`).
    #[arg(long)]
    pub die_with_parent: bool,
    /// Drop the signals from outside that init has no handler for, as Linux does for the
    /// init of a PID namespace (OCI containers: `docker stop` of a program that does not
    /// handle SIGTERM waits for the timeout and SIGKILL, as with runc).
    #[arg(long)]
    pub protect_init: bool,
    /// Wait for a byte on this FIFO (`bulwark start`) before running the program.
    #[arg(long)]
    pub start_fifo: Option<std::path::PathBuf>,
    /// Report readiness (a line `ok`, or the error) on this inherited descriptor.
    #[arg(long)]
    pub ready_fd: Option<i32>,
    /// Serve `exec`, `ps`, `pause`, `resume` on this inherited listening socket.
    #[arg(long)]
    pub control_fd: Option<i32>,
    /// The OCI container's mounts and process settings (`container::ContainerConfig`
    /// as JSON), on this inherited descriptor.
    #[arg(long)]
    pub config_fd: Option<i32>,
    /// The container's host terminal: the program's stdio is a terminal of the sandbox
    /// joined to it (`console.rs`).
    #[arg(long)]
    pub console_fd: Option<i32>,
    /// Descriptors that become the program's 3, 4, … (`--preserve-fds`), in order.
    #[arg(long, default_value = "")]
    pub preserved_fds: String,
    /// Take the console as this process's controlling terminal first.
    #[arg(long)]
    pub console_ctty: bool,
    /// Join this cgroup (the container's, `oci::cgroups`) before starting the platform,
    /// so that its stub processes are born in it.
    #[arg(long)]
    pub cgroup: Option<String>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
}

pub fn run(flags: &GlobalFlags, args: BootArgs) -> anyhow::Result<i32> {
    let mut ready = match args.ready_fd {
        Some(fd) => Some(std::fs::File::from(fds::take(&[fd])?.remove(0))),
        None => None,
    };
    match prepare(flags, args) {
        Ok(started) => {
            if let Some(r) = ready.as_mut() {
                let _ = writeln!(r, "ok");
            }
            drop(ready);
            started.run()
        }
        Err(e) => {
            if let Some(r) = ready.as_mut() {
                let _ = writeln!(r, "{e:#}");
            }
            Err(e)
        }
    }
}

/// A sandbox set up and about to run its program.
struct Prepared {
    kernel: Arc<Kernel>,
    task: Task,
    start: Option<std::fs::File>,
    /// The control socket and what serving it needs, once the program runs.
    control: Option<(std::os::fd::OwnedFd, Arc<control::Server>)>,
    signals: Signals,
    /// The container's terminal, when it has one.
    console: Option<console::Bridge>,
    protect_init: bool,
}

impl Prepared {
    fn run(self) -> anyhow::Result<i32> {
        let Self {
            kernel,
            task,
            start,
            control,
            signals,
            console,
            protect_init,
        } = self;
        let program = task.group.tgid;
        let (init, waker) = (Arc::clone(&task.group), Arc::clone(&task.handle.waker));
        let started = Arc::new(AtomicBool::new(false));
        let resizer = console.as_ref().map(console::Bridge::resizer);
        forward_signals(
            signals,
            &kernel,
            &init,
            Arc::clone(&started),
            resizer,
            protect_init,
        )?;
        if let Some(mut fifo) = start {
            // `bulwark start` writes one byte; until then the program does not run.
            let mut byte = [0u8; 1];
            fifo.read_exact(&mut byte).context("waiting for start")?;
        }
        let waiting = control.as_ref().map(|(_, s)| Arc::clone(&s.waiting));
        // Before the control server answers anything: `bulwark start` returns once it
        // has an answer (`Request::Started`), and a `kill` after that is the program's.
        started.store(true, Ordering::SeqCst);
        if let Some((listener, server)) = control {
            server.spawn(listener)?;
        }
        task.run();
        // The sandbox ends with init: its status is the container's.
        let status = init.wait_exit(&waker);
        // Let `bulwark wait` callers have their answer first (briefly).
        if let Some(waiting) = waiting {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while waiting.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        log::debug!("init ({program}): {status:?}");
        if let Some(console) = console {
            console.finish();
        }
        Ok(match status {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(sig) => 128 + sig,
        })
    }
}

fn prepare(flags: &GlobalFlags, args: BootArgs) -> anyhow::Result<Prepared> {
    if args.die_with_parent {
        // The sandbox does not outlive the `bulwark` that started it.
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .context("setting the parent-death signal")?;
    }
    // Opened before anything else, and for writing too, so that reading it blocks until
    // `bulwark start` writes instead of seeing the end of file.
    let start = match &args.start_fifo {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        ),
        None => None,
    };
    if let Some(cgroup) = &args.cgroup {
        crate::oci::cgroups::join(cgroup)?;
    }
    // Namespaces first: the platforms start threads, after which a new mount namespace
    // is refused.
    sandbox::unshare_namespaces()?;
    let socks = fds::take(&fds::parse_list(&args.gofer_fds)?)?;
    let control_listener = match args.control_fd {
        Some(fd) => Some(fds::take(&[fd])?.remove(0)),
        None => None,
    };
    // The OCI container's mounts, limits, groups and capabilities (none for `do`).
    let container = match args.config_fd {
        Some(fd) => Some(ContainerConfig::from_fd(fds::take(&[fd])?.remove(0))?),
        None => None,
    };
    let console_tty = match args.console_fd {
        Some(fd) => Some(fds::take(&[fd])?.remove(0)),
        None => None,
    };
    let preserved = fds::take(&fds::parse_list(&args.preserved_fds)?)?;
    // With a terminal, the program's stdio is the sandbox's terminal (given below).
    let stdio = if console_tty.is_some() {
        Vec::new()
    } else {
        fds::dup_stdio()?
    };
    let memory = Arc::new(MemoryFile::new(MEMORY_FILE_SIZE).context("creating the memory file")?);
    if let Some(limit) = container.as_ref().and_then(|c| c.memory_limit) {
        memory.set_limit(limit);
    }
    let (name, why) = crate::cmd_do::choose_platform(flags)?;
    log::debug!("platform: {name} ({why})");
    let platform = platform::new_platform(name, Arc::clone(&memory))
        .with_context(|| format!("starting the {name} platform"))?;
    // Everything host-side is open now: leave the host's filesystem for good, and drop
    // every capability while this is the only thread (the kernel starts the next ones).
    confine::prime_libc();
    let one_thread = confine::one_thread()?;
    sandbox::pivot_to_empty_root()?;
    sandbox::no_new_privs()?;
    confine::drop_capabilities(one_thread)?;
    let kernel = Kernel::new(platform);
    if let Some(limit) = container.as_ref().and_then(|c| c.pids_limit) {
        kernel.set_pids_limit(limit);
    }
    if let Some(profile) = container.as_ref().and_then(|c| c.seccomp.as_ref()) {
        let _ = kernel.seccomp.set(profile.compile()?);
    }
    if let Some(h) = &args.hostname {
        kernel.uts.set_hostname(h.as_bytes());
    }
    for (name, value) in container.iter().flat_map(|c| &c.sysctl) {
        crate::oci::sysctl::apply(&kernel, name, value)?;
    }
    kernel
        .strace
        .store(flags.strace, std::sync::atomic::Ordering::Relaxed);
    let client = Arc::new(gofer::Client::new(socks));
    let fs = match &container {
        Some(c) => sentry::vfs::mounts::build(client, &memory, &c.fs_spec()?)
            .map_err(|e| anyhow!("mounting the container's filesystems: {}", describe(e)))?,
        None => sentry::vfs::gofer::container_fs(client, &memory)
            .map_err(|e| anyhow!("attaching the root filesystem: {}", describe(e)))?,
    };
    let mut creds = Credentials::new(args.uid, args.gid);
    if let Some(c) = &container {
        c.apply_creds(&mut creds);
    }
    let cx = Cx {
        creds: creds.clone(),
        ..Cx::root()
    };
    let cwd = working_directory(&fs, &cx, &args.cwd, container.is_some())
        .map_err(|e| anyhow!("--cwd {}: {}", args.cwd, describe(e)))?;
    fs.set_cwd(cwd);
    let tree = Arc::new(VfsResolver {
        fs: Arc::clone(&fs),
        cx: cx.clone(),
    });

    let program = &args.argv[0];
    let path_var = args
        .env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let (path, exe) = find_program(&tree, program, &args.cwd, &path_var)
        .map_err(|e| program_error(program, e))?;
    if let Ok(at) = fs.lookup(&cx, None, path.as_bytes(), true) {
        fs.set_exe(at);
    }
    let argv: Vec<Vec<u8>> = args.argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    let envp: Vec<Vec<u8>> = args.env.iter().map(|e| e.as_bytes().to_vec()).collect();
    fs.set_cmdline(sentry::vfs::path::cmdline(&argv));
    fs.set_environ(sentry::vfs::path::cmdline(&envp));
    let spec = InitSpec {
        path: path.as_bytes(),
        argv,
        envp,
        creds,
        stdio,
        preserved,
        fs: Arc::clone(&fs),
    };
    let task = Task::new_init(&kernel, &*tree, exe, spec)
        .map_err(|e| anyhow!("{program}: {}", describe(e)))?;
    if let Some(c) = &container {
        c.apply_limits(&task)?;
    }
    let control = control_listener.map(|listener| {
        let server = Arc::new(control::Server {
            kernel: Arc::clone(&kernel),
            fs: Arc::clone(&fs),
            tree: Arc::clone(&tree),
            default_path: DEFAULT_PATH.to_string(),
            waiting: Arc::default(),
        });
        (listener, server)
    });
    let signals = forwarded_signals()?;
    // After the handlers: a resize from now on is seen.
    let console = match console_tty {
        Some(tty) => {
            if args.console_ctty {
                console::take_controlling(tty.as_fd())?;
            }
            let bridge = console::Bridge::attach(&kernel, &fs, &task.creds, tty)?;
            bridge.give_to(&task)?;
            Some(bridge)
        }
        None => None,
    };
    let protect_init = args.protect_init;
    // The program is loaded and nothing runs it yet: from here on, only the host
    // syscalls of the Sentry's allow-list (confine.rs). Create host resources above.
    let platform = confine::Platform::from_name(name)?;
    confine::install_seccomp(
        platform,
        confine::Violation::for_platform(platform, flags.debug),
    )?;
    Ok(Prepared {
        kernel,
        task,
        start,
        control,
        signals,
        console,
        protect_init,
    })
}

/// The signals the Sentry forwards to the program. Their handlers (and signal-hook's
/// socketpair) are set up before the seccomp filter.
fn forwarded_signals() -> anyhow::Result<Signals> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
    Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH])
        .context("installing signal handlers")
}

/// Delivers the signals this process receives (from `bulwark do`, or the terminal) to the
/// program, as if sent from outside the sandbox (`si_pid` 0). Before the program has
/// started, one that would kill it ends the sandbox instead (`bulwark kill` of a created
/// container): as the init of its PID namespace, the Sentry is not killed by a signal it
/// handles. With `protect_init`, a signal init has no handler for is dropped: Linux
/// delivers only SIGKILL and SIGSTOP, or a handled signal, to the init of a PID namespace
/// from outside it (`sig_task_ignored`, `SIGNAL_UNKILLABLE`).
fn forward_signals(
    mut signals: Signals,
    kernel: &Arc<Kernel>,
    init: &Arc<ThreadGroup>,
    started: Arc<AtomicBool>,
    resizer: Option<console::Resizer>,
    protect_init: bool,
) -> anyhow::Result<()> {
    let (kernel, init) = (Arc::clone(kernel), Arc::clone(init));
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(move || {
            for sig in signals.forever() {
                if let (signal_hook::consts::SIGWINCH, Some(r)) = (sig, &resizer) {
                    // The container's terminal changed size: its foreground group gets
                    // SIGWINCH from the sandbox's terminal.
                    r.sync();
                    continue;
                }
                if !started.load(Ordering::SeqCst) {
                    if sig != signal_hook::consts::SIGWINCH {
                        log::debug!("signal {sig} before the program started: exiting");
                        std::process::exit(128 + sig);
                    }
                    continue;
                }
                if protect_init && unhandled(&init, sig) {
                    log::debug!("signal {sig}: init has no handler for it, dropped");
                    continue;
                }
                let info = SigInfo::user(sig, SI_USER, 0, 0);
                Task::send_to_group(&kernel, &init, info);
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Whether `group` leaves `sig` to its default action.
fn unhandled(group: &ThreadGroup, sig: i32) -> bool {
    let actions = group.sighand();
    let handler = actions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(sig)
        .handler;
    handler == sentry::kernel::signal::SIG_DFL
}

/// Finds `program` as `execvp` would: a name with a slash is a path (relative to `cwd`),
/// otherwise each directory of `path_var` in turn.
pub(crate) fn find_program(
    tree: &VfsResolver,
    program: &str,
    cwd: &str,
    path_var: &str,
) -> Result<(String, Arc<dyn Executable>), Errno> {
    if program.contains('/') {
        let path = if program.starts_with('/') {
            program.to_string()
        } else {
            format!("{}/{program}", cwd.trim_end_matches('/'))
        };
        let exe = tree.open_executable(path.as_bytes())?;
        return Ok((path, exe));
    }
    let mut error = Errno::ENOENT;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let path = format!("{}/{program}", dir.trim_end_matches('/'));
        match tree.open_executable(path.as_bytes()) {
            Ok(exe) => return Ok((path, exe)),
            // As execvp: remember a permission error, keep looking.
            Err(Errno::EACCES) => error = Errno::EACCES,
            Err(_) => {}
        }
    }
    Err(error)
}

/// The working directory `cwd`. With `make` (an OCI container), its missing components are
/// made first (mode 0755, by root), as runc makes them before it starts the process: `ctr
/// run --cwd` names a directory the image may not have (dockerd makes its `-w` itself, ctr
/// does not). A read-only mount is left alone (EROFS).
fn working_directory(fs: &FsContext, cx: &Cx, cwd: &str, make: bool) -> Result<Path, Errno> {
    match fs.lookup(cx, None, cwd.as_bytes(), true) {
        Err(Errno::ENOENT) if make => {}
        found => return found,
    }
    let root = Cx::root();
    let mut at = String::new();
    for name in cwd.split('/').filter(|n| !n.is_empty()) {
        at.push('/');
        at.push_str(name);
        match fs.lookup(&root, None, at.as_bytes(), true) {
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                let (dir, name, _) = fs.lookup_parent(&root, None, at.as_bytes())?;
                if dir.mount.is_read_only() || dir.inode().read_only() {
                    return Err(Errno::EROFS);
                }
                let node = NewNode::Node {
                    mode: S_IFDIR | 0o755,
                    rdev: 0,
                };
                dir.inode().create(&root, &name, node)?;
            }
            Err(e) => return Err(e),
        }
    }
    fs.lookup(cx, None, cwd.as_bytes(), true)
}

/// An errno as Linux's `strerror` words it, lower case as Go's errors are, with its name:
/// `no such file or directory (ENOENT)`. Docker looks for those words (and for "executable
/// file not found") in the runtime's error to exit with 127 or 126, as with runc.
pub(crate) fn describe(e: Errno) -> String {
    let text = std::io::Error::from_raw_os_error(e.value()).to_string();
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    format!(
        "{}{} ({e})",
        first.into_iter().collect::<String>(),
        chars.as_str()
    )
}

/// Why `program` cannot run, in runc's words where Docker reads them: a name looked up in
/// `PATH` and found nowhere is "executable file not found in $PATH".
pub(crate) fn program_error(program: &str, e: Errno) -> anyhow::Error {
    if e == Errno::ENOENT && !program.contains('/') {
        anyhow!("exec: {program:?}: executable file not found in $PATH")
    } else {
        anyhow!("exec: {program:?}: {}", describe(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Docker exits with 127 (126) when the runtime's error has these words, as runc's has.
    #[test]
    fn program_errors_use_the_words_docker_reads() {
        assert_eq!(
            program_error("/no/such", Errno::ENOENT).to_string(),
            "exec: \"/no/such\": no such file or directory (ENOENT)"
        );
        assert_eq!(
            program_error("nosuch", Errno::ENOENT).to_string(),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        assert_eq!(
            program_error("/bin", Errno::EACCES).to_string(),
            "exec: \"/bin\": permission denied (EACCES)"
        );
    }
}
