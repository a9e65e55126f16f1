//! The Sentry: a Linux-compatible kernel that serves every syscall of the application.
#![deny(unsafe_code)]

pub mod errno;
pub mod kernel;
pub mod loader;
pub mod mm;
pub mod random;
pub mod syscalls;
pub mod vdso;
pub mod vfs;
