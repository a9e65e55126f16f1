//! Socket options: getsockopt and setsockopt at level `SOL_SOCKET` (Unix sockets have no
//! other level: `EOPNOTSUPP`, as Linux). An option the Sentry does not serve is
//! `ENOPROTOOPT`, logged.

use std::time::Duration;

use super::socket::{sock, socket_file};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::{UserAddr, UserPtr};
use crate::vfs::socket::{Endpoint, Options, AF_UNIX, MAX_BUF};

const SOL_SOCKET: i32 = 1;
const SO_DEBUG: i32 = 1;
const SO_REUSEADDR: i32 = 2;
const SO_TYPE: i32 = 3;
const SO_ERROR: i32 = 4;
const SO_DONTROUTE: i32 = 5;
const SO_BROADCAST: i32 = 6;
const SO_SNDBUF: i32 = 7;
const SO_RCVBUF: i32 = 8;
const SO_KEEPALIVE: i32 = 9;
const SO_OOBINLINE: i32 = 10;
const SO_PRIORITY: i32 = 12;
const SO_LINGER: i32 = 13;
const SO_REUSEPORT: i32 = 15;
const SO_PASSCRED: i32 = 16;
const SO_PEERCRED: i32 = 17;
const SO_RCVLOWAT: i32 = 18;
const SO_SNDLOWAT: i32 = 19;
const SO_RCVTIMEO_OLD: i32 = 20;
const SO_SNDTIMEO_OLD: i32 = 21;
const SO_ACCEPTCONN: i32 = 30;
const SO_SNDBUFFORCE: i32 = 32;
const SO_RCVBUFFORCE: i32 = 33;
const SO_PROTOCOL: i32 = 38;
const SO_DOMAIN: i32 = 39;
const SO_RCVTIMEO_NEW: i32 = 66;
const SO_SNDTIMEO_NEW: i32 = 67;
/// Linux's `SOCK_MIN_SNDBUF`/`SOCK_MIN_RCVBUF`.
const MIN_SNDBUF: usize = 4608;
const MIN_RCVBUF: usize = 2304;

/// Options Linux keeps for a Unix socket without acting on them.
const KEPT: [i32; 7] = [
    SO_DEBUG,
    SO_REUSEADDR,
    SO_DONTROUTE,
    SO_BROADCAST,
    SO_KEEPALIVE,
    SO_OOBINLINE,
    SO_REUSEPORT,
];

fn int(v: impl TryInto<i32>) -> Vec<u8> {
    v.try_into().unwrap_or(i32::MAX).to_ne_bytes().to_vec()
}

/// `struct timeval` of a timeout (zero for none).
fn timeval(t: Option<Duration>) -> Vec<u8> {
    let t = t.unwrap_or_default();
    let sec = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    let mut out = sec.to_ne_bytes().to_vec();
    out.extend_from_slice(&i64::from(t.subsec_micros()).to_ne_bytes());
    out
}

fn kept(opts: &Options, name: i32) -> i32 {
    opts.kept
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| *v)
}

fn value(ep: &Endpoint, name: i32) -> SysResult<Vec<u8>> {
    let opts = ep.options();
    Ok(match name {
        SO_TYPE => int(ep.kind.linux()),
        SO_DOMAIN => int(AF_UNIX),
        SO_PROTOCOL => int(0),
        SO_ERROR => int(ep.take_error().map_or(0, Errno::value)),
        SO_PASSCRED => int(opts.passcred),
        SO_SNDBUF => int(opts.sndbuf),
        SO_RCVBUF => int(opts.rcvbuf),
        SO_ACCEPTCONN => int(ep.listening()),
        SO_RCVLOWAT => int(opts.rcvlowat),
        SO_SNDLOWAT => int(1),
        SO_PRIORITY => int(kept(&opts, name)),
        n if KEPT.contains(&n) => int(kept(&opts, n)),
        SO_LINGER => {
            let mut out = opts.linger[0].to_ne_bytes().to_vec();
            out.extend_from_slice(&opts.linger[1].to_ne_bytes());
            out
        }
        SO_PEERCRED => zerocopy::IntoBytes::as_bytes(&ep.peer_cred()).to_vec(),
        SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW => timeval(opts.rcvtimeo),
        SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => timeval(opts.sndtimeo),
        _ => {
            log::warn!("getsockopt(SOL_SOCKET, {name}) on a Unix socket: ENOPROTOOPT");
            return Err(Errno::ENOPROTOOPT);
        }
    })
}

pub fn getsockopt(
    task: &mut Task,
    fd: i32,
    level: i32,
    name: i32,
    val: UserAddr,
    len: UserAddr,
) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let ep = &sock(&file)?.ep;
    let room: i32 = task.mm.read(UserPtr::new(len))?;
    let room = usize::try_from(room).map_err(|_| Errno::EINVAL)?;
    if level != SOL_SOCKET {
        log::debug!("getsockopt level {level} on a Unix socket: EOPNOTSUPP");
        return Err(Errno::EOPNOTSUPP);
    }
    let bytes = value(ep, name)?;
    let n = room.min(bytes.len());
    task.mm.copy_out(val, &bytes[..n])?;
    task.mm
        .write(UserPtr::new(len), &i32::try_from(n).unwrap_or(0))?;
    Ok(0)
}

