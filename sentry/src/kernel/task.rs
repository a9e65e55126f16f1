//! Tasks (application threads): the loop that runs one on the platform and serves what
//! it asks of the kernel, signal delivery, blocking, and a thread's exit.
//!
//! Creating tasks (`clone`) and replacing their program (`execve`) live in `clone.rs`.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use platform::{vector, Access, Context, Exit, FpuState, Registers};

use super::process::{JobEvent, TaskHandle, ThreadGroup};
use super::signal::{
    self, default_action, DefaultAction, SigInfo, SigSet, StackT, SA_NODEFER, SA_ONSTACK,
    SA_RESETHAND, SA_RESTART, SA_SIGINFO, SIGBUS, SIGCHLD, SIGCONT, SIGFPE, SIGILL, SIGKILL,
    SIGSEGV, SIGSTOP, SIGTRAP, SIG_DFL, SIG_IGN, SS_AUTODISARM, SS_DISABLE, SS_ONSTACK,
};
use super::signal_frame;
use super::{Credentials, ExitStatus, FdTable, Kernel, Limits};
use crate::errno::{Errno, SysResult};
use crate::loader::{self, ExecContext, Executable, Resolver};
use crate::mm::{Fault, MemoryManager, UserAddr};
use crate::syscalls;
use crate::vfs::HostFile;

/// How to start the sandbox's first process.
pub struct InitSpec<'a> {
    pub path: &'a [u8],
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    pub creds: Credentials,
    /// Host descriptors that become the process's 0, 1, 2, … (the caller's stdio).
    pub stdio: Vec<OwnedFd>,
    /// Host descriptors that become the process's 3, 4, … (`--preserve-fds`), whatever
    /// its standard I/O is.
    pub preserved: Vec<OwnedFd>,
    /// The mount namespace, root and working directory the process starts with.
    pub fs: Arc<crate::vfs::FsContext>,
}

/// One application thread, owned by the host thread that runs it.
pub struct Task {
    pub kernel: Arc<Kernel>,
    pub handle: Arc<TaskHandle>,
    pub group: Arc<ThreadGroup>,
    pub mm: Arc<MemoryManager>,
    pub fds: Arc<FdTable>,
    /// Root, working directory and umask (shared with `CLONE_FS` relatives).
    pub fs: Arc<crate::vfs::FsContext>,
    pub ctx: Box<dyn Context>,
    pub regs: Registers,
    pub creds: Credentials,
    /// `set_tid_address`: cleared and futex-woken when the thread exits.
    pub clear_child_tid: UserAddr,
    /// `set_robust_list`: the head and its length.
    pub robust_list: (UserAddr, u64),
    pub altstack: StackT,
    /// Set when this thread must exit (its own `exit`, or the group's end).
    pub exit: Option<ExitStatus>,
    /// The result of a syscall a signal interrupted, until delivery decides whether the
    /// syscall restarts.
    restart: Option<Errno>,
    /// Woken (and set) when a `vfork` child execs or exits.
    pub vfork_parent: Option<Arc<VforkDone>>,
    /// The System V semaphore undo list (shared with `CLONE_SYSVSEM` relatives), made
    /// on first need.
    pub sem_undo: Option<Arc<super::ipc::sem::UndoList>>,
}

/// The handshake between a `vfork` parent and child.
#[derive(Default)]
pub struct VforkDone {
    pub done: Mutex<bool>,
    pub queue: super::wait::WaitQueue,
}

impl VforkDone {
    pub fn release(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.queue.notify_all();
    }

