//! `linux.sysctl`: kernel parameters for the container.
//!
//! The sandbox's kernel is the Sentry, so a sysctl is applied there, never on the host:
//! those the Sentry implements (see [`APPLIED`]) are set at boot, and a process reads
//! them back under `/proc/sys`. As runc does, a sysctl that is not namespaced on Linux
//! (`vm.*`, `kernel.panic`, ...) is refused: it would be the host's setting. A namespaced
//! one the Sentry does not implement (`net.*`, the IPC ones, `fs.mqueue.*`) is left
//! out with a warning naming it: Docker sets `net.ipv4.ip_unprivileged_port_start` and
//! `net.ipv4.ping_group_range` on every container, which must not fail.

use std::collections::BTreeMap;

use anyhow::bail;

/// The sysctls the Sentry implements, as files of its `/proc/sys`.
pub const APPLIED: [&str; 2] = ["kernel.domainname", "kernel.hostname"];

/// The IPC namespace's sysctls besides `fs.mqueue.*` (runc's list).
const IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The longest host or domain name (`__NEW_UTS_LEN`).
const UTS_NAME_MAX: usize = 64;

/// The sysctls of `linux` to apply in the Sentry; refuses what cannot be honoured, warns
/// of what is left out. `hostname` is the spec's `hostname`, which `kernel.hostname` may
/// not contradict.
pub fn from_linux(
    linux: &serde_json::Value,
    hostname: Option<&str>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut applied = BTreeMap::new();
    let Some(sysctl) = linux.get("sysctl").filter(|v| !v.is_null()) else {
        return Ok(applied);
    };
    let Some(sysctl) = sysctl.as_object() else {
        bail!("linux.sysctl: not an object of names and values");
    };
    for (name, value) in sysctl {
        let Some(value) = value.as_str() else {
            bail!("linux.sysctl: the value of {name:?} is not a string");
        };
        // `kernel/hostname` is the same parameter as `kernel.hostname`.
        let key = name.replace('/', ".");
        if APPLIED.contains(&key.as_str()) {
            if value.len() > UTS_NAME_MAX {
                bail!("sysctl {name:?}: {value:?} is longer than {UTS_NAME_MAX} bytes");
            }
            if key == "kernel.hostname" && hostname.is_some_and(|h| h != value) {
                bail!(
                    "sysctl {name:?} = {value:?} conflicts with the OCI \"hostname\" field \
                     ({:?})",
                    hostname.unwrap_or_default()
                );
            }
            applied.insert(key, value.to_string());
        } else if IPC.contains(&key.as_str())
            || key.starts_with("fs.mqueue.")
            || key.starts_with("net.")
        {
            log::warn!("sysctl {name} not supported by the Sentry, ignored");
        } else {
            bail!(
                "sysctl {name:?} is not in a separate kernel namespace: a container may not \
                 set it"
            );
        }
    }
    Ok(applied)
}

/// Sets sysctl `name` (one of [`APPLIED`]) to `value` in the Sentry's `kernel`.
pub fn apply(kernel: &sentry::kernel::Kernel, name: &str, value: &str) -> anyhow::Result<()> {
    match name {
        "kernel.hostname" => kernel.uts.set_hostname(value.as_bytes()),
        "kernel.domainname" => kernel.uts.set_domainname(value.as_bytes()),
        _ => bail!("sysctl {name:?}: not one the Sentry implements"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(sysctl: serde_json::Value) -> serde_json::Value {
        serde_json::json!({ "sysctl": sysctl })
    }

    #[test]
    fn applied_ignored_and_refused() {
        // What Docker sets by default, and a UTS one.
        let l = linux(serde_json::json!({
            "net.ipv4.ip_unprivileged_port_start": "0",
            "net.ipv4.ping_group_range": "0 2147483647",
            "kernel.domainname": "example.org",
            "kernel/hostname": "box",
            "kernel.shmmax": "1000000",
            "fs.mqueue.msg_max": "20",
        }));
        let applied = from_linux(&l, None).unwrap();
        assert_eq!(
            applied.into_iter().collect::<Vec<_>>(),
            [
                ("kernel.domainname".to_string(), "example.org".to_string()),
                ("kernel.hostname".to_string(), "box".to_string()),
            ]
        );
        assert!(from_linux(&l, Some("box")).is_ok());
        let e = from_linux(&l, Some("other")).unwrap_err();
        assert!(format!("{e:#}").contains("conflicts with the OCI"), "{e:#}");
        for host in [
            "vm.swappiness",
            "kernel.panic",
            "fs.file-max",
            "kernel.pid_max",
        ] {
            let e = from_linux(&linux(serde_json::json!({ host: "1" })), None).unwrap_err();
            assert!(
                format!("{e:#}").contains("not in a separate kernel namespace"),
                "{host}: {e:#}"
            );
        }
        let long = "x".repeat(65);
        let l = linux(serde_json::json!({ "kernel.domainname": long }));
        assert!(from_linux(&l, None).is_err());
        assert!(from_linux(&linux(serde_json::json!({ "kernel.domainname": 1 })), None).is_err());
        assert!(from_linux(&serde_json::json!({}), None).unwrap().is_empty());
        assert!(from_linux(&serde_json::json!({ "sysctl": null }), None)
            .unwrap()
            .is_empty());
    }
}
