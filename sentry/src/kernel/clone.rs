//! Creating tasks (`clone`, `fork`, `vfork`) and replacing a process's program
//! (`execve`).

use std::sync::{Arc, Mutex};

use super::creds::CAP_SYS_ADMIN;
use super::process::{TaskHandle, ThreadGroup};
use super::signal::{SigActions, StackT, SIGCHLD, SS_DISABLE};
use super::task::{exec_context, Task, VforkDone};
use crate::errno::{Errno, SysResult};
use crate::loader;
use crate::mm::{MemoryManager, UserAddr, UserPtr};

pub const CLONE_VM: u64 = 0x100;
pub const CLONE_FS: u64 = 0x200;
pub const CLONE_FILES: u64 = 0x400;
pub const CLONE_SIGHAND: u64 = 0x800;
pub const CLONE_PIDFD: u64 = 0x1000;
pub const CLONE_PTRACE: u64 = 0x2000;
pub const CLONE_VFORK: u64 = 0x4000;
pub const CLONE_PARENT: u64 = 0x8000;
pub const CLONE_THREAD: u64 = 0x1_0000;
pub const CLONE_NEWNS: u64 = 0x2_0000;
pub const CLONE_SYSVSEM: u64 = 0x4_0000;
pub const CLONE_SETTLS: u64 = 0x8_0000;
pub const CLONE_PARENT_SETTID: u64 = 0x10_0000;
pub const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
pub const CLONE_DETACHED: u64 = 0x40_0000;
pub const CLONE_UNTRACED: u64 = 0x80_0000;
pub const CLONE_CHILD_SETTID: u64 = 0x100_0000;
pub const CLONE_NEWTIME: u64 = 0x80;
pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
pub const CLONE_NEWUTS: u64 = 0x0400_0000;
pub const CLONE_NEWIPC: u64 = 0x0800_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_NEWPID: u64 = 0x2000_0000;
pub const CLONE_NEWNET: u64 = 0x4000_0000;
/// Every namespace flag: the sandbox is one set of namespaces.
pub const CLONE_NAMESPACES: u64 = CLONE_NEWNS
    | CLONE_NEWTIME
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET;

/// What `execveat` runs.
pub enum ExecTarget {
    /// The path argument, resolved from `start` (`None`: the working directory).
    Path {
        start: Option<crate::vfs::Path>,
        follow: bool,
    },
    /// The file a descriptor refers to (`AT_EMPTY_PATH` with an empty path: `fexecve`).
    Exactly(crate::vfs::Path),
}

/// The arguments of `clone`/`clone3`.
pub struct CloneArgs {
    pub flags: u64,
    pub stack: u64,
    pub parent_tid: UserAddr,
    pub child_tid: UserAddr,
    pub tls: u64,
    pub exit_signal: i32,
}

/// The errno for a platform that could not make a process or thread: `EAGAIN` where
/// the host refused one with `EAGAIN` (its pids cgroup, `RLIMIT_NPROC`: what makes fork
/// fail so on Linux too), `ENOMEM` otherwise.
fn host_errno(e: &platform::PlatformError) -> Errno {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.raw_os_error() == Some(libc::EAGAIN) {
                return Errno::EAGAIN;
            }
        }
        source = err.source();
    }
    Errno::ENOMEM
}

