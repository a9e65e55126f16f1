//! `bulwark gofer`: the Gofer process of one container. It serves the container's root
//! (and later its bind mounts) over the channels it was given, confined to them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use gofer::confine::{self, ConfineOptions, LandlockPolicy};
use gofer::{MountConfig, Server};

use crate::{fds, GlobalFlags};

#[derive(Args, Debug)]
pub struct GoferArgs {
    /// The directory served as the container's root.
    #[arg(long, default_value = "/")]
    pub serve: PathBuf,
    /// Refuse every write with EROFS.
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
}

pub fn run(_flags: &GlobalFlags, args: GoferArgs) -> anyhow::Result<i32> {
    if args.die_with_parent {
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
            .context("setting the parent-death signal")?;
    }
    let socks = fds::take(&fds::parse_list(&args.channels)?)?;
    let mount = MountConfig {
        name: "/".to_string(),
        path: args.serve.clone(),
        read_only: args.read_only,
    };
    let server = Arc::new(Server::new(vec![mount]).context("opening the served root")?);
    let mut opts = ConfineOptions::new(&args.serve);
    if args.serve == std::path::Path::new("/") {
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
        args.serve.display(),
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
