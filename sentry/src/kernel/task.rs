//! Tasks (application threads) and thread groups (processes), and the loop that runs a
//! task on the platform and serves what it asks of the kernel.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use platform::{vector, Context, Exit, Registers};

use super::{Credentials, ExitStatus, FdTable, Kernel, Limits};
use crate::errno::{Errno, SysResult};
use crate::loader::{self, ExecContext, Executable, Resolver};
use crate::mm::{Fault, MemoryManager, UserAddr};
use crate::syscalls;
use crate::vfs::HostFile;

pub const SIGILL: i32 = 4;
pub const SIGTRAP: i32 = 5;
pub const SIGBUS: i32 = 7;
pub const SIGFPE: i32 = 8;
pub const SIGKILL: i32 = 9;
pub const SIGSEGV: i32 = 11;

/// A process: what its threads share.
pub struct ThreadGroup {
    pub tgid: i32,
    pub parent_tgid: i32,
    pub limits: Mutex<Limits>,
}

impl ThreadGroup {
    pub fn new(tgid: i32, parent_tgid: i32) -> Arc<Self> {
        Arc::new(Self {
            tgid,
            parent_tgid,
            limits: Mutex::new(Limits::default()),
        })
    }

    pub fn limits(&self) -> std::sync::MutexGuard<'_, Limits> {
        self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How to start the sandbox's first process.
pub struct InitSpec<'a> {
    pub path: &'a [u8],
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub creds: Credentials,
    /// Host descriptors that become the process's 0, 1, 2, … (the caller's stdio).
    pub stdio: Vec<OwnedFd>,
}

/// One application thread.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub tid: i32,
    pub group: Arc<ThreadGroup>,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    pub ctx: Box<dyn Context>,
    pub regs: Registers,
    pub creds: Credentials,
    /// `set_tid_address`: cleared and futex-woken when the thread exits.
    pub clear_child_tid: UserAddr,
    /// `set_robust_list`: the head and its length.
    pub robust_list: (UserAddr, u64),
    /// Set by `exit`/`exit_group` or a fatal signal: the run loop stops.
    pub exit: Option<ExitStatus>,
}

impl Task {
    /// The sandbox's first process, with `exe` loaded and ready to run.
    pub fn new_init(
        kernel: &Arc<Kernel>,
        resolver: &dyn Resolver,
        exe: Arc<dyn Executable>,
        spec: InitSpec<'_>,
    ) -> SysResult<Self> {
        let space = kernel.platform.new_address_space().map_err(|e| {
            log::error!("new address space: {e}");
            Errno::ENOMEM
        })?;
        let mm = Arc::new(MemoryManager::new(Arc::clone(kernel.memory()), space)?);
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|_| Errno::EIO)?;
        let exec = ExecContext {
            uid: spec.creds.uid,
            euid: spec.creds.euid,
            gid: spec.creds.gid,
            egid: spec.creds.egid,
            random,
            ..ExecContext::default()
        };
        let loaded = loader::load(&mm, resolver, exe, spec.path, spec.argv, spec.envp, &exec)?;
        let ctx = kernel.platform.new_context().map_err(|e| {
            log::error!("new context: {e}");
            Errno::ENOMEM
        })?;
        let fds = Arc::new(FdTable::default());
        for (fd, host) in (0..).zip(spec.stdio) {
            fds.insert_at(fd, Arc::new(HostFile::new(host)), false);
        }
        let tid = kernel.allocate_tid();
        Ok(Self {
            kernel: Arc::clone(kernel),
            tid,
            group: ThreadGroup::new(tid, 0),
            mm,
            fds,
            ctx,
            regs: Registers::new(loaded.entry, loaded.stack_pointer),
            creds: spec.creds,
            clear_child_tid: UserAddr::NULL,
            robust_list: (UserAddr::NULL, 0),
            exit: None,
        })
    }

    /// Runs the task until it exits, serving its syscalls and faults.
    pub fn run(&mut self) -> ExitStatus {
        loop {
            let exit = match self.ctx.switch(&**self.mm.address_space(), &mut self.regs) {
                Ok(exit) => exit,
                Err(err) => {
                    log::error!("task {}: the platform failed: {err}", self.tid);
                    return ExitStatus::Signaled(SIGKILL);
                }
            };
            match exit {
                Exit::Syscall => self.syscall(),
                Exit::PageFault { addr, access, .. } => {
                    if let Err(fault) = self.mm.handle_fault(UserAddr::new(addr), access) {
                        // Signal delivery to handlers comes with the signal work; until
                        // then a fault the application does not survive kills it.
                        let sig = if fault == Fault::Bus { SIGBUS } else { SIGSEGV };
                        log::debug!("task {}: {fault:?} at {addr:#x} ({access:?})", self.tid);
                        self.exit = Some(ExitStatus::Signaled(sig));
                    }
                }
                Exit::Exception { vector, error_code } => {
                    log::debug!("task {}: exception {vector} ({error_code:#x})", self.tid);
                    self.exit = Some(ExitStatus::Signaled(signal_for_vector(vector)));
                }
                Exit::Interrupted => {}
            }
            if let Some(status) = self.exit {
                return status;
            }
        }
    }

    fn syscall(&mut self) {
        let r = self.regs;
        let args = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
        let result = syscalls::dispatch(self, r.orig_rax, args);
        self.regs.rax = match result {
            Ok(value) => value as u64,
            Err(errno) if errno.is_restart() => {
                // Nothing interrupts a syscall yet, so a restart value cannot arise; if it
                // does, report EINTR rather than leak a kernel-internal number.
                Errno::EINTR.to_return()
            }
            Err(errno) => errno.to_return(),
        };
    }
}

/// The signal Linux sends for an exception vector.
fn signal_for_vector(v: u8) -> i32 {
    match v {
        vector::DIVIDE_ERROR | vector::X87_FLOATING_POINT | vector::SIMD_FLOATING_POINT => SIGFPE,
        vector::DEBUG | vector::BREAKPOINT => SIGTRAP,
        vector::INVALID_OPCODE => SIGILL,
        vector::ALIGNMENT_CHECK => SIGBUS,
        _ => SIGSEGV,
    }
}
