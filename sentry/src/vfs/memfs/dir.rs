//! Directory operations of the in-memory filesystem: lookup through to the lower tree,
//! the merged listing, create, link, unlink with whiteouts, and rename.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};

use super::data::{LowerDir, LowerRef};
use super::{lock, Body, Dir, Lower, MemInode};
use crate::errno::{Errno, SysResult};
use crate::vfs::{dirent_type, Cx, DirEntry, Inode, NewNode, S_IFDIR, S_IFLNK, S_IFMT};

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;
const RENAME_WHITEOUT: u32 = 4;

/// Bytes of entries asked of the Gofer per `Readdir`.
const READDIR_CHUNK: u32 = 16 * 1024;

/// Bytes of entries asked of the Gofer per `ReaddirPlus`: as many as fit in a message
/// (`MAX_MESSAGE_SIZE`; the Gofer leaves room for the header).
const READDIR_PLUS_CHUNK: u32 = 64 * 1024;

/// Lower walks for names of one directory after which the next lookup there that would
/// walk loads the directory's whole lower listing with attributes instead (one round
/// trip per ~500 entries, and a host `lstat` each), and lookups are answered from memory
/// from then on. `git status` looks up every file of every directory of its work tree,
/// one round trip each without it; the threshold keeps a few lookups in a big directory
/// from listing it.
pub(super) const LIST_AFTER_WALKS: u32 = 8;

/// Bytes of a lower directory's size (`st_size`) per walk its listing waits for, beyond
/// `LIST_AFTER_WALKS`. A listing costs in proportion to the entries (measured: ~3 ms
/// for the 1,113 of `/usr/lib/x86_64-linux-gnu`, about 300 walks), and ext4 and btrfs
/// take ~40 bytes of `st_size` per entry, tmpfs 20: so that directory (44 KiB) is
/// listed after 88 walks, not 8, and a program that opens a few dozen libraries there
/// does not pay for listing it. A directory of one block (4 KiB) keeps the 8.
const DIR_BYTES_PER_WALK: u64 = 512;

/// The walks after which a lower directory of `size` bytes is listed.
pub(super) fn list_after_walks(size: u64) -> u32 {
    u32::try_from(size / DIR_BYTES_PER_WALK)
        .unwrap_or(u32::MAX)
        .max(LIST_AFTER_WALKS)
}

impl MemInode {
    pub(super) fn dir_body(&self) -> SysResult<()> {
        self.dir().map(|_| ())
    }

    fn dir(&self) -> SysResult<&std::sync::Mutex<Dir>> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// Finds `name` in `dir` (already locked), walking the lower tree if need be.
    fn child_locked(&self, dir: &mut Dir, name: &[u8]) -> SysResult<Arc<MemInode>> {
        if let Some(c) = dir.entries.get(name) {
            return Ok(Arc::clone(c));
        }
        if dir.whiteouts.contains(name) {
            return Err(Errno::ENOENT);
        }
        let Some(lower) = dir.lower.clone() else {
            return Err(Errno::ENOENT);
        };
        if dir.lower_dirs.is_none()
            && dir.lower_walks >= LIST_AFTER_WALKS
            && dir.lower_walks >= list_after_walks(self.meta().lower_size)
        {
            self.load_lower(dir, &lower);
            if let Some(c) = dir.entries.get(name) {
                return Ok(Arc::clone(c));
            }
        }
        match &dir.lower_dirs {
            // Listed: only a lower directory still needs a walk, for its handle.
            Some(dirs) if !dirs.contains(name) => return Err(Errno::ENOENT),
            Some(_) => {}
            None => dir.lower_walks = dir.lower_walks.saturating_add(1),
        }
        let (node, stat) = match lower.walk(name) {
            Ok(found) => found,
            Err(Errno::ENOENT) => {
                // The lower tree does not change: remember the miss (a whiteout hides
                // nothing here, and a name made later is an entry, found first).
                dir.whiteouts.insert(name.to_vec());
                if let Some(dirs) = &mut dir.lower_dirs {
                    dirs.remove(name);
                }
                return Err(Errno::ENOENT);
            }
            Err(e) => return Err(e),
        };
        if let Some(dirs) = &mut dir.lower_dirs {
            // An entry from now on.
            dirs.remove(name);
        }
        let child = if stat.mode & S_IFMT == S_IFDIR {
            self.fs.from_lower(
                Lower::Dir(lower.child(name, node)),
                &stat,
                self.this.clone(),
            )
        } else {
            // Reached again through this directory: the handle is closed now.
            drop(node);
            self.lower_ref_child(&lower, name, &stat)
        };
        dir.entries.insert(name.to_vec(), Arc::clone(&child));
        Ok(child)
    }