impl Task {
    /// Creates a task as `clone` does and starts it on a host thread of its own.
    pub fn clone_task(&mut self, args: CloneArgs) -> SysResult<i64> {
        let flags = args.flags;
        if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0
            || flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0
            || flags & CLONE_FS != 0 && flags & (CLONE_NEWNS | CLONE_NEWUSER) != 0
            || flags & CLONE_THREAD != 0 && flags & (CLONE_NEWUSER | CLONE_NEWPID) != 0
        {
            return Err(Errno::EINVAL);
        }
        // A new namespace needs CAP_SYS_ADMIN (but for a user namespace); of them, only
        // a UTS namespace is made (the sandbox is otherwise one set of namespaces).
        let namespaces = flags & CLONE_NAMESPACES;
        if namespaces & !CLONE_NEWUSER != 0 && !self.creds.capable(CAP_SYS_ADMIN) {
            return Err(Errno::EPERM);
        }
        if namespaces & !CLONE_NEWUTS != 0 {
            log::warn!(
                "clone: namespace flags {:#x} not implemented (EINVAL)",
                namespaces & !CLONE_NEWUTS
            );
            return Err(Errno::EINVAL);
        }
        if flags & CLONE_PIDFD != 0 {
            log::warn!("clone: CLONE_PIDFD not implemented (EINVAL)");
            return Err(Errno::EINVAL);
        }
        let kernel = Arc::clone(&self.kernel);
        kernel.check_pids_limit()?;
        let mm = if flags & CLONE_VM != 0 {
            Arc::clone(&self.mm)
        } else {
            let space = kernel
                .platform
                .new_address_space()
                .map_err(|e| host_errno(&e))?;
            let mm = Arc::new(self.mm.fork(space)?);
            kernel.ipc.shm.record_fork(&mm, self.tgid());
            mm
        };
        let fds = if flags & CLONE_FILES != 0 {
            Arc::clone(&self.fds)
        } else {
            Arc::new(self.fds.fork())
        };
        let fs = if flags & CLONE_FS != 0 {
            Arc::clone(&self.fs)
        } else {
            self.fs.fork()
        };
        let mut ctx = kernel.platform.new_context().map_err(|e| host_errno(&e))?;
        *ctx.fpu_mut() = self.ctx.fpu().clone();
        let tid = kernel.allocate_tid();
        let mask = self.handle.signals().mask;
        let uts = if flags & CLONE_NEWUTS != 0 {
            self.handle.uts().copy()
        } else {
            self.handle.uts()
        };
        let handle = TaskHandle::new(tid, ctx.interrupter(), mask, uts);
        handle.control.inherit(&self.handle.control);
        let group = if flags & CLONE_THREAD != 0 {
            let mut s = self.group.state();
            if s.exiting.is_some() {
                return Err(Errno::EAGAIN);
            }
            s.threads.push(Arc::clone(&handle));
            Arc::clone(&self.group)
        } else {
            let sighand = if flags & CLONE_SIGHAND != 0 {
                self.group.sighand()
            } else {
                let copy = self
                    .group
                    .sighand()
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                Arc::new(Mutex::new(copy))
            };
            let parent = if flags & CLONE_PARENT != 0 {
                self.group
                    .parent()
                    .unwrap_or_else(|| Arc::clone(&self.group))
            } else {
                Arc::clone(&self.group)
            };
            let limits = self.group.limits().clone();
            let group = ThreadGroup::new(tid, Some(&parent), sighand, limits, args.exit_signal);
            group.control.inherit(&self.group.control);
            group.state().threads.push(Arc::clone(&handle));
            parent.state().children.push(Arc::clone(&group));
            // The child's CPU time starts at zero, under the same RLIMIT_CPU.
            super::timer::apply_cpu_limit(&kernel, &group, true);
            group
        };
        {
            let mut tables = kernel.tables();
            if !Arc::ptr_eq(&group, &self.group) {
                tables.groups.insert(tid, Arc::downgrade(&group));
            }
            tables
                .threads
                .insert(tid, (Arc::downgrade(&handle), Arc::downgrade(&group)));
        }

        let mut regs = self.regs;
        regs.rax = 0;
        if args.stack != 0 {
            regs.rsp = args.stack;
        }
        if flags & CLONE_SETTLS != 0 {
            regs.fs_base = args.tls;
        }
        // A thread sharing the address space starts without the alternate stack.
        let altstack = if flags & CLONE_VM != 0 && flags & CLONE_VFORK == 0 {
            StackT {
                flags: SS_DISABLE,
                ..StackT::default()
            }
        } else {
            self.altstack
        };
        let tid_value = u32::try_from(tid).unwrap_or(0);
        if flags & CLONE_PARENT_SETTID != 0 {
            self.mm
                .write(UserPtr::<u32>::new(args.parent_tid), &tid_value)?;
        }
        if flags & CLONE_CHILD_SETTID != 0 {
            mm.write(UserPtr::<u32>::new(args.child_tid), &tid_value)?;
        }
        let mut child = Task::from_parts(
            Arc::clone(&kernel),
            handle,
            Arc::clone(&group),
            mm,
            fds,
            fs,
            ctx,
            regs,
            self.creds.clone(),
            altstack,
        );
        if flags & CLONE_CHILD_CLEARTID != 0 {
            child.clear_child_tid = args.child_tid;
        }
        if flags & CLONE_SYSVSEM != 0 {
            let sem = &kernel.ipc.sem;
            let list = self
                .sem_undo
                .get_or_insert_with(|| super::ipc::sem::UndoList::new(sem));
            child.sem_undo = Some(Arc::clone(list));
        }
        let vfork = (flags & CLONE_VFORK != 0).then(|| Arc::new(VforkDone::default()));
        child.vfork_parent = vfork.clone();
        if flags & CLONE_THREAD == 0 {
            child.publish_view();
        }
        std::thread::Builder::new()
            .name(format!("task-{tid}"))
            .spawn(move || {
                child.run();
            })
            .map_err(|_| Errno::EAGAIN)?;
        if let Some(v) = vfork {
            // The parent waits (uninterruptibly, as Linux's vfork is only killable) until
            // the child execs or exits.
            let waker = Arc::clone(&self.handle.waker);
            let _reg = v.queue.register(&waker);
            loop {
                let seen = waker.generation();
                if v.is_done() || self.group.state().exiting.is_some() {
                    break;
                }
                waker.sleep(seen, None);
            }
        }
        Ok(i64::from(tid))
    }

