//! The test programs: where their executables are and what their sources say.

use std::path::{Path, PathBuf};

/// One compiled test program.
#[derive(Clone, Debug)]
pub struct Program {
    /// The file stem, e.g. `fs_open`.
    pub name: String,
    pub exe: PathBuf,
    /// The syscalls it exercises, from its `/* syscalls: … */` line.
    pub syscalls: Vec<String>,
    /// Its family, the part of the name before the first `_` (`fs`, `mm`, …).
    pub family: String,
}

/// The programs whose sources are in `src_dir` and executables in `bin_dir`, by name.
pub fn discover(src_dir: &Path, bin_dir: &Path) -> std::io::Result<Vec<Program>> {
    let mut programs = Vec::new();
    for entry in std::fs::read_dir(src_dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "c") {
            continue;
        }
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
        else {
            continue;
        };
        let source = std::fs::read_to_string(&path)?;
        programs.push(Program {
            exe: bin_dir.join(&name),
            syscalls: syscalls_line(&source),
            family: name.split('_').next().unwrap_or(&name).to_string(),
            name,
        });
    }
    programs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(programs)
}

/// The names on a source's `/* syscalls: a b c */` line.
pub fn syscalls_line(source: &str) -> Vec<String> {
    source
        .lines()
        .find_map(|l| l.trim().strip_prefix("/* syscalls:"))
        .map(|rest| {
            rest.trim_end_matches("*/")
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_syscalls_line() {
        let src = "/* open: flags. */\n/* syscalls: open openat */\n#include \"common.h\"\n";
        assert_eq!(syscalls_line(src), vec!["open", "openat"]);
        assert!(syscalls_line("/* syscalls: */").is_empty());
        assert!(syscalls_line("int main;").is_empty());
    }
}
