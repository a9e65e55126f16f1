//! `expected-failures.txt`: the cases known to fail under Bulwark, one a line:
//!
//! ```text
//! program case  # reason
//! program case @kvm  # reason that holds on one platform only
//! ```
//!
//! `#` starts the reason, which is required. Blank lines and lines starting with `#` are
//! comments. The case `*` stands for every case of the program. A reason starting with
//! `flaky` marks cases whose result varies from run to run: they are run and counted but
//! judged neither way (and kept as they are when the file is regenerated).

use std::fmt::Write as _;

/// One expected failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub program: String,
    pub case: String,
    /// The platforms it applies to; empty means every platform.
    pub platforms: Vec<String>,
    pub reason: String,
}

impl Entry {
    pub fn applies_to(&self, platform: &str) -> bool {
        self.platforms.is_empty() || self.platforms.iter().any(|p| p == platform)
    }

    /// Whether it names `case` (itself, or `*`).
    pub fn names(&self, case: &str) -> bool {
        self.case == case || self.case == "*"
    }

    /// Whether the result varies from run to run (the reason starts with `flaky`).
    pub fn is_flaky(&self) -> bool {
        self.reason.starts_with("flaky")
    }
}

/// The parsed file.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    pub entries: Vec<Entry>,
}

/// The header written at the top of a regenerated file.
pub const HEADER: &str = "\
# Cases of the syscall suite known to fail under Bulwark (syscall-tests/tests/suite.rs).
# Format: `program case [@platform[,platform]]  # reason`; no platform means all of them.
# A case failing under Bulwark that is not listed fails the run, and so does a listed case
# that passes. Regenerate after Sentry changes with
#   BULWARK_UPDATE_EXPECTED=1 cargo test --release -p syscall-tests
# and replace the generic reasons where you know better. Case `*` means every case of the
# program; a reason starting with `flaky` means the result varies and is not judged.
";

impl Expected {
    /// Parses the file; an error names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let lineno = i + 1;
            let Some((spec, reason)) = line.split_once('#') else {
                return Err(format!("line {lineno}: no `# reason`: {raw}"));
            };
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(format!("line {lineno}: the reason is empty"));
            }
            let words: Vec<&str> = spec.split_whitespace().collect();
            let (program, case, platforms) = match words.as_slice() {
                [p, c] => (*p, *c, Vec::new()),
                [p, c, at] if at.starts_with('@') => {
                    let list: Vec<String> = at[1..]
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                    if list.is_empty() {
                        return Err(format!("line {lineno}: `@` without a platform"));
                    }
                    (*p, *c, list)
                }
                _ => {
                    return Err(format!(
                        "line {lineno}: want `program case [@platform]`: {raw}"
                    ))
                }
            };
            entries.push(Entry {
                program: program.to_string(),
                case: case.to_string(),
                platforms,
                reason: reason.to_string(),
            });
        }
        Ok(Expected { entries })
    }

    /// The entry that expects `program case` to fail on `platform`, if any.
    pub fn find(&self, program: &str, case: &str, platform: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .filter(|e| e.program == program && e.names(case) && e.applies_to(platform))
            // A flaky entry wins over a plain one for the same case.
            .max_by_key(|e| e.is_flaky())
    }

    /// The file's text, with the header.
    pub fn render(&self) -> String {
        let mut out = String::from(HEADER);
        let mut last_program = "";
        for e in &self.entries {
            if e.program != last_program {
                out.push('\n');
                last_program = &e.program;
            }
            let _ = write!(out, "{} {}", e.program, e.case);
            if !e.platforms.is_empty() {
                let _ = write!(out, " @{}", e.platforms.join(","));
            }
            let _ = writeln!(out, "  # {}", e.reason);
        }
        out
    }
}

/// A short reason for a failure observed under Bulwark, for a regenerated file.
pub fn reason_for(observed: &str) -> String {
    let one_line: String = observed
        .chars()
        .map(|c| if c == '#' || c.is_control() { ' ' } else { c })
        .collect();
    let text = if one_line.contains("ENOSYS") {
        "not implemented yet (ENOSYS)".to_string()
    } else if one_line.starts_with("not reached (exit status 1)") {
        format!("not implemented yet ({one_line})")
    } else if one_line.starts_with("not reached") {
        format!("the program died before this case ({one_line})")
    } else {
        format!("observed: {one_line}")
    };
    if text.chars().count() > 110 {
        let cut: String = text.chars().take(107).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_with_and_without_platforms() {
        let e = Expected::parse(
            "# c\n\nfs_open open_rdonly  # r1\nmm_brk brk_grow @kvm,systrap # r 2\n",
        )
        .unwrap();
        assert_eq!(e.entries.len(), 2);
        assert!(e.find("fs_open", "open_rdonly", "kvm").is_some());
        assert!(e.find("fs_open", "open_rdonly", "systrap").is_some());
        assert_eq!(e.entries[1].platforms, vec!["kvm", "systrap"]);
        assert_eq!(e.entries[1].reason, "r 2");
        let e = Expected::parse("a b @kvm # r").unwrap();
        assert!(e.find("a", "b", "systrap").is_none());
    }

    #[test]
    fn wildcard_and_flaky_entries() {
        let e = Expected::parse("p * @kvm # flaky: crashes sometimes\n").unwrap();
        let entry = e.find("p", "any_case", "kvm").unwrap();
        assert!(entry.is_flaky());
        assert!(e.find("p", "any_case", "systrap").is_none());
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(Expected::parse("a b\n").is_err());
        assert!(Expected::parse("a b #\n").is_err());
        assert!(Expected::parse("a # r\n").is_err());
        assert!(Expected::parse("a b c # r\n").is_err());
        assert!(Expected::parse("a b @ # r\n").is_err());
    }

    #[test]
    fn render_round_trips() {
        let text = "a x  # r\na y @kvm  # s\nb z  # t\n";
        let e = Expected::parse(text).unwrap();
        let again = Expected::parse(&e.render()).unwrap();
        assert_eq!(e.entries, again.entries);
    }

    #[test]
    fn reasons_are_short_single_lines() {
        assert_eq!(
            reason_for("x = -1 (errno ENOSYS), want 0"),
            "not implemented yet (ENOSYS)"
        );
        assert!(reason_for("not reached (exit status 1)").starts_with("not implemented yet"));
        assert!(reason_for("not reached (exit status 139)").starts_with("the program died"));
        let long = reason_for(&"y".repeat(300));
        assert!(long.len() <= 110 && !long.contains('\n'));
        assert!(!reason_for("a # b\nc").contains('#'));
    }
}
