//! The virtual machine: one per sandbox. Owns the KVM VM, registers the memory file as
//! guest-physical memory (guest-physical address == memory-file offset), builds the shared
//! ring-0 area, and keeps the pool of vCPUs that contexts lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use kvm_bindings::{kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::VmFd;

use super::fpu::{self, FpuSlot};
use super::layout::{self, RING0_BASE};
use super::pagetable::pte;
use super::trampoline::{self, Entry, ARCH_STUB_SIZE};
use super::vcpu::{Vcpu, VcpuShared};
use super::{cpuid, KvmError, Path};
use crate::{FileRange, MemoryFile, PAGE_SIZE};

/// Leaf bits of the ring-0 area's pages.
const RING0_CODE: u64 = pte::PRESENT | pte::ACCESSED;
const RING0_RODATA: u64 = pte::PRESENT | pte::ACCESSED | pte::NO_EXEC;
const RING0_DATA: u64 = pte::PRESENT | pte::WRITE | pte::ACCESSED | pte::DIRTY | pte::NO_EXEC;

pub(super) struct Machine {
    /// Kept open for the VM's life.
    _kvm: kvm_ioctls::Kvm,
    pub vm: VmFd,
    pub memory: Arc<MemoryFile>,
    pub cpuid: CpuId,
    pub xcr0: u64,
    /// KVM_CAP_SYNC_REGS: registers travel in kvm_run instead of through ioctls.
    pub sync_regs: bool,
    /// PML4 entry 511 of every address space: the ring-0 area's PDPT.
    pub top_entry: u64,
    /// The ring-0 area's page table (guest-physical).
    ring0_pt: u64,
    /// The PVM path's syscall exit page (guest-physical).
    pub exit_page: u64,
    /// A PML4 mapping only the ring-0 area, for vCPUs that run no address space yet.
    pub idle_root: u64,
    /// Memory-file ranges of the ring-0 area, freed with the machine.
    owned: Mutex<Vec<FileRange>>,
    path: RwLock<Path>,
    pool: Mutex<PoolState>,
    pool_cond: Condvar,
    /// Every vCPU's shared half, by index (for kicks).
    pub vcpus: Arc<RwLock<Vec<Arc<VcpuShared>>>>,
    max_vcpus: usize,
    next_id: AtomicU64,
    /// The vCPU that rewrites page-table entries so that KVM drops its shadow of them.
    maintenance: Mutex<Option<Box<Vcpu>>>,
    /// Whether guest code reads the host's TSC: the first vCPU's TSC offset could be set
    /// to zero (and then every vCPU's must be). Decided when the first vCPU is made.
    pub host_tsc: std::sync::OnceLock<bool>,
}

struct PoolState {
    idle: Vec<Vcpu>,
    created: usize,
    /// Threads waiting for a vCPU: a release wakes one only if there is one (a
    /// `notify_one` is a futex system call even with nobody waiting, on every switch).
    waiting: usize,
}

impl Machine {
    pub(super) fn new(memory: Arc<MemoryFile>, max_vcpus: usize) -> Result<Self, KvmError> {
        let kvm = kvm_ioctls::Kvm::new().map_err(KvmError::open)?;
        let vm = kvm
            .create_vm()
            .map_err(|e| KvmError::Ioctl("KVM_CREATE_VM", e))?;
        let size = memory.size();
        let host = memory.ptr(0, size).map_err(KvmError::Memory)?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: size,
            userspace_addr: host as u64,
        };
        // SAFETY: the region is the memory file's own mapping, `size` bytes long, which
        // lives as long as `memory`; the machine holds `memory`, and the VM (closed when the
        // machine drops) cannot outlive it.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| KvmError::Ioctl("KVM_SET_USER_MEMORY_REGION", e))?;

