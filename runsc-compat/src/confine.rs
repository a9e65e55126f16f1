//! Confinement of the Sentry (`bulwark boot`) beyond its namespaces and empty root
//! (`sandbox.rs`), as DESIGN.md's process model draws it:
//!
//! 1. **A PID namespace of its own**: the launcher starts `boot` as the init of a new PID
//!    namespace ([`spawn_in_new_pid_namespace`]), so the Sentry and the systrap stubs it
//!    clones see (and can signal) nothing else, and all die with it. The launcher still
//!    sees it as an ordinary child: its host PID goes to `--pid-file` and its exit status
//!    is the container's.
//! 2. **No capabilities** ([`drop_capabilities`]): after the pivot into the empty root,
//!    while the process still has one thread (capabilities belong to threads).
//! 3. **A seccomp allow-list** of the host syscalls the Sentry makes ([`seccomp_rules`]),
//!    installed on every thread ([`install_seccomp`]) once the program is loaded and
//!    before its first instruction runs. It forbids `open`/`openat`, `execve`, `socket`
//!    and everything else not listed, and limits `ioctl` to the terminal requests the
//!    Sentry forwards and, on KVM, the KVM requests it issues.
//!
//! What happens to a refused syscall ([`Violation`]): on KVM the process is killed
//! (`SECCOMP_RET_KILL_PROCESS`). On systrap it traps (`SECCOMP_RET_TRAP`): the stubs are
//! cloned from the Sentry and inherit its filter, and the kernel applies the strictest
//! verdict of all stacked filters, so a killing filter would kill a stub at the first
//! application syscall its own filter traps. A trap is a refusal too (the syscall does not
//! run); a handler names the syscall on standard error, and the Sentry exits with status
//! 159 (128 + SIGSYS: as the init of its PID namespace, it cannot kill itself with a
//! signal it sends itself).
//! With `--debug`, KVM traps as well, so the log says which syscall was refused.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::process::{Child, Command};

use anyhow::{bail, Context};
use rustix::thread::{CapabilitySet, CapabilitySets, LinkNameSpaceType, UnshareFlags};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::sandbox;

