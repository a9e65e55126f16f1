//! The Sentry's side of one stub process: spawning it, the shared stub file, the control
//! channel (address-space requests) and the slots of its application threads.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::stub::*;
use super::{seccomp, SystrapError};

/// How long a waiting Sentry thread spins before it yields. The spin has no `pause`
/// (`spin_loop`): see the stub's `HANDLER_SPIN`.
const SPIN: Duration = Duration::from_micros(3);
/// How long a waiting Sentry thread keeps yielding (see the stub's `HANDLER_YIELDS`)
/// before it sleeps on a futex.
const YIELD: Duration = Duration::from_micros(50);
/// How long a sleeping Sentry thread waits before it checks that the stub still lives.
const LIVENESS_PERIOD: Duration = Duration::from_millis(100);
/// How long a stub may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Namespaces each stub gets: nothing of the host is reachable from it.
pub(crate) const NAMESPACES: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// The shared region of a stub (the stub file), mapped into the Sentry.
pub(crate) struct Region {
    fd: OwnedFd,
    base: *mut u8,
}

// SAFETY: `base` points to a shared mapping owned by the Region for its whole life; all
// access goes through atomics or bounds-checked raw copies, which are sound from any thread
// (the stub may change the same bytes concurrently; a copy then sees some mix of values).
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    fn new() -> Result<Self, SystrapError> {
        // SAFETY: the name is NUL-terminated; the flags are valid.
        let raw = unsafe { libc::memfd_create(c"bulwark-stub".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(SystrapError::StubFile(std::io::Error::last_os_error()));
        }
        // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let len = libc::off_t::try_from(REGION_LEN).expect("the region is small");
        // SAFETY: ftruncate on our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len) } != 0 {
            return Err(SystrapError::StubFile(std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh shared mapping of our memfd at an address the kernel picks.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                region_len(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(SystrapError::StubFile(std::io::Error::last_os_error()));
        }
        Ok(Self {
            fd,
            base: base.cast::<u8>(),
        })
    }

    fn check(off: u64, len: u64) -> Result<usize, SystrapError> {
        match off.checked_add(len) {
            Some(end) if end <= REGION_LEN => {
                usize::try_from(off).map_err(|_| SystrapError::BadFrame)
            }
            _ => Err(SystrapError::BadFrame),
        }
    }

    /// The 32-bit word at `off` (4-aligned, inside the region).
    fn u32_at(&self, off: u64) -> &AtomicU32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= REGION_LEN,
            "bad region offset {off:#x}"
        );
        // SAFETY: the offset is aligned and inside the mapping (asserted), which lives as
        // long as `self`; AtomicU32 has u32's layout and any bit pattern is valid.
        unsafe { &*self.base.add(host(off)).cast::<AtomicU32>() }
    }

    /// The 64-bit word at `off` (8-aligned, inside the region).
    fn u64_at(&self, off: u64) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off + 8 <= REGION_LEN,
            "bad region offset {off:#x}"
        );
        // SAFETY: as in `u32_at`.
        unsafe { &*self.base.add(host(off)).cast::<AtomicU64>() }
    }

    pub(crate) fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), SystrapError> {
        let at = Self::check(off, buf.len() as u64)?;
        // SAFETY: `check` proved the range lies in the mapping; `buf` is a distinct Rust
        // allocation.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(at), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    pub(crate) fn write(&self, off: u64, buf: &[u8]) -> Result<(), SystrapError> {
        let at = Self::check(off, buf.len() as u64)?;
        // SAFETY: as in `read`.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), self.base.add(at), buf.len()) };
        Ok(())
    }

    pub(crate) fn read_u64(&self, off: u64) -> Result<u64, SystrapError> {
        let mut b = [0u8; 8];
        self.read(off, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub(crate) fn write_u64(&self, off: u64, v: u64) -> Result<(), SystrapError> {
        self.write(off, &v.to_le_bytes())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `base` is the mapping made in `new`, of `region_len()` bytes, and no
        // reference into it outlives `self`.
        unsafe { libc::munmap(self.base.cast(), region_len()) };
    }
}

/// A region offset already checked against REGION_LEN, as usize.
fn host(off: u64) -> usize {
    usize::try_from(off).expect("region offsets are small")
}

fn region_len() -> usize {
    usize::try_from(REGION_LEN).expect("the region is small")
}

/// One address-space operation for the stub's main thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Op {
    pub kind: u32,
    pub prot: u32,
    pub addr: u64,
    pub len: u64,
    pub offset: u64,
}

