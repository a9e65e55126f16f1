//! Unix domain sockets as syscalls: socket, socketpair, bind, listen, connect, accept,
//! accept4, shutdown, getsockname, getpeername; and what the socket families share
//! (socket addresses, name lookup, waiting). Data transfer is in `msg.rs`, options in
//! `sockopt.rs`, the sockets themselves in `vfs/socket`.
//!
//! Only `AF_UNIX` is served: every other family fails with `EAFNOSUPPORT` (the sandbox
//! has no network), logged once per family.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fs::cx;
use super::open::install;
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::file::{FileDescription, O_CLOEXEC, O_NONBLOCK};
use crate::vfs::socket::{Address, Endpoint, SockType, Ucred, UnixSocket, AF_UNIX, AF_UNSPEC};
use crate::vfs::{permitted, NewNode, MAY_EXEC, MAY_WRITE, S_IFMT, S_IFSOCK};

pub const SOCK_NONBLOCK: i32 = O_NONBLOCK;
pub const SOCK_CLOEXEC: i32 = O_CLOEXEC;
const SOCK_TYPE_MASK: i32 = 0xf;
/// Linux's `SOCK_MAX` and `NPROTO`: the bounds of a valid type and family.
const SOCK_MAX: i32 = 11;
const NPROTO: i32 = 46;
const PF_UNIX: i32 = 1;
/// Families Linux has but the sandbox does not serve; `socketpair` on them is
/// `EOPNOTSUPP` on Linux (the family exists, its sockets cannot be paired).
const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const AF_NETLINK: i32 = 16;
const AF_PACKET: i32 = 17;
/// `sizeof(struct sockaddr_storage)` and `sizeof(struct sockaddr_un)`.
const SOCKADDR_STORAGE: i32 = 128;
const SOCKADDR_UN: usize = 110;
/// How often a wait that depends on another socket's queue looks again.
const POLL_PERIOD: Duration = Duration::from_millis(10);

/// The socket behind `fd`: `EBADF`, or `ENOTSOCK` for another kind of file.
pub(super) fn socket_file(task: &Task, fd: i32) -> SysResult<Arc<dyn FileDescription>> {
    let file = task.fds.get(fd)?;
    if file.as_socket().is_none() {
        return Err(Errno::ENOTSOCK);
    }
    Ok(file)
}

/// The socket of a file [`socket_file`] returned.
pub(super) fn sock(file: &Arc<dyn FileDescription>) -> SysResult<&UnixSocket> {
    file.as_socket().ok_or(Errno::ENOTSOCK)
}

/// The caller as a message's sender (`SCM_CREDENTIALS`: real IDs).
pub(super) fn sender_cred(task: &Task) -> Ucred {
    Ucred {
        pid: task.tgid(),
        uid: task.creds.uid,
        gid: task.creds.gid,
    }
}

/// The caller as a peer sees it (`SO_PEERCRED`: effective IDs).
fn peer_cred(task: &Task) -> Ucred {
    Ucred {
        pid: task.tgid(),
        uid: task.creds.euid,
        gid: task.creds.egid,
    }
}

fn log_family(domain: i32) {
    static LOGGED: Mutex<Option<HashSet<i32>>> = Mutex::new(None);
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if logged.get_or_insert_with(HashSet::new).insert(domain) {
        log::warn!("socket family {domain} is not served (only AF_UNIX): EAFNOSUPPORT");
    }
}

/// Checks `socket`/`socketpair` arguments in Linux's order; the kind and the
/// `SOCK_NONBLOCK`/`SOCK_CLOEXEC` flags.
fn socket_args(domain: i32, ty: i32, protocol: i32, pair: bool) -> SysResult<(SockType, i32)> {
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if !(0..NPROTO).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT);
    }
    if ty & SOCK_TYPE_MASK >= SOCK_MAX {
        return Err(Errno::EINVAL);
    }
    if domain != i32::from(AF_UNIX) {
        log_family(domain);
        let known = [AF_INET, AF_INET6, AF_NETLINK, AF_PACKET].contains(&domain);
        return Err(if pair && known {
            Errno::EOPNOTSUPP
        } else {
            Errno::EAFNOSUPPORT
        });
    }
    if protocol != 0 && protocol != PF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    let kind = SockType::from_linux(ty & SOCK_TYPE_MASK).ok_or(Errno::ESOCKTNOSUPPORT)?;
    Ok((kind, flags))
}

