//! The systrap platform: application code in a seccomp-trapped stub process.
//!
//! In the manner of gVisor's systrap platform, each address space is a host process (a
//! *stub*) that runs nothing of its own but a few hundred bytes of position-independent
//! assembly ([`stub`]). The application's memory in it is the [`MemoryFile`], mapped where
//! the Sentry says; every syscall of the application traps (`SECCOMP_RET_TRAP`) into the
//! stub's SIGSYS handler, which parks the thread and hands its signal frame to the Sentry
//! through shared memory. Faults arrive the same way (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
//! SIGTRAP), and so do interrupts (a signal the stub's kicker thread sends on request).
//!
//! How a stub starts (robust against the Sentry being a large multi-threaded process): a
//! long-lived spawner thread `clone`s the Sentry without `CLONE_VM`, in new user, PID,
//! network, IPC, mount, UTS and cgroup namespaces. The child runs a handful of instructions
//! of inline assembly on registers only — no Rust, no libc — that map the stub file's code
//! at [`stub::STUB_BASE`] and jump there. The stub then maps its data pages, unmaps
//! everything else it inherited (so none of the Sentry's memory, libc or vDSO stays
//! reachable), closes every descriptor but the memory file, sets `PR_SET_PDEATHSIG` and
//! `PR_SET_NO_NEW_PRIVS`, ignores every signal but its own handlers', installs its seccomp
//! filter ([`seccomp`]), and only then reports ready. Application threads are created
//! later, on demand, by the stub's main thread; each adds a second, narrower filter before
//! it can run application code.
//!
//! A syscall round trip: the application's `syscall` traps; the handler (on the thread's
//! signal stack, which lies in the shared stub file) records where the kernel put the
//! `ucontext`, saves FS/GS base, marks the slot stopped and spins, then sleeps on a futex.
//! The Sentry thread, spinning or sleeping likewise, reads the registers and the XSAVE
//! area straight from that frame, returns [`Exit::Syscall`]; on the next switch it writes
//! the registers (and, if they changed, the FPU state) back into the frame and releases
//! the thread, whose handler returns through `rt_sigreturn`.
//!
//! Residual risk, as in gVisor: the stub region is mapped in the application's process, so
//! the application can read and write the control page and jump into the stub's code. The
//! per-thread filter keeps an application thread that does so from mapping, unmapping,
//! protecting, cloning or signalling (those trap like any other syscall of the
//! application). It can still forge requests for the stub's main thread, which checks each
//! range in registers (no request reaches the stub region, so the stub's code and filters
//! stay its own) but cannot tell which memory-file offsets the Sentry meant to grant: a hostile application could map other parts of the memory file (other address
//! spaces' pages) into itself. No host file, syscall or process becomes reachable that way.
//! The Sentry trusts nothing it reads from the stub region: every pointer and size from
//! there is bounds-checked against the slot it belongs to.

mod process;
mod seccomp;
mod stub;

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::{
    Access, AddressSpace, Context, Exit, FpuState, Interrupt, Interrupter, MemoryFile,
    MemoryFileError, Perms, Platform, PlatformError, Registers, FPU_STATE_SIZE, PAGE_SIZE,
    RFLAGS_FIXED, USER_CS, USER_RFLAGS_MASK, USER_SS,
};
use process::{Op, Stub};
use stub::*;

/// Every `clone` flag set this platform passes to the host: the Sentry's spawner clones a
/// stub (in new namespaces, or, where the host refuses them, in none), and a stub, which
/// inherits the Sentry's seccomp filter, clones its kicker and its application threads.
/// The Sentry's own seccomp filter allows exactly these.
pub const HOST_CLONE_FLAGS: [u64; 4] = [
    process::NAMESPACES,
    0,
    KICKER_CLONE_FLAGS,
    THREAD_CLONE_FLAGS,
];

