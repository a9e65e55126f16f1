//! The guest's ring-0 code: a position-independent blob assembled into the Sentry binary
//! (in a read-only data section: the host never executes it) and copied into the
//! trampoline pages of the ring-0 area.
//!
//! Two sets of entry points, one per path (see [`super::Path`]):
//!
//! * **Architectural** (hardware KVM): `LSTAR` → [`Entry::Syscall`], IDT →
//!   [`Entry::ArchStubs`] → `exception_common`. Both `swapgs` to the vCPU's
//!   [`SaveArea`](super::layout::SaveArea), store every user register there (plus the
//!   vector, error code and CR2 for exceptions, and the FS/GS bases), and exit with one
//!   `out` to [`EXIT_PORT`](super::layout::EXIT_PORT). The Sentry resumes the vCPU right
//!   after that `out`, at [`Entry::Resume`], which reloads CR3 if the save area asks
//!   (address-space switch or TLB flush), restores the registers from the save area and
//!   returns to ring 3 with `iretq`. One exit per syscall, no register ioctls.
//! * **PVM** (hosts where `syscall` stays in ring 3, see `probe.rs`): the IDT points at
//!   [`Entry::PvmStubs`], 256 one-byte `hlt`s (vector = which one exited): guest ring-0
//!   code is emulated there at ~1 µs per instruction, so the handler is one instruction.
//!   `LSTAR` points at an unmapped address, so `syscall` arrives there as a page fault.
//!
//! [`Entry::Probe`] is a `hlt` that `LSTAR` points at while the start-up probe asks
//! whether `syscall` reaches ring 0.

use std::arch::global_asm;
use std::mem::offset_of;

use super::layout::{selector, SaveArea, EXIT_PORT, EXIT_PORT_U8};
use crate::Registers;

/// `MSR_KERNEL_GS_BASE`.
pub(super) const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

macro_rules! reg {
    ($field:ident) => {
        offset_of!(SaveArea, regs) + offset_of!(Registers, $field)
    };
}

