//! The Gofer's file server: serves mount roots to one hostile client over channels.
//!
//! # Confinement of every request to the served roots
//! Each handle holds an `O_PATH | O_NOFOLLOW` FD of its node. A walk opens exactly one
//! component relative to its directory's FD, with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` (or, where `openat2` is missing,
//! `openat(O_NOFOLLOW)`), after the name has been checked to hold no `/`, no NUL and not to
//! be `.` or `..`. So a walk cannot leave its directory, and a symlink is returned as a
//! node, never followed, however the host tree changes between two messages. Every
//! operation on a node uses its FD (`*at` with an empty path and `AT_EMPTY_PATH`, or a
//! re-open of the FD itself through `/proc/self/fd/N`, which names the same inode and
//! resolves no path), and every operation on a name is an `*at` call on the directory FD.
//! `ReaddirPlus` stats, with `AT_SYMLINK_NOFOLLOW`, only names the kernel has just listed
//! from that directory FD, so it reaches no node a walk could not.
//!
//! # Errors for refused names
//! The Sentry resolves `.`, `..`, empty paths and trailing slashes itself, so a request
//! with such a name is a bug or an attack, never something an application asked for:
//! empty names get `ENOENT`, names over `NAME_MAX` `ENAMETOOLONG`, and `.`, `..` or names
//! holding `/` or NUL `EINVAL`. No Linux-visible errno depends on them.
//!
//! # Other choices
//! - The server runs with umask 0: modes arrive already masked by the Sentry.
//! - `Open` donates FDs for regular files and directories only. Symlinks give `ELOOP`
//!   (as `O_NOFOLLOW` does), device nodes `EACCES` (as on a `nodev` mount: the Sentry's
//!   devfs serves devices), FIFOs and sockets `ENXIO` (the Sentry implements them).
//! - xattrs are read and written through a re-opened FD, which exists for regular files,
//!   directories and FIFOs. On other nodes (symlinks, devices, sockets) the server answers
//!   what Linux answers for `user.*` names there: `ENODATA` for get, an empty list, and
//!   `EPERM` for set and remove.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno as RErrno;
use rustix::path::DecInt;
use thiserror::Error;

use crate::channel::{self, ChannelError};
use crate::errno::Errno;
use crate::protocol::{
    dirent_plus_size, dirent_size, Bytes, Dirent, DirentPlus, Handle, Name, Request, Response,
    SetAttr, SetAttrMask, Stat, StatFs, Timespec, HEADER_SIZE, MAX_MESSAGE_SIZE, NAME_MAX, NO_ID,
    SYMLINK_MAX, UTIME_NOW, UTIME_OMIT, XATTR_VALUE_MAX,
};

/// Errors setting up or running the server (request errors are errnos sent to the client).
#[derive(Debug, Error)]
pub enum GoferError {
    /// A mount root could not be opened.
    #[error("Cannot open mount root {path:?}")]
    OpenRoot {
        /// The configured path.
        path: PathBuf,
        /// Why.
        #[source]
        source: RErrno,
    },
    /// `/proc/self/fd` could not be opened (the server needs procfs to re-open nodes).
    #[error("Cannot open /proc/self/fd (mount procfs in the Gofer's namespace)")]
    ProcFd(#[source] RErrno),
    /// Two mounts share a name.
    #[error("Duplicate mount name {0:?}")]
    DuplicateMount(String),
    /// A mount root is neither a directory nor a regular file.
    #[error("Mount root {0:?} is not a directory or a regular file")]
    RootType(PathBuf),
    /// The channel failed.
    #[error("Channel failed")]
    Channel(#[source] ChannelError),
}

/// One tree the server serves.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// The name a client passes to `Attach` (e.g. `/` for the container root, the
    /// destination path for an OCI bind mount).
    pub name: String,
    /// The host directory, or a regular file (an OCI bind of one file, such as
    /// `/etc/hosts`: its root node is the file, and walks from it fail with `ENOTDIR`).
    /// The path is resolved once, by the trusted runtime, when the server starts
    /// (symlinks in it are followed, as `mount --bind` follows them); from then on the
    /// root is a descriptor.
    pub path: PathBuf,
    /// Whether every write is refused with `EROFS`.
    pub read_only: bool,
}

struct Mount {
    name: Vec<u8>,
    root: OwnedFd,
    read_only: bool,
    is_dir: bool,
}

/// A served tree as the Landlock ruleset sees it.
#[derive(Debug, Clone, Copy)]
pub struct ServedTree<'a> {
    /// The root's `O_PATH` descriptor.
    pub fd: BorrowedFd<'a>,
    /// Whether only reading is allowed.
    pub read_only: bool,
    /// A directory (the rule covers the tree beneath it) or a single regular file.
    pub is_dir: bool,
}