/// Starts `command` as the init (PID 1) of a new PID namespace, and returns it as an
/// ordinary child of this process.
///
/// `unshare(CLONE_NEWPID)` moves only the *children* of the calling thread: this thread
/// unshares, forks the child, and goes back to its own namespace at once (threads cannot
/// be created while the namespace for children differs from the thread's own). The child
/// is forked by the calling thread, which matters for `PR_SET_PDEATHSIG`: that thread must
/// outlive the sandbox (as the main thread of `bulwark do` does).
pub fn spawn_in_new_pid_namespace(command: &mut Command) -> anyhow::Result<Child> {
    let own = std::fs::File::open("/proc/thread-self/ns/pid")
        .context("opening this thread's PID namespace")?;
    sandbox::ns::unshare(UnshareFlags::NEWPID)
        .context("entering a new PID namespace (bulwark must run as root)")?;
    let child = command.spawn();
    // Before anything else: with the namespace for children changed, no thread can start.
    let back =
        rustix::thread::move_into_link_name_space(own.as_fd(), Some(LinkNameSpaceType::ProcessID));
    if let Err(e) = back {
        // This process can start no thread now: do not leave it half-working.
        if let Ok(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
        bail!("returning to the launcher's PID namespace: {e}");
    }
    Ok(child?)
}

/// Settles, now, what glibc's malloc reads lazily from the host, which the Sentry cannot
/// open once confined (and the filter would end it for trying):
/// - the limit on arenas, computed from the CPU count in `/sys/devices/system/cpu/online`
///   (or `/proc/stat`) once a ninth thread needs one: set to the same value with
///   `M_ARENA_MAX`;
/// - whether a thread's heap may shrink, from `/proc/sys/vm/overcommit_memory`, read and
///   cached the first time a heap of a thread's arena is trimmed: a short-lived thread
///   trims its new arena's heap here, allocating well past the trim threshold (128 KiB)
///   in blocks below the mmap threshold (128 KiB), so from its heap, and freeing them.
pub fn prime_libc() {
    malloc::fix_arena_limit();
    let _ = std::thread::Builder::new()
        .name("prime-libc".to_string())
        .spawn(|| {
            let blocks: Vec<Vec<u8>> = (0..16).map(|i| vec![i; 64 << 10]).collect();
            drop(std::hint::black_box(blocks));
        })
        .map(std::thread::JoinHandle::join);
}

/// Makes every thread of this process allocate from the main malloc arena. For the Gofer:
/// its channel threads each got an arena of their own (about 70 KiB resident each, for a
/// server that allocates little, per request, mostly from the threads' tcaches anyway).
pub fn single_malloc_arena() {
    malloc::set_arena_limit(1);
}

mod malloc {
    //! `mallopt` is a C function, so `unsafe`: this module opts out of
    //! `deny(unsafe_code)` for it.
    #![allow(unsafe_code)]

    /// `mallopt(M_ARENA_MAX, limit)`.
    pub(super) fn set_arena_limit(limit: libc::c_int) {
        // SAFETY: mallopt with M_ARENA_MAX only sets a malloc parameter.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, limit) };
    }

    /// `M_ARENA_MAX` as glibc would compute it: 8 arenas per online CPU (64-bit).
    pub(super) fn fix_arena_limit() {
        // SAFETY: sysconf has no memory arguments.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1);
        set_arena_limit(libc::c_int::try_from(cpus.saturating_mul(8)).unwrap_or(libc::c_int::MAX));
    }
}

/// Proof that the Sentry runs one thread of its own, so that [`drop_capabilities`] (which
/// changes only the calling thread's) leaves none with capabilities. Valid until the next
/// thread starts: take it right before the pivot, and drop the capabilities right after.
pub struct OneThread(());

/// `PF_KTHREAD` and `PF_USER_WORKER` in `/proc/<pid>/task/<tid>/stat`: the kernel's own
/// threads in the process (KVM's NX-huge-page recovery worker is one, since Linux 6.13),
/// which never run user code.
const PF_KERNEL_WORKER: u64 = 0x0020_0000 | 0x0000_4000;

/// Checks that this is the process's only thread, apart from the kernel's own workers
/// (it reads `/proc`, so it runs before the pivot).
pub fn one_thread() -> anyhow::Result<OneThread> {
    let mut others = Vec::new();
    // `<pid>/task/<tid>`, numbered in the namespace of this /proc (the host's, not the
    // Sentry's own, where it is 1).
    let me = std::fs::read_link("/proc/thread-self").context("reading /proc/thread-self")?;
    let me = me.file_name().unwrap_or_default();
    for entry in std::fs::read_dir("/proc/self/task").context("listing this process's threads")? {
        let entry = entry.context("listing this process's threads")?;
        if entry.file_name() == me {
            continue;
        }
        // A thread that ended meanwhile is no concern.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `tid (comm) state ppid pgrp session tty_nr tpgid flags ...`
        let (head, rest) = stat.rsplit_once(") ").unwrap_or((&stat, ""));
        let flags = rest
            .split(' ')
            .nth(6)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        if flags & PF_KERNEL_WORKER == 0 {
            others.push(
                head.split_once(" (")
                    .map_or(head, |(_, comm)| comm)
                    .to_string(),
            );
        }
    }
    if !others.is_empty() {
        bail!(
            "the Sentry already runs other threads ({}): capabilities are dropped one \
             thread at a time, so drop them before any thread starts",
            others.join(", ")
        );
    }
    Ok(OneThread(()))
}

/// Drops every capability of the Sentry: the bounding set (so none can be regained), the
/// ambient, inheritable, permitted and effective sets.
pub fn drop_capabilities(_only: OneThread) -> anyhow::Result<()> {
    // Every capability number the kernel knows; it refuses the first past the last.
    for cap in 0..64 {
        match rustix::thread::remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(
            1 << cap,
        )) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) if cap > 0 => break,
            Err(e) => bail!("dropping capability {cap} from the bounding set: {e}"),
        }
    }
    rustix::thread::clear_ambient_capability_set().context("clearing the ambient capabilities")?;
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )
    .context("dropping the capabilities")?;
    Ok(())
}

