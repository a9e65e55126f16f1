//! Builds the vDSO (`vdso/vdso.c`, linked with `vdso/vdso.lds`) into a shared object the
//! Sentry embeds and maps into every process.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("vdso.so");
    println!("cargo:rerun-if-changed=vdso/vdso.c");
    println!("cargo:rerun-if-changed=vdso/vdso.lds");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-fPIC",
            "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables",
            "-fomit-frame-pointer",
            "-fcf-protection=none",
            "-nostdlib",
            "-shared",
            "-Wl,-T,vdso/vdso.lds",
            "-Wl,--hash-style=both",
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,--no-undefined",
            "-Wl,-z,max-page-size=4096",
            "-Wl,--build-id=none",
            "-o",
        ])
        .arg(&out)
        .arg("vdso/vdso.c")
        .status()
        .unwrap_or_else(|e| panic!("running {cc} to build the vDSO: {e}"));
    assert!(status.success(), "building the vDSO failed");
}
