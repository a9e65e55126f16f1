//! The CPUID the guest sees: what the host's KVM supports, minus what the sandbox does not
//! offer (`KVM_SET_CPUID2` takes the result).

use kvm_bindings::kvm_cpuid_entry2;

/// XSAVE components the guest may enable in XCR0: x87, SSE, AVX, and the three AVX-512
/// ones. All of them fit in the 4096-byte standard-format [`crate::FpuState`]; AMX and the
/// supervisor components do not, PKRU needs CR4.PKE, which the guest does not set.
pub(super) const XCR0_ALLOWED: u64 = 0b1110_0111;

/// CPUID.1:ECX bits removed.
mod leaf1_ecx {
    pub const MONITOR: u32 = 1 << 3;
    pub const VMX: u32 = 1 << 5;
    pub const SMX: u32 = 1 << 6;
    pub const PCID: u32 = 1 << 17;
    pub const X2APIC: u32 = 1 << 21;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    pub const HYPERVISOR: u32 = 1 << 31;
}
/// CPUID.1:EDX: no local APIC in the VM.
const LEAF1_EDX_APIC: u32 = 1 << 9;
/// CPUID.7.0:ECX: WAITPKG (umwait/tpause could park the vCPU), PKU (no CR4.PKE).
const LEAF7_ECX_REMOVED: u32 = (1 << 5) | (1 << 3);
/// CPUID.0x80000001:ECX: SVM.
const EXT1_ECX_SVM: u32 = 1 << 2;

/// Filters the supported CPUID in place; drops the KVM paravirtual leaves (0x4000_00xx)
/// and the performance-monitoring leaf (0xa), which the sandbox does not honour.
pub(super) fn filter(entries: &mut Vec<kvm_cpuid_entry2>) {
    entries.retain(|e| !(0x4000_0000..0x5000_0000).contains(&e.function) && e.function != 0xa);
    for e in entries.iter_mut() {
        match (e.function, e.index) {
            (1, _) => {
                e.ecx &= !(leaf1_ecx::MONITOR
                    | leaf1_ecx::VMX
                    | leaf1_ecx::SMX
                    | leaf1_ecx::PCID
                    | leaf1_ecx::X2APIC
                    | leaf1_ecx::TSC_DEADLINE
                    | leaf1_ecx::HYPERVISOR);
                e.edx &= !LEAF1_EDX_APIC;
            }
            (7, 0) => e.ecx &= !LEAF7_ECX_REMOVED,
            (0xd, 0) => {
                // Supported XCR0 bits: keep only the ones the guest may enable.
                e.eax &= u32::try_from(XCR0_ALLOWED).unwrap_or(u32::MAX);
                e.edx = 0;
            }
            (0x8000_0001, _) => e.ecx &= !EXT1_ECX_SVM,
            _ => {}
        }
    }
}

/// The XCR0 the guest runs with: x87 | SSE | AVX | AVX-512 as far as `entries` offers.
pub(super) fn xcr0(entries: &[kvm_cpuid_entry2]) -> u64 {
    let supported = entries
        .iter()
        .find(|e| e.function == 0xd && e.index == 0)
        .map_or(3, |e| u64::from(e.eax) | u64::from(e.edx) << 32);
    let mut xcr0 = supported & XCR0_ALLOWED | 3;
    // AVX-512 state is all or nothing, and needs AVX.
    if xcr0 & 0xe0 != 0xe0 || xcr0 & 4 == 0 {
        xcr0 &= !0xe0;
    }
    xcr0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32, eax: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax,
            ecx,
            edx,
            ..Default::default()
        }
    }

    #[test]
    fn removes_virtualisation_and_paravirt() {
        let mut entries = vec![
            entry(1, 0, 0, u32::MAX, u32::MAX),
            entry(0x4000_0000, 0, 0x4000_0001, 0, 0),
            entry(0x4000_0001, 0, u32::MAX, 0, 0),
            entry(0x8000_0001, 0, 0, u32::MAX, 0),
            entry(0xd, 0, 0x2ff, 0, 0),
        ];
        filter(&mut entries);
        assert_eq!(entries.len(), 3);
        let l1 = entries[0];
        assert_eq!(l1.ecx & (1 << 5), 0, "VMX");
        assert_eq!(l1.ecx & (1 << 31), 0, "hypervisor");
        assert_eq!(l1.ecx & (1 << 17), 0, "PCID");
        assert_ne!(l1.ecx & (1 << 26), 0, "XSAVE stays");
        assert_eq!(l1.edx & (1 << 9), 0, "APIC");
        assert_eq!(entries[1].ecx & (1 << 2), 0, "SVM");
        assert_eq!(entries[2].eax, 0xe7);
        assert_eq!(xcr0(&entries), 0xe7);
    }

    #[test]
    fn xcr0_without_avx512() {
        assert_eq!(xcr0(&[entry(0xd, 0, 0x7, 0, 0)]), 7);
        assert_eq!(xcr0(&[entry(0xd, 0, 0x27, 0, 0)]), 7);
        assert_eq!(xcr0(&[]), 3);
    }
}
