//! The ring-0 area: where the GDT, IDTs, TSSs, per-vCPU save areas and stacks, and the
//! trampoline live in every address space, and how their descriptors are encoded.
//!
//! The area is the first 2 MiB of the top PML4 slot (511). Its tables (one PDPT, one PD,
//! one PT) are built once per VM and shared: every address space's PML4 entry 511 points at
//! the same PDPT, so the area is identical everywhere and a vCPU created later is visible
//! to all address spaces at once.
//!
//! ```text
//! RING0_BASE + 0x0000  trampoline code (2 pages)          supervisor, read + execute
//!            + 0x2000  IDT of the architectural path      supervisor, read-only
//!            + 0x3000  IDT of the PVM path                supervisor, read-only
//!            + 0x4000  PVM `LSTAR` target                 never mapped
//!            + 0x10000 + n * 0x4000: vCPU n's block       supervisor, read + write, no-exec
//!                      +0x000 GDT   +0x080 TSS   +0x400 save area
//!                      +0x1000..+0x4000 ring-0 stack (top at +0x4000)
//! ```
//!
//! Every leaf is supervisor-only, so ring 3 can neither read, write nor execute the area.

use crate::Registers;

/// Start of the ring-0 area (PML4 slot 511).
pub(super) const RING0_BASE: u64 = 0xffff_ff80_0000_0000;
/// Size of the area: what one page table maps.
pub(super) const RING0_SIZE: u64 = 0x20_0000;
pub(super) const TRAMPOLINE: u64 = RING0_BASE;
pub(super) const TRAMPOLINE_PAGES: u64 = 2;
pub(super) const IDT_ARCH: u64 = RING0_BASE + 0x2000;
pub(super) const IDT_PVM: u64 = RING0_BASE + 0x3000;
/// The PVM path's syscall exit page: the last page of the lower half, just past the
/// highest application address (Linux never maps it either: it is above `TASK_SIZE`).
/// Every address space maps it user-readable and executable; it holds [`PVM_EXIT_CODE`]
/// and nothing else, and `LSTAR` points at it.
pub(super) const PVM_EXIT_PAGE: u64 = super::MAX_USER_ADDRESS;
/// `out %al, $EXIT_PORT; ud2`.
pub(super) const PVM_EXIT_CODE: [u8; 4] = [0xe6, EXIT_PORT_U8, 0x0f, 0x0b];

/// The fallback `LSTAR` target on the PVM path: a page that is never mapped, so a `syscall`
/// (which stays in ring 3 there) raises an instruction-fetch #PF at exactly this address,
/// with IF clear in the frame (SFMASK cleared it; ring-3 code cannot run with IF clear, so
/// a plain jump here is told apart: it is an ordinary page fault).
pub(super) const PVM_SYSCALL_ENTRY: u64 = RING0_BASE + 0x4000;
pub(super) const VCPU_BLOCKS: u64 = RING0_BASE + 0x1_0000;
pub(super) const VCPU_BLOCK_SIZE: u64 = 0x4000;
/// How many vCPU blocks fit in the area; the last one is the maintenance vCPU's.
pub(super) const MAX_VCPUS: usize = 64;
pub(super) const MAINTENANCE_VCPU: usize = MAX_VCPUS - 1;
const _: () = assert!(VCPU_BLOCKS - RING0_BASE + MAX_VCPUS as u64 * VCPU_BLOCK_SIZE <= RING0_SIZE);

/// The physmap: the whole memory file, supervisor-only, in PML4 slot 510 of the idle
/// page tables (only the maintenance vCPU runs with them; application address spaces do
/// not map it).
pub(super) const PHYSMAP_BASE: u64 = 0xffff_ff00_0000_0000;
/// The physmap's reach (one PML4 slot).
pub(super) const PHYSMAP_SIZE: u64 = 1 << 39;

/// Where the maintenance vCPU finds its list of page-table runs to rewrite (in its block),
/// and how many fit.
pub(super) const REWRITE_LIST_OFFSET: u64 = 0x1000;
pub(super) const REWRITE_LIST_MAX: usize = 256;

