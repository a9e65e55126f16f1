//! `bulwark gofer`: the Gofer process of one container. It serves the container's root
//! and its bind mounts over the channels it was given, confined to them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use gofer::confine::{self, ConfineOptions, LandlockPolicy};
use gofer::{MountConfig, Server};

use crate::{fds, GlobalFlags};

#[derive(Args, Debug)]
pub struct GoferArgs {
    /// What to serve, repeated: `NAME=PATH[:ro]` serves the host directory or regular
    /// file PATH under the attach name NAME (`/` for the container root, the destination
    /// for a bind mount), read-only with `:ro`. A bare `PATH` is the root (`/=PATH`).
    #[arg(long, default_value = "/")]
    pub serve: Vec<String>,
    /// Refuse every write with EROFS in every served tree.
    #[arg(long)]
    pub read_only: bool,
    /// Inherited descriptors of the channels to serve (`3,4`).
    #[arg(long)]
    pub channels: String,
    /// Start even where Landlock cannot be enforced (with a warning).
    #[arg(long)]
    pub allow_no_landlock: bool,
    /// Exit when the `bulwark` that started this one does (`do`).
    #[arg(long)]
    pub die_with_parent: bool,
    /// Join this cgroup (the container's, `oci::cgroups`) first.
    #[arg(long)]
    pub cgroup: Option<String>,
}

pub fn run(_flags: &GlobalFlags, args: GoferArgs) -> anyhow::Result<i32> {
    // Before any thread starts (the channels' below).
    crate::confine::single_malloc_arena();
    if args.die_with_parent {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .context("setting the parent-death signal")?;
    }
    if let Some(cgroup) = &args.cgroup {
        crate::oci::cgroups::join(cgroup)?;
    }
    let socks = fds::take(&fds::parse_list(&args.channels)?)?;
    let mounts = args
        .serve
        .iter()
        .map(|s| parse_serve(s, args.read_only))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let root = mounts
        .iter()
        .find(|m| m.name == "/")
        .map(|m| m.path.clone())
        .context("--serve: nothing is served as the root (/=PATH)")?;
    let server = Arc::new(Server::new(mounts).context("opening the served trees")?);
    let mut opts = ConfineOptions::new(&root);
    if root == std::path::Path::new("/") {
        // Serving the host's root (`bulwark do`): pivoting into `/` is not possible and
        // would hide nothing; Landlock, seccomp and the empty network namespace still
        // apply, and the server never leaves the tree it serves.
        opts.new_root = None;
    }
    if args.allow_no_landlock {
        opts.landlock = LandlockPolicy::BestEffort;
    }
    confine::confine(&server, &opts).context("confining the gofer")?;
    log::debug!(
        "gofer: serving {} on {} channel(s)",
        args.serve.join(" "),
        socks.len()
    );
    for handle in server.spawn(socks) {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::debug!("gofer channel ended: {e}"),
            Err(_) => log::error!("gofer channel thread panicked"),
        }
    }
    Ok(0)
}

/// One `--serve` value: `NAME=PATH[:ro]`, or a bare `PATH` for the root.
fn parse_serve(value: &str, all_read_only: bool) -> anyhow::Result<MountConfig> {
    let (name, rest) = match value.split_once('=') {
        Some((name, rest)) if name.starts_with('/') => (name, rest),
        _ => ("/", value),
    };
    let (path, read_only) = match rest.strip_suffix(":ro") {
        Some(path) => (path, true),
        None => (rest.strip_suffix(":rw").unwrap_or(rest), false),
    };
    if path.is_empty() {
        anyhow::bail!("--serve {value:?}: no path (use NAME=PATH[:ro])");
    }
    Ok(MountConfig {
        name: name.to_string(),
        path: PathBuf::from(path),
        read_only: read_only || all_read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_values() {
        let m = parse_serve("/srv/root", false).unwrap();
        assert_eq!((m.name.as_str(), m.path.to_str()), ("/", Some("/srv/root")));
        assert!(!m.read_only);
        assert!(parse_serve("/srv/root", true).unwrap().read_only);
        let m = parse_serve("/etc/hosts=/var/lib/c/hosts:ro", false).unwrap();
        assert_eq!(m.name, "/etc/hosts");
        assert_eq!(m.path, PathBuf::from("/var/lib/c/hosts"));
        assert!(m.read_only);
        let m = parse_serve("/data=/tmp/a:b:rw", false).unwrap();
        assert_eq!(m.path, PathBuf::from("/tmp/a:b"));
        assert!(!m.read_only);
        assert!(parse_serve("/data=", false).is_err());
    }
}
