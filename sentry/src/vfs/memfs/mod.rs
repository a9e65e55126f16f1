//! The in-memory filesystem: tmpfs, and the overlay of `bulwark do` over the read-only
//! Gofer root.
//!
//! One design serves both. Every node lives in memory; a directory may also have a
//! *lower* directory in the Gofer's tree, whose entries it shows unless it holds an entry
//! of its own by that name (which shadows the lower one) or a *whiteout* (the name was
//! removed). A node first found in the lower tree is cached in its directory, so a second
//! walk costs no Gofer round trip; its attributes are the lower ones as first seen
//! (coherence policy: the lower tree is read-only and assumed not to change under the
//! sandbox). Writing a lower file copies it up into memory first; metadata changes stay
//! in memory. A directory made over a whiteout has no lower directory (it is opaque).
//! Nothing ever reaches the Gofer as a write, so writes vanish when the sandbox exits.

pub mod data;
mod dir;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use gofer::Client;
use platform::MemoryFile;

use self::data::{open_lower, LowerDir, LowerOpen, LowerRef, Pages};
use super::{
    Cx, DirEntry, Inode, NewNode, SetAttr, Stat, StatFs, Time, OVERLAYFS_SUPER_MAGIC, S_IFDIR,
    S_IFLNK, S_IFMT, S_IFREG, TMPFS_MAGIC,
};
use crate::errno::{Errno, SysResult};
use crate::mm::MemoryObject;

static NEXT_DEV: AtomicU64 = AtomicU64::new(0x100);

/// One instance of the filesystem.
pub struct MemFs {
    dev: u64,
    memory: Arc<MemoryFile>,
    next_ino: AtomicU64,
    magic: i64,
    /// `size=` in pages (0: none) and the pages its files hold.
    budget: Arc<data::Budget>,
    /// Serialises renames, so two of them cannot lock directories in opposite orders.
    rename_lock: Mutex<()>,
}

/// Attributes of a node.
#[derive(Clone, Debug)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    rdev: u64,
    atime: Time,
    mtime: Time,
    ctime: Time,
    /// The size of a node whose data is elsewhere (a lower file not yet opened).
    lower_size: u64,
    /// The 512-byte blocks the host reports for a node from the lower layer.
    lower_blocks: Option<u64>,
    /// `st_dev` as shown: the lower node's host device (inode numbers are unique only
    /// within it), or the overlay's own for nodes made in memory.
    shown_dev: Option<u64>,
    /// An `O_TMPFILE` file that `linkat` may give a name though it has none.
    linkable: bool,
}

enum Body {
    Dir(Mutex<Dir>),
    File(Mutex<FileData>),
    Symlink(Mutex<Link>),
    /// A FIFO: the pipe its opens share.
    Fifo(Arc<crate::vfs::pipe::Pipe>),
    /// Sockets and device nodes: attributes only.
    Other,
}

struct Dir {
    entries: BTreeMap<Vec<u8>, Arc<MemInode>>,
    whiteouts: BTreeSet<Vec<u8>>,
    lower: Option<Arc<LowerDir>>,
    parent: Weak<MemInode>,
    /// Lower walks made for names of this directory while its listing is not loaded.
    lower_walks: u32,
    /// Once the lower listing is loaded: the lower directories not looked up yet. Every
    /// other lower name is an entry or a whiteout by then, so a name that is none of
    /// the three is not in the lower directory, and no Gofer round trip is needed.
    lower_dirs: Option<BTreeSet<Vec<u8>>>,
}

enum FileData {
    /// The lower file, read through its page cache once opened.
    Lower {
        at: LowerRef,
        /// The page cache while someone has the file open or mapped.
        cache: Weak<LowerOpen>,
    },
    Mem(Arc<Pages>),
}

enum Link {
    Target(Vec<u8>),
    Lower(LowerRef),
}

