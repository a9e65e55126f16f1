//! Confinement of the Sentry process (`bulwark boot`), as DESIGN.md's process model draws
//! it: its own mount, IPC, UTS and network namespaces, an empty read-only root, and
//! `no_new_privs`. The PID namespace, dropping capabilities and the seccomp allow-list of
//! the Sentry's own host syscalls are in `confine.rs`.

use anyhow::Context;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

/// Leaves the host's mount, IPC, UTS and network namespaces. Must run before the process
/// has a second thread (the kernel refuses a new mount namespace to a thread that shares
/// its filesystem context).
pub fn unshare_namespaces() -> anyhow::Result<()> {
    use rustix::thread::UnshareFlags;
    let flags =
        UnshareFlags::NEWNS | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS | UnshareFlags::NEWNET;
    ns::unshare(flags).context("entering new namespaces (bulwark must run as root)")
}

/// Replaces the root with an empty, read-only tmpfs: after this the Sentry can reach no
/// host file by path, only the descriptors it already holds (the memory file, /dev/kvm,
/// the Gofer's channels, its log).
pub fn pivot_to_empty_root() -> anyhow::Result<()> {
    let step = |what: &'static str| move |e: rustix::io::Errno| anyhow::anyhow!("{what}: {e}");
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
    )
    .map_err(step("making / private"))?;
    // Any directory serves as the mount point: the mount is private to this namespace.
    let flags = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    rustix::mount::mount(
        "bulwark-sentry",
        "/tmp",
        "tmpfs",
        flags,
        Some(c"size=16k,mode=0555"),
    )
    .map_err(step("mounting the empty root"))?;
    rustix::process::chdir("/tmp").map_err(step("entering the empty root"))?;
    rustix::process::pivot_root(".", ".").map_err(step("pivot_root"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(step("detaching the host root"))?;
    rustix::process::chdir("/").map_err(step("chdir /"))?;
    rustix::mount::mount_remount("/", flags | MountFlags::RDONLY, c"")
        .map_err(step("making the root read-only"))?;
    Ok(())
}

/// `PR_SET_NO_NEW_PRIVS`: nothing the Sentry runs can gain privileges.
pub fn no_new_privs() -> anyhow::Result<()> {
    rustix::thread::set_no_new_privs(true).context("setting no_new_privs")
}

pub(crate) mod ns {
    //! `unshare` is `unsafe` in rustix because `CLONE_FILES` could make threads disagree
    //! about descriptor numbers; this module opts out of `deny(unsafe_code)` for that one
    //! call and refuses `CLONE_FILES`.
    #![allow(unsafe_code)]
    use rustix::thread::UnshareFlags;

    pub(crate) fn unshare(flags: UnshareFlags) -> rustix::io::Result<()> {
        if flags.contains(UnshareFlags::FILES) {
            return Err(rustix::io::Errno::INVAL);
        }
        // SAFETY: CLONE_FILES is refused above, so no descriptor table is unshared.
        unsafe { rustix::thread::unshare_unsafe(flags) }
    }
}