    pub fn is_done(&self) -> bool {
        *self.done.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Task {
    /// The sandbox's first process (PID 1), with `exe` loaded and ready to run.
    pub fn new_init(
        kernel: &Arc<Kernel>,
        resolver: &dyn Resolver,
        exe: Arc<dyn Executable>,
        spec: InitSpec<'_>,
    ) -> SysResult<Self> {
        Self::new_process(kernel, resolver, exe, spec, true)
    }

    /// A process started from outside the sandbox (`bulwark exec`): like init, with no
    /// parent inside the sandbox (its parent PID is 0), and not the sandbox's init.
    pub fn new_exec(
        kernel: &Arc<Kernel>,
        resolver: &dyn Resolver,
        exe: Arc<dyn Executable>,
        spec: InitSpec<'_>,
    ) -> SysResult<Self> {
        Self::new_process(kernel, resolver, exe, spec, false)
    }

    fn new_process(
        kernel: &Arc<Kernel>,
        resolver: &dyn Resolver,
        exe: Arc<dyn Executable>,
        spec: InitSpec<'_>,
        init: bool,
    ) -> SysResult<Self> {
        let space = kernel.platform.new_address_space().map_err(|e| {
            log::error!("new address space: {e}");
            Errno::ENOMEM
        })?;
        let mm = Arc::new(MemoryManager::new(
            Arc::clone(kernel.memory()),
            space,
            kernel.platform.max_user_address(),
        )?);
        let exec = exec_context(kernel, &spec.creds)?;
        let loaded = loader::load(&mm, resolver, exe, spec.path, spec.argv, spec.envp, &exec)?;
        let ctx = kernel.platform.new_context().map_err(|e| {
            log::error!("new context: {e}");
            Errno::ENOMEM
        })?;
        let fds = Arc::new(FdTable::default());
        for (fd, host) in (0..).zip(spec.stdio).chain((3..).zip(spec.preserved)) {
            fds.insert_at(fd, Arc::new(HostFile::new(host)), false);
        }
        let tid = kernel.allocate_tid();
        let sighand = Arc::new(Mutex::new(signal::SigActions::default()));
        let group = ThreadGroup::new(tid, None, sighand, Limits::default(), SIGCHLD);
        let handle = TaskHandle::new(
            tid,
            ctx.interrupter(),
            SigSet::default(),
            Arc::clone(&kernel.uts),
        );
        group.state().threads.push(Arc::clone(&handle));
        {
            let mut tables = kernel.tables();
            tables.groups.insert(tid, Arc::downgrade(&group));
            tables
                .threads
                .insert(tid, (Arc::downgrade(&handle), Arc::downgrade(&group)));
            if init {
                tables.init = Some(Arc::clone(&group));
            }
        }
        let task = Self {
            kernel: Arc::clone(kernel),
            handle,
            group,
            mm,
            fds,
            fs: spec.fs,
            ctx,
            regs: Registers::new(loaded.entry, loaded.stack_pointer),
            creds: spec.creds,
            clear_child_tid: UserAddr::NULL,
            robust_list: (UserAddr::NULL, 0),
            altstack: StackT {
                flags: SS_DISABLE,
                ..StackT::default()
            },
            exit: None,
            restart: None,
            vfork_parent: None,
            sem_undo: None,
        };
        task.publish_view();
        Ok(task)
    }

    /// A new task from its parts (for `clone`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn from_parts(
        kernel: Arc<Kernel>,
        handle: Arc<TaskHandle>,
        group: Arc<ThreadGroup>,
        mm: Arc<MemoryManager>,
        fds: Arc<FdTable>,
        fs: Arc<crate::vfs::FsContext>,
        ctx: Box<dyn Context>,
        regs: Registers,
        creds: Credentials,
        altstack: StackT,
    ) -> Self {
        Self {
            kernel,
            handle,
            group,
            mm,
            fds,
            fs,
            ctx,
            regs,
            creds,
            clear_child_tid: UserAddr::NULL,
            robust_list: (UserAddr::NULL, 0),
            altstack,
            exit: None,
            restart: None,
            vfork_parent: None,
            sem_undo: None,
        }
    }

    pub fn tid(&self) -> i32 {
        self.handle.tid()
    }

    /// Publishes this task's state as its process's procfs view.
    pub fn publish_view(&self) {
        self.group.set_view(Some(super::process::ProcessView {
            creds: self.creds.clone(),
            fds: Arc::clone(&self.fds),
            mm: Arc::clone(&self.mm),
            fs: Arc::clone(&self.fs),
        }));
    }

    pub fn tgid(&self) -> i32 {
        self.group.tgid
    }

    /// Runs the task until its thread exits, serving its syscalls, faults and signals,
    /// then does the exit's bookkeeping. Returns the thread's exit status.
    pub fn run(mut self) -> ExitStatus {
        super::current::set(&self.handle, &self.group);
        self.handle.usage.set_host_thread();
        let status = self.run_loop();
        self.exit_thread(status);
        status
    }

    fn run_loop(&mut self) -> ExitStatus {
        loop {
            self.handle_signals();
            if let Some(status) = self.exit {
                return status;
            }
            if self.kernel.is_frozen() {
                // `bulwark pause`: no application code runs until `resume` (an exit
                // still goes ahead).
                self.kernel.wait_while_frozen(&self.group);
                continue;
            }
            self.handle
                .app_switches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.handle.usage.enter_switch(platform::rdtsc());
            let switched = self.ctx.switch(&**self.mm.address_space(), &mut self.regs);
            self.handle.usage.leave_switch(platform::rdtsc());
            self.handle
                .app_switches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let exit = match switched {
                Ok(exit) => exit,
                Err(err) => {
                    log::error!("task {}: the platform failed: {err}", self.tid());
                    self.group.begin_exit(ExitStatus::Signaled(SIGKILL));
                    continue;
                }
            };
            match exit {
                Exit::Syscall => self.syscall(),
                Exit::PageFault { addr, access, .. } => self.page_fault(addr, access),
                Exit::Exception { vector, error_code } => self.exception(vector, error_code),
                Exit::Interrupted => {}
            }
        }
    }

    fn syscall(&mut self) {
        let r = self.regs;
        let args = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
        let strace = self
            .kernel
            .strace
            .load(std::sync::atomic::Ordering::Relaxed);
        // Arguments are described before the call: it may change the memory they point at.
        let described = strace.then(|| syscalls::describe_args(self, r.orig_rax, args));
        if self
            .handle
            .control
            .seccomp_strict
            .load(std::sync::atomic::Ordering::Relaxed)
            && !super::control::strict_seccomp_allows(r.orig_rax)
        {
            // Strict seccomp kills the thread with SIGKILL.
            self.exit = Some(ExitStatus::Signaled(SIGKILL));
            return;
        }
        if let Some(policy) = self.kernel.seccomp.get() {
            if !self.seccomp_allows(policy.check(r.orig_rax, &args)) {
                return;
            }
        }
        let result = syscalls::dispatch(self, r.orig_rax, args);
        if self.mm.take_out_of_memory() {
            // A copy to or from application memory found no page: make room as a page
            // fault would (this process may be the one to go; the syscall's result then
            // never reaches it).
            let _ = self.kernel.out_of_memory();
        }
        if let Some(described) = described {
            let name = syscalls::names::name(r.orig_rax).unwrap_or("unknown");
            let shown = syscalls::describe_result(&result);
            log::info!(target: "strace", "[{:>4}] {name}({described}) = {shown}", self.tid());
        }
        match result {
            Ok(value) => self.regs.rax = value as u64,
            Err(errno) if errno.is_restart() => {
                // Delivery decides between EINTR and a restart; with no signal to deliver
                // (a spurious wake), the syscall restarts.
                self.restart = Some(errno);
                self.regs.rax = Errno::EINTR.to_return();
            }
            Err(errno) => self.regs.rax = errno.to_return(),
        }
    }

    /// Carries out a seccomp action other than allowing the syscall; `true` if the
    /// syscall is to run.
    fn seccomp_allows(&mut self, action: super::seccomp::Action) -> bool {
        use super::seccomp::Action;
        let nr = self.regs.orig_rax;
        match action {
            Action::Allow => true,
            Action::Log => {
                log::info!("seccomp: task {} syscall {nr} (logged)", self.tid());
                true
            }
            Action::Errno(e) => {
                self.regs.rax = (-i64::from(e)) as u64;
                false
            }
            Action::Trace => {
                self.regs.rax = Errno::ENOSYS.to_return();
                false
            }
            Action::Trap => {
                self.regs.rax = Errno::ENOSYS.to_return();
                let info = SigInfo {
                    status: i32::try_from(nr).unwrap_or(-1),
                    ..SigInfo::fault(signal::SIGSYS, signal::SYS_SECCOMP, self.regs.rip)
                };
                self.force_signal(info);
                false
            }
            Action::KillThread => {
                log::debug!("seccomp: task {} killed at syscall {nr}", self.tid());
                self.exit = Some(ExitStatus::Signaled(signal::SIGSYS));
                false
            }
            Action::KillProcess => {
                log::debug!("seccomp: process {} killed at syscall {nr}", self.tgid());
                self.group.begin_exit(ExitStatus::Signaled(signal::SIGSYS));
                false
            }
        }
    }

    fn page_fault(&mut self, addr: u64, access: Access) {
        let mut since = None;
        let fault = loop {
            match self.mm.handle_fault(UserAddr::new(addr), access) {
                Ok(()) => return,
                Err(Fault::OutOfMemory) => {
                    self.mm.take_out_of_memory();
                    if !self.recover_memory(&mut since) {
                        return;
                    }
                }
                Err(fault) => break fault,
            }
        };
        log::debug!("task {}: {fault:?} at {addr:#x} ({access:?})", self.tid());
        let info = match fault {
            Fault::Bus => SigInfo::fault(SIGBUS, signal::BUS_ADRERR, addr),
            Fault::AccErr => SigInfo::fault(SIGSEGV, signal::SEGV_ACCERR, addr),
            Fault::MapErr | Fault::OutOfMemory => {
                SigInfo::fault(SIGSEGV, signal::SEGV_MAPERR, addr)
            }
        };
        self.force_signal(info);
    }

    /// After a page was refused for want of memory: calls in the OOM killer. `true` if
    /// the access is to be tried again (another process was killed, or an earlier victim
    /// is still exiting); `false` once this process is the one to die.
    fn recover_memory(&mut self, since: &mut Option<std::time::Instant>) -> bool {
        /// How long a fault waits for memory before its own process is killed instead.
        const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
        if self.group.state().exiting.is_some() {
            return false;
        }
        let since = *since.get_or_insert_with(std::time::Instant::now);
        match self.kernel.out_of_memory() {
            super::oom::OomOutcome::Killed(victim) if Arc::ptr_eq(&victim, &self.group) => false,
            super::oom::OomOutcome::Killed(_) | super::oom::OomOutcome::Waiting
                if since.elapsed() < PATIENCE =>
            {
                std::thread::sleep(std::time::Duration::from_millis(2));
                true
            }
            _ => {
                log::warn!(
                    "out of memory: process {} gets no page, killed",
                    self.tgid()
                );
                self.group.begin_exit(ExitStatus::Signaled(SIGKILL));
                false
            }
        }
    }

    fn exception(&mut self, vector: u8, error_code: u64) {
        log::debug!(
            "task {}: exception {vector} ({error_code:#x}) at {:#x}",
            self.tid(),
            self.regs.rip
        );
        let (sig, code) = match vector {
            vector::DIVIDE_ERROR => (SIGFPE, 1), // FPE_INTDIV
            vector::X87_FLOATING_POINT | vector::SIMD_FLOATING_POINT => (SIGFPE, 0),
            vector::DEBUG | vector::BREAKPOINT => (SIGTRAP, 0x80), // SI_KERNEL
            vector::INVALID_OPCODE => (SIGILL, 2),                 // ILL_ILLOPN
            vector::ALIGNMENT_CHECK => (SIGBUS, 1),                // BUS_ADRALN
            _ => (SIGSEGV, 0x80),                                  // #GP: SI_KERNEL, addr 0
        };
        let mut info = SigInfo::kernel(sig);
        info.code = code;
        self.force_signal(info);
    }

    /// A synchronous signal from a fault: if it is blocked or ignored, it kills (as
    /// Linux's `force_sig` resets the action).
    fn force_signal(&mut self, info: SigInfo) {
        let sig = info.signo;
        let sighand = self.group.sighand();
        let mut actions = sighand.lock().unwrap_or_else(|e| e.into_inner());
        let blocked = self.handle.signals().mask.contains(sig);
        if blocked || actions.get(sig).handler == SIG_IGN {
            let mut a = actions.get(sig);
            a.handler = SIG_DFL;
            actions.set(sig, a);
            self.handle.signals().mask.remove(sig);
        }
        drop(actions);
        self.handle.signals().pending.push(info);
    }

    /// Whether a signal waits that should interrupt a blocking syscall.
    pub fn signal_pending(&self) -> bool {
        if self.group.state().exiting.is_some() {
            return true;
        }
        let mask = self.handle.signals().mask;
        let own = self.handle.signals().pending.set().0;
        let shared = self.group.state().pending.set().0;
        (own | shared) & !mask.0 != 0
    }

    /// Sleeps until `ready()` gives a value, the deadline passes (`ETIMEDOUT`), or a
    /// signal arrives (`ERESTARTSYS`). `ready` is checked with the waker armed, so an
    /// event between the check and the sleep is not lost (the event source must notify
    /// a queue the caller registered with).
    pub fn block_until<T>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut() -> SysResult<Option<T>>,
    ) -> SysResult<T> {
        loop {
            let seen = self.handle.waker.generation();
            if let Some(v) = ready()? {
                return Ok(v);
            }
            if self.signal_pending() {
                return Err(Errno::ERESTARTSYS);
            }
            if !self.handle.waker.sleep(seen, deadline) {
                return Err(Errno::ETIMEDOUT);
            }
        }
    }