// All memory operands are GS-relative absolute displacements (`%gs:N`): after `swapgs`, GS
// is the vCPU's save area. Jumps are relative, so the blob runs wherever it is copied.
global_asm!(
    ".pushsection .rodata.bulwark_trampoline, \"a\"",
    ".balign 4096",
    ".globl bulwark_trampoline_start",
    "bulwark_trampoline_start:",
    // --- Architectural syscall entry (LSTAR). IF, TF, DF, AC are masked by SFMASK. ---
    ".globl bulwark_tramp_syscall",
    "bulwark_tramp_syscall:",
    "swapgs",
    "movq %rsp, %gs:{rsp}",
    "movq %gs:{kernel_rsp}, %rsp",
    "movq %rax, %gs:{rax}",
    "movq %rax, %gs:{orig_rax}",
    "movq %rcx, %gs:{rip}",
    "movq %rcx, %gs:{rcx}",
    "movq %r11, %gs:{rflags}",
    "movq %r11, %gs:{r11}",
    "movq ${kind_syscall}, %gs:{kind}",
    "jmp 1f",
    // --- Architectural exception entry; the stub pushed the vector (and a 0 error code
    // where the CPU pushes none). Stack: vector, error, rip, cs, rflags, rsp, ss. ---
    ".globl bulwark_tramp_exception_common",
    "bulwark_tramp_exception_common:",
    // A fault in ring 0 is a trampoline bug: stop without touching GS.
    "testb $3, 24(%rsp)",
    "jz bulwark_tramp_kernel_fault",
    "swapgs",
    "movq %rax, %gs:{rax}",
    "movq %rcx, %gs:{rcx}",
    "movq %r11, %gs:{r11}",
    "popq %rax",
    "movq %rax, %gs:{vector}",
    "popq %rax",
    "movq %rax, %gs:{error_code}",
    "popq %rax",
    "movq %rax, %gs:{rip}",
    "popq %rax",
    "popq %rax",
    "movq %rax, %gs:{rflags}",
    "popq %rax",
    "movq %rax, %gs:{rsp}",
    "popq %rax",
    "movq %cr2, %rax",
    "movq %rax, %gs:{cr2}",
    "movq $-1, %gs:{orig_rax}",
    "movq ${kind_exception}, %gs:{kind}",
    // --- Common: save the rest, the FS/GS bases, and exit to the Sentry. ---
    "1:",
    "movq %rbx, %gs:{rbx}",
    "movq %rdx, %gs:{rdx}",
    "movq %rsi, %gs:{rsi}",
    "movq %rdi, %gs:{rdi}",
    "movq %rbp, %gs:{rbp}",
    "movq %r8, %gs:{r8}",
    "movq %r9, %gs:{r9}",
    "movq %r10, %gs:{r10}",
    "movq %r12, %gs:{r12}",
    "movq %r13, %gs:{r13}",
    "movq %r14, %gs:{r14}",
    "movq %r15, %gs:{r15}",
    "rdfsbase %rax",
    "movq %rax, %gs:{fs_base}",
    // After swapgs the user's GS base is in MSR_KERNEL_GS_BASE.
    "movl ${msr_kgs}, %ecx",
    "rdmsr",
    "shlq $32, %rdx",
    "orq %rdx, %rax",
    "movq %rax, %gs:{gs_base}",
    "outb %al, ${port}",
    // --- The Sentry resumes here (a fresh vCPU starts here too). ---
    ".globl bulwark_tramp_resume",
    "bulwark_tramp_resume:",
    "movq %gs:{cr3}, %rax",
    "movq %cr3, %rdx",
    "cmpq %rax, %rdx",
    "jne 2f",
    "cmpq $0, %gs:{flush}",
    "je 3f",
    "2:",
    "movq %rax, %cr3",
    "movq $0, %gs:{flush}",
    "3:",
    "movq %gs:{fs_base}, %rax",
    "wrfsbase %rax",
    "movq %gs:{gs_base}, %rax",
    "movq %rax, %rdx",
    "shrq $32, %rdx",
    "movl ${msr_kgs}, %ecx",
    "wrmsr",
    "movq %gs:{kernel_rsp}, %rsp",
    "pushq ${user_ss}",
    "pushq %gs:{rsp}",
    "pushq %gs:{rflags}",
    "pushq ${user_cs}",
    "pushq %gs:{rip}",
    "movq %gs:{rax}, %rax",
    "movq %gs:{rbx}, %rbx",
    "movq %gs:{rcx}, %rcx",
    "movq %gs:{rdx}, %rdx",
    "movq %gs:{rsi}, %rsi",
    "movq %gs:{rdi}, %rdi",
    "movq %gs:{rbp}, %rbp",
    "movq %gs:{r8}, %r8",
    "movq %gs:{r9}, %r9",
    "movq %gs:{r10}, %r10",
    "movq %gs:{r11}, %r11",
    "movq %gs:{r12}, %r12",
    "movq %gs:{r13}, %r13",
    "movq %gs:{r14}, %r14",
    "movq %gs:{r15}, %r15",
    "swapgs",
    "iretq",
    ".globl bulwark_tramp_kernel_fault",
    "bulwark_tramp_kernel_fault:",
    "hlt",
    "jmp bulwark_tramp_kernel_fault",
    // --- Start-up probe: LSTAR points here; reaching it at all means ring 0. ---
    ".globl bulwark_tramp_probe",
    "bulwark_tramp_probe:",
    "hlt",
    // --- TLB shootdown for shadow-paging hosts (run by the maintenance vCPU, ring 0):
    // rbx = list of (physmap address, entry count) pairs, rdx = pairs. Copies each run of
    // page-table entries onto itself: the guest writes make KVM drop its shadow of them. ---
    ".globl bulwark_tramp_rewrite",
    "bulwark_tramp_rewrite:",
    "cld",
    "5:",
    "testq %rdx, %rdx",
    "jz 6f",
    "movq (%rbx), %rsi",
    "movq %rsi, %rdi",
    "movq 8(%rbx), %rcx",
    "rep movsq",
    "addq $16, %rbx",
    "decq %rdx",
    "jmp 5b",
    "6:",
    ".globl bulwark_tramp_rewrite_done",
    "bulwark_tramp_rewrite_done:",
    "hlt",
    // --- Benchmark of the bare exit: an endless `out` loop (ring 0 copy). ---
    ".globl bulwark_tramp_out_loop",
    "bulwark_tramp_out_loop:",
    "outb %al, ${port}",
    "jmp bulwark_tramp_out_loop",
    // --- PVM exception entries: vector n is the n-th hlt. ---
    ".balign 16",
    ".globl bulwark_tramp_pvm_stubs",
    "bulwark_tramp_pvm_stubs:",
    ".rept 256",
    "hlt",
    ".endr",
    // --- Architectural exception stubs, 16 bytes apart. ---
    ".balign 16",
    ".globl bulwark_tramp_arch_stubs",
    "bulwark_tramp_arch_stubs:",
    ".set bulwark_vec, 0",
    ".rept 256",
    ".balign 16",
    ".if (bulwark_vec != 8) && ((bulwark_vec < 10) || (bulwark_vec > 14)) && (bulwark_vec != 17) && (bulwark_vec != 21) && (bulwark_vec != 29) && (bulwark_vec != 30)",
    "pushq $0",
    ".endif",
    "pushq $bulwark_vec",
    "jmp bulwark_tramp_exception_common",
    ".set bulwark_vec, bulwark_vec + 1",
    ".endr",
    ".globl bulwark_trampoline_end",
    "bulwark_trampoline_end:",
    ".popsection",
    rax = const reg!(rax),
    rbx = const reg!(rbx),
    rcx = const reg!(rcx),
    rdx = const reg!(rdx),
    rsi = const reg!(rsi),
    rdi = const reg!(rdi),
    rbp = const reg!(rbp),
    rsp = const reg!(rsp),
    r8 = const reg!(r8),
    r9 = const reg!(r9),
    r10 = const reg!(r10),
    r11 = const reg!(r11),
    r12 = const reg!(r12),
    r13 = const reg!(r13),
    r14 = const reg!(r14),
    r15 = const reg!(r15),
    rip = const reg!(rip),
    rflags = const reg!(rflags),
    orig_rax = const reg!(orig_rax),
    fs_base = const reg!(fs_base),
    gs_base = const reg!(gs_base),
    kind = const offset_of!(SaveArea, kind),
    vector = const offset_of!(SaveArea, vector),
    error_code = const offset_of!(SaveArea, error_code),
    cr2 = const offset_of!(SaveArea, cr2),
    cr3 = const offset_of!(SaveArea, cr3),
    flush = const offset_of!(SaveArea, flush),
    kernel_rsp = const offset_of!(SaveArea, kernel_rsp),
    kind_syscall = const SaveArea::KIND_SYSCALL,
    kind_exception = const SaveArea::KIND_EXCEPTION,
    msr_kgs = const MSR_KERNEL_GS_BASE,
    port = const EXIT_PORT,
    user_cs = const selector::USER_CS,
    user_ss = const selector::USER_SS,
    options(att_syntax)
);

