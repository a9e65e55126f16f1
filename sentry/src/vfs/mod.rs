//! The virtual filesystem: inodes (one trait, implemented by each filesystem), the mount
//! table and path resolution ([`path`]), open file descriptions ([`file`]), and the
//! filesystems a container sees: the in-memory filesystem that is both tmpfs and the
//! overlay over the read-only Gofer root ([`memfs`]), procfs, devfs and pipes.

mod anon;
pub mod bind;
mod cpuinfo;
pub mod dev;
pub mod epoll;
pub mod eventfd;
pub mod exec;
pub mod fasync;
pub mod file;
pub mod gofer;
mod host;
pub mod inotify;
pub mod lock;
pub mod memfd;
pub mod memfs;
pub mod mounts;
pub mod nsfs;
pub mod path;
pub mod pidfd;
pub mod pipe;
pub mod proc;
pub mod signalfd;
pub mod socket;
mod stat;
pub mod sys;
pub mod timerfd;
pub mod tty;

use std::any::Any;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use file::{FileDescription, HostData, InodeFile};
pub use host::HostFile;
pub use path::{FsContext, Path, Vfs};
pub use stat::Stat;

use crate::errno::{Errno, SysResult};
use crate::kernel::{Credentials, FdTable};
use crate::mm::{MemoryManager, MemoryObject};

pub const S_IFMT: u32 = 0o170_000;
pub const S_IFSOCK: u32 = 0o140_000;
pub const S_IFLNK: u32 = 0o120_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFBLK: u32 = 0o060_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFCHR: u32 = 0o020_000;
pub const S_IFIFO: u32 = 0o010_000;
pub const S_ISUID: u32 = 0o4000;
pub const S_ISGID: u32 = 0o2000;
pub const S_ISVTX: u32 = 0o1000;

/// Linux's `NAME_MAX`.
pub const NAME_MAX: usize = 255;

/// Access wanted by a permission check (`MAY_*`).
pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

/// `d_type` values of `getdents64`.
pub const DT_FIFO: u8 = 1;
pub const DT_CHR: u8 = 2;
pub const DT_DIR: u8 = 4;
pub const DT_REG: u8 = 8;
pub const DT_LNK: u8 = 10;

/// The `DT_*` type of a mode.
pub fn dirent_type(mode: u32) -> u8 {
    match mode & S_IFMT {
        S_IFIFO => DT_FIFO,
        S_IFCHR => DT_CHR,
        S_IFDIR => DT_DIR,
        S_IFBLK => 6,
        S_IFREG => DT_REG,
        S_IFLNK => DT_LNK,
        S_IFSOCK => 12,
        _ => 0,
    }
}

/// A time stamp: seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Time {
    pub sec: i64,
    pub nsec: i64,
}

impl Time {
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            nsec: i64::from(d.subsec_nanos()),
        }
    }
}

/// Who is asking: the caller's credentials and what procfs shows of its process.
#[derive(Clone, Default)]
pub struct Cx {
    pub creds: Credentials,
    pub tgid: i32,
    pub tid: i32,
    pub fds: Option<Arc<FdTable>>,
    pub mm: Option<Arc<MemoryManager>>,
    pub fs: Option<Arc<FsContext>>,
    /// The caller's process, for `/proc/self/stat`.
    pub group: Option<Arc<crate::kernel::ThreadGroup>>,
    /// The kernel, for what procfs shows of other processes.
    pub kernel: Option<Arc<crate::kernel::Kernel>>,
}

impl Cx {
    /// What procfs shows for process `tgid`: the caller itself, or another process of the
    /// sandbox as its procfs view has it (`ENOENT` if there is none, or it has exited).
    pub fn for_process(&self, tgid: i32) -> SysResult<Cx> {
        if tgid == self.tgid {
            // The process's own directory shows the process (its main thread), whichever
            // thread asks.
            return Ok(Cx {
                tid: tgid,
                ..self.clone()
            });
        }
        let kernel = self.kernel.as_ref().ok_or(Errno::ENOENT)?;
        let group = kernel.group(tgid).ok_or(Errno::ENOENT)?;
        let Some(view) = group.view() else {
            // A zombie keeps its directory until it is reaped, with nothing left to show
            // but its state.
            if group.state().zombie.is_none() {
                return Err(Errno::ENOENT);
            }
            return Ok(Cx {
                creds: Credentials::default(),
                tgid,
                tid: tgid,
                fds: None,
                mm: None,
                fs: None,
                group: Some(group),
                kernel: self.kernel.clone(),
            });
        };
        Ok(Cx {
            creds: view.creds,
            tgid,
            tid: tgid,
            fds: Some(view.fds),
            mm: Some(view.mm),
            fs: Some(view.fs),
            group: Some(group),
            kernel: self.kernel.clone(),
        })
    }
}

