//! Sending and receiving: a stream's bytes (which may be taken in parts and read across
//! writes), and datagrams and seqpackets (whole messages, truncated to the reader's
//! buffer). Nothing here waits: a full peer or an empty queue is `EAGAIN`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Address, Conn, Endpoint, Message, SockType, Ucred, MAX_DGRAM_QLEN};
use super::{RCV_SHUTDOWN, SEND_SHUTDOWN};
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::{INPUT_EVENTS, OUTPUT_EVENTS};
use crate::vfs::fasync::Reason;
use crate::vfs::FileDescription;

/// What travels beside the data: descriptions (`SCM_RIGHTS`) and the sender's
/// credentials (`SCM_CREDENTIALS`, given or the sender's own).
#[derive(Default)]
pub struct Control {
    pub rights: Vec<Arc<dyn FileDescription>>,
    pub creds: Ucred,
}

/// What a receive got.
#[derive(Default)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The message's whole length (datagrams; for streams, `len`).
    pub full_len: usize,
    /// A datagram longer than the buffer (`MSG_TRUNC` in `msg_flags`).
    pub truncated: bool,
    /// The sender's name, if it had one.
    pub from: Option<Address>,
    pub rights: Vec<Arc<dyn FileDescription>>,
    /// The sender's credentials, when the receiver asked for them (`SO_PASSCRED`).
    pub creds: Option<Ucred>,
}

impl Endpoint {
    /// Sends `data` with `ctl` (whose rights go with the first part sent); `to`: a
    /// datagram's destination, else the connected peer. Returns how much was taken: all
    /// of a message, or a part of a stream write.
    pub fn send(
        self: &Arc<Self>,
        data: &[u8],
        ctl: &mut Control,
        to: Option<&Arc<Endpoint>>,
    ) -> SysResult<usize> {
        match self.kind {
            SockType::Stream => self.send_stream(data, ctl),
            SockType::Dgram | SockType::SeqPacket => self.send_message(data, ctl, to),
        }
    }

    fn send_stream(self: &Arc<Self>, data: &[u8], ctl: &mut Control) -> SysResult<usize> {
        let (peer, sndbuf, from) = {
            let s = self.lock();
            let Conn::Connected(peer) = &s.conn else {
                return Err(Errno::ENOTCONN);
            };
            if s.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            (Arc::clone(peer), s.opts.sndbuf, s.bound.clone())
        };
        if data.is_empty() {
            return Ok(0);
        }
        let used = self.wmem.load(Ordering::Relaxed);
        if used >= sndbuf {
            return Err(Errno::EAGAIN);
        }
        let n = data.len().min(sndbuf - used);
        let msg = Message::new(self, data[..n].to_vec(), ctl, from);
        let refused = {
            let mut p = peer.lock();
            if p.closed || p.shutdown & RCV_SHUTDOWN != 0 {
                Some(msg)
            } else {
                p.recv.push_back(msg);
                None
            }
        };
        if let Some(msg) = refused {
            // The rights go back to the caller's control, which it drops.
            let mut msg = msg;
            ctl.rights = std::mem::take(&mut msg.rights);
            drop(msg);
            return Err(Errno::EPIPE);
        }
        peer.queue.notify(INPUT_EVENTS);
        peer.fasync.kill(Reason::In);
        Ok(n)
    }

    fn send_message(
        self: &Arc<Self>,
        data: &[u8],
        ctl: &mut Control,
        to: Option<&Arc<Endpoint>>,
    ) -> SysResult<usize> {
        let (target, sndbuf, from) = {
            let s = self.lock();
            if s.shutdown & SEND_SHUTDOWN != 0 {
                return Err(Errno::EPIPE);
            }
            let peer = match &s.conn {
                Conn::Connected(p) => Some(Arc::clone(p)),
                _ => None,
            };
            let target = if self.kind == SockType::SeqPacket {
                // A seqpacket socket ignores a destination, as Linux does.
                peer
            } else {
                to.cloned().or(peer)
            };
            (
                target.ok_or(Errno::ENOTCONN)?,
                s.opts.sndbuf,
                s.bound.clone(),
            )
        };
        if data.len() > sndbuf.saturating_sub(32) {
            return Err(Errno::EMSGSIZE);
        }
        if self.wmem.load(Ordering::Relaxed) >= sndbuf {
            return Err(Errno::EAGAIN);
        }
        let msg = Message::new(self, data.to_vec(), ctl, from);
        let refused = {
            let mut t = target.lock();
            let ours = matches!(&t.conn, Conn::Connected(p) if Arc::ptr_eq(p, self));
            let err = if t.closed {
                Some(if self.kind == SockType::SeqPacket {
                    Errno::EPIPE
                } else {
                    Errno::ECONNREFUSED
                })
            } else if self.kind == SockType::Dgram && matches!(t.conn, Conn::Connected(_)) && !ours
            {
                Some(Errno::EPERM)
            } else if t.shutdown & RCV_SHUTDOWN != 0 {
                Some(Errno::EPIPE)
            } else if !ours && t.recv.len() > MAX_DGRAM_QLEN {
                Some(Errno::EAGAIN)
            } else {
                None
            };
            match err {
                Some(e) => Some((e, msg)),
                None => {
                    t.recv.push_back(msg);
                    None
                }
            }
        };
        if let Some((e, mut msg)) = refused {
            ctl.rights = std::mem::take(&mut msg.rights);
            drop(msg);
            if e == Errno::ECONNREFUSED {
                self.forget_dead_peer(&target);
            }
            return Err(e);
        }
        target.queue.notify(INPUT_EVENTS);
        target.fasync.kill(Reason::In);
        Ok(data.len())
    }

