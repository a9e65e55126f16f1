//! `linux.resources` enforced through the host's cgroups (v1), and `bulwark update`.
//!
//! `create` makes the container's cgroup in the memory, pids, cpu, cpuacct and cpuset
//! controllers (`linux.cgroupsPath`: absolute as given, relative under `/bulwark/`;
//! default `/bulwark/ID`), writes the limits the spec asks for, and passes the path to the
//! Sentry and the Gofer, which join it first thing (`--cgroup`), before the Sentry starts
//! its platform: the systrap stubs, its children, are then born in it. `delete` removes
//! the directories. The Sentry also knows the memory and pids limits (its
//! `ContainerConfig`): it reports the memory limit as the total memory and keeps its task
//! count within the pids limit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;

/// Where the host's cgroup v1 controllers are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The controllers a container's cgroup is made in.
const CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "cpuset"];

/// The parent of relative `cgroupsPath`s and of the default one.
const PARENT: &str = "/bulwark";

/// The parts of `linux.resources` Bulwark applies.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Resources {
    pub memory: Option<Memory>,
    pub pids: Option<Pids>,
    pub cpu: Option<Cpu>,
    pub block_io: Option<serde_json::Value>,
    pub hugepage_limits: Option<serde_json::Value>,
    pub network: Option<serde_json::Value>,
    pub rdma: Option<serde_json::Value>,
    pub unified: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Memory {
    pub limit: Option<i64>,
    pub reservation: Option<i64>,
    pub swap: Option<i64>,
    pub kernel: Option<i64>,
    pub kernel_tcp: Option<i64>,
    pub swappiness: Option<u64>,
    pub disable_oom_killer: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Pids {
    pub limit: i64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Cpu {
    pub shares: Option<u64>,
    pub quota: Option<i64>,
    pub period: Option<u64>,
    pub realtime_runtime: Option<i64>,
    pub realtime_period: Option<u64>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
}

/// Whether a value sets anything: a zero, `false`, an empty string, list or object
/// (or one made only of those) means "not set", as runc and `docker update` use them.
fn meaningful(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(meaningful),
        Value::Object(o) => o.values().any(meaningful),
    }
}

impl Resources {
    /// `linux.resources` of the spec's `linux` object (none: the default).
    pub fn from_linux(linux: &serde_json::Value) -> anyhow::Result<Self> {
        match linux.get("resources") {
            None | Some(serde_json::Value::Null) => Ok(Self::default()),
            Some(r) => Self::parse(r),
        }
    }

    /// Resources from JSON (`linux.resources`, or `update --resources`). Zeros are
    /// dropped: they mean "not set" (runc skips them, and `docker update` sends every
    /// field, zero where the user gave none).
    pub fn parse(r: &serde_json::Value) -> anyhow::Result<Self> {
        let mut r: Self = serde_json::from_value(r.clone()).context("parsing linux.resources")?;
        fn nonzero<T: Default + PartialEq>(v: &mut Option<T>) {
            if v.as_ref() == Some(&T::default()) {
                *v = None;
            }
        }
        if let Some(m) = &mut r.memory {
            for v in [
                &mut m.limit,
                &mut m.reservation,
                &mut m.swap,
                &mut m.kernel,
                &mut m.kernel_tcp,
            ] {
                nonzero(v);
            }
            nonzero(&mut m.disable_oom_killer);
        }
        if r.pids.as_ref().is_some_and(|p| p.limit == 0) {
            r.pids = None;
        }
        if let Some(c) = &mut r.cpu {
            nonzero(&mut c.quota);
            nonzero(&mut c.realtime_runtime);
            nonzero(&mut c.shares);
            nonzero(&mut c.period);
            nonzero(&mut c.realtime_period);
            nonzero(&mut c.cpus);
            nonzero(&mut c.mems);
        }
        for v in [
            &mut r.block_io,
            &mut r.hugepage_limits,
            &mut r.network,
            &mut r.rdma,
            &mut r.unified,
        ] {
            if !v.as_ref().is_some_and(meaningful) {
                *v = None;
            }
        }
        Ok(r)
    }

    /// Whether any limit is asked for (devices and what Bulwark ignores aside).
    pub fn any(&self) -> bool {
        let memory = self
            .memory
            .as_ref()
            .is_some_and(|m| m.limit.is_some() || m.swap.is_some());
        let pids = self.pids.as_ref().is_some_and(|p| p.limit != 0);
        let cpu = self.cpu.as_ref().is_some_and(|c| {
            c.shares.is_some()
                || c.quota.is_some()
                || c.period.is_some()
                || c.cpus.as_deref().is_some_and(|s| !s.is_empty())
                || c.mems.as_deref().is_some_and(|s| !s.is_empty())
        });
        memory || pids || cpu
    }

    /// The memory limit in bytes, if there is one.
    pub fn memory_limit(&self) -> Option<u64> {
        let limit = self.memory.as_ref()?.limit?;
        u64::try_from(limit).ok().filter(|&l| l > 0)
    }

    /// The pids limit, if there is one.
    pub fn pids_limit(&self) -> Option<u64> {
        u64::try_from(self.pids.as_ref()?.limit)
            .ok()
            .filter(|&l| l > 0)
    }

    /// What is asked for and not applied, one line each (informational).
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut note = |set: bool, what: &str| {
            if set {
                out.push(format!("{what} is not supported (ignored)"));
            }
        };
        if let Some(m) = &self.memory {
            note(m.reservation.is_some(), "memory.reservation");
            note(m.kernel.is_some(), "memory.kernel");
            note(m.kernel_tcp.is_some(), "memory.kernelTCP");
            note(m.swappiness.is_some(), "memory.swappiness");
            note(
                m.disable_oom_killer == Some(true),
                "memory.disableOOMKiller",
            );
        }
        if let Some(c) = &self.cpu {
            note(
                c.realtime_runtime.is_some() || c.realtime_period.is_some(),
                "cpu.realtimeRuntime/realtimePeriod",
            );
        }
        note(self.block_io.is_some(), "blockIO");
        note(self.hugepage_limits.is_some(), "hugepageLimits");
        note(self.network.is_some(), "network");
        note(self.rdma.is_some(), "rdma");
        note(self.unified.is_some(), "unified");
        out
    }
}