/// The platform the filter is for: each needs host syscalls of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Kvm,
    Systrap,
}

impl Platform {
    pub fn from_name(name: &str) -> anyhow::Result<Self> {
        match name {
            "kvm" => Ok(Self::Kvm),
            "systrap" => Ok(Self::Systrap),
            _ => bail!("no seccomp filter for platform {name:?}"),
        }
    }
}

/// What the filter does with a syscall outside the allow-list (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// `SECCOMP_RET_KILL_PROCESS`.
    Kill,
    /// `SECCOMP_RET_TRAP`, reported by a SIGSYS handler that then ends the process.
    Trap,
}

impl Violation {
    /// The action on `platform`: killing on KVM unless debugging, trapping on systrap.
    pub fn for_platform(platform: Platform, debug: bool) -> Self {
        match (platform, debug) {
            (Platform::Kvm, false) => Self::Kill,
            _ => Self::Trap,
        }
    }

    fn action(self) -> SeccompAction {
        match self {
            Self::Kill => SeccompAction::KillProcess,
            Self::Trap => SeccompAction::Trap,
        }
    }
}

fn allow() -> Vec<SeccompRule> {
    Vec::new()
}

/// A rule matching `arg(index) == value`, compared on the low 32 bits (the kernel reads
/// these arguments as `int` or `unsigned int`).
fn arg_eq(index: u8, value: u64) -> Result<SeccompRule, seccompiler::BackendError> {
    SeccompRule::new(vec![SeccompCondition::new(
        index,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        value,
    )?])
}

/// One rule per allowed value of `arg(index)`.
fn arg_in(index: u8, values: &[u64]) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    values.iter().map(|&v| arg_eq(index, v)).collect()
}

fn nr(n: libc::c_long) -> i64 {
    n
}

/// The terminal requests the Sentry makes on the caller's terminal (a host descriptor it
/// was given as standard I/O): reading and setting its modes and window size, its
/// foreground process group, and how much input is waiting. Not `TIOCSTI`.
const TERMINAL_IOCTLS: [u64; 14] = [
    0x5401,      // TCGETS
    0x5402,      // TCSETS
    0x5403,      // TCSETSW
    0x5404,      // TCSETSF
    0x802c_542a, // TCGETS2 (rustix's tcgetattr tries it first)
    0x402c_542b, // TCSETS2
    0x402c_542c, // TCSETSW2
    0x402c_542d, // TCSETSF2
    0x5413,      // TIOCGWINSZ
    0x5414,      // TIOCSWINSZ
    0x540f,      // TIOCGPGRP
    0x541b,      // FIONREAD
    0x5421,      // FIONBIO (std's set_nonblocking on a socket)
    0x5451,      // FIOCLEX
];