    /// Delivers pending signals: runs default actions, or sets up a handler's frame.
    fn handle_signals(&mut self) {
        loop {
            if let Some(status) = self.group.state().exiting {
                self.exit = Some(status);
                return;
            }
            if self.exit.is_some() {
                return;
            }
            if self.handle.must_exit_alone() {
                self.exit = Some(ExitStatus::Signaled(SIGKILL));
                return;
            }
            if self.wait_while_stopped() {
                continue;
            }
            let mask = self.handle.signals().mask;
            let info = self.handle.signals().pending.pop(mask);
            let info = info.or_else(|| self.group.state().pending.pop(mask));
            let Some(info) = info else {
                // No signal: an interrupted syscall restarts as if nothing happened.
                if let Some(errno) = self.restart.take() {
                    self.restart_syscall(errno);
                }
                self.restore_saved_mask();
                return;
            };
            if self.deliver(info) {
                return;
            }
        }
    }

    /// Blocks while the group is stopped by job control; true if it was.
    fn wait_while_stopped(&mut self) -> bool {
        if !self.group.state().stopped {
            return false;
        }
        let waker = Arc::clone(&self.handle.waker);
        loop {
            let seen = waker.generation();
            {
                let s = self.group.state();
                if !s.stopped || s.exiting.is_some() {
                    return true;
                }
            }
            if self.handle.signals().pending.set().contains(SIGKILL) {
                return true;
            }
            waker.sleep(seen, None);
        }
    }