    /// The node for the lower non-directory `name` of `lower`, with its attributes: it
    /// holds no handle, and is walked to again by name when opened or its link read.
    fn lower_ref_child(
        &self,
        lower: &Arc<LowerDir>,
        name: &[u8],
        stat: &gofer::Stat,
    ) -> Arc<MemInode> {
        let at = LowerRef {
            dir: Arc::clone(lower),
            name: name.to_vec(),
        };
        self.fs.from_lower(Lower::Ref(at), stat, self.this.clone())
    }

    /// Loads the lower listing of `dir` with attributes, in a few round trips: each lower
    /// non-directory not shadowed or whited out becomes an entry, as a walk to it would
    /// make it, and the lower directories' names are remembered (a lookup of one still
    /// walks, for the handle the directory keeps). If the listing fails, lookups go on
    /// walking and try it again after as many walks.
    fn load_lower(&self, dir: &mut Dir, lower: &Arc<LowerDir>) {
        let listing = match lower.readdir_plus_all(READDIR_PLUS_CHUNK) {
            Ok(listing) => listing,
            Err(e) => {
                log::debug!("overlay: listing a lower directory failed: {e:?}");
                dir.lower_walks = 0;
                return;
            }
        };
        log::debug!(
            "overlay: {} lower entries listed after {} walks",
            listing.len(),
            dir.lower_walks
        );
        let mut dirs = BTreeSet::new();
        for e in listing {
            let name = e.name.0;
            if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
                continue;
            }
            if dir.entries.contains_key(&name) || dir.whiteouts.contains(&name) {
                continue;
            }
            if e.stat.mode & S_IFMT == S_IFDIR {
                dirs.insert(name);
            } else {
                let child = self.lower_ref_child(lower, &name, &e.stat);
                dir.entries.insert(name, child);
            }
        }
        dir.lower_dirs = Some(dirs);
    }

    pub(super) fn child(&self, name: &[u8]) -> SysResult<Arc<MemInode>> {
        let mut dir = lock(self.dir()?);
        self.child_locked(&mut dir, name)
    }

    /// The merged listing: this directory's entries, then the lower ones it does not
    /// shadow or white out.
    pub(super) fn list(&self) -> SysResult<Vec<DirEntry>> {
        let dir = lock(self.dir()?);
        let mut out: Vec<DirEntry> = dir
            .entries
            .iter()
            .map(|(name, c)| DirEntry {
                ino: c.ino,
                kind: dirent_type(c.meta().mode),
                name: name.clone(),
            })
            .collect();
        if let Some(lower) = &dir.lower {
            for e in lower.readdir_all(READDIR_CHUNK)? {
                let name = e.name.0;
                if name == b"." || name == b".." {
                    continue;
                }
                if dir.entries.contains_key(&name) || dir.whiteouts.contains(&name) {
                    continue;
                }
                out.push(DirEntry {
                    ino: e.ino,
                    kind: e.kind,
                    name,
                });
            }
        }
        Ok(out)
    }

    fn exists_locked(&self, dir: &mut Dir, name: &[u8]) -> SysResult<bool> {
        match self.child_locked(dir, name) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) fn make(&self, cx: &Cx, name: &[u8], node: NewNode) -> SysResult<Arc<MemInode>> {
        let mut dir = lock(self.dir()?);
        if self.meta().nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if self.exists_locked(&mut dir, name)? {
            return Err(Errno::EEXIST);
        }
        let parent_gid = self.meta().gid;
        let setgid = self.meta().mode & crate::vfs::S_ISGID != 0;
        let gid = if setgid { parent_gid } else { cx.creds.fsgid };
        let (mut mode, rdev, target) = match node {
            NewNode::Node { mode, rdev } => (mode, rdev, None),
            NewNode::Symlink(t) => (S_IFLNK | 0o777, 0, Some(t)),
        };
        if setgid && mode & S_IFMT == S_IFDIR {
            mode |= crate::vfs::S_ISGID;
        }
        let child = self
            .fs
            .new_inode(mode, cx.creds.fsuid, gid, rdev, target, self.this.clone());
        if mode & S_IFMT == S_IFDIR {
            self.meta().nlink += 1;
        }
        dir.entries.insert(name.to_vec(), Arc::clone(&child));
        drop(dir);
        self.touch(true, true);
        Ok(child)
    }

    pub(super) fn add_link(&self, name: &[u8], target: &Arc<dyn Inode>) -> SysResult<()> {
        let target = target
            .as_any()
            .downcast_ref::<MemInode>()
            .filter(|t| Arc::ptr_eq(&t.fs, &self.fs))
            .ok_or(Errno::EXDEV)?
            .arc()?;
        if target.meta().mode & S_IFMT == S_IFDIR {
            return Err(Errno::EPERM);
        }
        let mut dir = lock(self.dir()?);
        if self.exists_locked(&mut dir, name)? {
            return Err(Errno::EEXIST);
        }
        {
            let mut m = target.meta();
            if m.nlink == 0 && !m.linkable {
                return Err(Errno::ENOENT);
            }
            m.linkable = false;
            m.nlink += 1;
            m.ctime = crate::vfs::Time::now();
        }
        dir.entries.insert(name.to_vec(), target);
        drop(dir);
        self.touch(true, true);
        Ok(())
    }

    /// Whether a directory has no entries (merged with its lower one).
    fn is_empty_dir(&self) -> SysResult<bool> {
        Ok(self.list()?.is_empty())
    }

    fn drop_entry(&self, dir: &mut Dir, name: &[u8]) -> Option<Arc<MemInode>> {
        let removed = dir.entries.remove(name);
        if dir.lower.is_some() {
            dir.whiteouts.insert(name.to_vec());
        }
        removed
    }

    pub(super) fn remove(&self, name: &[u8], want_dir: bool) -> SysResult<()> {
        let mut dir = lock(self.dir()?);
        let child = self.child_locked(&mut dir, name)?;
        let is_dir = child.meta().mode & S_IFMT == S_IFDIR;
        if want_dir && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if !want_dir && is_dir {
            return Err(Errno::EISDIR);
        }
        if is_dir && !child.is_empty_dir()? {
            return Err(Errno::ENOTEMPTY);
        }
        self.drop_entry(&mut dir, name);
        drop(dir);
        unlinked(&child);
        if is_dir {
            let mut m = self.meta();
            m.nlink = m.nlink.saturating_sub(1);
        }
        self.touch(true, true);
        Ok(())
    }

    /// Whether `self` is `other` or one of its ancestors.
    fn is_ancestor_of(&self, other: &Arc<MemInode>) -> bool {
        let mut at = Some(Arc::clone(other));
        while let Some(node) = at {
            if std::ptr::eq(Arc::as_ptr(&node), self) {
                return true;
            }
            at = match &node.body {
                Body::Dir(d) => lock(d).parent.upgrade(),
                _ => None,
            };
        }
        false
    }

    pub(super) fn rename_to(
        &self,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> SysResult<()> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
            || (flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
        {
            return Err(Errno::EINVAL);
        }
        if flags & RENAME_WHITEOUT != 0 {
            // Whiteout device nodes are an overlayfs-on-host detail the sandbox never sees.
            return Err(Errno::EINVAL);
        }
        let new_dir = new_dir
            .as_any()
            .downcast_ref::<MemInode>()
            .filter(|d| Arc::ptr_eq(&d.fs, &self.fs))
            .ok_or(Errno::EXDEV)?
            .arc()?;
        let _guard = lock(&self.fs.rename_lock);
        let source = self.child(old)?;
        let target = match new_dir.child(new) {
            Ok(t) => Some(t),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        let src_dir = source.meta().mode & S_IFMT == S_IFDIR;
        if flags & RENAME_EXCHANGE != 0 {
            let Some(target) = target else {
                return Err(Errno::ENOENT);
            };
            let tgt_dir = target.meta().mode & S_IFMT == S_IFDIR;
            if (src_dir && source.is_ancestor_of(&new_dir))
                || (tgt_dir && target.is_ancestor_of(&self.arc()?))
            {
                return Err(Errno::EINVAL);
            }
            self.put(old, Arc::clone(&target))?;
            new_dir.put(new, Arc::clone(&source))?;
            set_parent(&source, &new_dir);
            set_parent(&target, &self.arc()?);
            return Ok(());
        }
        if src_dir && source.is_ancestor_of(&new_dir) {
            return Err(Errno::EINVAL);
        }
        if let Some(target) = &target {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if Arc::ptr_eq(target, &source) {
                return Ok(());
            }
            let tgt_dir = target.meta().mode & S_IFMT == S_IFDIR;
            match (src_dir, tgt_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !target.is_empty_dir()? => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        {
            let mut d = lock(self.dir()?);
            self.drop_entry(&mut d, old);
        }
        let replaced = new_dir.put(new, Arc::clone(&source))?;
        if let Some(r) = replaced {
            unlinked(&r);
        }
        if src_dir {
            set_parent(&source, &new_dir);
            if !Arc::ptr_eq(&new_dir, &self.arc()?) {
                self.meta().nlink = self.meta().nlink.saturating_sub(1);
                if target.is_none() {
                    new_dir.meta().nlink += 1;
                }
            }
        }
        source.touch(false, true);
        self.touch(true, true);
        new_dir.touch(true, true);
        Ok(())
    }

    /// Sets entry `name` to `node`, returning what it replaced.
    fn put(&self, name: &[u8], node: Arc<MemInode>) -> SysResult<Option<Arc<MemInode>>> {
        let mut d = lock(self.dir()?);
        Ok(d.entries.insert(name.to_vec(), node))
    }
}

fn set_parent(node: &Arc<MemInode>, parent: &Arc<MemInode>) {
    if let Body::Dir(d) = &node.body {
        lock(d).parent = Arc::downgrade(parent);
    }
}

/// One name of `node` is gone.
fn unlinked(node: &MemInode) {
    let mut m = node.meta();
    if m.mode & S_IFMT == S_IFDIR {
        m.nlink = 0;
    } else {
        m.nlink = m.nlink.saturating_sub(1);
    }
    m.ctime = crate::vfs::Time::now();
    drop(m);
    if let Body::Dir(d) = &node.body {
        lock(d).parent = Weak::new();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use platform::MemoryFile;

    use super::*;
    use crate::vfs::memfs::MemFs;
    use crate::vfs::S_IFREG;

    fn fs() -> Arc<MemInode> {
        MemFs::tmpfs(&Arc::new(MemoryFile::new(1 << 24).unwrap()), 0o777)
    }

    fn file() -> NewNode {
        NewNode::Node {
            mode: S_IFREG | 0o644,
            rdev: 0,
        }
    }

    fn dir() -> NewNode {
        NewNode::Node {
            mode: S_IFDIR | 0o755,
            rdev: 0,
        }
    }

    #[test]
    fn create_unlink_rmdir_errnos() {
        let root = fs();
        let cx = Cx::root();
        root.make(&cx, b"f", file()).unwrap();
        assert_eq!(root.make(&cx, b"f", dir()).err(), Some(Errno::EEXIST));
        let d = root.make(&cx, b"d", dir()).unwrap();
        d.make(&cx, b"inner", file()).unwrap();
        assert_eq!(root.remove(b"d", true).err(), Some(Errno::ENOTEMPTY));
        assert_eq!(root.remove(b"d", false).err(), Some(Errno::EISDIR));
        assert_eq!(root.remove(b"f", true).err(), Some(Errno::ENOTDIR));
        assert_eq!(root.remove(b"nope", false).err(), Some(Errno::ENOENT));
        d.remove(b"inner", false).unwrap();
        root.remove(b"d", true).unwrap();
        assert_eq!(
            d.make(&cx, b"x", file()).err(),
            Some(Errno::ENOENT),
            "no new entries in a removed directory"
        );
        let names: Vec<_> = root.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, vec![b"f".to_vec()]);
    }

    #[test]
    fn rename_rules() {
        let root = fs();
        let cx = Cx::root();
        let a = root.make(&cx, b"a", dir()).unwrap();
        let b = a.make(&cx, b"b", dir()).unwrap();
        root.make(&cx, b"f", file()).unwrap();
        let root_dyn: Arc<dyn Inode> = root.clone();
        let b_dyn: Arc<dyn Inode> = b.clone();
        assert_eq!(
            root.rename_to(b"a", &b_dyn, b"x", 0).err(),
            Some(Errno::EINVAL),
            "a directory cannot move into itself"
        );
        assert_eq!(
            root.rename_to(b"f", &root_dyn, b"a", 0).err(),
            Some(Errno::EISDIR)
        );
        assert_eq!(
            root.rename_to(b"a", &root_dyn, b"f", 0).err(),
            Some(Errno::ENOTDIR)
        );
        assert_eq!(
            root.rename_to(b"f", &root_dyn, b"a", RENAME_NOREPLACE)
                .err(),
            Some(Errno::EEXIST)
        );
        root.rename_to(b"f", &root_dyn, b"a", RENAME_EXCHANGE)
            .unwrap();
        assert_eq!(root.child(b"f").unwrap().ino, a.ino);
        root.rename_to(b"a", &b_dyn, b"g", 0).unwrap();
        assert!(b.child(b"g").is_ok());
        assert_eq!(root.child(b"a").err(), Some(Errno::ENOENT));
    }

    #[test]
    fn hard_links_count() {
        let root = fs();
        let cx = Cx::root();
        let f = root.make(&cx, b"f", file()).unwrap();
        let f_dyn: Arc<dyn Inode> = f.clone();
        root.add_link(b"g", &f_dyn).unwrap();
        assert_eq!(f.stat().unwrap().nlink, 2);
        root.remove(b"f", false).unwrap();
        assert_eq!(f.stat().unwrap().nlink, 1);
        let d: Arc<dyn Inode> = root.make(&cx, b"d", dir()).unwrap();
        assert_eq!(root.add_link(b"e", &d).err(), Some(Errno::EPERM));
    }
}
