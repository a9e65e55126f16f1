//! Socket data transfer: sendto, recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg, and
//! read/write/readv/writev on a socket (which keep message boundaries: a `readv` of a
//! datagram scatters one message), with `SCM_RIGHTS` and `SCM_CREDENTIALS`.

use std::sync::Arc;
use std::time::Instant;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use super::open::install;
use super::poll::read_timespec;
use super::socket::{
    nonblocking, parse_addr, read_sockaddr, resolve, sender_cred, sock, socket_file, wait_for,
    write_sockaddr,
};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::socket::{Address, Control, Received, SockType, Ucred};
use crate::vfs::FileDescription;

const MSG_OOB: i32 = 0x1;
const MSG_PEEK: i32 = 0x2;
const MSG_CTRUNC: i32 = 0x8;
const MSG_TRUNC: i32 = 0x20;
const MSG_DONTWAIT: i32 = 0x40;
const MSG_WAITALL: i32 = 0x100;
const MSG_NOSIGNAL: i32 = 0x4000;
const MSG_WAITFORONE: i32 = 0x10000;
const MSG_CMSG_CLOEXEC: i32 = 0x4000_0000;
const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// The most descriptors one message carries (Linux's `SCM_MAX_FD`).
const SCM_MAX_FD: usize = 253;
/// `sizeof(struct cmsghdr)`.
const CMSG_HDR: usize = 16;
/// `net.core.optmem_max`: the largest control buffer a send takes (`ENOBUFS` past it).
const OPTMEM_MAX: u64 = 131_072;
/// The most iovecs in one message (`UIO_MAXIOV`).
const UIO_MAXIOV: u64 = 1024;
/// The most one call transfers (Linux's `MAX_RW_COUNT`).
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// A stream moves through the Sentry this much at a time.
const STREAM_CHUNK: usize = 256 * 1024;
/// A receive buffer big enough for any datagram (`SO_SNDBUF` is at most 2 × 212992).
const DGRAM_BUF: usize = 512 * 1024;

/// `struct iovec`.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
pub(super) struct IoVec {
    base: u64,
    len: u64,
}

/// `struct msghdr` on x86-64.
#[repr(C)]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable)]
struct MsgHdr {
    name: u64,
    namelen: u32,
    _pad: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
    flags: i32,
    _pad2: u32,
}

const _: () = assert!(std::mem::size_of::<MsgHdr>() == 56);
/// `struct mmsghdr`: a `msghdr` and `msg_len`, padded to 64 bytes.
const MMSGHDR_SIZE: u64 = 64;
const MSG_NAMELEN_OFF: u64 = 8;
const MSG_CONTROLLEN_OFF: u64 = 40;
const MSG_FLAGS_OFF: u64 = 48;
const MMSG_LEN_OFF: u64 = 56;

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// Reads `count` iovecs at `iov`; `too_many` is the errno for more than `UIO_MAXIOV`.
fn read_iovecs(task: &Task, iov: UserAddr, count: u64, too_many: Errno) -> SysResult<Vec<IoVec>> {
    if count > UIO_MAXIOV {
        return Err(too_many);
    }
    let ptr = UserPtr::<IoVec>::new(iov);
    let mut out = Vec::new();
    let mut total = 0u64;
    for i in 0..count {
        let v = task.mm.read(ptr.offset(i)?)?;
        total = total.checked_add(v.len).ok_or(Errno::EINVAL)?;
        if total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        if v.len > 0 && !UserAddr::new(v.base).range_is_user(v.len) {
            return Err(Errno::EFAULT);
        }
        out.push(v);
    }
    Ok(out)
}

fn total_len(iov: &[IoVec]) -> usize {
    let total: u64 = iov.iter().map(|v| v.len).sum();
    usize::try_from(total)
        .unwrap_or(usize::MAX)
        .min(MAX_RW_COUNT)
}

