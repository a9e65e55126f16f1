//! A context's FPU/SSE/AVX state, kept live in the vCPU it last ran on.
//!
//! After an exit the state stays in the vCPU: no `KVM_GET_XSAVE`, and no `KVM_SET_XSAVE`
//! when the context next runs on the same vCPU with nothing else in between. It is saved
//! into the context's buffer when another context leases that vCPU ([`evict`]), or when
//! the Sentry asks for it ([`FpuSlot::current`]).
//!
//! Who touches the buffer: while `live_on` names a vCPU, only the thread holding that
//! vCPU (which has leased it from the pool) writes the buffer, and only to save the live
//! state into it, under the `live_on` lock; the owning context does not read it then (it
//! first waits for `live_on` to clear). While `live_on` is `None`, only the owning context
//! reads or writes it. `live_on` becomes `Some` only in `Context::switch`, which takes the
//! context by `&mut`, so no reference the owner handed out earlier is alive then.

use std::cell::UnsafeCell;
use std::sync::{Arc, Mutex, MutexGuard};

use super::vcpu::Vcpu;
use super::vm::Machine;
use super::KvmError;
use crate::FpuState;

pub(super) struct FpuSlot {
    state: UnsafeCell<Box<FpuState>>,
    /// The vCPU holding the live state, or `None` when `state` is current.
    live_on: Mutex<Option<usize>>,
}

// SAFETY: access to `state` follows the protocol in the module documentation: one writer
// at a time, serialised by `live_on` and by the owner's `&mut` borrows.
unsafe impl Sync for FpuSlot {}
// SAFETY: as above; FpuState itself is plain bytes.
unsafe impl Send for FpuSlot {}

impl FpuSlot {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: UnsafeCell::new(FpuState::new_initial()),
            live_on: Mutex::new(None),
        })
    }

    pub(super) fn live_on(&self) -> MutexGuard<'_, Option<usize>> {
        self.live_on.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the buffer current (saving the state out of the vCPU holding it) and returns
    /// it. For the owning context only.
    pub(super) fn current(&self, machine: &Machine) -> Result<&FpuState, KvmError> {
        loop {
            let mut live = self.live_on();
            let Some(index) = *live else {
                break;
            };
            if let Some(mut vcpu) = machine.take_idle(index) {
                // SAFETY: `live_on` names this vCPU, which we now hold: nobody else writes
                // the buffer, and the owner (our caller) holds no reference into it.
                let result = vcpu.get_fpu(unsafe { &mut *self.state.get() });
                *live = None;
                vcpu.forget_fpu_owner();
                drop(live);
                machine.release(vcpu);
                result?;
                break;
            }
            // Another thread leased that vCPU and is saving our state out of it.
            drop(live);
            std::thread::yield_now();
        }
        // SAFETY: `live_on` is None, so only the owner touches the buffer, and it only
        // reads through this shared reference until its next `&mut` use.
        Ok(unsafe { &*self.state.get() })
    }

    /// The buffer, for the owner to change (after [`FpuSlot::current`]).
    ///
    /// # Safety
    /// The caller is the owning context, holds it by `&mut` for the life of the returned
    /// reference, and has made the buffer current (`live_on` is `None`).
    #[allow(clippy::mut_from_ref)] // exclusive by the contract above
    pub(super) unsafe fn buffer_mut(&self) -> &mut FpuState {
        // SAFETY: per the contract, nobody else touches the buffer meanwhile.
        unsafe { &mut *self.state.get() }
    }

    /// The buffer, for loading into a vCPU at the start of a switch.
    ///
    /// # Safety
    /// The caller is the owning context, inside `switch` (`&mut`), and `live_on` is `None`.
    pub(super) unsafe fn buffer(&self) -> &FpuState {
        // SAFETY: per the contract, nobody writes the buffer meanwhile.
        unsafe { &*self.state.get() }
    }
}

/// Saves the FPU state of `vcpu`'s previous context into that context's buffer, unless it
/// is `keep`'s. Every thread that leases a vCPU calls this first.
pub(super) fn evict(vcpu: &mut Vcpu, keep: Option<&Arc<FpuSlot>>) -> Result<(), KvmError> {
    let Some(owner) = vcpu.take_fpu_owner() else {
        return Ok(());
    };
    if keep.is_some_and(|k| Arc::ptr_eq(k, &owner)) {
        vcpu.set_fpu_owner(owner);
        return Ok(());
    }
    let mut live = owner.live_on();
    if *live == Some(vcpu.index) {
        // SAFETY: `live_on` names this vCPU, which the caller holds: we are the only
        // writer, and the owner waits for `live_on` to clear before reading.
        let result = vcpu.get_fpu(unsafe { &mut *owner.state.get() });
        *live = None;
        result?;
    }
    Ok(())
}