    /// Acts on one signal; true when a handler frame was set up (delivery stops there).
    fn deliver(&mut self, info: SigInfo) -> bool {
        let sig = info.signo;
        let sighand = self.group.sighand();
        let action = sighand.lock().unwrap_or_else(|e| e.into_inner()).get(sig);
        let handled = sig != SIGKILL && sig != SIGSTOP && action.handler > SIG_IGN;
        if !handled {
            if action.handler == SIG_IGN && sig != SIGKILL && sig != SIGSTOP {
                return false;
            }
            match default_action(sig) {
                DefaultAction::Ignore | DefaultAction::Continue => return false,
                DefaultAction::Stop => {
                    self.stop_group(sig);
                    return false;
                }
                DefaultAction::Terminate | DefaultAction::CoreDump => {
                    self.group.begin_exit(ExitStatus::Signaled(sig));
                    self.exit = Some(ExitStatus::Signaled(sig));
                    return true;
                }
            }
        }
        if let Some(errno) = self.restart.take() {
            let restart = errno == Errno::ERESTARTNOINTR
                || (errno == Errno::ERESTARTSYS && action.flags & SA_RESTART != 0);
            if restart {
                self.restart_syscall(errno);
            } else {
                self.regs.rax = Errno::EINTR.to_return();
            }
        }
        let old_mask = {
            let mut s = self.handle.signals();
            s.saved_mask.take().unwrap_or(s.mask)
        };
        let on_altstack = self.on_altstack();
        let use_alt =
            action.flags & SA_ONSTACK != 0 && self.altstack.flags & SS_DISABLE == 0 && !on_altstack;
        let stack_top = if use_alt {
            self.altstack.sp.wrapping_add(self.altstack.size)
        } else {
            self.regs.rsp.wrapping_sub(128)
        };
        let reported_stack = StackT {
            flags: if on_altstack {
                SS_ONSTACK
            } else {
                self.altstack.flags
            },
            ..self.altstack
        };
        let mut frame_info = info;
        if action.flags & SA_SIGINFO == 0 {
            // Without SA_SIGINFO the handler gets only the number; the frame still holds
            // the siginfo, as on Linux.
            frame_info = SigInfo { ..info };
        }
        let mut since = None;
        let pushed = loop {
            let pushed = signal_frame::push(
                &self.mm,
                &mut self.regs,
                self.ctx.fpu(),
                &frame_info,
                action.handler,
                action.restorer,
                old_mask,
                stack_top,
                reported_stack,
            );
            // A stack page the sandbox had no memory for: make room and write it again
            // (the registers change only once the frame is written).
            if pushed.is_err() && self.mm.take_out_of_memory() {
                if self.recover_memory(&mut since) {
                    continue;
                }
                if self.group.state().exiting.is_some() {
                    return true;
                }
            }
            break pushed;
        };
        if pushed.is_err() {
            // No room for the frame: Linux kills with SIGSEGV.
            self.group.begin_exit(ExitStatus::Signaled(SIGSEGV));
            self.exit = Some(ExitStatus::Signaled(SIGSEGV));
            return true;
        }
        if use_alt && self.altstack.flags & SS_AUTODISARM != 0 {
            self.altstack = StackT {
                flags: SS_DISABLE,
                ..StackT::default()
            };
        }
        *self.ctx.fpu_mut() = *FpuState::new_initial();
        {
            let mut s = self.handle.signals();
            s.mask.0 |= action.mask;
            if action.flags & SA_NODEFER == 0 {
                s.mask.add(sig);
            }
            s.mask = s.mask.blockable();
        }
        if action.flags & SA_RESETHAND != 0 {
            let mut actions = sighand.lock().unwrap_or_else(|e| e.into_inner());
            let mut a = actions.get(sig);
            a.handler = SIG_DFL;
            a.flags &= !SA_SIGINFO;
            actions.set(sig, a);
        }
        true
    }