/// Copies `n` bytes from the iovecs, starting `skip` bytes in.
fn gather(task: &Task, iov: &[IoVec], mut skip: usize, n: usize) -> SysResult<Vec<u8>> {
    let mut out = vec![0u8; n];
    let mut done = 0;
    for v in iov {
        if done == n {
            break;
        }
        let len = usize::try_from(v.len).unwrap_or(usize::MAX);
        if skip >= len {
            skip -= len;
            continue;
        }
        let take = (len - skip).min(n - done);
        let at = UserAddr::new(v.base).checked_add(skip as u64)?;
        task.mm.copy_in(at, &mut out[done..done + take])?;
        done += take;
        skip = 0;
    }
    Ok(out)
}

/// Copies `data` into the iovecs, starting `skip` bytes in.
fn scatter(task: &Task, iov: &[IoVec], mut skip: usize, data: &[u8]) -> SysResult<()> {
    let mut done = 0;
    for v in iov {
        if done == data.len() {
            break;
        }
        let len = usize::try_from(v.len).unwrap_or(usize::MAX);
        if skip >= len {
            skip -= len;
            continue;
        }
        let take = (len - skip).min(data.len() - done);
        let at = UserAddr::new(v.base).checked_add(skip as u64)?;
        task.mm.copy_out(at, &data[done..done + take])?;
        done += take;
        skip = 0;
    }
    Ok(())
}

/// The control messages of a send: descriptions and credentials, checked as Linux's
/// `__scm_send` does.
fn parse_control(task: &Task, at: UserAddr, len: u64) -> SysResult<Control> {
    let mut ctl = Control {
        rights: Vec::new(),
        creds: sender_cred(task),
    };
    if len == 0 {
        return Ok(ctl);
    }
    if len > OPTMEM_MAX {
        return Err(Errno::ENOBUFS);
    }
    let mut raw = vec![0u8; usize::try_from(len).map_err(|_| Errno::ENOBUFS)?];
    task.mm.copy_in(at, &mut raw)?;
    let mut off = 0usize;
    while off + CMSG_HDR <= raw.len() {
        let int = |at: usize| i32::from_ne_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        let mut len = [0u8; 8];
        len.copy_from_slice(&raw[off..off + 8]);
        let clen = usize::try_from(u64::from_ne_bytes(len)).unwrap_or(usize::MAX);
        if clen < CMSG_HDR || clen > raw.len() - off {
            return Err(Errno::EINVAL);
        }
        let level = int(off + 8);
        let ty = int(off + 12);
        let data = &raw[off + CMSG_HDR..off + clen];
        if level == SOL_SOCKET {
            match ty {
                SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if ctl.rights.len() + n > SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    for fd in data.chunks_exact(4) {
                        let fd = i32::from_ne_bytes([fd[0], fd[1], fd[2], fd[3]]);
                        ctl.rights.push(task.fds.get(fd)?);
                    }
                }
                SCM_CREDENTIALS => {
                    let c = Ucred::read_from_bytes(data).map_err(|_| Errno::EINVAL)?;
                    check_creds(task, &c)?;
                    ctl.creds = c;
                }
                _ => {
                    log::debug!("sendmsg: control message type {ty}: EINVAL");
                    return Err(Errno::EINVAL);
                }
            }
        }
        off += cmsg_align(clen);
    }
    Ok(ctl)
}

