//! Comparing a run under Bulwark with the native run, against the expected failures.

use crate::expected::{reason_for, Entry, Expected};
use crate::output::{Outcome, Run, Termination};

/// Whether a reason was written by [`reason_for`] (and may be replaced when regenerating),
/// rather than by a person.
fn is_generated(reason: &str) -> bool {
    ["not implemented yet", "observed:", "the program died"]
        .iter()
        .any(|p| reason.starts_with(p))
}

/// The pseudo-case that checks how the program ended.
pub const EXIT_CASE: &str = "exit_status";

/// The verdict on one case on one platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Failed, as the expected-failures file says it does.
    KnownFailure,
    /// Failed, and not listed: a regression or a gap nobody has listed.
    Unexpected,
    /// Listed as failing, but passed: the entry must go.
    NowPasses,
    /// Listed as flaky: passed or failed, it is not judged.
    Flaky,
}

/// One case's result on one platform.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub program: String,
    pub case: String,
    pub platform: String,
    pub verdict: Verdict,
    /// What was observed when the case failed (empty when it passed).
    pub observed: String,
}

/// Compares `run` (under Bulwark on `platform`) with `native`: every case that passed
/// natively must pass, and the program must end as it did natively (exit 0, or 1 when
/// some case failed).
pub fn compare(
    program: &str,
    native: &Run,
    platform: &str,
    run: &Run,
    expected: &Expected,
) -> Vec<CaseResult> {
    let mut results = Vec::new();
    let mut all_passed = true;
    let mut push = |case: &str, observed: Option<String>| {
        let entry = expected.find(program, case, platform);
        let verdict = match (&observed, entry) {
            (_, Some(e)) if e.is_flaky() => Verdict::Flaky,
            (None, None) => Verdict::Pass,
            (None, Some(_)) => Verdict::NowPasses,
            (Some(_), Some(_)) => Verdict::KnownFailure,
            (Some(_), None) => Verdict::Unexpected,
        };
        results.push(CaseResult {
            program: program.to_string(),
            case: case.to_string(),
            platform: platform.to_string(),
            verdict,
            observed: observed.unwrap_or_default(),
        });
    };
    for native_case in native.cases.iter().filter(|c| c.outcome == Outcome::Ok) {
        let observed = match run.case(&native_case.name).map(|c| &c.outcome) {
            Some(Outcome::Ok) => None,
            Some(Outcome::Fail(detail)) => Some(detail.clone()),
            Some(Outcome::Skip(reason)) => Some(format!("skipped: {reason}")),
            None => Some(format!("not reached ({})", run.termination)),
        };
        all_passed &= observed.is_none();
        push(&native_case.name, observed);
    }
    let want = Termination::Exited(if all_passed { 0 } else { 1 });
    let exit_observed = (run.termination != want).then(|| {
        let last = run.stderr_tail.lines().last().unwrap_or("").trim();
        if last.is_empty() {
            format!("not reached ({})", run.termination)
        } else {
            format!("not reached ({}; stderr: {last})", run.termination)
        }
    });
    push(EXIT_CASE, exit_observed);
    results
}

/// The entries of `expected` for `program` on `platform` that name no case the native
/// run passed: a typo, or a case that was renamed or removed.
pub fn stale_entries<'a>(
    expected: &'a Expected,
    program: &str,
    native: &Run,
    platform: &str,
) -> Vec<&'a Entry> {
    expected
        .entries
        .iter()
        .filter(|e| e.program == program && e.applies_to(platform))
        .filter(|e| {
            e.case != EXIT_CASE
                && e.case != "*"
                && native
                    .case(&e.case)
                    .is_none_or(|c| c.outcome != Outcome::Ok)
        })
        .collect()
}

