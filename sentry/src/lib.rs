//! The Sentry: a Linux-compatible kernel that serves every syscall of the application.
#![deny(unsafe_code)]

pub mod errno;
pub mod loader;
pub mod mm;