/// The KVM requests issued once the program may run (values from `<linux/kvm.h>`): a
/// vCPU is created and set up when a thread first needs one, then run, with registers,
/// FPU and XSAVE state moved in and out. (The VM, its memory slot and the capability
/// checks are done before the filter.)
const KVM_IOCTLS: [u64; 15] = [
    0xae41,      // KVM_CREATE_VCPU
    0x4008_ae90, // KVM_SET_CPUID2
    0x4188_aea7, // KVM_SET_XCRS
    0x4008_ae89, // KVM_SET_MSRS
    0xae80,      // KVM_RUN
    0x8090_ae81, // KVM_GET_REGS
    0x4090_ae82, // KVM_SET_REGS
    0x8138_ae83, // KVM_GET_SREGS
    0x4138_ae84, // KVM_SET_SREGS
    0x81a0_ae8c, // KVM_GET_FPU
    0x41a0_ae8d, // KVM_SET_FPU
    0x9000_aea4, // KVM_GET_XSAVE
    0x5000_aea5, // KVM_SET_XSAVE
    0x4018_aee1, // KVM_SET_DEVICE_ATTR (a new vCPU's TSC offset)
    0xc008_ae88, // KVM_GET_MSRS (checking that offset)
];

/// The `clone` flags glibc's `pthread_create` passes (after `clone3` is refused with
/// `ENOSYS`, see [`clone3_filter`]).
const PTHREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

// prctl options.
const PR_SET_PDEATHSIG: u64 = 1;
const PR_SET_NAME: u64 = 15;
const PR_SET_NO_NEW_PRIVS: u64 = 38;
const PR_SET_VMA: u64 = 0x5356_4d41;
const PR_GET_AUXV: u64 = 0x4155_5856;

/// `arch_prctl` codes a stub's handler uses: ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS,
/// ARCH_GET_GS.
const ARCH_PRCTL_FS_GS: [u64; 4] = [0x1001, 0x1002, 0x1003, 0x1004];

/// `seccomp` operation: SECCOMP_SET_MODE_FILTER.
const SECCOMP_SET_MODE_FILTER: u64 = 1;

