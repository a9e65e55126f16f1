//! `bulwark`: an OCI runtime with a runsc-compatible command line.
#![deny(unsafe_code)]

fn main() {
    println!("bulwark {}", env!("CARGO_PKG_VERSION"));
}
