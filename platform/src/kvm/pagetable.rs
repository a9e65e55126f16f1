//! x86-64 four-level page tables, built by the Sentry in memory-file pages.
//!
//! Guest-physical address == memory-file offset, so a table entry holds the memory-file
//! offset of the next table (or of the mapped page). Every address space has its own PML4;
//! the user half (PML4 entries 0..256) is private, the top entry (511) points at the shared
//! ring-0 area's tables (see [`super::layout`]), identical in every address space.
//!
//! Entries are written with release stores through [`MemoryFile::atomic_u64`], so a vCPU's
//! page walker never sees a torn entry. Intermediate tables are allocated on demand and
//! freed only with the address space.

use std::sync::Arc;

use crate::{MemoryFile, Perms, PlatformError, PAGE_SIZE};

/// Page-table entry bits.
pub(super) mod pte {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITE: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const ACCESSED: u64 = 1 << 5;
    pub const DIRTY: u64 = 1 << 6;
    /// A 2 MiB (PD level) or 1 GiB (PDPT level) page.
    pub const HUGE: u64 = 1 << 7;
    pub const NO_EXEC: u64 = 1 << 63;
    /// Bits 12..52: the physical address of the next table or the page.
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
    /// What an intermediate (non-leaf) entry carries: the leaf decides the permissions.
    /// ACCESSED is preset so the walker never has to write the entry.
    pub const TABLE: u64 = PRESENT | WRITE | USER | ACCESSED;
}

/// The leaf entry bits for an application page with `perms` (always user-accessible).
/// x86 cannot express write-only or execute-only: WRITE implies READ, and EXEC alone is
/// readable too. `Perms::empty()` maps nothing (the page faults as not present).
pub(super) fn user_leaf_bits(perms: Perms) -> u64 {
    if perms.is_empty() {
        return 0;
    }
    let mut bits = pte::PRESENT | pte::USER | pte::ACCESSED | pte::DIRTY;
    if perms.contains(Perms::WRITE) {
        bits |= pte::WRITE;
    }
    if !perms.contains(Perms::EXEC) {
        bits |= pte::NO_EXEC;
    }
    bits
}

/// Index of `addr` in the table at `level` (4 = PML4 .. 1 = PT).
fn index(addr: u64, level: u32) -> u64 {
    (addr >> (12 + 9 * (level - 1))) & 0x1ff
}

/// Bytes covered by one entry at `level`.
fn entry_span(level: u32) -> u64 {
    PAGE_SIZE << (9 * (level - 1))
}

/// What to do with each leaf in a range.
#[derive(Clone, Copy)]
enum Op {
    /// Map pages to consecutive offsets from this one, with these leaf bits.
    Map { offset: u64, bits: u64 },
    /// Clear leaves.
    Unmap,
    /// Replace the permission bits of present leaves (0 = make them not present).
    Protect { bits: u64 },
}

/// One address space's page tables.
pub(super) struct PageTables {
    memory: Arc<MemoryFile>,
    /// Memory-file offset (== guest-physical address) of the PML4.
    root: u64,
    /// Every table page this address space owns (the PML4 included), freed on drop.
    owned: Vec<u64>,
}

impl PageTables {
    /// Empty page tables whose PML4 entry 511 is `top_entry` (the shared ring-0 area).
    pub(super) fn new(memory: Arc<MemoryFile>, top_entry: u64) -> Result<Self, PlatformError> {
        let root = memory.allocate(PAGE_SIZE)?.offset;
        memory.write_u64(root + 511 * 8, top_entry)?;
        Ok(Self {
            memory,
            root,
            owned: vec![root],
        })
    }

    /// Tables that own nothing (to take the place of leaked ones).
    pub(super) fn empty(memory: Arc<MemoryFile>) -> Self {
        Self {
            memory,
            root: 0,
            owned: Vec::new(),
        }
    }

    /// The PML4's guest-physical address (what CR3 holds).
    pub(super) fn root(&self) -> u64 {
        self.root
    }

    /// Maps `[addr, addr + len)` to the memory file from `offset` with `perms` (which
    /// must not be empty), overwriting what was there. Returns the entries that replaced
    /// present ones, as [`PageTables::unmap`] does.
    pub(super) fn map(
        &mut self,
        addr: u64,
        len: u64,
        offset: u64,
        perms: Perms,
    ) -> Result<Vec<(u64, u64)>, PlatformError> {
        let bits = user_leaf_bits(perms);
        if bits == 0 {
            return self.apply(addr, len, Op::Unmap);
        }
        self.apply(addr, len, Op::Map { offset, bits })
    }