extern "C" {
    static bulwark_trampoline_start: u8;
    static bulwark_trampoline_end: u8;
    static bulwark_tramp_syscall: u8;
    #[cfg(test)]
    static bulwark_tramp_exception_common: u8;
    static bulwark_tramp_resume: u8;
    static bulwark_tramp_kernel_fault: u8;
    static bulwark_tramp_probe: u8;
    static bulwark_tramp_pvm_stubs: u8;
    static bulwark_tramp_rewrite: u8;
    static bulwark_tramp_out_loop: u8;
    static bulwark_tramp_rewrite_done: u8;
    static bulwark_tramp_arch_stubs: u8;
}

/// Entry points in the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    Syscall,
    /// Only the tests look for it (the stubs jump there).
    #[cfg(test)]
    ExceptionCommon,
    Resume,
    KernelFault,
    Probe,
    PvmStubs,
    ArchStubs,
    Rewrite,
    RewriteDone,
    OutLoop,
}

/// `out %al, $EXIT_PORT; jmp .-4`: the bare-exit benchmark loop, for ring 3.
pub(super) const OUT_LOOP: [u8; 4] = [0xe6, EXIT_PORT_U8, 0xeb, 0xfc];

/// Bytes between two architectural exception stubs.
pub(super) const ARCH_STUB_SIZE: u64 = 16;

/// The blob: copy it to the trampoline pages.
pub(super) fn code() -> &'static [u8] {
    let start = &raw const bulwark_trampoline_start;
    let end = &raw const bulwark_trampoline_end;
    let len = end as usize - start as usize;
    // SAFETY: both symbols bracket the blob the global_asm! above emitted into a read-only
    // section of this binary, which lives as long as the program.
    unsafe { std::slice::from_raw_parts(start, len) }
}

