//! Container state under `--root/ID`: `state.json`, written atomically (a temporary file
//! renamed over the old one), and the `start` FIFO the Sentry waits on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// What Bulwark keeps about a container.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stored {
    pub id: String,
    pub bundle: PathBuf,
    /// The Sentry: its exit status is the container's.
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat), against PID reuse.
    pub start_time: u64,
    pub gofer_pid: i32,
    pub started: bool,
    /// `bulwark pause` froze it (until `resume`).
    #[serde(default)]
    pub paused: bool,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    /// The spec's hooks, for `start` and `delete` (the bundle may change meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<super::spec::Hooks>,
    /// The container's cgroup path (`oci::cgroups`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

/// The OCI state (`bulwark state`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'static str,
    pub id: &'a str,
    pub status: &'static str,
    pub pid: i32,
    pub bundle: String,
    pub created: &'a str,
    pub annotations: &'a BTreeMap<String, String>,
}

/// Checks a container ID: a single path component of safe characters.
pub fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if !ok {
        bail!("invalid container ID {id:?}: use letters, digits, '_', '+', '-' and '.'");
    }
    Ok(())
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

pub fn fifo(root: &Path, id: &str) -> PathBuf {
    dir(root, id).join("start.fifo")
}

impl Stored {
    pub fn load(root: &Path, id: &str) -> anyhow::Result<Self> {
        check_id(id)?;
        let path = dir(root, id).join("state.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id:?} does not exist")
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn save(&self, root: &Path) -> anyhow::Result<()> {
        let dir = dir(root, &self.id);
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join("state.json")).context("replacing state.json")
    }

    /// Whether the Sentry process still runs (and is the one recorded).
    pub fn alive(&self) -> bool {
        self.pid > 0 && start_time(self.pid) == Some(self.start_time)
    }

    /// The OCI status: created, running, paused or stopped.
    pub fn status(&self) -> &'static str {
        match (self.alive(), self.started, self.paused) {
            (false, _, _) => "stopped",
            (true, false, _) => "created",
            (true, true, false) => "running",
            (true, true, true) => "paused",
        }
    }

    /// The OCI state a hook gets on its standard input, with the status of its moment
    /// (`creating`, `created`, `running`, `stopped`).
    pub fn hook_state(&self, status: &str) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "id": self.id,
            "status": status,
            "pid": self.pid,
            "bundle": self.bundle.display().to_string(),
            "annotations": self.annotations,
        })
    }

    pub fn oci(&self) -> OciState<'_> {
        OciState {
            oci_version: "1.0.2",
            id: &self.id,
            status: self.status(),
            pid: if self.alive() { self.pid } else { 0 },
            bundle: self.bundle.display().to_string(),
            created: &self.created,
            annotations: &self.annotations,
        }
    }
}

/// Field 22 of /proc/PID/stat (the start time in clock ticks), or None if PID is gone (a
/// zombie counts as gone: it runs nothing).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split(' ').collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}