    /// Maps one page with the given leaf bits (for the platform's own pages).
    pub(super) fn map_page(
        &mut self,
        addr: u64,
        phys: u64,
        bits: u64,
    ) -> Result<(), PlatformError> {
        self.apply(addr, PAGE_SIZE, Op::Map { offset: phys, bits })?;
        Ok(())
    }

    /// Clears every leaf in `[addr, addr + len)`. Returns the leaf entries that were
    /// present, as runs of (guest-physical address of the entry, number of entries).
    pub(super) fn unmap(&mut self, addr: u64, len: u64) -> Result<Vec<(u64, u64)>, PlatformError> {
        self.apply(addr, len, Op::Unmap)
    }

    /// Changes the permissions of present leaves in `[addr, addr + len)`. Returns the
    /// entries changed, as [`PageTables::unmap`] does.
    pub(super) fn protect(
        &mut self,
        addr: u64,
        len: u64,
        perms: Perms,
    ) -> Result<Vec<(u64, u64)>, PlatformError> {
        self.apply(
            addr,
            len,
            Op::Protect {
                bits: user_leaf_bits(perms),
            },
        )
    }

    /// The leaf entry for `addr`, if every level is present.
    #[cfg(test)]
    pub(super) fn leaf(&self, addr: u64) -> Option<u64> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let entry = self.memory.read_u64(table + index(addr, level) * 8).ok()?;
            if entry & pte::PRESENT == 0 {
                return None;
            }
            if level == 1 {
                return Some(entry);
            }
            table = entry & pte::ADDR_MASK;
        }
        None
    }

    /// Every table page (the PML4 included).
    pub(super) fn pages(&self) -> &[u64] {
        &self.owned
    }

    fn apply(&mut self, addr: u64, len: u64, op: Op) -> Result<Vec<(u64, u64)>, PlatformError> {
        let end = addr
            .checked_add(len)
            .ok_or(PlatformError::BadRange { addr, len })?;
        let mut touched = Vec::new();
        self.walk(self.root, 4, 0, addr, end, op, &mut touched)?;
        Ok(touched)
    }

    /// Applies `op` to the part of `[start, end)` covered by `table` (at `level`, whose
    /// first byte maps `base`).
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        table: u64,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        op: Op,
        touched: &mut Vec<(u64, u64)>,
    ) -> Result<(), PlatformError> {
        let span = entry_span(level);
        let mut va = start;
        while va < end {
            let slot = table + index(va, level) * 8;
            let entry_base = base + (va - base) / span * span;
            let entry_end = entry_base.saturating_add(span).min(end);
            let entry = self.memory.read_u64(slot)?;
            if level == 1 {
                match op {
                    Op::Map { offset, bits } => {
                        let phys = offset + (va - start);
                        self.memory
                            .write_u64(slot, (phys & pte::ADDR_MASK) | bits)?;
                        if entry & pte::PRESENT != 0 {
                            note(touched, slot);
                        }
                    }
                    Op::Unmap => {
                        if entry & pte::PRESENT != 0 {
                            self.memory.write_u64(slot, 0)?;
                            note(touched, slot);
                        }
                    }
                    Op::Protect { bits } => {
                        if entry & pte::PRESENT != 0 {
                            let new = if bits == 0 {
                                0
                            } else {
                                (entry & pte::ADDR_MASK) | bits
                            };
                            self.memory.write_u64(slot, new)?;
                            note(touched, slot);
                        }
                    }
                }
            } else {
                let next = if entry & pte::PRESENT != 0 {
                    Some(entry & pte::ADDR_MASK)
                } else if let Op::Map { .. } = op {
                    let page = self.memory.allocate(PAGE_SIZE)?.offset;
                    self.owned.push(page);
                    self.memory.write_u64(slot, page | pte::TABLE)?;
                    Some(page)
                } else {
                    None
                };
                if let Some(next) = next {
                    // A Map op's offset advances with va: rebase it for the sub-range.
                    let sub_op = match op {
                        Op::Map { offset, bits } => Op::Map {
                            offset: offset + (va - start),
                            bits,
                        },
                        other => other,
                    };
                    self.walk(next, level - 1, entry_base, va, entry_end, sub_op, touched)?;
                }
            }
            va = entry_end;
        }
        Ok(())
    }
}