    /// A datagram socket whose peer closed becomes unconnected (Linux reports
    /// `ECONNREFUSED` once, then `ENOTCONN`).
    fn forget_dead_peer(&self, dead: &Arc<Endpoint>) {
        let mut s = self.lock();
        if matches!(&s.conn, Conn::Connected(p) if Arc::ptr_eq(p, dead)) {
            s.conn = Conn::Unconnected;
        }
    }

    /// Receives into `buf`; `peek` leaves the data queued (and duplicates its rights).
    pub fn recv(&self, buf: &mut [u8], peek: bool) -> SysResult<Received> {
        match self.kind {
            SockType::Stream => self.recv_stream(buf, peek),
            SockType::Dgram | SockType::SeqPacket => self.recv_message(buf, peek),
        }
    }

    fn recv_stream(&self, buf: &mut [u8], peek: bool) -> SysResult<Received> {
        let mut consumed = Vec::new();
        let mut s = self.lock();
        if !matches!(s.conn, Conn::Connected(_)) {
            return Err(Errno::EINVAL);
        }
        if s.recv.is_empty() {
            if let Some(e) = s.error.take() {
                return Err(e);
            }
            if s.shutdown & RCV_SHUTDOWN != 0 {
                return Ok(Received::default());
            }
            return Err(Errno::EAGAIN);
        }
        let passcred = s.opts.passcred;
        let mut got = Received::default();
        let mut creds = None;
        let mut i = 0;
        while got.len < buf.len() && i < s.recv.len() {
            let m = &mut s.recv[i];
            // Never glue writes of different senders when credentials are asked for.
            if got.len > 0 && passcred && creds != Some(m.creds) {
                break;
            }
            if got.len == 0 {
                creds = Some(m.creds);
                got.from = m.from.clone();
            }
            let avail = &m.data[m.offset..];
            let n = avail.len().min(buf.len() - got.len);
            buf[got.len..got.len + n].copy_from_slice(&avail[..n]);
            got.len += n;
            let had_rights = !m.rights.is_empty();
            if peek {
                got.rights.extend(m.rights.iter().cloned());
                i += 1;
            } else {
                got.rights.append(&mut m.rights);
                m.offset += n;
                if m.offset == m.data.len() {
                    consumed.extend(s.recv.remove(i));
                }
            }
            // Descriptions end a read: they belong with the bytes they came with.
            if had_rights {
                break;
            }
        }
        drop(s);
        drop(consumed);
        got.full_len = got.len;
        if passcred {
            got.creds = creds;
        }
        Ok(got)
    }

    fn recv_message(&self, buf: &mut [u8], peek: bool) -> SysResult<Received> {
        let mut s = self.lock();
        if self.kind == SockType::SeqPacket && !matches!(s.conn, Conn::Connected(_)) {
            return Err(Errno::ENOTCONN);
        }
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let Some(m) = s.recv.front() else {
            if s.shutdown & RCV_SHUTDOWN != 0 {
                return Ok(Received::default());
            }
            return Err(Errno::EAGAIN);
        };
        let n = m.data.len().min(buf.len());
        buf[..n].copy_from_slice(&m.data[..n]);
        let mut got = Received {
            len: n,
            full_len: m.data.len(),
            truncated: m.data.len() > n,
            from: m.from.clone(),
            rights: Vec::new(),
            creds: s.opts.passcred.then_some(m.creds),
        };
        let consumed = if peek {
            got.rights = m.rights.clone();
            None
        } else {
            let mut m = s.recv.pop_front();
            if let Some(m) = &mut m {
                got.rights = std::mem::take(&mut m.rights);
            }
            m
        };
        drop(s);
        drop(consumed);
        // Room in this socket's queue for senders waiting on it.
        self.queue.notify(OUTPUT_EVENTS);
        Ok(got)
    }
}
