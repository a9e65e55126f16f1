//! Bulwark's vDSO: `clock_gettime`, `gettimeofday`, `time` and `getcpu` answered in the
//! application, without an exit to the Sentry.
//!
//! The image (`vdso/vdso.c`, built by `build.rs`) is mapped into every process after
//! `execve`, with one page of parameters (the vvar page) just below it. The Sentry publishes
//! on that page, under a sequence lock, how to turn a TSC reading into nanoseconds: a
//! base TSC value, the monotonic and realtime clocks at that moment, and the rate. A
//! background thread calibrates the rate at start and re-bases every second. Where the
//! application's TSC is not the host's (`Platform::host_tsc`), the page says so and every
//! call falls back to the real syscall.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use platform::{MemoryFile, Perms};

use crate::errno::{Errno, SysResult};
use crate::mm::{MapFlags, MemoryManager, MemoryObject, Page, UserAddr, PAGE_SIZE};

/// The image built from `vdso/vdso.c`.
pub static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// Offsets in the vvar page (`struct vvar` in vdso.c).
const SEQ: u64 = 0;
const VALID: u64 = 4;
const TSC_BASE: u64 = 8;
const MONO_BASE: u64 = 16;
const REAL_BASE: u64 = 24;
const MULT: u64 = 32;
const SHIFT: u64 = 40;
/// `ns = (tsc delta * mult) >> SHIFT_BITS`.
const SHIFT_BITS: u32 = 32;

/// Pages that never change: the image, or the vvar page (which only the Sentry writes).
#[derive(Debug)]
struct Pages(Vec<Arc<Page>>, &'static str);

impl MemoryObject for Pages {
    fn page(&self, index: u64) -> SysResult<Option<Arc<Page>>> {
        Ok(usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .cloned())
    }

    fn name(&self) -> String {
        self.1.to_string()
    }
}

/// The vDSO of one sandbox.
#[derive(Debug)]
pub struct Vdso {
    memory: Arc<MemoryFile>,
    vvar: Arc<Pages>,
    image: Arc<Pages>,
}

impl Vdso {
    /// Loads the image into memory-file pages. With `host_tsc`, starts the thread that
    /// publishes the time parameters; without, the vDSO always takes the syscall.
    pub fn new(memory: &Arc<MemoryFile>, host_tsc: bool) -> SysResult<Arc<Self>> {
        let vvar = Page::new(memory)?;
        let mut image = Vec::new();
        for chunk in IMAGE.chunks(usize::try_from(PAGE_SIZE).unwrap_or(4096)) {
            let page = Page::new(memory)?;
            memory
                .write(page.offset(), chunk)
                .map_err(|_| Errno::ENOMEM)?;
            image.push(page);
        }
        let vdso = Arc::new(Self {
            memory: Arc::clone(memory),
            vvar: Arc::new(Pages(vec![vvar], "[vvar]")),
            image: Arc::new(Pages(image, "[vdso]")),
        });
        if host_tsc && tsc_is_invariant() {
            let weak = Arc::downgrade(&vdso);
            std::thread::Builder::new()
                .name("vdso-clock".to_string())
                .spawn(move || publish_loop(&weak))
                .map_err(|_| Errno::EAGAIN)?;
        }
        Ok(vdso)
    }

    /// Maps the vvar page and the image into `mm`; returns the image's address (for
    /// `AT_SYSINFO_EHDR`).
    pub fn map(&self, mm: &MemoryManager) -> SysResult<u64> {
        let pages = self.image.0.len() as u64;
        let len = (pages + 1) * PAGE_SIZE;
        let base = mm.mmap(UserAddr::NULL, len, Perms::READ, MapFlags::default(), None)?;
        let fixed = MapFlags {
            fixed: true,
            ..MapFlags::default()
        };
        let vvar = Arc::clone(&self.vvar) as Arc<dyn MemoryObject>;
        mm.mmap(base, PAGE_SIZE, Perms::READ, fixed, Some((vvar, 0)))?;
        let image_at = base.checked_add(PAGE_SIZE)?;
        let image = Arc::clone(&self.image) as Arc<dyn MemoryObject>;
        mm.mmap(
            image_at,
            pages * PAGE_SIZE,
            Perms::READ | Perms::EXEC,
            fixed,
            Some((image, 0)),
        )?;
        Ok(image_at.get())
    }

    fn vvar_offset(&self) -> u64 {
        self.vvar.0[0].offset()
    }

    /// Publishes new parameters under the sequence lock.
    fn publish(&self, tsc_base: u64, mono: u64, real: u64, mult: u64) {
        let at = self.vvar_offset();
        let m = &self.memory;
        let Ok(seq) = m.atomic_u32(at + SEQ) else {
            return;
        };
        let next = seq.load(Ordering::Relaxed).wrapping_add(1) | 1;
        seq.store(next, Ordering::Release);
        std::sync::atomic::fence(Ordering::Release);
        let _ = m.write_u64(at + TSC_BASE, tsc_base);
        let _ = m.write_u64(at + MONO_BASE, mono);
        let _ = m.write_u64(at + REAL_BASE, real);
        let _ = m.write_u64(at + MULT, mult);
        if let Ok(shift) = m.atomic_u32(at + SHIFT) {
            shift.store(SHIFT_BITS, Ordering::Relaxed);
        }
        if let Ok(valid) = m.atomic_u32(at + VALID) {
            valid.store(1, Ordering::Relaxed);
        }
        std::sync::atomic::fence(Ordering::Release);
        seq.store(next.wrapping_add(1), Ordering::Release);
    }
}

/// Whether the CPU's TSC runs at a constant rate through power states (CPUID
/// 0x8000_0007 EDX bit 8), which the extrapolation needs.
fn tsc_is_invariant() -> bool {
    std::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
}

fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec.unsigned_abs() * 1_000_000_000 + t.tv_nsec.unsigned_abs()
}

