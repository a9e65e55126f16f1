//! Bind mounts: a tree (or one file) the Gofer serves, shown as it is on the host, with no
//! overlay: every change goes to the host through the Gofer, and attributes are read
//! from it each time they are asked for (the host, or another container, may change the
//! tree at any time). A read-only bind refuses every change with `EROFS` (the Gofer
//! refuses them too).
//!
//! Each node holds a Gofer handle while the Sentry uses it, and each directory remembers
//! the children it handed out (weakly), so a second walk to a name that still names the
//! same host file gives the same inode: mount points inside a bind, and file locks, rely
//! on that.
//!
//! What is not done: extended attributes (`EOPNOTSUPP`), and shared writable mappings
//! (a `MAP_SHARED` mapping reads the file through a page cache of its own; its writes do
//! not reach the host: programs that write a bind-mounted file through `mmap` must
//! `write` it instead).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use gofer::protocol::{SetAttr as WireSetAttr, SetAttrMask, Timespec};
use gofer::{Client, Handle};
use platform::MemoryFile;

use super::gofer::errno;
use super::{
    Cx, DirEntry, Inode, NewNode, SetAttr, Stat, StatFs, Time, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT,
    S_IFREG, S_IFSOCK,
};
use crate::errno::{Errno, SysResult};
use crate::mm::cache::{FileCache, ReadAt};
use crate::mm::MemoryObject;

/// How many bytes of entries one `Readdir` round trip asks for.
const READDIR_CHUNK: u32 = 32 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One bind mount.
pub struct BindFs {
    client: Arc<Client>,
    memory: Arc<MemoryFile>,
    dev: u64,
    read_only: bool,
}

/// A node of a bind mount.
pub struct BindInode {
    fs: Arc<BindFs>,
    handle: Handle,
    ino: u64,
    /// The mode as last seen (the type never changes).
    mode: Mutex<u32>,
    /// The host file, once opened (and whether for writing too).
    file: Mutex<Option<(Arc<HostIo>, bool)>>,
    /// Children handed out, by name (directories).
    children: Mutex<HashMap<Vec<u8>, Weak<BindInode>>>,
    /// A FIFO's pipe, shared by the sandbox's opens of it.
    fifo: Option<Arc<super::pipe::Pipe>>,
    locks: super::lock::FileLocks,
}

impl Drop for BindInode {
    fn drop(&mut self) {
        if let Err(e) = self.fs.client.close(&[self.handle]) {
            log::debug!("bind: closing handle {:?}: {e:?}", self.handle);
        }
    }
}

/// Attaches the Gofer's mount `name` as a bind mount; its root is a directory or a
/// regular file, as the host's.
pub fn attach(
    client: Arc<Client>,
    name: &str,
    memory: &Arc<MemoryFile>,
    read_only: bool,
) -> SysResult<Arc<BindInode>> {
    let (handle, stat) = client.attach(name).map_err(errno)?;
    let fs = Arc::new(BindFs {
        client,
        memory: Arc::clone(memory),
        dev: super::dev::new_dev(),
        read_only,
    });
    Ok(fs.node(handle, &stat))
}

impl BindFs {
    fn node(self: &Arc<Self>, handle: Handle, stat: &gofer::Stat) -> Arc<BindInode> {
        let fifo = (stat.mode & S_IFMT == S_IFIFO).then(super::pipe::Pipe::new_fifo);
        Arc::new(BindInode {
            fs: Arc::clone(self),
            handle,
            ino: stat.ino,
            mode: Mutex::new(stat.mode),
            file: Mutex::new(None),
            children: Mutex::new(HashMap::new()),
            fifo,
            locks: super::lock::FileLocks::default(),
        })
    }

    fn writable(&self) -> SysResult<()> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

fn convert(st: &gofer::Stat) -> Stat {
    Stat {
        dev: st.dev,
        ino: st.ino,
        nlink: st.nlink,
        mode: st.mode,
        uid: st.uid,
        gid: st.gid,
        rdev: st.rdev,
        size: i64::try_from(st.size).unwrap_or(i64::MAX),
        blksize: i64::from(st.blksize),
        blocks: i64::try_from(st.blocks).unwrap_or(i64::MAX),
        atime: st.atime.sec,
        atime_nsec: i64::from(st.atime.nsec),
        mtime: st.mtime.sec,
        mtime_nsec: i64::from(st.mtime.nsec),
        ctime: st.ctime.sec,
        ctime_nsec: i64::from(st.ctime.nsec),
        ..Stat::default()
    }
}

fn wire_time(t: Option<Time>) -> Timespec {
    t.map_or_else(Timespec::default, |t| Timespec {
        sec: t.sec,
        nsec: u32::try_from(t.nsec).unwrap_or(0),
    })
}

/// The host file the Gofer donated.
pub struct HostIo(std::fs::File);

impl ReadAt for HostIo {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        std::os::unix::fs::FileExt::read_at(&self.0, buf, offset).map_err(Errno::from)
    }

