//! The KVM platform: application code in guest ring 3 of a KVM virtual machine.
//!
//! One VM per sandbox ([`Kvm`]). Its guest-physical memory is the [`MemoryFile`]
//! (guest-physical address == memory-file offset). Each [`KvmAddressSpace`] is a PML4 the
//! Sentry builds in memory-file pages; the top of every address space holds the same
//! ring-0 area (GDT, IDTs, TSSs, per-vCPU save areas and stacks, trampoline; see
//! `layout.rs`). Contexts ([`KvmContext`]) lease a vCPU from a pool for each switch.
//!
//! # Two paths
//!
//! At start-up a probe (`Vcpu::probe_syscall`) runs one `syscall` in ring 3 with `LSTAR`
//! at a ring-0 `hlt`, and picks:
//!
//! * [`Path::Architectural`] when `syscall` reaches ring 0 (hardware KVM, VMX/SVM): the
//!   trampoline saves the user registers into the vCPU's save area in guest memory and
//!   exits with one `out`; the Sentry reads and writes registers there and resumes with one
//!   `KVM_RUN`; the trampoline restores them and `iretq`s. One exit per syscall, no
//!   register ioctls.
//! * [`Path::Pvm`] when it does not: `kvm_pvm` (pagetable-based KVM, running nested) as on
//!   the development machines. What we learned about it, with the probes in `tests`:
//!   - guest ring-0 code is emulated (~1 µs per instruction), ring-3 code runs natively;
//!   - `syscall` from ring 3 jumps to `LSTAR` but stays in ring 3 (CS reads 0x33): a
//!     ring-0 `LSTAR` page faults (#PF, fetch from a supervisor page) and `sysretq` there
//!     triple-faults. So `LSTAR` points at the exit page, the last page of the lower half
//!     (above `TASK_SIZE`, which applications cannot map), holding `out %al, $EXIT_PORT`:
//!     one native exit per syscall. rcx/r11 hold what `syscall` put there, and IF is
//!     clear (SFMASK), which no ring-3 jump to the page can produce: such a jump is
//!     reported as the instruction-fetch page fault Linux would give there;
//!   - IOPL 3 does not let ring 3 use I/O ports (still #GP), the TSS I/O bitmap does: it
//!     opens `EXIT_PORT` only; an `out` to it from anywhere else is reported as the #GP
//!     it is on Linux;
//!   - exceptions are delivered through the IDT to ring 0: each vector's entry is a
//!     single `hlt` (one emulated instruction), and the Sentry reads the frame from the
//!     vCPU's ring-0 stack in guest memory, CR2 with `KVM_GET_SREGS`; ring 3 is re-entered
//!     with `KVM_SET_SREGS` (which also carries CR3 and the FS/GS bases). The
//!     architectural trampoline's exception path also runs here (emulated; see the tests);
//!   - registers move through `kvm_run` (`KVM_CAP_SYNC_REGS`), else with
//!     `KVM_GET_REGS`/`KVM_SET_REGS`;
//!   - FS/GS bases are set with `KVM_SET_SREGS` segment bases (CR4.FSGSBASE is left off
//!     on this path, so the application cannot change them behind the Sentry's back);
//!   - KVM shadows the guest page tables and never sees the Sentry's writes to them (see
//!     TLB coherence below); `CR4.PCIDE` is refused;
//!   - figures (benches/platform.rs, one run, noisy machine): a bare `out` exit from ring
//!     3 ~29 µs, from ring 0 ~9 µs; syscall round trip through `Context::switch` ~31.5 µs
//!     (1.07x the ring-3 exit); page fault ~47 µs. A syscall arriving instead as a #PF at
//!     an unmapped `LSTAR` (IDT delivery, then `KVM_SET_SREGS`) cost twice the exit page,
//!     and a `KVM_GET_XSAVE` per exit ~8 µs, hence the lazy FPU state (`fpu.rs`).
//!
//! # TLB coherence
//!
//! `unmap`, `protect` and a `map` that replaces a translation:
//! 1. make KVM forget its shadow of the changed entries, where it shadows guest page
//!    tables (PVM, or hardware without EPT/NPT): KVM learns of page-table changes only from
//!    guest writes, so a maintenance vCPU copies the changed entries onto themselves from
//!    ring 0 (`Machine::forget_entries`); KVM's write tracking zaps the shadow entries and
//!    flushes every vCPU. (Measured here: neither `KVM_SET_SREGS` with the same CR3 nor a
//!    CR3 switch away and back drops a stale shadow entry.) Page-table pages are zeroed
//!    and rewritten the same way before they are freed, so a reused page never brings
//!    stale translations along;
//! 2. bump the address space's generation, kick every vCPU running it out of `KVM_RUN`
//!    and wait until it is out: a vCPU reloads CR3 before it next enters an address space
//!    whose generation it has not seen (architectural: the trampoline does, for the
//!    guest's own TLB).
//!
//! # FPU state
//!
//! Kept live in the vCPU a context last ran on (`fpu.rs`): `KVM_SET_XSAVE` only when the
//! context moves or another ran there in between (which saves the previous owner's state
//! out with `KVM_GET_XSAVE` when it leases the vCPU), `KVM_GET_XSAVE` otherwise only when
//! the Sentry asks for [`Context::fpu`].