    fn on_altstack(&self) -> bool {
        let a = self.altstack;
        a.flags & SS_DISABLE == 0 && self.regs.rsp.wrapping_sub(a.sp) < a.size
    }

    fn restart_syscall(&mut self, errno: Errno) {
        if errno == Errno::ERESTART_RESTARTBLOCK {
            // restart_syscall(2) is not implemented: report the interruption.
            self.regs.rax = Errno::EINTR.to_return();
            return;
        }
        self.regs.rax = self.regs.orig_rax;
        self.regs.rip = self.regs.rip.wrapping_sub(2);
    }

    fn restore_saved_mask(&mut self) {
        let mut s = self.handle.signals();
        if let Some(mask) = s.saved_mask.take() {
            s.mask = mask;
        }
    }

    /// Stops the process (job control) and tells the parent.
    fn stop_group(&mut self, sig: i32) {
        {
            let mut s = self.group.state();
            if s.exiting.is_some() {
                return;
            }
            s.stopped = true;
            s.job_event = Some(JobEvent::Stopped(sig));
            for t in &s.threads {
                t.kick();
            }
        }
        self.notify_parent(SigInfo {
            status: sig,
            ..SigInfo::user(SIGCHLD, signal::CLD_STOPPED, self.tgid(), self.creds.uid)
        });
    }