/// Credentials a sender may claim: its own process and IDs, unless privileged.
fn check_creds(task: &Task, c: &Ucred) -> SysResult<()> {
    let cr = &task.creds;
    let root = cr.euid == 0;
    let pid_ok = c.pid == task.tgid() || root;
    let uid_ok = [cr.uid, cr.euid, cr.suid].contains(&c.uid) || root;
    let gid_ok = [cr.gid, cr.egid, cr.sgid].contains(&c.gid) || root;
    if pid_ok && uid_ok && gid_ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// Sends the iovecs' bytes with `ctl` to `to` (or the peer): a datagram whole, a stream
/// in parts, waiting for room unless non-blocking. `EPIPE` on a stream raises `SIGPIPE`
/// unless `MSG_NOSIGNAL`.
fn send_iov(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    iov: &[IoVec],
    to: Option<&[u8]>,
    mut ctl: Control,
    flags: i32,
) -> SysResult<usize> {
    let ep = &sock(file)?.ep;
    if flags & MSG_OOB != 0 {
        log::debug!("send: MSG_OOB on a Unix socket: EOPNOTSUPP");
        return Err(Errno::EOPNOTSUPP);
    }
    let total = total_len(iov);
    let nonblock = nonblocking(file, flags);
    let timeout = ep.options().sndtimeo;
    if ep.kind == SockType::Stream {
        if to.is_some_and(|a| !a.is_empty()) {
            return Err(if ep.peer_name().is_ok() {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            });
        }
        let mut sent = 0;
        loop {
            let chunk = gather(task, iov, sent, (total - sent).min(STREAM_CHUNK))?;
            let mut off = 0;
            while off < chunk.len() || chunk.is_empty() {
                let r = wait_for(task, ep, nonblock, timeout, None, || {
                    ep.send(&chunk[off..], &mut ctl, None)
                });
                match r {
                    Ok(n) => {
                        off += n;
                        if chunk.is_empty() {
                            break;
                        }
                    }
                    Err(e) => {
                        if e == Errno::EPIPE && sent + off == 0 && flags & MSG_NOSIGNAL == 0 {
                            super::fs::send_sigpipe(task);
                        }
                        return if sent + off > 0 {
                            Ok(sent + off)
                        } else {
                            Err(e)
                        };
                    }
                }
            }
            sent += off;
            if sent >= total {
                return Ok(sent);
            }
        }
    }
    let target = match to.filter(|a| !a.is_empty()) {
        Some(raw) if ep.kind == SockType::Dgram => {
            let addr = parse_addr(raw, false)?.ok_or(Errno::EINVAL)?;
            if ep.options().passcred {
                ep.autobind()?;
            }
            if total > ep.max_message() {
                return Err(Errno::EMSGSIZE);
            }
            Some(resolve(task, &addr, ep.kind)?)
        }
        _ => None,
    };
    if ep.kind == SockType::SeqPacket && ep.peer_name().is_err() {
        return Err(Errno::ENOTCONN);
    }
    if total > ep.max_message() {
        return Err(Errno::EMSGSIZE);
    }
    if target.is_none() && ep.kind == SockType::Dgram && ep.options().passcred {
        ep.autobind()?;
    }
    let data = gather(task, iov, 0, total)?;
    let other = target.as_deref();
    wait_for(task, ep, nonblock, timeout, other, || {
        ep.send(&data, &mut ctl, target.as_ref())
    })
}

/// What one receive produced: the syscall's result and what goes back in `msghdr`.
struct RecvOut {
    result: usize,
    got: Received,
}

/// Receives into the iovecs: one message, or a stream's bytes up to `MSG_WAITALL`'s or
/// `SO_RCVLOWAT`'s target.
fn recv_iov(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    iov: &[IoVec],
    flags: i32,
) -> SysResult<RecvOut> {
    let ep = &sock(file)?.ep;
    if flags & MSG_OOB != 0 {
        log::debug!("recv: MSG_OOB on a Unix socket: EOPNOTSUPP");
        return Err(Errno::EOPNOTSUPP);
    }
    let total = total_len(iov);
    let peek = flags & MSG_PEEK != 0;
    let nonblock = nonblocking(file, flags);
    let opts = ep.options();
    if ep.kind != SockType::Stream {
        let mut buf = vec![0u8; total.min(DGRAM_BUF)];
        let got = wait_for(task, ep, nonblock, opts.rcvtimeo, None, || {
            ep.recv(&mut buf, peek)
        })?;
        scatter(task, iov, 0, &buf[..got.len])?;
        let result = if flags & MSG_TRUNC != 0 {
            got.full_len
        } else {
            got.len
        };
        return Ok(RecvOut { result, got });
    }
    let target = if flags & MSG_WAITALL != 0 && !peek {
        total
    } else {
        opts.rcvlowat.clamp(1, total.max(1))
    };
    let mut first: Option<Received> = None;
    let mut done = 0;
    loop {
        let mut buf = vec![0u8; (total - done).min(STREAM_CHUNK)];
        let r = wait_for(task, ep, nonblock, opts.rcvtimeo, None, || {
            ep.recv(&mut buf, peek)
        });
        let got = match r {
            Ok(got) => got,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        scatter(task, iov, done, &buf[..got.len])?;
        done += got.len;
        let eof = got.len == 0;
        let rights = !got.rights.is_empty();
        match &mut first {
            None => first = Some(got),
            Some(f) => f.rights.extend(got.rights),
        }
        if eof || rights || peek || done >= target || done >= total {
            break;
        }
    }
    let mut got = first.unwrap_or_default();
    got.len = done;
    got.full_len = done;
    Ok(RecvOut { result: done, got })
}

/// Appends one control message to `out` within `cap` bytes, as Linux's `put_cmsg`:
/// truncated (and `MSG_CTRUNC`) where it does not fit.
fn put_cmsg(out: &mut Vec<u8>, cap: usize, ty: i32, data: &[u8], flags: &mut i32) {
    let room = cap.saturating_sub(out.len());
    if room < CMSG_HDR {
        *flags |= MSG_CTRUNC;
        return;
    }
    let mut cmlen = CMSG_HDR + data.len();
    if room < cmlen {
        *flags |= MSG_CTRUNC;
        cmlen = room;
    }
    let start = out.len();
    out.extend_from_slice(&(cmlen as u64).to_ne_bytes());
    out.extend_from_slice(&SOL_SOCKET.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&data[..cmlen - CMSG_HDR]);
    let space = cmsg_align(CMSG_HDR + data.len()).min(room);
    out.resize(start + space, 0);
}

/// The control messages a receive returns within `cap` bytes: credentials, then the
/// descriptions, installed in the caller's table as far as there is room (the rest are
/// closed, with `MSG_CTRUNC`).
fn build_control(task: &Task, got: &mut Received, cap: usize, flags: i32) -> (Vec<u8>, i32) {
    let mut out = Vec::new();
    let mut msg_flags = 0;
    if let Some(c) = got.creds {
        put_cmsg(&mut out, cap, SCM_CREDENTIALS, c.as_bytes(), &mut msg_flags);
    }
    let rights = std::mem::take(&mut got.rights);
    if rights.is_empty() {
        return (out, msg_flags);
    }
    let room = cap.saturating_sub(out.len());
    let fdmax = if room > CMSG_HDR {
        (room - CMSG_HDR) / 4
    } else {
        0
    };
    let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
    let mut fds = Vec::new();
    for file in rights.iter().take(fdmax) {
        match install(task, Arc::clone(file), cloexec) {
            Ok(fd) => fds.extend_from_slice(&i32::try_from(fd).unwrap_or(-1).to_ne_bytes()),
            Err(_) => break,
        }
    }
    let n = fds.len() / 4;
    if n > 0 {
        put_cmsg(&mut out, cap, SCM_RIGHTS, &fds, &mut msg_flags);
    }
    if n < rights.len() {
        msg_flags |= MSG_CTRUNC;
    }
    (out, msg_flags)
}

fn msg_len(task: &Task, at: UserAddr) -> SysResult<MsgHdr> {
    task.mm.read(UserPtr::<MsgHdr>::new(at))
}

fn sendmsg_one(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    hdr: &MsgHdr,
    flags: i32,
) -> SysResult<usize> {
    let iov = read_iovecs(task, UserAddr::new(hdr.iov), hdr.iovlen, Errno::EMSGSIZE)?;
    let to = if hdr.name != 0 && hdr.namelen != 0 {
        let len = i32::try_from(hdr.namelen).map_err(|_| Errno::EINVAL)?;
        Some(read_sockaddr(task, UserAddr::new(hdr.name), len)?)
    } else {
        None
    };
    let ctl = parse_control(task, UserAddr::new(hdr.control), hdr.controllen)?;
    send_iov(task, file, &iov, to.as_deref(), ctl, flags)
}

/// Receives one message for the `msghdr` at `at`, writing back its name length,
/// control length and flags.
fn recvmsg_one(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    at: UserAddr,
    flags: i32,
) -> SysResult<usize> {
    let hdr = msg_len(task, at)?;
    let iov = read_iovecs(task, UserAddr::new(hdr.iov), hdr.iovlen, Errno::EMSGSIZE)?;
    let mut out = recv_iov(task, file, &iov, flags)?;
    let mut namelen = 0u32;
    if hdr.name != 0 {
        if let Some(addr) = &out.got.from {
            let bytes = Address::sockaddr(Some(addr));
            let n = bytes.len().min(usize::try_from(hdr.namelen).unwrap_or(0));
            task.mm.copy_out(UserAddr::new(hdr.name), &bytes[..n])?;
            namelen = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        }
    }
    let cap = if hdr.control == 0 {
        0
    } else {
        usize::try_from(hdr.controllen).unwrap_or(usize::MAX)
    };
    let (control, mut msg_flags) = build_control(task, &mut out.got, cap, flags);
    if !control.is_empty() {
        task.mm.copy_out(UserAddr::new(hdr.control), &control)?;
    }
    if out.got.truncated {
        msg_flags |= MSG_TRUNC;
    }
    task.mm
        .write(UserPtr::new(at.checked_add(MSG_NAMELEN_OFF)?), &namelen)?;
    let controllen = control.len() as u64;
    task.mm.write(
        UserPtr::new(at.checked_add(MSG_CONTROLLEN_OFF)?),
        &controllen,
    )?;
    task.mm
        .write(UserPtr::new(at.checked_add(MSG_FLAGS_OFF)?), &msg_flags)?;
    Ok(out.result)
}

/// The one buffer of `send`/`recv` and their kin as an iovec, at most `MAX_RW_COUNT`
/// bytes (`EFAULT` outside application memory).
fn one_buffer(buf: UserAddr, len: usize) -> SysResult<IoVec> {
    let iov = IoVec {
        base: buf.get(),
        len: len.min(MAX_RW_COUNT) as u64,
    };
    if !buf.range_is_user(iov.len) {
        return Err(Errno::EFAULT);
    }
    Ok(iov)
}

pub fn sendto(
    task: &mut Task,
    fd: i32,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    addrlen: i32,
) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let iov = [one_buffer(buf, len)?];
    let to = if addr.is_null() {
        None
    } else {
        Some(read_sockaddr(task, addr, addrlen)?)
    };
    let ctl = Control {
        rights: Vec::new(),
        creds: sender_cred(task),
    };
    send_iov(task, &file, &iov, to.as_deref(), ctl, flags).map(|n| n as i64)
}

pub fn recvfrom(
    task: &mut Task,
    fd: i32,
    buf: UserAddr,
    len: usize,
    flags: i32,
    addr: UserAddr,
    addrlen: UserAddr,
) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let iov = [one_buffer(buf, len)?];
    let mut out = recv_iov(task, &file, &iov, flags)?;
    // Descriptions sent to a plain receive are closed, as Linux does.
    out.got.rights.clear();
    if !addr.is_null() {
        match &out.got.from {
            Some(from) => write_sockaddr(task, addr, addrlen, &Address::sockaddr(Some(from)))?,
            None => task.mm.write(UserPtr::new(addrlen), &0i32)?,
        }
    }
    Ok(out.result as i64)
}

