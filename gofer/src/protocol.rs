//! The Gofer protocol: the messages the Sentry (client) and the Gofer (server) exchange.
//!
//! In the manner of gVisor's LISAFS the protocol is FD-based: the client holds *handles*
//! (`Handle`, a `u64`) to nodes it has walked to, one path component at a time, starting
//! from a handle that `Attach` returns for a mount root. `Open` and `Create` donate a host
//! FD for the node (regular files and directories), so data I/O and `mmap` need no round
//! trip; everything else (metadata, namespace changes, xattrs) is a message.
//!
//! # Encoding
//! Every message is one `SOCK_SEQPACKET` datagram:
//!
//! ```text
//! offset 0  u32  length of the whole message, header included
//!        4  u16  kind (Request or Response variant, see the tables below)
//!        6  u16  flags, reserved: must be 0
//!        8  ...  the variant's fields, in declaration order
//! ```
//!
//! Integers are little-endian and fixed width; `Name` is a `u16` length and bytes,
//! `Bytes` a `u32` length and bytes, a list a `u32` count and its elements. A message is
//! at most `MAX_MESSAGE_SIZE` bytes, checked on encode and decode on both sides. Decoding
//! is strict (no trailing bytes, no unknown kinds or flags) and never panics. Errors travel
//! as `Response::Error` with a positive Linux errno. A reply that carries an FD (`Opened`,
//! `Created`) has it attached as `SCM_RIGHTS`.

use bitflags::bitflags;

use crate::codec::{wire_enum, wire_struct, Reader, Wire, Writer};
pub use crate::codec::{Bytes, Name, ProtocolError};

/// The largest message, header included, either side sends or accepts.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// The size of the message header.
pub const HEADER_SIZE: usize = 8;

/// The longest path component or xattr name the server accepts (`NAME_MAX`,
/// `XATTR_NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// The longest symlink target the server accepts (`PATH_MAX` minus the NUL).
pub const SYMLINK_MAX: usize = 4095;

/// The largest xattr value that fits in a reply (Linux's own limit is 64 KiB; the last
/// few bytes go to the header, so a value this protocol cannot carry gets `E2BIG`).
pub const XATTR_VALUE_MAX: usize = MAX_MESSAGE_SIZE - 64;

/// An owner or group field meaning "leave unchanged" (as `-1` does for `chown`).
pub const NO_ID: u32 = u32::MAX;

/// A client's reference to a node the server holds open. `0` is never a valid handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Handle(pub u64);

impl Wire for Handle {
    const MIN_SIZE: usize = 8;
    fn put(&self, w: &mut Writer) {
        self.0.put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        Ok(Handle(u64::get(r)?))
    }
}

wire_struct! {
    /// A point in time. `nsec` may hold `UTIME_NOW` or `UTIME_OMIT` in `SetAttr`.
    pub struct Timespec {
        /// Seconds since the epoch.
        pub sec: i64,
        /// Nanoseconds, `0..1_000_000_000` (or a `UTIME_*` value in `SetAttr`).
        pub nsec: u32,
    }
}

/// `UTIME_NOW`, for `Timespec::nsec` in `SetAttr`.
pub const UTIME_NOW: u32 = (1 << 30) - 1;
/// `UTIME_OMIT`, for `Timespec::nsec` in `SetAttr`.
pub const UTIME_OMIT: u32 = (1 << 30) - 2;

wire_struct! {
    /// A node's attributes, as `stat(2)` reports them (never following a symlink).
    pub struct Stat {
        /// Host device of the node.
        pub dev: u64,
        /// Inode number.
        pub ino: u64,
        /// File type and permission bits (`st_mode`).
        pub mode: u32,
        /// Hard link count.
        pub nlink: u64,
        /// Owner.
        pub uid: u32,
        /// Group.
        pub gid: u32,
        /// Device number, for device nodes.
        pub rdev: u64,
        /// Size in bytes.
        pub size: u64,
        /// Preferred I/O block size.
        pub blksize: u32,
        /// 512-byte blocks allocated.
        pub blocks: u64,
        /// Last access.
        pub atime: Timespec,
        /// Last modification.
        pub mtime: Timespec,
        /// Last status change.
        pub ctime: Timespec,
    }
}