impl Cx {
    /// A root caller with no process (tests, the Sentry itself).
    pub fn root() -> Self {
        Self::default()
    }
}

/// One directory entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub kind: u8,
    pub name: Vec<u8>,
}

/// What a create call makes.
#[derive(Clone, Debug)]
pub enum NewNode {
    /// A regular file, directory, FIFO, socket or device node: the full mode with type.
    Node {
        mode: u32,
        rdev: u64,
    },
    Symlink(Vec<u8>),
}

/// Attribute changes, all optional (`chmod`, `chown`, `truncate`, `utimensat`).
#[derive(Clone, Debug, Default)]
pub struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Time>,
    pub mtime: Option<Time>,
}

/// `struct statfs`, as x86-64 Linux lays it out.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, zerocopy::IntoBytes, zerocopy::Immutable)]
pub struct StatFs {
    pub f_type: i64,
    pub f_bsize: i64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_fsid: [i32; 2],
    pub f_namelen: i64,
    pub f_frsize: i64,
    pub f_flags: i64,
    pub f_spare: [i64; 4],
}

const _: () = assert!(std::mem::size_of::<StatFs>() == 120);

pub const TMPFS_MAGIC: i64 = 0x0102_1994;
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
pub const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
pub const PIPEFS_MAGIC: i64 = 0x5049_5045;

/// A file, directory, link or device of some filesystem. Every operation has a default
/// that is Linux's answer for an object that does not support it.
pub trait Inode: Send + Sync {
    fn as_any(&self) -> &dyn Any;

    /// The device number of the filesystem (`st_dev`): inodes with the same one may be
    /// linked and renamed into each other.
    fn dev(&self) -> u64;

    fn ino(&self) -> u64;

    fn stat(&self) -> SysResult<Stat>;

    fn mode(&self) -> u32 {
        self.stat().map_or(0, |s| s.mode)
    }

    fn statfs(&self) -> SysResult<StatFs> {
        Ok(StatFs {
            f_type: TMPFS_MAGIC,
            f_bsize: 4096,
            f_namelen: 255,
            f_frsize: 4096,
            ..StatFs::default()
        })
    }

    /// Whether the filesystem refuses every change (`EROFS`).
    fn read_only(&self) -> bool {
        false
    }

    /// The child called `name` of this directory (never `.` or `..`).
    fn lookup(&self, _cx: &Cx, _name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        Err(Errno::ENOTDIR)
    }

    /// The directory's entries, without `.` and `..`.
    fn readdir(&self, _cx: &Cx) -> SysResult<Vec<DirEntry>> {
        Err(Errno::ENOTDIR)
    }

    /// A symlink's target.
    fn readlink(&self, _cx: &Cx) -> SysResult<Vec<u8>> {
        Err(Errno::EINVAL)
    }

    /// For procfs's magic links (`/proc/self/exe`, `/proc/self/fd/N`): where following
    /// the link leads, whatever its text says.
    fn follow_magic(&self, _cx: &Cx) -> Option<SysResult<Path>> {
        None
    }

    /// Creates `name` in this directory.
    fn create(&self, _cx: &Cx, _name: &[u8], _node: NewNode) -> SysResult<Arc<dyn Inode>> {
        Err(Errno::EPERM)
    }

    /// An unnamed regular file in this directory's filesystem (`O_TMPFILE`); `linkable`
    /// unless `O_EXCL` was given.
    fn create_tmpfile(&self, _cx: &Cx, _mode: u32, _linkable: bool) -> SysResult<Arc<dyn Inode>> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Links `target` as `name` in this directory.
    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> SysResult<()> {
        Err(Errno::EPERM)
    }

    /// Removes `name`; `dir` for `rmdir`.
    fn unlink(&self, _cx: &Cx, _name: &[u8], _dir: bool) -> SysResult<()> {
        Err(Errno::EPERM)
    }

    /// `renameat2` from this directory's `old` to `new_dir`'s `new` (same `dev`).
    fn rename(
        &self,
        _cx: &Cx,
        _old: &[u8],
        _new_dir: &Arc<dyn Inode>,
        _new: &[u8],
        _flags: u32,
    ) -> SysResult<()> {
        Err(Errno::EXDEV)
    }

    fn setattr(&self, _attr: &SetAttr) -> SysResult<()> {
        Err(Errno::EPERM)
    }

    /// Reads file data at `offset` (a device may ignore the offset).
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    /// Writes file data at `offset`.
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    /// Whether reads and writes ignore the offset (character devices).
    fn is_stream(&self) -> bool {
        false
    }

    /// The file's size for `SEEK_END` and `O_APPEND`.
    fn size(&self) -> u64 {
        self.stat()
            .map_or(0, |s| u64::try_from(s.size).unwrap_or(0))
    }