    fn notify_parent(&self, info: SigInfo) {
        if let Some(parent) = self.group.parent() {
            let nocldstop = info.code == signal::CLD_STOPPED || info.code == signal::CLD_CONTINUED;
            let actions = parent.sighand();
            let a = actions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(SIGCHLD);
            if !(nocldstop && a.flags & signal::SA_NOCLDSTOP != 0) {
                parent.queue_signal(info);
            }
            parent.child_events.notify_all();
        }
    }

    /// Ends this thread: `clear_child_tid`, leaving the group, and, for the last thread,
    /// the process's exit: reparenting, SIGCHLD, and becoming a zombie.
    fn exit_thread(&mut self, status: ExitStatus) {
        if !self.clear_child_tid.is_null() {
            let ptr = crate::mm::UserPtr::<u32>::new(self.clear_child_tid);
            if self.mm.write(ptr, &0).is_ok() {
                if let Ok(key) = super::futex::Futexes::key(&self.mm, self.clear_child_tid, false) {
                    let _ = self.kernel.futexes.wake(key, 1, u32::MAX);
                }
            }
        }
        self.release_robust_futexes();
        // The semaphore adjustments are undone when the last holder of the list exits.
        self.sem_undo = None;
        if let Some(v) = self.vfork_parent.take() {
            v.release();
        }
        let tid = self.tid();
        let spent = self
            .handle
            .usage
            .usage(self.kernel.platform.runs_on_caller_thread());
        let last = {
            let mut s = self.group.state();
            s.threads.retain(|t| !Arc::ptr_eq(t, &self.handle));
            self.group.usage.add_exited(spent);
            s.threads.is_empty()
        };
        self.kernel.tables().threads.remove(&tid);
        // Whoever waits for the group to shrink (an execve) looks again.
        self.group.child_events.notify_all();
        if !last {
            return;
        }
        let final_status = self.group.state().exiting.unwrap_or(status);
        self.delete_timers(true);
        crate::vfs::tty::process_exit(&self.kernel, &self.group);
        self.reparent_children();
        let (parent, exit_signal) = {
            let s = self.group.state();
            (s.parent.upgrade(), s.exit_signal)
        };
        let reap_now = parent.as_ref().is_none_or(|p| {
            let actions = p.sighand();
            let a = actions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(SIGCHLD);
            exit_signal == SIGCHLD && (a.handler == SIG_IGN || a.flags & signal::SA_NOCLDWAIT != 0)
        });
        self.group.set_view(None);
        // The process lets go of its System V segments before its parent hears of the
        // exit, as Linux's `exit_mm` comes before `exit_notify` (unless another process
        // shares the memory through CLONE_VM).
        if Arc::strong_count(&self.mm) == 1 {
            self.kernel.ipc.shm.detach_all(&self.mm, self.tgid());
        }
        self.group.state().zombie = Some(final_status);
        self.group.exited.notify_all();
        if let Some(parent) = parent {
            if reap_now {
                parent
                    .state()
                    .children
                    .retain(|c| !Arc::ptr_eq(c, &self.group));
                self.kernel.tables().groups.remove(&self.tgid());
                parent.child_events.notify_all();
            } else {
                let (code, value) = match final_status {
                    ExitStatus::Exited(c) => (signal::CLD_EXITED, c),
                    ExitStatus::Signaled(s) => (signal::CLD_KILLED, s),
                };
                if exit_signal > 0 {
                    parent.queue_signal(SigInfo {
                        status: value,
                        ..SigInfo::user(exit_signal, code, self.tgid(), self.creds.uid)
                    });
                }
                parent.child_events.notify_all();
            }
        }
        // The init process's end ends the sandbox: every other process is killed.
        let init = self.kernel.tables().init.clone();
        if init.is_some_and(|i| Arc::ptr_eq(&i, &self.group)) {
            for g in self.kernel.groups() {
                if !Arc::ptr_eq(&g, &self.group) {
                    g.begin_exit(ExitStatus::Signaled(SIGKILL));
                }
            }
        }
    }