/// Per-slot bookkeeping on the Sentry side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    Used,
    /// Told to exit; free again once the kernel has cleared its TID word.
    Exiting,
}

/// A stub process.
pub(crate) struct Stub {
    pub(crate) id: u64,
    pid: libc::pid_t,
    region: Region,
    control: Mutex<u32>,
    slots: Mutex<Vec<Slot>>,
    dead: AtomicBool,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Stub {
    /// Starts a stub process whose application memory comes from `memfd`.
    /// Without `namespaces` (for tests), the stub shares the Sentry's namespaces, as it
    /// does where the host does not permit new ones.
    pub(crate) fn spawn(
        memfd: i32,
        fsgsbase: bool,
        namespaces: bool,
    ) -> Result<Self, SystrapError> {
        let region = Region::new()?;
        let code = code();
        assert!(code.len() as u64 <= CODE_LEN, "the stub outgrew its pages");
        region.write(0, code)?;
        for (off, fprog, filter) in [
            (FILTER_A_OFF, C_FPROG_A, seccomp::stub_filter(memfd)),
            (FILTER_B_OFF, C_FPROG_B, seccomp::thread_filter()),
        ] {
            let bytes = seccomp::to_bytes(&filter);
            assert!(
                bytes.len() as u64 <= FILTER_MAX_BYTES,
                "seccomp filter too long"
            );
            region.write(off, &bytes)?;
            let n = u16::try_from(filter.len()).expect("checked above");
            region.write(CTRL_OFF + fprog, &u64::from(n).to_le_bytes())?;
            region.write_u64(CTRL_OFF + fprog + 8, STUB_BASE + off)?;
        }
        // Where the stub writes its PID into filter A (the `k` of that instruction).
        let patch =
            FILTER_A_OFF + 8 * seccomp::pid_patch_index(&seccomp::stub_filter(memfd)) as u64 + 4;
        region.u32_at(CTRL_OFF + C_PID_PATCH).store(
            u32::try_from(patch).expect("inside the filter page"),
            Ordering::Relaxed,
        );
        region
            .u32_at(CTRL_OFF + C_FSGSBASE)
            .store(u32::from(fsgsbase), Ordering::Relaxed);
        let pid = spawner().spawn(region.fd.as_raw_fd(), memfd, namespaces)?;
        let stub = Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            pid,
            region,
            control: Mutex::new(0),
            slots: Mutex::new(vec![Slot::Free; MAX_SLOTS as usize]),
            dead: AtomicBool::new(false),
        };
        // Wait for the stub to say it is ready (or to die trying).
        let ready = stub.region.u32_at(CTRL_OFF + C_READY);
        let start = Instant::now();
        while ready.load(Ordering::Acquire) == 0 {
            if let Some(status) = stub.exit_status() {
                return Err(SystrapError::StubDied { status });
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(SystrapError::StubTimeout);
            }
            futex_wait(ready, 0, Some(Duration::from_millis(10)));
        }
        Ok(stub)
    }

