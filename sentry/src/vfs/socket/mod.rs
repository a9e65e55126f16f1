//! Unix domain sockets (`AF_UNIX`): stream, datagram and seqpacket endpoints, their names
//! (filesystem and abstract), and the open description programs hold.
//!
//! An [`Endpoint`] is one socket: its receive queue of [`Message`]s, its connection, its
//! shutdown bits and options, behind one lock. A sender never holds two endpoints' locks
//! at once: it reads what it needs from its own state, lets go, then locks the receiver
//! to queue the message. Messages are dropped outside every lock, since a message may
//! carry the last reference to another socket (`SCM_RIGHTS`), whose close locks its peer.
//!
//! Operations here never wait: they return `EAGAIN`, and the syscall layer
//! (`syscalls/socket.rs`) waits on the endpoint's queue, interruptibly, honouring
//! `O_NONBLOCK`, `MSG_DONTWAIT` and `SO_RCVTIMEO`/`SO_SNDTIMEO`. Linux's model is kept:
//! a sender's unread bytes are charged to its `SO_SNDBUF` until the receiver consumes
//! them, and a socket whose peer closed sees both directions shut down.
//!
//! Not done: `MSG_OOB`, `SO_PEEK_OFF`, timestamps, and the garbage collection of sockets
//! that are only reachable through their own queues (such a cycle is leaked, not freed).

mod conn;
mod io;
mod names;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

pub use io::{Control, Received};
pub use names::Namespace;

use super::fasync::{AsyncList, Fasync, Reason};
use super::file::{FileDescription, O_NONBLOCK, O_RDWR, POLLERR, POLLHUP, POLLIN, POLLOUT};
use super::{Stat, Time, S_IFSOCK};
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::{WaitQueue, OUTPUT_EVENTS};

pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_RAW: i32 = 3;
pub const SOCK_SEQPACKET: i32 = 5;
/// Shutdown bits, as Linux keeps them (`how + 1`).
pub const RCV_SHUTDOWN: u8 = 1;
pub const SEND_SHUTDOWN: u8 = 2;
pub const SHUTDOWN_MASK: u8 = 3;
pub const POLLRDHUP: u16 = 0x2000;
/// `net.core.wmem_default`/`rmem_default`: what `SO_SNDBUF`/`SO_RCVBUF` start at.
pub const DEFAULT_BUF: usize = 212_992;
/// `net.core.wmem_max`/`rmem_max`: the most `SO_SNDBUF`/`SO_RCVBUF` take (then doubled).
pub const MAX_BUF: usize = 212_992;
/// `net.unix.max_dgram_qlen`: datagrams a socket queues before senders wait.
pub const MAX_DGRAM_QLEN: usize = 512;
/// `SOMAXCONN`: the largest `listen` backlog.
pub const SOMAXCONN: usize = 4096;
/// sockfs's device number (`st_dev` of every socket).
const SOCKFS_DEV: u64 = 0x8;

static NEXT_INO: AtomicU64 = AtomicU64::new(1 << 20);

/// The three kinds of Unix socket (`SOCK_RAW` is served as `SOCK_DGRAM`, as Linux does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockType {
    Stream,
    Dgram,
    SeqPacket,
}

impl SockType {
    /// The kind for a `socket(2)` type (without flags); `None` if Unix sockets lack it.
    pub fn from_linux(t: i32) -> Option<Self> {
        match t {
            SOCK_STREAM => Some(Self::Stream),
            SOCK_DGRAM | SOCK_RAW => Some(Self::Dgram),
            SOCK_SEQPACKET => Some(Self::SeqPacket),
            _ => None,
        }
    }

    pub fn linux(self) -> i32 {
        match self {
            Self::Stream => SOCK_STREAM,
            Self::Dgram => SOCK_DGRAM,
            Self::SeqPacket => SOCK_SEQPACKET,
        }
    }

    /// Whether the kind has connections (listen, accept, a fixed peer).
    pub fn connected_kind(self) -> bool {
        self != Self::Dgram
    }
}

/// A socket's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// A filesystem name: `sun_path` up to its first NUL.
    Path(Vec<u8>),
    /// An abstract name: `sun_path` as given, starting with its NUL.
    Abstract(Vec<u8>),
}

