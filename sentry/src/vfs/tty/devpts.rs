//! devpts: the filesystem at `/dev/pts` that names each pseudo-terminal's slave
//! (`/dev/pts/N`, character device 136:N) while its master is open, and holds `ptmx`
//! (5:2), whose every open makes a new pair. `/dev/ptmx` is a node of the same
//! instance in devfs.
//!
//! Slaves are made owned by the opener of the master, group `tty` (5), mode 0620, as
//! a container runtime mounts devpts (`gid=5,mode=620,ptmxmode=666`): glibc's
//! `grantpt` has nothing left to do.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use super::{Pty, TtyFile};
use crate::errno::{Errno, SysResult};
use crate::vfs::{
    dirent_type, Cx, DirEntry, FileDescription, Inode, Path, SetAttr, Stat, StatFs, Time, S_IFCHR,
    S_IFDIR,
};

/// The `tty` group.
const TTY_GID: u32 = 5;
/// Linux's default `/proc/sys/kernel/pty/max`.
const PTY_MAX: u32 = 4096;
const UNIX98_PTY_SLAVE_MAJOR: u64 = 136;
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
const ROOT_INO: u64 = 1;
const PTMX_INO: u64 = 2;

/// `makedev` as glibc encodes it.
pub fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// The major and minor numbers of a device number `makedev` made.
pub fn major(dev: u64) -> u32 {
    u32::try_from(((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)).unwrap_or(0)
}

pub fn minor(dev: u64) -> u32 {
    u32::try_from(((dev >> 12) & 0xffff_ff00) | (dev & 0xff)).unwrap_or(0)
}

/// The device number of `/dev/pts/INDEX`.
pub fn slave_rdev(index: u32) -> u64 {
    makedev(UNIX98_PTY_SLAVE_MAJOR, u64::from(index))
}

fn char_stat(dev: u64, ino: u64, mode: u32, rdev: u64, uid: u32, gid: u32) -> Stat {
    let t = Time::now();
    Stat {
        dev,
        ino,
        nlink: 1,
        mode,
        uid,
        gid,
        rdev,
        blksize: 1024,
        atime: t.sec,
        mtime: t.sec,
        ctime: t.sec,
        ..Stat::default()
    }
}

/// One devpts instance.
pub struct DevPts {
    dev: u64,
    me: Weak<DevPts>,
    /// Live pairs by index (an index is free once its pair is gone).
    ptys: Mutex<BTreeMap<u32, Weak<Pty>>>,
    /// The slaves with a name (their master is open).
    names: Mutex<BTreeMap<u32, Arc<SlaveNode>>>,
}

impl DevPts {
    pub fn new() -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            dev: crate::vfs::dev::new_dev(),
            me: me.clone(),
            ptys: Mutex::new(BTreeMap::new()),
            names: Mutex::new(BTreeMap::new()),
        })
    }

    /// The directory to mount at `/dev/pts`.
    pub fn root(self: &Arc<Self>) -> Arc<dyn Inode> {
        Arc::new(Root {
            fs: Arc::clone(self),
        })
    }

    /// A `ptmx` node of this instance in the filesystem `dev` (devfs's `/dev/ptmx`).
    pub fn ptmx(self: &Arc<Self>, dev: u64, ino: u64) -> Arc<dyn Inode> {
        Arc::new(Ptmx {
            fs: Arc::clone(self),
            dev,
            ino,
        })
    }

    /// A new pair at the lowest free index, its slave named and owned by the caller.
    pub fn new_pty(&self, cx: &Cx) -> SysResult<Arc<Pty>> {
        let mut ptys = self.ptys.lock().unwrap_or_else(|e| e.into_inner());
        ptys.retain(|_, p| p.strong_count() > 0);
        let index = (0..PTY_MAX)
            .find(|i| !ptys.contains_key(i))
            .ok_or(Errno::ENOSPC)?;
        let kernel = cx.kernel.as_ref().map(Arc::downgrade).unwrap_or_default();
        let pty = Pty::new(index, kernel, self.me.clone());
        ptys.insert(index, Arc::downgrade(&pty));
        drop(ptys);
        let node = Arc::new(SlaveNode {
            dev: self.dev,
            pty: Arc::clone(&pty),
            owner: Mutex::new((S_IFCHR | 0o620, cx.creds.euid, TTY_GID)),
        });
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(index, node);
        Ok(pty)
    }

    /// The named slave `index`.
    pub fn lookup_index(&self, index: u32) -> Option<Arc<SlaveNode>> {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&index)
            .cloned()
    }

    /// Takes the name of slave `index` away (its master closed).
    pub fn remove(&self, index: u32) {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&index);
    }

    fn open_master(&self, cx: &Cx, path: &Path, flags: i32) -> SysResult<Arc<dyn FileDescription>> {
        let pty = self.new_pty(cx)?;
        Ok(TtyFile::new_master(pty, flags, path.clone()))
    }
}

