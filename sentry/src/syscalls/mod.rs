//! The syscall table: one macro maps each number to a typed handler, one file per family.
//!
//! A handler is `fn(&mut Task, args…) -> SysResult<i64>`. Arguments are converted from
//! the raw registers by [`FromArg`] (an `int` argument is the low 32 bits, as Linux reads
//! it). A number without a handler returns `ENOSYS` and is logged once.

mod attr;
mod creds;
mod dir;
mod epoll;
mod event;
mod fd;
pub mod fs;
mod futex;
mod info;
mod inotify;
mod ipc;
mod lock;
mod memfd;
mod mm;
mod mmap_file;
mod mount;
mod msg;
pub mod names;
mod ns;
mod open;
mod pidfd;
mod poll;
mod prctl;
mod process;
mod signal;
mod socket;
mod sockopt;
mod splice;
mod stat;
pub mod time;
mod timer;
mod tty;
mod xattr;

use std::collections::HashSet;
use std::sync::Mutex;

use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};

/// Conversion of a raw register to a handler's argument type.
pub trait FromArg {
    fn from_arg(raw: u64) -> Self;
}

impl FromArg for u64 {
    fn from_arg(raw: u64) -> Self {
        raw
    }
}

impl FromArg for i64 {
    fn from_arg(raw: u64) -> Self {
        i64::from_ne_bytes(raw.to_ne_bytes())
    }
}

impl FromArg for usize {
    fn from_arg(raw: u64) -> Self {
        usize::try_from(raw).unwrap_or(usize::MAX)
    }
}

impl FromArg for i32 {
    fn from_arg(raw: u64) -> Self {
        // The low 32 bits, as Linux reads an `int` argument.
        i32::from_ne_bytes(u32::from_arg(raw).to_ne_bytes())
    }
}

impl FromArg for u32 {
    fn from_arg(raw: u64) -> Self {
        u32::try_from(raw & 0xffff_ffff).unwrap_or(u32::MAX)
    }
}

impl FromArg for UserAddr {
    fn from_arg(raw: u64) -> Self {
        UserAddr::new(raw)
    }
}

impl<T> FromArg for UserPtr<T> {
    fn from_arg(raw: u64) -> Self {
        UserPtr::from(raw)
    }
}

macro_rules! syscall_table {
    ($( $nr:literal => $family:ident :: $handler:ident ( $($arg:ident : $ty:ty),* ) ),* $(,)?) => {
        /// Runs syscall `nr` with the six argument registers.
        pub fn dispatch(task: &mut Task, nr: u64, args: [u64; 6]) -> SysResult<i64> {
            let _ = &args;
            match nr {
                $( $nr => {
                    let mut _next = args.into_iter();
                    $( let $arg = <$ty as FromArg>::from_arg(_next.next().unwrap_or(0)); )*
                    $family::$handler(task $(, $arg)*)
                } )*
                _ => unimplemented(nr),
            }
        }

        /// The arguments of syscall `nr` as strace shows them: typed, with paths read.
        pub fn describe_args(task: &Task, nr: u64, args: [u64; 6]) -> String {
            let _ = (&task, &args);
            match nr {
                $( $nr => {
                    let mut _next = args.into_iter();
                    let parts: Vec<String> = vec![$(
                        describe_arg::<$ty>(task, stringify!($arg), _next.next().unwrap_or(0))
                    ),*];
                    parts.join(", ")
                } )*
                _ => args.iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>().join(", "),
            }
        }

        /// Whether syscall `nr` has a handler (for the compatibility table).
        pub fn implemented(nr: u64) -> bool {
            matches!(nr, $( $nr )|*)
        }
    };
}