    /// Marks the robust futexes this thread still holds as owner-died and wakes a waiter
    /// of each, as Linux's `exit_robust_list` does. Bad pointers end the walk quietly.
    fn release_robust_futexes(&self) {
        const FUTEX_WAITERS: u32 = 0x8000_0000;
        const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
        const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
        /// Linux's `ROBUST_LIST_LIMIT`: a bound on the walk, against loops.
        const LIMIT: usize = 2048;
        let (head, len) = self.robust_list;
        if head.is_null() || len == 0 {
            return;
        }
        let read = |addr: u64| self.mm.read(crate::mm::UserPtr::<u64>::from(addr)).ok();
        let (Some(mut entry), Some(offset), Some(pending)) = (
            read(head.get()),
            read(head.get() + 8),
            read(head.get() + 16),
        ) else {
            return;
        };
        let tid = u32::try_from(self.tid()).unwrap_or(0);
        let release = |entry: u64| {
            // The low bit of an entry pointer marks a PI futex; the word is at entry + offset.
            let word_addr = UserAddr::new((entry & !1).wrapping_add(offset));
            let ptr = crate::mm::UserPtr::<u32>::new(word_addr);
            let Ok(word) = self.mm.read(ptr) else { return };
            if word & FUTEX_TID_MASK != tid {
                return;
            }
            let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
            if self.mm.write(ptr, &new).is_ok() && word & FUTEX_WAITERS != 0 {
                if let Ok(key) = super::futex::Futexes::key(&self.mm, word_addr, false) {
                    let _ = self.kernel.futexes.wake(key, 1, u32::MAX);
                }
            }
        };
        let mut walked = 0;
        while entry != head.get() && entry != 0 && walked < LIMIT {
            let next = read(entry);
            if entry != pending {
                release(entry);
            }
            let Some(next) = next else { break };
            entry = next;
            walked += 1;
        }
        if pending != 0 {
            release(pending);
        }
    }