fn read_int(task: &Task, val: UserAddr, len: usize) -> SysResult<i32> {
    if len < 4 {
        return Err(Errno::EINVAL);
    }
    task.mm.read(UserPtr::new(val))
}

/// A timeout from `struct timeval`, as Linux's `sock_set_timeout`: zero is none, a
/// negative one never waits.
fn read_timeout(task: &Task, val: UserAddr, len: usize) -> SysResult<Option<Duration>> {
    if len < 16 {
        return Err(Errno::EINVAL);
    }
    let tv: [i64; 2] = task.mm.read(UserPtr::new(val))?;
    let [sec, usec] = tv;
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 {
        return Ok(Some(Duration::ZERO));
    }
    if sec == 0 && usec == 0 {
        return Ok(None);
    }
    let usec = u64::try_from(usec).unwrap_or(0);
    Ok(Some(
        Duration::from_secs(u64::try_from(sec).unwrap_or(0)) + Duration::from_micros(usec),
    ))
}

/// `SO_SNDBUF`/`SO_RCVBUF`: capped at the system maximum (unless forced), doubled for
/// bookkeeping, at least the minimum.
fn buf_size(v: i32, force: bool, min: usize) -> usize {
    let v = usize::try_from(v.unsigned_abs()).unwrap_or(usize::MAX);
    let v = if v > i32::MAX as usize { usize::MAX } else { v };
    let v = if force {
        v.min(i32::MAX as usize / 2)
    } else {
        v.min(MAX_BUF)
    };
    (v * 2).max(min)
}

pub fn setsockopt(
    task: &mut Task,
    fd: i32,
    level: i32,
    name: i32,
    val: UserAddr,
    len: i32,
) -> SysResult<i64> {
    let file = socket_file(task, fd)?;
    let ep = &sock(&file)?.ep;
    let len = usize::try_from(len).map_err(|_| Errno::EINVAL)?;
    if level != SOL_SOCKET {
        log::debug!("setsockopt level {level} on a Unix socket: EOPNOTSUPP");
        return Err(Errno::EOPNOTSUPP);
    }
    let root = task.creds.euid == 0;
    match name {
        SO_RCVTIMEO_OLD | SO_RCVTIMEO_NEW => {
            let t = read_timeout(task, val, len)?;
            ep.set_options(|o| {
                o.rcvtimeo = t;
                Ok(())
            })?;
        }
        SO_SNDTIMEO_OLD | SO_SNDTIMEO_NEW => {
            let t = read_timeout(task, val, len)?;
            ep.set_options(|o| {
                o.sndtimeo = t;
                Ok(())
            })?;
        }
        SO_LINGER => {
            if len < 8 {
                return Err(Errno::EINVAL);
            }
            let l: [i32; 2] = task.mm.read(UserPtr::new(val))?;
            ep.set_options(|o| {
                o.linger = [i32::from(l[0] != 0), l[1]];
                Ok(())
            })?;
        }
        SO_PASSCRED | SO_SNDBUF | SO_RCVBUF | SO_SNDBUFFORCE | SO_RCVBUFFORCE | SO_RCVLOWAT
        | SO_PRIORITY => {
            let v = read_int(task, val, len)?;
            ep.set_options(|o| {
                match name {
                    SO_PASSCRED => o.passcred = v != 0,
                    SO_SNDBUF => o.sndbuf = buf_size(v, false, MIN_SNDBUF),
                    SO_RCVBUF => o.rcvbuf = buf_size(v, false, MIN_RCVBUF),
                    SO_SNDBUFFORCE | SO_RCVBUFFORCE if !root => return Err(Errno::EPERM),
                    SO_SNDBUFFORCE => o.sndbuf = buf_size(v, true, MIN_SNDBUF),
                    SO_RCVBUFFORCE => o.rcvbuf = buf_size(v, true, MIN_RCVBUF),
                    SO_RCVLOWAT => {
                        o.rcvlowat = usize::try_from(v).unwrap_or(i32::MAX as usize).max(1);
                    }
                    _ => {
                        // SO_PRIORITY: 0 to 6 for anyone, more with CAP_NET_ADMIN.
                        if !(0..=6).contains(&v) && !root {
                            return Err(Errno::EPERM);
                        }
                        set_kept(o, name, v);
                    }
                }
                Ok(())
            })?;
        }
        n if KEPT.contains(&n) => {
            let v = i32::from(read_int(task, val, len)? != 0);
            ep.set_options(|o| {
                set_kept(o, n, v);
                Ok(())
            })?;
        }
        _ => {
            log::warn!("setsockopt(SOL_SOCKET, {name}) on a Unix socket: ENOPROTOOPT");
            return Err(Errno::ENOPROTOOPT);
        }
    }
    Ok(0)
}

fn set_kept(o: &mut Options, name: i32, v: i32) {
    match o.kept.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = v,
        None => o.kept.push((name, v)),
    }
}