/// `/dev/pts` itself.
struct Root {
    fs: Arc<DevPts>,
}

impl Inode for Root {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.fs.dev
    }
    fn ino(&self) -> u64 {
        ROOT_INO
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            nlink: 2,
            blksize: 1024,
            ..char_stat(self.fs.dev, ROOT_INO, S_IFDIR | 0o755, 0, 0, 0)
        })
    }
    fn statfs(&self) -> SysResult<StatFs> {
        Ok(StatFs {
            f_type: DEVPTS_SUPER_MAGIC,
            f_bsize: 4096,
            f_namelen: 255,
            f_frsize: 4096,
            ..StatFs::default()
        })
    }
    fn lookup(&self, _cx: &Cx, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        if name == b"ptmx" {
            return Ok(self.fs.ptmx(self.fs.dev, PTMX_INO));
        }
        // Only canonical decimal names: "01" is not slave 1.
        let index = std::str::from_utf8(name)
            .ok()
            .filter(|s| !s.starts_with('0') || s.len() == 1)
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or(Errno::ENOENT)?;
        self.fs
            .lookup_index(index)
            .map(|n| n as Arc<dyn Inode>)
            .ok_or(Errno::ENOENT)
    }
    fn readdir(&self, _cx: &Cx) -> SysResult<Vec<DirEntry>> {
        let mut out = vec![DirEntry {
            ino: PTMX_INO,
            kind: dirent_type(S_IFCHR),
            name: b"ptmx".to_vec(),
        }];
        let names = self.fs.names.lock().unwrap_or_else(|e| e.into_inner());
        out.extend(names.iter().map(|(i, n)| DirEntry {
            ino: n.ino(),
            kind: dirent_type(S_IFCHR),
            name: i.to_string().into_bytes(),
        }));
        Ok(out)
    }
}

/// `ptmx`: each open makes a new pair and returns its master.
struct Ptmx {
    fs: Arc<DevPts>,
    dev: u64,
    ino: u64,
}

impl Inode for Ptmx {
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
        Ok(char_stat(
            self.dev,
            self.ino,
            S_IFCHR | 0o666,
            makedev(5, 2),
            0,
            0,
        ))
    }
    fn is_stream(&self) -> bool {
        true
    }
    fn open(
        &self,
        cx: &Cx,
        path: &Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        self.fs.open_master(cx, path, flags).map(Some)
    }
}

/// `/dev/pts/N`.
pub struct SlaveNode {
    dev: u64,
    pty: Arc<Pty>,
    /// Mode (with type), owner and group; `chmod`/`chown` change them.
    owner: Mutex<(u32, u32, u32)>,
}

impl SlaveNode {
    pub fn pty(&self) -> &Arc<Pty> {
        &self.pty
    }
}

impl Inode for SlaveNode {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        u64::from(self.pty.index) + 3
    }
    fn stat(&self) -> SysResult<Stat> {
        let (mode, uid, gid) = *self.owner.lock().unwrap_or_else(|e| e.into_inner());
        Ok(char_stat(
            self.dev,
            self.ino(),
            mode,
            slave_rdev(self.pty.index),
            uid,
            gid,
        ))
    }
    fn is_stream(&self) -> bool {
        true
    }
    fn setattr(&self, attr: &SetAttr) -> SysResult<()> {
        let mut o = self.owner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mode) = attr.mode {
            o.0 = S_IFCHR | (mode & 0o7777);
        }
        if let Some(uid) = attr.uid {
            o.1 = uid;
        }
        if let Some(gid) = attr.gid {
            o.2 = gid;
        }
        Ok(())
    }
    fn open(
        &self,
        cx: &Cx,
        path: &Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        let file = TtyFile::open_slave(&self.pty, flags, Some(path.clone()), cx.creds.euid == 0)?;
        Ok(Some(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_masters_and_indices_are_reused() {
        let fs = DevPts::new();
        let cx = Cx::root();
        let root = fs.root();
        let a = fs.new_pty(&cx).unwrap();
        let b = fs.new_pty(&cx).unwrap();
        assert_eq!((a.index, b.index), (0, 1));
        let node = root.lookup(&cx, b"1").unwrap();
        let st = node.stat().unwrap();
        assert_eq!(st.mode, S_IFCHR | 0o620);
        assert_eq!((st.rdev >> 8, st.rdev & 0xff), (136, 1));
        assert_eq!(st.gid, TTY_GID);
        assert_eq!(root.lookup(&cx, b"01").err(), Some(Errno::ENOENT));
        let names: Vec<_> = root
            .readdir(&cx)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"ptmx".to_vec(), b"0".to_vec(), b"1".to_vec()]);
        fs.remove(0);
        drop(a);
        assert_eq!(fs.new_pty(&cx).unwrap().index, 0, "the lowest free index");
    }
}
