//! `bulwark events`: the container's resource usage from its cgroup, as runc prints it
//! (`{"type":"stats","id":…,"data":{…}}`), once with `--stats` or every `--interval`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use super::cgroups::Cgroup;
use super::state::Stored;
use crate::GlobalFlags;

#[derive(Args, Debug)]
pub struct EventsArgs {
    pub id: String,
    /// Print the stats once and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print stats (seconds, or with an `s`/`ms` suffix).
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

fn interval(s: &str) -> anyhow::Result<Duration> {
    let d = if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(ms.parse()?)
    } else {
        Duration::from_secs_f64(s.trim_end_matches('s').parse()?)
    };
    if d.is_zero() {
        bail!("--interval must be positive");
    }
    Ok(d)
}

/// A number from a cgroup file (0 when it is missing or not a number).
fn number(cg: &Cgroup, controller: &str, file: &str) -> u64 {
    std::fs::read_to_string(cg.dir(controller).join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn stats(id: &str, cg: &Cgroup) -> serde_json::Value {
    let percpu: Vec<u64> = std::fs::read_to_string(cg.dir("cpuacct").join("cpuacct.usage_percpu"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // cpuacct.stat counts in USER_HZ ticks; runc reports nanoseconds.
    let ticks = std::fs::read_to_string(cg.dir("cpuacct").join("cpuacct.stat")).unwrap_or_default();
    let tick = |key: &str| {
        ticks
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 10_000_000
    };
    let pids_limit = std::fs::read_to_string(cg.dir("pids").join("pids.max"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {"usage": {
                "total": number(cg, "cpuacct", "cpuacct.usage"),
                "percpu": percpu,
                "kernel": tick("system"),
                "user": tick("user"),
            }},
            "memory": {
                "usage": {
                    "usage": number(cg, "memory", "memory.usage_in_bytes"),
                    "max": number(cg, "memory", "memory.max_usage_in_bytes"),
                    // The container's limit, not the host's (which has room for the
                    // sandbox itself on top).
                    "limit": super::cgroups::container_memory(number(cg, "memory", "memory.limit_in_bytes")),
                    "failcnt": number(cg, "memory", "memory.failcnt"),
                },
            },
            "pids": {"current": number(cg, "pids", "pids.current"), "limit": pids_limit},
        }
    })
}

pub fn events(flags: &GlobalFlags, args: EventsArgs) -> anyhow::Result<i32> {
    let every = interval(&args.interval)?;
    let root = PathBuf::from(&flags.root);
    loop {
        let stored = Stored::load(&root, &args.id)?;
        if !stored.alive() {
            bail!("container {:?} is not running", args.id);
        }
        let path = stored
            .cgroup
            .as_deref()
            .with_context(|| format!("container {:?} has no cgroup to read stats from", args.id))?;
        println!("{}", stats(&args.id, &Cgroup::new(path)));
        if args.stats {
            return Ok(0);
        }
        std::thread::sleep(every);
    }
}