/// The expected-failures file as this run observed it. `platforms` are the platforms that
/// ran; entries of `old` that only name other platforms are kept, and entries for cases
/// this host skipped natively are kept too (this run cannot judge them).
pub fn regenerate(old: &Expected, results: &[CaseResult], platforms: &[String]) -> Expected {
    let mut entries: Vec<Entry> = Vec::new();
    // (program, case) in first-seen order, with the failing platforms and observations.
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in results {
        if !keys.contains(&(r.program.as_str(), r.case.as_str())) {
            keys.push((&r.program, &r.case));
        }
    }
    for (program, case) in keys {
        let failing: Vec<&CaseResult> = results
            .iter()
            .filter(|r| r.program == program && r.case == case)
            .filter(|r| matches!(r.verdict, Verdict::KnownFailure | Verdict::Unexpected))
            .collect();
        if failing.is_empty() {
            continue;
        }
        let reason = |r: &CaseResult| {
            old.find(program, case, &r.platform)
                .map(|e| e.reason.clone())
                .filter(|reason| !is_generated(reason))
                .unwrap_or_else(|| reason_for(&r.observed))
        };
        if failing.len() == platforms.len() {
            entries.push(Entry {
                program: program.to_string(),
                case: case.to_string(),
                platforms: Vec::new(),
                reason: reason(failing[0]),
            });
        } else {
            for r in failing {
                entries.push(Entry {
                    program: program.to_string(),
                    case: case.to_string(),
                    platforms: vec![r.platform.clone()],
                    reason: reason(r),
                });
            }
        }
    }
    for e in &old.entries {
        let judged = results
            .iter()
            .any(|r| r.program == e.program && r.case == e.case);
        if !judged || e.is_flaky() {
            entries.push(e.clone());
            continue;
        }
        let others: Vec<String> = e
            .platforms
            .iter()
            .filter(|p| !platforms.contains(p))
            .cloned()
            .collect();
        if !others.is_empty() {
            entries.push(Entry {
                platforms: others,
                ..e.clone()
            });
        }
    }
    let position = |e: &Entry| {
        results
            .iter()
            .position(|r| r.program == e.program && r.case == e.case)
            .unwrap_or(usize::MAX)
    };
    entries.sort_by_cached_key(|e| (e.program.clone(), position(e), e.platforms.clone()));
    Expected { entries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::parse;

    fn run(out: &str, t: Termination) -> Run {
        Run {
            cases: parse(out),
            termination: t,
            stderr_tail: String::new(),
            elapsed: Default::default(),
        }
    }

    fn verdicts(results: &[CaseResult]) -> Vec<(&str, Verdict)> {
        results
            .iter()
            .map(|r| (r.case.as_str(), r.verdict.clone()))
            .collect()
    }

    #[test]
    fn all_passing() {
        let native = run("ok a\nok b\nskip c: r\n", Termination::Exited(0));
        let r = compare("p", &native, "kvm", &native, &Expected::default());
        assert_eq!(
            verdicts(&r),
            vec![
                ("a", Verdict::Pass),
                ("b", Verdict::Pass),
                (EXIT_CASE, Verdict::Pass)
            ]
        );
    }

    #[test]
    fn failures_missing_cases_and_listed_ones() {
        let native = run("ok a\nok b\nok c\n", Termination::Exited(0));
        let bulwark = run(
            "ok a\nFAIL b: x (errno ENOSYS)\n",
            Termination::Signaled(11),
        );
        let expected = Expected::parse("p a # r\np b # r\np c @systrap # r\n").unwrap();
        let r = compare("p", &native, "kvm", &bulwark, &expected);
        assert_eq!(
            verdicts(&r),
            vec![
                ("a", Verdict::NowPasses),
                ("b", Verdict::KnownFailure),
                ("c", Verdict::Unexpected),
                (EXIT_CASE, Verdict::Unexpected),
            ]
        );
        assert!(r[2].observed.contains("not reached (killed by signal 11)"));
    }

    #[test]
    fn exit_status_one_is_right_when_a_case_failed() {
        let native = run("ok a\n", Termination::Exited(0));
        let bulwark = run("FAIL a: e\n", Termination::Exited(1));
        let expected = Expected::parse("p a # r\n").unwrap();
        let r = compare("p", &native, "kvm", &bulwark, &expected);
        assert_eq!(r[1].verdict, Verdict::Pass);
    }

    #[test]
    fn flaky_entries_are_not_judged_and_survive_regeneration() {
        let native = run("ok a\nok b\n", Termination::Exited(0));
        let crashed = run("ok a\n", Termination::Signaled(11));
        let expected = Expected::parse("p * @kvm # flaky: crashes now and then\n").unwrap();
        for bulwark in [&native, &crashed] {
            let r = compare("p", &native, "kvm", bulwark, &expected);
            assert!(r.iter().all(|r| r.verdict == Verdict::Flaky), "{r:?}");
        }
        let r = compare("p", &native, "kvm", &crashed, &expected);
        let new = regenerate(&expected, &r, &["kvm".to_string()]);
        assert_eq!(new.entries, expected.entries);
        assert!(stale_entries(&expected, "p", &native, "kvm").is_empty());
    }

    #[test]
    fn stale_entries_name_unknown_cases() {
        let native = run("ok a\nskip s: r\n", Termination::Exited(0));
        let expected = Expected::parse("p a # r\np gone # r\np s # r\np x @systrap # r\n").unwrap();
        let stale: Vec<&str> = stale_entries(&expected, "p", &native, "kvm")
            .iter()
            .map(|e| e.case.as_str())
            .collect();
        assert_eq!(stale, vec!["gone", "s"]);
    }

    #[test]
    fn regenerate_qualifies_platform_specific_failures() {
        let native = run("ok a\nok b\nok c\n", Termination::Exited(0));
        let on_kvm = run(
            "FAIL a: (errno ENOSYS)\nFAIL b: wrong\nok c\n",
            Termination::Exited(1),
        );
        let on_systrap = run(
            "FAIL a: (errno ENOSYS)\nok b\nok c\n",
            Termination::Exited(1),
        );
        let old = Expected::parse("p c # fixed now\nq z @other # kept\n").unwrap();
        let mut results = compare("p", &native, "kvm", &on_kvm, &old);
        results.extend(compare("p", &native, "systrap", &on_systrap, &old));
        let platforms = vec!["kvm".to_string(), "systrap".to_string()];
        let new = regenerate(&old, &results, &platforms);
        let text = new.render();
        assert!(
            text.contains("p a  # not implemented yet (ENOSYS)"),
            "{text}"
        );
        assert!(text.contains("p b @kvm  # observed: wrong"), "{text}");
        assert!(!text.contains("exit_status"), "{text}");
        assert!(!text.contains("p c "), "{text}");
        assert!(text.contains("q z @other  # kept"), "{text}");
        // The regenerated file makes the same runs pass.
        let again: Vec<CaseResult> = compare("p", &native, "kvm", &on_kvm, &new)
            .into_iter()
            .chain(compare("p", &native, "systrap", &on_systrap, &new))
            .collect();
        assert!(again
            .iter()
            .all(|r| matches!(r.verdict, Verdict::Pass | Verdict::KnownFailure)));
    }
}