impl Stat {
    /// The file type bits of `mode` (`S_IFMT`).
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }

    /// Whether the node is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == libc::S_IFLNK
    }

    /// Whether the node is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == libc::S_IFDIR
    }

    /// Whether the node is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type() == libc::S_IFREG
    }
}

wire_struct! {
    /// A filesystem's attributes, as `statfs(2)` reports them.
    pub struct StatFs {
        /// Filesystem magic (`f_type`).
        pub fs_type: u64,
        /// Block size.
        pub bsize: u64,
        /// Total blocks.
        pub blocks: u64,
        /// Free blocks.
        pub bfree: u64,
        /// Free blocks available to unprivileged users.
        pub bavail: u64,
        /// Total inodes.
        pub files: u64,
        /// Free inodes.
        pub ffree: u64,
        /// Filesystem ID.
        pub fsid: u64,
        /// Maximum name length.
        pub namelen: u64,
        /// Fragment size.
        pub frsize: u64,
        /// Mount flags (`ST_RDONLY` is set for a read-only mount of the server).
        pub flags: u64,
    }
}

wire_struct! {
    /// One directory entry of a `Readdir` reply.
    pub struct Dirent {
        /// Inode number.
        pub ino: u64,
        /// The cookie to pass to `Readdir` to continue after this entry.
        pub next_cookie: u64,
        /// The `DT_*` type.
        pub kind: u8,
        /// The entry's name.
        pub name: Name,
    }
}

wire_struct! {
    /// One entry of a `ReaddirPlus` reply: a name and its attributes, as a walk to it
    /// would report them.
    pub struct DirentPlus {
        /// The cookie to pass to `ReaddirPlus` to continue after this entry.
        pub next_cookie: u64,
        /// The entry's attributes (`lstat`: a symlink's own).
        pub stat: Stat,
        /// The entry's name.
        pub name: Name,
    }
}

bitflags! {
    /// Which fields of a `SetAttr` request to apply.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SetAttrMask: u32 {
        /// Apply `mode` (permission bits only, like `chmod`).
        const MODE = 1 << 0;
        /// Apply `uid`.
        const UID = 1 << 1;
        /// Apply `gid`.
        const GID = 1 << 2;
        /// Apply `size` (like `truncate`).
        const SIZE = 1 << 3;
        /// Apply `atime` (`UTIME_NOW` allowed).
        const ATIME = 1 << 4;
        /// Apply `mtime` (`UTIME_NOW` allowed).
        const MTIME = 1 << 5;
    }
}

impl Wire for SetAttrMask {
    const MIN_SIZE: usize = 4;
    fn put(&self, w: &mut Writer) {
        self.bits().put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        // Unknown bits are kept, so the server can refuse them with EINVAL.
        Ok(SetAttrMask::from_bits_retain(u32::get(r)?))
    }
}

wire_struct! {
    /// The attributes `SetAttr` changes; only the fields named in `mask` are applied,
    /// in the order owner, mode, size, times (so `chown` cannot clear a mode set here).
    pub struct SetAttr {
        /// Which fields apply.
        pub mask: SetAttrMask,
        /// New permission bits (`0o7777` at most).
        pub mode: u32,
        /// New owner (`NO_ID` keeps it).
        pub uid: u32,
        /// New group (`NO_ID` keeps it).
        pub gid: u32,
        /// New size.
        pub size: u64,
        /// New access time.
        pub atime: Timespec,
        /// New modification time.
        pub mtime: Timespec,
    }
}

