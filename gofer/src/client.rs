//! The client the Sentry uses: a typed API over a pool of channels.
//!
//! Each channel carries one outstanding request at a time; `Client` holds several and
//! lends a free one to each call, so it can be shared by many threads (`Client: Sync`).
//! Handles are valid on every channel of one server. Transport failures surface as
//! `EIO`, and the channel that failed is not used again.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::channel;
use crate::errno::Errno;
use crate::protocol::{
    Bytes, Dirent, DirentPlus, Handle, Name, Request, Response, SetAttr, Stat, StatFs, NAME_MAX,
};

struct Channel {
    sock: OwnedFd,
    buf: Vec<u8>,
    broken: bool,
}

/// A connection to one Gofer server, over one or more channels.
pub struct Client {
    channels: Vec<Mutex<Channel>>,
    next: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn name(n: impl AsRef<[u8]>) -> Result<Name, Errno> {
    let n = n.as_ref();
    if n.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(Name(n.to_vec()))
}

/// The reply did not match the request.
fn unexpected(resp: &Response) -> Errno {
    log::warn!("gofer client: unexpected reply kind {}", resp.kind());
    Errno::EIO
}

impl Client {
    /// A client over the given channel sockets (at least one).
    pub fn new(socks: Vec<OwnedFd>) -> Client {
        let channels = socks
            .into_iter()
            .map(|sock| {
                Mutex::new(Channel {
                    sock,
                    buf: channel::recv_buffer(),
                    broken: false,
                })
            })
            .collect();
        Client {
            channels,
            next: AtomicUsize::new(0),
        }
    }