pub struct MemInode {
    fs: Arc<MemFs>,
    ino: u64,
    meta: Mutex<Meta>,
    body: Body,
    this: Weak<MemInode>,
    locks: crate::vfs::lock::FileLocks,
    /// Extended attributes set in the sandbox (a lower node's own are not shown).
    xattrs: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemFs {
    /// An empty tmpfs; its root has `mode` and belongs to `uid`/`gid`.
    pub fn tmpfs(memory: &Arc<MemoryFile>, mode: u32) -> Arc<MemInode> {
        let fs = Self::new(memory, TMPFS_MAGIC);
        fs.new_inode(S_IFDIR | (mode & 0o7777), 0, 0, 0, None, Weak::new())
    }

    /// A tmpfs mounted with `size=`: its files may hold at most `size` bytes of pages
    /// (`ENOSPC` beyond), and `statfs` shows that capacity and what is used of it.
    pub fn tmpfs_sized(memory: &Arc<MemoryFile>, mode: u32, size: Option<u64>) -> Arc<MemInode> {
        let fs = Self::new(memory, TMPFS_MAGIC);
        if let Some(size) = size {
            fs.budget.set_limit(size.div_ceil(4096).max(1));
        }
        fs.new_inode(S_IFDIR | (mode & 0o7777), 0, 0, 0, None, Weak::new())
    }

    /// An overlay whose lower tree is the Gofer's `root`.
    pub fn overlay(
        memory: &Arc<MemoryFile>,
        client: Arc<Client>,
        root: gofer::Handle,
    ) -> SysResult<Arc<MemInode>> {
        let stat = client.stat(root).map_err(super::gofer::errno)?;
        let fs = Self::new(memory, OVERLAYFS_SUPER_MAGIC);
        let lower = LowerDir::root(client, root);
        Ok(fs.from_lower(Lower::Dir(lower), &stat, Weak::new()))
    }

    fn new(memory: &Arc<MemoryFile>, magic: i64) -> Arc<Self> {
        Arc::new(Self {
            dev: NEXT_DEV.fetch_add(1, Ordering::Relaxed),
            memory: Arc::clone(memory),
            next_ino: AtomicU64::new(1 << 40),
            magic,
            budget: Arc::default(),
            rename_lock: Mutex::new(()),
        })
    }

    fn new_inode(
        self: &Arc<Self>,
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u64,
        target: Option<Vec<u8>>,
        parent: Weak<MemInode>,
    ) -> Arc<MemInode> {
        let now = Time::now();
        let body = match mode & S_IFMT {
            S_IFDIR => Body::Dir(Mutex::new(Dir {
                entries: BTreeMap::new(),
                whiteouts: BTreeSet::new(),
                lower: None,
                parent,
                lower_walks: 0,
                lower_dirs: None,
            })),
            S_IFREG => Body::File(Mutex::new(FileData::Mem(Pages::with_budget(
                &self.memory,
                Arc::clone(&self.budget),
            )))),
            S_IFLNK => Body::Symlink(Mutex::new(Link::Target(target.unwrap_or_default()))),
            crate::vfs::S_IFIFO => Body::Fifo(crate::vfs::pipe::Pipe::new_fifo()),
            _ => Body::Other,
        };
        let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        self.inode(
            self.next_ino.fetch_add(1, Ordering::Relaxed),
            Meta {
                mode,
                uid,
                gid,
                nlink,
                rdev,
                atime: now,
                mtime: now,
                ctime: now,
                lower_size: 0,
                lower_blocks: None,
                shown_dev: None,
                linkable: false,
            },
            body,
        )
    }

    fn inode(self: &Arc<Self>, ino: u64, meta: Meta, body: Body) -> Arc<MemInode> {
        Arc::new_cyclic(|this| MemInode {
            fs: Arc::clone(self),
            ino,
            meta: Mutex::new(meta),
            body,
            this: this.clone(),
            locks: crate::vfs::lock::FileLocks::default(),
            xattrs: Mutex::new(BTreeMap::new()),
        })
    }

    /// A node for a lower node found by a walk (or a listing with attributes).
    fn from_lower(
        self: &Arc<Self>,
        node: Lower,
        st: &gofer::Stat,
        parent: Weak<MemInode>,
    ) -> Arc<MemInode> {
        let t = |ts: &gofer::protocol::Timespec| Time {
            sec: ts.sec,
            nsec: i64::from(ts.nsec),
        };
        let meta = Meta {
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
            nlink: st.nlink,
            rdev: st.rdev,
            atime: t(&st.atime),
            mtime: t(&st.mtime),
            ctime: t(&st.ctime),
            lower_size: st.size,
            lower_blocks: Some(st.blocks),
            shown_dev: Some(st.dev),
            linkable: false,
        };
        let body = match node {
            Lower::Dir(node) => Body::Dir(Mutex::new(Dir {
                entries: BTreeMap::new(),
                whiteouts: BTreeSet::new(),
                lower: Some(node),
                parent,
                lower_walks: 0,
                lower_dirs: None,
            })),
            Lower::Ref(at) => match st.mode & S_IFMT {
                S_IFREG => Body::File(Mutex::new(FileData::Lower {
                    at,
                    cache: Weak::new(),
                })),
                S_IFLNK => Body::Symlink(Mutex::new(Link::Lower(at))),
                crate::vfs::S_IFIFO => Body::Fifo(crate::vfs::pipe::Pipe::new_fifo()),
                _ => Body::Other,
            },
        };
        self.inode(st.ino, meta, body)
    }
}

/// How a node found in the lower tree is reached again.
enum Lower {
    /// A directory keeps its handle (walks and listings go through it).
    Dir(Arc<LowerDir>),
    Ref(LowerRef),
}

impl MemInode {
    fn meta(&self) -> MutexGuard<'_, Meta> {
        lock(&self.meta)
    }