/// The Sentry's allow-list on `platform`, rule by rule, each saying who needs it.
pub fn seccomp_rules(
    platform: Platform,
) -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::BackendError> {
    let fcntl_cmds = [
        libc::F_GETFD,
        libc::F_SETFD,
        libc::F_GETFL,
        libc::F_SETFL,
        libc::F_DUPFD_CLOEXEC,
    ]
    .map(|c| u64::from(c.unsigned_abs()));
    let mut ioctls = TERMINAL_IOCTLS.to_vec();
    let mut clone_flags = vec![PTHREAD_CLONE_FLAGS];
    let mut prctls = vec![PR_SET_NAME, PR_SET_VMA, PR_GET_AUXV];
    match platform {
        Platform::Kvm => ioctls.extend(KVM_IOCTLS),
        Platform::Systrap => {
            clone_flags.extend(platform::systrap::HOST_CLONE_FLAGS);
            prctls.extend([PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS]);
        }
    }
    let mut rules = BTreeMap::from([
        // I/O on host descriptors the Sentry was given: the caller's standard I/O, files
        // the Gofer donated (page cache reads and writes at offsets), the memory file.
        (nr(libc::SYS_read), allow()),
        (nr(libc::SYS_write), allow()),
        (nr(libc::SYS_pread64), allow()),
        (nr(libc::SYS_pwrite64), allow()),
        (nr(libc::SYS_readv), allow()),
        (nr(libc::SYS_writev), allow()),
        (nr(libc::SYS_preadv), allow()),
        (nr(libc::SYS_pwritev), allow()),
        (nr(libc::SYS_lseek), allow()),
        (nr(libc::SYS_fstat), allow()),
        // std's File::metadata (statx on the descriptor, AT_EMPTY_PATH; there is no path
        // to reach: the root is empty).
        (nr(libc::SYS_statx), allow()),
        (nr(libc::SYS_fsync), allow()),
        (nr(libc::SYS_fdatasync), allow()),
        // the memory file: size, and punching holes to free pages; donated files.
        (nr(libc::SYS_ftruncate), allow()),
        (nr(libc::SYS_fallocate), allow()),
        (nr(libc::SYS_close), allow()),
        // descriptor flags and duplicates (std's try_clone is F_DUPFD_CLOEXEC); no locks,
        // no leases, no owner changes.
        (nr(libc::SYS_fcntl), arg_in(1, &fcntl_cmds)?),
        // the terminal requests it forwards; on KVM, the KVM requests.
        (nr(libc::SYS_ioctl), arg_in(1, &ioctls)?),
        // readiness of host descriptors (the caller's stdio, the control socket).
        (nr(libc::SYS_poll), allow()),
        (nr(libc::SYS_ppoll), allow()),
        // Gofer channels: requests, replies, and donated descriptors (SCM_RIGHTS); the
        // control socket (created before the filter): its connections and their messages.
        (nr(libc::SYS_sendmsg), allow()),
        (nr(libc::SYS_recvmsg), allow()),
        (nr(libc::SYS_recvfrom), allow()),
        // signal-hook's handler wakes the forwarding thread through its socketpair.
        (nr(libc::SYS_sendto), allow()),
        (nr(libc::SYS_accept4), allow()),
        (nr(libc::SYS_shutdown), allow()),
        // the allocator, thread stacks, the memory file's mapping (and, on KVM, the vCPUs'
        // run areas).
        (nr(libc::SYS_mmap), allow()),
        (nr(libc::SYS_munmap), allow()),
        (nr(libc::SYS_mprotect), allow()),
        (nr(libc::SYS_madvise), allow()),
        (nr(libc::SYS_mremap), allow()),
        (nr(libc::SYS_brk), allow()),
        // wait queues, locks, the shared pages of systrap stubs.
        (nr(libc::SYS_futex), allow()),
        (nr(libc::SYS_sched_yield), allow()),
        // a host thread per application thread, plus the Sentry's own (timers, signals,
        // vDSO clock, systrap spawner): clone with pthread's exact flags (and on systrap
        // the stubs' flags); clone3 is refused with ENOSYS by `clone3_filter` (its flags
        // are in memory, out of a filter's reach), so glibc falls back to clone.
        (nr(libc::SYS_clone), arg_in(0, &clone_flags)?),
        (nr(libc::SYS_clone3), allow()),
        (nr(libc::SYS_set_robust_list), allow()),
        (nr(libc::SYS_rseq), allow()),
        (nr(libc::SYS_gettid), allow()),
        (nr(libc::SYS_getpid), allow()),
        // glibc sizes its malloc arenas by the CPUs; sched_getaffinity answers from here.
        (nr(libc::SYS_sched_getaffinity), allow()),
        // thread names; glibc names its malloc arenas' mappings; std reads the aux vector
        // for CPU features. (On systrap, stubs also set their parent-death signal and
        // no_new_privs.)
        (nr(libc::SYS_prctl), arg_in(0, &prctls)?),
        (nr(libc::SYS_exit), allow()),
        (nr(libc::SYS_exit_group), allow()),
        // signals: the forwarded ones (signal-hook), the vCPU kick and the SIGSYS report,
        // the stack-overflow handler's alternate stack; kill and tgkill stop vCPUs,
        // kick stub threads and end stubs: the PID namespace leaves the Sentry and its
        // stubs as the only processes they can reach.
        (nr(libc::SYS_rt_sigaction), allow()),
        (nr(libc::SYS_rt_sigprocmask), allow()),
        (nr(libc::SYS_rt_sigreturn), allow()),
        // The kernel's own restart of a sleep (nanosleep, clock_nanosleep, a timed futex
        // or poll) that a handled signal interrupted: without it, a forwarded signal
        // landing on a sleeping Sentry thread ended the sandbox.
        (nr(libc::SYS_restart_syscall), allow()),
        (nr(libc::SYS_sigaltstack), allow()),
        (nr(libc::SYS_tgkill), allow()),
        (nr(libc::SYS_kill), allow()),
        // time: clocks the vDSO does not serve (CPU-time clocks), sleeps and timed waits.
        (nr(libc::SYS_clock_gettime), allow()),
        (nr(libc::SYS_clock_getres), allow()),
        (nr(libc::SYS_clock_nanosleep), allow()),
        (nr(libc::SYS_nanosleep), allow()),
        // HashMap keys; getrandom(2) for the application's own.
        (nr(libc::SYS_getrandom), allow()),
    ]);
    if platform == Platform::Systrap {
        rules.extend([
            // a stub's file (its code, stacks and control page), one per address space.
            (nr(libc::SYS_memfd_create), allow()),
            // a stub's liveness and its end.
            (nr(libc::SYS_wait4), allow()),
            (nr(libc::SYS_waitid), allow()),
            // inherited by each stub, which runs its own code under this filter too: it
            // closes what it inherited, installs its own filters on top of this one, and
            // saves FS/GS base in its signal handler.
            (nr(libc::SYS_close_range), allow()),
            (
                nr(libc::SYS_seccomp),
                vec![arg_eq(0, SECCOMP_SET_MODE_FILTER)?],
            ),
            (nr(libc::SYS_arch_prctl), arg_in(0, &ARCH_PRCTL_FS_GS)?),
        ]);
    }
    Ok(rules)
}

