//! devfs: `null`, `zero`, `full`, `random`, `urandom`, `tty`, `ptmx`, and the `fd`,
//! `stdin`, `stdout`, `stderr` links; `shm` and `pts` are directories to mount on.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{
    Cx, DirEntry, FileDescription, Inode, Path, Stat, Time, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT,
};
use crate::errno::{Errno, SysResult};

static NEXT_DEV: AtomicU64 = AtomicU64::new(0x10);
static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// A device number for a synthetic filesystem.
pub fn new_dev() -> u64 {
    NEXT_DEV.fetch_add(1, Ordering::Relaxed)
}

fn new_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

fn synthetic_stat(dev: u64, ino: u64, mode: u32, rdev: u64, size: i64) -> Stat {
    let t = Time::now();
    Stat {
        dev,
        ino,
        nlink: if mode & S_IFMT == S_IFDIR { 2 } else { 1 },
        mode,
        rdev,
        size,
        blksize: 4096,
        atime: t.sec,
        mtime: t.sec,
        ctime: t.sec,
        ..Stat::default()
    }
}

/// A directory whose children are fixed when it is made.
pub struct StaticDir {
    dev: u64,
    ino: u64,
    mode: u32,
    children: std::sync::Mutex<BTreeMap<Vec<u8>, Arc<dyn Inode>>>,
}

impl StaticDir {
    pub fn new(dev: u64, mode: u32, children: Vec<(&str, Arc<dyn Inode>)>) -> Arc<Self> {
        Arc::new(Self {
            dev,
            ino: new_ino(),
            mode: S_IFDIR | mode,
            children: std::sync::Mutex::new(
                children
                    .into_iter()
                    .map(|(n, i)| (n.as_bytes().to_vec(), i))
                    .collect(),
            ),
        })
    }

    /// Adds a child while the tree is being built.
    pub fn add(&self, name: &str, inode: Arc<dyn Inode>) {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.as_bytes().to_vec(), inode);
    }

    /// Adds an empty directory `name` (a mount point the container's spec names, such
    /// as `/dev/mqueue` or `/sys/fs/cgroup`) unless one is there; returns it.
    pub fn add_mount_point(&self, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let mut children = self.children.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = children.get(name) {
            return Ok(Arc::clone(existing));
        }
        if name.is_empty() || name.len() > super::NAME_MAX || name.contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        let dir = StaticDir::new(self.dev, 0o755, vec![]) as Arc<dyn Inode>;
        children.insert(name.to_vec(), Arc::clone(&dir));
        Ok(dir)
    }
}

impl Inode for StaticDir {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(synthetic_stat(self.dev, self.ino, self.mode, 0, 0))
    }
    fn lookup(&self, _cx: &Cx, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or(Errno::ENOENT)
    }
    fn readdir(&self, _cx: &Cx) -> SysResult<Vec<DirEntry>> {
        Ok(self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(n, i)| DirEntry {
                ino: i.ino(),
                kind: super::dirent_type(i.mode()),
                name: n.clone(),
            })
            .collect())
    }
}

/// A symlink with fixed text.
pub struct StaticLink {
    dev: u64,
    ino: u64,
    target: Vec<u8>,
}

impl StaticLink {
    pub fn new(dev: u64, target: &str) -> Arc<Self> {
        Arc::new(Self {
            dev,
            ino: new_ino(),
            target: target.as_bytes().to_vec(),
        })
    }
}

impl Inode for StaticLink {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn stat(&self) -> SysResult<Stat> {
        let len = i64::try_from(self.target.len()).unwrap_or(0);
        Ok(synthetic_stat(self.dev, self.ino, S_IFLNK | 0o777, 0, len))
    }
    fn readlink(&self, _cx: &Cx) -> SysResult<Vec<u8>> {
        Ok(self.target.clone())
    }
}

/// A read-only file with fixed contents.
pub struct StaticFile {
    dev: u64,
    ino: u64,
    content: Vec<u8>,
}

impl StaticFile {
    pub fn new(dev: u64, content: &str) -> Arc<Self> {
        Arc::new(Self {
            dev,
            ino: new_ino(),
            content: content.as_bytes().to_vec(),
        })
    }
}

impl Inode for StaticFile {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn stat(&self) -> SysResult<Stat> {
        // procfs reports size 0 for its files.
        Ok(synthetic_stat(
            self.dev,
            self.ino,
            super::S_IFREG | 0o444,
            0,
            0,
        ))
    }
    fn size(&self) -> u64 {
        self.content.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.content.len());
        let n = buf.len().min(self.content.len() - start);
        buf[..n].copy_from_slice(&self.content[start..start + n]);
        Ok(n)
    }
    fn open(
        &self,
        _cx: &Cx,
        _path: &Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        if flags & super::file::O_ACCMODE != super::file::O_RDONLY {
            return Err(Errno::EACCES);
        }
        Ok(None)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Null,
    Zero,
    Full,
    Random,
    Tty,
}