    fn arc(&self) -> SysResult<Arc<MemInode>> {
        self.this.upgrade().ok_or(Errno::ENOENT)
    }

    fn touch(&self, m: bool, c: bool) {
        let now = Time::now();
        let mut meta = self.meta();
        if m {
            meta.mtime = now;
        }
        if c {
            meta.ctime = now;
        }
    }

    /// The file's in-memory pages, copying a lower file up first.
    fn pages(&self) -> SysResult<Arc<Pages>> {
        let Body::File(data) = &self.body else {
            return Err(Errno::EINVAL);
        };
        let mut data = lock(data);
        if let FileData::Mem(p) = &*data {
            return Ok(Arc::clone(p));
        }
        let cache = self.lower_cache_locked(&mut data)?;
        let pages = Pages::with_budget(&self.fs.memory, Arc::clone(&self.fs.budget));
        let size = self.meta().lower_size;
        let mut buf = vec![0u8; 1 << 16];
        let mut at = 0u64;
        while at < size {
            let n = cache.read_at(at, &mut buf)?;
            if n == 0 {
                break;
            }
            pages.write_at(at, &buf[..n])?;
            at += n as u64;
        }
        pages.truncate(size)?;
        *data = FileData::Mem(Arc::clone(&pages));
        Ok(pages)
    }

    fn lower_cache_locked(&self, data: &mut FileData) -> SysResult<Arc<LowerOpen>> {
        match data {
            FileData::Lower { at, cache } => {
                if let Some(c) = cache.upgrade() {
                    return Ok(c);
                }
                let c = open_lower(at, &self.fs.memory, format!("inode {}", self.ino))?;
                *cache = Arc::downgrade(&c);
                Ok(c)
            }
            FileData::Mem(_) => Err(Errno::EINVAL),
        }
    }

    fn file_size(&self) -> u64 {
        match &self.body {
            Body::File(d) => match &*lock(d) {
                FileData::Mem(p) => p.size(),
                FileData::Lower { .. } => self.meta().lower_size,
            },
            Body::Symlink(l) => match &*lock(l) {
                Link::Target(t) => t.len() as u64,
                Link::Lower(_) => self.meta().lower_size,
            },
            // A directory from the lower layer shows the host's size.
            Body::Dir(_) => match self.meta().lower_size {
                0 => 4096,
                host => host,
            },
            Body::Fifo(_) | Body::Other => 0,
        }
    }
}

