//! Connections: socketpair, bind's bookkeeping, listen, connect, accept, shutdown.

use std::collections::VecDeque;
use std::sync::{Arc, MutexGuard};

use super::{
    Address, Conn, Endpoint, Namespace, SockType, Ucred, RCV_SHUTDOWN, SEND_SHUTDOWN, SOMAXCONN,
};
use crate::errno::{Errno, SysResult};
use crate::vfs::fasync::Reason;

/// Whether `conn` is a connection to `ep`.
fn connected_to(conn: &Conn, ep: &Endpoint) -> bool {
    matches!(conn, Conn::Connected(p) if std::ptr::eq(Arc::as_ptr(p), ep))
}

impl Endpoint {
    /// `socketpair`: two sockets connected to each other, each seeing `cred` as its peer.
    pub fn pair(
        kind: SockType,
        names: &Arc<Namespace>,
        owner: (u32, u32),
        cred: Ucred,
    ) -> (Arc<Self>, Arc<Self>) {
        let a = Self::new(kind, names, owner);
        let b = Self::new(kind, names, owner);
        for (x, y) in [(&a, &b), (&b, &a)] {
            let mut s = x.lock();
            s.conn = Conn::Connected(Arc::clone(y));
            s.peer_cred = Some(cred);
        }
        (a, b)
    }

    /// Serialises binds of this socket; hold it across [`Endpoint::set_bound`].
    pub fn bind_guard(&self) -> MutexGuard<'_, ()> {
        self.bind_lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the socket's name; `inode`: the filesystem node a path name made.
    pub fn set_bound(&self, addr: Address, inode: Option<(u64, u64)>) {
        let mut s = self.lock();
        s.bound = Some(addr);
        s.inode_key = inode;
    }

    /// Gives an unbound socket an abstract name (`bind` with only the family, or a
    /// connect or send with `SO_PASSCRED`); a bound one keeps its own.
    pub fn autobind(self: &Arc<Self>) -> SysResult<()> {
        let _guard = self.bind_guard();
        if self.bound().is_some() {
            return Ok(());
        }
        let name = self.names.autobind_name(self)?;
        self.set_bound(name, None);
        Ok(())
    }

