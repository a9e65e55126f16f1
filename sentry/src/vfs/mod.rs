//! The virtual filesystem. For now: open file descriptions, and the host files the Sentry
//! is given at start (the caller's stdin, stdout and stderr).

pub mod gofer;
mod host;
mod stat;

pub use host::HostFile;
pub use stat::Stat;

use crate::errno::SysResult;

/// An open file description: what a file descriptor refers to, shared across `dup` and
/// `fork`.
pub trait FileDescription: Send + Sync {
    /// Reads at the current offset (or from the stream).
    fn read(&self, buf: &mut [u8]) -> SysResult<usize>;

    /// Writes at the current offset (or to the stream).
    fn write(&self, buf: &[u8]) -> SysResult<usize>;

    /// `fstat`.
    fn stat(&self) -> SysResult<Stat>;
}