/// The container's cgroup path (`/bulwark/ID` and the like) from `linux.cgroupsPath`.
pub fn path_for(cgroups_path: Option<&str>, id: &str, systemd: bool) -> anyhow::Result<String> {
    let given = cgroups_path.unwrap_or("");
    let systemd_style = !given.starts_with('/') && given.split(':').count() == 3;
    if systemd || systemd_style {
        bail!(
            "linux.cgroupsPath {given:?}: the systemd cgroup driver is not supported \
             (use the cgroupfs driver, e.g. dockerd --exec-opt native.cgroupdriver=cgroupfs)"
        );
    }
    let path = if given.is_empty() {
        format!("{PARENT}/{id}")
    } else if given.starts_with('/') {
        given.to_string()
    } else {
        format!("{PARENT}/{given}")
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == "..") {
        bail!("linux.cgroupsPath {given:?}: not a valid cgroup path");
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A container's cgroup: the same path in each controller.
#[derive(Clone, Debug)]
pub struct Cgroup {
    path: String,
}

impl Cgroup {
    pub fn new(path: &str) -> Self {
        Self {
            path: path.to_string(),
        }
    }

    /// The cgroup's directory in `controller`.
    pub fn dir(&self, controller: &str) -> PathBuf {
        Path::new(CGROUP_ROOT)
            .join(controller)
            .join(self.path.trim_start_matches('/'))
    }

    /// Creates the cgroup and writes `resources` to it. `Ok(None)` when the host's
    /// cgroups cannot be written and nothing is asked for: the container runs without.
    pub fn create(path: &str, resources: &Resources) -> anyhow::Result<Option<Self>> {
        let cgroup = Self::new(path);
        match cgroup.make_dirs() {
            Ok(()) => {}
            Err(e) if !resources.any() => {
                log::info!("no cgroup for the container ({e:#}): it asks for no limits");
                cgroup.remove();
                return Ok(None);
            }
            Err(e) => {
                cgroup.remove();
                return Err(e.context(format!(
                    "creating cgroup {path} for linux.resources (run as root, with cgroup v1 \
                     controllers under {CGROUP_ROOT})"
                )));
            }
        }
        for what in resources.unsupported() {
            log::warn!("linux.resources: {what}");
        }
        if let Err(e) = cgroup.apply(resources) {
            cgroup.remove();
            return Err(e);
        }
        Ok(Some(cgroup))
    }

    /// `mkdir -p` in each controller; in cpuset, each new level gets its parent's CPUs
    /// and memory nodes (a cpuset cgroup starts with none, and takes no process so).
    fn make_dirs(&self) -> anyhow::Result<()> {
        for controller in CONTROLLERS {
            let base = Path::new(CGROUP_ROOT).join(controller);
            if !base.is_dir() {
                bail!(
                    "{}: the {controller} controller is not mounted",
                    base.display()
                );
            }
            let mut dir = base;
            for part in self.path.split('/').filter(|p| !p.is_empty()) {
                let parent = dir.clone();
                dir.push(part);
                match std::fs::create_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
                }
                if controller == "cpuset" {
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        let mine = read(&dir.join(file))?;
                        if mine.trim().is_empty() {
                            write(&dir.join(file), read(&parent.join(file))?.trim())?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes the limits `resources` asks for.
    pub fn apply(&self, resources: &Resources) -> anyhow::Result<()> {
        if let Some(m) = &resources.memory {
            let dir = self.dir("memory");
            let limit_file = dir.join("memory.limit_in_bytes");
            let swap_file = dir.join("memory.memsw.limit_in_bytes");
            let swap = m.swap.filter(|_| swap_file.exists());
            if m.swap.is_some() && swap.is_none() {
                log::warn!(
                    "linux.resources.memory.swap: {} does not exist (no swap accounting)",
                    swap_file.display()
                );
            }
            // The Sentry keeps the application to `limit` itself (its OOM killer ends the
            // largest process inside the sandbox); the host's limit gives room for the
            // Sentry's and the Gofer's own memory on top, as a backstop, so that the host
            // never kills the whole sandbox for what the application did.
            let (limit, swap) = (m.limit.map(host_memory), swap.map(host_memory));
            match (limit, swap) {
                (Some(limit), Some(swap)) => {
                    // memory.limit_in_bytes may not exceed memsw: raise memsw first when
                    // the memory limit does not fit under the current one.
                    if write(&limit_file, &limit.to_string()).is_err() {
                        write(&swap_file, &swap.to_string())?;
                        write(&limit_file, &limit.to_string())?;
                    } else {
                        write(&swap_file, &swap.to_string())?;
                    }
                }
                (Some(limit), None) => write(&limit_file, &limit.to_string())?,
                (None, Some(swap)) => write(&swap_file, &swap.to_string())?,
                (None, None) => {}
            }
        }
        if let Some(p) = resources.pids.as_ref().filter(|p| p.limit != 0) {
            // The Sentry counts the sandbox's processes itself and refuses a fork past
            // the limit with EAGAIN; the host's counter sees the host tasks a sandbox
            // process costs (its Sentry thread, a stub and the stub's threads), so it
            // gets room for those, as a backstop against a runaway Sentry.
            let value = if p.limit > 0 {
                host_pids(p.limit).to_string()
            } else {
                "max".to_string()
            };
            write(&self.dir("pids").join("pids.max"), &value)?;
        }
        if let Some(c) = &resources.cpu {
            let dir = self.dir("cpu");
            if let Some(shares) = c.shares {
                write(&dir.join("cpu.shares"), &shares.to_string())?;
            }
            let quota_file = dir.join("cpu.cfs_quota_us");
            let period_file = dir.join("cpu.cfs_period_us");
            match (c.quota, c.period) {
                (Some(quota), Some(period)) => {
                    // As runc: the period first, and the other order if the kernel
                    // refuses it with the current quota.
                    if write(&period_file, &period.to_string()).is_err() {
                        write(&quota_file, &quota.to_string())?;
                        write(&period_file, &period.to_string())?;
                    } else {
                        write(&quota_file, &quota.to_string())?;
                    }
                }
                (Some(quota), None) => write(&quota_file, &quota.to_string())?,
                (None, Some(period)) => write(&period_file, &period.to_string())?,
                (None, None) => {}
            }
            let cpuset = self.dir("cpuset");
            if let Some(cpus) = c.cpus.as_deref().filter(|s| !s.is_empty()) {
                write(&cpuset.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = c.mems.as_deref().filter(|s| !s.is_empty()) {
                write(&cpuset.join("cpuset.mems"), mems)?;
            }
        }
        Ok(())
    }

    /// Removes the cgroup's directories, once the processes in them are gone (retrying
    /// for a while); errors are logged.
    pub fn remove(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for controller in CONTROLLERS {
            let dir = self.dir(controller);
            loop {
                match std::fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) if Instant::now() >= deadline => {
                        log::warn!("removing {}: {e}", dir.display());
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

/// Moves the calling process into cgroup `path` in each controller that has it (the
/// Sentry and the Gofer, first thing: what they start later is born in it).
pub fn join(path: &str) -> anyhow::Result<()> {
    let cgroup = Cgroup::new(path);
    for controller in CONTROLLERS {
        let dir = cgroup.dir(controller);
        if dir.is_dir() {
            write(&dir.join("cgroup.procs"), "0")?;
        }
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn write(path: &Path, value: &str) -> anyhow::Result<()> {
    std::fs::write(path, value).with_context(|| format!("writing {value:?} to {}", path.display()))
}

/// Memory the Sentry and the Gofer may use for themselves beyond the application's limit:
/// a base, and a share of the limit (the Sentry's page and mapping tables grow with it).
const HOST_MEMORY_BASE: i64 = 64 << 20;
const HOST_MEMORY_SHARE: i64 = 16;

/// The host's memory limit for a sandbox whose application may use `limit` bytes (`-1`
/// and other non-positive values, "no limit", pass through).
pub fn host_memory(limit: i64) -> i64 {
    if limit <= 0 {
        return limit;
    }
    limit
        .saturating_add(limit / HOST_MEMORY_SHARE)
        .saturating_add(HOST_MEMORY_BASE)
}

/// The application's limit behind a host limit `host` that [`host_memory`] made (a host
/// value it cannot have made, "no limit" among them, is returned as it is).
pub fn container_memory(host: u64) -> u64 {
    // cgroup v1 shows "no limit" as a page-rounded i64::MAX; no real limit comes close.
    let Some(h) = i64::try_from(host).ok().filter(|&h| h < 1 << 62) else {
        return host;
    };
    let guess = (h - HOST_MEMORY_BASE) / (HOST_MEMORY_SHARE + 1) * HOST_MEMORY_SHARE;
    (guess.max(1)..guess.max(1) + HOST_MEMORY_SHARE + 2)
        .find(|&l| host_memory(l) == h)
        .and_then(|l| u64::try_from(l).ok())
        .unwrap_or(host)
}

/// Host tasks one sandbox process may cost (its Sentry thread, a systrap stub process and
/// the stub's threads), and those of the sandbox itself (Gofer, Sentry, timers).
const HOST_TASKS_PER_PROCESS: i64 = 6;
const HOST_TASKS_BASE: i64 = 32;

/// The host's `pids.max` for a sandbox of `limit` processes.
pub fn host_pids(limit: i64) -> i64 {
    limit
        .saturating_mul(HOST_TASKS_PER_PROCESS)
        .saturating_add(HOST_TASKS_BASE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_limit_leaves_room_for_the_sandbox_itself() {
        assert_eq!(host_memory(64 << 20), (64 << 20) + (4 << 20) + (64 << 20));
        assert_eq!(host_memory(-1), -1);
        assert_eq!(host_memory(0), 0);
        assert_eq!(host_memory(i64::MAX), i64::MAX);
        for limit in [1, 4095, 64 << 20, (64 << 20) + 17, 3 << 30] {
            assert_eq!(container_memory(host_memory(limit) as u64), limit as u64);
        }
        // The unlimited value of cgroup v1 (a page-rounded i64::MAX) stays as it is.
        assert_eq!(container_memory(9223372036854771712), 9223372036854771712);
    }

    #[test]
    fn paths() {
        assert_eq!(path_for(None, "c1", false).unwrap(), "/bulwark/c1");
        assert_eq!(
            path_for(Some("/docker/abc"), "c1", false).unwrap(),
            "/docker/abc"
        );
        assert_eq!(
            path_for(Some("mine/x"), "c1", false).unwrap(),
            "/bulwark/mine/x"
        );
        assert!(path_for(Some("/a/../b"), "c1", false).is_err());
        let e = path_for(Some("system.slice:docker:abc"), "c1", true).unwrap_err();
        assert!(format!("{e:#}").contains("systemd cgroup driver is not supported"));
        assert!(path_for(Some("system.slice:docker:abc"), "c1", false).is_err());
    }

    #[test]
    fn resources_parse() {
        let linux = serde_json::json!({"resources": {
            "memory": {"limit": 67108864},
            "pids": {"limit": 64},
            "cpu": {"quota": 50000, "period": 100000},
            "devices": [{"allow": false, "access": "rwm"}],
        }});
        let r = Resources::from_linux(&linux).unwrap();
        assert!(r.any());
        assert_eq!(r.memory_limit(), Some(64 << 20));
        assert_eq!(r.pids_limit(), Some(64));
        assert!(r.unsupported().is_empty());
        let none = Resources::from_linux(&serde_json::json!({})).unwrap();
        assert!(!none.any());
        assert_eq!(none.memory_limit(), None);
        // What `docker update --memory 128m` sends: every field, zero where unset.
        let docker = serde_json::json!({
            "memory": {"limit": 134217728, "reservation": 0, "swap": 0, "kernel": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0,
                    "realtimePeriod": 0, "cpus": "", "mems": ""},
            "blockIO": {"weight": 0},
            "pids": {"limit": 0},
        });
        let r = Resources::parse(&docker).unwrap();
        assert_eq!(r.memory_limit(), Some(128 << 20));
        assert_eq!(r.pids, None);
        assert_eq!(r.cpu, Some(Cpu::default()));
        assert!(r.unsupported().is_empty(), "{:?}", r.unsupported());
    }
}