    pub(crate) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    /// The process's wait status if it has exited (without reaping it).
    fn exit_status(&self) -> Option<i32> {
        // SAFETY: an all-zero siginfo_t is a valid value for waitid to fill in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let id = libc::id_t::try_from(self.pid).ok()?;
        // SAFETY: waitid on our own child, writing into `info`; WNOWAIT leaves it reapable.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                id,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT | libc::__WALL,
            )
        };
        // SAFETY: waitid filled `info` (or left it zero, with si_pid 0).
        if rc == 0 && unsafe { info.si_pid() } == self.pid {
            self.dead.store(true, Ordering::Release);
            // SAFETY: as above.
            Some(unsafe { info.si_status() })
        } else {
            None
        }
    }

    /// Checks that the stub is alive, for waits that have slept a while.
    fn check_alive(&self) -> Result<(), SystrapError> {
        if self.dead.load(Ordering::Acquire) {
            return Err(SystrapError::StubDied { status: -1 });
        }
        match self.exit_status() {
            Some(status) => Err(SystrapError::StubDied { status }),
            None => Ok(()),
        }
    }

    /// Has the stub's main thread perform `ops`, in order, and waits until it has. Stops at
    /// the first failure and returns its errno.
    pub(crate) fn request(&self, ops: &[Op]) -> Result<(), SystrapError> {
        let mut seq = self.control.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in ops.chunks(MAX_OPS as usize) {
            for (i, op) in chunk.iter().enumerate() {
                let at = CTRL_OFF + C_OPS + i as u64 * OP_SIZE;
                self.region.u32_at(at).store(op.kind, Ordering::Relaxed);
                self.region.u32_at(at + 4).store(op.prot, Ordering::Relaxed);
                self.region.u64_at(at + 8).store(op.addr, Ordering::Relaxed);
                self.region.u64_at(at + 16).store(op.len, Ordering::Relaxed);
                self.region
                    .u64_at(at + 24)
                    .store(op.offset, Ordering::Relaxed);
            }
            let n = u32::try_from(chunk.len()).expect("chunks are small");
            self.region
                .u32_at(CTRL_OFF + C_NOPS)
                .store(n, Ordering::Relaxed);
            *seq = seq.wrapping_add(1);
            let req = self.region.u32_at(CTRL_OFF + C_REQ);
            req.swap(*seq, Ordering::SeqCst);
            if self
                .region
                .u32_at(CTRL_OFF + C_MAIN_SLEEPING)
                .load(Ordering::SeqCst)
                != 0
            {
                futex_wake(req);
            }
            let done = self.region.u32_at(CTRL_OFF + C_DONE);
            let sleeping = self.region.u32_at(CTRL_OFF + C_SENTRY_SLEEPING);
            let target = *seq;
            self.wait_until(done, sleeping, |v| v == target)?;
            let result = self
                .region
                .u64_at(CTRL_OFF + C_RESULT)
                .load(Ordering::Acquire);
            if result != 0 {
                let errno = i32::try_from(result.wrapping_neg()).unwrap_or(libc::EINVAL);
                return Err(SystrapError::Request(std::io::Error::from_raw_os_error(
                    errno,
                )));
            }
        }
        Ok(())
    }

    /// Waits until `pred(word)` holds: spins for a while, then sleeps on the futex with
    /// `sleeping` raised (the stub wakes us when it sees it), checking now and then that
    /// the stub still lives.
    pub(crate) fn wait_until(
        &self,
        word: &AtomicU32,
        sleeping: &AtomicU32,
        pred: impl Fn(u32) -> bool,
    ) -> Result<u32, SystrapError> {
        let start = Instant::now();
        let mut n = 0u32;
        loop {
            let v = word.load(Ordering::Acquire);
            if pred(v) {
                return Ok(v);
            }
            n = n.wrapping_add(1);
            // Reading the clock costs ~100 ns in a VM: look at it rarely (the loop body is
            // a load, about a ns).
            if n.is_multiple_of(1024) {
                let t = start.elapsed();
                if t > YIELD {
                    break;
                }
                if t > SPIN {
                    std::thread::yield_now();
                }
            }
        }
        loop {
            sleeping.swap(1, Ordering::SeqCst);
            let v = word.load(Ordering::SeqCst);
            if pred(v) {
                sleeping.store(0, Ordering::Relaxed);
                return Ok(v);
            }
            if !futex_wait(word, v, Some(LIVENESS_PERIOD)) {
                if let Err(e) = self.check_alive() {
                    sleeping.store(0, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }

    /// A new application thread, parked in its handler, and its slot.
    pub(crate) fn new_thread(&self) -> Result<u32, SystrapError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let mut found = None;
            for (i, s) in slots.iter_mut().enumerate() {
                let i = u32::try_from(i).expect("MAX_SLOTS is small");
                if *s == Slot::Exiting && self.slot_u32(i, T_TID).load(Ordering::Acquire) == 0 {
                    *s = Slot::Free;
                }
                if *s == Slot::Free {
                    *s = Slot::Used;
                    found = Some(i);
                    break;
                }
            }
            found.ok_or(SystrapError::TooManyThreads)?
        };
        let base = slot_off(slot);
        for off in [
            T_STATE,
            T_STUB_SLEEPING,
            T_SENTRY_SLEEPING,
            T_TID,
            T_SIG,
            T_KICK,
            T_CMD,
        ] {
            self.region.u32_at(base + off).store(0, Ordering::Relaxed);
        }
        self.region
            .u32_at(CTRL_OFF + C_NSLOTS)
            .fetch_max(slot + 1, Ordering::SeqCst);
        let created = self.request(&[Op {
            kind: OP_THREAD,
            prot: 0,
            addr: STUB_BASE + base,
            len: 0,
            offset: 0,
        }]);
        let parked = created.and_then(|()| {
            self.wait_until(
                self.slot_u32(slot, T_STATE),
                self.slot_u32(slot, T_SENTRY_SLEEPING),
                |v| v == STATE_STOPPED,
            )
        });
        if let Err(e) = parked {
            self.slots.lock().unwrap_or_else(|e| e.into_inner())[slot as usize] = Slot::Exiting;
            return Err(e);
        }
        Ok(slot)
    }

    /// Tells a parked thread to exit and gives its slot back.
    pub(crate) fn release_thread(&self, slot: u32) {
        self.slot_u32(slot, T_CMD)
            .store(CMD_EXIT, Ordering::Relaxed);
        self.resume(slot);
        self.slots.lock().unwrap_or_else(|e| e.into_inner())[slot as usize] = Slot::Exiting;
    }

    /// The 32-bit field `field` of slot `slot`'s thread page.
    pub(crate) fn slot_u32(&self, slot: u32, field: u64) -> &AtomicU32 {
        self.region.u32_at(slot_off(slot) + field)
    }

    pub(crate) fn slot_u64(&self, slot: u32, field: u64) -> &AtomicU64 {
        self.region.u64_at(slot_off(slot) + field)
    }

    /// Releases a parked thread.
    pub(crate) fn resume(&self, slot: u32) {
        let state = self.slot_u32(slot, T_STATE);
        state.swap(STATE_RUN, Ordering::SeqCst);
        if self.slot_u32(slot, T_STUB_SLEEPING).load(Ordering::SeqCst) != 0 {
            futex_wake(state);
        }
    }

    /// Waits until a released thread parks again.
    pub(crate) fn wait_stopped(&self, slot: u32) -> Result<(), SystrapError> {
        self.wait_until(
            self.slot_u32(slot, T_STATE),
            self.slot_u32(slot, T_SENTRY_SLEEPING),
            |v| v == STATE_STOPPED,
        )
        .map(drop)
    }

    /// Asks the kicker to signal the thread of `slot`, to stop it if it runs application
    /// code (the handler blocks the signal, so a parked thread stops right after it next
    /// resumes; the Sentry ignores such a late stop).
    pub(crate) fn kick(&self, slot: u32) {
        self.slot_u32(slot, T_KICK).store(1, Ordering::SeqCst);
        let seq = self.region.u32_at(CTRL_OFF + C_KICK_SEQ);
        seq.fetch_add(1, Ordering::SeqCst);
        futex_wake(seq);
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        // SAFETY: `pid` is our unreaped child, so the number cannot have been reused;
        // killing init of its PID namespace kills every thread in it.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let mut status = 0;
        // SAFETY: reaping our own child.
        while unsafe { libc::waitpid(self.pid, &mut status, libc::__WALL) } < 0 {
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
    }
}

/// FUTEX_WAIT (shared: the word lives in memory shared with the stub). Returns false on
/// timeout.
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(t.subsec_nanos()),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call; `ts_ptr` is null
    // or points to a live timespec.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
        )
    };
    !(rc < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE only reads its address.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX) };
}