impl Address {
    /// `struct sockaddr_un` as `getsockname` returns it, for `addr` or an unbound socket
    /// (the family alone).
    pub fn sockaddr(addr: Option<&Address>) -> Vec<u8> {
        let mut out = AF_UNIX.to_ne_bytes().to_vec();
        match addr {
            None => {}
            Some(Self::Path(p)) => {
                out.extend_from_slice(p);
                out.push(0);
            }
            Some(Self::Abstract(a)) => out.extend_from_slice(a),
        }
        out
    }
}

/// `struct ucred`: who sent a message, or who is at the other end.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

const _: () = assert!(std::mem::size_of::<Ucred>() == 12);

/// One queued write: a datagram, or a part of a stream.
pub struct Message {
    data: Vec<u8>,
    /// How much of a stream message has been read.
    offset: usize,
    /// The sender's name when it sent.
    from: Option<Address>,
    rights: Vec<Arc<dyn FileDescription>>,
    creds: Ucred,
    /// The sender, whose `SO_SNDBUF` the message is charged to until it is consumed.
    sender: Weak<Endpoint>,
}

impl Message {
    fn new(
        sender: &Arc<Endpoint>,
        data: Vec<u8>,
        ctl: &mut Control,
        from: Option<Address>,
    ) -> Self {
        sender.wmem.fetch_add(data.len(), Ordering::Relaxed);
        Self {
            data,
            offset: 0,
            from,
            rights: std::mem::take(&mut ctl.rights),
            creds: ctl.creds,
            sender: Arc::downgrade(sender),
        }
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.upgrade() {
            sender.wmem.fetch_sub(self.data.len(), Ordering::Relaxed);
            sender.queue.notify(OUTPUT_EVENTS);
        }
    }
}

/// Where a socket stands.
enum Conn {
    Unconnected,
    /// `listen`: connections made but not yet accepted, and how many may wait.
    Listening {
        backlog: usize,
        pending: VecDeque<Arc<Endpoint>>,
    },
    /// A stream or seqpacket connection, or a datagram socket's default destination.
    Connected(Arc<Endpoint>),
}

/// What `setsockopt` changes.
#[derive(Clone, Debug)]
pub struct Options {
    pub passcred: bool,
    pub sndbuf: usize,
    pub rcvbuf: usize,
    /// `None`: wait forever; zero: never wait.
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    /// `struct linger`: on/off and seconds (kept and reported; Unix sockets never linger).
    pub linger: [i32; 2],
    pub rcvlowat: usize,
    /// Options Linux keeps for Unix sockets without acting on them (`SO_REUSEADDR`,
    /// `SO_KEEPALIVE`, …): their values, by option number.
    pub kept: Vec<(i32, i32)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            passcred: false,
            sndbuf: DEFAULT_BUF,
            rcvbuf: DEFAULT_BUF,
            rcvtimeo: None,
            sndtimeo: None,
            linger: [0, 0],
            rcvlowat: 1,
            kept: Vec::new(),
        }
    }
}

struct State {
    conn: Conn,
    bound: Option<Address>,
    /// The filesystem node a path name made, to forget it at close.
    inode_key: Option<(u64, u64)>,
    recv: VecDeque<Message>,
    shutdown: u8,
    /// `SO_ERROR`: reported once by the next receive or `getsockopt`.
    error: Option<Errno>,
    opts: Options,
    /// `SO_PEERCRED`: the peer's when it connected (a listener's own, from `listen`).
    peer_cred: Option<Ucred>,
    closed: bool,
}

/// One Unix socket.
pub struct Endpoint {
    pub kind: SockType,
    ino: u64,
    /// The creator's user and group (`fstat`).
    owner: (u32, u32),
    /// Notified whenever what the socket may do changes: data arrives or is consumed,
    /// a connection comes or goes, a shutdown.
    pub queue: WaitQueue,
    /// The descriptions with `O_ASYNC` set, signalled when data or a connection
    /// arrives or the peer goes.
    pub fasync: AsyncList,
    /// Bytes this socket sent that no one has consumed yet.
    wmem: AtomicUsize,
    names: Arc<Namespace>,
    state: Mutex<State>,
    /// Serialises `bind`.
    bind_lock: Mutex<()>,
}

