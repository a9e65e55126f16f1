//! Confinement of the Gofer process, called by `bulwark gofer` after `Server::new` (which
//! opens the mount roots and `/proc/self/fd`) and before any thread is started:
//!
//! 1. `unshare(CLONE_NEWNS | CLONE_NEWNET)`: a private mount namespace, and a network
//!    namespace with nothing in it but a down loopback.
//! 2. `pivot_root` into the container root, detaching the host's tree.
//! 3. Landlock: the served trees only, read-only mounts with read access only.
//! 4. seccomp: an allow-list of the syscalls the server makes (`seccomp_rules`).
//!
//! The one opt-out of `deny(unsafe_code)` in this crate is the `ns` module below: rustix
//! marks `unshare` unsafe because of `CLONE_FILES`, which is never passed here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, BitFlags, PathBeneath, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetError, RulesetStatus, ABI,
};
use rustix::mount::{MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use thiserror::Error;

use crate::server::{ServedTree, Server};

/// Why the Gofer could not be confined. The Gofer must not serve when this happens.
#[derive(Debug, Error)]
pub enum ConfineError {
    /// `unshare` failed (the Gofer needs `CAP_SYS_ADMIN` in its user namespace).
    #[error(
        "Cannot unshare the mount and network namespaces (run as root or in a user namespace)"
    )]
    Unshare(#[source] rustix::io::Errno),
    /// A mount operation of the pivot failed.
    #[error("Cannot {step} while pivoting into {root:?}")]
    Pivot {
        /// The step that failed.
        step: &'static str,
        /// The new root.
        root: PathBuf,
        /// Why.
        #[source]
        source: rustix::io::Errno,
    },
    /// Building or applying the Landlock ruleset failed.
    #[error("Cannot apply the Landlock ruleset")]
    Landlock(#[source] RulesetError),
    /// Landlock is missing and was required.
    #[error("Landlock is not enforced by this kernel (enable CONFIG_SECURITY_LANDLOCK and add landlock to lsm=, or pass --allow-no-landlock)")]
    LandlockMissing,
    /// Building the seccomp filter failed.
    #[error("Cannot build the seccomp filter")]
    SeccompBuild(#[source] seccompiler::BackendError),
    /// Installing the seccomp filter failed.
    #[error("Cannot install the seccomp filter")]
    SeccompApply(#[source] seccompiler::Error),
}

/// What Landlock's absence means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandlockPolicy {
    /// Refuse to start where Landlock is not fully enforced (the default).
    Required,
    /// Start anyway, with a warning (the CLI's `--allow-no-landlock`).
    BestEffort,
    /// Do not apply Landlock at all (only for tests of the other layers).
    Off,
}

/// What the seccomp filter does with a syscall outside the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// Kill the process with `SIGSYS` (the default: a Gofer that strays is compromised).
    Kill,
    /// Fail the call with `EPERM` (for debugging a filter that is too tight).
    Eperm,
}

/// How to confine the Gofer.
#[derive(Debug, Clone)]
pub struct ConfineOptions {
    /// The container root to `pivot_root` into; `None` keeps the host root (tests only).
    pub new_root: Option<PathBuf>,
    /// Whether to unshare an empty network namespace.
    pub network_namespace: bool,
    /// Landlock policy.
    pub landlock: LandlockPolicy,
    /// seccomp policy; `None` installs no filter (tests only).
    pub seccomp: Option<Violation>,
}

impl ConfineOptions {
    /// Full confinement with `root` as the new root.
    pub fn new(root: impl Into<PathBuf>) -> ConfineOptions {
        ConfineOptions {
            new_root: Some(root.into()),
            network_namespace: true,
            landlock: LandlockPolicy::Required,
            seccomp: Some(Violation::Kill),
        }
    }
}

/// Applies every layer, in order. Call it once, before starting threads.
pub fn confine(server: &Server, opts: &ConfineOptions) -> Result<(), ConfineError> {
    let mut flags = UnshareFlags::NEWNS;
    if opts.network_namespace {
        flags |= UnshareFlags::NEWNET;
    }
    ns::unshare(flags).map_err(ConfineError::Unshare)?;
    if let Some(root) = &opts.new_root {
        pivot_into(root)?;
    }
    if opts.landlock != LandlockPolicy::Off {
        apply_landlock(&server.served_trees(), opts.landlock)?;
    }
    if let Some(v) = opts.seccomp {
        apply_seccomp(v)?;
    }
    Ok(())
}

mod ns {
    #![allow(unsafe_code)]
    use rustix::thread::UnshareFlags;

    /// `unshare(flags)`; `flags` never holds `CLONE_FILES`.
    pub(super) fn unshare(flags: UnshareFlags) -> rustix::io::Result<()> {
        if flags.contains(UnshareFlags::FILES) {
            return Err(rustix::io::Errno::INVAL);
        }
        // SAFETY: rustix marks unshare unsafe because CLONE_FILES would let threads
        // disagree about FD numbers; CLONE_FILES is refused above.
        unsafe { rustix::thread::unshare_unsafe(flags) }
    }
}

/// Makes `root` the root of this (new, private) mount namespace, with the old root
/// detached, in the way runc does: bind `root` on itself, `pivot_root(".", ".")`,
/// unmount the old root from on top.
pub fn pivot_into(root: &Path) -> Result<(), ConfineError> {
    let err = |step: &'static str| {
        let root = root.to_path_buf();
        move |source| ConfineError::Pivot { step, root, source }
    };
    // Nothing done below may propagate back to the host's mounts.
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(err("make / private"))?;
    rustix::mount::mount_bind_recursive(root, root).map_err(err("bind the root on itself"))?;
    rustix::process::chdir(root).map_err(err("chdir into the root"))?;
    rustix::process::pivot_root(".", ".").map_err(err("pivot_root"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(err("detach the old root"))?;
    rustix::process::chdir("/").map_err(err("chdir to /"))?;
    Ok(())
}

/// The Landlock ABI the ruleset is written for (as cloud-hypervisor does it): V3 adds
/// `Truncate` to V2's `Refer`, both of which the server needs on writable trees.
const LANDLOCK_ABI: ABI = ABI::V3;

/// The access a served tree gets: reading (and listing) for read-only trees, everything
/// the ABI knows for writable ones; for a single file (an OCI bind of one file), only
/// the rights that apply to a file (Landlock refuses directory rights on a file rule).
fn tree_access(read_only: bool, is_dir: bool) -> BitFlags<AccessFs> {
    let access = if read_only {
        AccessFs::ReadFile | AccessFs::ReadDir
    } else {
        AccessFs::from_all(LANDLOCK_ABI)
    };
    if is_dir {
        access
    } else {
        access & AccessFs::from_file(LANDLOCK_ABI)
    }
}

/// Restricts this process to the given trees.
pub fn apply_landlock(
    trees: &[ServedTree<'_>],
    policy: LandlockPolicy,
) -> Result<(), ConfineError> {
    // By default, rulesets are created in `BestEffort` mode: the kernel enforces what it
    // supports, and the status below says whether that was everything.
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .map_err(ConfineError::Landlock)?
        .create()
        .map_err(ConfineError::Landlock)?;
    for tree in trees {
        ruleset = ruleset
            .add_rule(PathBeneath::new(
                tree.fd,
                tree_access(tree.read_only, tree.is_dir),
            ))
            .map_err(ConfineError::Landlock)?;
    }
    let status = ruleset.restrict_self().map_err(ConfineError::Landlock)?;
    match (status.ruleset, policy) {
        (RulesetStatus::FullyEnforced, _) => Ok(()),
        (_, LandlockPolicy::Required) => Err(ConfineError::LandlockMissing),
        (s, _) => {
            log::warn!("gofer: Landlock is not fully enforced ({s:?}); continuing as asked");
            Ok(())
        }
    }
}

fn allow() -> Vec<SeccompRule> {
    Vec::new()
}

/// A rule matching `arg(index) == value` (32-bit compare).
fn arg_eq(index: u8, value: u64) -> Result<SeccompRule, seccompiler::BackendError> {
    SeccompRule::new(vec![SeccompCondition::new(
        index,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        value,
    )?])
}

fn nr(n: libc::c_long) -> i64 {
    n
}

/// The Gofer's seccomp allow-list, one syscall per rule, each saying who needs it.
pub fn seccomp_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::BackendError> {
    let fcntl_cmd = |cmd: libc::c_int| arg_eq(1, u64::from(cmd.unsigned_abs()));
    Ok(BTreeMap::from([
        // channel: receive requests (with MSG_CMSG_CLOEXEC) and send replies with FDs.
        (nr(libc::SYS_recvmsg), allow()),
        (nr(libc::SYS_sendmsg), allow()),
        // walk, open, create, reopen through /proc/self/fd; openat2 for RESOLVE_BENEATH.
        (nr(libc::SYS_openat), allow()),
        (nr(libc::SYS_openat2), allow()),
        // close handles, reopened FDs and FDs after they are sent.
        (nr(libc::SYS_close), allow()),
        // stat (statat with AT_EMPTY_PATH), fstat after create.
        (nr(libc::SYS_newfstatat), allow()),
        (nr(libc::SYS_fstat), allow()),
        (nr(libc::SYS_statx), allow()),
        // statfs.
        (nr(libc::SYS_fstatfs), allow()),
        // mkdir, mknod, symlink, link, unlink, rename, readlink.
        (nr(libc::SYS_mkdirat), allow()),
        (nr(libc::SYS_mknodat), allow()),
        (nr(libc::SYS_symlinkat), allow()),
        (nr(libc::SYS_linkat), allow()),
        (nr(libc::SYS_unlinkat), allow()),
        (nr(libc::SYS_renameat2), allow()),
        (nr(libc::SYS_readlinkat), allow()),
        // setattr: owner (fchownat on O_PATH, fchown after create), mode, size, times.
        (nr(libc::SYS_fchownat), allow()),
        (nr(libc::SYS_fchown), allow()),
        (nr(libc::SYS_fchmodat), allow()),
        (nr(libc::SYS_ftruncate), allow()),
        (nr(libc::SYS_utimensat), allow()),
        // readdir: seek to the cookie, read entries.
        (nr(libc::SYS_lseek), allow()),
        (nr(libc::SYS_getdents64), allow()),
        // fsync, fallocate.
        (nr(libc::SYS_fsync), allow()),
        (nr(libc::SYS_fdatasync), allow()),
        (nr(libc::SYS_fallocate), allow()),
        // xattrs, on re-opened FDs only.
        (nr(libc::SYS_fgetxattr), allow()),
        (nr(libc::SYS_fsetxattr), allow()),
        (nr(libc::SYS_flistxattr), allow()),
        (nr(libc::SYS_fremovexattr), allow()),
        // attach duplicates a root FD (OwnedFd::try_clone: F_DUPFD_CLOEXEC); std checks
        // that an OwnedFd it drops is open (F_GETFD, debug builds). No other command.
        (
            nr(libc::SYS_fcntl),
            vec![fcntl_cmd(libc::F_DUPFD_CLOEXEC)?, fcntl_cmd(libc::F_GETFD)?],
        ),
        // the allocator.
        (nr(libc::SYS_mmap), allow()),
        (nr(libc::SYS_munmap), allow()),
        (nr(libc::SYS_mremap), allow()),
        (nr(libc::SYS_mprotect), allow()),
        (nr(libc::SYS_madvise), allow()),
        (nr(libc::SYS_brk), allow()),
        // locks of the handle table and of the channel pool.
        (nr(libc::SYS_futex), allow()),
        (nr(libc::SYS_sched_yield), allow()),
        // a thread per channel (std::thread::spawn): clone3 (glibc tries it first) and
        // clone, and what a new thread sets up and tears down.
        (nr(libc::SYS_clone3), allow()),
        (nr(libc::SYS_clone), allow()),
        (nr(libc::SYS_set_robust_list), allow()),
        (nr(libc::SYS_rseq), allow()),
        (nr(libc::SYS_sigaltstack), allow()),
        // glibc's first pthread_create installs its two internal handlers (SIGCANCEL is
        // signal 32, SIGSETXID 33); no other signal's action may change.
        (
            nr(libc::SYS_rt_sigaction),
            vec![arg_eq(0, 32)?, arg_eq(0, 33)?],
        ),
        (nr(libc::SYS_rt_sigprocmask), allow()),
        (nr(libc::SYS_sched_getaffinity), allow()),
        (nr(libc::SYS_gettid), allow()),
        (nr(libc::SYS_getpid), allow()),
        (nr(libc::SYS_getrandom), allow()),
        // logging to stderr.
        (nr(libc::SYS_write), allow()),
        // glibc's malloc reads /proc/sys/vm/overcommit_memory when it trims a thread's
        // heap (the open is Landlock-checked; the read itself reaches nothing new).
        (nr(libc::SYS_read), allow()),
        // signal return (the Rust runtime's SIGSEGV stack-overflow handler).
        (nr(libc::SYS_rt_sigreturn), allow()),
        // exit of a channel thread and of the process.
        (nr(libc::SYS_exit), allow()),
        (nr(libc::SYS_exit_group), allow()),
    ]))
}

/// Installs the allow-list on every thread of the process (`no_new_privs` included).
pub fn apply_seccomp(violation: Violation) -> Result<(), ConfineError> {
    let mismatch = match violation {
        Violation::Kill => SeccompAction::KillProcess,
        Violation::Eperm => SeccompAction::Errno(libc::EPERM.unsigned_abs()),
    };
    let filter = SeccompFilter::new(
        seccomp_rules().map_err(ConfineError::SeccompBuild)?,
        mismatch,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(ConfineError::SeccompBuild)?;
    let program: BpfProgram = filter.try_into().map_err(ConfineError::SeccompBuild)?;
    seccompiler::apply_filter_all_threads(&program).map_err(ConfineError::SeccompApply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles() {
        let filter = SeccompFilter::new(
            seccomp_rules().unwrap(),
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            TargetArch::x86_64,
        )
        .unwrap();
        let program: BpfProgram = filter.try_into().unwrap();
        assert!(!program.is_empty());
    }

    #[test]
    fn read_only_trees_get_no_write_access() {
        let ro = tree_access(true, true);
        assert!(!ro.contains(AccessFs::WriteFile));
        assert!(!ro.contains(AccessFs::MakeReg));
        assert!(!ro.contains(AccessFs::Execute));
        assert!(tree_access(false, true).contains(AccessFs::Refer | AccessFs::Truncate));
    }

    #[test]
    fn file_roots_get_file_rights_only() {
        let file = AccessFs::from_file(LANDLOCK_ABI);
        assert_eq!(tree_access(true, false), AccessFs::ReadFile);
        assert!(file.contains(tree_access(false, false)));
        assert!(tree_access(false, false).contains(AccessFs::WriteFile | AccessFs::Truncate));
    }
}