wire_enum! {
    /// A request from the client (the Sentry) to the server (the Gofer).
    ///
    /// `name` fields are a single path component: never empty, `.`, `..`, and never
    /// containing `/` or NUL. The Sentry resolves paths itself; the server refuses such
    /// names with `EINVAL` (empty: `ENOENT`, over `NAME_MAX`: `ENAMETOOLONG`) so that no
    /// request can leave the node it names.
    pub enum Request {
        /// Returns a handle to the root of the mount called `mount`. Reply: `Node`.
        1 => Attach { mount: Name },
        /// Looks up one component in a directory, never following a symlink. Reply: `Node`.
        2 => Walk { dir: Handle, name: Name },
        /// Reply: `Stat`.
        3 => Stat { node: Handle },
        /// Changes attributes. Reply: `Stat` (the new attributes).
        4 => SetAttr { node: Handle, attr: SetAttr },
        /// Opens the node for I/O with `open(2)` flags (access mode, `O_TRUNC`,
        /// `O_APPEND`, `O_NONBLOCK`, `O_DSYNC`, `O_SYNC`, `O_DIRECT`, `O_NOATIME`,
        /// `O_LARGEFILE`). Regular files and directories only. Reply: `Opened` + FD.
        5 => Open { node: Handle, flags: u32 },
        /// Creates and opens a regular file (`O_CREAT | O_EXCL` semantics), owned by
        /// `uid`/`gid`. Reply: `Created` + FD.
        6 => Create { dir: Handle, name: Name, flags: u32, mode: u32, uid: u32, gid: u32 },
        /// Reply: `Node`.
        7 => Mkdir { dir: Handle, name: Name, mode: u32, uid: u32, gid: u32 },
        /// Creates a regular file, FIFO or socket node (device nodes: `EPERM`, except the
        /// 0:0 character device overlayfs uses as a whiteout). Reply: `Node`.
        8 => Mknod { dir: Handle, name: Name, mode: u32, rdev: u64, uid: u32, gid: u32 },
        /// Reply: `Node`.
        9 => Symlink { dir: Handle, name: Name, target: Bytes, uid: u32, gid: u32 },
        /// Creates a hard link `dir/name` to `target`. Reply: `Node` (the new link).
        10 => Link { dir: Handle, name: Name, target: Handle },
        /// `unlinkat(dir, name, flags)`; `flags` is 0 or `AT_REMOVEDIR`. Reply: `Ok`.
        11 => Unlink { dir: Handle, name: Name, flags: u32 },
        /// `renameat2` with `RENAME_NOREPLACE`, `RENAME_EXCHANGE`, `RENAME_WHITEOUT`.
        /// Reply: `Ok`.
        12 => Rename { old_dir: Handle, old_name: Name, new_dir: Handle, new_name: Name, flags: u32 },
        /// Reply: `Target`.
        13 => Readlink { node: Handle },
        /// Lists entries from `cookie` (0: the start) into at most `max_bytes` of reply.
        /// `.` and `..` are left out (the Sentry supplies them). An empty list means the
        /// end. Reply: `Dirents`.
        14 => Readdir { dir: Handle, cookie: u64, max_bytes: u32 },
        /// Reply: `StatFs`.
        15 => StatFs { node: Handle },
        /// Reply: `Ok`.
        16 => Fsync { node: Handle, datasync: bool },
        /// `fallocate(2)` with its `mode` flags. Reply: `Ok`.
        17 => Fallocate { node: Handle, mode: u32, offset: u64, len: u64 },
        /// `getxattr(2)`: `size` 0 asks for the length only; a value longer than `size`
        /// gives `ERANGE`. Reply: `Xattr`.
        18 => GetXattr { node: Handle, name: Name, size: u32 },
        /// `setxattr(2)`; `flags` is 0, `XATTR_CREATE` or `XATTR_REPLACE`. Reply: `Ok`.
        19 => SetXattr { node: Handle, name: Name, value: Bytes, flags: u32 },
        /// `listxattr(2)`, with `size` as in `GetXattr`. Reply: `Xattr`.
        20 => ListXattr { node: Handle, size: u32 },
        /// Reply: `Ok`.
        21 => RemoveXattr { node: Handle, name: Name },
        /// Releases handles. Every listed handle that exists is closed; if one did not,
        /// the reply is `EBADF`. Reply: `Ok`.
        22 => Close { handles: Vec<Handle> },
        /// Lists entries with their attributes, as NFS's `READDIRPLUS` does: from `cookie`
        /// (0: the start) into at most `max_bytes` of reply, `.` and `..` left out. Each
        /// entry is `lstat`ed relative to the directory (a symlink is never followed); an
        /// entry that vanished before its `lstat` is left out. Reply: `DirentsPlus`.
        23 => ReaddirPlus { dir: Handle, cookie: u64, max_bytes: u32 },
    }
}

