//! The syscall compatibility suite: every program natively, under `bulwark do` on every
//! platform the host has, and under gVisor's `runsc` where it is installed.
//!
//! Environment:
//! - `BULWARK`: the bulwark binary (default: built with `cargo build -p runsc-compat` in
//!   this test's profile, and taken from the same target directory).
//! - `BULWARK_UPDATE_EXPECTED=1`: rewrite `expected-failures.txt` from this run's failures
//!   instead of failing on them.
//! - `BULWARK_SUITE_FILTER=a,b`: run only programs whose name contains one of these (files
//!   are then left alone).
//! - `BULWARK_SUITE_JOBS`: programs run at once (default 2).
//! - `BULWARK_SUITE_PLATFORMS=kvm,systrap`: the platforms to use (default: all available).
//! - `CI=true`: a missing /dev/kvm and a stale docs/compatibility.md fail the run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use syscall_tests::compare::{compare, regenerate, stale_entries, CaseResult, Verdict, EXIT_CASE};
use syscall_tests::exec;
use syscall_tests::expected::Expected;
use syscall_tests::output::{native_problems, Run, Termination};
use syscall_tests::program::{discover, Program};
use syscall_tests::render::{compatibility, syscalls_section, Report, Row};

const NATIVE_LIMIT: Duration = Duration::from_secs(30);
const BULWARK_LIMIT: Duration = Duration::from_secs(30);
const RUNSC_LIMIT: Duration = Duration::from_secs(30);
/// Every platform Bulwark has, in the order of the table's columns.
const PLATFORMS: [&str; 2] = ["kvm", "systrap"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1" || v == "true")
}

/// Runs `command(program)` for every program, `jobs` at a time; results in program order.
fn run_all(
    programs: &[Program],
    jobs: usize,
    limit: Duration,
    command: &(dyn Fn(&Program) -> Command + Sync),
) -> Vec<Run> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Run>>> = Mutex::new(vec![None; programs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = {
                    let mut n = next.lock().expect("queue lock");
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(program) = programs.get(i) else {
                    break;
                };
                let run = exec::run(command(program), limit);
                results.lock().expect("results lock")[i] = Some(run);
            });
        }
    });
    results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .map(|r| r.expect("every program ran"))
        .collect()
}

/// The bulwark binary: `$BULWARK`, or built in this test's profile (where cargo says it
/// put it: the layout depends on the configured target).
fn bulwark() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("BULWARK") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("finding the test binary: {e}"))?;
    // <target dir>[/<triple>]/<profile>/deps/suite-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary path {}", exe.display()))?;
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = Command::new(cargo);
    build.args([
        "build",
        "-p",
        "runsc-compat",
        "--bin",
        "bulwark",
        "--message-format=json",
    ]);
    if release {
        build.arg("--release");
    }
    let out = build
        .stderr(std::process::Stdio::inherit())
        .current_dir(manifest_dir().join(".."))
        .output()
        .map_err(|e| format!("running cargo build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p runsc-compat failed: {}",
            out.status
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\""))
        .find_map(|l| {
            let (_, rest) = l.split_once("\"executable\":\"")?;
            Some(PathBuf::from(rest.split_once('"')?.0))
        })
        .ok_or_else(|| "cargo build named no bulwark executable".to_string())
}

/// The platforms to run on; a missing KVM is a failure in CI and a skip elsewhere.
fn platforms(failures: &mut Vec<String>) -> Vec<String> {
    let available = platform::available();
    let wanted: Option<Vec<String>> = std::env::var("BULWARK_SUITE_PLATFORMS").ok().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    let mut chosen = Vec::new();
    for p in PLATFORMS {
        if wanted.as_ref().is_some_and(|w| !w.iter().any(|x| x == p)) {
            println!("platform {p}: skipped (not in BULWARK_SUITE_PLATFORMS)");
        } else if available.contains(&p) {
            chosen.push(p.to_string());
        } else if p == "kvm" && env_flag("CI") {
            failures.push("CI=true but KVM is not available (/dev/kvm missing or unusable)".into());
        } else {
            println!("platform {p}: skipped (not available on this host)");
        }
    }
    chosen
}

fn runsc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("runsc"))
        .find(|p| p.is_file())
}

