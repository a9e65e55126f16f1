//! Taking ownership of the descriptors a parent `bulwark` passed down by number.
//!
//! This module opts out of `deny(unsafe_code)`: turning an inherited descriptor number into
//! an `OwnedFd` is `unsafe` in Rust's std, because nothing else may own the same number.
//! Each number is taken once, at start-up, after checking it is open.
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use anyhow::{bail, Context};

/// Takes the inherited descriptors `numbers` (each exactly once).
pub fn take(numbers: &[RawFd]) -> anyhow::Result<Vec<OwnedFd>> {
    let mut seen = Vec::new();
    for &n in numbers {
        if n < 0 || seen.contains(&n) {
            bail!("descriptor {n} given twice or negative");
        }
        // SAFETY: fcntl(F_GETFD) only reads the descriptor's flags and fails with EBADF on
        // a number that is not open; it touches no memory.
        if unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
            bail!("descriptor {n} is not open");
        }
        seen.push(n);
    }
    // SAFETY: every number is open (checked above), distinct, and was passed to this
    // process by its parent for it alone to own; nothing else in this process refers to it.
    Ok(seen
        .into_iter()
        .map(|n| unsafe { OwnedFd::from_raw_fd(n) })
        .collect())
}

/// Marks every descriptor above standard error close-on-exec. A command run by a client
/// (Docker's shim, containerd, a CI harness) may inherit descriptors it was never meant to
/// have; without this they would pass on to the Sentry and the Gofer, which must hold only
/// what `bulwark` hands them by number. Called first thing, before any descriptor of this
/// process's own is open.
pub fn cloexec_inherited() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        // No procfs: every descriptor a client could plausibly leak is below this bound.
        for n in 3..1024 {
            set_cloexec(n);
        }
        return;
    };
    let numbers: Vec<RawFd> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&n| n > 2)
        .collect();
    for n in numbers {
        set_cloexec(n);
    }
}

fn set_cloexec(n: RawFd) {
    // SAFETY: fcntl(F_GETFD/F_SETFD) only reads and sets the descriptor flag of `n`, and
    // fails with EBADF on a number that is not open (the one `read_dir` used is); it
    // touches no memory.
    unsafe {
        let flags = libc::fcntl(n, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(n, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// Most descriptors `--preserve-fds` passes on (they travel in one control message for
/// `exec`, whose limit is 253 with standard I/O).
pub const MAX_PRESERVED: u32 = 64;

/// What `capture_preserved` found, for `take_preserved`.
static PRESERVED: std::sync::Mutex<Option<anyhow::Result<Vec<OwnedFd>>>> =
    std::sync::Mutex::new(None);

/// Takes descriptors 3 to 3 + `count` - 1 (`--preserve-fds`), each of which must be open,
/// for `take_preserved`. Called first thing, before this process opens any descriptor
/// of its own that could take one of those numbers.
pub fn capture_preserved(count: u32) {
    let found = preserved(count);
    *PRESERVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(found);
}

/// The descriptors `capture_preserved` took (none if it was not called), or why it
/// could not take them.
pub fn take_preserved() -> anyhow::Result<Vec<OwnedFd>> {
    PRESERVED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| Ok(Vec::new()))
}

fn preserved(count: u32) -> anyhow::Result<Vec<OwnedFd>> {
    if count > MAX_PRESERVED {
        bail!("--preserve-fds {count}: at most {MAX_PRESERVED} descriptors can be passed");
    }
    let end = 3 + count as RawFd;
    (3..end)
        .map(|n| {
            // Copies go above the range, so that none takes a number still to be copied.
            // SAFETY: F_DUPFD_CLOEXEC reads no memory; a closed `n` fails with EBADF.
            let copy = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, end) };
            if copy < 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("--preserve-fds {count}: descriptor {n}"));
            }
            // SAFETY: `copy` was just created and is owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(copy) })
        })
        .collect()
}

/// Parses `3,4,5`.
pub fn parse_list(list: &str) -> anyhow::Result<Vec<RawFd>> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim()
                .parse::<RawFd>()
                .with_context(|| format!("bad descriptor {s:?}"))
        })
        .collect()
}

/// Copies of this process's standard input, output and error, for the application (the
/// originals stay the Sentry's, for its log).
pub fn dup_stdio() -> anyhow::Result<Vec<OwnedFd>> {
    use std::os::fd::AsFd;
    let copies = [
        std::io::stdin().as_fd().try_clone_to_owned(),
        std::io::stdout().as_fd().try_clone_to_owned(),
        std::io::stderr().as_fd().try_clone_to_owned(),
    ];
    copies
        .into_iter()
        .map(|c| c.context("duplicating standard I/O"))
        .collect()
}