/// Errors of the systrap platform.
#[derive(Debug, thiserror::Error)]
pub enum SystrapError {
    #[error("Systrap is not available: {0}")]
    Unavailable(&'static str),
    #[error("Creating the stub file failed")]
    StubFile(#[source] std::io::Error),
    #[error("Cloning a stub process failed")]
    Clone(#[source] std::io::Error),
    #[error("The systrap spawner thread is gone")]
    Spawner,
    #[error("The stub process died (wait status {status:#x})")]
    StubDied { status: i32 },
    #[error("The stub process did not start in time")]
    StubTimeout,
    #[error("The stub refused an address-space request")]
    Request(#[source] std::io::Error),
    #[error("A stub thread reported a malformed signal frame")]
    BadFrame,
    #[error("The stub process has no free thread slot")]
    TooManyThreads,
}

/// The systrap platform.
pub struct Systrap {
    memory: Arc<MemoryFile>,
    fsgsbase: bool,
    namespaces: bool,
}

impl Systrap {
    /// Whether this platform can run here: seccomp filters with `SECCOMP_RET_TRAP`.
    pub fn probe() -> Result<(), SystrapError> {
        // SAFETY: PR_GET_SECCOMP takes no pointers.
        if unsafe { libc::prctl(libc::PR_GET_SECCOMP) } < 0 {
            return Err(SystrapError::Unavailable("the kernel has no seccomp"));
        }
        let action: u32 = 0x0003_0000; // SECCOMP_RET_TRAP
                                       // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from the pointer, which is live.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                2, // SECCOMP_GET_ACTION_AVAIL
                0,
                std::ptr::from_ref(&action),
            )
        };
        if rc != 0 {
            return Err(SystrapError::Unavailable(
                "SECCOMP_RET_TRAP is not supported",
            ));
        }
        Ok(())
    }

    /// The platform, mapping application memory from `memory`.
    pub fn new(memory: Arc<MemoryFile>) -> Result<Self, SystrapError> {
        Self::probe()?;
        // SAFETY: getauxval has no preconditions.
        let hwcap2 = unsafe { libc::getauxval(libc::AT_HWCAP2) };
        const HWCAP2_FSGSBASE: u64 = 1 << 1;
        Ok(Self {
            memory,
            fsgsbase: hwcap2 & HWCAP2_FSGSBASE != 0,
            namespaces: true,
        })
    }

    /// Makes stubs created from now on save and restore FS/GS base with `arch_prctl`
    /// instead of `rdfsbase`/`wrfsbase`, as on hosts without FSGSBASE (for tests).
    #[doc(hidden)]
    pub fn use_arch_prctl_for_fs_base(&mut self) {
        self.fsgsbase = false;
    }

    /// Makes stubs created from now on share the Sentry's namespaces, as they do (with a
    /// warning) where the host permits no new ones (for tests of that path).
    #[doc(hidden)]
    pub fn without_namespaces(&mut self) {
        self.namespaces = false;
    }

    /// The host PID of the stub process behind `space` (for tests and diagnostics).
    pub fn stub_pid(space: &dyn AddressSpace) -> Option<i32> {
        space
            .as_any()
            .downcast_ref::<SystrapAddressSpace>()
            .map(|s| s.stub.pid())
    }
}

impl Platform for Systrap {
    fn name(&self) -> &'static str {
        "systrap"
    }

    fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.memory
    }

    fn max_user_address(&self) -> u64 {
        STUB_BASE
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        use std::os::fd::AsRawFd;
        let stub = Stub::spawn(self.memory.fd().as_raw_fd(), self.fsgsbase, self.namespaces)?;
        Ok(Arc::new(SystrapAddressSpace {
            stub: Arc::new(stub),
            memory_size: self.memory.size(),
            mappings: Mutex::new(BTreeMap::new()),
        }))
    }

    /// The stub is an ordinary host process: its `rdtsc` is the host's.
    fn host_tsc(&self) -> bool {
        true
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(SystrapContext {
            fpu: FpuState::new_initial(),
            fpu_dirty: true,
            leases: Vec::new(),
            last: None,
            parked: None,
            fpu_extra: 0,
            fpu_stale: false,
            irq: Arc::new(IrqState {
                pending: AtomicBool::new(false),
                target: Mutex::new(None),
            }),
        }))
    }
}

/// An address space: one stub process.
pub struct SystrapAddressSpace {
    stub: Arc<Stub>,
    memory_size: u64,
    /// Mapped ranges (start → end), so `protect` can skip holes as the contract says
    /// (Linux's mprotect stops at the first hole).
    mappings: Mutex<BTreeMap<u64, u64>>,
}

