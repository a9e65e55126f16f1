//! The OCI spec's `linux.seccomp`: parsed at `create` (so a profile Bulwark cannot
//! enforce fails there, with the reason), carried to `boot` in the container config, and
//! compiled into the Sentry's policy (`sentry::kernel::seccomp`).

use anyhow::{bail, Context};
use sentry::kernel::seccomp::{Action, Cond, Op, Policy, Rule};
use serde::{Deserialize, Serialize};

/// `EPERM`: libseccomp's errno when a profile names none.
const EPERM: i32 = 1;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Profile {
    pub default_action: String,
    pub default_errno_ret: Option<i32>,
    pub architectures: Vec<String>,
    pub flags: Vec<String>,
    pub syscalls: Vec<SyscallRule>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct SyscallRule {
    pub names: Vec<String>,
    pub action: String,
    pub errno_ret: Option<i32>,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct Arg {
    pub index: usize,
    pub value: u64,
    pub value_two: u64,
    pub op: String,
}

fn action(name: &str, errno: Option<i32>, default_errno: Option<i32>) -> anyhow::Result<Action> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.or(default_errno).unwrap_or(EPERM)),
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRACE" => Action::Trace,
        "SCMP_ACT_NOTIFY" => {
            bail!(
                "linux.seccomp: SCMP_ACT_NOTIFY is not supported (no seccomp agent in the sandbox)"
            )
        }
        other => bail!("linux.seccomp: unknown action {other:?}"),
    })
}

fn op(name: &str) -> anyhow::Result<Op> {
    Ok(match name {
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => bail!("linux.seccomp: unknown comparison {other:?}"),
    })
}

impl Profile {
    /// The profile of a spec's `linux` object, if it has one.
    pub fn from_linux(linux: &serde_json::Value) -> anyhow::Result<Option<Self>> {
        match linux.get("seccomp") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => {
                let p: Self = serde_json::from_value(v.clone()).context("linux.seccomp")?;
                // Checked now, so that `create` fails rather than the sandbox.
                p.compile()?;
                Ok(Some(p))
            }
        }
    }

    /// The Sentry's policy. Syscall names x86-64 does not have are skipped, as
    /// libseccomp skips them; a profile for other architectures only still applies its
    /// default to x86-64 syscalls.
    pub fn compile(&self) -> anyhow::Result<Policy> {
        let mut policy = Policy::new(action(&self.default_action, None, self.default_errno_ret)?);
        for rule in &self.syscalls {
            let conds = rule
                .args
                .iter()
                .map(|a| {
                    if a.index > 5 {
                        bail!("linux.seccomp: argument index {} out of range", a.index);
                    }
                    Ok(Cond {
                        index: a.index,
                        op: op(&a.op)?,
                        value: a.value,
                        value_two: a.value_two,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let act = action(&rule.action, rule.errno_ret, self.default_errno_ret)?;
            for name in &rule.names {
                if !policy.add(
                    name,
                    Rule {
                        conds: conds.clone(),
                        action: act,
                    },
                ) {
                    log::debug!("linux.seccomp: no x86-64 syscall {name:?}, skipped");
                }
            }
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_like_profile_compiles_and_decides() {
        let linux = serde_json::json!({"seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["read", "write", "getpid", "not_a_syscall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
            ]
        }});
        let p = Profile::from_linux(&linux)
            .unwrap()
            .unwrap()
            .compile()
            .unwrap();
        assert_eq!(p.check(39, &[0; 6]), Action::Allow);
        assert_eq!(p.check(135, &[0; 6]), Action::Allow);
        assert_eq!(p.check(135, &[1, 0, 0, 0, 0, 0]), Action::Errno(1));
        assert_eq!(p.check(83, &[0; 6]), Action::Errno(13));
        assert_eq!(p.check(57, &[0; 6]), Action::Errno(1), "fork: the default");
    }

    #[test]
    fn what_cannot_be_enforced_is_refused() {
        for bad in [
            serde_json::json!({"seccomp": {"defaultAction": "SCMP_ACT_NOTIFY"}}),
            serde_json::json!({"seccomp": {"defaultAction": "SCMP_ACT_WHATEVER"}}),
            serde_json::json!({"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO",
                 "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}}),
        ] {
            assert!(Profile::from_linux(&bad).is_err(), "{bad}");
        }
        assert!(Profile::from_linux(&serde_json::json!({}))
            .unwrap()
            .is_none());
    }
}