wire_enum! {
    /// A reply from the server.
    pub enum Response {
        /// The request failed with a Linux errno (positive).
        0 => Error { errno: i32 },
        /// The request succeeded and returns nothing.
        1 => Ok {},
        /// A handle to a node, and its attributes.
        2 => Node { handle: Handle, stat: Stat },
        /// A node's attributes.
        3 => Stat { stat: Stat },
        /// An FD for the node is attached.
        4 => Opened {},
        /// A new node, its attributes, and an FD for it (attached).
        5 => Created { handle: Handle, stat: Stat },
        /// A symlink's target.
        6 => Target { target: Bytes },
        /// Directory entries; empty at the end of the directory.
        7 => Dirents { entries: Vec<Dirent> },
        /// Filesystem attributes.
        8 => StatFs { statfs: StatFs },
        /// An xattr value or name list: `len` is its length, `data` is empty when the
        /// request's `size` was 0.
        9 => Xattr { len: u32, data: Bytes },
        /// Directory entries with their attributes; `end` is set when the listing reached
        /// the end of the directory, so no further request is needed.
        10 => DirentsPlus { entries: Vec<DirentPlus>, end: bool },
    }
}

impl Response {
    /// Whether this reply carries a donated FD.
    pub fn carries_fd(&self) -> bool {
        matches!(self, Response::Opened {} | Response::Created { .. })
    }
}

fn encode_frame(kind: u16, put_body: impl FnOnce(&mut Writer)) -> Result<Vec<u8>, ProtocolError> {
    let mut w = Writer::new();
    0u32.put(&mut w);
    kind.put(&mut w);
    0u16.put(&mut w);
    put_body(&mut w);
    let len = w.len();
    if len > MAX_MESSAGE_SIZE {
        return Err(ProtocolError::TooLarge(len));
    }
    // Cannot fail: len <= MAX_MESSAGE_SIZE.
    w.patch_u32(
        0,
        u32::try_from(len).map_err(|_| ProtocolError::TooLarge(len))?,
    );
    Ok(w.into_inner())
}

/// Checks the header and returns the kind and a reader over the body.
fn decode_header(buf: &[u8]) -> Result<(u16, Reader<'_>), ProtocolError> {
    if buf.len() > MAX_MESSAGE_SIZE {
        return Err(ProtocolError::TooLarge(buf.len()));
    }
    let mut r = Reader::new(buf);
    let len = u32::get(&mut r)?;
    let kind = u16::get(&mut r)?;
    let flags = u16::get(&mut r)?;
    if usize::try_from(len).ok() != Some(buf.len()) {
        return Err(ProtocolError::LengthMismatch {
            header: len,
            actual: buf.len(),
        });
    }
    if flags != 0 {
        return Err(ProtocolError::UnknownFlags(flags));
    }
    Ok((kind, r))
}

impl Request {
    /// Encodes the request as one message.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        encode_frame(self.kind(), |w| self.put_body(w))
    }

    /// Decodes one message. Never panics, whatever `buf` holds.
    pub fn decode(buf: &[u8]) -> Result<Request, ProtocolError> {
        let (kind, mut r) = decode_header(buf)?;
        let req = Request::get_body(kind, &mut r)?;
        r.finish()?;
        Ok(req)
    }
}

impl Response {
    /// Encodes the reply as one message.
    pub fn encode(&self) -> Result<Vec<u8>, ProtocolError> {
        encode_frame(self.kind(), |w| self.put_body(w))
    }

    /// Decodes one message. Never panics, whatever `buf` holds.
    pub fn decode(buf: &[u8]) -> Result<Response, ProtocolError> {
        let (kind, mut r) = decode_header(buf)?;
        let resp = Response::get_body(kind, &mut r)?;
        r.finish()?;
        Ok(resp)
    }
}

/// The encoded size of a `Dirent` (for budgeting `Readdir` replies).
pub fn dirent_size(name_len: usize) -> usize {
    8 + 8 + 1 + 2 + name_len
}