syscall_table! {
    0 => fs::read(fd: i32, buf: UserAddr, count: usize),
    1 => fs::write(fd: i32, buf: UserAddr, count: usize),
    2 => open::open(path: UserAddr, flags: i32, mode: u32),
    3 => open::close(fd: i32),
    4 => stat::stat(path: UserAddr, statbuf: UserAddr),
    5 => stat::fstat(fd: i32, statbuf: UserAddr),
    6 => stat::lstat(path: UserAddr, statbuf: UserAddr),
    7 => poll::poll(ufds: UserAddr, nfds: u32, timeout: i32),
    8 => fs::lseek(fd: i32, offset: i64, whence: i32),
    9 => mm::mmap(addr: UserAddr, len: u64, prot: u64, flags: u64, fd: i32, offset: u64),
    10 => mm::mprotect(addr: UserAddr, len: u64, prot: u64),
    11 => mm::munmap(addr: UserAddr, len: u64),
    12 => mm::brk(addr: UserAddr),
    13 => signal::rt_sigaction(sig: i32, act: UserAddr, oldact: UserAddr, sigsetsize: usize),
    14 => signal::rt_sigprocmask(how: i32, set: UserAddr, oldset: UserAddr, sigsetsize: usize),
    15 => signal::rt_sigreturn(),
    16 => fd::ioctl(fd: i32, cmd: u32, arg: UserAddr),
    17 => fs::pread64(fd: i32, buf: UserAddr, count: usize, off: i64),
    18 => fs::pwrite64(fd: i32, buf: UserAddr, count: usize, off: i64),
    19 => fs::readv(fd: i32, iov: UserAddr, iovcnt: i32),
    20 => fs::writev(fd: i32, iov: UserAddr, iovcnt: i32),
    21 => stat::access(path: UserAddr, mode: i32),
    22 => fd::pipe(fds: UserAddr),
    23 => poll::select(nfds: i32, readfds: UserAddr, writefds: UserAddr, exceptfds: UserAddr, timeout: UserAddr),
    24 => time::sched_yield(),
    25 => mm::mremap(old: UserAddr, old_len: u64, new_len: u64, flags: u64, new_addr: UserAddr),
    26 => mm::msync(addr: UserAddr, len: u64, flags: i32),
    27 => mm::mincore(addr: UserAddr, len: u64, vec: UserAddr),
    28 => mm::madvise(addr: UserAddr, len: u64, advice: i32),
    29 => ipc::shmget(key: i32, size: u64, flags: i32),
    30 => ipc::shmat(id: i32, addr: UserAddr, flags: i32),
    31 => ipc::shmctl(id: i32, cmd: i32, buf: UserAddr),
    32 => fd::dup(fd: i32),
    33 => fd::dup2(old: i32, new: i32),
    34 => signal::pause(),
    35 => time::nanosleep(req: UserAddr, rem: UserAddr),
    36 => timer::getitimer(which: i32, curr: UserAddr),
    37 => timer::alarm(seconds: u32),
    38 => timer::setitimer(which: i32, new: UserAddr, old: UserAddr),
    39 => process::getpid(),
    40 => fs::sendfile(out_fd: i32, in_fd: i32, offset: UserAddr, count: usize),
    41 => socket::socket(domain: i32, ty: i32, protocol: i32),
    42 => socket::connect(fd: i32, addr: UserAddr, addrlen: i32),
    43 => socket::accept(fd: i32, addr: UserAddr, addrlen: UserAddr),
    44 => msg::sendto(fd: i32, buf: UserAddr, len: usize, flags: i32, addr: UserAddr, addrlen: i32),
    45 => msg::recvfrom(fd: i32, buf: UserAddr, len: usize, flags: i32, addr: UserAddr, addrlen: UserAddr),
    46 => msg::sendmsg(fd: i32, msg: UserAddr, flags: i32),
    47 => msg::recvmsg(fd: i32, msg: UserAddr, flags: i32),
    48 => socket::shutdown(fd: i32, how: i32),
    49 => socket::bind(fd: i32, addr: UserAddr, addrlen: i32),
    50 => socket::listen(fd: i32, backlog: i32),
    51 => socket::getsockname(fd: i32, addr: UserAddr, addrlen: UserAddr),
    52 => socket::getpeername(fd: i32, addr: UserAddr, addrlen: UserAddr),
    53 => socket::socketpair(domain: i32, ty: i32, protocol: i32, sv: UserAddr),
    54 => sockopt::setsockopt(fd: i32, level: i32, name: i32, val: UserAddr, len: i32),
    55 => sockopt::getsockopt(fd: i32, level: i32, name: i32, val: UserAddr, len: UserAddr),
    56 => process::clone(flags: u64, stack: u64, parent_tid: UserAddr, child_tid: UserAddr, tls: u64),
    57 => process::fork(),
    58 => process::vfork(),
    59 => process::execve(path: UserAddr, argv: UserAddr, envp: UserAddr),
    60 => process::exit(status: i32),
    61 => process::wait4(pid: i32, status: UserAddr, options: i32, rusage: UserAddr),
    62 => signal::kill(pid: i32, sig: i32),
    63 => info::uname(buf: UserAddr),
    64 => ipc::semget(key: i32, nsems: i32, flags: i32),
    65 => ipc::semop(id: i32, sops: UserAddr, nsops: u32),
    66 => ipc::semctl(id: i32, num: i32, cmd: i32, arg: u64),
    67 => ipc::shmdt(addr: UserAddr),
    68 => ipc::msgget(key: i32, flags: i32),
    69 => ipc::msgsnd(id: i32, msgp: UserAddr, size: u64, flags: i32),
    70 => ipc::msgrcv(id: i32, msgp: UserAddr, size: u64, msgtyp: i64, flags: i32),
    71 => ipc::msgctl(id: i32, cmd: i32, buf: UserAddr),
    72 => fd::fcntl(fd: i32, cmd: i32, arg: u64),
    73 => lock::flock(fd: i32, op: i32),
    74 => fs::fsync(fd: i32),
    75 => fs::fdatasync(fd: i32),
    76 => fs::truncate(path: UserAddr, length: i64),
    77 => fs::ftruncate(fd: i32, length: i64),
    78 => dir::getdents(fd: i32, buf: UserAddr, count: u32),
    79 => dir::getcwd(buf: UserAddr, size: usize),
    80 => dir::chdir(path: UserAddr),
    81 => dir::fchdir(fd: i32),
    82 => dir::rename(old: UserAddr, new: UserAddr),
    83 => dir::mkdir(path: UserAddr, mode: u32),
    84 => dir::rmdir(path: UserAddr),
    85 => open::creat(path: UserAddr, mode: u32),
    86 => dir::link(old: UserAddr, new: UserAddr),
    87 => dir::unlink(path: UserAddr),
    88 => dir::symlink(target: UserAddr, path: UserAddr),
    89 => stat::readlink(path: UserAddr, buf: UserAddr, size: i32),
    90 => attr::chmod(path: UserAddr, mode: u32),
    91 => attr::fchmod(fd: i32, mode: u32),
    92 => attr::chown(path: UserAddr, uid: u32, gid: u32),
    93 => attr::fchown(fd: i32, uid: u32, gid: u32),
    94 => attr::lchown(path: UserAddr, uid: u32, gid: u32),
    95 => attr::umask(mask: u32),
    96 => time::gettimeofday(tv: UserAddr, tz: UserAddr),
    97 => info::getrlimit(resource: u32, old: UserAddr),
    98 => process::getrusage(who: i32, usage: UserAddr),
    99 => info::sysinfo(info: UserAddr),
    100 => process::times(buf: UserAddr),
    102 => process::getuid(),
    104 => process::getgid(),
    105 => creds::setuid(uid: u32),
    106 => creds::setgid(gid: u32),
    107 => process::geteuid(),
    108 => process::getegid(),
    109 => process::setpgid(pid: i32, pgid: i32),
    110 => process::getppid(),
    111 => process::getpgrp(),
    112 => process::setsid(),
    113 => creds::setreuid(ruid: u32, euid: u32),
    114 => creds::setregid(rgid: u32, egid: u32),
    115 => creds::getgroups(size: i32, list: UserAddr),
    116 => creds::setgroups(size: i32, list: UserAddr),
    117 => creds::setresuid(ruid: u32, euid: u32, suid: u32),
    118 => creds::getresuid(ruid: UserAddr, euid: UserAddr, suid: UserAddr),
    119 => creds::setresgid(rgid: u32, egid: u32, sgid: u32),
    120 => creds::getresgid(rgid: UserAddr, egid: UserAddr, sgid: UserAddr),
    121 => process::getpgid(pid: i32),
    122 => creds::setfsuid(uid: u32),
    123 => creds::setfsgid(gid: u32),
    124 => process::getsid(pid: i32),
    125 => creds::capget(header: UserAddr, data: UserAddr),
    126 => creds::capset(header: UserAddr, data: UserAddr),
    127 => signal::rt_sigpending(set: UserAddr, sigsetsize: usize),
    128 => signal::rt_sigtimedwait(set: UserAddr, info: UserAddr, timeout: UserAddr, sigsetsize: usize),
    129 => signal::rt_sigqueueinfo(tgid: i32, sig: i32, info: UserAddr),
    130 => signal::rt_sigsuspend(set: UserAddr, sigsetsize: usize),
    131 => signal::sigaltstack(ss: UserAddr, old: UserAddr),
    133 => dir::mknod(path: UserAddr, mode: u32, dev: u64),
    137 => stat::statfs(path: UserAddr, buf: UserAddr),
    138 => stat::fstatfs(fd: i32, buf: UserAddr),
    140 => info::getpriority(which: i32, who: i32),
    141 => info::setpriority(which: i32, who: i32, nice: i32),
    157 => prctl::prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64),
    158 => process::arch_prctl(code: i32, addr: u64),
    160 => info::setrlimit(resource: u32, new: UserAddr),
    161 => dir::chroot(path: UserAddr),
    162 => fs::sync(),
    165 => mount::mount(source: UserAddr, target: UserAddr, fstype: UserAddr, flags: u64, data: UserAddr),
    166 => mount::umount2(target: UserAddr, flags: i32),
    170 => info::sethostname(name: UserAddr, len: i32),
    171 => info::setdomainname(name: UserAddr, len: i32),
    186 => process::gettid(),
    188 => xattr::setxattr(path: UserAddr, name: UserAddr, value: UserAddr, size: usize, flags: i32),
    189 => xattr::lsetxattr(path: UserAddr, name: UserAddr, value: UserAddr, size: usize, flags: i32),
    190 => xattr::fsetxattr(fd: i32, name: UserAddr, value: UserAddr, size: usize, flags: i32),
    191 => xattr::getxattr(path: UserAddr, name: UserAddr, value: UserAddr, size: usize),
    192 => xattr::lgetxattr(path: UserAddr, name: UserAddr, value: UserAddr, size: usize),
    193 => xattr::fgetxattr(fd: i32, name: UserAddr, value: UserAddr, size: usize),
    194 => xattr::listxattr(path: UserAddr, list: UserAddr, size: usize),
    195 => xattr::llistxattr(path: UserAddr, list: UserAddr, size: usize),
    196 => xattr::flistxattr(fd: i32, list: UserAddr, size: usize),
    197 => xattr::removexattr(path: UserAddr, name: UserAddr),
    198 => xattr::lremovexattr(path: UserAddr, name: UserAddr),
    199 => xattr::fremovexattr(fd: i32, name: UserAddr),
    200 => signal::tkill(tid: i32, sig: i32),
    201 => time::time(tloc: UserAddr),
    202 => futex::futex(uaddr: UserAddr, op: i32, val: u32, timeout: UserAddr, uaddr2: UserAddr, val3: u32),
    203 => info::sched_setaffinity(pid: i32, len: usize, mask: UserAddr),
    204 => info::sched_getaffinity(pid: i32, len: usize, mask: UserAddr),
    213 => epoll::epoll_create(size: i32),
    217 => dir::getdents64(fd: i32, buf: UserAddr, count: u32),
    218 => process::set_tid_address(addr: UserAddr),
    220 => ipc::semtimedop(id: i32, sops: UserAddr, nsops: u32, timeout: UserAddr),
    221 => fs::fadvise64(fd: i32, offset: i64, len: i64, advice: i32),
    222 => timer::timer_create(clock: i32, sevp: UserAddr, timerid: UserAddr),
    223 => timer::timer_settime(id: i32, flags: i32, new: UserAddr, old: UserAddr),
    224 => timer::timer_gettime(id: i32, curr: UserAddr),
    225 => timer::timer_getoverrun(id: i32),
    226 => timer::timer_delete(id: i32),
    227 => time::clock_settime(id: i32, tp: UserAddr),
    228 => time::clock_gettime(id: i32, tp: UserAddr),
    229 => time::clock_getres(id: i32, res: UserAddr),
    230 => time::clock_nanosleep(id: i32, flags: i32, req: UserAddr, rem: UserAddr),
    231 => process::exit_group(status: i32),
    232 => epoll::epoll_wait(epfd: i32, events: UserAddr, max: i32, timeout: i32),
    233 => epoll::epoll_ctl(epfd: i32, op: i32, fd: i32, event: UserAddr),
    234 => signal::tgkill(tgid: i32, tid: i32, sig: i32),
    247 => process::waitid(idtype: i32, id: i32, info: UserAddr, options: i32, rusage: UserAddr),
    253 => inotify::inotify_init(),
    254 => inotify::inotify_add_watch(fd: i32, path: UserAddr, mask: u32),
    255 => inotify::inotify_rm_watch(fd: i32, wd: i32),
    257 => open::openat(dirfd: i32, path: UserAddr, flags: i32, mode: u32),
    258 => dir::mkdirat(dirfd: i32, path: UserAddr, mode: u32),
    259 => dir::mknodat(dirfd: i32, path: UserAddr, mode: u32, dev: u64),
    260 => attr::fchownat(dirfd: i32, path: UserAddr, uid: u32, gid: u32, flags: i32),
    262 => stat::newfstatat(dirfd: i32, path: UserAddr, statbuf: UserAddr, flags: i32),
    263 => dir::unlinkat(dirfd: i32, path: UserAddr, flags: i32),
    264 => dir::renameat(olddir: i32, old: UserAddr, newdir: i32, new: UserAddr),
    265 => dir::linkat(olddir: i32, old: UserAddr, newdir: i32, new: UserAddr, flags: i32),
    266 => dir::symlinkat(target: UserAddr, dirfd: i32, path: UserAddr),
    267 => stat::readlinkat(dirfd: i32, path: UserAddr, buf: UserAddr, size: i32),
    268 => attr::fchmodat(dirfd: i32, path: UserAddr, mode: u32),
    269 => stat::faccessat(dirfd: i32, path: UserAddr, mode: i32),
    270 => poll::pselect6(nfds: i32, readfds: UserAddr, writefds: UserAddr, exceptfds: UserAddr, tsp: UserAddr, sig: UserAddr),
    271 => poll::ppoll(ufds: UserAddr, nfds: u32, tsp: UserAddr, sigmask: UserAddr, sigsetsize: usize),
    272 => ns::unshare(flags: u64),
    273 => process::set_robust_list(head: UserAddr, len: u64),
    274 => process::get_robust_list(pid: i32, head: UserAddr, len: UserAddr),
    275 => splice::splice(fd_in: i32, off_in: UserAddr, fd_out: i32, off_out: UserAddr, len: usize, flags: u32),
    276 => splice::tee(fd_in: i32, fd_out: i32, len: usize, flags: u32),
    280 => attr::utimensat(dirfd: i32, path: UserAddr, times: UserAddr, flags: i32),
    281 => epoll::epoll_pwait(epfd: i32, events: UserAddr, max: i32, timeout: i32, sigmask: UserAddr, sigsetsize: usize),
    282 => event::signalfd(fd: i32, mask: UserAddr, sizemask: usize),
    283 => timer::timerfd_create(clock: i32, flags: i32),
    284 => event::eventfd(initval: u32),
    285 => fs::fallocate(fd: i32, mode: i32, offset: i64, len: i64),
    286 => timer::timerfd_settime(fd: i32, flags: i32, new: UserAddr, old: UserAddr),
    287 => timer::timerfd_gettime(fd: i32, curr: UserAddr),
    288 => socket::accept4(fd: i32, addr: UserAddr, addrlen: UserAddr, flags: i32),
    289 => event::signalfd4(fd: i32, mask: UserAddr, sizemask: usize, flags: i32),
    290 => event::eventfd2(initval: u32, flags: i32),
    291 => epoll::epoll_create1(flags: i32),
    292 => fd::dup3(old: i32, new: i32, flags: i32),
    293 => fd::pipe2(fds: UserAddr, flags: i32),
    294 => inotify::inotify_init1(flags: i32),
    295 => fs::preadv(fd: i32, iov: UserAddr, iovcnt: i32, off: i64),
    296 => fs::pwritev(fd: i32, iov: UserAddr, iovcnt: i32, off: i64),
    297 => signal::rt_tgsigqueueinfo(tgid: i32, tid: i32, sig: i32, info: UserAddr),
    299 => msg::recvmmsg(fd: i32, vec: UserAddr, vlen: u32, flags: i32, timeout: UserAddr),
    302 => info::prlimit64(pid: i32, resource: u32, new: UserAddr, old: UserAddr),
    306 => fs::syncfs(fd: i32),
    307 => msg::sendmmsg(fd: i32, vec: UserAddr, vlen: u32, flags: i32),
    308 => ns::setns(fd: i32, nstype: i32),
    309 => info::getcpu(cpu: UserAddr, node: UserAddr),
    316 => dir::renameat2(olddir: i32, old: UserAddr, newdir: i32, new: UserAddr, flags: u32),
    317 => prctl::seccomp(op: u32, flags: u32, args: UserAddr),
    318 => info::getrandom(buf: UserAddr, len: usize, flags: u32),
    319 => memfd::memfd_create(name: UserAddr, flags: u32),
    322 => process::execveat(dirfd: i32, path: UserAddr, argv: UserAddr, envp: UserAddr, flags: i32),
    324 => ns::membarrier(cmd: i32, flags: u32, cpu_id: i32),
    326 => fs::copy_file_range(fd_in: i32, off_in: UserAddr, fd_out: i32, off_out: UserAddr, len: usize, flags: u32),
    327 => fs::preadv2(fd: i32, iov: UserAddr, iovcnt: i32, off: i64, _off_hi: i64, flags: i32),
    328 => fs::pwritev2(fd: i32, iov: UserAddr, iovcnt: i32, off: i64, _off_hi: i64, flags: i32),
    329 => mm::pkey_mprotect(addr: UserAddr, len: u64, prot: u64, pkey: i32),
    330 => mm::pkey_alloc(flags: u64, init: u64),
    331 => mm::pkey_free(pkey: i32),
    332 => stat::statx(dirfd: i32, path: UserAddr, flags: i32, mask: u32, buf: UserAddr),
    424 => pidfd::pidfd_send_signal(fd: i32, sig: i32, info: UserAddr, flags: u32),
    434 => pidfd::pidfd_open(pid: i32, flags: u32),
    435 => process::clone3(args: UserAddr, size: usize),
    436 => open::close_range(first: u32, last: u32, flags: u32),
    437 => open::openat2(dirfd: i32, path: UserAddr, how: UserAddr, size: usize),
    439 => stat::faccessat2(dirfd: i32, path: UserAddr, mode: i32, flags: i32),
    441 => epoll::epoll_pwait2(epfd: i32, events: UserAddr, max: i32, timeout: UserAddr, sigmask: UserAddr, sigsetsize: usize),
}