impl SystrapAddressSpace {
    fn check_range(addr: u64, len: u64) -> Result<(), PlatformError> {
        let bad = PlatformError::BadRange { addr, len };
        if !addr.is_multiple_of(PAGE_SIZE) || !len.is_multiple_of(PAGE_SIZE) {
            return Err(bad);
        }
        match addr.checked_add(len) {
            Some(end) if end <= STUB_BASE => Ok(()),
            _ => Err(bad),
        }
    }
}

/// Removes `[start, end)` from a set of ranges, splitting ranges that straddle it.
fn remove_range(map: &mut BTreeMap<u64, u64>, start: u64, end: u64) {
    let overlapping: Vec<(u64, u64)> = map
        .range(..end)
        .rev()
        .take_while(|(_, &e)| e > start)
        .map(|(&s, &e)| (s, e))
        .collect();
    for (s, e) in overlapping {
        map.remove(&s);
        if s < start {
            map.insert(s, start);
        }
        if e > end {
            map.insert(end, e);
        }
    }
}

impl AddressSpace for SystrapAddressSpace {
    fn map(&self, addr: u64, len: u64, offset: u64, perms: Perms) -> Result<(), PlatformError> {
        Self::check_range(addr, len)?;
        if len == 0 {
            return Ok(());
        }
        if !offset.is_multiple_of(PAGE_SIZE)
            || offset.checked_add(len).is_none_or(|e| e > self.memory_size)
        {
            return Err(MemoryFileError::OutOfRange { offset, len }.into());
        }
        let mut mappings = self.mappings.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.stub.request(&[Op {
            kind: OP_MAP,
            prot: u32::from(perms.bits()),
            addr,
            len,
            offset,
        }]);
        // Whatever happened, the old mappings in the range are gone (MAP_FIXED replaces).
        remove_range(&mut mappings, addr, addr + len);
        result?;
        mappings.insert(addr, addr + len);
        Ok(())
    }

