//! Where application code runs.
//!
//! A [`Platform`] gives the Sentry two things: address spaces ([`AddressSpace`]), built only
//! from ranges of the one [`MemoryFile`] that backs all application memory, and execution
//! contexts ([`Context`]), which run application code in an address space until something
//! needs the kernel and say why ([`Exit`]).
//!
//! Two implementations: [`kvm`] (application code in guest ring 3 of a KVM virtual machine)
//! and [`systrap`] (application code in a seccomp-trapped stub process). Both pass the same
//! conformance suite (`tests/conformance.rs`).
//!
//! Almost all `unsafe` code of the project lives in this crate, behind the safe types here.

use std::any::Any;
use std::sync::Arc;

pub mod kvm;
pub mod memory_file;
pub mod systrap;

pub use memory_file::{FileRange, MemoryFile, MemoryFileError, PAGE_SIZE};

bitflags::bitflags! {
    /// Permissions of a mapping in an [`AddressSpace`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Perms: u8 {
        const READ = 1;
        const WRITE = 2;
        const EXEC = 4;
    }
}

/// What a faulting access tried to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Exec,
}

/// Why [`Context::switch`] returned to the Sentry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The application executed `syscall`. `regs.orig_rax` (and `regs.rax`) hold the
    /// number, `regs.rip` points after the instruction, and `regs.rcx`/`regs.r11` hold
    /// what the `syscall` instruction put there (the return address and RFLAGS). To
    /// return a value, write it to `regs.rax` and switch again.
    Syscall,
    /// An access to `addr` faulted. `present` is true when a translation existed but did
    /// not permit the access (a protection fault), false when nothing was mapped.
    /// `regs.rip` is the faulting instruction; switching again retries it.
    PageFault {
        addr: u64,
        access: Access,
        present: bool,
    },
    /// A CPU exception other than a page fault: `vector` is the x86 vector (0 = #DE,
    /// 3 = #BP, 6 = #UD, 13 = #GP, …) and `error_code` the code the CPU pushed, or 0.
    /// For traps (#BP) `regs.rip` points after the instruction, for faults at it.
    Exception { vector: u8, error_code: u64 },
    /// Another thread called [`Interrupt::interrupt`] on this context's interrupter.
    Interrupted,
}

/// x86 exception vectors the platforms report in [`Exit::Exception`].
pub mod vector {
    pub const DIVIDE_ERROR: u8 = 0;
    pub const DEBUG: u8 = 1;
    pub const BREAKPOINT: u8 = 3;
    pub const OVERFLOW: u8 = 4;
    pub const BOUND_RANGE: u8 = 5;
    pub const INVALID_OPCODE: u8 = 6;
    pub const DEVICE_NOT_AVAILABLE: u8 = 7;
    pub const STACK_FAULT: u8 = 12;
    pub const GENERAL_PROTECTION: u8 = 13;
    pub const PAGE_FAULT: u8 = 14;
    pub const X87_FLOATING_POINT: u8 = 16;
    pub const ALIGNMENT_CHECK: u8 = 17;
    pub const SIMD_FLOATING_POINT: u8 = 19;
}

/// The application's general-purpose registers, in the layout of Linux's
/// `struct user_regs_struct` (what `PTRACE_GETREGS` returns), so the Sentry can hand them
/// to ptrace and core dumps unchanged.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// The syscall number on [`Exit::Syscall`]; `u64::MAX` otherwise.
    pub orig_rax: u64,
    pub rip: u64,
    /// Reported as the user code selector (0x33); ignored on the way in.
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    /// Reported as the user data selector (0x2b); ignored on the way in.
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

const _: () = assert!(std::mem::size_of::<Registers>() == 27 * 8);

/// Linux's user code and data selectors, as applications see them in `cs`/`ss`.
pub const USER_CS: u64 = 0x33;
pub const USER_SS: u64 = 0x2b;

/// RFLAGS bits the application may change (as Linux's `FLAG_MASK`): CF, PF, AF, ZF, SF, TF,
/// DF, OF, NT, AC, ID. IF is always set and IOPL always 0 in application mode.
pub const USER_RFLAGS_MASK: u64 = 0x0025_4dd5;
/// RFLAGS bit 1 is always set; IF (bit 9) is set while application code runs.
pub const RFLAGS_FIXED: u64 = 0x202;

impl Registers {
    /// Registers for a new thread that starts at `rip` with stack `rsp`.
    pub fn new(rip: u64, rsp: u64) -> Self {
        Self {
            rip,
            rsp,
            cs: USER_CS,
            ss: USER_SS,
            rflags: RFLAGS_FIXED,
            orig_rax: u64::MAX,
            ..Self::default()
        }
    }
}

