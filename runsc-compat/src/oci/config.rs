//! From the OCI spec to what the Gofer serves and the Sentry applies: `mounts`,
//! `root.readonly`, `linux.maskedPaths`/`readonlyPaths`, and the process's rlimits,
//! additional groups, capabilities and `noNewPrivileges`, and `linux.sysctl` (see
//! [`super::sysctl`]).
//!
//! Mount options, as far as they mean something here: `bind`/`rbind` (a bind is always
//! recursive as far as the host tree under the source is reachable through the Gofer's
//! descriptor), `ro`/`rw`; `nodev` always holds (the Gofer opens no device node) and so
//! does `nosuid` (the Sentry does not honour set-user-ID bits); `noexec` is not enforced
//! yet (logged). Other mount types are left out with a warning.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context};

use super::spec::{Capabilities, Mount as OciMount, Spec};
use crate::container::{CapSets, ContainerConfig, GoferBind, Mount};

/// The container config for the Sentry, and the binds the Gofer serves.
pub fn from_spec(spec: &Spec, bundle: &Path) -> anyhow::Result<(ContainerConfig, Vec<GoferBind>)> {
    let mut config = ContainerConfig {
        root_readonly: spec.root.as_ref().is_some_and(|r| r.readonly),
        ..ContainerConfig::default()
    };
    let mut binds = Vec::new();
    let mut names = HashSet::new();
    for m in &spec.mounts {
        if !m.destination.starts_with('/') {
            bail!(
                "mount {:?}: the destination must be absolute",
                m.destination
            );
        }
        let Some(mount) = convert_mount(m, bundle, &mut binds, &mut names)? else {
            continue;
        };
        config.mounts.push(mount);
    }
    if let Some(linux) = &spec.linux {
        let paths = |key: &str| -> Vec<String> {
            linux[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        config.masked_paths = paths("maskedPaths");
        config.readonly_paths = paths("readonlyPaths");
        config.seccomp = super::seccomp::Profile::from_linux(linux)?;
        let resources = super::cgroups::Resources::from_linux(linux)?;
        config.memory_limit = resources.memory_limit();
        config.pids_limit = resources.pids_limit();
        config.sysctl = super::sysctl::from_linux(linux, spec.hostname.as_deref())?;
    }
    if let Some(process) = &spec.process {
        for r in &process.rlimits {
            let resource = rlimit_number(&r.kind)
                .with_context(|| format!("process.rlimits: unknown type {:?}", r.kind))?;
            config.rlimits.push((resource, r.soft, r.hard));
        }
        config.additional_gids = process.user.additional_gids.clone();
        config.no_new_privileges = process.no_new_privileges;
        config.capabilities = process.capabilities.as_ref().map(cap_sets);
    }
    Ok((config, binds))
}

fn convert_mount(
    m: &OciMount,
    bundle: &Path,
    binds: &mut Vec<GoferBind>,
    names: &mut HashSet<String>,
) -> anyhow::Result<Option<Mount>> {
    let kind = m.kind.as_deref().unwrap_or("");
    let has = |o: &str| m.options.iter().any(|x| x == o);
    let is_bind = kind == "bind" || has("bind") || has("rbind");
    // The last of ro/rw wins, as mount(8) reads options.
    let read_only = m
        .options
        .iter()
        .rev()
        .find(|o| *o == "ro" || *o == "rw")
        .is_some_and(|o| o == "ro");
    let source = m.source.clone().unwrap_or_default();
    if has("noexec") {
        log::info!("mount {}: noexec is not enforced yet", m.destination);
    }
    let mut mount = Mount {
        destination: m.destination.clone(),
        kind: String::new(),
        attach: None,
        read_only,
        mode: None,
        size: None,
        source: source.clone(),
    };
    if is_bind {
        if source.is_empty() {
            bail!("bind mount {}: no source", m.destination);
        }
        // A relative source is relative to the bundle, as runc reads it.
        let host = bundle.join(&source);
        let host = host
            .canonicalize()
            .with_context(|| format!("bind mount {}: source {}", m.destination, host.display()))?;
        let mut attach = m.destination.clone();
        let mut n = 1;
        while !names.insert(attach.clone()) {
            n += 1;
            attach = format!("{}#{n}", m.destination);
        }
        binds.push(GoferBind {
            attach: attach.clone(),
            path: host,
            read_only,
        });
        mount.kind = "bind".to_string();
        mount.attach = Some(attach);
        return Ok(Some(mount));
    }
    match kind {
        "tmpfs" => {
            mount.kind = kind.to_string();
            for o in &m.options {
                if let Some(v) = o.strip_prefix("mode=") {
                    mount.mode = Some(
                        u32::from_str_radix(v, 8)
                            .with_context(|| format!("mount {}: bad {o:?}", m.destination))?,
                    );
                } else if let Some(v) = o.strip_prefix("size=") {
                    mount.size = Some(
                        parse_size(v)
                            .with_context(|| format!("mount {}: bad {o:?}", m.destination))?,
                    );
                }
            }
        }
        "proc" | "sysfs" | "devpts" | "mqueue" | "cgroup" | "cgroup2" => {
            mount.kind = kind.to_string();
        }
        other => {
            log::warn!(
                "mount {} ({other}): this type is not supported, left out",
                m.destination
            );
            return Ok(None);
        }
    }
    Ok(Some(mount))
}

/// `size=` of tmpfs: bytes, with a `k`, `m` or `g` suffix (a `%` of memory is not
/// supported).
fn parse_size(v: &str) -> Option<u64> {
    let (digits, shift) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 10),
        'm' | 'M' => (&v[..v.len() - 1], 20),
        'g' | 'G' => (&v[..v.len() - 1], 30),
        _ => (v, 0),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

const RLIMITS: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NPROC",
    "NOFILE",
    "MEMLOCK",
    "AS",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

fn rlimit_number(name: &str) -> Option<u32> {
    let short = name.strip_prefix("RLIMIT_")?;
    let at = RLIMITS.iter().position(|n| *n == short)?;
    u32::try_from(at).ok()
}

/// Linux's capability names, by number.
pub const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The bits of capability names; unknown names are skipped with a warning, as runc
/// does.
fn cap_mask(names: &[String]) -> u64 {
    let mut mask = 0u64;
    for name in names {
        let short = name
            .strip_prefix("CAP_")
            .unwrap_or(name)
            .to_ascii_uppercase();
        match CAPS.iter().position(|c| *c == short) {
            Some(bit) => mask |= 1 << bit,
            None => log::warn!("process.capabilities: unknown capability {name:?}, ignored"),
        }
    }
    mask
}

fn cap_sets(c: &Capabilities) -> CapSets {
    CapSets {
        bounding: cap_mask(&c.bounding),
        effective: cap_mask(&c.effective),
        inheritable: cap_mask(&c.inheritable),
        permitted: cap_mask(&c.permitted),
        ambient: cap_mask(&c.ambient),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn mounts_paths_and_process() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("hosts"), "").unwrap();
        let s = spec(serde_json::json!({
            "root": {"path": "rootfs", "readonly": true},
            "mounts": [
                {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "rw"]},
                {"destination": "/etc/hosts", "type": "none", "source": dir.path().join("hosts"), "options": ["bind", "ro"]},
                {"destination": "/data", "type": "none", "source": "data", "options": ["bind", "rw", "ro"]},
                {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=64m", "mode=755"]},
                {"destination": "/weird", "type": "overlay", "source": "x"}
            ],
            "linux": {"maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
            "process": {
                "args": ["sh"],
                "user": {"uid": 0, "gid": 0, "additionalGids": [10, 20]},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1000}],
                "noNewPrivileges": true,
                "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NOPE"], "effective": ["CAP_KILL"]}
            }
        }));
        let (c, binds) = from_spec(&s, dir.path()).unwrap();
        assert!(c.root_readonly);
        assert_eq!(binds.len(), 3);
        assert_eq!(binds[0].attach, "/data");
        assert!(!binds[0].read_only);
        assert_eq!(binds[1].attach, "/etc/hosts");
        assert!(binds[1].read_only);
        assert_eq!(
            binds[2].attach, "/data#2",
            "a second mount on one place gets its own name"
        );
        assert!(binds[2].read_only, "the last of ro/rw wins");
        assert_eq!(c.mounts.len(), 4, "the overlay mount is left out");
        assert_eq!(c.mounts[3].kind, "tmpfs");
        assert_eq!(c.mounts[3].size, Some(64 << 20));
        assert_eq!(c.mounts[3].mode, Some(0o755));
        assert_eq!(c.masked_paths, ["/proc/kcore"]);
        assert_eq!(c.readonly_paths, ["/proc/sys"]);
        assert_eq!(c.rlimits, [(7, 1000, 2048)]);
        assert_eq!(c.additional_gids, [10, 20]);
        assert!(c.no_new_privileges);
        let caps = c.capabilities.unwrap();
        assert_eq!(caps.bounding, 1 | 1 << 5);
        assert_eq!(caps.effective, 1 << 5);
    }

    #[test]
    fn bad_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = spec(serde_json::json!({
            "mounts": [{"destination": "/d", "type": "bind", "source": "/nonexistent/x"}]
        }));
        assert!(from_spec(&missing, dir.path()).is_err());
        let relative = spec(serde_json::json!({"mounts": [{"destination": "d", "type": "tmpfs"}]}));
        assert!(from_spec(&relative, dir.path()).is_err());
        let rlimit = spec(serde_json::json!({
            "process": {"rlimits": [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]}
        }));
        assert!(from_spec(&rlimit, dir.path()).is_err());
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("50%"), None);
    }
}
