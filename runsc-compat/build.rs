//! Link options of the `bulwark` binary.

fn main() {
    // Relative relocations packed as DT_RELR (glibc 2.36, binutils 2.38): the dynamic
    // loader reads a few KiB at start instead of ~170 KiB of `.rela.dyn`, in each of the
    // sandbox's processes.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