impl Inode for MemInode {
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
        // What the body knows (a file's pages: size and blocks; a symlink's own target:
        // its size), then the attributes, under one lock each, body first as elsewhere.
        let from_body = match &self.body {
            Body::File(d) => match &*lock(d) {
                FileData::Mem(p) => Some((p.size(), Some(p.allocated() * 8))),
                FileData::Lower { .. } => None,
            },
            Body::Symlink(l) => match &*lock(l) {
                Link::Target(t) => Some((t.len() as u64, None)),
                Link::Lower(_) => None,
            },
            Body::Fifo(_) | Body::Other => Some((0, None)),
            Body::Dir(_) => None,
        };
        let m = self.meta();
        let (size, blocks) = match (&self.body, from_body) {
            (_, Some(known)) => known,
            // A lower symlink: the host's size, and blocks for it.
            (Body::Symlink(_), None) => (m.lower_size, None),
            // A directory from the lower layer shows the host's size.
            (Body::Dir(_), None) if m.lower_size == 0 => (4096, m.lower_blocks),
            // A lower file or directory.
            (_, None) => (m.lower_size, m.lower_blocks),
        };
        let blocks = blocks.unwrap_or(size.div_ceil(512));
        Ok(Stat {
            dev: m.shown_dev.unwrap_or(self.fs.dev),
            ino: self.ino,
            nlink: m.nlink,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            rdev: m.rdev,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            blksize: 4096,
            blocks: i64::try_from(blocks).unwrap_or(i64::MAX),
            atime: m.atime.sec,
            atime_nsec: m.atime.nsec,
            mtime: m.mtime.sec,
            mtime_nsec: m.mtime.nsec,
            ctime: m.ctime.sec,
            ctime_nsec: m.ctime.nsec,
            ..Stat::default()
        })
    }

    fn mode(&self) -> u32 {
        self.meta().mode
    }

    fn statfs(&self) -> SysResult<StatFs> {
        // Its space is the sandbox's memory file.
        let (total, free) = match self.fs.budget.limit() {
            0 => {
                let total = self.fs.memory.size() / 4096;
                (
                    total,
                    total.saturating_sub(self.fs.memory.allocated() / 4096),
                )
            }
            limit => (limit, limit.saturating_sub(self.fs.budget.used())),
        };
        let inodes = self.fs.next_ino.load(Ordering::Relaxed) - (1 << 40);
        Ok(StatFs {
            f_type: self.fs.magic,
            f_bsize: 4096,
            f_blocks: total,
            f_bfree: free,
            f_bavail: free,
            f_files: total,
            f_ffree: total.saturating_sub(inodes),
            f_namelen: 255,
            f_frsize: 4096,
            ..StatFs::default()
        })
    }

    fn lookup(&self, _cx: &Cx, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        self.child(name).map(|c| c as Arc<dyn Inode>)
    }

    fn readdir(&self, _cx: &Cx) -> SysResult<Vec<DirEntry>> {
        self.list()
    }

    fn readlink(&self, _cx: &Cx) -> SysResult<Vec<u8>> {
        let Body::Symlink(link) = &self.body else {
            return Err(Errno::EINVAL);
        };
        let mut link = lock(link);
        let target = match &*link {
            Link::Target(t) => return Ok(t.clone()),
            Link::Lower(at) => at.readlink()?,
        };
        *link = Link::Target(target.clone());
        Ok(target)
    }

    fn create(&self, cx: &Cx, name: &[u8], node: NewNode) -> SysResult<Arc<dyn Inode>> {
        self.make(cx, name, node).map(|c| c as Arc<dyn Inode>)
    }

    fn create_tmpfile(&self, cx: &Cx, mode: u32, linkable: bool) -> SysResult<Arc<dyn Inode>> {
        self.dir_body()?;
        let node = self.fs.new_inode(
            S_IFREG | (mode & 0o7777),
            cx.creds.fsuid,
            cx.creds.fsgid,
            0,
            None,
            Weak::new(),
        );
        {
            let mut m = node.meta();
            m.nlink = 0;
            m.linkable = linkable;
        }
        Ok(node)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> SysResult<()> {
        self.add_link(name, target)
    }

    fn unlink(&self, _cx: &Cx, name: &[u8], dir: bool) -> SysResult<()> {
        self.remove(name, dir)
    }

    fn rename(
        &self,
        _cx: &Cx,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        self.rename_to(old, new_dir, new, flags)
    }

    fn setattr(&self, attr: &SetAttr) -> SysResult<()> {
        if let Some(size) = attr.size {
            match &self.body {
                Body::File(_) => self.pages()?.truncate(size)?,
                Body::Dir(_) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            self.touch(true, true);
        }
        let mut m = self.meta();
        if let Some(mode) = attr.mode {
            m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
        }
        if let Some(uid) = attr.uid {
            m.uid = uid;
        }
        if let Some(gid) = attr.gid {
            m.gid = gid;
        }
        if let Some(t) = attr.atime {
            m.atime = t;
        }
        if let Some(t) = attr.mtime {
            m.mtime = t;
        }
        m.ctime = Time::now();
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        let Body::File(data) = &self.body else {
            return Err(Errno::EINVAL);
        };
        let mut data = lock(data);
        match &*data {
            FileData::Mem(p) => {
                let p = Arc::clone(p);
                drop(data);
                p.read_at(offset, buf)
            }
            FileData::Lower { .. } => {
                let cache = self.lower_cache_locked(&mut data)?;
                drop(data);
                cache.read_at(offset, buf)
            }
        }
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> SysResult<usize> {
        let n = self.pages()?.write_at(offset, buf)?;
        self.touch(true, true);
        Ok(n)
    }

    fn size(&self) -> u64 {
        self.file_size()
    }

    fn host_data(&self) -> SysResult<Option<Arc<dyn crate::vfs::HostData>>> {
        let Body::File(data) = &self.body else {
            return Ok(None);
        };
        let mut data = lock(data);
        match &*data {
            FileData::Mem(_) => Ok(None),
            FileData::Lower { .. } => Ok(Some(self.lower_cache_locked(&mut data)?.donated())),
        }
    }

    fn pin(&self) -> SysResult<Option<Arc<dyn Any + Send + Sync>>> {
        let Body::File(data) = &self.body else {
            return Ok(None);
        };
        let mut data = lock(data);
        match &*data {
            FileData::Mem(_) => Ok(None),
            FileData::Lower { .. } => Ok(Some(
                self.lower_cache_locked(&mut data)? as Arc<dyn Any + Send + Sync>
            )),
        }
    }

    fn locks(&self) -> Option<&crate::vfs::lock::FileLocks> {
        Some(&self.locks)
    }

    fn xattrs(&self) -> Option<&Mutex<BTreeMap<Vec<u8>, Vec<u8>>>> {
        Some(&self.xattrs)
    }

    fn prepare_write(&self) -> SysResult<()> {
        if let Body::File(_) = &self.body {
            self.pages()?;
        }
        Ok(())
    }

    fn memory_object(&self) -> SysResult<Arc<dyn MemoryObject>> {
        let Body::File(data) = &self.body else {
            return Err(Errno::ENODEV);
        };
        let mut data = lock(data);
        match &*data {
            FileData::Mem(p) => Ok(Arc::clone(p) as Arc<dyn MemoryObject>),
            FileData::Lower { .. } => {
                Ok(self.lower_cache_locked(&mut data)? as Arc<dyn MemoryObject>)
            }
        }
    }

    fn open(
        &self,
        _cx: &Cx,
        path: &super::Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn super::FileDescription>>> {
        match &self.body {
            Body::Fifo(pipe) => Ok(Some(crate::vfs::pipe::open_fifo(
                pipe,
                flags,
                path.clone(),
            )?)),
            // Device nodes and sockets on this filesystem are not served yet.
            Body::Other => Err(Errno::ENXIO),
            _ => Ok(None),
        }
    }
}