    fn channel(&self) -> Result<MutexGuard<'_, Channel>, Errno> {
        let n = self.channels.len();
        if n == 0 {
            return Err(Errno::EIO);
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            match self.channels[(start + i) % n].try_lock() {
                Ok(c) => return Ok(c),
                Err(TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        Ok(lock(&self.channels[start % n]))
    }

    /// Sends one request and waits for its reply; an error reply becomes `Err(errno)`.
    pub fn call(&self, req: &Request) -> Result<(Response, Option<OwnedFd>), Errno> {
        let msg = req.encode().map_err(|_| Errno::E2BIG)?;
        let mut guard = self.channel()?;
        let ch = &mut *guard;
        if ch.broken {
            return Err(Errno::EIO);
        }
        let result = channel::send(ch.sock.as_fd(), &msg, None)
            .and_then(|()| channel::recv(ch.sock.as_fd(), &mut ch.buf));
        let (bytes, fd) = match result {
            Ok(r) => r,
            Err(e) => {
                log::warn!("gofer client: channel failed: {e}");
                ch.broken = true;
                return Err(Errno::EIO);
            }
        };
        let resp = Response::decode(bytes).map_err(|e| {
            log::warn!("gofer client: bad reply: {e}");
            ch.broken = true;
            Errno::EIO
        })?;
        drop(guard);
        if let Response::Error { errno } = resp {
            return Err(Errno::from_raw(errno));
        }
        if resp.carries_fd() {
            if fd.is_none() {
                return Err(Errno::EIO);
            }
            Ok((resp, fd))
        } else {
            Ok((resp, None))
        }
    }

    fn node(&self, req: &Request) -> Result<(Handle, Stat), Errno> {
        match self.call(req)?.0 {
            Response::Node { handle, stat } => Ok((handle, stat)),
            r => Err(unexpected(&r)),
        }
    }

    fn ok(&self, req: &Request) -> Result<(), Errno> {
        match self.call(req)?.0 {
            Response::Ok {} => Ok(()),
            r => Err(unexpected(&r)),
        }
    }

    fn stat_reply(&self, req: &Request) -> Result<Stat, Errno> {
        match self.call(req)?.0 {
            Response::Stat { stat } => Ok(stat),
            r => Err(unexpected(&r)),
        }
    }

    fn xattr(&self, req: &Request) -> Result<(u32, Vec<u8>), Errno> {
        match self.call(req)?.0 {
            Response::Xattr { len, data } => Ok((len, data.0)),
            r => Err(unexpected(&r)),
        }
    }

    /// The root of the mount called `mount`.
    pub fn attach(&self, mount: &str) -> Result<(Handle, Stat), Errno> {
        self.node(&Request::Attach {
            mount: name(mount)?,
        })
    }

    /// Walks one component from `dir`; a symlink is returned, not followed.
    pub fn walk(&self, dir: Handle, n: impl AsRef<[u8]>) -> Result<(Handle, Stat), Errno> {
        self.node(&Request::Walk {
            dir,
            name: name(n)?,
        })
    }

    /// The node's attributes.
    pub fn stat(&self, node: Handle) -> Result<Stat, Errno> {
        self.stat_reply(&Request::Stat { node })
    }

    /// Changes attributes; returns the new ones.
    pub fn set_attr(&self, node: Handle, attr: SetAttr) -> Result<Stat, Errno> {
        self.stat_reply(&Request::SetAttr { node, attr })
    }

    /// Opens the node for I/O: a host FD the caller reads, writes and maps directly.
    pub fn open(&self, node: Handle, flags: i32) -> Result<OwnedFd, Errno> {
        let flags = u32::from_ne_bytes(flags.to_ne_bytes());
        match self.call(&Request::Open { node, flags })? {
            (Response::Opened {}, Some(fd)) => Ok(fd),
            (r, _) => Err(unexpected(&r)),
        }
    }

    /// Creates and opens a regular file (`O_CREAT | O_EXCL`).
    pub fn create(
        &self,
        dir: Handle,
        n: impl AsRef<[u8]>,
        flags: i32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat, OwnedFd), Errno> {
        let flags = u32::from_ne_bytes(flags.to_ne_bytes());
        let req = Request::Create {
            dir,
            name: name(n)?,
            flags,
            mode,
            uid,
            gid,
        };
        match self.call(&req)? {
            (Response::Created { handle, stat }, Some(fd)) => Ok((handle, stat, fd)),
            (r, _) => Err(unexpected(&r)),
        }
    }

    /// Creates a directory.
    pub fn mkdir(
        &self,
        dir: Handle,
        n: impl AsRef<[u8]>,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        self.node(&Request::Mkdir {
            dir,
            name: name(n)?,
            mode,
            uid,
            gid,
        })
    }

    /// Creates a regular file, FIFO or socket node.
    pub fn mknod(
        &self,
        dir: Handle,
        n: impl AsRef<[u8]>,
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        self.node(&Request::Mknod {
            dir,
            name: name(n)?,
            mode,
            rdev,
            uid,
            gid,
        })
    }

    /// Creates a symlink `dir/n` → `target`.
    pub fn symlink(
        &self,
        dir: Handle,
        n: impl AsRef<[u8]>,
        target: impl AsRef<[u8]>,
        uid: u32,
        gid: u32,
    ) -> Result<(Handle, Stat), Errno> {
        let target = Bytes(target.as_ref().to_vec());
        self.node(&Request::Symlink {
            dir,
            name: name(n)?,
            target,
            uid,
            gid,
        })
    }

    /// Creates a hard link `dir/n` to `target`.
    pub fn link(
        &self,
        dir: Handle,
        n: impl AsRef<[u8]>,
        target: Handle,
    ) -> Result<(Handle, Stat), Errno> {
        self.node(&Request::Link {
            dir,
            name: name(n)?,
            target,
        })
    }

    /// Removes `dir/n`; `flags` is 0 or `AT_REMOVEDIR`.
    pub fn unlink(&self, dir: Handle, n: impl AsRef<[u8]>, flags: u32) -> Result<(), Errno> {
        self.ok(&Request::Unlink {
            dir,
            name: name(n)?,
            flags,
        })
    }

    /// `renameat2(old_dir, old_name, new_dir, new_name, flags)`.
    pub fn rename(
        &self,
        old_dir: Handle,
        old_name: impl AsRef<[u8]>,
        new_dir: Handle,
        new_name: impl AsRef<[u8]>,
        flags: u32,
    ) -> Result<(), Errno> {
        self.ok(&Request::Rename {
            old_dir,
            old_name: name(old_name)?,
            new_dir,
            new_name: name(new_name)?,
            flags,
        })
    }

    /// A symlink's target.
    pub fn readlink(&self, node: Handle) -> Result<Vec<u8>, Errno> {
        match self.call(&Request::Readlink { node })?.0 {
            Response::Target { target } => Ok(target.0),
            r => Err(unexpected(&r)),
        }
    }

    /// Directory entries from `cookie` (0: the start); empty at the end.
    pub fn readdir(&self, dir: Handle, cookie: u64, max_bytes: u32) -> Result<Vec<Dirent>, Errno> {
        match self
            .call(&Request::Readdir {
                dir,
                cookie,
                max_bytes,
            })?
            .0
        {
            Response::Dirents { entries } => Ok(entries),
            r => Err(unexpected(&r)),
        }
    }

    /// Directory entries with their attributes (never following a symlink), from `cookie`
    /// (0: the start), and whether they reach the end of the directory.
    pub fn readdir_plus(
        &self,
        dir: Handle,
        cookie: u64,
        max_bytes: u32,
    ) -> Result<(Vec<DirentPlus>, bool), Errno> {
        match self
            .call(&Request::ReaddirPlus {
                dir,
                cookie,
                max_bytes,
            })?
            .0
        {
            Response::DirentsPlus { entries, end } => Ok((entries, end)),
            r => Err(unexpected(&r)),
        }
    }

    /// The filesystem's attributes.
    pub fn statfs(&self, node: Handle) -> Result<StatFs, Errno> {
        match self.call(&Request::StatFs { node })?.0 {
            Response::StatFs { statfs } => Ok(statfs),
            r => Err(unexpected(&r)),
        }
    }

    /// `fsync` (or `fdatasync`) of the node.
    pub fn fsync(&self, node: Handle, datasync: bool) -> Result<(), Errno> {
        self.ok(&Request::Fsync { node, datasync })
    }

    /// `fallocate` on the node.
    pub fn fallocate(&self, node: Handle, mode: u32, offset: u64, len: u64) -> Result<(), Errno> {
        self.ok(&Request::Fallocate {
            node,
            mode,
            offset,
            len,
        })
    }

    /// `getxattr`: with `size` 0 returns only the length.
    pub fn getxattr(
        &self,
        node: Handle,
        n: impl AsRef<[u8]>,
        size: u32,
    ) -> Result<(u32, Vec<u8>), Errno> {
        self.xattr(&Request::GetXattr {
            node,
            name: name(n)?,
            size,
        })
    }

    /// `setxattr` with `XATTR_CREATE`/`XATTR_REPLACE` flags.
    pub fn setxattr(
        &self,
        node: Handle,
        n: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
    ) -> Result<(), Errno> {
        let value = Bytes(value.as_ref().to_vec());
        self.ok(&Request::SetXattr {
            node,
            name: name(n)?,
            value,
            flags,
        })
    }

    /// `listxattr`: NUL-separated names; with `size` 0 returns only the length.
    pub fn listxattr(&self, node: Handle, size: u32) -> Result<(u32, Vec<u8>), Errno> {
        self.xattr(&Request::ListXattr { node, size })
    }

    /// `removexattr`.
    pub fn removexattr(&self, node: Handle, n: impl AsRef<[u8]>) -> Result<(), Errno> {
        self.ok(&Request::RemoveXattr {
            node,
            name: name(n)?,
        })
    }

    /// Releases handles.
    pub fn close(&self, handles: &[Handle]) -> Result<(), Errno> {
        self.ok(&Request::Close {
            handles: handles.to_vec(),
        })
    }
}