    /// Replaces the process's program, as `execve` does after reading its arguments.
    pub fn exec(&mut self, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> SysResult<i64> {
        self.exec_at(
            ExecTarget::Path {
                start: None,
                follow: true,
            },
            path,
            argv,
            envp,
        )
    }

    /// `execveat`: the program is `path` from `target`, or the directory entry itself.
    pub fn exec_at(
        &mut self,
        target: ExecTarget,
        path: &[u8],
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
    ) -> SysResult<i64> {
        // Through the caller's VFS view: its root, working directory and credentials.
        let resolver = crate::vfs::exec::VfsResolver::for_task(self);
        let (exe_path, exe) = match target {
            ExecTarget::Path { start, follow } => resolver.open_at(start.as_ref(), path, follow)?,
            ExecTarget::Exactly(at) => resolver.check(at)?,
        };
        let space = self
            .kernel
            .platform
            .new_address_space()
            .map_err(|e| host_errno(&e))?;
        let mm = Arc::new(MemoryManager::new(
            Arc::clone(self.kernel.memory()),
            space,
            self.kernel.platform.max_user_address(),
        )?);
        let ctx = exec_context(&self.kernel, &self.creds)?;
        let cmdline = crate::vfs::path::cmdline(&argv);
        let environ = crate::vfs::path::cmdline(&envp);
        let loaded = loader::load(&mm, &resolver, exe, path, argv, envp, &ctx)?;

        // The point of no return: the other threads go, the new image takes over.
        self.kill_other_threads();
        self.creds.exec();
        self.handle.control.exec(path);
        self.delete_timers(false);
        let old = std::mem::replace(&mut self.mm, mm);
        self.publish_view();
        // As at exit, the old image lets go of its System V segments, unless another
        // process shares that memory (a vfork parent).
        if Arc::strong_count(&old) == 1 {
            self.kernel.ipc.shm.detach_all(&old, self.tgid());
        }
        drop(old);
        self.fs.set_exe(exe_path);
        self.fs.set_cmdline(cmdline);
        self.fs.set_environ(environ);
        self.fds.close_on_exec();
        let actions = {
            let sighand = self.group.sighand();
            let mut copy: SigActions = sighand.lock().unwrap_or_else(|e| e.into_inner()).clone();
            copy.reset_for_exec();
            copy
        };
        *self.group.sighand.lock().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Mutex::new(actions));
        self.altstack = StackT {
            flags: SS_DISABLE,
            ..StackT::default()
        };
        self.clear_child_tid = UserAddr::NULL;
        self.robust_list = (UserAddr::NULL, 0);
        self.regs = platform::Registers::new(loaded.entry, loaded.stack_pointer);
        *self.ctx.fpu_mut() = *platform::FpuState::new_initial();
        if let Some(v) = self.vfork_parent.take() {
            v.release();
        }
        if self.group.state().exit_signal != SIGCHLD && self.tid() == self.tgid() {
            // A process that execs reports its exit with SIGCHLD from then on.
            self.group.state().exit_signal = SIGCHLD;
        }
        Ok(0)
    }

    /// Makes every other thread of the process exit and waits until they have.
    fn kill_other_threads(&mut self) {
        let others: Vec<_> = {
            let s = self.group.state();
            s.threads
                .iter()
                .filter(|t| !Arc::ptr_eq(t, &self.handle))
                .cloned()
                .collect()
        };
        if others.is_empty() {
            return;
        }
        for t in &others {
            t.exit_thread_only();
        }
        let waker = Arc::clone(&self.handle.waker);
        let _reg = self.group.child_events.register(&waker);
        loop {
            let seen = waker.generation();
            if self.group.state().threads.len() <= 1 {
                break;
            }
            waker.sleep(
                seen,
                Some(std::time::Instant::now() + std::time::Duration::from_millis(10)),
            );
        }
    }
}
