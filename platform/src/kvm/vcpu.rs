//! One vCPU: its configuration, and the two run loops (architectural and PVM) that take a
//! context's registers into the guest and bring them back with the reason for the exit.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Once};

use kvm_bindings::{kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, kvm_xcrs, kvm_xsave, Msrs};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};

use super::fpu::FpuSlot;
use super::layout::{self, has_error_code, selector, SaveArea, RING0_BASE};
use super::trampoline::{self, Entry, MSR_KERNEL_GS_BASE};
use super::vm::Machine;
use super::{KvmError, Path};
use crate::{Access, Exit, FpuState, Registers, RFLAGS_FIXED, USER_CS, USER_RFLAGS_MASK, USER_SS};

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_SFMASK: u32 = 0xc000_0084;

const CR0_PE: u64 = 1;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const CR4_FSGSBASE: u64 = 1 << 16;
const CR4_OSXSAVE: u64 = 1 << 18;
const EFER_SCE: u64 = 1;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const EFER_NXE: u64 = 1 << 11;
const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS bits `syscall` clears: TF, IF, DF, NT, AC (as Linux).
const SFMASK: u64 = 0x4_7700;

/// The signal that kicks a thread out of `KVM_RUN` (its handler does nothing; the point is
/// the `EINTR`). SIGRTMIN + 6 is left alone by glibc and by the rest of Bulwark.
pub(super) fn kick_signal() -> i32 {
    libc::SIGRTMIN() + 6
}

extern "C" fn on_kick(_: libc::c_int) {}

/// Installs the kick handler once per process and unblocks the signal in this thread.
fn prepare_thread() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; we set a handler that does nothing (it is
        // async-signal-safe) and SA_RESTART, so other syscalls the signal lands in restart.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_kick as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(kick_signal(), &sa, std::ptr::null_mut());
        }
    });
    thread_local!(static UNBLOCKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    UNBLOCKED.with(|u| {
        if !u.get() {
            // SAFETY: a sigset on the stack, initialised by sigemptyset before use.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, kick_signal());
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            }
            u.set(true);
        }
    });
}

/// This thread's ID, asked of the kernel once per thread (it is published at every switch).
fn gettid() -> i32 {
    thread_local! {
        static TID: i32 = {
            // SAFETY: gettid has no preconditions.
            unsafe { libc::gettid() }
        };
    }
    TID.with(|t| *t)
}

/// The half of a vCPU other threads touch: to kick it out of `KVM_RUN`.
pub(super) struct VcpuShared {
    pub index: usize,
    /// `kvm_run.immediate_exit` in the vCPU's kvm_run mapping.
    immediate_exit: *const AtomicU8,
    /// The host thread running the vCPU during a switch, or 0.
    tid: AtomicI32,
    /// The address space the vCPU runs during a switch, or 0.
    pub space: AtomicU64,
    /// How many times `KVM_RUN` has returned.
    pub exits: AtomicU64,
}

// SAFETY: `immediate_exit` points into the vCPU's kvm_run mapping, which lives as long as
// the vCPU, and vCPUs live as long as the machine; every access through it is atomic.
// Whoever holds a VcpuShared reaches it through the machine (strongly held) or the vCPU.
unsafe impl Send for VcpuShared {}
// SAFETY: as above.
unsafe impl Sync for VcpuShared {}

impl VcpuShared {
    /// Makes the vCPU leave (or not enter) `KVM_RUN` soon. Harmless when it is idle.
    pub(super) fn kick(&self) {
        // SAFETY: see the Send/Sync impls: the mapping outlives every VcpuShared user.
        unsafe { &*self.immediate_exit }.store(1, Ordering::SeqCst);
        let tid = self.tid.load(Ordering::SeqCst);
        if tid != 0 {
            // SAFETY: tgkill on a thread of this process with a signal whose handler is
            // installed (prepare_thread runs before tid is published).
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, kick_signal()) };
        }
    }

    fn clear_immediate_exit(&self) {
        // SAFETY: see the Send/Sync impls.
        unsafe { &*self.immediate_exit }.store(0, Ordering::SeqCst);
    }
}

/// What a switch runs: the context's side.
pub(super) struct Guest<'a> {
    pub space_id: u64,
    pub root: u64,
    pub generation: &'a AtomicU64,
    pub pending: &'a AtomicBool,
    pub fpu: &'a Arc<FpuSlot>,
    pub fpu_dirty: bool,
}

pub(super) struct Vcpu {
    pub index: usize,
    fd: VcpuFd,
    pub shared: Arc<VcpuShared>,
    path: Path,
    /// Guest-physical address of the vCPU block.
    block_phys: u64,
    /// The ring-3 segment state (PVM) or the ring-0 one (architectural) we start from.
    sregs: kvm_sregs,
    /// PVM: the vCPU is in ring 3 with the segment state, CR3 and bases we last set.
    user_mode: bool,
    /// (address space, generation) whose translations the vCPU holds.
    loaded: (u64, u64),
    /// PVM: the FS/GS bases loaded.
    bases: (u64, u64),
    /// The context whose FPU state is live in the vCPU, if any.
    fpu_owner: Option<Arc<FpuSlot>>,
    /// General registers travel in kvm_run (KVM_CAP_SYNC_REGS).
    sync_regs: bool,
}