    fn size(&self) -> SysResult<u64> {
        Ok(self.0.metadata().map_err(Errno::from)?.len())
    }
}

impl BindInode {
    fn kind(&self) -> u32 {
        *lock(&self.mode) & S_IFMT
    }

    /// Remembers `child` as `name`, and forgets children no longer used.
    fn remember(&self, name: &[u8], child: &Arc<BindInode>) {
        let mut children = lock(&self.children);
        if children.len() >= 64 {
            children.retain(|_, c| c.strong_count() > 0);
        }
        children.insert(name.to_vec(), Arc::downgrade(child));
    }

    fn forget(&self, name: &[u8]) {
        lock(&self.children).remove(name);
    }

    /// The host file, opened for reading, or for writing too when `write`.
    fn host_file(&self, write: bool) -> SysResult<Arc<HostIo>> {
        let mut file = lock(&self.file);
        if let Some((io, writable)) = &*file {
            if *writable || !write {
                return Ok(Arc::clone(io));
            }
        }
        if write {
            self.fs.writable()?;
        }
        let try_write = write || !self.fs.read_only;
        let opened = if try_write {
            match self.fs.client.open(self.handle, libc::O_RDWR) {
                Ok(fd) => Ok((fd, true)),
                // A running executable (ETXTBSY) or a file the Gofer may only read can
                // still be read.
                Err(_) if !write => self
                    .fs
                    .client
                    .open(self.handle, libc::O_RDONLY)
                    .map(|fd| (fd, false)),
                Err(e) => Err(e),
            }
        } else {
            self.fs
                .client
                .open(self.handle, libc::O_RDONLY)
                .map(|fd| (fd, false))
        };
        let (fd, writable) = opened.map_err(errno)?;
        let io = Arc::new(HostIo(std::fs::File::from(fd)));
        *file = Some((Arc::clone(&io), writable));
        Ok(io)
    }

    fn new_child(&self, name: &[u8], handle: Handle, stat: &gofer::Stat) -> Arc<BindInode> {
        let child = self.fs.node(handle, stat);
        self.remember(name, &child);
        child
    }
}