pub fn socket(task: &mut Task, domain: i32, ty: i32, protocol: i32) -> SysResult<i64> {
    let (kind, flags) = socket_args(domain, ty, protocol, false)?;
    let ep = Endpoint::new(
        kind,
        &task.kernel.unix_names,
        (task.creds.euid, task.creds.egid),
    );
    let file: Arc<dyn FileDescription> = Arc::new(UnixSocket::new(ep, flags));
    install(task, file, flags & SOCK_CLOEXEC != 0)
}

pub fn socketpair(
    task: &mut Task,
    domain: i32,
    ty: i32,
    protocol: i32,
    sv: UserAddr,
) -> SysResult<i64> {
    let (kind, flags) = socket_args(domain, ty, protocol, true)?;
    let (a, b) = Endpoint::pair(
        kind,
        &task.kernel.unix_names,
        (task.creds.euid, task.creds.egid),
        peer_cred(task),
    );
    let cloexec = flags & SOCK_CLOEXEC != 0;
    let fa = install(task, Arc::new(UnixSocket::new(a, flags)), cloexec)?;
    let fb = match install(task, Arc::new(UnixSocket::new(b, flags)), cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = task.fds.remove(i32::try_from(fa).unwrap_or(-1));
            return Err(e);
        }
    };
    let pair = [
        i32::try_from(fa).unwrap_or(-1),
        i32::try_from(fb).unwrap_or(-1),
    ];
    if let Err(e) = task.mm.write(UserPtr::new(sv), &pair) {
        let _ = task.fds.remove(pair[0]);
        let _ = task.fds.remove(pair[1]);
        return Err(e);
    }
    Ok(0)
}

/// Copies a socket address in, as Linux's `move_addr_to_kernel`.
pub(super) fn read_sockaddr(task: &Task, addr: UserAddr, len: i32) -> SysResult<Vec<u8>> {
    if !(0..=SOCKADDR_STORAGE).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; usize::try_from(len).unwrap_or(0)];
    if !raw.is_empty() {
        task.mm.copy_in(addr, &mut raw)?;
    }
    Ok(raw)
}