    /// `listen`: a bound stream or seqpacket socket starts taking connections; a
    /// listener's backlog changes. `cred` is what connecting peers see (`SO_PEERCRED`).
    pub fn listen(&self, backlog: usize, cred: Ucred) -> SysResult<()> {
        if self.kind == SockType::Dgram {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.lock();
        if s.bound.is_none() {
            return Err(Errno::EINVAL);
        }
        let backlog = backlog.min(SOMAXCONN);
        match &mut s.conn {
            Conn::Connected(_) => return Err(Errno::EINVAL),
            Conn::Listening { backlog: b, .. } => *b = backlog,
            Conn::Unconnected => {
                s.conn = Conn::Listening {
                    backlog,
                    pending: VecDeque::new(),
                };
                s.peer_cred = Some(cred);
            }
        }
        drop(s);
        // A bigger backlog may let waiting connectors in.
        self.queue.notify_all();
        Ok(())
    }

    /// Connects a stream or seqpacket socket to listener `target`: a new socket, the
    /// server's end, waits in the listener's backlog for `accept`, already connected.
    /// `EAGAIN` when the backlog is full (a blocking caller waits on the listener's
    /// queue).
    pub fn connect(self: &Arc<Self>, target: &Arc<Self>, cred: Ucred) -> SysResult<()> {
        self.check_unconnected()?;
        if target.kind != self.kind {
            return Err(Errno::EPROTOTYPE);
        }
        let server = Self::new(self.kind, &self.names, target.owner);
        let listener_cred = {
            let mut t = target.lock();
            if t.closed {
                return Err(Errno::ECONNREFUSED);
            }
            let Conn::Listening { backlog, pending } = &t.conn else {
                return Err(Errno::ECONNREFUSED);
            };
            if pending.len() > *backlog {
                return Err(Errno::EAGAIN);
            }
            {
                // No one else knows `server` yet: holding its lock under the listener's
                // cannot deadlock.
                let mut s = server.lock();
                s.conn = Conn::Connected(Arc::clone(self));
                s.peer_cred = Some(cred);
                s.bound = t.bound.clone();
                s.opts.passcred = t.opts.passcred;
            }
            let listener_cred = t.peer_cred;
            if let Conn::Listening { pending, .. } = &mut t.conn {
                pending.push_back(Arc::clone(&server));
            }
            listener_cred
        };
        target.queue.notify_all();
        target.fasync.kill(Reason::In);
        let mut s = self.lock();
        if !matches!(s.conn, Conn::Unconnected) {
            // Another thread connected this socket meanwhile.
            drop(s);
            server.close(true);
            return Err(Errno::EISCONN);
        }
        s.conn = Conn::Connected(server);
        s.peer_cred = listener_cred;
        drop(s);
        self.queue.notify_all();
        Ok(())
    }

    /// `EISCONN` for a connected socket, `EINVAL` for a listener.
    pub fn check_unconnected(&self) -> SysResult<()> {
        match self.lock().conn {
            Conn::Unconnected => Ok(()),
            Conn::Connected(_) => Err(Errno::EISCONN),
            Conn::Listening { .. } => Err(Errno::EINVAL),
        }
    }

    /// Sets a datagram socket's default destination (`None`: `AF_UNSPEC` disconnects).
    /// `EPERM` if `target` is connected to a third socket.
    pub fn connect_dgram(self: &Arc<Self>, target: Option<&Arc<Self>>) -> SysResult<()> {
        if let Some(t) = target {
            if t.kind != SockType::Dgram {
                return Err(Errno::EPROTOTYPE);
            }
            let ts = t.lock();
            if ts.closed {
                return Err(Errno::ECONNREFUSED);
            }
            if let Conn::Connected(_) = ts.conn {
                if !connected_to(&ts.conn, self) {
                    return Err(Errno::EPERM);
                }
            }
        }
        let mut s = self.lock();
        s.conn = match target {
            Some(t) => Conn::Connected(Arc::clone(t)),
            None => Conn::Unconnected,
        };
        drop(s);
        self.queue.notify_all();
        Ok(())
    }

    /// Takes the oldest pending connection: `EINVAL` if not listening, `EAGAIN` if none.
    pub fn accept(&self) -> SysResult<Arc<Self>> {
        if self.kind == SockType::Dgram {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut s = self.lock();
        let Conn::Listening { pending, .. } = &mut s.conn else {
            return Err(Errno::EINVAL);
        };
        let server = pending.pop_front().ok_or(Errno::EAGAIN)?;
        drop(s);
        // Room in the backlog for a waiting connector.
        self.queue.notify_all();
        Ok(server)
    }

    /// `shutdown`: `how` is `SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`; a connection's peer
    /// sees the other half (`SHUT_WR` here is end-of-file there).
    pub fn shutdown(&self, how: i32) -> SysResult<()> {
        let mode = match how {
            0..=2 => u8::try_from(how + 1).map_err(|_| Errno::EINVAL)?,
            _ => return Err(Errno::EINVAL),
        };
        let peer = {
            let mut s = self.lock();
            s.shutdown |= mode;
            match &s.conn {
                Conn::Connected(p) if self.kind.connected_kind() => Some(Arc::clone(p)),
                _ => None,
            }
        };
        self.queue.notify_all();
        if let Some(peer) = peer {
            let mut peer_mode = 0;
            if mode & RCV_SHUTDOWN != 0 {
                peer_mode |= SEND_SHUTDOWN;
            }
            if mode & SEND_SHUTDOWN != 0 {
                peer_mode |= RCV_SHUTDOWN;
            }
            peer.lock().shutdown |= peer_mode;
            peer.queue.notify_all();
            peer.fasync.kill(Reason::In);
        }
        Ok(())
    }
}