/// Offsets inside a vCPU block.
pub(super) const GDT_OFFSET: u64 = 0;
pub(super) const TSS_OFFSET: u64 = 0x80;
pub(super) const SAVE_OFFSET: u64 = 0x400;
pub(super) const STACK_TOP_OFFSET: u64 = VCPU_BLOCK_SIZE;

/// The I/O port the architectural trampoline writes to to exit.
pub(super) const EXIT_PORT: u16 = EXIT_PORT_U8 as u16;
pub(super) const EXIT_PORT_U8: u8 = 0x0e;

/// Virtual address of vCPU `n`'s block.
pub(super) fn vcpu_block(n: usize) -> u64 {
    VCPU_BLOCKS + n as u64 * VCPU_BLOCK_SIZE
}

/// Selectors, in Linux's layout (so `sysret` with `STAR[63:48] = 0x23` lands on 0x33/0x2b,
/// and applications see the selectors they see on Linux).
pub(super) mod selector {
    pub const KERNEL_CS: u16 = 0x10;
    pub const KERNEL_SS: u16 = 0x18;
    pub const USER32_CS: u16 = 0x23;
    pub const USER_SS: u16 = 0x2b;
    pub const USER_CS: u16 = 0x33;
    pub const TSS: u16 = 0x38;
}

/// GDT entries (indices = selector / 8); the TSS takes two slots (7 and 8).
pub(super) const GDT_ENTRIES: usize = 9;
pub(super) const GDT_LIMIT: u16 = 71;
const _: () = assert!(GDT_LIMIT as usize == GDT_ENTRIES * 8 - 1);

/// Code/data descriptors, flat, with the accessed bit preset (the CPU never writes them).
pub(super) mod descriptor {
    /// 64-bit ring-0 code: P, DPL 0, S, type execute/read/accessed, L, G.
    pub const KERNEL_CODE: u64 = 0x00af_9b00_0000_ffff;
    /// Ring-0 data: P, DPL 0, S, type read/write/accessed, D/B, G.
    pub const KERNEL_DATA: u64 = 0x00cf_9300_0000_ffff;
    /// 32-bit ring-3 code (only there for the `sysret` selector arithmetic).
    pub const USER_CODE32: u64 = 0x00cf_fb00_0000_ffff;
    /// Ring-3 data.
    pub const USER_DATA: u64 = 0x00cf_f300_0000_ffff;
    /// 64-bit ring-3 code.
    pub const USER_CODE: u64 = 0x00af_fb00_0000_ffff;
}

/// The TSS: 104 bytes, then a two-byte I/O permission bitmap (ports 0..16) and the
/// terminating 0xff byte. Ports past the bitmap are denied by the limit.
pub(super) const TSS_SIZE: u64 = 104;
pub(super) const TSS_IOMAP_BYTES: u64 = 2;
pub(super) const TSS_LIMIT: u32 = 106;
/// The TSS's bytes: the TSS, the bitmap and its terminator.
pub(super) const TSS_BYTES: usize = 107;
const _: () = assert!(TSS_LIMIT as u64 == TSS_SIZE + TSS_IOMAP_BYTES);
const _: () = assert!(TSS_BYTES as u64 == TSS_SIZE + TSS_IOMAP_BYTES + 1);

