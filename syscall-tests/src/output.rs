//! A program's run: its cases, parsed from stdout, and how it ended.

use std::fmt;

/// What one case printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail(String),
    Skip(String),
}

/// One `ok`/`FAIL`/`skip` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub outcome: Outcome,
}

/// How a program's process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(i32),
    TimedOut(u64),
    SpawnFailed(String),
}

impl fmt::Display for Termination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Termination::Exited(c) => write!(f, "exit status {c}"),
            Termination::Signaled(s) => write!(f, "killed by signal {s}"),
            Termination::TimedOut(secs) => write!(f, "timed out after {secs} s"),
            Termination::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

/// A finished run of one program.
#[derive(Clone, Debug)]
pub struct Run {
    pub cases: Vec<Case>,
    pub termination: Termination,
    /// The last lines of stderr, for diagnosing a run that ended early.
    pub stderr_tail: String,
    pub elapsed: std::time::Duration,
}

impl Run {
    pub fn case(&self, name: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.name == name)
    }

    pub fn passed(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.outcome == Outcome::Ok)
            .count()
    }

    pub fn skipped(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Skip(_)))
            .count()
    }
}

/// Parses a program's stdout. Lines that are not case lines are ignored (a program may
/// print comments starting with `#`).
pub fn parse(stdout: &str) -> Vec<Case> {
    stdout
        .lines()
        .filter_map(|line| {
            if let Some(name) = line.strip_prefix("ok ") {
                return Some(Case {
                    name: name.trim().to_string(),
                    outcome: Outcome::Ok,
                });
            }
            let (kind, rest) = if let Some(rest) = line.strip_prefix("FAIL ") {
                ("FAIL", rest)
            } else if let Some(rest) = line.strip_prefix("skip ") {
                ("skip", rest)
            } else {
                return None;
            };
            let (name, detail) = rest.split_once(": ").unwrap_or((rest, ""));
            let detail = detail.trim().to_string();
            let outcome = if kind == "FAIL" {
                Outcome::Fail(detail)
            } else {
                Outcome::Skip(detail)
            };
            Some(Case {
                name: name.trim().to_string(),
                outcome,
            })
        })
        .collect()
}

/// What is wrong with a native run, if anything: every case must pass or be skipped,
/// names must be unique, and the program must exit 0.
pub fn native_problems(run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    if run.cases.is_empty() {
        problems.push(format!("no cases printed ({})", run.termination));
    }
    let mut seen = std::collections::HashSet::new();
    for case in &run.cases {
        if !seen.insert(case.name.as_str()) {
            problems.push(format!("case {} printed twice", case.name));
        }
        if let Outcome::Fail(detail) = &case.outcome {
            problems.push(format!("{}: {detail}", case.name));
        }
    }
    if run.termination != Termination::Exited(0) {
        problems.push(format!("ended with {}", run.termination));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds_and_ignores_the_rest() {
        let cases = parse("ok a\nFAIL b: x = 1: detail\n# comment\nskip c: no xattrs\nnoise\n");
        assert_eq!(
            cases,
            vec![
                Case {
                    name: "a".into(),
                    outcome: Outcome::Ok
                },
                Case {
                    name: "b".into(),
                    outcome: Outcome::Fail("x = 1: detail".into())
                },
                Case {
                    name: "c".into(),
                    outcome: Outcome::Skip("no xattrs".into())
                },
            ]
        );
    }

    #[test]
    fn native_run_must_pass_and_exit_zero() {
        let run = |out: &str, t| Run {
            cases: parse(out),
            termination: t,
            stderr_tail: String::new(),
            elapsed: Default::default(),
        };
        assert!(native_problems(&run("ok a\nskip b: r\n", Termination::Exited(0))).is_empty());
        assert_eq!(
            native_problems(&run("ok a\nFAIL b: e\n", Termination::Exited(1))).len(),
            2
        );
        assert_eq!(
            native_problems(&run("ok a\nok a\n", Termination::Exited(0))).len(),
            1
        );
        assert_eq!(
            native_problems(&run("", Termination::Signaled(11))).len(),
            2
        );
    }
}