fn realtime_ns() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    d.as_secs() * 1_000_000_000 + u64::from(d.subsec_nanos())
}

/// A TSC reading and the monotonic clock at (nearly) the same moment: the pair whose
/// two clock reads lie closest together of a few tries.
fn sample() -> (u64, u64) {
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..5 {
        let before = monotonic_ns();
        let tsc = platform::rdtsc();
        let after = monotonic_ns();
        let spread = after.saturating_sub(before);
        if spread < best.0 {
            best = (spread, tsc, before + spread / 2);
        }
    }
    (best.1, best.2)
}

/// How long after start the parameters are published, and re-published: a first rate
/// from 2 ms of counting (so that a program starting at once takes the fast path, not
/// the syscall), a better one at 50 ms, then every second. The rate comes from the whole
/// time since start, so it only gets more precise.
const PUBLISH_AFTER: [Duration; 3] = [
    Duration::from_millis(2),
    Duration::from_millis(48),
    Duration::from_secs(1),
];

/// Calibrates, then re-bases for as long as the vDSO lives (see [`PUBLISH_AFTER`]); the
/// monotonic base never moves backwards.
fn publish_loop(vdso: &Weak<Vdso>) {
    let (tsc0, mono0) = sample();
    let mut waits = PUBLISH_AFTER.iter();
    let mut wait = waits.next().copied().unwrap_or(Duration::from_secs(1));
    std::thread::sleep(wait);
    let mut last: Option<(u64, u64, u64)> = None; // (tsc_base, mono_base, mult)
    loop {
        let Some(vdso) = vdso.upgrade() else { return };
        let (tsc, mono) = sample();
        let (dt, dn) = (tsc.saturating_sub(tsc0), mono.saturating_sub(mono0));
        if dt > 0 {
            let mult = u64::try_from((u128::from(dn) << SHIFT_BITS) / u128::from(dt)).unwrap_or(0);
            // What the old parameters say it is now: the new base may not be earlier.
            let extrapolated = last.map_or(0, |(b, m, k)| {
                let delta = u128::from(tsc.saturating_sub(b)) * u128::from(k);
                m + u64::try_from(delta >> SHIFT_BITS).unwrap_or(0)
            });
            let mono_base = mono.max(extrapolated);
            let real = realtime_ns().saturating_sub(monotonic_ns().saturating_sub(mono));
            vdso.publish(tsc, mono_base, real, mult);
            last = Some((tsc, mono_base, mult));
        }
        drop(vdso);
        wait = waits.next().copied().unwrap_or(wait);
        std::thread::sleep(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_is_an_elf_shared_object_with_the_symbols() {
        assert_eq!(&IMAGE[..4], b"\x7fELF");
        assert_eq!(IMAGE[16], 3, "ET_DYN");
        let text = String::from_utf8_lossy(IMAGE);
        for sym in [
            "__vdso_clock_gettime",
            "__vdso_gettimeofday",
            "__vdso_time",
            "__vdso_getcpu",
            "LINUX_2.6",
        ] {
            assert!(text.contains(sym), "{sym}");
        }
    }
}