/// Argument names whose value is a path string, which strace shows as text.
const PATH_ARGS: &[&str] = &[
    "path", "pathname", "filename", "oldpath", "newpath", "target", "linkpath",
];

/// How strace shows one argument of type `T`.
fn describe_arg<T: Describe>(task: &Task, name: &str, raw: u64) -> String {
    if PATH_ARGS.contains(&name) && raw != 0 {
        return match task.mm.read_c_string(UserAddr::new(raw), 256) {
            Ok(s) => format!("{:?}", String::from_utf8_lossy(&s)),
            Err(_) => format!("{raw:#x}"),
        };
    }
    T::describe(raw)
}

/// The strace form of an argument type.
trait Describe {
    fn describe(raw: u64) -> String;
}

impl Describe for i32 {
    fn describe(raw: u64) -> String {
        i32::from_arg(raw).to_string()
    }
}

impl Describe for u32 {
    fn describe(raw: u64) -> String {
        u32::from_arg(raw).to_string()
    }
}

impl Describe for usize {
    fn describe(raw: u64) -> String {
        raw.to_string()
    }
}

impl Describe for i64 {
    fn describe(raw: u64) -> String {
        i64::from_arg(raw).to_string()
    }
}

impl Describe for u64 {
    fn describe(raw: u64) -> String {
        format!("{raw:#x}")
    }
}