    /// Called before the file is opened for writing (the overlay copies the file up).
    fn prepare_write(&self) -> SysResult<()> {
        Ok(())
    }

    /// The host descriptor holding this file's bytes, when a read may go to it directly
    /// (a Gofer-donated lower file): the syscall layer then reads into application
    /// memory with no copy through a buffer of the Sentry's.
    fn host_data(&self) -> SysResult<Option<Arc<dyn HostData>>> {
        Ok(None)
    }

    /// Something to hold while the file is open, keeping its data at hand (a lower
    /// file's donated descriptor and page cache are let go when no one holds them).
    fn pin(&self) -> SysResult<Option<Arc<dyn Any + Send + Sync>>> {
        Ok(None)
    }

    /// The pages a mapping of the file uses.
    fn memory_object(&self) -> SysResult<Arc<dyn MemoryObject>> {
        Err(Errno::ENODEV)
    }

    /// Opens the inode itself, for files that are not plain data (FIFOs, `/dev/tty`,
    /// procfs snapshots). `None`: the generic [`InodeFile`] serves it.
    fn open(
        &self,
        _cx: &Cx,
        _path: &Path,
        _flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        Ok(None)
    }

    fn fsync(&self) -> SysResult<()> {
        Ok(())
    }

    /// The extended attributes, where the filesystem keeps them (`EOPNOTSUPP` if not).
    fn xattrs(&self) -> Option<&std::sync::Mutex<std::collections::BTreeMap<Vec<u8>, Vec<u8>>>> {
        None
    }

    /// The file's advisory locks; `None` where the filesystem keeps none (`ENOLCK`).
    fn locks(&self) -> Option<&lock::FileLocks> {
        None
    }

    /// A memfd's seals (`F_ADD_SEALS`, `F_GET_SEALS`); `None` for other files.
    fn seals(&self) -> Option<&Arc<memfd::Seals>> {
        None
    }
}

/// Whether `creds` may access an object with `stat`'s mode and owner for `want`
/// (`MAY_*` bits), as Linux's `generic_permission`: the owner, group (the filesystem
/// group or a supplementary one) or other bits for the filesystem user ID, then
/// `CAP_DAC_OVERRIDE` (execute only with some execute bit, or on a directory) and
/// `CAP_DAC_READ_SEARCH` (reading, and searching directories).
pub fn permitted(stat: &Stat, creds: &Credentials, want: u32) -> SysResult<()> {
    use crate::kernel::creds::{CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH};
    let bits = if creds.fsuid == stat.uid {
        (stat.mode >> 6) & 7
    } else if creds.in_group(stat.gid) {
        (stat.mode >> 3) & 7
    } else {
        stat.mode & 7
    };
    if bits & want == want {
        return Ok(());
    }
    let is_dir = stat.mode & S_IFMT == S_IFDIR;
    if is_dir {
        if want & MAY_WRITE == 0 && creds.capable(CAP_DAC_READ_SEARCH) {
            return Ok(());
        }
        if creds.capable(CAP_DAC_OVERRIDE) {
            return Ok(());
        }
        return Err(Errno::EACCES);
    }
    if (want & MAY_EXEC == 0 || stat.mode & 0o111 != 0) && creds.capable(CAP_DAC_OVERRIDE) {
        return Ok(());
    }
    if want == MAY_READ && creds.capable(CAP_DAC_READ_SEARCH) {
        return Ok(());
    }
    Err(Errno::EACCES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(mode: u32, uid: u32, gid: u32) -> Stat {
        Stat {
            mode,
            uid,
            gid,
            ..Stat::default()
        }
    }

    #[test]
    fn permission_bits_and_root_bypass() {
        let user = Credentials::new(1000, 1000);
        let root = Credentials::new(0, 0);
        let f = st(S_IFREG | 0o640, 1000, 50);
        assert!(permitted(&f, &user, MAY_READ | MAY_WRITE).is_ok());
        assert_eq!(permitted(&f, &user, MAY_EXEC), Err(Errno::EACCES));
        let other = st(S_IFREG | 0o604, 1, 1);
        assert!(permitted(&other, &user, MAY_READ).is_ok());
        assert_eq!(permitted(&other, &user, MAY_WRITE), Err(Errno::EACCES));
        assert!(permitted(&st(S_IFREG, 1, 1), &root, MAY_READ | MAY_WRITE).is_ok());
        assert_eq!(
            permitted(&st(S_IFREG | 0o644, 1, 1), &root, MAY_EXEC),
            Err(Errno::EACCES),
            "root needs one execute bit"
        );
        assert!(permitted(&st(S_IFDIR, 1, 1), &root, MAY_EXEC).is_ok());
    }
}