/// The two GDT slots of a 64-bit available TSS at `base` with `limit`.
pub(super) fn tss_descriptor(base: u64, limit: u32) -> [u64; 2] {
    let limit = u64::from(limit);
    let low = (limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (0x89 << 40) // P, DPL 0, type 9 (64-bit TSS, available)
        | (((limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    [low, base >> 32]
}

/// A vCPU's GDT.
pub(super) fn gdt(tss_base: u64) -> [u64; GDT_ENTRIES] {
    let [tss_low, tss_high] = tss_descriptor(tss_base, TSS_LIMIT);
    [
        0,
        0,
        descriptor::KERNEL_CODE,
        descriptor::KERNEL_DATA,
        descriptor::USER_CODE32,
        descriptor::USER_DATA,
        descriptor::USER_CODE,
        tss_low,
        tss_high,
    ]
}

/// A vCPU's TSS (with its I/O bitmap), as bytes. `rsp0` is the ring-0 stack the CPU
/// switches to on an exception from ring 3. `allowed_port` (below 16) is the one port ring
/// 3 may write without a #GP, or none.
pub(super) fn tss(rsp0: u64, allowed_port: Option<u16>) -> [u8; TSS_BYTES] {
    let mut tss = [0u8; TSS_BYTES];
    tss[4..12].copy_from_slice(&rsp0.to_le_bytes());
    // I/O map base.
    // I/O map base: right after the 104-byte TSS.
    tss[102..104].copy_from_slice(&104_u16.to_le_bytes());
    let mut bitmap = 0xffff_u16;
    if let Some(port) = allowed_port.filter(|&p| p < 16) {
        bitmap &= !(1 << port);
    }
    tss[104..106].copy_from_slice(&bitmap.to_le_bytes());
    tss[106] = 0xff;
    tss
}

/// A 64-bit interrupt gate (IF cleared on entry) to `handler` in the ring-0 code segment,
/// callable by `int n` from ring `dpl`.
pub(super) fn idt_gate(handler: u64, dpl: u8) -> [u64; 2] {
    let low = (handler & 0xffff)
        | (u64::from(selector::KERNEL_CS) << 16)
        | ((0x8e_u64 | (u64::from(dpl & 3) << 5)) << 40)
        | (((handler >> 16) & 0xffff) << 48);
    [low, handler >> 32]
}

/// The ring from which `int n` may raise vector `n` directly: `int3` and `into` are
/// allowed from ring 3 (as on Linux); any other `int n` from ring 3 is a #GP.
pub(super) fn gate_dpl(vector: u8) -> u8 {
    if vector == crate::vector::BREAKPOINT || vector == crate::vector::OVERFLOW {
        3
    } else {
        0
    }
}

/// Whether the CPU pushes an error code for `vector`.
pub(super) fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// The per-vCPU save area of the architectural path, at `SAVE_OFFSET` in the vCPU block
/// (the trampoline reaches it through `GS` after `swapgs`). The trampoline stores the user
/// registers in `regs` on every exit and loads them from there on every entry, so the
/// Sentry moves registers with plain memory copies, never with `KVM_GET_REGS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SaveArea {
    /// The application's registers, in `user_regs_struct` layout.
    pub regs: Registers,
    /// Exit kind: [`SaveArea::KIND_SYSCALL`] or [`SaveArea::KIND_EXCEPTION`].
    pub kind: u64,
    /// The exception vector and error code (0 when the CPU pushes none).
    pub vector: u64,
    pub error_code: u64,
    /// CR2 at a page fault.
    pub cr2: u64,
    /// Sentry → guest: the CR3 to run with.
    pub cr3: u64,
    /// Sentry → guest: non-zero to reload CR3 even when unchanged (TLB flush).
    pub flush: u64,
    /// The top of this vCPU's ring-0 stack.
    pub kernel_rsp: u64,
}

impl SaveArea {
    pub const KIND_SYSCALL: u64 = 1;
    pub const KIND_EXCEPTION: u64 = 2;
}

const _: () = assert!(std::mem::size_of::<SaveArea>() == 27 * 8 + 7 * 8);
const _: () = assert!(SAVE_OFFSET + std::mem::size_of::<SaveArea>() as u64 <= 0x1000);
const _: () = assert!(TSS_OFFSET + TSS_SIZE + 3 <= SAVE_OFFSET);
const _: () = assert!(GDT_OFFSET + GDT_ENTRIES as u64 * 8 <= TSS_OFFSET);

const _: () = assert!(PVM_SYSCALL_ENTRY + crate::PAGE_SIZE <= VCPU_BLOCKS);
const _: () = assert!(TRAMPOLINE + TRAMPOLINE_PAGES * crate::PAGE_SIZE <= IDT_ARCH);
const _: () = assert!(TSS_SIZE == 104);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_fits_in_one_page_table() {
        assert_eq!(RING0_BASE >> 39 & 0x1ff, 511);
        assert_eq!(RING0_BASE & (RING0_SIZE - 1), 0);
        assert!(vcpu_block(MAX_VCPUS - 1) + VCPU_BLOCK_SIZE <= RING0_BASE + RING0_SIZE);
        assert_eq!(PHYSMAP_BASE >> 39 & 0x1ff, 510);
        assert!(REWRITE_LIST_OFFSET + REWRITE_LIST_MAX as u64 * 16 <= STACK_TOP_OFFSET - 0x1000);
    }

    #[test]
    fn gdt_matches_selectors() {
        let g = gdt(0xffff_ff80_0001_0080);
        assert_eq!(
            g[usize::from(selector::KERNEL_CS / 8)],
            descriptor::KERNEL_CODE
        );
        assert_eq!(
            g[usize::from(selector::KERNEL_SS / 8)],
            descriptor::KERNEL_DATA
        );
        assert_eq!(g[usize::from(selector::USER_CS / 8)], descriptor::USER_CODE);
        assert_eq!(g[usize::from(selector::USER_SS / 8)], descriptor::USER_DATA);
        // sysret: CS = STAR[63:48] + 16, SS = STAR[63:48] + 8 (RPL 3 ORed in).
        assert_eq!(selector::USER32_CS + 16, selector::USER_CS);
        assert_eq!(selector::USER32_CS + 8, selector::USER_SS);
        // DPL (bits 45..47) and L (bit 53) of the code segments.
        assert_eq!(descriptor::USER_CODE >> 45 & 3, 3);
        assert_eq!(descriptor::KERNEL_CODE >> 45 & 3, 0);
        assert_eq!(descriptor::USER_CODE >> 53 & 1, 1);
        assert_eq!(descriptor::USER_DATA >> 45 & 3, 3);
    }

    #[test]
    fn tss_descriptor_encodes_base_and_limit() {
        let base = 0xffff_ff80_1234_5678;
        let [low, high] = tss_descriptor(base, 0x6a);
        assert_eq!(low & 0xffff, 0x6a);
        assert_eq!(low >> 16 & 0xff_ffff, 0x34_5678);
        assert_eq!(low >> 56 & 0xff, 0x12);
        assert_eq!(high, 0xffff_ff80);
        assert_eq!(low >> 40 & 0xff, 0x89);
        assert_eq!(usize::from(selector::TSS / 8), 7);
    }

    #[test]
    fn tss_sets_rsp0_and_iomap() {
        let t = tss(0xffff_ff80_0001_4000, Some(EXIT_PORT));
        assert_eq!(
            u64::from_le_bytes(t[4..12].try_into().unwrap()),
            0xffff_ff80_0001_4000
        );
        assert_eq!(u16::from_le_bytes(t[102..104].try_into().unwrap()), 104);
        let bitmap = u16::from_le_bytes(t[104..106].try_into().unwrap());
        assert_eq!(bitmap, !(1u16 << EXIT_PORT));
        assert_eq!(t[106], 0xff);
        let closed = tss(0, None);
        assert_eq!(
            u16::from_le_bytes(closed[104..106].try_into().unwrap()),
            0xffff
        );
    }

    #[test]
    fn idt_gate_encoding() {
        let handler = 0xffff_ff80_0000_1234;
        let [low, high] = idt_gate(handler, 3);
        assert_eq!(low & 0xffff, 0x1234);
        assert_eq!(low >> 16 & 0xffff, u64::from(selector::KERNEL_CS));
        assert_eq!(low >> 40 & 0xff, 0xee); // P, DPL 3, interrupt gate
        assert_eq!(low >> 48 & 0xffff, 0x0000);
        assert_eq!(high, 0xffff_ff80);
        assert_eq!(idt_gate(handler, 0)[0] >> 40 & 0xff, 0x8e);
        assert_eq!(gate_dpl(3), 3);
        assert_eq!(gate_dpl(13), 0);
    }

    #[test]
    fn error_code_vectors() {
        let with: Vec<u8> = (0..=255).filter(|&v| has_error_code(v)).collect();
        assert_eq!(with, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }
}