impl Describe for UserAddr {
    fn describe(raw: u64) -> String {
        if raw == 0 {
            "NULL".to_string()
        } else {
            format!("{raw:#x}")
        }
    }
}

/// The strace form of a result.
pub fn describe_result(result: &SysResult<i64>) -> String {
    match result {
        Ok(v) if *v > 0xffff || *v < -0xffff => format!("{v:#x}"),
        Ok(v) => v.to_string(),
        Err(e) => format!("-1 {e}"),
    }
}

/// Syscalls whose `ENOSYS` callers handle as routine, logged only under `--debug`:
/// `rseq` (glibc registers one per thread and runs without it when refused).
const QUIET_ENOSYS: &[u64] = &[334];

fn unimplemented(nr: u64) -> SysResult<i64> {
    static LOGGED: Mutex<Option<HashSet<u64>>> = Mutex::new(None);
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if logged.get_or_insert_with(HashSet::new).insert(nr) {
        let name = names::name(nr).unwrap_or("unknown");
        if QUIET_ENOSYS.contains(&nr) {
            log::debug!("unimplemented syscall {nr} ({name}): ENOSYS (expected by callers)");
        } else {
            log::warn!("unimplemented syscall {nr} ({name}): ENOSYS");
        }
    }
    Err(Errno::ENOSYS)
}