/// Stubs are cloned from one long-lived thread, because PR_SET_PDEATHSIG fires when the
/// *thread* that created a process exits: a stub made from a short-lived Sentry thread
/// would be killed with it. The spawner never exits, so a stub dies exactly when the Sentry
/// process does.
struct Spawner {
    requests: Mutex<mpsc::Sender<SpawnRequest>>,
}

struct SpawnRequest {
    stub_fd: i32,
    memfd: i32,
    namespaces: bool,
    reply: mpsc::Sender<Result<libc::pid_t, SystrapError>>,
}

fn spawner() -> &'static Spawner {
    static SPAWNER: OnceLock<Spawner> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("systrap-spawner".into())
            .spawn(move || {
                let mut namespaces = true;
                for req in rx {
                    let _ = req.reply.send(spawn_one(&req, &mut namespaces));
                }
            })
            .expect("starting the systrap spawner thread");
        Spawner {
            requests: Mutex::new(tx),
        }
    })
}

impl Spawner {
    fn spawn(
        &self,
        stub_fd: i32,
        memfd: i32,
        namespaces: bool,
    ) -> Result<libc::pid_t, SystrapError> {
        let (reply, rx) = mpsc::channel();
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(SpawnRequest {
                stub_fd,
                memfd,
                namespaces,
                reply,
            })
            .map_err(|_| SystrapError::Spawner)?;
        rx.recv().map_err(|_| SystrapError::Spawner)?
    }
}