        let mut entries = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| KvmError::Ioctl("KVM_GET_SUPPORTED_CPUID", e))?
            .as_slice()
            .to_vec();
        cpuid::filter(&mut entries);
        let xcr0 = cpuid::xcr0(&entries);
        let cpuid = CpuId::from_entries(&entries).map_err(|_| KvmError::CpuidTooLarge)?;

        let mut owned = Vec::new();
        let mut page = |memory: &MemoryFile| -> Result<u64, KvmError> {
            let r = memory.allocate(PAGE_SIZE).map_err(KvmError::Memory)?;
            owned.push(r);
            Ok(r.offset)
        };
        let pdpt = page(&memory)?;
        let pd = page(&memory)?;
        let pt = page(&memory)?;
        let idle_root = page(&memory)?;
        let tramp0 = page(&memory)?;
        let tramp1 = page(&memory)?;
        let idt_arch = page(&memory)?;
        let idt_pvm = page(&memory)?;
        let exit_page = page(&memory)?;
        memory
            .write(exit_page, &layout::PVM_EXIT_CODE)
            .map_err(KvmError::Memory)?;
        let top_entry = pdpt | pte::TABLE;
        let w = |off: u64, v: u64| memory.write_u64(off, v).map_err(KvmError::Memory);
        w(pdpt + (RING0_BASE >> 30 & 0x1ff) * 8, pd | pte::TABLE)?;
        w(pd + (RING0_BASE >> 21 & 0x1ff) * 8, pt | pte::TABLE)?;
        w(idle_root + 511 * 8, top_entry)?;

        // The physmap (2 MiB pages) in the idle page tables, for the maintenance vCPU.
        let physmap_pdpt = page(&memory)?;
        w(
            idle_root + (layout::PHYSMAP_BASE >> 39 & 0x1ff) * 8,
            physmap_pdpt | pte::TABLE,
        )?;
        let reach = size.min(layout::PHYSMAP_SIZE);
        for gib in 0..reach.div_ceil(1 << 30) {
            let pd = page(&memory)?;
            w(physmap_pdpt + gib * 8, pd | pte::TABLE)?;
            for i in 0..512 {
                let phys = (gib << 30) + (i << 21);
                if phys >= reach {
                    break;
                }
                w(pd + i * 8, phys | RING0_DATA | pte::HUGE)?;
            }
        }

        // Trampoline code: the blob is at most two pages (checked by a unit test).
        let code = trampoline::code();
        const _: () = assert!(layout::TRAMPOLINE_PAGES == 2);
        let (first, second) = code.split_at(code.len().min(4096));
        memory.write(tramp0, first).map_err(KvmError::Memory)?;
        memory.write(tramp1, second).map_err(KvmError::Memory)?;
        // IDTs.
        for v in 0..=255u8 {
            let dpl = layout::gate_dpl(v);
            let arch = layout::TRAMPOLINE
                + trampoline::offset(Entry::ArchStubs)
                + u64::from(v) * ARCH_STUB_SIZE;
            let pvm = layout::TRAMPOLINE + trampoline::offset(Entry::PvmStubs) + u64::from(v);
            for (idt, handler) in [(idt_arch, arch), (idt_pvm, pvm)] {
                let [lo, hi] = layout::idt_gate(handler, dpl);
                w(idt + u64::from(v) * 16, lo)?;
                w(idt + u64::from(v) * 16 + 8, hi)?;
            }
        }

        let slot = |va: u64| pt + ((va - RING0_BASE) / PAGE_SIZE) * 8;
        w(slot(layout::TRAMPOLINE), tramp0 | RING0_CODE)?;
        w(slot(layout::TRAMPOLINE + PAGE_SIZE), tramp1 | RING0_CODE)?;
        w(slot(layout::IDT_ARCH), idt_arch | RING0_RODATA)?;
        w(slot(layout::IDT_PVM), idt_pvm | RING0_RODATA)?;
        let sync_regs = vm.check_extension(kvm_ioctls::Cap::SyncRegs);
        let machine = Self {
            _kvm: kvm,
            vm,
            memory: memory.clone(),
            cpuid,
            xcr0,
            sync_regs,
            top_entry,
            ring0_pt: pt,
            exit_page,
            idle_root,
            owned: Mutex::new(owned),
            path: RwLock::new(Path::Architectural),
            pool: Mutex::new(PoolState {
                idle: Vec::new(),
                created: 0,
                waiting: 0,
            }),
            pool_cond: Condvar::new(),
            vcpus: Arc::new(RwLock::new(Vec::new())),
            max_vcpus: max_vcpus.clamp(1, layout::MAINTENANCE_VCPU),
            next_id: AtomicU64::new(1),
            maintenance: Mutex::new(None),
            host_tsc: std::sync::OnceLock::new(),
        };
        Ok(machine)
    }

    fn pt_slot(&self, va: u64) -> u64 {
        self.ring0_pt + ((va - RING0_BASE) / PAGE_SIZE) * 8
    }

    /// The path vCPUs run on.
    pub(super) fn path(&self) -> Path {
        *self.path.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Chooses the path (after the probe, before any context runs).
    pub(super) fn set_path(&self, path: Path) {
        *self.path.write().unwrap_or_else(|e| e.into_inner()) = path;
    }

    /// Allocates and maps vCPU `index`'s block; returns its guest-physical address.
    pub(super) fn map_vcpu_block(&self, index: usize) -> Result<u64, KvmError> {
        let range = self
            .memory
            .allocate(layout::VCPU_BLOCK_SIZE)
            .map_err(KvmError::Memory)?;
        self.owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(range);
        let va = layout::vcpu_block(index);
        for page in 0..layout::VCPU_BLOCK_SIZE / PAGE_SIZE {
            self.memory
                .write_u64(
                    self.pt_slot(va + page * PAGE_SIZE),
                    (range.offset + page * PAGE_SIZE) | RING0_DATA,
                )
                .map_err(KvmError::Memory)?;
        }
        Ok(range.offset)
    }

    /// A fresh id for an address space or context (never 0).
    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Leases a vCPU, preferring `hint` (the one the caller last ran on). Blocks while all
    /// vCPUs are leased and no more may be created.
    pub(super) fn lease(
        self: &Arc<Self>,
        hint: Option<usize>,
        keep: Option<&Arc<FpuSlot>>,
    ) -> Result<Vcpu, KvmError> {
        let mut vcpu = self.lease_any(hint)?;
        // Save the previous context's FPU state out of it (not the caller's own).
        if let Err(e) = fpu::evict(&mut vcpu, keep) {
            self.release(vcpu);
            return Err(e);
        }
        Ok(vcpu)
    }

    fn lease_any(self: &Arc<Self>, hint: Option<usize>) -> Result<Vcpu, KvmError> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(i) = hint.and_then(|h| pool.idle.iter().position(|v| v.index == h)) {
                return Ok(pool.idle.swap_remove(i));
            }
            if pool.created < self.max_vcpus && (pool.idle.is_empty() || hint.is_none()) {
                let index = pool.created;
                pool.created += 1;
                drop(pool);
                return match Vcpu::new(self, index) {
                    Ok(v) => Ok(v),
                    Err(e) => {
                        // Give the slot back (only the last index can be retried, and it is
                        // this one unless another thread created more meanwhile).
                        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
                        if pool.created == index + 1 {
                            pool.created = index;
                        }
                        Err(e)
                    }
                };
            }
            if let Some(v) = pool.idle.pop() {
                return Ok(v);
            }
            pool.waiting += 1;
            pool = self.pool_cond.wait(pool).unwrap_or_else(|e| e.into_inner());
            pool.waiting -= 1;
        }
    }

    /// Takes vCPU `index` out of the pool if it is idle.
    pub(super) fn take_idle(&self, index: usize) -> Option<Vcpu> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let i = pool.idle.iter().position(|v| v.index == index)?;
        Some(pool.idle.swap_remove(i))
    }

    /// Returns a leased vCPU to the pool.
    pub(super) fn release(&self, vcpu: Vcpu) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.idle.push(vcpu);
        let wake = pool.waiting > 0;
        drop(pool);
        if wake {
            self.pool_cond.notify_one();
        }
    }

    /// Makes KVM forget every cached translation built from the page-table entries in
    /// `runs` ((guest-physical address, count) pairs), on every vCPU, before returning.
    ///
    /// Needed where KVM shadows the guest's page tables (`kvm_pvm`, or hardware without
    /// EPT/NPT): it write-protects the guest page-table pages in the guest's mappings and
    /// learns of changes from the guest's writes, but the Sentry writes them through its
    /// own mapping of the memory file, which KVM never sees. Measured on the PVM host: after
    /// a host-side PTE change, neither `KVM_SET_SREGS` with the same CR3 nor a CR3 switch
    /// away and back drops the stale shadow entry. So the maintenance vCPU copies each run
    /// of entries onto itself from ring 0 (through the physmap); KVM's write tracking then
    /// zaps the shadow entries and flushes every vCPU's TLB. On hardware with EPT/NPT the
    /// rewrite is redundant and cheap (native ring-0 code).
    pub(super) fn forget_entries(self: &Arc<Self>, runs: &[(u64, u64)]) -> Result<(), KvmError> {
        if runs.is_empty() {
            return Ok(());
        }
        let mut slot = self.maintenance.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(Box::new(Vcpu::new(self, layout::MAINTENANCE_VCPU)?));
        }
        let Some(vcpu) = slot.as_mut() else {
            return Ok(());
        };
        let result = vcpu.rewrite(self, runs);
        if result.is_err() {
            // Start from a fresh state next time.
            let _ = vcpu.configure(self, self.path());
        }
        result
    }

    /// Zeroes page-table pages about to be freed and makes KVM forget its shadow of them,
    /// so that a page reused as a page table never brings stale translations with it.
    pub(super) fn retire_tables(self: &Arc<Self>, pages: &[u64]) -> Result<(), KvmError> {
        let mut runs = Vec::with_capacity(pages.len());
        for &page in pages {
            self.memory
                .zero(page, PAGE_SIZE)
                .map_err(KvmError::Memory)?;
            runs.push((page, PAGE_SIZE / 8));
        }
        self.forget_entries(&runs)
    }

    /// The vCPUs' shared halves.
    pub(super) fn vcpu_shared(&self) -> Vec<Arc<VcpuShared>> {
        self.vcpus.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // vCPUs (and their kvm_run mappings) are dropped with the pool first.
        *self.maintenance.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .idle
            .clear();
        for r in self
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            self.memory.free(r);
        }
    }
}