/// Size of an [`FpuState`]: the standard (non-compacted) XSAVE area, as `KVM_GET_XSAVE`
/// returns it and as Linux puts it on a signal frame.
pub const FPU_STATE_SIZE: usize = 4096;

/// The FPU/SSE/AVX state of one application thread, in the standard (non-compacted) XSAVE
/// format: the 512-byte legacy FXSAVE region, the 64-byte XSAVE header at 512, then the
/// extended components at their CPUID-given offsets.
#[repr(C, align(64))]
#[derive(Clone)]
pub struct FpuState {
    bytes: [u8; FPU_STATE_SIZE],
}

impl FpuState {
    /// Offset of MXCSR in the legacy region.
    pub const MXCSR_OFFSET: usize = 24;
    /// Offset of the XSAVE header (XSTATE_BV first).
    pub const XSAVE_HEADER_OFFSET: usize = 512;

    /// The state after `execve`: x87 control word 0x37f, MXCSR 0x1f80, everything else zero,
    /// XSTATE_BV saying only x87 and SSE state is present.
    pub fn new_initial() -> Box<Self> {
        let mut state = Box::new(Self {
            bytes: [0; FPU_STATE_SIZE],
        });
        state.bytes[0..2].copy_from_slice(&0x037f_u16.to_le_bytes());
        state.bytes[Self::MXCSR_OFFSET..Self::MXCSR_OFFSET + 4]
            .copy_from_slice(&0x1f80_u32.to_le_bytes());
        // MXCSR_MASK: the bits of MXCSR the CPU supports (all of the architectural ones).
        state.bytes[28..32].copy_from_slice(&0xffff_u32.to_le_bytes());
        state.bytes[Self::XSAVE_HEADER_OFFSET..Self::XSAVE_HEADER_OFFSET + 8]
            .copy_from_slice(&3_u64.to_le_bytes());
        state
    }

    pub fn as_bytes(&self) -> &[u8; FPU_STATE_SIZE] {
        &self.bytes
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8; FPU_STATE_SIZE] {
        &mut self.bytes
    }
}

impl std::fmt::Debug for FpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpuState").finish_non_exhaustive()
    }
}