#[test]
fn syscall_suite() {
    let started = Instant::now();
    syscall_tests::exec::close_inherited_on_exec();
    let dir = manifest_dir();
    let mut programs = discover(
        &dir.join("programs"),
        Path::new(env!("SYSCALL_TESTS_PROGRAMS")),
    )
    .expect("reading syscall-tests/programs");
    let filter: Option<Vec<String>> = std::env::var("BULWARK_SUITE_FILTER")
        .ok()
        .map(|s| s.split(',').map(str::to_string).collect());
    if let Some(f) = &filter {
        programs.retain(|p| f.iter().any(|x| p.name.contains(x.as_str())));
    }
    let jobs = std::env::var("BULWARK_SUITE_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(2);
    let update = env_flag("BULWARK_UPDATE_EXPECTED");
    let expected_path = dir.join("expected-failures.txt");
    let expected_text = std::fs::read_to_string(&expected_path).unwrap_or_default();
    let expected = Expected::parse(&expected_text)
        .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
    let mut failures: Vec<String> = Vec::new();

    // Natively: every case must pass (the tests are right before they judge Bulwark).
    let t = Instant::now();
    let native = run_all(&programs, jobs, NATIVE_LIMIT, &|p| {
        let mut c = Command::new(&p.exe);
        c.current_dir("/tmp");
        c
    });
    let native_time = t.elapsed();
    for (p, run) in programs.iter().zip(&native) {
        for problem in native_problems(run) {
            failures.push(format!("{} fails natively: {problem}", p.name));
        }
    }

    // Under Bulwark, on each platform.
    let platforms = platforms(&mut failures);
    let bulwark = match bulwark() {
        Ok(b) => Some(b),
        Err(e) => {
            failures.push(e);
            None
        }
    };
    let mut results: Vec<CaseResult> = Vec::new();
    let mut per_platform: Vec<(String, Vec<Run>, Duration)> = Vec::new();
    let mut retried: Vec<String> = Vec::new();
    if let Some(bulwark) = &bulwark {
        for platform in &platforms {
            let t = Instant::now();
            let command = |p: &Program| {
                let mut c = Command::new(bulwark);
                c.arg(format!("--platform={platform}"))
                    .arg("do")
                    .arg("--")
                    .arg(&p.exe);
                c.current_dir("/tmp");
                c
            };
            let mut runs = run_all(&programs, jobs, BULWARK_LIMIT, &command);
            for (i, (p, n)) in programs.iter().zip(&native).enumerate() {
                let judge = |r: &Run| compare(&p.name, n, platform, r, &expected);
                let mismatched = |res: &[CaseResult]| {
                    res.iter()
                        .any(|r| matches!(r.verdict, Verdict::Unexpected | Verdict::NowPasses))
                };
                let crashed = !matches!(runs[i].termination, Termination::Exited(0 | 1));
                let mut res = judge(&runs[i]);
                // One retry, so that a rare crash (a platform bug, reported) neither fails
                // the run nor ends up in a regenerated file; it is printed either way.
                if (!update && mismatched(&res)) || (update && crashed) {
                    let again = exec::run(command(p), BULWARK_LIMIT);
                    let res_again = judge(&again);
                    let settled = !mismatched(&res_again);
                    retried.push(format!(
                        "{} on {platform}: first run {} ({} of {} cases), retry {} ({} cases){}",
                        p.name,
                        runs[i].termination,
                        runs[i].passed(),
                        n.passed(),
                        again.termination,
                        again.passed(),
                        if settled {
                            ""
                        } else {
                            ": differs from expected both times"
                        }
                    ));
                    if update || settled {
                        runs[i] = again;
                        res = res_again;
                    }
                }
                results.extend(res);
                for e in stale_entries(&expected, &p.name, n, platform) {
                    if n.case(&e.case).is_none() {
                        failures.push(format!(
                            "expected-failures.txt names {} {}, which {} does not have",
                            e.program, e.case, e.program
                        ));
                    }
                }
            }
            for (p, r) in programs.iter().zip(&runs) {
                if r.elapsed > Duration::from_secs(5) {
                    println!(
                        "slow under {platform}: {} took {:.1} s ({})",
                        p.name,
                        r.elapsed.as_secs_f64(),
                        r.termination
                    );
                }
            }
            per_platform.push((platform.clone(), runs, t.elapsed()));
        }
    }

    // Under gVisor, for comparison only.
    let gvisor = runsc().map(|runsc| {
        let t = Instant::now();
        let runs = run_all(&programs, jobs, RUNSC_LIMIT, &|p| {
            let mut c = Command::new(&runsc);
            c.args(["--platform=ptrace", "--network=none", "do"])
                .arg(&p.exe);
            c.current_dir("/tmp");
            c
        });
        (runs, t.elapsed())
    });
    for r in &retried {
        println!("retried (flaky?): {r}");
    }
    if gvisor.is_none() {
        println!("gvisor: skipped (runsc is not installed)");
    }

    // The table.
    let rows: Vec<Row> = programs
        .iter()
        .zip(&native)
        .enumerate()
        .map(|(i, (p, n))| {
            let ok_natively = |run: &Run| {
                n.cases
                    .iter()
                    .filter(|c| c.outcome == syscall_tests::output::Outcome::Ok)
                    .filter(|c| {
                        run.case(&c.name)
                            .is_some_and(|b| b.outcome == syscall_tests::output::Outcome::Ok)
                    })
                    .count()
            };
            Row {
                program: p.name.clone(),
                family: p.family.clone(),
                native_ok: n.passed(),
                native_skipped: n.skipped(),
                bulwark: PLATFORMS
                    .iter()
                    .map(|pl| {
                        per_platform
                            .iter()
                            .find(|(name, _, _)| name == pl)
                            .map(|(_, runs, _)| ok_natively(&runs[i]))
                    })
                    .collect(),
                gvisor: gvisor.as_ref().map(|(runs, _)| ok_natively(&runs[i])),
            }
        })
        .collect();
    let report = Report {
        platforms: PLATFORMS.iter().map(|s| s.to_string()).collect(),
        rows,
    };
    println!("\n{}", report.table());
    println!("native: {:.1} s", native_time.as_secs_f64());
    for (p, _, t) in &per_platform {
        println!("bulwark --platform={p}: {:.1} s", t.as_secs_f64());
    }
    if let Some((_, t)) = &gvisor {
        println!("runsc --platform=ptrace: {:.1} s", t.as_secs_f64());
    }

    // Judge Bulwark against the expected failures.
    for r in &results {
        match r.verdict {
            Verdict::Pass | Verdict::KnownFailure => {}
            Verdict::Unexpected if !update => failures.push(format!(
                "{} {} fails under bulwark --platform={}: {} (fix it, or list it in \
                 expected-failures.txt; BULWARK_UPDATE_EXPECTED=1 regenerates the file)",
                r.program, r.case, r.platform, r.observed
            )),
            Verdict::NowPasses if !update => failures.push(format!(
                "{} {} now passes under bulwark --platform={}: remove it from expected-failures.txt",
                r.program, r.case, r.platform
            )),
            _ => {}
        }
    }
    let known = results
        .iter()
        .filter(|r| r.verdict == Verdict::KnownFailure)
        .count();
    let flaky = results
        .iter()
        .filter(|r| r.verdict == Verdict::Flaky)
        .count();
    println!("flaky (not judged): {flaky}");
    let exits = results
        .iter()
        .filter(|r| r.case == EXIT_CASE && r.verdict != Verdict::Pass)
        .count();
    println!("known failures (all platforms): {known}, of which exit statuses: {exits}");

    let whole_run = filter.is_none() && bulwark.is_some() && !platforms.is_empty();
    let mut expected_now = expected.clone();
    if update {
        if whole_run {
            expected_now = regenerate(&expected, &results, &platforms);
            std::fs::write(&expected_path, expected_now.render())
                .expect("writing expected-failures.txt");
            println!(
                "wrote {} ({} entries)",
                expected_path.display(),
                expected_now.entries.len()
            );
        } else {
            failures.push(
                "BULWARK_UPDATE_EXPECTED needs a whole run (no filter, a platform, bulwark)".into(),
            );
        }
    }

    // docs/compatibility.md.
    if whole_run {
        let doc = compatibility(
            &report,
            &sentry::syscalls::names::NAMES,
            &|nr| sentry::syscalls::implemented(nr),
            &programs,
            &expected_now,
        );
        let doc_path = dir.join("../docs/compatibility.md");
        let old = std::fs::read_to_string(&doc_path).unwrap_or_default();
        if env_flag("CI") && syscalls_section(&old) != syscalls_section(&doc) {
            failures.push(
                "docs/compatibility.md is stale: run `cargo test --release -p syscall-tests` \
                 and commit the file"
                    .into(),
            );
        } else if old != doc {
            std::fs::create_dir_all(dir.join("../docs")).expect("creating docs/");
            std::fs::write(&doc_path, doc).expect("writing docs/compatibility.md");
            println!("wrote docs/compatibility.md");
        }
    }
    println!("total: {:.1} s", started.elapsed().as_secs_f64());

    if !failures.is_empty() {
        let shown = failures
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ");
        panic!(
            "{} problem(s) in the syscall suite:\n  {shown}{}",
            failures.len(),
            if failures.len() > 60 { "\n  …" } else { "" }
        );
    }
}