/// A Unix address from `struct sockaddr_un` bytes; `None` (only when `bind` asks) for
/// the family alone, which means autobind.
pub(super) fn parse_addr(raw: &[u8], bind: bool) -> SysResult<Option<Address>> {
    let family = raw
        .get(..2)
        .map(|f| u16::from_ne_bytes([f[0], f[1]]))
        .ok_or(Errno::EINVAL)?;
    if bind && raw.len() == 2 && family == AF_UNIX {
        return Ok(None);
    }
    if raw.len() <= 2 || raw.len() > SOCKADDR_UN || family != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &raw[2..];
    if path[0] == 0 {
        return Ok(Some(Address::Abstract(path.to_vec())));
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Ok(Some(Address::Path(path[..end].to_vec())))
}

/// Copies a socket address out, as Linux's `move_addr_to_user`: as much as `*len`
/// allows, and the full length into `*len`.
pub(super) fn write_sockaddr(
    task: &Task,
    addr: UserAddr,
    len: UserAddr,
    bytes: &[u8],
) -> SysResult<()> {
    let room: i32 = task.mm.read(UserPtr::new(len))?;
    let room = usize::try_from(room).map_err(|_| Errno::EINVAL)?;
    let n = room.min(bytes.len());
    if n > 0 {
        task.mm.copy_out(addr, &bytes[..n])?;
    }
    let full = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    task.mm.write(UserPtr::new(len), &full)
}

/// The live socket of type `kind` at `addr`: `ENOENT` (or another lookup error) for a
/// missing path, `ECONNREFUSED` where no socket is bound, `EPROTOTYPE` for a socket of
/// another type.
pub(super) fn resolve(task: &Task, addr: &Address, kind: SockType) -> SysResult<Arc<Endpoint>> {
    let names = &task.kernel.unix_names;
    let ep = match addr {
        Address::Abstract(name) => names
            .lookup_abstract(kind, name)
            .ok_or(Errno::ECONNREFUSED)?,
        Address::Path(path) => {
            let cx = cx(task);
            let at = task.fs.lookup(&cx, None, path, true)?;
            let inode = at.inode();
            let stat = inode.stat()?;
            permitted(&stat, &cx.creds, MAY_WRITE)?;
            if stat.mode & S_IFMT != S_IFSOCK {
                return Err(Errno::ECONNREFUSED);
            }
            names
                .lookup_inode((inode.dev(), inode.ino()))
                .ok_or(Errno::ECONNREFUSED)?
        }
    };
    if ep.kind != kind {
        return Err(Errno::EPROTOTYPE);
    }
    Ok(ep)
}

/// Runs `op` until it stops returning `EAGAIN`: at once when `nonblock`, else waiting
/// on the socket's queue (and `other`'s: a listener's backlog, a receiver's queue) until
/// `timeout` (`EAGAIN`, as Linux's `SO_RCVTIMEO`/`SO_SNDTIMEO`) or a signal
/// (`ERESTARTSYS`; `EINTR` under a timeout, as Linux's `sock_intr_errno`).
pub(super) fn wait_for<T>(
    task: &Task,
    ep: &Endpoint,
    nonblock: bool,
    timeout: Option<Duration>,
    other: Option<&Endpoint>,
    mut op: impl FnMut() -> SysResult<T>,
) -> SysResult<T> {
    let first = op();
    if !matches!(first, Err(Errno::EAGAIN)) || nonblock || timeout == Some(Duration::ZERO) {
        return first;
    }
    let _own = ep.queue.register(&task.handle.waker);
    let _other = other.map(|o| o.queue.register(&task.handle.waker));
    let deadline = timeout.map(|t| Instant::now() + t);
    // A datagram sender waiting on another socket's queue is not always woken by it.
    let polled = other.is_some() && ep.kind == SockType::Dgram;
    loop {
        let until = if polled {
            let next = Instant::now() + POLL_PERIOD;
            Some(deadline.map_or(next, |d| d.min(next)))
        } else {
            deadline
        };
        let r = task.block_until(until, || match op() {
            Ok(v) => Ok(Some(v)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e),
        });
        match r {
            Err(Errno::ETIMEDOUT) => {
                if deadline.is_some_and(|d| d <= Instant::now()) {
                    return Err(Errno::EAGAIN);
                }
            }
            Err(Errno::ERESTARTSYS) if timeout.is_some() => return Err(Errno::EINTR),
            r => return r,
        }
    }
}

/// Whether a call on `file` must not wait (`O_NONBLOCK`, or `MSG_DONTWAIT` in `flags`).
pub(super) fn nonblocking(file: &Arc<dyn FileDescription>, flags: i32) -> bool {
    const MSG_DONTWAIT: i32 = 0x40;
    file.flags() & O_NONBLOCK != 0 || flags & MSG_DONTWAIT != 0
}

pub fn bind(task: &mut Task, fd: i32, addr: UserAddr, len: i32) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let ep = &sock(&file)?.ep;
    let raw = read_sockaddr(task, addr, len)?;
    match parse_addr(&raw, true)? {
        None => ep.autobind()?,
        Some(Address::Abstract(name)) => {
            let _guard = ep.bind_guard();
            if ep.bound().is_some() {
                return Err(Errno::EINVAL);
            }
            task.kernel.unix_names.bind_abstract(&name, ep)?;
            ep.set_bound(Address::Abstract(name), None);
        }
        Some(Address::Path(path)) => bind_path(task, ep, path)?,
    }
    Ok(0)
}