impl Endpoint {
    pub fn new(kind: SockType, names: &Arc<Namespace>, owner: (u32, u32)) -> Arc<Self> {
        Arc::new(Self {
            kind,
            ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
            owner,
            queue: WaitQueue::default(),
            fasync: AsyncList::default(),
            wmem: AtomicUsize::new(0),
            names: Arc::clone(names),
            state: Mutex::new(State {
                conn: Conn::Unconnected,
                bound: None,
                inode_key: None,
                recv: VecDeque::new(),
                shutdown: 0,
                error: None,
                opts: Options::default(),
                peer_cred: None,
                closed: false,
            }),
            bind_lock: Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// The socket's own name.
    pub fn bound(&self) -> Option<Address> {
        self.lock().bound.clone()
    }

    /// The connected peer's name (`getpeername`): `ENOTCONN` without a peer.
    pub fn peer_name(&self) -> SysResult<Option<Address>> {
        let peer = match &self.lock().conn {
            Conn::Connected(p) => Arc::clone(p),
            _ => return Err(Errno::ENOTCONN),
        };
        Ok(peer.bound())
    }

    pub fn options(&self) -> Options {
        self.lock().opts.clone()
    }

    /// Changes options with `f`, waking waiters (a bigger buffer may let a sender on).
    pub fn set_options<T>(&self, f: impl FnOnce(&mut Options) -> SysResult<T>) -> SysResult<T> {
        let r = f(&mut self.lock().opts);
        self.queue.notify_all();
        r
    }

    pub fn listening(&self) -> bool {
        matches!(self.lock().conn, Conn::Listening { .. })
    }

    /// `SO_ERROR`: the pending error, cleared.
    pub fn take_error(&self) -> Option<Errno> {
        self.lock().error.take()
    }

    /// `SO_PEERCRED`: no peer gives Linux's "nobody" (pid 0, overflow IDs).
    pub fn peer_cred(&self) -> Ucred {
        self.lock().peer_cred.unwrap_or(Ucred {
            pid: 0,
            uid: 65534,
            gid: 65534,
        })
    }

    /// The largest datagram a send takes (`EMSGSIZE` past it).
    pub fn max_message(&self) -> usize {
        self.lock().opts.sndbuf.saturating_sub(32)
    }

    /// `FIONREAD`: a stream's unread bytes, a datagram socket's next message length.
    pub fn readable_bytes(&self) -> SysResult<usize> {
        let s = self.lock();
        if matches!(s.conn, Conn::Listening { .. }) {
            return Err(Errno::EINVAL);
        }
        Ok(match self.kind {
            SockType::Dgram => s.recv.front().map_or(0, |m| m.data.len()),
            _ => s.recv.iter().map(|m| m.data.len() - m.offset).sum(),
        })
    }

    /// What `poll` reports, as Linux's `unix_poll`/`unix_dgram_poll`.
    pub fn readiness(&self) -> u16 {
        let s = self.lock();
        let mut r = 0;
        if s.error.is_some() {
            r |= POLLERR;
        }
        if s.shutdown == SHUTDOWN_MASK {
            r |= POLLHUP;
        }
        if s.shutdown & RCV_SHUTDOWN != 0 {
            r |= POLLRDHUP | POLLIN;
        }
        let (listening, peer) = match &s.conn {
            Conn::Listening { pending, .. } => {
                if !pending.is_empty() {
                    r |= POLLIN;
                }
                (true, None)
            }
            Conn::Connected(p) => (false, Some(Arc::clone(p))),
            Conn::Unconnected => (false, None),
        };
        if !s.recv.is_empty() {
            r |= POLLIN;
        }
        if self.kind.connected_kind() && !listening && peer.is_none() {
            r |= POLLHUP;
        }
        let mut writable = !listening && self.wmem.load(Ordering::Relaxed) * 4 <= s.opts.sndbuf;
        drop(s);
        if writable && self.kind == SockType::Dgram {
            if let Some(peer) = peer {
                writable = !peer.queue_full_for(self);
            }
        }
        if writable {
            r |= POLLOUT;
        }
        r
    }

    /// Whether a datagram from `sender` would wait for room in this socket's queue
    /// (only a socket not connected back to the sender limits its queue's length).
    fn queue_full_for(&self, sender: &Endpoint) -> bool {
        let s = self.lock();
        let ours = matches!(&s.conn, Conn::Connected(p) if std::ptr::eq(Arc::as_ptr(p), sender));
        !ours && s.recv.len() > MAX_DGRAM_QLEN
    }

    /// Whether a datagram socket's writability depends on another socket's queue, whose
    /// consumers do not notify this one: a waiter then looks again now and then.
    fn needs_polling(&self) -> bool {
        if self.kind != SockType::Dgram {
            return false;
        }
        let peer = match &self.lock().conn {
            Conn::Connected(p) => Arc::clone(p),
            _ => return false,
        };
        let s = peer.lock();
        !matches!(&s.conn, Conn::Connected(p) if std::ptr::eq(Arc::as_ptr(p), self))
    }

    /// The socket goes away (its last description closed, or an unaccepted connection
    /// whose listener closed: `embryo`): its peer sees both directions shut down, and
    /// `ECONNRESET` if data was left unread or it was never accepted; its names are
    /// forgotten; a listener's pending connections close.
    pub fn close(self: &Arc<Self>, embryo: bool) {
        let (conn, recv, bound, key) = {
            let mut s = self.lock();
            s.closed = true;
            s.shutdown = SHUTDOWN_MASK;
            (
                std::mem::replace(&mut s.conn, Conn::Unconnected),
                std::mem::take(&mut s.recv),
                s.bound.take(),
                s.inode_key.take(),
            )
        };
        match conn {
            Conn::Connected(peer) if self.kind.connected_kind() => {
                let mut p = peer.lock();
                p.shutdown = SHUTDOWN_MASK;
                if !recv.is_empty() || embryo {
                    p.error = Some(Errno::ECONNRESET);
                }
                drop(p);
                peer.queue.notify_all();
                peer.fasync.kill(Reason::Hup);
            }
            Conn::Listening { pending, .. } => {
                for e in pending {
                    e.close(true);
                }
            }
            _ => {}
        }
        if let Some(addr) = bound {
            self.names.unbind(&addr, key, self);
        }
        drop(recv);
        self.queue.notify_all();
    }
}

/// An open Unix socket: what a descriptor refers to. Its last close closes the socket.
pub struct UnixSocket {
    pub ep: Arc<Endpoint>,
    flags: AtomicI32,
}

impl UnixSocket {
    pub fn new(ep: Arc<Endpoint>, flags: i32) -> Self {
        Self {
            ep,
            flags: AtomicI32::new(O_RDWR | (flags & O_NONBLOCK)),
        }
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        self.ep.close(false);
    }
}

impl FileDescription for UnixSocket {
    /// A plain read (splice, sendfile); `read(2)` itself goes through the socket
    /// syscalls, which keep message boundaries and timeouts.
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        self.ep.recv(buf, false).map(|r| r.len)
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        let mut ctl = Control::default();
        self.ep.send(buf, &mut ctl, None)
    }

    fn stat(&self) -> SysResult<Stat> {
        let t = Time::now();
        Ok(Stat {
            dev: SOCKFS_DEV,
            ino: self.ep.ino,
            nlink: 1,
            mode: S_IFSOCK | 0o777,
            uid: self.ep.owner.0,
            gid: self.ep.owner.1,
            blksize: 4096,
            atime: t.sec,
            mtime: t.sec,
            ctime: t.sec,
            ..Stat::default()
        })
    }

    fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }

    fn set_async(&self, who: &Arc<Fasync>, fd: i32, on: bool) {
        self.ep.fasync.set(who, fd, on);
    }

    fn readable_bytes(&self) -> SysResult<usize> {
        self.ep.readable_bytes()
    }

    fn anon_name(&self) -> Vec<u8> {
        format!("socket:[{}]", self.ep.ino).into_bytes()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.ep.queue)
    }

    fn readiness(&self) -> u16 {
        self.ep.readiness()
    }

    fn needs_polling(&self) -> bool {
        self.ep.needs_polling()
    }

    fn as_socket(&self) -> Option<&UnixSocket> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
