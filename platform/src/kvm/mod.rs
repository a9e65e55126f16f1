//! The KVM platform: application code in guest ring 3 of a KVM virtual machine.

/// Errors of the KVM platform.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error("/dev/kvm is not available")]
    Unavailable,
}

/// The KVM platform.
pub struct Kvm;

impl Kvm {
    /// Whether this platform can run here.
    pub fn probe() -> Result<(), KvmError> {
        Err(KvmError::Unavailable)
    }
}