impl Inode for BindInode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn dev(&self) -> u64 {
        self.fs.dev
    }

    fn ino(&self) -> u64 {
        self.ino
    }

    fn stat(&self) -> SysResult<Stat> {
        let st = self.fs.client.stat(self.handle).map_err(errno)?;
        *lock(&self.mode) = st.mode;
        Ok(convert(&st))
    }

    fn mode(&self) -> u32 {
        *lock(&self.mode)
    }

    fn statfs(&self) -> SysResult<StatFs> {
        let s = self.fs.client.statfs(self.handle).map_err(errno)?;
        let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let fsid = s.fsid.to_ne_bytes();
        let half = |b: &[u8]| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
        let mut flags = i(s.flags);
        if self.fs.read_only {
            flags |= 1; // ST_RDONLY
        }
        Ok(StatFs {
            f_type: i(s.fs_type),
            f_bsize: i(s.bsize),
            f_blocks: s.blocks,
            f_bfree: s.bfree,
            f_bavail: s.bavail,
            f_files: s.files,
            f_ffree: s.ffree,
            f_fsid: [half(&fsid[..4]), half(&fsid[4..])],
            f_namelen: i(s.namelen),
            f_frsize: i(s.frsize),
            f_flags: flags,
            ..StatFs::default()
        })
    }

    fn read_only(&self) -> bool {
        self.fs.read_only
    }

    fn lookup(&self, _cx: &Cx, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        if self.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let (handle, stat) = self.fs.client.walk(self.handle, name).map_err(errno)?;
        let known = lock(&self.children).get(name).and_then(Weak::upgrade);
        if let Some(known) = known {
            if known.ino == stat.ino && known.kind() == stat.mode & S_IFMT {
                // Still the same host file: keep one inode for it.
                let _ = self.fs.client.close(&[handle]);
                *lock(&known.mode) = stat.mode;
                return Ok(known);
            }
        }
        Ok(self.new_child(name, handle, &stat))
    }

    fn readdir(&self, _cx: &Cx) -> SysResult<Vec<DirEntry>> {
        if self.kind() != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        let mut out = Vec::new();
        let mut cookie = 0;
        loop {
            let batch = self
                .fs
                .client
                .readdir(self.handle, cookie, READDIR_CHUNK)
                .map_err(errno)?;
            let Some(last) = batch.last() else { break };
            cookie = last.next_cookie;
            out.extend(batch.into_iter().map(|d| DirEntry {
                ino: d.ino,
                kind: d.kind,
                name: d.name.0,
            }));
        }
        Ok(out)
    }

    fn readlink(&self, _cx: &Cx) -> SysResult<Vec<u8>> {
        if self.kind() != S_IFLNK {
            return Err(Errno::EINVAL);
        }
        self.fs.client.readlink(self.handle).map_err(errno)
    }

    fn create(&self, cx: &Cx, name: &[u8], node: NewNode) -> SysResult<Arc<dyn Inode>> {
        self.fs.writable()?;
        let (uid, gid) = (cx.creds.fsuid, cx.creds.fsgid);
        let c = &self.fs.client;
        let child = match node {
            NewNode::Symlink(target) => {
                let (h, st) = c
                    .symlink(self.handle, name, target, uid, gid)
                    .map_err(errno)?;
                self.new_child(name, h, &st)
            }
            NewNode::Node { mode, rdev } => match mode & S_IFMT {
                S_IFREG | 0 => {
                    let (h, st, fd) = c
                        .create(self.handle, name, libc::O_RDWR, mode & 0o7777, uid, gid)
                        .map_err(errno)?;
                    let child = self.new_child(name, h, &st);
                    *lock(&child.file) = Some((Arc::new(HostIo(std::fs::File::from(fd))), true));
                    child
                }
                S_IFDIR => {
                    let (h, st) = c
                        .mkdir(self.handle, name, mode & 0o7777, uid, gid)
                        .map_err(errno)?;
                    self.new_child(name, h, &st)
                }
                S_IFIFO | S_IFSOCK => {
                    let (h, st) = c
                        .mknod(self.handle, name, mode, rdev, uid, gid)
                        .map_err(errno)?;
                    self.new_child(name, h, &st)
                }
                // Device nodes: the Gofer serves none (the Sentry's devfs does).
                _ => return Err(Errno::EPERM),
            },
        };
        Ok(child)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> SysResult<()> {
        self.fs.writable()?;
        let Some(t) = target.as_any().downcast_ref::<BindInode>() else {
            return Err(Errno::EXDEV);
        };
        if !Arc::ptr_eq(&self.fs, &t.fs) {
            return Err(Errno::EXDEV);
        }
        let (h, _) = self
            .fs
            .client
            .link(self.handle, name, t.handle)
            .map_err(errno)?;
        let _ = self.fs.client.close(&[h]);
        Ok(())
    }

    fn unlink(&self, _cx: &Cx, name: &[u8], dir: bool) -> SysResult<()> {
        self.fs.writable()?;
        let flags = if dir { libc::AT_REMOVEDIR as u32 } else { 0 };
        self.fs
            .client
            .unlink(self.handle, name, flags)
            .map_err(errno)?;
        self.forget(name);
        Ok(())
    }

    fn rename(
        &self,
        _cx: &Cx,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        self.fs.writable()?;
        let Some(to) = new_dir.as_any().downcast_ref::<BindInode>() else {
            return Err(Errno::EXDEV);
        };
        if !Arc::ptr_eq(&self.fs, &to.fs) {
            return Err(Errno::EXDEV);
        }
        self.fs
            .client
            .rename(self.handle, old, to.handle, new, flags)
            .map_err(errno)?;
        self.forget(old);
        to.forget(new);
        Ok(())
    }

    fn setattr(&self, attr: &SetAttr) -> SysResult<()> {
        self.fs.writable()?;
        let mut mask = SetAttrMask::empty();
        mask.set(SetAttrMask::MODE, attr.mode.is_some());
        mask.set(SetAttrMask::UID, attr.uid.is_some());
        mask.set(SetAttrMask::GID, attr.gid.is_some());
        mask.set(SetAttrMask::SIZE, attr.size.is_some());
        mask.set(SetAttrMask::ATIME, attr.atime.is_some());
        mask.set(SetAttrMask::MTIME, attr.mtime.is_some());
        let wire = WireSetAttr {
            mask,
            mode: attr.mode.unwrap_or(0),
            uid: attr.uid.unwrap_or(0),
            gid: attr.gid.unwrap_or(0),
            size: attr.size.unwrap_or(0),
            atime: wire_time(attr.atime),
            mtime: wire_time(attr.mtime),
        };
        let st = self.fs.client.set_attr(self.handle, wire).map_err(errno)?;
        *lock(&self.mode) = st.mode;
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        if self.kind() != S_IFREG {
            return Err(Errno::EINVAL);
        }
        self.host_file(false)?.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> SysResult<usize> {
        if self.kind() != S_IFREG {
            return Err(Errno::EINVAL);
        }
        let io = self.host_file(true)?;
        std::os::unix::fs::FileExt::write_at(&io.0, buf, offset).map_err(Errno::from)
    }

    fn size(&self) -> u64 {
        if let Some((io, _)) = &*lock(&self.file) {
            if let Ok(size) = io.size() {
                return size;
            }
        }
        self.stat()
            .map_or(0, |s| u64::try_from(s.size).unwrap_or(0))
    }

    fn prepare_write(&self) -> SysResult<()> {
        if self.kind() == S_IFREG {
            self.host_file(true)?;
        }
        Ok(())
    }

    fn memory_object(&self) -> SysResult<Arc<dyn MemoryObject>> {
        if self.kind() != S_IFREG {
            return Err(Errno::ENODEV);
        }
        let io = self.host_file(false)?;
        Ok(FileCache::new(
            &self.fs.memory,
            io as Arc<dyn ReadAt>,
            format!("bind inode {}", self.ino),
        ))
    }

    fn fsync(&self) -> SysResult<()> {
        self.fs.client.fsync(self.handle, false).map_err(errno)
    }

    fn locks(&self) -> Option<&super::lock::FileLocks> {
        Some(&self.locks)
    }

    fn open(
        &self,
        _cx: &Cx,
        path: &super::Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn super::FileDescription>>> {
        match (self.kind(), &self.fifo) {
            (S_IFIFO, Some(pipe)) => Ok(Some(super::pipe::open_fifo(pipe, flags, path.clone())?)),
            (S_IFREG | S_IFDIR | S_IFLNK, _) => Ok(None),
            _ => Err(Errno::ENXIO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Gofer serving `dir` read-write as `/data`, and `dir/ro` read-only as `/ro`.
    fn served(dir: &std::path::Path) -> (Arc<Client>, Arc<MemoryFile>) {
        std::fs::create_dir_all(dir.join("ro")).unwrap();
        let mounts = vec![
            gofer::MountConfig {
                name: "/data".into(),
                path: dir.to_path_buf(),
                read_only: false,
            },
            gofer::MountConfig {
                name: "/ro".into(),
                path: dir.join("ro"),
                read_only: true,
            },
        ];
        let server = Arc::new(gofer::Server::new(mounts).unwrap());
        let (a, b) = gofer::channel::pair().unwrap();
        drop(server.spawn(vec![b]));
        let memory = Arc::new(MemoryFile::new(1 << 24).unwrap());
        (Arc::new(Client::new(vec![a])), memory)
    }

    fn reg(mode: u32) -> NewNode {
        NewNode::Node {
            mode: S_IFREG | mode,
            rdev: 0,
        }
    }

    #[test]
    fn changes_reach_the_host_and_inodes_stay_one() {
        let tmp = std::env::temp_dir().join(format!("bulwark-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("host"), b"from the host").unwrap();
        let (client, memory) = served(&tmp);
        let cx = Cx::root();
        let root = attach(Arc::clone(&client), "/data", &memory, false).unwrap();
        let f = root.create(&cx, b"new", reg(0o640)).unwrap();
        assert_eq!(f.write_at(0, b"hello").unwrap(), 5);
        assert_eq!(std::fs::read(tmp.join("new")).unwrap(), b"hello");
        let again = root.lookup(&cx, b"new").unwrap();
        assert!(
            super::super::path::same_inode(&f, &again),
            "one inode per host file"
        );
        let host = root.lookup(&cx, b"host").unwrap();
        let mut buf = [0u8; 32];
        let n = host.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"from the host");
        // A change made on the host is seen (no cache of attributes or data).
        std::fs::write(tmp.join("host"), b"changed").unwrap();
        assert_eq!(host.stat().unwrap().size, 7);
        let d = root
            .create(
                &cx,
                b"dir",
                NewNode::Node {
                    mode: S_IFDIR | 0o755,
                    rdev: 0,
                },
            )
            .unwrap();
        let dir: Arc<dyn Inode> = d;
        root.rename(&cx, b"new", &dir, b"moved", 0).unwrap();
        assert!(tmp.join("dir/moved").exists());
        dir.unlink(&cx, b"moved", false).unwrap();
        assert!(!tmp.join("dir/moved").exists());
        assert_eq!(
            root.lookup(&cx, b"..").err(),
            Some(Errno::EINVAL),
            "the Gofer refuses .. (the VFS resolves it)"
        );
        let names: Vec<_> = root
            .readdir(&cx)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.contains(&b"dir".to_vec()) && names.contains(&b"host".to_vec()));

        let ro = attach(client, "/ro", &memory, true).unwrap();
        assert!(ro.read_only());
        assert_eq!(ro.create(&cx, b"x", reg(0o644)).err(), Some(Errno::EROFS));
        assert_eq!(ro.statfs().unwrap().f_flags & 1, 1, "ST_RDONLY");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