/// The encoded size of a `DirentPlus` (for budgeting `ReaddirPlus` replies).
pub fn dirent_plus_size(name_len: usize) -> usize {
    8 + <Stat as Wire>::MIN_SIZE + 2 + name_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let reqs = [
            Request::Attach {
                mount: Name::from("/"),
            },
            Request::Walk {
                dir: Handle(7),
                name: Name::from("etc"),
            },
            Request::SetAttr {
                node: Handle(1),
                attr: SetAttr {
                    mask: SetAttrMask::MODE | SetAttrMask::ATIME,
                    mode: 0o644,
                    atime: Timespec {
                        sec: -1,
                        nsec: UTIME_NOW,
                    },
                    ..SetAttr::default()
                },
            },
            Request::Rename {
                old_dir: Handle(1),
                old_name: Name::from("a"),
                new_dir: Handle(2),
                new_name: Name::from("b"),
                flags: 1,
            },
            Request::Close {
                handles: vec![Handle(1), Handle(2)],
            },
            Request::SetXattr {
                node: Handle(3),
                name: Name::from("user.x"),
                value: Bytes(vec![0; 100]),
                flags: 0,
            },
            Request::ReaddirPlus {
                dir: Handle(4),
                cookie: u64::MAX,
                max_bytes: 60_000,
            },
        ];
        for req in reqs {
            let bytes = req.encode().unwrap();
            assert_eq!(
                bytes.len(),
                usize::try_from(u32::from_le_bytes(bytes[..4].try_into().unwrap())).unwrap()
            );
            assert_eq!(Request::decode(&bytes).unwrap(), req);
        }
    }

    #[test]
    fn responses_round_trip() {
        let resps = [
            Response::Error {
                errno: libc::ENOENT,
            },
            Response::Ok {},
            Response::Node {
                handle: Handle(9),
                stat: Stat {
                    mode: 0o40755,
                    ..Stat::default()
                },
            },
            Response::Dirents {
                entries: vec![Dirent {
                    ino: 1,
                    next_cookie: 2,
                    kind: 4,
                    name: Name::from("x"),
                }],
            },
            Response::Xattr {
                len: 3,
                data: Bytes(b"abc".to_vec()),
            },
            Response::DirentsPlus {
                entries: vec![
                    DirentPlus {
                        next_cookie: 5,
                        stat: Stat {
                            ino: 42,
                            mode: 0o100644,
                            size: 11,
                            mtime: Timespec {
                                sec: -3,
                                nsec: 999_999_999,
                            },
                            ..Stat::default()
                        },
                        name: Name::from("file"),
                    },
                    DirentPlus {
                        next_cookie: u64::MAX,
                        stat: Stat {
                            mode: 0o120777,
                            ..Stat::default()
                        },
                        name: Name::from("link"),
                    },
                ],
                end: true,
            },
            Response::DirentsPlus {
                entries: Vec::new(),
                end: false,
            },
        ];
        for resp in resps {
            assert_eq!(Response::decode(&resp.encode().unwrap()).unwrap(), resp);
        }
    }

    #[test]
    fn dirent_plus_size_is_its_encoded_size() {
        let entry = DirentPlus {
            next_cookie: 1,
            stat: Stat::default(),
            name: Name::from("seven77"),
        };
        let one = Response::DirentsPlus {
            entries: vec![entry],
            end: false,
        };
        let none = Response::DirentsPlus {
            entries: Vec::new(),
            end: false,
        };
        let grown = one.encode().unwrap().len() - none.encode().unwrap().len();
        assert_eq!(grown, dirent_plus_size(7));
    }

    #[test]
    fn malformed_frames_are_refused() {
        let good = Request::Stat { node: Handle(1) }.encode().unwrap();
        assert_eq!(Request::decode(&good[..3]), Err(ProtocolError::Truncated));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            Request::decode(&long),
            Err(ProtocolError::LengthMismatch { .. })
        ));
        let mut flagged = good.clone();
        flagged[6] = 1;
        assert_eq!(
            Request::decode(&flagged),
            Err(ProtocolError::UnknownFlags(1))
        );
        let mut unknown = good.clone();
        unknown[4] = 200;
        assert_eq!(
            Request::decode(&unknown),
            Err(ProtocolError::UnknownKind(200))
        );
        let mut trailing = good;
        trailing.push(0);
        trailing[0] += 1;
        assert_eq!(
            Request::decode(&trailing),
            Err(ProtocolError::TrailingBytes(1))
        );
        assert!(matches!(
            Request::decode(&vec![0; MAX_MESSAGE_SIZE + 1]),
            Err(ProtocolError::TooLarge(_))
        ));
    }

    #[test]
    fn oversized_messages_are_not_encoded() {
        let req = Request::SetXattr {
            node: Handle(1),
            name: Name::from("user.big"),
            value: Bytes(vec![0; MAX_MESSAGE_SIZE]),
            flags: 0,
        };
        assert!(matches!(req.encode(), Err(ProtocolError::TooLarge(_))));
    }
}
