//! The systrap platform: application code in a seccomp-trapped stub process.

/// Errors of the systrap platform.
#[derive(Debug, thiserror::Error)]
pub enum SystrapError {
    #[error("Systrap is not available")]
    Unavailable,
}

/// The systrap platform.
pub struct Systrap;

impl Systrap {
    /// Whether this platform can run here.
    pub fn probe() -> Result<(), SystrapError> {
        Err(SystrapError::Unavailable)
    }
}