/// The allow-list as BPF.
pub fn seccomp_program(platform: Platform, violation: Violation) -> anyhow::Result<BpfProgram> {
    let filter = SeccompFilter::new(
        seccomp_rules(platform).context("building the Sentry's seccomp rules")?,
        violation.action(),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .context("building the Sentry's seccomp filter")?;
    let mut program: BpfProgram = filter
        .try_into()
        .context("compiling the Sentry's seccomp filter")?;
    if violation == Violation::Trap {
        // seccompiler kills a syscall of another architecture (its third instruction);
        // under a trapping filter a stub's `int 0x80` must trap to the Sentry like any
        // other application syscall, and the Sentry's own is refused either way.
        let ret_kill = &mut program[2];
        assert_eq!(
            (ret_kill.code, ret_kill.k),
            (0x06, libc::SECCOMP_RET_KILL_PROCESS),
            "seccompiler's architecture check moved"
        );
        ret_kill.k = libc::SECCOMP_RET_TRAP;
    }
    Ok(program)
}

/// A second filter: `clone3` fails with `ENOSYS`, so glibc uses `clone`, whose flags the
/// allow-list can check. (The kernel applies the strictest verdict of all filters: this
/// one's errno wins over the allow-list's `Allow`.)
pub fn clone3_filter() -> anyhow::Result<BpfProgram> {
    let filter = SeccompFilter::new(
        BTreeMap::from([(nr(libc::SYS_clone3), allow())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS.unsigned_abs()),
        TargetArch::x86_64,
    )
    .context("building the clone3 filter")?;
    filter.try_into().context("compiling the clone3 filter")
}

/// Installs both filters on every thread of the process (`no_new_privs` included).
pub fn install_seccomp(platform: Platform, violation: Violation) -> anyhow::Result<()> {
    let program = seccomp_program(platform, violation)?;
    let clone3 = clone3_filter()?;
    if violation == Violation::Trap {
        report::install().context("installing the SIGSYS reporter")?;
    }
    // The clone3 filter first: installing a filter sets no_new_privs with prctl, which the
    // allow-list has no need to allow on KVM.
    seccompiler::apply_filter_all_threads(&clone3).context("installing the clone3 filter")?;
    seccompiler::apply_filter_all_threads(&program).context("installing the seccomp filter")?;
    Ok(())
}

mod report {
    //! The SIGSYS handler of a trapping filter: it names the refused syscall on standard
    //! error, and the process exits with status 159 (128 + SIGSYS). Not by raising
    //! SIGSYS again: the Sentry is the init of its PID namespace, which ignores a signal
    //! it sends itself without a handler, and the refused call would return.
    //!
    //! This module opts out of `deny(unsafe_code)`: installing a signal handler and
    //! reading the siginfo the kernel passes it are `unsafe`.
    #![allow(unsafe_code)]

    /// Installs the handler.
    pub(super) fn install() -> std::io::Result<()> {
        // SAFETY: an all-zero sigaction is valid (no flags, empty mask) before it is filled.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        // SAFETY: `sa` is a valid sigaction whose handler is async-signal-safe (it only
        // reads its arguments, writes to a stack buffer and calls write(2) and _exit(2)).
        let rc = unsafe { libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    extern "C" fn on_sigsys(
        _sig: libc::c_int,
        info: *mut libc::siginfo_t,
        _ctx: *mut libc::c_void,
    ) {
        // struct siginfo's SIGSYS fields: _call_addr at 16, _syscall (int) at 24.
        // SAFETY: the kernel passes a full siginfo_t (SA_SIGINFO), 128 bytes.
        let nr = unsafe { std::ptr::read_unaligned(info.cast::<u8>().add(24).cast::<i32>()) };
        let mut msg = [0u8; 128];
        let mut len = 0;
        let name = u64::try_from(nr)
            .ok()
            .and_then(sentry::syscalls::names::name)
            .unwrap_or("?");
        for part in [
            b"bulwark: the Sentry's seccomp filter refused host syscall ".as_slice(),
            &decimal(nr),
            b" (",
            name.as_bytes(),
            b")\n",
        ] {
            for &b in part {
                if b != 0 && len < msg.len() {
                    msg[len] = b;
                    len += 1;
                }
            }
        }
        // SAFETY: write(2) and _exit(2) are async-signal-safe; `msg` is live.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), len);
            libc::_exit(128 + libc::SIGSYS);
        }
    }

    /// `n` in decimal, padded with NULs (skipped by the caller).
    fn decimal(n: i32) -> [u8; 12] {
        let mut out = [0u8; 12];
        let mut digits = [0u8; 12];
        let mut v = n.unsigned_abs();
        let mut i = 0;
        loop {
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            i += 1;
            if v == 0 {
                break;
            }
        }
        let mut at = 0;
        if n < 0 {
            out[0] = b'-';
            at = 1;
        }
        for d in digits[..i].iter().rev() {
            out[at] = *d;
            at += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    //! The filter is installed in a child process (this test binary, run again for one
    //! test with `BULWARK_SECCOMP_CHILD` set), which makes an allowed call and then a
    //! forbidden one: the parent checks how the child ended.

    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Output};

    use super::*;

    const CHILD: &str = "BULWARK_SECCOMP_CHILD";

    /// Runs `seccomp_child` in a new process with `case` (`<platform>:<violation>:<call>`).
    fn child(case: &str) -> Output {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "confine::tests::seccomp_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD, case)
            .output()
            .unwrap()
    }

    /// The child's side: not a test of its own (it returns at once without the variable).
    #[test]
    fn seccomp_child() {
        let Ok(case) = std::env::var(CHILD) else {
            return;
        };
        let parts: Vec<&str> = case.split(':').collect();
        let platform = Platform::from_name(parts[0]).unwrap();
        let violation = match parts[1] {
            "kill" => Violation::Kill,
            _ => Violation::Trap,
        };
        // Made before the filter, as the Sentry makes its host resources.
        let file = tempfile::tempfile().unwrap();
        install_seccomp(platform, violation).unwrap();
        // Allowed: I/O on a descriptor it holds, and a thread (clone3 is refused with
        // ENOSYS, and glibc falls back to clone with pthread's flags).
        use std::io::{Seek, Write};
        (&file).write_all(b"allowed").unwrap();
        (&file).rewind().unwrap();
        let tid = std::thread::spawn(|| rustix::thread::gettid().as_raw_nonzero().get())
            .join()
            .unwrap();
        println!("allowed calls work (thread {tid})");
        match parts[2] {
            "openat" => {
                let _ = std::fs::File::open("/etc/hostname");
            }
            "execve" => {
                use std::os::unix::process::CommandExt;
                // execve in this process (no fork).
                let _ = Command::new("/bin/true").exec();
            }
            "socket" => {
                let _ = std::net::TcpListener::bind("127.0.0.1:0");
            }
            _ => {}
        }
        println!("the forbidden call returned");
        std::process::exit(0);
    }

    fn assert_refused(out: &Output, case: &str) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("allowed calls work"),
            "{case}: the allowed calls failed: {out:?}"
        );
        assert!(
            !stdout.contains("the forbidden call returned"),
            "{case}: the forbidden call was not refused"
        );
        // Killed by SIGSYS, or (trapping) exited with 128 + SIGSYS after the report.
        assert!(
            out.status.signal() == Some(libc::SIGSYS)
                || out.status.code() == Some(128 + libc::SIGSYS),
            "{case}: not ended by its filter: {out:?}"
        );
    }

    #[test]
    fn killing_filter_refuses_open_exec_and_socket() {
        for call in ["openat", "execve", "socket"] {
            let case = format!("kvm:kill:{call}");
            assert_refused(&child(&case), &case);
        }
    }

    /// A trapping filter (systrap, and --debug) refuses the same, and names the syscall.
    #[test]
    fn trapping_filter_refuses_and_names_the_syscall() {
        for (call, nr) in [("openat", "257 (openat)"), ("socket", "41 (socket)")] {
            let case = format!("systrap:trap:{call}");
            let out = child(&case);
            assert_refused(&out, &case);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(&format!("refused host syscall {nr}")),
                "{case}: {stderr}"
            );
        }
    }

    #[test]
    fn no_filter_allows_open_exec_or_socket() {
        for platform in [Platform::Kvm, Platform::Systrap] {
            let rules = seccomp_rules(platform).unwrap();
            for nr in [
                libc::SYS_open,
                libc::SYS_openat,
                libc::SYS_openat2,
                libc::SYS_execve,
                libc::SYS_execveat,
                libc::SYS_socket,
                libc::SYS_socketpair,
                libc::SYS_connect,
                libc::SYS_ptrace,
                libc::SYS_mount,
            ] {
                assert!(!rules.contains_key(&nr), "{platform:?} allows {nr}");
            }
        }
    }

    /// What the kernel itself makes a thread call after a signal (its handler's return,
    /// the restart of an interrupted sleep: a stopped and continued or frozen and thawed
    /// Sentry) is allowed, or the signal would end the sandbox.
    #[test]
    fn signal_returns_and_restarts_are_allowed() {
        for platform in [Platform::Kvm, Platform::Systrap] {
            let rules = seccomp_rules(platform).unwrap();
            for nr in [libc::SYS_rt_sigreturn, libc::SYS_restart_syscall] {
                assert_eq!(rules.get(&nr), Some(&Vec::new()), "{platform:?}: {nr}");
            }
        }
    }

    /// ioctl is limited: KVM requests only on KVM, and never TIOCSTI.
    #[test]
    fn ioctl_requests_are_limited() {
        assert!(!TERMINAL_IOCTLS.contains(&0x5412), "TIOCSTI");
        let systrap = seccomp_rules(Platform::Systrap).unwrap();
        let kvm = seccomp_rules(Platform::Kvm).unwrap();
        assert_eq!(systrap[&libc::SYS_ioctl].len(), TERMINAL_IOCTLS.len());
        assert_eq!(
            kvm[&libc::SYS_ioctl].len(),
            TERMINAL_IOCTLS.len() + KVM_IOCTLS.len()
        );
    }

    #[test]
    fn the_filters_compile() {
        for platform in [Platform::Kvm, Platform::Systrap] {
            for v in [Violation::Kill, Violation::Trap] {
                assert!(!seccomp_program(platform, v).unwrap().is_empty());
            }
        }
        assert!(!clone3_filter().unwrap().is_empty());
    }
}
