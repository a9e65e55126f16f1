//! Compiles every `programs/*.c` into a static executable in `$OUT_DIR/programs`, and
//! tells the runner where they are (`SYSCALL_TESTS_PROGRAMS`).
//!
//! The programs are linked with `gcc -static` (Bulwark runs static programs only so far),
//! which the `cc` crate does not do for executables, so gcc is invoked directly. `$CC`
//! overrides the compiler.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let src = manifest.join("programs");
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("programs");
    std::fs::create_dir_all(&out).expect("creating $OUT_DIR/programs");
    println!("cargo:rerun-if-changed=programs");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rustc-env=SYSCALL_TESTS_PROGRAMS={}", out.display());

    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src)
        .expect("reading syscall-tests/programs")
        .map(|e| e.expect("reading syscall-tests/programs").path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    for s in &sources {
        println!("cargo:rerun-if-changed={}", s.display());
    }

    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".to_string());
    let queue = Mutex::new(sources);
    let errors = Mutex::new(Vec::new());
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let Some(source) = queue.lock().expect("queue lock").pop() else {
                    break;
                };
                if let Err(e) = compile(&cc, &source, &out) {
                    errors.lock().expect("error lock").push(e);
                }
            });
        }
    });
    let errors = errors.into_inner().expect("error lock");
    assert!(
        errors.is_empty(),
        "compiling the syscall test programs failed (they need gcc and static glibc, \
         Debian package libc6-dev):\n{}",
        errors.join("\n")
    );
}

fn compile(cc: &str, source: &Path, out: &Path) -> Result<(), String> {
    let name = source.file_stem().expect("a .c file has a stem");
    let exe = out.join(name);
    let output = Command::new(cc)
        .args([
            "-static",
            "-O1",
            "-g",
            "-Wall",
            "-Wno-unused-result",
            "-Wno-stringop-overflow",
        ])
        .args(["-Wno-nonnull", "-Wno-stringop-overread", "-o"])
        .arg(&exe)
        .arg(source)
        .arg("-lpthread")
        .output()
        .map_err(|e| format!("{cc}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}\n{}",
            source.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