fn segment(sel: u16, dpl: u8, code: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: sel,
        type_: if code { 11 } else { 3 },
        present: 1,
        dpl,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Sets the vCPU's TSC offset to zero (`KVM_VCPU_TSC_OFFSET`, Linux 5.16), then checks
/// that the guest's TSC reads as the host's; false where either fails.
fn zero_tsc_offset(fd: &kvm_ioctls::VcpuFd) -> bool {
    let offset: u64 = 0;
    let attr = kvm_bindings::kvm_device_attr {
        group: kvm_bindings::KVM_VCPU_TSC_CTRL,
        attr: u64::from(kvm_bindings::KVM_VCPU_TSC_OFFSET),
        addr: std::ptr::addr_of!(offset) as u64,
        flags: 0,
    };
    /// `_IOW(KVMIO, 0xe1, struct kvm_device_attr)` (kvm-ioctls has it on aarch64 only).
    const KVM_SET_DEVICE_ATTR: libc::c_ulong = 0x4018_aee1;
    // SAFETY: the vCPU fd is open for the call; `attr` and the `offset` it points at live
    // on this stack frame across it, and the kernel only reads them.
    let set = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            KVM_SET_DEVICE_ATTR,
            std::ptr::addr_of!(attr),
        )
    };
    if set != 0 {
        return false;
    }
    // IA32_TSC as the guest sees it, between two host readings.
    const IA32_TSC: u32 = 0x10;
    let Ok(mut msrs) = kvm_bindings::Msrs::from_entries(&[kvm_bindings::kvm_msr_entry {
        index: IA32_TSC,
        ..Default::default()
    }]) else {
        return false;
    };
    let before = crate::rdtsc();
    let read = fd.get_msrs(&mut msrs);
    let after = crate::rdtsc();
    let guest = msrs.as_slice()[0].data;
    read == Ok(1) && (before..=after).contains(&guest)
}

impl Vcpu {
    pub(super) fn new(machine: &Arc<Machine>, index: usize) -> Result<Self, KvmError> {
        let mut fd = machine
            .vm
            .create_vcpu(index as u64)
            .map_err(|e| KvmError::Ioctl("KVM_CREATE_VCPU", e))?;
        fd.set_cpuid2(&machine.cpuid)
            .map_err(|e| KvmError::Ioctl("KVM_SET_CPUID2", e))?;
        // Guest code reads the host's TSC where KVM lets the offset be zero, so that the
        // vDSO's time (calibrated on the host) holds inside the guest too. All vCPUs of
        // a VM agree, or time would jump between them.
        let zeroed = zero_tsc_offset(&fd);
        match machine.host_tsc.get() {
            None => {
                let _ = machine.host_tsc.set(zeroed);
            }
            Some(true) if !zeroed => return Err(KvmError::TscOffset),
            Some(_) => {}
        }
        let mut xcrs = kvm_xcrs {
            nr_xcrs: 1,
            ..Default::default()
        };
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = machine.xcr0;
        fd.set_xcrs(&xcrs)
            .map_err(|e| KvmError::Ioctl("KVM_SET_XCRS", e))?;
        let block_phys = machine.map_vcpu_block(index)?;
        let run: *mut kvm_bindings::kvm_run = fd.get_kvm_run();
        // SAFETY: `run` points at the vCPU's kvm_run mapping (valid while `fd` lives);
        // immediate_exit is a u8, which AtomicU8 has the layout of.
        let immediate_exit = unsafe { std::ptr::addr_of_mut!((*run).immediate_exit) }
            .cast::<AtomicU8>()
            .cast_const();
        let shared = Arc::new(VcpuShared {
            index,
            immediate_exit,
            tid: AtomicI32::new(0),
            space: AtomicU64::new(0),
            exits: AtomicU64::new(0),
        });
        machine
            .vcpus
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(shared.clone());
        let sregs = fd
            .get_sregs()
            .map_err(|e| KvmError::Ioctl("KVM_GET_SREGS", e))?;
        let mut vcpu = Self {
            index,
            fd,
            shared,
            path: machine.path(),
            block_phys,
            sregs,
            user_mode: false,
            loaded: (0, 0),
            bases: (0, 0),
            fpu_owner: None,
            sync_regs: machine.sync_regs,
        };
        if vcpu.sync_regs {
            vcpu.fd.set_sync_valid_reg(SyncReg::Register);
        }
        vcpu.configure(machine, machine.path())?;
        Ok(vcpu)
    }

    fn block_va(&self) -> u64 {
        layout::vcpu_block(self.index)
    }

    fn save_phys(&self) -> u64 {
        self.block_phys + layout::SAVE_OFFSET
    }