/// A character device.
pub struct CharDevice {
    dev: u64,
    ino: u64,
    kind: DeviceKind,
}

impl CharDevice {
    pub fn new(dev: u64, kind: DeviceKind) -> Arc<Self> {
        Arc::new(Self {
            dev,
            ino: new_ino(),
            kind,
        })
    }

    fn rdev(&self) -> u64 {
        let (major, minor) = match self.kind {
            DeviceKind::Null => (1, 3),
            DeviceKind::Zero => (1, 5),
            DeviceKind::Full => (1, 7),
            DeviceKind::Random => (1, 9),
            DeviceKind::Tty => (5, 0),
        };
        (major << 8) | minor
    }
}

impl Inode for CharDevice {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(synthetic_stat(
            self.dev,
            self.ino,
            S_IFCHR | 0o666,
            self.rdev(),
            0,
        ))
    }
    fn is_stream(&self) -> bool {
        true
    }
    fn size(&self) -> u64 {
        0
    }
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        match self.kind {
            DeviceKind::Null => Ok(0),
            DeviceKind::Zero | DeviceKind::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            DeviceKind::Random => {
                crate::random::fill(buf)?;
                Ok(buf.len())
            }
            DeviceKind::Tty => Err(Errno::EIO),
        }
    }
    fn write_at(&self, _offset: u64, buf: &[u8]) -> SysResult<usize> {
        match self.kind {
            DeviceKind::Full => Err(Errno::ENOSPC),
            DeviceKind::Tty => Err(Errno::EIO),
            _ => Ok(buf.len()),
        }
    }
    fn open(
        &self,
        _cx: &Cx,
        _path: &Path,
        _flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        if self.kind == DeviceKind::Tty {
            // The caller's controlling terminal (`ENXIO` without one).
            return super::tty::open_controlling(_cx, _path, _flags).map(Some);
        }
        Ok(None)
    }
    fn memory_object(&self) -> SysResult<Arc<dyn crate::mm::MemoryObject>> {
        // A private mapping of /dev/zero is anonymous memory; `mmap` handles that case.
        Err(Errno::ENODEV)
    }
}

/// Whether `inode` is `/dev/zero` (whose mappings are anonymous memory).
pub fn is_dev_zero(inode: &Arc<dyn Inode>) -> bool {
    inode
        .as_any()
        .downcast_ref::<CharDevice>()
        .is_some_and(|d| d.kind == DeviceKind::Zero)
}

/// A new devfs root with `ptmx`, and the root of the devpts instance `ptmx` opens
/// pairs in (to be mounted at `pts`).
pub fn devfs_with_pts() -> (Arc<StaticDir>, Arc<dyn Inode>) {
    let pts = super::tty::devpts::DevPts::new();
    let root = devfs();
    root.add("ptmx", pts.ptmx(root.dev, new_ino()));
    (root, pts.root())
}

/// A new devfs root.
pub fn devfs() -> Arc<StaticDir> {
    let dev = new_dev();
    let c = |k| CharDevice::new(dev, k) as Arc<dyn Inode>;
    let l = |t| StaticLink::new(dev, t) as Arc<dyn Inode>;
    StaticDir::new(
        dev,
        0o755,
        vec![
            ("null", c(DeviceKind::Null)),
            ("zero", c(DeviceKind::Zero)),
            ("full", c(DeviceKind::Full)),
            ("random", c(DeviceKind::Random)),
            ("urandom", c(DeviceKind::Random)),
            ("tty", c(DeviceKind::Tty)),
            ("fd", l("/proc/self/fd")),
            ("stdin", l("/proc/self/fd/0")),
            ("stdout", l("/proc/self/fd/1")),
            ("stderr", l("/proc/self/fd/2")),
            ("shm", StaticDir::new(dev, 0o1777, vec![])),
            ("pts", StaticDir::new(dev, 0o755, vec![])),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_behave_as_linux() {
        let root = devfs();
        let cx = Cx::root();
        let full = root.lookup(&cx, b"full").unwrap();
        assert_eq!(full.write_at(0, b"x").err(), Some(Errno::ENOSPC));
        let mut buf = [7u8; 4];
        assert_eq!(full.read_at(0, &mut buf).unwrap(), 4);
        assert_eq!(buf, [0; 4]);
        let null = root.lookup(&cx, b"null").unwrap();
        assert_eq!(null.read_at(0, &mut buf).unwrap(), 0);
        assert_eq!(null.write_at(0, b"abc").unwrap(), 3);
        assert_eq!(null.stat().unwrap().rdev, (1 << 8) | 3);
        assert_eq!(root.lookup(&cx, b"nope").err(), Some(Errno::ENOENT));
        assert_eq!(
            root.lookup(&cx, b"stdout").unwrap().readlink(&cx).unwrap(),
            b"/proc/self/fd/1"
        );
    }
}