/// This thread's rseq area as glibc registered it (address, length), or (0, 0).
///
/// The child of a clone inherits the registration, and the kernel writes to the area on
/// every return to user mode; once the stub has unmapped the Sentry's memory that write
/// fails and kills it. So the child unregisters it first, which takes the same address,
/// length and signature.
fn rseq_area() -> (u64, u32) {
    let Some((off, size)) = glibc_rseq() else {
        return (0, 0);
    };
    if size == 0 {
        return (0, 0);
    }
    let tp: u64;
    // SAFETY: on x86-64 glibc, fs:0 holds the thread pointer (the TCB's self pointer).
    unsafe { std::arch::asm!("mov {}, fs:0", out(reg) tp, options(nostack, readonly)) };
    // glibc registers at least the original 32-byte struct rseq.
    (tp.wrapping_add_signed(off as i64), size.max(32))
}

/// glibc's `__rseq_offset` and `__rseq_size` (glibc 2.35 and later), looked up at run
/// time so that an older glibc, which registers no rseq area, still links.
#[cfg(not(target_feature = "crt-static"))]
fn glibc_rseq() -> Option<(isize, u32)> {
    // SAFETY: dlsym with RTLD_DEFAULT and NUL-terminated names only looks symbols up.
    let (off, size) = unsafe {
        (
            libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr()),
            libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr()),
        )
    };
    if off.is_null() || size.is_null() {
        return None;
    }
    // SAFETY: glibc defines __rseq_offset as a ptrdiff_t and __rseq_size as an unsigned
    // int, both constant after start-up.
    Some(unsafe { (*off.cast::<isize>(), *size.cast::<u32>()) })
}

/// glibc's `__rseq_offset` and `__rseq_size`, linked directly: a static binary has no
/// dynamic symbol table for dlsym to search (a static build needs glibc 2.35 or later).
#[cfg(target_feature = "crt-static")]
fn glibc_rseq() -> Option<(isize, u32)> {
    extern "C" {
        static __rseq_offset: isize;
        static __rseq_size: u32;
    }
    // SAFETY: both are constant after start-up; reading them copies two integers.
    Some(unsafe { (__rseq_offset, __rseq_size) })
}

fn spawn_one(req: &SpawnRequest, namespaces: &mut bool) -> Result<libc::pid_t, SystrapError> {
    let rseq = rseq_area();
    if *namespaces && req.namespaces {
        // SAFETY: see `clone_stub`; the descriptors are open for the duration of the call
        // (the requester waits for our reply), and `rseq` is this thread's registration.
        let rc = unsafe { clone_stub(NAMESPACES, req.stub_fd, req.memfd, rseq) };
        if rc >= 0 {
            return i32::try_from(rc).map_err(|_| SystrapError::Spawner);
        }
        let err = std::io::Error::from_raw_os_error(i32::try_from(-rc).unwrap_or(libc::EINVAL));
        log::warn!("systrap: stubs run without namespaces of their own: clone failed: {err}");
        *namespaces = false;
    }
    // SAFETY: as above.
    let rc = unsafe { clone_stub(0, req.stub_fd, req.memfd, rseq) };
    if rc < 0 {
        return Err(SystrapError::Clone(std::io::Error::from_raw_os_error(
            i32::try_from(-rc).unwrap_or(libc::EINVAL),
        )));
    }
    i32::try_from(rc).map_err(|_| SystrapError::Spawner)
}