mod cpuid;
mod fpu;
mod layout;
mod pagetable;
mod trampoline;
mod vcpu;
mod vm;

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::{
    AddressSpace, Context, Exit, FpuState, Interrupt, Interrupter, MemoryFile, MemoryFileError,
    Perms, Platform, PlatformError, Registers, PAGE_SIZE,
};
use fpu::FpuSlot;
use pagetable::PageTables;
use vcpu::Guest;
use vm::Machine;

/// One past the highest application address (as Linux's `TASK_SIZE`).
pub const MAX_USER_ADDRESS: u64 = 0x7fff_ffff_f000;

/// How many vCPUs a VM creates at most (contexts beyond that wait for a free one).
pub const DEFAULT_MAX_VCPUS: usize = 32;

/// Errors of the KVM platform.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    #[error("A vCPU's TSC offset could not be zeroed, where the VM's first vCPU's was")]
    TscOffset,
    #[error(
        "bulwark: /dev/kvm: no such device (load the kvm module, or run with --platform=systrap)"
    )]
    Missing,
    #[error("bulwark: /dev/kvm: permission denied (add the user to group kvm, or run with --platform=systrap)")]
    PermissionDenied,
    #[error("bulwark: /dev/kvm could not be opened (run with --platform=systrap)")]
    Open(#[source] kvm_ioctls::Error),
    #[error("{0} failed")]
    Ioctl(&'static str, #[source] kvm_ioctls::Error),
    #[error("KVM API version {0} is not 12")]
    ApiVersion(i32),
    #[error("Guest memory error")]
    Memory(#[source] MemoryFileError),
    #[error("Too many CPUID or MSR entries")]
    CpuidTooLarge,
    #[error("KVM rejected MSR {0:#x}")]
    MsrRejected(u32),
    #[error("The guest shut down (triple fault)")]
    GuestShutdown,
    #[error("Unexpected guest exit: {0}")]
    UnexpectedExit(String),
    #[error("Non-canonical FS or GS base {0:#x}")]
    BadBase(u64),
}

impl KvmError {
    fn open(e: kvm_ioctls::Error) -> Self {
        match e.errno() {
            libc::ENOENT | libc::ENODEV | libc::ENXIO => Self::Missing,
            libc::EACCES | libc::EPERM => Self::PermissionDenied,
            _ => Self::Open(e),
        }
    }
}

/// How application code reaches the Sentry (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `syscall` enters ring 0; the trampoline saves registers in guest memory.
    Architectural,
    /// `syscall` stays in ring 3 (`kvm_pvm`); registers move with register ioctls.
    Pvm,
}

/// The KVM platform: one VM.
pub struct Kvm {
    machine: Arc<Machine>,
}

impl Kvm {
    /// Whether this platform can run here: `/dev/kvm` opens and speaks API version 12.
    pub fn probe() -> Result<(), KvmError> {
        let kvm = kvm_ioctls::Kvm::new().map_err(KvmError::open)?;
        match kvm.get_api_version() {
            12 => Ok(()),
            v => Err(KvmError::ApiVersion(v)),
        }
    }

    /// A VM whose guest memory is `memory`, with the path the host supports (probed).
    pub fn new(memory: Arc<MemoryFile>) -> Result<Self, KvmError> {
        Self::with_options(memory, None, DEFAULT_MAX_VCPUS)
    }

    /// As [`Kvm::new`], with the path forced (`None`: probe) and the vCPU limit given.
    /// Forcing [`Path::Architectural`] on a PVM host is only useful to exercise the
    /// trampoline's exception path: its `syscall` entry cannot work there.
    pub fn with_options(
        memory: Arc<MemoryFile>,
        path: Option<Path>,
        max_vcpus: usize,
    ) -> Result<Self, KvmError> {
        let machine = Arc::new(Machine::new(memory, max_vcpus)?);
        let path = match path {
            Some(p) => p,
            None => probe_path(&machine)?,
        };
        machine.set_path(path);
        Ok(Self { machine })
    }

    /// The path this VM runs on.
    pub fn path(&self) -> Path {
        self.machine.path()
    }

    /// For benchmarks: the time of `iterations` bare exits, `KVM_RUN` round trips of a
    /// guest that only executes `out` in a loop, in ring 3 (`ring3`) or ring 0. This is
    /// the floor every exit path is measured against.
    pub fn time_bare_exits(
        &self,
        ring3: bool,
        iterations: u64,
    ) -> Result<std::time::Duration, KvmError> {
        let memory = &self.machine.memory;
        let code = memory.allocate(PAGE_SIZE).map_err(KvmError::Memory)?;
        let result = (|| {
            let mut tables = PageTables::new(memory.clone(), self.machine.top_entry)
                .map_err(|_| KvmError::UnexpectedExit("page tables".into()))?;
            let rip = 0x40_0000;
            memory
                .write(code.offset, &trampoline::OUT_LOOP)
                .map_err(KvmError::Memory)?;
            tables
                .map(rip, PAGE_SIZE, code.offset, Perms::READ | Perms::EXEC)
                .map_err(|_| KvmError::UnexpectedExit("page tables".into()))?;
            let mut vcpu = self.machine.lease(None, None)?;
            let time = vcpu.time_out_loop(
                &self.machine,
                ring3.then_some((tables.root(), rip)),
                iterations,
            );
            self.machine.release(vcpu);
            self.machine.retire_tables(tables.pages())?;
            time
        })();
        memory.free(code);
        result
    }
}

/// Runs `syscall` in ring 3 on vCPU 0 and sees where it lands.
fn probe_path(machine: &Arc<Machine>) -> Result<Path, KvmError> {
    let memory = &machine.memory;
    let code = memory.allocate(PAGE_SIZE).map_err(KvmError::Memory)?;
    let result = (|| {
        // syscall; ud2
        memory
            .write(code.offset, &[0x0f, 0x05, 0x0f, 0x0b])
            .map_err(KvmError::Memory)?;
        let mut tables = PageTables::new(memory.clone(), machine.top_entry)
            .map_err(|_| KvmError::UnexpectedExit("probe page tables".into()))?;
        let rip = 0x40_0000;
        tables
            .map(rip, PAGE_SIZE, code.offset, Perms::READ | Perms::EXEC)
            .map_err(|_| KvmError::UnexpectedExit("probe page tables".into()))?;
        let mut vcpu = machine.lease(None, None)?;
        let ring0 = vcpu.probe_syscall(tables.root(), rip);
        machine.retire_tables(tables.pages())?;
        let path = match ring0 {
            Ok(true) => Path::Architectural,
            Ok(false) => Path::Pvm,
            Err(e) => {
                machine.release(vcpu);
                return Err(e);
            }
        };
        let configured = vcpu.configure(machine, path);
        machine.release(vcpu);
        configured?;
        Ok(path)
    })();
    memory.free(code);
    let path = result?;
    log::info!("kvm: running on the {path:?} path");
    Ok(path)
}

impl Platform for Kvm {
    fn runs_on_caller_thread(&self) -> bool {
        true
    }

    fn host_tsc(&self) -> bool {
        self.machine.host_tsc.get() == Some(&true)
    }

    fn name(&self) -> &'static str {
        "kvm"
    }

    fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.machine.memory
    }

    fn max_user_address(&self) -> u64 {
        MAX_USER_ADDRESS
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let mut tables = PageTables::new(self.machine.memory.clone(), self.machine.top_entry)?;
        if self.machine.path() == Path::Pvm {
            tables.map_page(
                layout::PVM_EXIT_PAGE,
                self.machine.exit_page,
                pagetable::user_leaf_bits(Perms::READ | Perms::EXEC),
            )?;
        }
        Ok(Arc::new(KvmAddressSpace {
            machine: self.machine.clone(),
            id: self.machine.next_id(),
            root: tables.root(),
            tables: Mutex::new(tables),
            generation: AtomicU64::new(0),
        }))
    }

    fn new_context(&self) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(KvmContext {
            machine: self.machine.clone(),
            fpu: FpuSlot::new(),
            fpu_dirty: true,
            last_vcpu: None,
            shared: Arc::new(ContextShared {
                pending: AtomicBool::new(false),
                running: Mutex::new(None),
                machine: Arc::downgrade(&self.machine),
            }),
        }))
    }
}

