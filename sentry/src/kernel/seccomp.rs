//! A seccomp policy the Sentry applies to every application syscall: the OCI spec's
//! `linux.seccomp` (Docker's default profile, for one), enforced here as the host kernel
//! would enforce it for runc. The application's syscalls never reach the host kernel,
//! so the Sentry is where the profile must act.
//!
//! The profile is compiled into a table indexed by syscall number: a syscall without
//! argument rules costs one lookup.

use crate::syscalls::names::NAMES;

/// What a rule does to a syscall (`SCMP_ACT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Allow,
    /// Allowed, and logged.
    Log,
    /// Refused with this errno.
    Errno(i32),
    /// `SIGSYS` (`SYS_SECCOMP`) to the thread; the syscall does not run.
    Trap,
    /// The thread ends as if killed by `SIGSYS`.
    KillThread,
    /// The process ends as if killed by `SIGSYS`.
    KillProcess,
    /// For a tracer, which the sandbox does not have: `ENOSYS`, as Linux answers.
    Trace,
}

/// A comparison of one argument (`SCMP_CMP_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & value) == value_two`.
    MaskedEq,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cond {
    pub index: usize,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

impl Cond {
    fn holds(&self, args: &[u64; 6]) -> bool {
        let a = args[self.index];
        match self.op {
            Op::Ne => a != self.value,
            Op::Lt => a < self.value,
            Op::Le => a <= self.value,
            Op::Eq => a == self.value,
            Op::Ge => a >= self.value,
            Op::Gt => a > self.value,
            Op::MaskedEq => a & self.value == self.value_two,
        }
    }
}

/// A rule for one syscall: its action when every condition holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub conds: Vec<Cond>,
    pub action: Action,
}

/// A compiled policy.
#[derive(Clone, Debug)]
pub struct Policy {
    default: Action,
    /// Rules by syscall number, in the profile's order.
    rules: Vec<Vec<Rule>>,
}

impl Policy {
    /// A policy that takes `default` for every syscall without a rule.
    pub fn new(default: Action) -> Self {
        Self {
            default,
            rules: vec![Vec::new(); NAMES.len()],
        }
    }

    /// Adds a rule for the syscall called `name`; `false` if the name is not an x86-64
    /// syscall (libseccomp skips those as well).
    pub fn add(&mut self, name: &str, rule: Rule) -> bool {
        match NAMES.iter().position(|n| *n == name) {
            Some(nr) => {
                self.rules[nr].push(rule);
                true
            }
            None => false,
        }
    }

    /// The action for syscall `nr` with `args`: the first of its rules whose conditions
    /// all hold, else the default.
    pub fn check(&self, nr: u64, args: &[u64; 6]) -> Action {
        let rules = usize::try_from(nr).ok().and_then(|n| self.rules.get(n));
        rules
            .and_then(|rules| {
                rules
                    .iter()
                    .find(|r| r.conds.iter().all(|c| c.holds(args)))
                    .map(|r| r.action)
            })
            .unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_conditions_and_default() {
        let mut p = Policy::new(Action::Errno(1));
        assert!(p.add(
            "getpid",
            Rule {
                conds: vec![],
                action: Action::Allow
            }
        ));
        assert!(p.add(
            "personality",
            Rule {
                conds: vec![Cond {
                    index: 0,
                    op: Op::Eq,
                    value: 8,
                    value_two: 0
                }],
                action: Action::Allow
            }
        ));
        assert!(p.add(
            "clone",
            Rule {
                conds: vec![Cond {
                    index: 0,
                    op: Op::MaskedEq,
                    value: 0x7e02_0000,
                    value_two: 0
                }],
                action: Action::Allow
            }
        ));
        assert!(!p.add(
            "no_such_call",
            Rule {
                conds: vec![],
                action: Action::Allow
            }
        ));
        let none = [0u64; 6];
        assert_eq!(p.check(39, &none), Action::Allow, "getpid");
        assert_eq!(p.check(135, &[8, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(
            p.check(135, &[0xffff_ffff, 0, 0, 0, 0, 0]),
            Action::Errno(1)
        );
        assert_eq!(
            p.check(56, &[0x11, 0, 0, 0, 0, 0]),
            Action::Allow,
            "plain fork"
        );
        assert_eq!(
            p.check(56, &[0x1000_0000, 0, 0, 0, 0, 0]),
            Action::Errno(1),
            "CLONE_NEWUSER"
        );
        assert_eq!(p.check(9999, &none), Action::Errno(1));
    }
}