/// Adds the entry at `slot` to `runs`, extending the last run when contiguous.
fn note(runs: &mut Vec<(u64, u64)>, slot: u64) {
    if let Some(last) = runs.last_mut() {
        if last.0 + last.1 * 8 == slot {
            last.1 += 1;
            return;
        }
    }
    runs.push((slot, 1));
}

impl Drop for PageTables {
    fn drop(&mut self) {
        for &page in &self.owned {
            self.memory.free(crate::FileRange {
                offset: page,
                len: PAGE_SIZE,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> (Arc<MemoryFile>, PageTables) {
        let memory = Arc::new(MemoryFile::new(256 * PAGE_SIZE).unwrap());
        let tables = PageTables::new(memory.clone(), 0x1234_5000 | pte::TABLE).unwrap();
        (memory, tables)
    }

    #[test]
    fn leaf_bits_follow_perms() {
        let r = user_leaf_bits(Perms::READ);
        assert_eq!(r & (pte::PRESENT | pte::USER), pte::PRESENT | pte::USER);
        assert_eq!(r & pte::WRITE, 0);
        assert_ne!(r & pte::NO_EXEC, 0);
        let rwx = user_leaf_bits(Perms::all());
        assert_ne!(rwx & pte::WRITE, 0);
        assert_eq!(rwx & pte::NO_EXEC, 0);
        assert_eq!(user_leaf_bits(Perms::empty()), 0);
    }

    #[test]
    fn map_walk_unmap_protect() {
        let (memory, mut pt) = tables();
        assert_eq!(
            memory.read_u64(pt.root() + 511 * 8).unwrap(),
            0x1234_5000 | pte::TABLE
        );
        // Three pages straddling a page-table boundary (2 MiB).
        let addr = 0x7fff_ffdf_e000;
        pt.map(addr, 3 * PAGE_SIZE, 0x40_000, Perms::READ | Perms::WRITE)
            .unwrap();
        for i in 0..3 {
            let leaf = pt.leaf(addr + i * PAGE_SIZE).unwrap();
            assert_eq!(leaf & pte::ADDR_MASK, 0x40_000 + i * PAGE_SIZE);
            assert_ne!(leaf & pte::WRITE, 0);
        }
        assert!(pt.leaf(addr - PAGE_SIZE).is_none());
        assert!(pt.leaf(addr + 3 * PAGE_SIZE).is_none());
        // PML4 + PDPT + PD + 2 PTs.
        assert_eq!(pt.owned.len(), 5);

        let runs = pt
            .protect(addr + PAGE_SIZE, PAGE_SIZE, Perms::READ | Perms::EXEC)
            .unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].1, 1);
        let leaf = pt.leaf(addr + PAGE_SIZE).unwrap();
        assert_eq!(leaf & (pte::WRITE | pte::NO_EXEC), 0);
        assert_eq!(leaf & pte::ADDR_MASK, 0x41_000);

        // Two pages in one table, one in the next: two runs of entries.
        let runs = pt.protect(addr, 3 * PAGE_SIZE, Perms::READ).unwrap();
        // (They coalesce into one when the two tables happen to be adjacent pages.)
        assert_eq!(runs.iter().map(|r| r.1).sum::<u64>(), 3);
        assert_eq!(runs[0].0 % PAGE_SIZE, 510 * 8);
        assert_eq!(pt.unmap(addr, PAGE_SIZE).unwrap().len(), 1);
        assert!(pt.leaf(addr).is_none());
        assert!(pt.leaf(addr + PAGE_SIZE).is_some());
        // Unmapping or protecting a hole touches nothing and allocates nothing.
        assert!(pt.unmap(0x1000_0000, 1 << 40).unwrap().is_empty());
        assert!(pt
            .protect(0x1000_0000, 1 << 40, Perms::READ)
            .unwrap()
            .is_empty());
        assert_eq!(pt.owned.len(), 5);
    }

    #[test]
    fn drop_frees_tables() {
        let (memory, mut pt) = tables();
        pt.map(0x40_0000, PAGE_SIZE, 0, Perms::READ).unwrap();
        assert_eq!(memory.allocated(), 4 * PAGE_SIZE);
        drop(pt);
        assert_eq!(memory.allocated(), 0);
    }
}