/// Binds to a filesystem name: a socket node is made there (`EADDRINUSE` if the name
/// exists), with mode 0777 less the umask, as Linux makes it.
fn bind_path(task: &Task, ep: &Arc<Endpoint>, path: Vec<u8>) -> SysResult<()> {
    let cx = cx(task);
    let (dir, name, _) = task.fs.lookup_parent(&cx, None, &path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EADDRINUSE);
    }
    let stat = dir.inode().stat()?;
    permitted(&stat, &cx.creds, MAY_WRITE | MAY_EXEC)?;
    if dir.mount.is_read_only() || dir.inode().read_only() {
        return Err(Errno::EROFS);
    }
    let mode = S_IFSOCK | (0o777 & !task.fs.umask());
    let inode = dir
        .inode()
        .create(&cx, &name, NewNode::Node { mode, rdev: 0 })
        .map_err(|e| {
            if e == Errno::EEXIST {
                Errno::EADDRINUSE
            } else {
                e
            }
        })?;
    let _guard = ep.bind_guard();
    if ep.bound().is_some() {
        // As Linux: the node made for a socket that turns out to be bound goes again.
        let _ = dir.inode().unlink(&cx, &name, false);
        return Err(Errno::EINVAL);
    }
    let key = (inode.dev(), inode.ino());
    task.kernel.unix_names.bind_inode(key, ep);
    ep.set_bound(Address::Path(path), Some(key));
    Ok(())
}

pub fn listen(task: &mut Task, fd: i32, backlog: i32) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    // A negative backlog is a huge unsigned one, clamped to SOMAXCONN.
    let backlog = usize::try_from(backlog).unwrap_or(usize::MAX);
    sock(&file)?.ep.listen(backlog, peer_cred(task))?;
    Ok(0)
}

pub fn connect(task: &mut Task, fd: i32, addr: UserAddr, len: i32) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let ep = &sock(&file)?.ep;
    let raw = read_sockaddr(task, addr, len)?;
    if ep.kind == SockType::Dgram {
        if raw.len() < 2 {
            return Err(Errno::EINVAL);
        }
        if u16::from_ne_bytes([raw[0], raw[1]]) == AF_UNSPEC {
            ep.connect_dgram(None)?;
            return Ok(0);
        }
    }
    let target_addr = parse_addr(&raw, false)?.ok_or(Errno::EINVAL)?;
    if ep.options().passcred {
        ep.autobind()?;
    }
    let target = resolve(task, &target_addr, ep.kind)?;
    if ep.kind == SockType::Dgram {
        ep.connect_dgram(Some(&target))?;
        return Ok(0);
    }
    let cred = peer_cred(task);
    let timeout = ep.options().sndtimeo;
    wait_for(
        task,
        ep,
        nonblocking(&file, 0),
        timeout,
        Some(&target),
        || ep.connect(&target, cred),
    )?;
    Ok(0)
}

pub fn accept(task: &mut Task, fd: i32, addr: UserAddr, len: UserAddr) -> SysResult<i64> {
    accept4(task, fd, addr, len, 0)
}

pub fn accept4(
    task: &mut Task,
    fd: i32,
    addr: UserAddr,
    len: UserAddr,
    flags: i32,
) -> SysResult<i64> {
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = socket_file(task, fd)?;
    let ep = &sock(&file)?.ep;
    let timeout = ep.options().rcvtimeo;
    let server = wait_for(task, ep, nonblocking(&file, 0), timeout, None, || {
        ep.accept()
    })?;
    let peer = server.peer_name().unwrap_or(None);
    let new: Arc<dyn FileDescription> = Arc::new(UnixSocket::new(server, flags));
    let newfd = install(task, new, flags & SOCK_CLOEXEC != 0)?;
    if !addr.is_null() {
        let bytes = Address::sockaddr(peer.as_ref());
        if let Err(e) = write_sockaddr(task, addr, len, &bytes) {
            let _ = task.fds.remove(i32::try_from(newfd).unwrap_or(-1));
            return Err(e);
        }
    }
    Ok(newfd)
}

pub fn shutdown(task: &mut Task, fd: i32, how: i32) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    sock(&file)?.ep.shutdown(how)?;
    Ok(0)
}

pub fn getsockname(task: &mut Task, fd: i32, addr: UserAddr, len: UserAddr) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let bound = sock(&file)?.ep.bound();
    write_sockaddr(task, addr, len, &Address::sockaddr(bound.as_ref()))?;
    Ok(0)
}

pub fn getpeername(task: &mut Task, fd: i32, addr: UserAddr, len: UserAddr) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let peer = sock(&file)?.ep.peer_name()?;
    write_sockaddr(task, addr, len, &Address::sockaddr(peer.as_ref()))?;
    Ok(0)
}