pub fn sendmsg(task: &mut Task, fd: i32, msg: UserAddr, flags: i32) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let hdr = msg_len(task, msg)?;
    sendmsg_one(task, &file, &hdr, flags).map(|n| n as i64)
}

pub fn recvmsg(task: &mut Task, fd: i32, msg: UserAddr, flags: i32) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    recvmsg_one(task, &file, msg, flags).map(|n| n as i64)
}

pub fn sendmmsg(task: &mut Task, fd: i32, vec: UserAddr, vlen: u32, flags: i32) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let vlen = u64::from(vlen).min(UIO_MAXIOV);
    let mut sent = 0u64;
    while sent < vlen {
        let at = vec.checked_add(sent * MMSGHDR_SIZE)?;
        let r = msg_len(task, at).and_then(|hdr| sendmsg_one(task, &file, &hdr, flags));
        match r {
            Ok(n) => {
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                task.mm
                    .write(UserPtr::new(at.checked_add(MMSG_LEN_OFF)?), &n)?;
                sent += 1;
            }
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(sent as i64)
}

pub fn recvmmsg(
    task: &mut Task,
    fd: i32,
    vec: UserAddr,
    vlen: u32,
    flags: i32,
    timeout: UserAddr,
) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let deadline: Option<Instant> = if timeout.is_null() {
        None
    } else {
        read_timespec(task, timeout)?
    };
    let vlen = u64::from(vlen).min(UIO_MAXIOV);
    let mut flags = flags;
    let mut got = 0u64;
    while got < vlen {
        let at = vec.checked_add(got * MMSGHDR_SIZE)?;
        match recvmsg_one(task, &file, at, flags & !MSG_WAITFORONE) {
            Ok(n) => {
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                task.mm
                    .write(UserPtr::new(at.checked_add(MMSG_LEN_OFF)?), &n)?;
                got += 1;
            }
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
        if flags & MSG_WAITFORONE != 0 {
            flags |= MSG_DONTWAIT;
        }
        // As Linux, the timeout is looked at between messages only.
        if deadline.is_some_and(|d| d <= Instant::now()) {
            break;
        }
    }
    Ok(got as i64)
}

/// `read` on a socket.
pub(super) fn read(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    buf: UserAddr,
    count: usize,
) -> SysResult<i64> {
    if count == 0 {
        return Ok(0);
    }
    let iov = [one_buffer(buf, count)?];
    recv_iov(task, file, &iov, 0).map(|o| o.result as i64)
}

/// `write` on a socket.
pub(super) fn write(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    buf: UserAddr,
    count: usize,
) -> SysResult<i64> {
    let iov = [one_buffer(buf, count)?];
    let ctl = Control {
        rights: Vec::new(),
        creds: sender_cred(task),
    };
    send_iov(task, file, &iov, None, ctl, 0).map(|n| n as i64)
}

/// `readv` on a socket: one receive scattered over the iovecs.
pub(super) fn readv(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    iov: UserAddr,
    iovcnt: i32,
) -> SysResult<i64> {
    let count = u64::try_from(iovcnt).map_err(|_| Errno::EINVAL)?;
    let iov = read_iovecs(task, iov, count, Errno::EINVAL)?;
    if total_len(&iov) == 0 {
        return Ok(0);
    }
    recv_iov(task, file, &iov, 0).map(|o| o.result as i64)
}

/// `writev` on a socket: one send gathered from the iovecs.
pub(super) fn writev(
    task: &Task,
    file: &Arc<dyn FileDescription>,
    iov: UserAddr,
    iovcnt: i32,
) -> SysResult<i64> {
    let count = u64::try_from(iovcnt).map_err(|_| Errno::EINVAL)?;
    let iov = read_iovecs(task, iov, count, Errno::EINVAL)?;
    let ctl = Control {
        rights: Vec::new(),
        creds: sender_cred(task),
    };
    send_iov(task, file, &iov, None, ctl, 0).map(|n| n as i64)
}

/// Whether `file` is a socket (the file syscalls hand sockets to this module).
pub(super) fn is_socket(file: &Arc<dyn FileDescription>) -> bool {
    file.as_socket().is_some()
}