    /// Writes the vCPU's GDT, TSS and save area, and sets its MSRs and ring-0 state for
    /// `path`. The vCPU then sits at the trampoline's resume entry (architectural) or
    /// waits for the first switch to put it in ring 3 (PVM).
    pub(super) fn configure(&mut self, machine: &Machine, path: Path) -> Result<(), KvmError> {
        self.path = path;
        let memory = &machine.memory;
        let block = self.block_va();
        let tss_va = block + layout::TSS_OFFSET;
        let stack_top = block + layout::STACK_TOP_OFFSET;
        for (i, d) in layout::gdt(tss_va).iter().enumerate() {
            memory
                .write_u64(self.block_phys + layout::GDT_OFFSET + i as u64 * 8, *d)
                .map_err(KvmError::Memory)?;
        }
        let port = match path {
            Path::Pvm => Some(layout::EXIT_PORT),
            Path::Architectural => None,
        };
        memory
            .write(
                self.block_phys + layout::TSS_OFFSET,
                &layout::tss(stack_top, port),
            )
            .map_err(KvmError::Memory)?;
        let save = SaveArea {
            cr3: machine.idle_root,
            kernel_rsp: stack_top,
            ..SaveArea::default()
        };
        self.write_save(machine, &save)?;

        let lstar = match path {
            Path::Architectural => layout::TRAMPOLINE + trampoline::offset(Entry::Syscall),
            Path::Pvm => layout::PVM_EXIT_PAGE,
        };
        let star = (u64::from(selector::USER32_CS) << 48) | (u64::from(selector::KERNEL_CS) << 32);
        self.set_msrs(&[
            (MSR_STAR, star),
            (MSR_LSTAR, lstar),
            (MSR_SFMASK, SFMASK),
            (MSR_KERNEL_GS_BASE, 0),
        ])?;

        let mut s = self.sregs;
        s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
        s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
        if path == Path::Architectural {
            // The trampoline saves and restores FS base with rd/wrfsbase. On the PVM path
            // the bases are set with KVM_SET_SREGS and the application cannot change them
            // behind the Sentry's back (wrfsbase is #UD there; arch_prctl is the way).
            s.cr4 |= CR4_FSGSBASE;
        }
        s.efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
        s.cr3 = machine.idle_root;
        s.gdt.base = block + layout::GDT_OFFSET;
        s.gdt.limit = layout::GDT_LIMIT;
        s.idt.base = match path {
            Path::Architectural => layout::IDT_ARCH,
            Path::Pvm => layout::IDT_PVM,
        };
        s.idt.limit = 0xfff;
        s.tr = kvm_segment {
            base: tss_va,
            limit: layout::TSS_LIMIT,
            selector: selector::TSS,
            type_: 11,
            present: 1,
            ..Default::default()
        };
        s.ldt = kvm_segment {
            selector: 0,
            type_: 2,
            present: 1,
            unusable: 1,
            ..Default::default()
        };
        s.cs = segment(selector::KERNEL_CS, 0, true);
        s.ss = segment(selector::KERNEL_SS, 0, false);
        s.ds = s.ss;
        s.es = s.ss;
        s.fs = s.ss;
        s.gs = s.ss;
        s.gs.base = block + layout::SAVE_OFFSET;
        self.sregs = s;
        self.fd
            .set_sregs(&s)
            .map_err(|e| KvmError::Ioctl("KVM_SET_SREGS", e))?;
        let regs = kvm_regs {
            rip: layout::TRAMPOLINE + trampoline::offset(Entry::Resume),
            rsp: stack_top,
            rflags: 2,
            ..Default::default()
        };
        if self.sync_regs {
            self.fd.clear_sync_dirty_reg(SyncReg::Register);
        }
        self.fd
            .set_regs(&regs)
            .map_err(|e| KvmError::Ioctl("KVM_SET_REGS", e))?;
        self.user_mode = false;
        self.loaded = (0, 0);
        if let Some(owner) = self.fpu_owner.take() {
            let mut live = owner.live_on();
            if *live == Some(self.index) {
                *live = None;
            }
        }
        Ok(())
    }

    fn set_msrs(&self, msrs: &[(u32, u64)]) -> Result<(), KvmError> {
        let entries: Vec<kvm_msr_entry> = msrs
            .iter()
            .map(|&(index, data)| kvm_msr_entry {
                index,
                data,
                ..Default::default()
            })
            .collect();
        let msrs = Msrs::from_entries(&entries).map_err(|_| KvmError::CpuidTooLarge)?;
        let n = self
            .fd
            .set_msrs(&msrs)
            .map_err(|e| KvmError::Ioctl("KVM_SET_MSRS", e))?;
        if n != entries.len() {
            return Err(KvmError::MsrRejected(entries[n].index));
        }
        Ok(())
    }

