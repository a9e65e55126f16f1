//! The x86-64 signal frame (`struct rt_sigframe`): what a handler finds on its stack, and
//! what `rt_sigreturn` restores from.
//!
//! Layout, from the frame's start: the return address (`sa_restorer`), the `ucontext`
//! (flags, link, `uc_stack`, `sigcontext`, mask) and the `siginfo`; the XSAVE image of the
//! FPU state lies above it, 64-byte aligned, pointed at by `sigcontext.fpstate`.

use std::sync::OnceLock;

use platform::{
    FpuState, Registers, FPU_STATE_SIZE, RFLAGS_FIXED, USER_CS, USER_RFLAGS_MASK, USER_SS,
};

use super::signal::{SigInfo, SigSet, StackT};
use crate::errno::{Errno, SysResult};
use crate::mm::{MemoryManager, UserAddr};

const UC_FP_XSTATE: u64 = 0x1;
const UC_SIGCONTEXT_SS: u64 = 0x2;
const UC_STRICT_RESTORE_SS: u64 = 0x4;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// Offsets in the frame.
const UC: usize = 8;
const UC_STACK: usize = UC + 16;
const MCONTEXT: usize = UC + 40;
const UC_SIGMASK: usize = MCONTEXT + 256;
const INFO: usize = UC_SIGMASK + 8;
const FRAME_SIZE: usize = INFO + 128;

/// The size of the user XSAVE image and the features it may hold (CPUID leaf 0xD).
fn xstate() -> (usize, u64) {
    static XSTATE: OnceLock<(usize, u64)> = OnceLock::new();
    *XSTATE.get_or_init(|| {
        let leaf = std::arch::x86_64::__cpuid_count(0xd, 0);
        let size = usize::try_from(leaf.ebx)
            .unwrap_or(FPU_STATE_SIZE)
            .clamp(576, FPU_STATE_SIZE);
        (size, u64::from(leaf.eax) | (u64::from(leaf.edx) << 32))
    })
}

/// What `rt_sigreturn` needs back besides registers.
pub struct Restored {
    pub mask: SigSet,
    pub stack: StackT,
}