/// Errors of the platform layer.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("Memory file error")]
    MemoryFile(#[from] MemoryFileError),
    #[error("KVM platform error")]
    Kvm(#[from] kvm::KvmError),
    #[error("Systrap platform error")]
    Systrap(#[from] systrap::SystrapError),
    #[error("Address range {addr:#x}+{len:#x} is not page-aligned or not in the user half")]
    BadRange { addr: u64, len: u64 },
    #[error("Address space belongs to another platform")]
    WrongAddressSpace,
    #[error("Unknown platform {0:?} (known: kvm, systrap)")]
    UnknownPlatform(String),
}

/// A machine on which application code can run.
pub trait Platform: Send + Sync {
    /// `"kvm"` or `"systrap"`.
    fn name(&self) -> &'static str;

    /// The memory file every address space of this platform maps from.
    fn memory_file(&self) -> &Arc<MemoryFile>;

    /// One past the highest user address an address space accepts.
    fn max_user_address(&self) -> u64;

    /// A new, empty address space.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError>;

    /// A new execution context (one per application thread), with the initial FPU state.
    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError>;

    /// Whether application code reads the host's time-stamp counter (`rdtsc` gives what it
    /// gives in the Sentry), so the vDSO may turn TSC readings into time with the Sentry's
    /// calibration. False where a virtual TSC may be offset or scaled.
    fn host_tsc(&self) -> bool {
        false
    }

    /// Whether application code runs on the host thread that calls [`Context::switch`]
    /// (KVM: the vCPU is that thread), so that thread's CPU time includes the
    /// application's. False where it runs in another process (systrap's stubs).
    fn runs_on_caller_thread(&self) -> bool {
        false
    }
}

/// The CPU time host thread `tid` of this process has used (`None` if it is gone).
pub fn thread_cpu_time(tid: i32) -> Option<std::time::Duration> {
    // Linux's clock ID for a thread's CPU time: the complemented TID above the
    // per-thread bit and CPUCLOCK_SCHED.
    let clock: libc::clockid_t = ((!tid) << 3) | 4 | 2;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill; the clock ID is only read.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    (r == 0).then(|| {
        std::time::Duration::new(
            ts.tv_sec.unsigned_abs(),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    })
}

/// The host's time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads a counter; it has no memory effects and exists on every x86-64
    // CPU this crate runs on.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// An application address space. All changes take effect before the call returns, for
/// every context that runs in it (no stale translation survives an `unmap` or `protect`).
/// Ranges must be page-aligned and lie below [`Platform::max_user_address`].
/// One range for [`AddressSpace::map_many`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapRange {
    pub addr: u64,
    pub len: u64,
    pub offset: u64,
    pub perms: Perms,
}

pub trait AddressSpace: Send + Sync + Any {
    /// Maps `len` bytes of the memory file at `offset` to `addr` with `perms`, replacing
    /// whatever was mapped there.
    fn map(&self, addr: u64, len: u64, offset: u64, perms: Perms) -> Result<(), PlatformError>;

    /// Maps several ranges, each as [`AddressSpace::map`] does; a platform that can do
    /// them in one go (systrap: one request to the stub) does.
    fn map_many(&self, ranges: &[MapRange]) -> Result<(), PlatformError> {
        for r in ranges {
            self.map(r.addr, r.len, r.offset, r.perms)?;
        }
        Ok(())
    }

    /// Removes every mapping in `[addr, addr + len)`. Unmapped holes are not an error.
    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError>;

    /// Changes the permissions of the mapped pages in `[addr, addr + len)`; holes stay
    /// unmapped.
    fn protect(&self, addr: u64, len: u64, perms: Perms) -> Result<(), PlatformError>;

    /// For a platform to find its own type behind the trait object.
    fn as_any(&self) -> &dyn Any;
}

/// Makes a running context return [`Exit::Interrupted`]. If the context is not running,
/// its next [`Context::switch`] returns `Interrupted` at once (the request is kept, not
/// lost); one request causes one `Interrupted` exit.
pub trait Interrupt: Send + Sync {
    fn interrupt(&self);
}

/// A handle another thread uses to interrupt a context.
pub type Interrupter = Arc<dyn Interrupt>;

/// One application thread's execution state on the platform: the FPU state and whatever
/// the platform needs to run it (a leased vCPU, a stub thread).
pub trait Context: Send {
    /// Runs application code in `space`, starting from `regs`, until an [`Exit`]. On
    /// return `regs` holds the application's registers at that point.
    fn switch(
        &mut self,
        space: &dyn AddressSpace,
        regs: &mut Registers,
    ) -> Result<Exit, PlatformError>;

    /// The thread's FPU/SSE/AVX state, as of the last exit. A platform may fetch it only
    /// when asked (most exits never need it), hence `&mut`.
    fn fpu(&mut self) -> &FpuState;

    /// Changes the FPU state the next [`Context::switch`] resumes with.
    fn fpu_mut(&mut self) -> &mut FpuState;

    /// A handle that interrupts this context from another thread.
    fn interrupter(&self) -> Interrupter;
}

/// Creates the platform called `name` (`"kvm"` or `"systrap"`) over `memory`.
pub fn new_platform(
    name: &str,
    memory: Arc<MemoryFile>,
) -> Result<Arc<dyn Platform>, PlatformError> {
    match name {
        "kvm" => Ok(Arc::new(kvm::Kvm::new(memory)?)),
        "systrap" => Ok(Arc::new(systrap::Systrap::new(memory)?)),
        _ => Err(PlatformError::UnknownPlatform(name.to_string())),
    }
}

/// The platform to use when the user names none, and why: the fastest that works here.
///
/// The rule: KVM where it runs application code the architectural way (hardware VMX/SVM:
/// one VM exit per syscall); otherwise systrap, whose handoff through shared memory costs
/// about 2 µs against the 60 µs or more of every exit on a pagetable-based KVM such as
/// `kvm_pvm`; KVM in any form when systrap cannot run.
pub fn default_platform() -> Option<(&'static str, &'static str)> {
    let kvm = kvm::Kvm::probe().is_ok();
    if kvm && kvm_is_architectural() {
        return Some(("kvm", "hardware KVM: one VM exit per syscall"));
    }
    if systrap::Systrap::probe().is_ok() {
        return Some((
            "systrap",
            if kvm {
                "KVM here is pagetable-based, where every exit costs more than a systrap handoff"
            } else {
                "no usable /dev/kvm"
            },
        ));
    }
    kvm.then_some(("kvm", "systrap cannot run here"))
}

/// Whether a VM on this host takes the architectural path (a small VM is made to find out).
fn kvm_is_architectural() -> bool {
    let Ok(memory) = MemoryFile::new(16 << 20) else {
        return false;
    };
    kvm::Kvm::new(Arc::new(memory)).is_ok_and(|k| k.path() == kvm::Path::Architectural)
}

/// Which platforms can run on this host, for `--platform` defaults and the tests.
pub fn available() -> Vec<&'static str> {
    let mut names = Vec::new();
    if kvm::Kvm::probe().is_ok() {
        names.push("kvm");
    }
    if systrap::Systrap::probe().is_ok() {
        names.push("systrap");
    }
    names
}