    fn write_save(&self, machine: &Machine, save: &SaveArea) -> Result<(), KvmError> {
        // SAFETY: SaveArea is repr(C) plain old data (u64s only), so its bytes are
        // initialised and any view of them is valid.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                std::ptr::from_ref(save).cast::<u8>(),
                std::mem::size_of::<SaveArea>(),
            )
        };
        machine
            .memory
            .write(self.save_phys(), bytes)
            .map_err(KvmError::Memory)
    }

    fn read_save(&self, machine: &Machine) -> Result<SaveArea, KvmError> {
        let mut save = SaveArea::default();
        // SAFETY: as in write_save: every bit pattern is a valid SaveArea.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                std::ptr::from_mut(&mut save).cast::<u8>(),
                std::mem::size_of::<SaveArea>(),
            )
        };
        machine
            .memory
            .read(self.save_phys(), bytes)
            .map_err(KvmError::Memory)?;
        Ok(save)
    }

    /// Runs `guest` with `regs` until an exit. The caller has leased this vCPU.
    pub(super) fn switch(
        &mut self,
        machine: &Machine,
        guest: &mut Guest<'_>,
        regs: &mut Registers,
    ) -> Result<Exit, KvmError> {
        prepare_thread();
        self.shared.tid.store(gettid(), Ordering::SeqCst);
        self.shared.space.store(guest.space_id, Ordering::SeqCst);
        let result = self.switch_published(machine, guest, regs);
        self.shared.space.store(0, Ordering::SeqCst);
        self.shared.tid.store(0, Ordering::SeqCst);
        self.shared.clear_immediate_exit();
        if result.is_err() {
            // Start from a known state next time.
            let _ = self.configure(machine, self.path);
        }
        result
    }

    fn switch_published(
        &mut self,
        machine: &Machine,
        guest: &mut Guest<'_>,
        regs: &mut Registers,
    ) -> Result<Exit, KvmError> {
        self.load_fpu(guest)?;
        let exit = match self.path {
            Path::Pvm => self.run_pvm(machine, guest, regs),
            Path::Architectural => self.run_arch(machine, guest, regs),
        };
        if exit.is_err() {
            // The state in the vCPU is suspect: the buffer (stale) is what remains.
            *guest.fpu.live_on() = None;
            self.fpu_owner = None;
        }
        // On success the state stays live in this vCPU (see fpu.rs).
        exit
    }

    /// Makes `guest`'s FPU state live in this vCPU, with KVM_SET_XSAVE only when it is
    /// not already (another context ran here since, or the Sentry changed it).
    fn load_fpu(&mut self, guest: &Guest<'_>) -> Result<(), KvmError> {
        loop {
            let mut live = guest.fpu.live_on();
            match *live {
                Some(i) if i == self.index && !guest.fpu_dirty => return Ok(()),
                Some(i) if i != self.index => {
                    // Live on another vCPU, whose new holder is saving it out.
                    drop(live);
                    std::thread::yield_now();
                }
                _ => {
                    // SAFETY: we are the owner, inside switch; `live_on` is None or names
                    // this vCPU (which we hold), so nobody writes the buffer meanwhile.
                    self.set_fpu(unsafe { guest.fpu.buffer() })?;
                    *live = Some(self.index);
                    self.fpu_owner = Some(guest.fpu.clone());
                    return Ok(());
                }
            }
        }
    }

    pub(super) fn take_fpu_owner(&mut self) -> Option<Arc<FpuSlot>> {
        self.fpu_owner.take()
    }

    pub(super) fn set_fpu_owner(&mut self, owner: Arc<FpuSlot>) {
        self.fpu_owner = Some(owner);
    }

    pub(super) fn forget_fpu_owner(&mut self) {
        self.fpu_owner = None;
    }

    fn set_fpu(&self, fpu: &FpuState) -> Result<(), KvmError> {
        let mut xsave = kvm_xsave::default();
        for (word, chunk) in xsave.region.iter_mut().zip(fpu.as_bytes().chunks_exact(4)) {
            *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        // SAFETY: a plain 4096-byte kvm_xsave, no flexible array part.
        unsafe { self.fd.set_xsave(&xsave) }.map_err(|e| KvmError::Ioctl("KVM_SET_XSAVE", e))
    }

    pub(super) fn get_fpu(&self, fpu: &mut FpuState) -> Result<(), KvmError> {
        let xsave = self
            .fd
            .get_xsave()
            .map_err(|e| KvmError::Ioctl("KVM_GET_XSAVE", e))?;
        for (chunk, word) in fpu
            .as_bytes_mut()
            .chunks_exact_mut(4)
            .zip(xsave.region.iter())
        {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Ok(())
    }

    /// One `KVM_RUN`; counts the return for waiters in `unmap`.
    fn run_once(&mut self) -> Result<RunExit, KvmError> {
        let r = self.fd.run();
        self.shared.exits.fetch_add(1, Ordering::SeqCst);
        match r {
            Ok(VcpuExit::IoOut(port, _)) => Ok(RunExit::Out(port)),
            Ok(VcpuExit::IoIn(..)) => Ok(RunExit::In),
            Ok(VcpuExit::Hlt) => Ok(RunExit::Hlt),
            Ok(VcpuExit::Shutdown) => Err(KvmError::GuestShutdown),
            Ok(VcpuExit::Intr) => Ok(RunExit::Kicked),
            Ok(other) => Err(KvmError::UnexpectedExit(format!("{other:?}"))),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                self.shared.clear_immediate_exit();
                Ok(RunExit::Kicked)
            }
            Err(e) => Err(KvmError::Ioctl("KVM_RUN", e)),
        }
    }

    /// Loads the general registers for the next KVM_RUN: through kvm_run where KVM syncs
    /// registers there, else with KVM_SET_REGS.
    fn put_regs(&mut self, k: &kvm_regs) -> Result<(), KvmError> {
        if self.sync_regs {
            self.fd.sync_regs_mut().regs = *k;
            self.fd.set_sync_dirty_reg(SyncReg::Register);
            return Ok(());
        }
        self.fd
            .set_regs(k)
            .map_err(|e| KvmError::Ioctl("KVM_SET_REGS", e))
    }

    /// The general registers as of the last KVM_RUN's return: from kvm_run where KVM
    /// syncs them there, else with KVM_GET_REGS.
    fn regs_after_run(&self) -> Result<kvm_regs, KvmError> {
        if self.sync_regs {
            return Ok(self.fd.sync_regs().regs);
        }
        self.get_regs()
    }

    fn get_regs(&self) -> Result<kvm_regs, KvmError> {
        self.fd
            .get_regs()
            .map_err(|e| KvmError::Ioctl("KVM_GET_REGS", e))
    }

    // ---------------------------------------------------------------- PVM path

    /// The PVM path: registers move with KVM_GET_REGS/KVM_SET_REGS; `syscall` lands (in
    /// ring 3) on the syscall exit page, whose `out` exits; exceptions enter a one-`hlt`
    /// ring-0 stub through the IDT, and the Sentry reads the exception frame from the
    /// vCPU's ring-0 stack in guest memory.
    fn run_pvm(
        &mut self,
        machine: &Machine,
        guest: &mut Guest<'_>,
        regs: &mut Registers,
    ) -> Result<Exit, KvmError> {
        self.put_regs(&to_kvm_regs(regs))?;
        let want_bases = (regs.fs_base, regs.gs_base);
        // Whether `regs` still equals the vCPU's registers (nothing ran since SET_REGS).
        let mut fresh = true;
        // Where the vCPU will continue: user code in ring 3 (true), or the middle of a
        // syscall or exception exit (false: let it finish before anything else).
        let mut at_user = true;
        loop {
            if at_user && guest.pending.swap(false, Ordering::SeqCst) {
                if !fresh {
                    from_kvm_regs(&self.regs_after_run()?, regs);
                }
                return Ok(Exit::Interrupted);
            }
            if at_user {
                let generation = guest.generation.load(Ordering::SeqCst);
                if !self.user_mode
                    || self.loaded != (guest.space_id, generation)
                    || (fresh && self.bases != want_bases)
                {
                    let bases = if fresh { want_bases } else { self.bases };
                    self.load_user_sregs(guest.root, bases)?;
                    self.loaded = (guest.space_id, generation);
                }
            }
            let exit = self.run_once()?;
            fresh = false;
            match exit {
                RunExit::Kicked => {
                    // Everything from the exit page up is the platform's own code: a vCPU
                    // kicked there (after `syscall`, before the exit page's `out`) must
                    // finish its exit, or the syscall would be lost and the application
                    // would be resumed at the exit page.
                    let k = self.regs_after_run()?;
                    at_user = k.rip < layout::PVM_EXIT_PAGE;
                }
                RunExit::Out(port) if port == layout::EXIT_PORT => {
                    let k = self.regs_after_run()?;
                    from_kvm_regs(&k, regs);
                    let page = layout::PVM_EXIT_PAGE;
                    let in_page = (page..page + 4).contains(&k.rip);
                    if in_page && k.rflags & RFLAGS_IF == 0 {
                        // `syscall` put the return address in rcx and RFLAGS in r11.
                        regs.orig_rax = k.rax;
                        regs.rip = k.rcx;
                        regs.rflags = k.r11;
                        return Ok(Exit::Syscall);
                    }
                    if in_page {
                        // Ring 3 jumped here: on Linux nothing is mapped here.
                        regs.rip = page;
                        return Ok(Exit::PageFault {
                            addr: page,
                            access: Access::Exec,
                            present: false,
                        });
                    }
                    // `out %al, $EXIT_PORT` elsewhere: the #GP it is without the bitmap.
                    // KVM reports the port exit with rip at the instruction.
                    regs.rip = k.rip;
                    return Ok(Exit::Exception {
                        vector: crate::vector::GENERAL_PROTECTION,
                        error_code: 0,
                    });
                }
                RunExit::Out(_) | RunExit::In => {
                    // Ring 3 has no other I/O port (IOPL 0, the bitmap opens one).
                    return Err(KvmError::UnexpectedExit(format!(
                        "{exit:?} at {:#x}",
                        self.regs_after_run()?.rip
                    )));
                }
                RunExit::Hlt => {
                    self.user_mode = false;
                    return self.pvm_exception(machine, regs);
                }
            }
        }
    }

    /// Puts the vCPU in ring 3 with CR3 = `root` and FS/GS bases `bases`.
    fn load_user_sregs(&mut self, root: u64, bases: (u64, u64)) -> Result<(), KvmError> {
        let mut s = self.sregs;
        s.cs = segment(selector::USER_CS, 3, true);
        s.ss = segment(selector::USER_SS, 3, false);
        s.ds = s.ss;
        s.es = s.ss;
        s.fs = s.ss;
        s.gs = s.ss;
        s.fs.base = bases.0;
        s.gs.base = bases.1;
        s.cr3 = root;
        self.fd
            .set_sregs(&s)
            .map_err(|e| KvmError::Ioctl("KVM_SET_SREGS", e))?;
        self.user_mode = true;
        self.bases = bases;
        Ok(())
    }

    fn pvm_exception(&mut self, machine: &Machine, regs: &mut Registers) -> Result<Exit, KvmError> {
        let k = self.regs_after_run()?;
        let stubs = layout::TRAMPOLINE + trampoline::offset(Entry::PvmStubs);
        let at = k.rip.wrapping_sub(1);
        let vector = match at.checked_sub(stubs) {
            Some(v) if v < 256 => u8::try_from(v).unwrap_or(u8::MAX),
            _ => return Err(KvmError::UnexpectedExit(format!("hlt at {at:#x}"))),
        };
        // The frame the CPU pushed on the ring-0 stack: [error code], rip, cs, rflags,
        // rsp, ss.
        let block = self.block_va();
        let offset = k
            .rsp
            .checked_sub(block)
            .filter(|&o| o + 5 * 8 <= layout::VCPU_BLOCK_SIZE)
            .ok_or_else(|| KvmError::UnexpectedExit(format!("ring-0 rsp {:#x}", k.rsp)))?;
        let mut frame = [0u64; 6];
        let words = if has_error_code(vector) { 6 } else { 5 };
        for (i, word) in frame.iter_mut().enumerate().take(words) {
            *word = machine
                .memory
                .read_u64(self.block_phys + offset + i as u64 * 8)
                .map_err(KvmError::Memory)?;
        }
        let (error_code, f) = if has_error_code(vector) {
            (frame[0], &frame[1..6])
        } else {
            (0, &frame[0..5])
        };
        if f[1] & 3 != 3 {
            return Err(KvmError::UnexpectedExit(format!(
                "exception {vector} in ring 0 at {:#x}",
                f[0]
            )));
        }
        from_kvm_regs(&k, regs);
        regs.rip = f[0];
        regs.rflags = f[2];
        regs.rsp = f[3];
        if vector == crate::vector::PAGE_FAULT
            && f[0] == layout::PVM_SYSCALL_ENTRY
            && f[2] & RFLAGS_IF == 0
        {
            // A `syscall`: it jumped to LSTAR (in ring 3) with IF masked, and the fetch
            // faulted. rcx holds the return address, r11 RFLAGS.
            regs.orig_rax = k.rax;
            regs.rip = k.rcx;
            regs.rflags = k.r11;
            return Ok(Exit::Syscall);
        }
        if vector == crate::vector::PAGE_FAULT {
            let cr2 = self
                .fd
                .get_sregs()
                .map_err(|e| KvmError::Ioctl("KVM_GET_SREGS", e))?
                .cr2;
            return Ok(page_fault(cr2, error_code));
        }
        Ok(Exit::Exception { vector, error_code })
    }

    // ------------------------------------------------------- architectural path

    /// The architectural path: the trampoline moves registers through the save area; the
    /// only ioctl per exit is KVM_RUN itself.
    fn run_arch(
        &mut self,
        machine: &Machine,
        guest: &mut Guest<'_>,
        regs: &mut Registers,
    ) -> Result<Exit, KvmError> {
        let mut save = self.read_save(machine)?;
        save.regs = *regs;
        save.cr3 = guest.root;
        self.write_save(machine, &save)?;
        // The vCPU sits at the trampoline's resume entry (after an exit, or parked).
        let mut parked = true;
        let mut fresh = true;
        loop {
            if parked && guest.pending.swap(false, Ordering::SeqCst) {
                if !fresh {
                    *regs = self.read_save(machine)?.regs;
                }
                return Ok(Exit::Interrupted);
            }
            if parked {
                let generation = guest.generation.load(Ordering::SeqCst);
                if self.loaded != (guest.space_id, generation) {
                    machine
                        .memory
                        .write_u64(
                            self.save_phys() + std::mem::offset_of!(SaveArea, flush) as u64,
                            1,
                        )
                        .map_err(KvmError::Memory)?;
                    self.loaded = (guest.space_id, generation);
                }
            }
            let exit = self.run_once()?;
            fresh = false;
            match exit {
                RunExit::Out(port) if port == layout::EXIT_PORT => {
                    let save = self.read_save(machine)?;
                    *regs = save.regs;
                    regs.cs = USER_CS;
                    regs.ss = USER_SS;
                    return Ok(match save.kind {
                        SaveArea::KIND_SYSCALL => Exit::Syscall,
                        _ if save.vector == u64::from(crate::vector::PAGE_FAULT) => {
                            page_fault(save.cr2, save.error_code)
                        }
                        _ => Exit::Exception {
                            vector: u8::try_from(save.vector).unwrap_or(u8::MAX),
                            error_code: save.error_code,
                        },
                    });
                }
                RunExit::Kicked => {
                    let k = self.get_regs()?;
                    if k.rip >= RING0_BASE {
                        // Inside the trampoline: let it reach its exit.
                        parked = false;
                        continue;
                    }
                    self.park(machine, &k)?;
                    parked = true;
                }
                RunExit::Hlt
                    if self.get_regs()?.rip
                        == layout::TRAMPOLINE + trampoline::offset(Entry::KernelFault) + 1 =>
                {
                    return Err(KvmError::UnexpectedExit("fault in the trampoline".into()));
                }
                RunExit::Out(_) | RunExit::In | RunExit::Hlt => {
                    return Err(KvmError::UnexpectedExit(format!(
                        "{exit:?} at {:#x}",
                        self.get_regs()?.rip
                    )));
                }
            }
        }
    }

    /// Moves a vCPU kicked out of ring 3 back to the trampoline's resume entry, with the
    /// application's registers in the save area (as if it had exited there).
    fn park(&mut self, machine: &Machine, k: &kvm_regs) -> Result<(), KvmError> {
        let s = self
            .fd
            .get_sregs()
            .map_err(|e| KvmError::Ioctl("KVM_GET_SREGS", e))?;
        let mut save = self.read_save(machine)?;
        from_kvm_regs(k, &mut save.regs);
        save.regs.fs_base = s.fs.base;
        save.regs.gs_base = s.gs.base;
        self.write_save(machine, &save)?;
        let mut kernel = self.sregs;
        kernel.cr3 = s.cr3;
        self.fd
            .set_sregs(&kernel)
            .map_err(|e| KvmError::Ioctl("KVM_SET_SREGS", e))?;
        let resume = kvm_regs {
            rip: layout::TRAMPOLINE + trampoline::offset(Entry::Resume),
            rsp: self.block_va() + layout::STACK_TOP_OFFSET,
            rflags: 2,
            ..Default::default()
        };
        if self.sync_regs {
            self.fd.clear_sync_dirty_reg(SyncReg::Register);
        }
        self.fd
            .set_regs(&resume)
            .map_err(|e| KvmError::Ioctl("KVM_SET_REGS", e))
    }

    // ------------------------------------------------------------ maintenance

    /// Runs the trampoline's rewrite loop over `runs` (see `Machine::forget_entries`).
    /// Only the maintenance vCPU does this; it sits in ring 0 with the idle page tables.
    pub(super) fn rewrite(
        &mut self,
        machine: &Machine,
        runs: &[(u64, u64)],
    ) -> Result<(), KvmError> {
        let list_va = self.block_va() + layout::REWRITE_LIST_OFFSET;
        let list_phys = self.block_phys + layout::REWRITE_LIST_OFFSET;
        let done = layout::TRAMPOLINE + trampoline::offset(Entry::RewriteDone);
        for batch in runs.chunks(layout::REWRITE_LIST_MAX) {
            for (i, &(phys, count)) in batch.iter().enumerate() {
                let at = list_phys + i as u64 * 16;
                let w = |off, v| machine.memory.write_u64(off, v).map_err(KvmError::Memory);
                w(at, layout::PHYSMAP_BASE + phys)?;
                w(at + 8, count)?;
            }
            if self.sync_regs {
                self.fd.clear_sync_dirty_reg(SyncReg::Register);
            }
            self.fd
                .set_regs(&kvm_regs {
                    rip: layout::TRAMPOLINE + trampoline::offset(Entry::Rewrite),
                    rsp: self.block_va() + layout::STACK_TOP_OFFSET,
                    rbx: list_va,
                    rdx: batch.len() as u64,
                    rflags: 2,
                    ..Default::default()
                })
                .map_err(|e| KvmError::Ioctl("KVM_SET_REGS", e))?;
            loop {
                match self.run_once()? {
                    RunExit::Kicked => continue,
                    RunExit::Hlt => {
                        let rip = self.get_regs()?.rip;
                        if rip != done + 1 {
                            return Err(KvmError::UnexpectedExit(format!(
                                "maintenance vCPU stopped at {rip:#x}"
                            )));
                        }
                        break;
                    }
                    other => {
                        return Err(KvmError::UnexpectedExit(format!(
                            "maintenance vCPU: {other:?}"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ benchmark

    /// Times `iterations` bare exits: KVM_RUN of an `out` loop, in ring 3 (code at `rip`
    /// in page tables `root`, with IOPL 3 so `out` is allowed) or in ring 0 (the
    /// trampoline's copy of the loop). The vCPU is reconfigured afterwards.
    pub(super) fn time_out_loop(
        &mut self,
        machine: &Machine,
        ring3: Option<(u64, u64)>,
        iterations: u64,
    ) -> Result<std::time::Duration, KvmError> {
        let regs = match ring3 {
            Some((root, rip)) => {
                // Let ring 3 use the port: IOPL 3 and the TSS I/O bitmap (PVM honours the
                // bitmap only; IOPL alone still raises #GP there).
                machine
                    .memory
                    .write(
                        self.block_phys + layout::TSS_OFFSET,
                        &layout::tss(
                            self.block_va() + layout::STACK_TOP_OFFSET,
                            Some(layout::EXIT_PORT),
                        ),
                    )
                    .map_err(KvmError::Memory)?;
                self.load_user_sregs(root, (0, 0))?;
                kvm_regs {
                    rip,
                    rflags: RFLAGS_FIXED | 0x3000,
                    ..Default::default()
                }
            }
            None => kvm_regs {
                rip: layout::TRAMPOLINE + trampoline::offset(Entry::OutLoop),
                rsp: self.block_va() + layout::STACK_TOP_OFFSET,
                rflags: 2,
                ..Default::default()
            },
        };
        if self.sync_regs {
            self.fd.clear_sync_dirty_reg(SyncReg::Register);
        }
        self.fd
            .set_regs(&regs)
            .map_err(|e| KvmError::Ioctl("KVM_SET_REGS", e))?;
        let start = std::time::Instant::now();
        for _ in 0..iterations {
            match self.run_once()? {
                RunExit::Out(_) => {}
                other => {
                    return Err(KvmError::UnexpectedExit(format!(
                        "out loop: {other:?} at {:#x}",
                        self.get_regs()?.rip
                    )))
                }
            }
        }
        let elapsed = start.elapsed();
        self.configure(machine, self.path)?;
        Ok(elapsed)
    }

    // ---------------------------------------------------------------- probe

    /// Runs `syscall` in ring 3 (at `rip`, in page tables `root`) with `LSTAR` at the
    /// trampoline's probe `hlt`, and reports whether it reached ring 0 there.
    pub(super) fn probe_syscall(&mut self, root: u64, rip: u64) -> Result<bool, KvmError> {
        self.set_msrs(&[(
            MSR_LSTAR,
            layout::TRAMPOLINE + trampoline::offset(Entry::Probe),
        )])?;
        // Exceptions go to the one-hlt stubs whatever the path.
        self.sregs.idt.base = layout::IDT_PVM;
        self.load_user_sregs(root, (0, 0))?;
        if self.sync_regs {
            self.fd.clear_sync_dirty_reg(SyncReg::Register);
        }
        self.fd
            .set_regs(&kvm_regs {
                rip,
                rflags: RFLAGS_FIXED,
                ..Default::default()
            })
            .map_err(|e| KvmError::Ioctl("KVM_SET_REGS", e))?;
        let exit = self.run_once()?;
        let k = self.get_regs()?;
        let s = self
            .fd
            .get_sregs()
            .map_err(|e| KvmError::Ioctl("KVM_GET_SREGS", e))?;
        let probe = layout::TRAMPOLINE + trampoline::offset(Entry::Probe);
        let ring0 = matches!(exit, RunExit::Hlt) && k.rip == probe + 1 && s.cs.selector & 3 == 0;
        log::debug!(
            "kvm probe: exit {exit:?}, rip {:#x}, cs {:#x}: syscall {} ring 0",
            k.rip,
            s.cs.selector,
            if ring0 { "reaches" } else { "does not reach" }
        );
        Ok(ring0)
    }
}

#[derive(Debug)]
enum RunExit {
    Out(u16),
    In,
    Hlt,
    Kicked,
}

fn page_fault(addr: u64, error_code: u64) -> Exit {
    let access = if error_code & (1 << 4) != 0 {
        Access::Exec
    } else if error_code & (1 << 1) != 0 {
        Access::Write
    } else {
        Access::Read
    };
    Exit::PageFault {
        addr,
        access,
        present: error_code & 1 != 0,
    }
}

/// The registers KVM_SET_REGS loads: RFLAGS limited to what the application may set.
fn to_kvm_regs(r: &Registers) -> kvm_regs {
    kvm_regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: sanitize_rflags(r.rflags),
    }
}

pub(super) fn sanitize_rflags(rflags: u64) -> u64 {
    rflags & USER_RFLAGS_MASK | RFLAGS_FIXED
}

fn from_kvm_regs(k: &kvm_regs, r: &mut Registers) {
    r.rax = k.rax;
    r.rbx = k.rbx;
    r.rcx = k.rcx;
    r.rdx = k.rdx;
    r.rsi = k.rsi;
    r.rdi = k.rdi;
    r.rsp = k.rsp;
    r.rbp = k.rbp;
    r.r8 = k.r8;
    r.r9 = k.r9;
    r.r10 = k.r10;
    r.r11 = k.r11;
    r.r12 = k.r12;
    r.r13 = k.r13;
    r.r14 = k.r14;
    r.r15 = k.r15;
    r.rip = k.rip;
    r.rflags = k.rflags;
    r.orig_rax = u64::MAX;
    r.cs = USER_CS;
    r.ss = USER_SS;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fault_error_codes() {
        assert_eq!(
            page_fault(0x1000, 0b00100),
            Exit::PageFault {
                addr: 0x1000,
                access: Access::Read,
                present: false
            }
        );
        assert_eq!(
            page_fault(0x1000, 0b00111),
            Exit::PageFault {
                addr: 0x1000,
                access: Access::Write,
                present: true
            }
        );
        assert_eq!(
            page_fault(0x1000, 0b10101),
            Exit::PageFault {
                addr: 0x1000,
                access: Access::Exec,
                present: true
            }
        );
    }

    #[test]
    fn rflags_are_sanitized() {
        // IOPL 3 (bits 12-13), VM (17) and IF-clear requests are dropped.
        assert_eq!(sanitize_rflags(0x2_3000), 0x202);
        assert_eq!(sanitize_rflags(0), 0x202);
        assert_eq!(sanitize_rflags(0x1 | 0x400), 0x603);
    }
}
