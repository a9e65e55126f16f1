//! What the Sentry needs to know of a container beyond its program: its mounts, whether
//! its root is read-only, masked and read-only paths, the process's limits, groups,
//! capabilities and `no_new_privs`, and the sysctls it sets. `create` builds it from the
//! OCI spec ([`crate::oci::config`]); `launch` passes it to `boot` as JSON in a sealed memfd
//! (`--config-fd`); `boot` applies it. `bulwark do` passes none.

use std::io::{Read, Seek, Write};
use std::os::fd::OwnedFd;

use anyhow::Context;
use sentry::kernel::{Credentials, Task};
use sentry::vfs::mounts::{FsSpec, MountKind, MountSpec};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct ContainerConfig {
    pub root_readonly: bool,
    pub mounts: Vec<Mount>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `(resource, soft, hard)`.
    pub rlimits: Vec<(u32, u64, u64)>,
    pub additional_gids: Vec<u32>,
    pub no_new_privileges: bool,
    /// `None`: the Sentry's default for the user (every capability for root).
    pub capabilities: Option<CapSets>,
    /// `linux.seccomp`, applied by the Sentry to every application syscall.
    pub seccomp: Option<crate::oci::seccomp::Profile>,
    /// `linux.resources.memory.limit` in bytes: the sandbox's total memory, which it
    /// cannot allocate beyond (the host's cgroup holds the whole sandbox to it too).
    pub memory_limit: Option<u64>,
    /// `linux.resources.pids.limit`: the most tasks the sandbox may have at once.
    pub pids_limit: Option<u64>,
    /// `linux.sysctl` the Sentry applies (those of `oci::sysctl::APPLIED`), by name.
    pub sysctl: std::collections::BTreeMap<String, String>,
}

/// One mount, as the Sentry makes it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Mount {
    pub destination: String,
    /// bind, tmpfs, proc, sysfs, devpts, mqueue, cgroup or cgroup2.
    pub kind: String,
    /// For binds: the Gofer's attach name.
    #[serde(default)]
    pub attach: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    /// For tmpfs: the root's mode, and `size=` in bytes.
    #[serde(default)]
    pub mode: Option<u32>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub source: String,
}

/// Capability sets as bit masks.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

/// A host tree the Gofer serves for a bind mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoferBind {
    pub attach: String,
    pub path: std::path::PathBuf,
    pub read_only: bool,
}

impl ContainerConfig {
    /// The config in a sealed memfd, positioned at its start, for `boot` to read.
    pub fn to_memfd(&self) -> anyhow::Result<OwnedFd> {
        use rustix::fs::{MemfdFlags, SealFlags};
        let fd = rustix::fs::memfd_create(
            "bulwark-container",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .context("creating the container config memfd")?;
        let mut file = std::fs::File::from(fd);
        file.write_all(&serde_json::to_vec(self)?)?;
        file.rewind()?;
        let fd = OwnedFd::from(file);
        rustix::fs::fcntl_add_seals(
            &fd,
            SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
        )
        .context("sealing the container config")?;
        Ok(fd)
    }

    pub fn from_fd(fd: OwnedFd) -> anyhow::Result<Self> {
        let mut text = String::new();
        std::fs::File::from(fd)
            .read_to_string(&mut text)
            .context("reading the container config")?;
        serde_json::from_str(&text).context("parsing the container config")
    }

    /// The Sentry's mount plan.
    pub fn fs_spec(&self) -> anyhow::Result<FsSpec> {
        let mut mounts = Vec::new();
        for m in &self.mounts {
            let kind = match m.kind.as_str() {
                "bind" => MountKind::Bind {
                    attach: m
                        .attach
                        .clone()
                        .context("a bind mount without a gofer name")?,
                },
                "tmpfs" => MountKind::Tmpfs {
                    mode: m.mode.unwrap_or(0o1777),
                    size: m.size,
                },
                "proc" => MountKind::Proc,
                "sysfs" => MountKind::Sysfs,
                "devpts" => MountKind::Devpts,
                "mqueue" => MountKind::Mqueue,
                "cgroup" => MountKind::Cgroup { v2: false },
                "cgroup2" => MountKind::Cgroup { v2: true },
                other => anyhow::bail!("mount {}: unknown kind {other:?}", m.destination),
            };
            mounts.push(MountSpec {
                destination: m.destination.as_bytes().to_vec(),
                kind,
                read_only: m.read_only,
                source: m.source.clone(),
            });
        }
        let bytes = |v: &[String]| v.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok(FsSpec {
            root_read_only: self.root_readonly,
            mounts,
            masked_paths: bytes(&self.masked_paths),
            readonly_paths: bytes(&self.readonly_paths),
        })
    }

    /// The init process's credentials.
    pub fn apply_creds(&self, creds: &mut Credentials) {
        let mut groups = self.additional_gids.clone();
        groups.sort_unstable();
        groups.dedup();
        creds.groups = groups.into();
        if let Some(c) = self.capabilities {
            creds.caps.bounding = c.bounding;
            // As Linux: permitted and inheritable within the bounding set (for a fresh
            // process), effective within permitted, ambient within both.
            creds.caps.permitted = c.permitted & c.bounding;
            creds.caps.inheritable = c.inheritable;
            creds.caps.effective = c.effective & creds.caps.permitted;
            creds.caps.ambient = c.ambient & creds.caps.permitted & creds.caps.inheritable;
        }
        if self.no_new_privileges {
            creds.no_new_privs = true;
        }
    }

    /// The init process's resource limits.
    pub fn apply_limits(&self, task: &Task) -> anyhow::Result<()> {
        let mut limits = task.group.limits();
        for &(resource, cur, max) in &self.rlimits {
            let new = sentry::kernel::Rlimit { cur, max };
            limits
                .set(resource, new, true)
                .map_err(|e| anyhow::anyhow!("rlimit {resource} {cur}/{max}: {e}"))?;
        }
        drop(limits);
        // RLIMIT_CPU is enforced by timers on the process's CPU time.
        sentry::kernel::timer::apply_cpu_limit(&task.kernel, &task.group, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_the_memfd() {
        let c = ContainerConfig {
            root_readonly: true,
            mounts: vec![Mount {
                destination: "/data".into(),
                kind: "bind".into(),
                attach: Some("/data".into()),
                read_only: true,
                mode: None,
                size: None,
                source: "/host".into(),
            }],
            rlimits: vec![(7, 100, 200)],
            additional_gids: vec![5, 3, 5],
            capabilities: Some(CapSets {
                bounding: 1,
                effective: 1,
                permitted: 1,
                ..CapSets::default()
            }),
            ..ContainerConfig::default()
        };
        let back = ContainerConfig::from_fd(c.to_memfd().unwrap()).unwrap();
        assert_eq!(back, c);
        let mut creds = Credentials::new(0, 0);
        back.apply_creds(&mut creds);
        assert_eq!(&*creds.groups, &[3, 5]);
        assert_eq!(creds.caps.effective, 1);
        assert_eq!(creds.caps.bounding, 1);
        let fs = back.fs_spec().unwrap();
        assert!(fs.root_read_only);
        assert_eq!(
            fs.mounts[0].kind,
            MountKind::Bind {
                attach: "/data".into()
            }
        );
    }
}