    fn map_many(&self, ranges: &[crate::MapRange]) -> Result<(), PlatformError> {
        let mut ops = Vec::with_capacity(ranges.len());
        for r in ranges.iter().filter(|r| r.len > 0) {
            Self::check_range(r.addr, r.len)?;
            if !r.offset.is_multiple_of(PAGE_SIZE)
                || r.offset
                    .checked_add(r.len)
                    .is_none_or(|e| e > self.memory_size)
            {
                return Err(MemoryFileError::OutOfRange {
                    offset: r.offset,
                    len: r.len,
                }
                .into());
            }
            ops.push(Op {
                kind: OP_MAP,
                prot: u32::from(r.perms.bits()),
                addr: r.addr,
                len: r.len,
                offset: r.offset,
            });
        }
        let mut mappings = self.mappings.lock().unwrap_or_else(|e| e.into_inner());
        let result = self.stub.request(&ops);
        for op in &ops {
            remove_range(&mut mappings, op.addr, op.addr + op.len);
        }
        result?;
        for op in &ops {
            mappings.insert(op.addr, op.addr + op.len);
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        Self::check_range(addr, len)?;
        if len == 0 {
            return Ok(());
        }
        let mut mappings = self.mappings.lock().unwrap_or_else(|e| e.into_inner());
        self.stub.request(&[Op {
            kind: OP_UNMAP,
            prot: 0,
            addr,
            len,
            offset: 0,
        }])?;
        remove_range(&mut mappings, addr, addr + len);
        Ok(())
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) -> Result<(), PlatformError> {
        Self::check_range(addr, len)?;
        let end = addr + len;
        let mappings = self.mappings.lock().unwrap_or_else(|e| e.into_inner());
        let ops: Vec<Op> = mappings
            .range(..end)
            .rev()
            .take_while(|(_, &e)| e > addr)
            .map(|(&s, &e)| {
                let (s, e) = (s.max(addr), e.min(end));
                Op {
                    kind: OP_PROTECT,
                    prot: u32::from(perms.bits()),
                    addr: s,
                    len: e - s,
                    offset: 0,
                }
            })
            .collect();
        if !ops.is_empty() {
            self.stub.request(&ops)?;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What an interrupter shares with its context.
struct IrqState {
    pending: AtomicBool,
    /// The stub thread the context runs on while it is switched in.
    target: Mutex<Option<(Arc<Stub>, u32)>>,
}

impl Interrupt for IrqState {
    fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        if let Some((stub, slot)) = &*self.target.lock().unwrap_or_else(|e| e.into_inner()) {
            stub.kick(*slot);
        }
    }
}

/// A stub thread a context owns in one address space.
struct Lease {
    stub: Weak<Stub>,
    id: u64,
    slot: u32,
}

/// An application thread: its FPU state and its stub threads (one per address space it
/// has run in, created on demand).
pub struct SystrapContext {
    fpu: Box<FpuState>,
    /// The FPU state must be written into the next frame: it was changed through
    /// `fpu_mut`, or the frame belongs to a stub thread this context did not last run on.
    fpu_dirty: bool,
    leases: Vec<Lease>,
    /// (stub id, slot) of the last stub thread this context ran on.
    last: Option<(u64, u32)>,
    /// Where the frame of the thread parked by the last exit is.
    parked: Option<(u64, u32, Frame)>,
    /// Extended XSAVE components (bit i = component i ≥ 2) whose bytes in `fpu` may be
    /// non-zero.
    fpu_extra: u64,
    /// The parked thread's frame holds FPU state newer than `fpu`. It is copied out only
    /// when asked for (`fpu`, `fpu_mut`) or before the context moves to another stub
    /// thread: most exits (syscalls, faults) never need it, and the copy crosses ~13
    /// cache lines from the stub's CPU (about a fifth of a syscall round trip).
    fpu_stale: bool,
    irq: Arc<IrqState>,
}

impl Context for SystrapContext {
    fn switch(
        &mut self,
        space: &dyn AddressSpace,
        regs: &mut Registers,
    ) -> Result<Exit, PlatformError> {
        let space = space
            .as_any()
            .downcast_ref::<SystrapAddressSpace>()
            .ok_or(PlatformError::WrongAddressSpace)?;
        let stub = &space.stub;
        self.leases.retain(|l| l.stub.strong_count() > 0);
        let slot = match self.leases.iter().find(|l| l.id == stub.id) {
            Some(l) => l.slot,
            None => {
                let slot = stub.new_thread()?;
                self.leases.push(Lease {
                    stub: Arc::downgrade(stub),
                    id: stub.id,
                    slot,
                });
                slot
            }
        };
        if self.last != Some((stub.id, slot)) {
            // The state is in the frame of the thread the context last ran on (its stub
            // still held, if the address space is alive): move it over.
            self.fetch_fpu();
            self.fpu_dirty = true;
            self.last = Some((stub.id, slot));
        }
        *self.irq.target.lock().unwrap_or_else(|e| e.into_inner()) = Some((stub.clone(), slot));
        let result = self.run(stub, slot, regs);
        *self.irq.target.lock().unwrap_or_else(|e| e.into_inner()) = None;
        result.map_err(PlatformError::from)
    }

    fn fpu(&mut self) -> &FpuState {
        self.fetch_fpu();
        &self.fpu
    }

    fn fpu_mut(&mut self) -> &mut FpuState {
        self.fetch_fpu();
        self.fpu_dirty = true;
        self.fpu_extra = u64::MAX;
        &mut self.fpu
    }

    fn interrupter(&self) -> Interrupter {
        self.irq.clone()
    }
}

impl Drop for SystrapContext {
    fn drop(&mut self) {
        for lease in &self.leases {
            if let Some(stub) = lease.stub.upgrade() {
                stub.release_thread(lease.slot);
            }
        }
    }
}

// Offsets in the kernel's signal frame (x86-64 `ucontext`, `sigcontext`, `siginfo`).
const UC_MCONTEXT: u64 = 40;
const UC_SIGMASK: u64 = UC_MCONTEXT + 256;
const NGREGS: usize = 24;
const G_EFLAGS: usize = 17;
const G_CSGSFS: usize = 18;
const G_ERR: usize = 19;
const G_TRAPNO: usize = 20;
const G_FPSTATE: usize = 23;
const SI_CODE: u64 = 8;
const SI_ADDR: u64 = 16;
/// `si_arch` of a SIGSYS.
const SI_ARCH: u64 = 28;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// The software-reserved bytes of the FXSAVE area, where the kernel describes the frame.
const FX_SW_BYTES: std::ops::Range<usize> = 464..512;
const XSAVE_HEADER: usize = FpuState::XSAVE_HEADER_OFFSET;
const SEGV_ACCERR: i32 = 2;
/// The host's legacy vsyscall page, which no stub can unmap.
const VSYSCALL_PAGE: u64 = 0xffff_ffff_ff60_0000;
const TRAP_PAGE_FAULT: u64 = 14;
const PF_WRITE: u64 = 1 << 1;
const PF_INSTR: u64 = 1 << 4;

/// (offset, size) of each XSAVE component in the standard format (CPUID leaf 0xD).
fn xsave_layout() -> &'static [(usize, usize); 64] {
    static LAYOUT: std::sync::OnceLock<[(usize, usize); 64]> = std::sync::OnceLock::new();
    LAYOUT.get_or_init(|| {
        let mut layout = [(0usize, 0usize); 64];
        let max_leaf = std::arch::x86_64::__cpuid(0).eax;
        if max_leaf < 0xd {
            return layout;
        }
        for (i, entry) in layout.iter_mut().enumerate().skip(2) {
            let sub = u32::try_from(i).expect("i < 64");
            let r = std::arch::x86_64::__cpuid_count(0xd, sub);
            // ecx bit 0 set: a supervisor component, not in the user (standard) area.
            if r.eax != 0 && r.ecx & 1 == 0 {
                *entry = (r.ebx as usize, r.eax as usize);
            }
        }
        layout
    })
}

/// Where a parked thread's frame is, checked to lie in its slot's signal stack.
#[derive(Clone, Copy)]
struct Frame {
    uc: u64,
    info: u64,
    fp: u64,
}

impl Frame {
    fn locate(stub: &Stub, slot: u32) -> Result<Self, SystrapError> {
        let lo = slot_off(slot) + THREAD_PAGE;
        let hi = slot_off(slot) + SLOT_SIZE;
        let within = |va: u64, len: u64| -> Result<u64, SystrapError> {
            let off = va.checked_sub(STUB_BASE).ok_or(SystrapError::BadFrame)?;
            match off.checked_add(len) {
                Some(end) if off >= lo && end <= hi => Ok(off),
                _ => Err(SystrapError::BadFrame),
            }
        };
        let region = stub.region();
        let uc = within(
            stub.slot_u64(slot, T_UC).load(Ordering::Acquire),
            UC_SIGMASK + 8,
        )?;
        let info = within(stub.slot_u64(slot, T_INFO).load(Ordering::Acquire), 128)?;
        let fp_va = region.read_u64(uc + UC_MCONTEXT + 8 * G_FPSTATE as u64)?;
        let fp = within(fp_va, 512)?;
        if !fp.is_multiple_of(64) {
            return Err(SystrapError::BadFrame);
        }
        Ok(Self { uc, info, fp })
    }

    /// Bytes of XSAVE area in the frame (512 without the XSAVE extension), as the
    /// kernel's description of the frame (the FXSAVE software-reserved bytes) says; read
    /// only when the FPU state is, since most stops never need it.
    fn fp_len(&self, stub: &Stub, slot: u32) -> Result<usize, SystrapError> {
        let mut sw = [0u8; 48];
        stub.region()
            .read(self.fp + FX_SW_BYTES.start as u64, &mut sw)?;
        let magic = u32::from_le_bytes(sw[0..4].try_into().expect("4 bytes"));
        let size = u32::from_le_bytes(sw[16..20].try_into().expect("4 bytes"));
        if magic != FP_XSTATE_MAGIC1 {
            return Ok(512);
        }
        let len = usize::try_from(size)
            .unwrap_or(usize::MAX)
            .min(FPU_STATE_SIZE);
        let end = self.fp.checked_add(len as u64);
        if end.is_none_or(|end| end > slot_off(slot) + SLOT_SIZE) {
            return Err(SystrapError::BadFrame);
        }
        Ok(len.max(512))
    }

    fn gregs(&self, stub: &Stub) -> Result<[u64; NGREGS], SystrapError> {
        let mut raw = [0u8; NGREGS * 8];
        stub.region().read(self.uc + UC_MCONTEXT, &mut raw)?;
        let mut g = [0u64; NGREGS];
        for (v, b) in g.iter_mut().zip(raw.chunks_exact(8)) {
            *v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        }
        Ok(g)
    }
}

impl SystrapContext {
    /// Runs the thread in `slot` from `regs` until an exit the Sentry must see.
    fn run(&mut self, stub: &Stub, slot: u32, regs: &mut Registers) -> Result<Exit, SystrapError> {
        if self.irq.pending.swap(false, Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        // The thread is parked where its last stop left it: reuse what that stop located.
        let frame = match self.parked.take() {
            Some((id, s, frame)) if id == stub.id && s == slot => frame,
            _ => Frame::locate(stub, slot)?,
        };
        self.write_frame(stub, slot, &frame, regs)?;
        loop {
            stub.resume(slot);
            stub.wait_stopped(slot)?;
            let frame = Frame::locate(stub, slot)?;
            let g = frame.gregs(stub)?;
            read_regs(&g, regs);
            regs.fs_base = stub.slot_u64(slot, T_FS).load(Ordering::Acquire);
            regs.gs_base = stub.slot_u64(slot, T_GS).load(Ordering::Acquire);
            self.fpu_stale = true;
            self.parked = Some((stub.id, slot, frame));
            let sig =
                i32::try_from(stub.slot_u32(slot, T_SIG).load(Ordering::Acquire)).unwrap_or(0);
            let trapno = g[G_TRAPNO];
            let err = g[G_ERR];
            let exception = || Exit::Exception {
                vector: u8::try_from(trapno).unwrap_or(u8::MAX),
                error_code: err,
            };
            let exit = match sig {
                libc::SIGSYS => {
                    let call = stub.region().read_u64(frame.info + SI_ADDR)?;
                    let mut arch = [0u8; 4];
                    stub.region().read(frame.info + SI_ARCH, &mut arch)?;
                    if u32::from_le_bytes(arch) != AUDIT_ARCH_X86_64 {
                        // `int 0x80` (the i386 ABI): the application has no such gate, so
                        // it is the #GP an absent IDT entry gives, at the instruction.
                        regs.rip = regs.rip.wrapping_sub(2);
                        Exit::Exception {
                            vector: crate::vector::GENERAL_PROTECTION,
                            error_code: (0x80 << 3) | 2,
                        }
                    } else if (VSYSCALL_PAGE..VSYSCALL_PAGE + PAGE_SIZE).contains(&call) {
                        // A call into the host's vsyscall page, which Linux emulates as a
                        // syscall (and so traps). The application has no such page: it is
                        // an execute fault there. Linux already "returned" (popped the
                        // return address); undo that so rip and rsp are the faulting ones.
                        regs.rip = call;
                        regs.rsp = regs.rsp.wrapping_sub(8);
                        Exit::PageFault {
                            addr: call,
                            access: Access::Exec,
                            present: false,
                        }
                    } else {
                        regs.orig_rax = regs.rax;
                        Exit::Syscall
                    }
                }
                libc::SIGSEGV | libc::SIGBUS if trapno == TRAP_PAGE_FAULT => {
                    let addr = stub.region().read_u64(frame.info + SI_ADDR)?;
                    let mut code = [0u8; 4];
                    stub.region().read(frame.info + SI_CODE, &mut code)?;
                    let si_code = i32::from_le_bytes(code);
                    let access = if err & PF_INSTR != 0 {
                        Access::Exec
                    } else if err & PF_WRITE != 0 {
                        Access::Write
                    } else {
                        Access::Read
                    };
                    Exit::PageFault {
                        addr,
                        access,
                        // SIGSEGV says whether a mapping was there (SEGV_ACCERR) or not;
                        // the error code's present bit only says whether the page had been
                        // populated yet. SIGBUS comes from a mapping that exists.
                        present: sig == libc::SIGBUS || si_code == SEGV_ACCERR,
                    }
                }
                libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => {
                    exception()
                }
                SIG_INTERRUPT if self.irq.pending.swap(false, Ordering::SeqCst) => {
                    Exit::Interrupted
                }
                // A late interrupt signal (its request was already answered), or a signal
                // the stub does not handle: resume where the thread was.
                _ => continue,
            };
            return Ok(exit);
        }
    }

    /// Brings `fpu` up to date from the parked thread's frame if it is stale. A stub that is
    /// gone (its address space was replaced, as by `execve`) took the state with it: `fpu`
    /// keeps what it had.
    fn fetch_fpu(&mut self) {
        if !std::mem::take(&mut self.fpu_stale) {
            return;
        }
        let Some((id, slot, frame)) = self.parked else {
            return;
        };
        let Some(stub) = self
            .leases
            .iter()
            .find(|l| l.id == id)
            .and_then(|l| l.stub.upgrade())
        else {
            return;
        };
        if let Err(e) = self.read_fpu(&stub, slot, &frame) {
            log::warn!("systrap: reading the FPU state of a parked thread: {e}");
        }
    }

    /// Copies the frame's XSAVE area into the context's FPU state: the legacy region and
    /// header always, then only the components XSTATE_BV says are in use (the others are
    /// in their initial state, which is zero: they are cleared here if the context's copy
    /// may hold something else). Reading only what is in use keeps the cache lines that
    /// cross from the stub's CPU few (13 instead of 42 with AVX-512 unused).
    fn read_fpu(&mut self, stub: &Stub, slot: u32, frame: &Frame) -> Result<(), SystrapError> {
        let region = stub.region();
        let n = frame.fp_len(stub, slot)?;
        let fpu = self.fpu.as_bytes_mut();
        let head = n.min(XSAVE_HEADER + 64);
        region.read(frame.fp, &mut fpu[..head])?;
        if n <= XSAVE_HEADER + 64 {
            fpu[n..].fill(0);
            self.fpu_extra = 0;
            return Ok(());
        }
        let features = u64::from_le_bytes(fpu[472..480].try_into().expect("8 bytes"));
        let bv = u64::from_le_bytes(
            fpu[XSAVE_HEADER..XSAVE_HEADER + 8]
                .try_into()
                .expect("8 bytes"),
        ) & features;
        let mut present = 0u64;
        for (i, &(off, size)) in xsave_layout().iter().enumerate().skip(2) {
            let range = off..off + size;
            if size == 0 {
                continue;
            }
            if bv & (1 << i) != 0 && range.end <= n {
                region.read(frame.fp + off as u64, &mut fpu[range])?;
                present |= 1 << i;
            } else if self.fpu_extra & (1 << i) != 0 && range.end <= FPU_STATE_SIZE {
                fpu[range].fill(0);
            }
        }
        self.fpu_extra = present;
        Ok(())
    }

    /// Writes `regs` (and the FPU state if needed) into the parked thread's frame.
    fn write_frame(
        &mut self,
        stub: &Stub,
        slot: u32,
        frame: &Frame,
        regs: &Registers,
    ) -> Result<(), SystrapError> {
        let region = stub.region();
        // Only what rt_sigreturn reads: the general registers, rip, rflags and selectors
        // (err, trapno, oldmask and cr2 after them are ignored).
        let mut g = [0u64; G_CSGSFS + 1];
        write_regs(regs, &mut g);
        let mut raw = [0u8; (G_CSGSFS + 1) * 8];
        for (b, v) in raw.chunks_exact_mut(8).zip(g.iter()) {
            b.copy_from_slice(&v.to_le_bytes());
        }
        region.write(frame.uc + UC_MCONTEXT, &raw)?;
        // The application's signal mask is the Sentry's business: the host one stays empty.
        region.write_u64(frame.uc + UC_SIGMASK, 0)?;
        stub.slot_u64(slot, T_FS)
            .store(regs.fs_base, Ordering::Relaxed);
        stub.slot_u64(slot, T_GS)
            .store(regs.gs_base, Ordering::Relaxed);
        stub.slot_u32(slot, T_CMD).store(0, Ordering::Relaxed);
        if self.fpu_dirty {
            self.write_fpu(stub, slot, frame)?;
            self.fpu_dirty = false;
        }
        Ok(())
    }

    /// Copies the context's FPU state into the frame, keeping what the kernel needs there
    /// to accept it: its description of the frame (the software-reserved bytes), XSTATE_BV
    /// limited to the features the frame carries, a zero XCOMP_BV (standard format) and
    /// reserved header, and MXCSR limited to the supported bits.
    fn write_fpu(&self, stub: &Stub, slot: u32, frame: &Frame) -> Result<(), SystrapError> {
        let region = stub.region();
        let n = frame.fp_len(stub, slot)?;
        let mut cur = [0u8; FPU_STATE_SIZE];
        region.read(frame.fp, &mut cur[..n])?;
        let mut new = [0u8; FPU_STATE_SIZE];
        new[..n].copy_from_slice(&self.fpu.as_bytes()[..n]);
        new[FX_SW_BYTES].copy_from_slice(&cur[FX_SW_BYTES]);
        let mask = match u32::from_le_bytes(cur[28..32].try_into().expect("4 bytes")) {
            0 => 0xffbf,
            m => m,
        };
        let mx = FpuState::MXCSR_OFFSET;
        let mxcsr = u32::from_le_bytes(new[mx..mx + 4].try_into().expect("4 bytes")) & mask;
        new[mx..mx + 4].copy_from_slice(&mxcsr.to_le_bytes());
        new[28..32].copy_from_slice(&cur[28..32]);
        if n >= XSAVE_HEADER + 64 {
            let features = u64::from_le_bytes(cur[472..480].try_into().expect("8 bytes"));
            let bv = u64::from_le_bytes(
                new[XSAVE_HEADER..XSAVE_HEADER + 8]
                    .try_into()
                    .expect("8 bytes"),
            ) & features;
            new[XSAVE_HEADER..XSAVE_HEADER + 8].copy_from_slice(&bv.to_le_bytes());
            new[XSAVE_HEADER + 8..XSAVE_HEADER + 64].fill(0);
        }
        region.write(frame.fp, &new[..n])
    }
}

fn read_regs(g: &[u64; NGREGS], r: &mut Registers) {
    r.r8 = g[0];
    r.r9 = g[1];
    r.r10 = g[2];
    r.r11 = g[3];
    r.r12 = g[4];
    r.r13 = g[5];
    r.r14 = g[6];
    r.r15 = g[7];
    r.rdi = g[8];
    r.rsi = g[9];
    r.rbp = g[10];
    r.rbx = g[11];
    r.rdx = g[12];
    r.rax = g[13];
    r.rcx = g[14];
    r.rsp = g[15];
    r.rip = g[16];
    r.rflags = g[G_EFLAGS];
    r.orig_rax = u64::MAX;
    r.cs = USER_CS;
    r.ss = USER_SS;
    r.ds = 0;
    r.es = 0;
    r.fs = 0;
    r.gs = 0;
}

fn write_regs(r: &Registers, g: &mut [u64; G_CSGSFS + 1]) {
    g[0] = r.r8;
    g[1] = r.r9;
    g[2] = r.r10;
    g[3] = r.r11;
    g[4] = r.r12;
    g[5] = r.r13;
    g[6] = r.r14;
    g[7] = r.r15;
    g[8] = r.rdi;
    g[9] = r.rsi;
    g[10] = r.rbp;
    g[11] = r.rbx;
    g[12] = r.rdx;
    g[13] = r.rax;
    g[14] = r.rcx;
    g[15] = r.rsp;
    g[16] = r.rip;
    g[G_EFLAGS] = (r.rflags & USER_RFLAGS_MASK) | RFLAGS_FIXED;
    // cs, gs, fs, ss selectors (16 bits each): always the user ones.
    g[G_CSGSFS] = USER_CS | (USER_SS << 48);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_range_splits() {
        let mut m = BTreeMap::new();
        m.insert(0x1000, 0x5000);
        m.insert(0x8000, 0x9000);
        remove_range(&mut m, 0x2000, 0x3000);
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            vec![(0x1000, 0x2000), (0x3000, 0x5000), (0x8000, 0x9000)]
        );
    }

    #[test]
    fn stub_fits_its_pages() {
        assert!(!code().is_empty());
        assert!(code().len() as u64 <= CODE_LEN);
    }
}