/// An address space of the KVM platform: one PML4.
pub struct KvmAddressSpace {
    machine: Arc<Machine>,
    id: u64,
    root: u64,
    tables: Mutex<PageTables>,
    /// Bumped whenever a translation is removed or weakened.
    generation: AtomicU64,
}

impl KvmAddressSpace {
    fn check(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        let bad = PlatformError::BadRange { addr, len };
        let end = addr.checked_add(len).ok_or(bad)?;
        if !addr.is_multiple_of(PAGE_SIZE)
            || !len.is_multiple_of(PAGE_SIZE)
            || end > MAX_USER_ADDRESS
        {
            return Err(PlatformError::BadRange { addr, len });
        }
        Ok(())
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, PageTables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every vCPU drop the translations built from the page-table entries in `runs`
    /// (returned by an unmap or protect) before it runs this address space again, and
    /// waits until no vCPU is still running with them.
    fn invalidate(&self, runs: &[(u64, u64)]) -> Result<(), PlatformError> {
        if runs.is_empty() {
            return Ok(());
        }
        // KVM's shadow page tables (where it has them): dropped VM-wide by this.
        self.machine.forget_entries(runs)?;
        // The guest TLBs: every vCPU reloads CR3 before it next runs this address space;
        // one running it now is kicked out first.
        self.generation.fetch_add(1, Ordering::SeqCst);
        for v in self.machine.vcpu_shared() {
            if v.space.load(Ordering::SeqCst) != self.id {
                continue;
            }
            let exits = v.exits.load(Ordering::SeqCst);
            v.kick();
            let mut spins = 0u32;
            while v.space.load(Ordering::SeqCst) == self.id
                && v.exits.load(Ordering::SeqCst) == exits
            {
                spins += 1;
                if spins.is_multiple_of(1024) {
                    // A signal can be lost if it landed just before KVM_RUN cleared it;
                    // immediate_exit covers entry, so only re-kick a vCPU inside the run.
                    v.kick();
                }
                std::thread::yield_now();
            }
        }
        Ok(())
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map(&self, addr: u64, len: u64, offset: u64, perms: Perms) -> Result<(), PlatformError> {
        self.check(addr, len)?;
        if !offset.is_multiple_of(PAGE_SIZE)
            || offset
                .checked_add(len)
                .is_none_or(|end| end > self.machine.memory.size())
        {
            return Err(MemoryFileError::OutOfRange { offset, len }.into());
        }
        // Entries are overwritten in place, so a concurrent access sees the old or the new
        // translation, never a hole; a replaced translation needs the same care as a
        // removed one. The lock is held across the invalidation so that the rewrite never
        // races another change.
        let mut tables = self.tables();
        if perms.is_empty() {
            let removed = tables.unmap(addr, len)?;
            return self.invalidate(&removed);
        }
        let replaced = tables.map(addr, len, offset, perms)?;
        self.invalidate(&replaced)
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        self.check(addr, len)?;
        let mut tables = self.tables();
        let removed = tables.unmap(addr, len)?;
        self.invalidate(&removed)
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) -> Result<(), PlatformError> {
        self.check(addr, len)?;
        let mut tables = self.tables();
        let changed = tables.protect(addr, len, perms)?;
        self.invalidate(&changed)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for KvmAddressSpace {
    fn drop(&mut self) {
        let tables = self.tables.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = self.machine.retire_tables(tables.pages()) {
            // The pages must not be reused as page tables with stale shadows: leak them.
            log::error!("kvm: retiring page tables failed, leaking them: {e}");
            std::mem::forget(std::mem::replace(
                tables,
                PageTables::empty(self.machine.memory.clone()),
            ));
        }
    }
}

/// What an interrupter shares with its context.
struct ContextShared {
    pending: AtomicBool,
    /// The vCPU the context is running on, during a switch.
    running: Mutex<Option<usize>>,
    machine: Weak<Machine>,
}

impl Interrupt for ContextShared {
    fn interrupt(&self) {
        self.pending.store(true, Ordering::SeqCst);
        let running = *self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(index), Some(machine)) = (running, self.machine.upgrade()) {
            if let Some(v) = machine.vcpu_shared().iter().find(|v| v.index == index) {
                v.kick();
            }
        }
    }
}

/// An application thread on the KVM platform.
pub struct KvmContext {
    machine: Arc<Machine>,
    fpu: Arc<FpuSlot>,
    /// The FPU state was changed by the Sentry: load it on the next switch.
    fpu_dirty: bool,
    last_vcpu: Option<usize>,
    shared: Arc<ContextShared>,
}

fn canonical(addr: u64) -> bool {
    let top = addr >> 47;
    top == 0 || top == 0x1_ffff
}

impl Context for KvmContext {
    fn switch(
        &mut self,
        space: &dyn AddressSpace,
        regs: &mut Registers,
    ) -> Result<Exit, PlatformError> {
        let space = space
            .as_any()
            .downcast_ref::<KvmAddressSpace>()
            .filter(|s| Arc::ptr_eq(&s.machine, &self.machine))
            .ok_or(PlatformError::WrongAddressSpace)?;
        if self.shared.pending.swap(false, Ordering::SeqCst) {
            return Ok(Exit::Interrupted);
        }
        for base in [regs.fs_base, regs.gs_base] {
            if base >= MAX_USER_ADDRESS {
                return Err(KvmError::BadBase(base).into());
            }
        }
        if !canonical(regs.rip) || regs.rip >= MAX_USER_ADDRESS {
            // What returning there would do on Linux: a #GP (or #PF) at that address.
            return Ok(Exit::Exception {
                vector: crate::vector::GENERAL_PROTECTION,
                error_code: 0,
            });
        }
        let mut vcpu = self.machine.lease(self.last_vcpu, Some(&self.fpu))?;
        self.last_vcpu = Some(vcpu.index);
        *self
            .shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(vcpu.index);
        let mut guest = Guest {
            space_id: space.id,
            root: space.root,
            generation: &space.generation,
            pending: &self.shared.pending,
            fpu: &self.fpu,
            fpu_dirty: self.fpu_dirty,
        };
        let result = vcpu.switch(&self.machine, &mut guest, regs);
        *self
            .shared
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        self.machine.release(vcpu);
        if result.is_ok() {
            self.fpu_dirty = false;
        }
        Ok(result?)
    }

    fn fpu(&mut self) -> &FpuState {
        match self.fpu.current(&self.machine) {
            Ok(state) => state,
            Err(e) => {
                log::error!("kvm: saving the FPU state failed: {e}");
                // SAFETY: `current` cleared `live_on` even on failure; we are the owner
                // and hand out a shared reference only.
                unsafe { self.fpu.buffer() }
            }
        }
    }

    fn fpu_mut(&mut self) -> &mut FpuState {
        if let Err(e) = self.fpu.current(&self.machine) {
            log::error!("kvm: saving the FPU state failed: {e}");
        }
        self.fpu_dirty = true;
        // SAFETY: we are the owner, held by `&mut` for the reference's life, and
        // `current` made the buffer current.
        unsafe { self.fpu.buffer_mut() }
    }

    fn interrupter(&self) -> Interrupter {
        self.shared.clone()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn open_errors_name_the_fix() {
        let missing = KvmError::open(kvm_ioctls::Error::new(libc::ENOENT)).to_string();
        assert!(missing.contains("/dev/kvm") && missing.contains("--platform=systrap"));
        let denied = KvmError::open(kvm_ioctls::Error::new(libc::EACCES)).to_string();
        assert_eq!(
            denied,
            "bulwark: /dev/kvm: permission denied (add the user to group kvm, or run with \
             --platform=systrap)"
        );
    }
}