/// Offset of `entry` from the start of the blob.
pub(super) fn offset(entry: Entry) -> u64 {
    let start = &raw const bulwark_trampoline_start;
    let at = match entry {
        Entry::Syscall => &raw const bulwark_tramp_syscall,
        #[cfg(test)]
        Entry::ExceptionCommon => &raw const bulwark_tramp_exception_common,
        Entry::Resume => &raw const bulwark_tramp_resume,
        Entry::KernelFault => &raw const bulwark_tramp_kernel_fault,
        Entry::Probe => &raw const bulwark_tramp_probe,
        Entry::PvmStubs => &raw const bulwark_tramp_pvm_stubs,
        Entry::ArchStubs => &raw const bulwark_tramp_arch_stubs,
        Entry::Rewrite => &raw const bulwark_tramp_rewrite,
        Entry::RewriteDone => &raw const bulwark_tramp_rewrite_done,
        Entry::OutLoop => &raw const bulwark_tramp_out_loop,
    };
    (at as usize - start as usize) as u64
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // offsets in a two-page blob
mod tests {
    use super::*;
    use crate::kvm::layout::has_error_code;

    #[test]
    fn blob_layout() {
        let code = code();
        assert!(code.len() as u64 <= super::super::layout::TRAMPOLINE_PAGES * 4096);
        // syscall entry starts with swapgs (0f 01 f8).
        let at = |e| offset(e) as usize;
        assert_eq!(at(Entry::Syscall), 0);
        assert_eq!(
            &code[at(Entry::Syscall)..at(Entry::Syscall) + 3],
            [0x0f, 0x01, 0xf8]
        );
        // The resume entry directly follows the exit `out %al, $port` (e6 10).
        let resume = at(Entry::Resume);
        assert_eq!(&code[resume - 2..resume], [0xe6, EXIT_PORT_U8]);
        // The path back ends in swapgs; iretq (0f 01 f8 48 cf).
        let fault = at(Entry::KernelFault);
        assert_eq!(&code[fault - 5..fault], [0x0f, 0x01, 0xf8, 0x48, 0xcf]);
        assert_eq!(code[fault], 0xf4);
        assert_eq!(code[at(Entry::Probe)], 0xf4);
        assert_eq!(code[at(Entry::RewriteDone)], 0xf4);
        let out_loop = at(Entry::OutLoop);
        assert_eq!(&code[out_loop..out_loop + 2], &OUT_LOOP[..2]);
        // rep movsq (f3 48 a5) in the rewrite loop.
        let rewrite = &code[at(Entry::Rewrite)..at(Entry::RewriteDone)];
        assert!(rewrite.windows(3).any(|w| w == [0xf3, 0x48, 0xa5]));
        // 256 hlts.
        let pvm = at(Entry::PvmStubs);
        assert!(code[pvm..pvm + 256].iter().all(|&b| b == 0xf4));
    }

    #[test]
    fn arch_stubs_push_vector_and_error_code() {
        let code = code();
        let base = offset(Entry::ArchStubs);
        let common = offset(Entry::ExceptionCommon) as i64;
        for v in 0..=255u8 {
            let stub = (base + u64::from(v) * ARCH_STUB_SIZE) as usize;
            let mut at = stub;
            if !has_error_code(v) {
                assert_eq!(&code[at..at + 2], [0x6a, 0x00], "vector {v}: push $0");
                at += 2;
            }
            // push imm8 (6a) or imm32 (68) of the vector.
            let pushed = match code[at] {
                0x6a => {
                    at += 2;
                    i64::from(code[at - 1] as i8)
                }
                0x68 => {
                    at += 5;
                    i64::from(i32::from_le_bytes(code[at - 4..at].try_into().unwrap()))
                }
                other => panic!("vector {v}: unexpected opcode {other:#x}"),
            };
            assert_eq!(pushed, i64::from(v), "vector {v}");
            // jmp rel32 (e9) or rel8 (eb) to exception_common.
            let target = match code[at] {
                0xe9 => {
                    at as i64
                        + 5
                        + i64::from(i32::from_le_bytes(code[at + 1..at + 5].try_into().unwrap()))
                }
                0xeb => at as i64 + 2 + i64::from(code[at + 1] as i8),
                other => panic!("vector {v}: unexpected opcode {other:#x}"),
            };
            assert_eq!(target, common, "vector {v}");
        }
        assert!(base as usize + 255 * ARCH_STUB_SIZE as usize + 7 <= code.len());
    }

    #[test]
    fn save_area_offsets_are_gs_displacements() {
        // `movq %rsp, %gs:OFF` right after swapgs: 65 48 89 24 25 <disp32>.
        let code = code();
        let at = offset(Entry::Syscall) as usize + 3;
        assert_eq!(&code[at..at + 5], [0x65, 0x48, 0x89, 0x24, 0x25]);
        let disp = u32::from_le_bytes(code[at + 5..at + 9].try_into().unwrap());
        assert_eq!(disp as usize, reg!(rsp));
    }
}