    /// Deletes the process's POSIX timers (at exit and exec) and, with `itimer`, its
    /// interval timers and `RLIMIT_CPU`'s (at exit only: they survive exec).
    pub(super) fn delete_timers(&self, itimer: bool) {
        let posix = std::mem::take(
            &mut *self
                .group
                .posix_timers
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (id, _) in posix.values() {
            self.kernel.timers.delete(*id);
        }
        if itimer {
            let itimers =
                std::mem::take(&mut *self.group.itimers.lock().unwrap_or_else(|e| e.into_inner()));
            for id in itimers.into_iter().flatten() {
                self.kernel.timers.delete(id);
            }
            super::timer::apply_cpu_limit(&self.kernel, &self.group, false);
        }
    }

    /// Hands this process's children to init.
    fn reparent_children(&self) {
        let children = std::mem::take(&mut self.group.state().children);
        if children.is_empty() {
            return;
        }
        super::control::parent_died(&self.kernel, &children, self.tgid(), self.creds.uid);
        let init = self.kernel.tables().init.clone();
        let Some(init) = init.filter(|i| !Arc::ptr_eq(i, &self.group)) else {
            return;
        };
        // The nearest living ancestor that is a child subreaper, or else init.
        let mut reaper = init;
        let mut ancestor = self.group.parent();
        while let Some(a) = ancestor {
            if Arc::ptr_eq(&a, &reaper) {
                break;
            }
            let alive = {
                let s = a.state();
                s.zombie.is_none() && s.exiting.is_none()
            };
            if alive
                && a.control
                    .child_subreaper
                    .load(std::sync::atomic::Ordering::Relaxed)
            {
                reaper = a;
                break;
            }
            ancestor = a.parent();
        }
        for c in &children {
            c.state().parent = Arc::downgrade(&reaper);
        }
        reaper.state().children.extend(children);
        reaper.child_events.notify_all();
    }

    /// Sends `info` to the process `group` (kill semantics: SIGCONT resumes, stop
    /// signals and SIGCONT cancel each other, SIGKILL kills at once).
    pub fn send_to_group(kernel: &Kernel, group: &Arc<ThreadGroup>, info: SigInfo) -> bool {
        let _ = kernel;
        let sig = info.signo;
        if sig == SIGKILL {
            group.begin_exit(ExitStatus::Signaled(SIGKILL));
            return true;
        }
        if sig == SIGCONT {
            let (was_stopped, parent) = {
                let mut s = group.state();
                for stop in [SIGSTOP, signal::SIGTSTP, signal::SIGTTIN, signal::SIGTTOU] {
                    s.pending.discard(stop);
                }
                let was = s.stopped;
                s.stopped = false;
                if was {
                    s.job_event = Some(JobEvent::Continued);
                }
                for t in &s.threads {
                    t.kick();
                }
                (was, s.parent.upgrade())
            };
            if was_stopped {
                if let Some(p) = parent {
                    p.child_events.notify_all();
                }
            }
        }
        if default_action(sig) == DefaultAction::Stop {
            group.state().pending.discard(SIGCONT);
        }
        let actions = group.sighand();
        if actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_ignored(sig)
            && sig != SIGCONT
        {
            return true;
        }
        group.queue_signal(info)
    }
}

/// The auxv facts of a new program.
pub(super) fn exec_context(kernel: &Kernel, creds: &Credentials) -> SysResult<ExecContext> {
    let mut random = [0u8; 16];
    crate::random::fill(&mut random)?;
    Ok(ExecContext {
        uid: creds.uid,
        euid: creds.euid,
        gid: creds.gid,
        egid: creds.egid,
        random,
        vdso: kernel.vdso.clone(),
        ..ExecContext::default()
    })
}