/// Pushes a frame for a handler and points `regs` at it.
#[allow(clippy::too_many_arguments)]
pub fn push(
    mm: &MemoryManager,
    regs: &mut Registers,
    fpu: &FpuState,
    info: &SigInfo,
    handler: u64,
    restorer: u64,
    old_mask: SigSet,
    stack_top: u64,
    altstack: StackT,
) -> SysResult<()> {
    let (xsize, features) = xstate();
    let fp = (stack_top
        .checked_sub(xsize as u64 + 4)
        .ok_or(Errno::EFAULT)?)
        & !63;
    let frame = (fp.checked_sub(FRAME_SIZE as u64).ok_or(Errno::EFAULT)? & !15) - 8;

    let mut image = fpu.as_bytes()[..xsize].to_vec();
    image[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    image[468..472].copy_from_slice(&u32::try_from(xsize + 4).unwrap_or(0).to_le_bytes());
    image[472..480].copy_from_slice(&features.to_le_bytes());
    image[480..484].copy_from_slice(&u32::try_from(xsize).unwrap_or(0).to_le_bytes());
    image.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    mm.copy_out(UserAddr::new(fp), &image)?;

    let mut f = vec![0u8; FRAME_SIZE];
    let put = |f: &mut Vec<u8>, at: usize, v: u64| f[at..at + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut f, 0, restorer);
    put(
        &mut f,
        UC,
        UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
    );
    put(&mut f, UC_STACK, altstack.sp);
    f[UC_STACK + 8..UC_STACK + 12].copy_from_slice(&altstack.flags.to_le_bytes());
    put(&mut f, UC_STACK + 16, altstack.size);
    let gprs = [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.rflags,
    ];
    for (i, v) in gprs.iter().enumerate() {
        put(&mut f, MCONTEXT + 8 * i, *v);
    }
    // cs, gs, fs, ss as four u16.
    let segs = USER_CS | (USER_SS << 48);
    put(&mut f, MCONTEXT + 144, segs);
    put(&mut f, MCONTEXT + 184, fp);
    put(&mut f, UC_SIGMASK, old_mask.0);
    f[INFO..INFO + 128].copy_from_slice(&info.bytes());
    if info.addr != 0 {
        put(&mut f, MCONTEXT + 176, info.addr); // cr2
    }
    mm.copy_out(UserAddr::new(frame), &f)?;

    regs.rsp = frame;
    regs.rip = handler;
    regs.rdi = u64::try_from(info.signo).unwrap_or(0);
    regs.rsi = frame + INFO as u64;
    regs.rdx = frame + UC as u64;
    regs.rax = 0;
    // The handler runs with DF and TF clear, as Linux leaves it.
    regs.rflags &= !(0x400 | 0x100);
    Ok(())
}

/// Restores registers and FPU state from the frame `rt_sigreturn` finds at `regs.rsp - 8`
/// (the handler's `ret` popped the return address).
pub fn restore(
    mm: &MemoryManager,
    regs: &mut Registers,
    fpu: &mut FpuState,
) -> SysResult<Restored> {
    let frame = regs.rsp.checked_sub(8).ok_or(Errno::EFAULT)?;
    let mut f = vec![0u8; FRAME_SIZE];
    mm.copy_in(UserAddr::new(frame), &mut f)?;
    let get = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&f[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let m = |i: usize| get(MCONTEXT + 8 * i);
    regs.r8 = m(0);
    regs.r9 = m(1);
    regs.r10 = m(2);
    regs.r11 = m(3);
    regs.r12 = m(4);
    regs.r13 = m(5);
    regs.r14 = m(6);
    regs.r15 = m(7);
    regs.rdi = m(8);
    regs.rsi = m(9);
    regs.rbp = m(10);
    regs.rbx = m(11);
    regs.rdx = m(12);
    regs.rax = m(13);
    regs.rcx = m(14);
    regs.rsp = m(15);
    regs.rip = m(16);
    regs.rflags = (regs.rflags & !USER_RFLAGS_MASK) | (m(17) & USER_RFLAGS_MASK) | RFLAGS_FIXED;
    regs.orig_rax = u64::MAX;

    let fp = get(MCONTEXT + 184);
    let (xsize, features) = xstate();
    if fp == 0 {
        *fpu = *FpuState::new_initial();
    } else {
        let mut image = vec![0u8; xsize];
        mm.copy_in(UserAddr::new(fp), &mut image)?;
        sanitize(&mut image, features)?;
        fpu.as_bytes_mut()[..xsize].copy_from_slice(&image);
    }

    let stack = StackT {
        sp: get(UC_STACK),
        flags: i32::from_le_bytes([
            f[UC_STACK + 8],
            f[UC_STACK + 9],
            f[UC_STACK + 10],
            f[UC_STACK + 11],
        ]),
        pad: 0,
        size: get(UC_STACK + 16),
    };
    Ok(Restored {
        mask: SigSet(get(UC_SIGMASK)),
        stack,
    })
}

/// Makes an XSAVE image from the application safe to load: reserved MXCSR bits would
/// fault in `xrstor` (Linux refuses such a frame with SIGSEGV: so do we, by `EFAULT`), and
/// the header may only name features the CPU has, in the standard format.
fn sanitize(image: &mut [u8], features: u64) -> SysResult<()> {
    let mxcsr = u32::from_le_bytes([image[24], image[25], image[26], image[27]]);
    if mxcsr & !0xffff != 0 {
        return Err(Errno::EFAULT);
    }
    // MXCSR_MASK is the CPU's, not the frame's.
    image[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
    let mut bv = [0u8; 8];
    bv.copy_from_slice(&image[512..520]);
    let bv = u64::from_le_bytes(bv) & features;
    image[512..520].copy_from_slice(&bv.to_le_bytes());
    // XCOMP_BV and the reserved header bytes must be zero.
    image[520..576].fill(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_offsets_match_linux() {
        // struct rt_sigframe: pretcode, ucontext (304 bytes), siginfo (128 bytes).
        assert_eq!(UC_SIGMASK - UC, 296);
        assert_eq!(INFO, 8 + 304);
        assert_eq!(FRAME_SIZE, 440);
    }

    #[test]
    fn sanitize_refuses_bad_mxcsr_and_masks_features() {
        let mut image = vec![0u8; 1024];
        image[24..28].copy_from_slice(&0x1_0000u32.to_le_bytes());
        assert_eq!(sanitize(&mut image, 7), Err(Errno::EFAULT));
        image[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        image[512..520].copy_from_slice(&u64::MAX.to_le_bytes());
        image[520] = 0xff;
        sanitize(&mut image, 7).unwrap();
        assert_eq!(image[512], 7);
        assert_eq!(image[520], 0);
    }
}