struct Node {
    /// `O_PATH | O_NOFOLLOW` FD of the node.
    fd: OwnedFd,
    /// `S_IFMT` bits of the node (a node's type never changes).
    ftype: u32,
    /// Whether the node lies in a read-only mount.
    read_only: bool,
    /// For directories: an `O_RDONLY` FD used by `Readdir`, opened on first use.
    dir_stream: Mutex<Option<OwnedFd>>,
}

impl Node {
    fn is_dir(&self) -> bool {
        self.ftype == libc::S_IFDIR
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

/// The default limit of handles a client may hold at once.
pub const DEFAULT_MAX_HANDLES: usize = 1 << 16;

/// The file server. Shared by all channels of one client: a handle from one channel is
/// valid on every other.
pub struct Server {
    mounts: Vec<Mount>,
    nodes: Mutex<HashMap<u64, Arc<Node>>>,
    next_handle: AtomicU64,
    proc_self_fd: OwnedFd,
    have_openat2: AtomicBool,
    max_handles: usize,
}

type Reply = (Response, Option<OwnedFd>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the maps inconsistent (each update is
    // one insert or remove), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks a path component from the client (see the module docs for the errnos).
pub fn check_name(name: &Name) -> Result<&[u8], Errno> {
    let b = name.as_bytes();
    if b.is_empty() {
        return Err(Errno::ENOENT);
    }
    if b.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(b)
}

fn check_xattr_name(name: &Name) -> Result<&[u8], Errno> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > NAME_MAX {
        return Err(Errno::ERANGE);
    }
    if b.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(b)
}

fn owner(uid: u32, gid: u32) -> (Option<rfs::Uid>, Option<rfs::Gid>) {
    (
        (uid != NO_ID).then(|| rfs::Uid::from_raw(uid)),
        (gid != NO_ID).then(|| rfs::Gid::from_raw(gid)),
    )
}

fn ts(sec: i64, nsec: u64) -> Timespec {
    Timespec {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0),
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn convert_stat(s: &rfs::Stat) -> Stat {
    Stat {
        dev: s.st_dev,
        ino: s.st_ino,
        mode: s.st_mode,
        nlink: s.st_nlink,
        uid: s.st_uid,
        gid: s.st_gid,
        rdev: s.st_rdev,
        size: to_u64(s.st_size),
        blksize: u32::try_from(s.st_blksize).unwrap_or(u32::MAX),
        blocks: to_u64(s.st_blocks),
        atime: ts(s.st_atime, s.st_atime_nsec),
        mtime: ts(s.st_mtime, s.st_mtime_nsec),
        ctime: ts(s.st_ctime, s.st_ctime_nsec),
    }
}

fn stat_fd(fd: BorrowedFd<'_>) -> Result<Stat, Errno> {
    let s = rfs::statat(fd, "", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(convert_stat(&s))
}

fn dirent_type(ft: rfs::FileType) -> u8 {
    match ft {
        rfs::FileType::RegularFile => libc::DT_REG,
        rfs::FileType::Directory => libc::DT_DIR,
        rfs::FileType::Symlink => libc::DT_LNK,
        rfs::FileType::Fifo => libc::DT_FIFO,
        rfs::FileType::Socket => libc::DT_SOCK,
        rfs::FileType::CharacterDevice => libc::DT_CHR,
        rfs::FileType::BlockDevice => libc::DT_BLK,
        _ => libc::DT_UNKNOWN,
    }
}

fn timestamp(t: &Timespec, apply: bool) -> Result<rfs::Timespec, Errno> {
    if !apply {
        return Ok(rfs::Timespec {
            tv_sec: 0,
            tv_nsec: rfs::UTIME_OMIT,
        });
    }
    if t.nsec >= 1_000_000_000 && t.nsec != UTIME_NOW && t.nsec != UTIME_OMIT {
        return Err(Errno::EINVAL);
    }
    Ok(rfs::Timespec {
        tv_sec: t.sec,
        tv_nsec: i64::from(t.nsec),
    })
}

/// `open(2)` flags `Open` accepts besides the access mode.
const OPEN_FLAGS: u32 = (libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_DIRECT
    | libc::O_NOATIME
    | libc::O_LARGEFILE
    | libc::O_CLOEXEC) as u32;

fn open_flags(flags: u32, extra_ok: u32) -> Result<(OFlags, bool), Errno> {
    if flags & !(OPEN_FLAGS | extra_ok | libc::O_ACCMODE as u32) != 0 {
        return Err(Errno::EINVAL);
    }
    let acc = flags & libc::O_ACCMODE as u32;
    if acc == libc::O_ACCMODE as u32 {
        return Err(Errno::EINVAL);
    }
    let writes = acc != libc::O_RDONLY as u32 || flags & libc::O_TRUNC as u32 != 0;
    let o = OFlags::from_bits_retain(flags & !(extra_ok)) | OFlags::CLOEXEC | OFlags::NOCTTY;
    Ok((o, writes))
}

impl Server {
    /// Opens the mount roots and `/proc/self/fd`. Call this before confining the process:
    /// the FDs stay valid after `pivot_root`. Sets the process umask to 0.
    pub fn new(mounts: Vec<MountConfig>) -> Result<Server, GoferError> {
        let proc_self_fd = rfs::open(
            "/proc/self/fd",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(GoferError::ProcFd)?;
        let mut roots = Vec::with_capacity(mounts.len());
        for m in mounts {
            if roots.iter().any(|r: &Mount| r.name == m.name.as_bytes()) {
                return Err(GoferError::DuplicateMount(m.name));
            }
            let open_err = |source| GoferError::OpenRoot {
                path: m.path.clone(),
                source,
            };
            let root = rfs::open(&m.path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .map_err(open_err)?;
            let kind = rfs::fstat(&root).map_err(open_err)?.st_mode & libc::S_IFMT;
            let is_dir = match kind {
                libc::S_IFDIR => true,
                libc::S_IFREG => false,
                _ => return Err(GoferError::RootType(m.path)),
            };
            roots.push(Mount {
                name: m.name.into_bytes(),
                root,
                read_only: m.read_only,
                is_dir,
            });
        }
        rustix::process::umask(Mode::empty());
        Ok(Server {
            mounts: roots,
            nodes: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            proc_self_fd,
            have_openat2: AtomicBool::new(true),
            max_handles: DEFAULT_MAX_HANDLES,
        })
    }

    /// Sets the most handles a client may hold at once (beyond it: `EMFILE`).
    pub fn with_max_handles(mut self, max: usize) -> Server {
        self.max_handles = max;
        self
    }

    /// The served trees, for the Landlock ruleset.
    pub fn served_trees(&self) -> Vec<ServedTree<'_>> {
        self.mounts
            .iter()
            .map(|m| ServedTree {
                fd: m.root.as_fd(),
                read_only: m.read_only,
                is_dir: m.is_dir,
            })
            .collect()
    }

    /// The number of handles currently open.
    pub fn handle_count(&self) -> usize {
        lock(&self.nodes).len()
    }

    /// Serves one channel until the client closes it.
    pub fn serve(&self, sock: OwnedFd) -> Result<(), GoferError> {
        let mut buf = channel::recv_buffer();
        loop {
            let (reply, fd) = match channel::recv(sock.as_fd(), &mut buf) {
                Ok((msg, _client_fd)) => self.handle_message(msg),
                Err(ChannelError::Closed) => return Ok(()),
                // An oversized datagram: answer, and keep serving (datagrams keep framing).
                Err(ChannelError::Truncated) => (error_reply(Errno::EMSGSIZE), None),
                Err(e) => return Err(GoferError::Channel(e)),
            };
            match channel::send(sock.as_fd(), &reply, channel::borrow(&fd)) {
                Ok(()) => {}
                Err(ChannelError::Closed) => return Ok(()),
                Err(e) => return Err(GoferError::Channel(e)),
            }
        }
    }

    /// Serves each channel on its own thread.
    pub fn spawn(self: &Arc<Self>, socks: Vec<OwnedFd>) -> Vec<JoinHandle<Result<(), GoferError>>> {
        socks
            .into_iter()
            .map(|sock| {
                let server = Arc::clone(self);
                std::thread::spawn(move || server.serve(sock))
            })
            .collect()
    }

    /// Handles one encoded request and returns the encoded reply and the FD to attach.
    /// Never panics, whatever `msg` holds.
    pub fn handle_message(&self, msg: &[u8]) -> (Vec<u8>, Option<OwnedFd>) {
        let result = match Request::decode(msg) {
            Ok(req) => self.handle(req),
            Err(e) => {
                log::debug!("gofer: bad request: {e}");
                Err(Errno::EINVAL)
            }
        };
        match result {
            Ok((resp, fd)) => match resp.encode() {
                Ok(bytes) => (bytes, fd),
                Err(_) => (error_reply(Errno::E2BIG), None),
            },
            Err(errno) => (error_reply(errno), None),
        }
    }

    /// Handles one decoded request.
    pub fn handle(&self, req: Request) -> Result<Reply, Errno> {
        let node = |h: Handle| self.node(h).map(|n| (Response::Ok {}, n));
        match req {
            Request::Attach { mount } => self.attach(&mount),
            Request::Walk { dir, name } => self.walk(dir, &name),
            Request::Stat { node: h } => {
                let (_, n) = node(h)?;
                Ok((
                    Response::Stat {
                        stat: stat_fd(n.fd.as_fd())?,
                    },
                    None,
                ))
            }
            Request::SetAttr { node: h, attr } => self.set_attr(h, &attr),
            Request::Open { node: h, flags } => self.open(h, flags),
            Request::Create {
                dir,
                name,
                flags,
                mode,
                uid,
                gid,
            } => self.create(dir, &name, flags, mode, uid, gid),
            Request::Mkdir {
                dir,
                name,
                mode,
                uid,
                gid,
            } => self.make(dir, &name, uid, gid, |d, n| {
                rfs::mkdirat(d, n, Mode::from_raw_mode(mode & 0o7777))
            }),
            Request::Mknod {
                dir,
                name,
                mode,
                rdev,
                uid,
                gid,
            } => {
                let ftype = match mode & libc::S_IFMT {
                    0 | libc::S_IFREG => libc::S_IFREG,
                    t @ (libc::S_IFIFO | libc::S_IFSOCK) => t,
                    libc::S_IFCHR if rdev == 0 => libc::S_IFCHR,
                    libc::S_IFCHR | libc::S_IFBLK => return Err(Errno::EPERM),
                    _ => return Err(Errno::EINVAL),
                };
                self.make(dir, &name, uid, gid, |d, n| {
                    rfs::mknodat(
                        d,
                        n,
                        rfs::FileType::from_raw_mode(ftype),
                        Mode::from_raw_mode(mode & 0o7777),
                        rdev,
                    )
                })
            }
            Request::Symlink {
                dir,
                name,
                target,
                uid,
                gid,
            } => {
                let t = &target.0;
                if t.is_empty() {
                    return Err(Errno::ENOENT);
                }
                if t.len() > SYMLINK_MAX {
                    return Err(Errno::ENAMETOOLONG);
                }
                if t.contains(&0) {
                    return Err(Errno::EINVAL);
                }
                self.make(dir, &name, uid, gid, |d, n| {
                    rfs::symlinkat(t.as_slice(), d, n)
                })
            }
            Request::Link { dir, name, target } => {
                let t = self.node(target)?;
                if t.is_dir() {
                    return Err(Errno::EPERM);
                }
                let proc_fd = &self.proc_self_fd;
                self.make(dir, &name, NO_ID, NO_ID, |d, n| {
                    rfs::linkat(
                        proc_fd,
                        DecInt::from_fd(&t.fd),
                        d,
                        n,
                        AtFlags::SYMLINK_FOLLOW,
                    )
                })
            }
            Request::Unlink { dir, name, flags } => {
                if flags & !(libc::AT_REMOVEDIR as u32) != 0 {
                    return Err(Errno::EINVAL);
                }
                let d = self.dir(dir)?;
                let name = check_name(&name)?;
                d.writable()?;
                rfs::unlinkat(&d.fd, name, AtFlags::from_bits_retain(flags))?;
                Ok((Response::Ok {}, None))
            }
            Request::Rename {
                old_dir,
                old_name,
                new_dir,
                new_name,
                flags,
            } => {
                let allowed =
                    libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
                if flags & !allowed != 0 {
                    return Err(Errno::EINVAL);
                }
                let od = self.dir(old_dir)?;
                let nd = self.dir(new_dir)?;
                let on = check_name(&old_name)?;
                let nn = check_name(&new_name)?;
                od.writable()?;
                nd.writable()?;
                rfs::renameat_with(
                    &od.fd,
                    on,
                    &nd.fd,
                    nn,
                    rfs::RenameFlags::from_bits_retain(flags),
                )?;
                Ok((Response::Ok {}, None))
            }
            Request::Readlink { node: h } => {
                let (_, n) = node(h)?;
                if n.ftype != libc::S_IFLNK {
                    return Err(Errno::EINVAL);
                }
                let target = rfs::readlinkat(&n.fd, "", Vec::new())?;
                Ok((
                    Response::Target {
                        target: Bytes(target.into_bytes()),
                    },
                    None,
                ))
            }
            Request::Readdir {
                dir,
                cookie,
                max_bytes,
            } => self.readdir(dir, cookie, max_bytes),
            Request::ReaddirPlus {
                dir,
                cookie,
                max_bytes,
            } => self.readdir_plus(dir, cookie, max_bytes),
            Request::StatFs { node: h } => {
                let (_, n) = node(h)?;
                let s = rfs::fstatfs(&n.fd)?;
                let v = rfs::fstatvfs(&n.fd)?;
                let mut flags = v.f_flag.bits();
                if n.read_only {
                    flags |= rfs::StatVfsMountFlags::RDONLY.bits();
                }
                let statfs = StatFs {
                    fs_type: to_u64(s.f_type),
                    bsize: to_u64(s.f_bsize),
                    blocks: s.f_blocks,
                    bfree: s.f_bfree,
                    bavail: s.f_bavail,
                    files: s.f_files,
                    ffree: s.f_ffree,
                    fsid: v.f_fsid,
                    namelen: to_u64(s.f_namelen),
                    frsize: to_u64(s.f_frsize),
                    flags,
                };
                Ok((Response::StatFs { statfs }, None))
            }
            Request::Fsync { node: h, datasync } => {
                let (_, n) = node(h)?;
                let fd = match n.ftype {
                    libc::S_IFDIR => self.reopen(&n, OFlags::RDONLY | OFlags::DIRECTORY)?,
                    libc::S_IFREG => self.reopen(&n, OFlags::RDONLY)?,
                    _ => return Err(Errno::EINVAL),
                };
                if datasync {
                    rfs::fdatasync(&fd)?;
                } else {
                    rfs::fsync(&fd)?;
                }
                Ok((Response::Ok {}, None))
            }
            Request::Fallocate {
                node: h,
                mode,
                offset,
                len,
            } => {
                let (_, n) = node(h)?;
                n.writable()?;
                match n.ftype {
                    libc::S_IFREG => {}
                    libc::S_IFDIR => return Err(Errno::EISDIR),
                    _ => return Err(Errno::ENODEV),
                }
                let fd = self.reopen(&n, OFlags::WRONLY)?;
                rfs::fallocate(
                    &fd,
                    rfs::FallocateFlags::from_bits_retain(mode),
                    offset,
                    len,
                )?;
                Ok((Response::Ok {}, None))
            }
            Request::GetXattr {
                node: h,
                name,
                size,
            } => {
                let (_, n) = node(h)?;
                let name = check_xattr_name(&name)?;
                let Some(fd) = self.xattr_fd(&n)? else {
                    return Err(Errno::ENODATA);
                };
                xattr_reply(size, |buf| match buf {
                    None => rfs::fgetxattr_query(&fd, name),
                    Some(buf) => rfs::fgetxattr(&fd, name, buf),
                })
            }
            Request::ListXattr { node: h, size } => {
                let (_, n) = node(h)?;
                let Some(fd) = self.xattr_fd(&n)? else {
                    return Ok((
                        Response::Xattr {
                            len: 0,
                            data: Bytes::default(),
                        },
                        None,
                    ));
                };
                xattr_reply(size, |buf| match buf {
                    None => rfs::flistxattr_query(&fd),
                    Some(buf) => rfs::flistxattr(&fd, buf),
                })
            }
            Request::SetXattr {
                node: h,
                name,
                value,
                flags,
            } => {
                let (_, n) = node(h)?;
                let name = check_xattr_name(&name)?;
                if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) as u32 != 0 {
                    return Err(Errno::EINVAL);
                }
                n.writable()?;
                let Some(fd) = self.xattr_fd(&n)? else {
                    return Err(Errno::EPERM);
                };
                rfs::fsetxattr(
                    &fd,
                    name,
                    &value.0,
                    rfs::XattrFlags::from_bits_retain(flags),
                )?;
                Ok((Response::Ok {}, None))
            }
            Request::RemoveXattr { node: h, name } => {
                let (_, n) = node(h)?;
                let name = check_xattr_name(&name)?;
                n.writable()?;
                let Some(fd) = self.xattr_fd(&n)? else {
                    return Err(Errno::EPERM);
                };
                rfs::fremovexattr(&fd, name)?;
                Ok((Response::Ok {}, None))
            }
            Request::Close { handles } => {
                let mut nodes = lock(&self.nodes);
                let mut missing = false;
                for h in handles {
                    missing |= nodes.remove(&h.0).is_none();
                }
                if missing {
                    Err(Errno::EBADF)
                } else {
                    Ok((Response::Ok {}, None))
                }
            }
        }
    }

    fn node(&self, h: Handle) -> Result<Arc<Node>, Errno> {
        lock(&self.nodes).get(&h.0).cloned().ok_or(Errno::EBADF)
    }

    fn dir(&self, h: Handle) -> Result<Arc<Node>, Errno> {
        let n = self.node(h)?;
        if n.is_dir() {
            Ok(n)
        } else {
            Err(Errno::ENOTDIR)
        }
    }

    fn insert(&self, fd: OwnedFd, stat: &Stat, read_only: bool) -> Result<Handle, Errno> {
        let node = Node {
            fd,
            ftype: stat.file_type(),
            read_only,
            dir_stream: Mutex::new(None),
        };
        let mut nodes = lock(&self.nodes);
        if nodes.len() >= self.max_handles {
            return Err(Errno::EMFILE);
        }
        let h = self.next_handle.fetch_add(1, Ordering::Relaxed);
        nodes.insert(h, Arc::new(node));
        Ok(Handle(h))
    }

    /// Opens one checked component of `dir` as an `O_PATH` FD, never following a symlink.
    fn open_component(&self, dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        if self.have_openat2.load(Ordering::Relaxed) {
            let resolve =
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rfs::openat2(dir, name, flags, Mode::empty(), resolve) {
                Err(RErrno::NOSYS) => self.have_openat2.store(false, Ordering::Relaxed),
                other => return Ok(other?),
            }
        }
        Ok(rfs::openat(dir, name, flags, Mode::empty())?)
    }

    /// Opens the node itself again, with `flags`, through `/proc/self/fd/N`: the magic
    /// link names the inode the handle holds, so no path is resolved.
    fn reopen(&self, n: &Node, flags: OFlags) -> Result<OwnedFd, Errno> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
        Ok(rfs::openat(
            &self.proc_self_fd,
            DecInt::from_fd(&n.fd),
            flags,
            Mode::empty(),
        )?)
    }

    fn xattr_fd(&self, n: &Node) -> Result<Option<OwnedFd>, Errno> {
        let flags = match n.ftype {
            libc::S_IFREG => OFlags::RDONLY,
            libc::S_IFDIR => OFlags::RDONLY | OFlags::DIRECTORY,
            libc::S_IFIFO => OFlags::RDONLY | OFlags::NONBLOCK,
            _ => return Ok(None),
        };
        self.reopen(n, flags).map(Some)
    }

    fn attach(&self, name: &Name) -> Result<Reply, Errno> {
        let m = self
            .mounts
            .iter()
            .find(|m| m.name == name.as_bytes())
            .ok_or(Errno::ENOENT)?;
        let fd = m.root.try_clone()?;
        let stat = stat_fd(fd.as_fd())?;
        let handle = self.insert(fd, &stat, m.read_only)?;
        Ok((Response::Node { handle, stat }, None))
    }

    fn walk(&self, dir: Handle, name: &Name) -> Result<Reply, Errno> {
        let d = self.dir(dir)?;
        let name = check_name(name)?;
        let fd = self.open_component(d.fd.as_fd(), name)?;
        let stat = stat_fd(fd.as_fd())?;
        let handle = self.insert(fd, &stat, d.read_only)?;
        Ok((Response::Node { handle, stat }, None))
    }

    /// Creates `dir/name` with `mk`, walks to it, and gives it to `uid`/`gid`; removes it
    /// again if that fails.
    fn make(
        &self,
        dir: Handle,
        name: &Name,
        uid: u32,
        gid: u32,
        mk: impl FnOnce(BorrowedFd<'_>, &[u8]) -> rustix::io::Result<()>,
    ) -> Result<Reply, Errno> {
        let d = self.dir(dir)?;
        let name = check_name(name)?;
        d.writable()?;
        mk(d.fd.as_fd(), name)?;
        let finish = || -> Result<Reply, Errno> {
            let fd = self.open_component(d.fd.as_fd(), name)?;
            if uid != NO_ID || gid != NO_ID {
                let (u, g) = owner(uid, gid);
                rfs::chownat(
                    &fd,
                    "",
                    u,
                    g,
                    AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            let stat = stat_fd(fd.as_fd())?;
            let handle = self.insert(fd, &stat, d.read_only)?;
            Ok((Response::Node { handle, stat }, None))
        };
        finish().inspect_err(|_| {
            let is_dir = rfs::statat(&d.fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
            let flags = if is_dir {
                AtFlags::REMOVEDIR
            } else {
                AtFlags::empty()
            };
            let _ = rfs::unlinkat(&d.fd, name, flags);
        })
    }

    fn create(
        &self,
        dir: Handle,
        name: &Name,
        flags: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Reply, Errno> {
        let d = self.dir(dir)?;
        let name = check_name(name)?;
        let (oflags, _) = open_flags(flags, (libc::O_CREAT | libc::O_EXCL) as u32)?;
        d.writable()?;
        let oflags = oflags | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW;
        let file = rfs::openat(&d.fd, name, oflags, Mode::from_raw_mode(mode & 0o7777))?;
        let finish = || -> Result<Reply, Errno> {
            if uid != NO_ID || gid != NO_ID {
                let (u, g) = owner(uid, gid);
                rfs::fchown(&file, u, g)?;
            }
            let path_fd = rfs::openat(
                &self.proc_self_fd,
                DecInt::from_fd(&file),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let stat = convert_stat(&rfs::fstat(&file)?);
            let handle = self.insert(path_fd, &stat, d.read_only)?;
            Ok((Response::Created { handle, stat }, None))
        };
        match finish() {
            Ok((resp, _)) => Ok((resp, Some(file))),
            Err(e) => {
                let _ = rfs::unlinkat(&d.fd, name, AtFlags::empty());
                Err(e)
            }
        }
    }

    fn open(&self, h: Handle, flags: u32) -> Result<Reply, Errno> {
        let n = self.node(h)?;
        let (oflags, writes) = open_flags(flags, 0)?;
        let fd = match n.ftype {
            libc::S_IFREG => {
                if writes {
                    n.writable()?;
                }
                self.reopen(&n, oflags)?
            }
            libc::S_IFDIR => {
                if writes {
                    return Err(Errno::EISDIR);
                }
                self.reopen(&n, oflags | OFlags::DIRECTORY)?
            }
            libc::S_IFLNK => return Err(Errno::ELOOP),
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno::EACCES),
            _ => return Err(Errno::ENXIO),
        };
        Ok((Response::Opened {}, Some(fd)))
    }

    fn set_attr(&self, h: Handle, a: &SetAttr) -> Result<Reply, Errno> {
        let n = self.node(h)?;
        if !SetAttrMask::all().contains(a.mask) {
            return Err(Errno::EINVAL);
        }
        n.writable()?;
        let times = (
            timestamp(&a.atime, a.mask.contains(SetAttrMask::ATIME))?,
            timestamp(&a.mtime, a.mask.contains(SetAttrMask::MTIME))?,
        );
        if a.mask.intersects(SetAttrMask::UID | SetAttrMask::GID) {
            let uid = if a.mask.contains(SetAttrMask::UID) {
                a.uid
            } else {
                NO_ID
            };
            let gid = if a.mask.contains(SetAttrMask::GID) {
                a.gid
            } else {
                NO_ID
            };
            let (u, g) = owner(uid, gid);
            rfs::chownat(
                &n.fd,
                "",
                u,
                g,
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        if a.mask.contains(SetAttrMask::MODE) {
            if n.ftype == libc::S_IFLNK {
                return Err(Errno::EOPNOTSUPP);
            }
            let mode = Mode::from_raw_mode(a.mode & 0o7777);
            rfs::chmodat(
                &self.proc_self_fd,
                DecInt::from_fd(&n.fd),
                mode,
                AtFlags::empty(),
            )?;
        }
        if a.mask.contains(SetAttrMask::SIZE) {
            match n.ftype {
                libc::S_IFREG => {}
                libc::S_IFDIR => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            let fd = self.reopen(&n, OFlags::WRONLY)?;
            rfs::ftruncate(&fd, a.size)?;
        }
        if a.mask.intersects(SetAttrMask::ATIME | SetAttrMask::MTIME) {
            let t = rfs::Timestamps {
                last_access: times.0,
                last_modification: times.1,
            };
            rfs::utimensat(
                &n.fd,
                "",
                &t,
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
            )?;
        }
        Ok((
            Response::Stat {
                stat: stat_fd(n.fd.as_fd())?,
            },
            None,
        ))
    }

    /// Runs `list` over the directory's stream (opened on first use), positioned at
    /// `cookie`. The stream's lock is held throughout, so two listings do not interleave.
    fn at_cookie<T>(
        &self,
        d: &Node,
        cookie: u64,
        list: impl FnOnce(&OwnedFd) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let mut stream = lock(&d.dir_stream);
        if stream.is_none() {
            *stream = Some(self.reopen(d, OFlags::RDONLY | OFlags::DIRECTORY)?);
        }
        let Some(fd) = stream.as_ref() else {
            return Err(Errno::EBADF);
        };
        rfs::seek(fd, rfs::SeekFrom::Start(cookie))?;
        list(fd)
    }

    fn readdir(&self, dir: Handle, cookie: u64, max_bytes: u32) -> Result<Reply, Errno> {
        let d = self.dir(dir)?;
        // Header, and the list's count.
        let limit = MAX_MESSAGE_SIZE - HEADER_SIZE - 4;
        let budget = usize::try_from(max_bytes).unwrap_or(usize::MAX).min(limit);
        self.at_cookie(&d, cookie, |fd| {
            let (entries, _) = list_entries(fd, budget, dirent_size, |entry, name| {
                Ok(Some(Dirent {
                    ino: entry.ino(),
                    next_cookie: entry.next_entry_cookie(),
                    kind: dirent_type(entry.file_type()),
                    name: Name(name.to_vec()),
                }))
            })?;
            Ok((Response::Dirents { entries }, None))
        })
    }

    fn readdir_plus(&self, dir: Handle, cookie: u64, max_bytes: u32) -> Result<Reply, Errno> {
        let d = self.dir(dir)?;
        // Header, the list's count, and `end`.
        let limit = MAX_MESSAGE_SIZE - HEADER_SIZE - 4 - 1;
        let budget = usize::try_from(max_bytes).unwrap_or(usize::MAX).min(limit);
        self.at_cookie(&d, cookie, |fd| {
            let (entries, end) = list_entries(fd, budget, dirent_plus_size, |entry, name| {
                // The name is one component the kernel just listed from this directory
                // (no `/`, not `.` or `..`), and the final component is not followed, so
                // the stat names a node in this directory, as a walk would. A listing
                // triggers no automount on the host.
                let flags = AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT;
                let stat = match rfs::statat(&d.fd, entry.file_name(), flags) {
                    Ok(st) => convert_stat(&st),
                    // Removed since it was listed: as if the listing had not seen it.
                    Err(RErrno::NOENT) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                Ok(Some(DirentPlus {
                    next_cookie: entry.next_entry_cookie(),
                    stat,
                    name: Name(name.to_vec()),
                }))
            })?;
            Ok((Response::DirentsPlus { entries, end }, None))
        })
    }
}

/// Lists the directory stream `fd` from where it stands, leaving out `.` and `..`: `item`
/// makes each entry's part of the reply (or `None` to leave the entry out), `size` says
/// how many bytes an entry whose name has that length takes, and the list stops before
/// `budget` bytes. Returns the items and whether the listing reached the end of the
/// directory; `EINVAL` if not even the first entry fits.
fn list_entries<T>(
    fd: &OwnedFd,
    budget: usize,
    size: fn(usize) -> usize,
    mut item: impl FnMut(&rfs::RawDirEntry<'_>, &[u8]) -> Result<Option<T>, Errno>,
) -> Result<(Vec<T>, bool), Errno> {
    let mut space = vec![MaybeUninit::<u8>::uninit(); 16 * 1024];
    let mut raw = rfs::RawDir::new(fd, &mut space);
    let mut items = Vec::new();
    let mut used = 0usize;
    while let Some(entry) = raw.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let size = size(name.len());
        if used + size > budget {
            if items.is_empty() {
                return Err(Errno::EINVAL);
            }
            return Ok((items, false));
        }
        if let Some(it) = item(&entry, name)? {
            used += size;
            items.push(it);
        }
    }
    Ok((items, true))
}

fn error_reply(errno: Errno) -> Vec<u8> {
    // An error reply is 12 bytes and always encodes.
    Response::Error { errno: errno.raw() }
        .encode()
        .unwrap_or_default()
}

/// Answers a getxattr/listxattr-style request: `size` 0 queries the length.
fn xattr_reply(
    size: u32,
    mut call: impl FnMut(Option<&mut [u8]>) -> rustix::io::Result<usize>,
) -> Result<Reply, Errno> {
    let to_len = |n: usize| u32::try_from(n).map_err(|_| Errno::E2BIG);
    if size == 0 {
        let len = call(None)?;
        return Ok((
            Response::Xattr {
                len: to_len(len)?,
                data: Bytes::default(),
            },
            None,
        ));
    }
    let want = usize::try_from(size).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; want.min(XATTR_VALUE_MAX)];
    match call(Some(&mut buf)) {
        Ok(n) => {
            buf.truncate(n);
            Ok((
                Response::Xattr {
                    len: to_len(n)?,
                    data: Bytes(buf),
                },
                None,
            ))
        }
        // Linux would have returned it, but it does not fit in a message.
        Err(RErrno::RANGE) if want > XATTR_VALUE_MAX => Err(Errno::E2BIG),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_a_directory_are_refused() {
        assert_eq!(check_name(&Name::from("")), Err(Errno::ENOENT));
        assert_eq!(check_name(&Name::from(".")), Err(Errno::EINVAL));
        assert_eq!(check_name(&Name::from("..")), Err(Errno::EINVAL));
        assert_eq!(check_name(&Name::from("a/b")), Err(Errno::EINVAL));
        assert_eq!(check_name(&Name::from(&b"a\0b"[..])), Err(Errno::EINVAL));
        assert_eq!(check_name(&Name(vec![b'x'; 256])), Err(Errno::ENAMETOOLONG));
        assert_eq!(check_name(&Name::from("...")), Ok(&b"..."[..]));
    }
}