/// Clones a new process (no exit signal, in new `namespaces`) that maps the stub file's
/// code at [`STUB_BASE`] and jumps to it, with the stub file in r12 and the memory file in
/// r13. Returns the child's PID or -errno.
///
/// # Safety
///
/// `stub_fd` must be a stub file holding the stub code at offset 0 and `memfd` the memory
/// file; `rseq` the calling thread's rseq registration (see [`rseq_area`]) or (0, 0). The child runs no Rust code: between the clone and the jump it only executes the
/// few instructions below, on registers, so the state of the (multi-threaded) Sentry it was
/// copied from does not matter.
unsafe fn clone_stub(namespaces: u64, stub_fd: i32, memfd: i32, rseq: (u64, u32)) -> i64 {
    let ret: i64;
    // SAFETY: the parent only executes `syscall` and falls through; the child never returns
    // to Rust (it jumps into the stub or exits).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            // Child: drop the inherited rseq registration (see `rseq_area`).
            "test r14, r14",
            "jz 4f",
            "mov rdi, r14",
            "mov esi, r15d",
            "mov edx, 1",
            "mov r10d, 0x53053053",
            "mov eax, 334",
            "syscall",
            "mov edi, 0x3f",
            "test rax, rax",
            "jnz 5f",
            "4:",
            "mov rdi, {base}",
            "mov esi, {code_len}",
            "mov edx, 5",
            "mov r10d, 0x11",
            "mov r8, r12",
            "xor r9d, r9d",
            "mov eax, 9",
            "syscall",
            "cmp rax, rdi",
            "jne 3f",
            "jmp rdi",
            "3:",
            "mov edi, 0x40",
            "5:",
            "mov eax, 231",
            "syscall",
            "ud2",
            "2:",
            base = const STUB_BASE,
            code_len = const CODE_LEN,
            inlateout("rax") libc::SYS_clone => ret,
            in("rdi") namespaces,
            in("rsi") 0u64,
            in("rdx") 0u64,
            in("r10") 0u64,
            in("r8") 0u64,
            in("r12") i64::from(stub_fd),
            in("r13") i64::from(memfd),
            in("r14") rseq.0,
            in("r15") u64::from(rseq.1),
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryFile;
    use std::os::fd::AsRawFd;

    /// The application can write the control page, so the stub itself refuses requests
    /// that would touch its own region (or create a thread outside the slots), and keeps
    /// serving good ones.
    #[test]
    fn stub_refuses_requests_over_its_region() {
        let mem = MemoryFile::new(1 << 20).unwrap();
        let stub = Stub::spawn(mem.fd().as_raw_fd(), false, true).unwrap();
        let page = 0x1000;
        let op = |kind, addr, len| Op {
            kind,
            prot: 3,
            addr,
            len,
            offset: 0,
        };
        for bad in [
            op(OP_MAP, STUB_BASE - page, 2 * page),
            op(OP_MAP, STUB_BASE, page),
            op(OP_MAP, u64::MAX - page + 1, 2 * page),
            op(OP_UNMAP, STUB_BASE, page),
            op(OP_PROTECT, STUB_BASE - page, 2 * page),
            op(OP_THREAD, STUB_BASE + slot_off(0) + 8, 0),
            op(OP_THREAD, STUB_BASE, 0),
            op(OP_THREAD, 0x40_0000, 0),
        ] {
            match stub.request(&[bad]) {
                Err(SystrapError::Request(e)) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{bad:?}")
                }
                other => panic!("{bad:?} was not refused: {other:?}"),
            }
        }
        stub.request(&[op(OP_MAP, STUB_BASE - page, page)]).unwrap();
        stub.request(&[op(OP_UNMAP, 0, STUB_BASE)]).unwrap();
        // The stub is intact: it still creates threads that park.
        stub.new_thread().unwrap();
    }
}
