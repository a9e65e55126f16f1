//! Mounts, dentries and path resolution.
//!
//! A [`Path`] is a dentry in a mount. Dentries are made as a lookup walks (they carry the
//! name and parent for `..` and `getcwd`); the inodes they point at are cached by their
//! filesystems (the overlay keeps every node it has seen, so a second walk of the same path
//! makes no Gofer round trip). Resolution follows symlinks (40 at most, then `ELOOP`),
//! crosses mount points both ways, and checks search permission on every directory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{permitted, Cx, Inode, MAY_EXEC, NAME_MAX, S_IFDIR, S_IFLNK, S_IFMT};
use crate::errno::{Errno, SysResult};

/// Linux's limit on symlinks followed in one lookup.
pub const MAX_SYMLINKS: usize = 40;
/// Linux's `PATH_MAX`.
pub const PATH_MAX: usize = 4096;

/// A name in the tree: an inode, and how it was reached.
pub struct Dentry {
    pub name: Vec<u8>,
    pub parent: Option<Arc<Dentry>>,
    pub inode: Arc<dyn Inode>,
}

impl Dentry {
    pub fn root(inode: Arc<dyn Inode>) -> Arc<Self> {
        Arc::new(Self {
            name: b"/".to_vec(),
            parent: None,
            inode,
        })
    }
}

/// A filesystem mounted somewhere.
pub struct Mount {
    pub id: u64,
    pub root: Arc<Dentry>,
    /// Where it is mounted; `None` for the root mount.
    pub mountpoint: Option<Path>,
    pub fstype: &'static str,
    pub source: String,
    /// Refuses every change made through it (`EROFS`); `MS_REMOUNT` may change it.
    pub read_only: std::sync::atomic::AtomicBool,
}

impl Mount {
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }
}

/// A location: a dentry in a mount.
#[derive(Clone)]
pub struct Path {
    pub mount: Arc<Mount>,
    pub dentry: Arc<Dentry>,
}

impl Path {
    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.dentry.inode
    }

    fn same(&self, other: &Path) -> bool {
        self.mount.id == other.mount.id && same_inode(&self.dentry.inode, &other.dentry.inode)
    }

    fn is_mount_root(&self) -> bool {
        Arc::ptr_eq(&self.dentry, &self.mount.root)
    }

    /// The absolute name of this location as seen from `root` (for `getcwd`,
    /// `/proc/self/fd`, `/proc/mounts`).
    pub fn name_from(&self, root: &Path) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut at = self.clone();
        loop {
            if at.same(root) {
                break;
            }
            if at.is_mount_root() {
                match &at.mount.mountpoint {
                    Some(mp) => {
                        at = mp.clone();
                        continue;
                    }
                    None => break,
                }
            }
            match &at.dentry.parent {
                Some(parent) => {
                    parts.push(at.dentry.name.clone());
                    at = Path {
                        mount: Arc::clone(&at.mount),
                        dentry: Arc::clone(parent),
                    };
                }
                None => break,
            }
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }
}

/// Whether two inodes are the same object. Filesystems keep one object per inode while
/// it is reachable (procfs makes its own afresh, but nothing mounts inside procfs), and
/// inode numbers alone are not unique in the overlay, whose lower nodes come from several
/// host filesystems.
pub fn same_inode(a: &Arc<dyn Inode>, b: &Arc<dyn Inode>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

/// The mount table of the sandbox (one mount namespace).
pub struct Vfs {
    mounts: Mutex<Vec<Arc<Mount>>>,
    next_id: AtomicU64,
}

impl Vfs {
    /// A namespace whose root mount is `root`.
    pub fn new(root: Arc<dyn Inode>, fstype: &'static str, source: &str) -> Arc<Self> {
        Self::new_with(root, fstype, source, false)
    }

    /// A namespace whose root mount is `root`, read-only (`EROFS` on every change through
    /// it) when `read_only`.
    pub fn new_with(
        root: Arc<dyn Inode>,
        fstype: &'static str,
        source: &str,
        read_only: bool,
    ) -> Arc<Self> {
        let mount = Arc::new(Mount {
            id: 1,
            root: Dentry::root(root),
            mountpoint: None,
            fstype,
            source: source.to_string(),
            read_only: std::sync::atomic::AtomicBool::new(read_only),
        });
        Arc::new(Self {
            mounts: Mutex::new(vec![mount]),
            next_id: AtomicU64::new(2),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Mount>>> {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The root of the namespace.
    pub fn root(&self) -> Path {
        let mount = Arc::clone(&self.lock()[0]);
        Path {
            dentry: Arc::clone(&mount.root),
            mount,
        }
    }

    /// Mounts `fs` on `at`, which must be a directory.
    pub fn mount(
        &self,
        at: &Path,
        fs: Arc<dyn Inode>,
        fstype: &'static str,
        source: &str,
    ) -> SysResult<()> {
        self.mount_with(at, fs, fstype, source, false)
    }

    /// Mounts `fs` on `at`: a directory on a directory, or (a bind of one file) a
    /// non-directory on a non-directory, as Linux allows. A `read_only` mount refuses
    /// every change made through it with `EROFS`.
    pub fn mount_with(
        &self,
        at: &Path,
        fs: Arc<dyn Inode>,
        fstype: &'static str,
        source: &str,
        read_only: bool,
    ) -> SysResult<()> {
        let at_dir = at.inode().mode() & S_IFMT == S_IFDIR;
        let fs_dir = fs.mode() & S_IFMT == S_IFDIR;
        match (at_dir, fs_dir) {
            (true, true) | (false, false) => {}
            (false, true) => return Err(Errno::ENOTDIR),
            (true, false) => return Err(Errno::EISDIR),
        }
        let mount = Arc::new(Mount {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            root: Dentry::root(fs),
            mountpoint: Some(at.clone()),
            fstype,
            source: source.to_string(),
            read_only: std::sync::atomic::AtomicBool::new(read_only),
        });
        self.lock().push(mount);
        Ok(())
    }

    /// Every mount, in mount order.
    /// Unmounts the mount whose root `at` is (`EINVAL` if `at` is no mount's root, or the
    /// root mount). Without `detach`, a mount with mounts on it is `EBUSY`; with it, they
    /// go too.
    pub fn unmount(&self, at: &Path, detach: bool) -> SysResult<()> {
        let mut mounts = self.lock();
        let target = &at.mount;
        if target.mountpoint.is_none() || !Arc::ptr_eq(&at.dentry, &target.root) {
            return Err(Errno::EINVAL);
        }
        // The mounts stacked under it (on a path inside it), transitively.
        let mut gone: Vec<Arc<Mount>> = vec![Arc::clone(target)];
        let mut i = 0;
        while i < gone.len() {
            let parent = Arc::clone(&gone[i]);
            for m in mounts.iter() {
                let on_it = m
                    .mountpoint
                    .as_ref()
                    .is_some_and(|mp| Arc::ptr_eq(&mp.mount, &parent));
                if on_it && !gone.iter().any(|g| Arc::ptr_eq(g, m)) {
                    gone.push(Arc::clone(m));
                }
            }
            i += 1;
        }
        if gone.len() > 1 && !detach {
            return Err(Errno::EBUSY);
        }
        mounts.retain(|m| !gone.iter().any(|g| Arc::ptr_eq(g, m)));
        Ok(())
    }

    /// Changes whether the mount whose root `at` is refuses writes (`MS_REMOUNT`).
    pub fn remount(&self, at: &Path, read_only: bool) -> SysResult<()> {
        if !Arc::ptr_eq(&at.dentry, &at.mount.root) {
            return Err(Errno::EINVAL);
        }
        at.mount.read_only.store(read_only, Ordering::Relaxed);
        Ok(())
    }

    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.lock().clone()
    }

    /// The last mount on `at`, if any.
    fn mounted_on(&self, at: &Path) -> Option<Arc<Mount>> {
        self.lock()
            .iter()
            .rev()
            .find(|m| m.mountpoint.as_ref().is_some_and(|mp| mp.same(at)))
            .cloned()
    }

    /// Follows mounts stacked on `at` down to the top one's root.
    fn cross_down(&self, mut at: Path) -> Path {
        while let Some(m) = self.mounted_on(&at) {
            at = Path {
                dentry: Arc::clone(&m.root),
                mount: m,
            };
        }
        at
    }

    /// `..` of `at`, not above `root`.
    fn parent(&self, at: &Path, root: &Path) -> Path {
        let mut at = at.clone();
        loop {
            if at.same(root) {
                return at;
            }
            if at.is_mount_root() {
                match &at.mount.mountpoint {
                    Some(mp) => {
                        at = mp.clone();
                        continue;
                    }
                    None => return at,
                }
            }
            return match &at.dentry.parent {
                Some(p) => Path {
                    mount: Arc::clone(&at.mount),
                    dentry: Arc::clone(p),
                },
                None => at,
            };
        }
    }
}

/// What a process shares with `CLONE_FS` relatives: its root, working directory and umask.
pub struct FsContext {
    pub vfs: Arc<Vfs>,
    state: Mutex<FsState>,
}

#[derive(Clone)]
struct FsState {
    root: Path,
    cwd: Path,
    umask: u32,
    exe: Option<Path>,
    cmdline: Vec<u8>,
    environ: Vec<u8>,
}

/// `argv` as `/proc/PID/cmdline` shows it: each argument followed by a NUL.
pub fn cmdline(argv: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in argv {
        out.extend_from_slice(a);
        out.push(0);
    }
    out
}

impl FsContext {
    pub fn new(vfs: Arc<Vfs>) -> Arc<Self> {
        let root = vfs.root();
        Arc::new(Self {
            vfs,
            state: Mutex::new(FsState {
                cwd: root.clone(),
                root,
                umask: 0o022,
                exe: None,
                cmdline: Vec::new(),
                environ: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, FsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy for a child without `CLONE_FS`.
    pub fn fork(&self) -> Arc<Self> {
        Arc::new(Self {
            vfs: Arc::clone(&self.vfs),
            state: Mutex::new(self.lock().clone()),
        })
    }

    pub fn root(&self) -> Path {
        self.lock().root.clone()
    }

    pub fn cwd(&self) -> Path {
        self.lock().cwd.clone()
    }

    pub fn set_cwd(&self, cwd: Path) {
        self.lock().cwd = cwd;
    }

    /// `chroot`: lookups start at `root` and `..` stops there.
    pub fn set_root(&self, root: Path) {
        self.lock().root = root;
    }

    pub fn umask(&self) -> u32 {
        self.lock().umask
    }

    /// Sets the umask, returning the old one.
    pub fn set_umask(&self, mask: u32) -> u32 {
        std::mem::replace(&mut self.lock().umask, mask & 0o777)
    }

    /// The running executable, for `/proc/self/exe`.
    pub fn exe(&self) -> Option<Path> {
        self.lock().exe.clone()
    }

    pub fn set_exe(&self, exe: Path) {
        self.lock().exe = Some(exe);
    }

    /// The arguments of the last `execve`, for `/proc/self/cmdline`. (A snapshot: a
    /// program that rewrites its argv in memory is not reflected.)
    pub fn cmdline(&self) -> Vec<u8> {
        self.lock().cmdline.clone()
    }

    pub fn set_cmdline(&self, cmdline: Vec<u8>) {
        self.lock().cmdline = cmdline;
    }

    /// The environment of the last `execve`, for `/proc/self/environ` (NUL-terminated
    /// strings; a snapshot, as `cmdline`).
    pub fn environ(&self) -> Vec<u8> {
        self.lock().environ.clone()
    }

    pub fn set_environ(&self, environ: Vec<u8>) {
        self.lock().environ = environ;
    }

    /// Resolves `path` from `start` (`None`: the working directory, or the root for an
    /// absolute path). `follow`: whether a final symlink is followed.
    pub fn lookup(
        &self,
        cx: &Cx,
        start: Option<&Path>,
        path: &[u8],
        follow: bool,
    ) -> SysResult<Path> {
        let (root, base) = self.start(start);
        resolve(&self.vfs, cx, &root, base, path, follow)
    }

    /// Checks that `path` resolves within `restrict` (`openat2`'s `RESOLVE_*`); the
    /// resolved path, or `None` if only its last component is missing and that is allowed.
    pub fn check_restricted(
        &self,
        cx: &Cx,
        start: Option<&Path>,
        path: &[u8],
        follow: bool,
        restrict: Restrict,
    ) -> SysResult<Option<Path>> {
        let (root, base) = self.start(start);
        walk(&self.vfs, cx, &root, base, path, follow, restrict)
    }

    /// Resolves all but the last component of `path`: the directory, and the last name
    /// (`.`/`..` included as they are, for the caller to refuse), and whether the path
    /// ended in a slash.
    pub fn lookup_parent(
        &self,
        cx: &Cx,
        start: Option<&Path>,
        path: &[u8],
    ) -> SysResult<(Path, Vec<u8>, bool)> {
        check_path(path)?;
        let trimmed_len = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
        let trailing = trimmed_len < path.len();
        let trimmed = &path[..trimmed_len];
        if trimmed.is_empty() {
            // "/" or "///": the root itself has no parent entry.
            let (root, _) = self.start(start);
            return Ok((root, b".".to_vec(), true));
        }
        let (dir_part, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let (root, base) = self.start(start);
        let dir = if dir_part.is_empty() {
            base
        } else {
            resolve(&self.vfs, cx, &root, base, dir_part, true)?
        };
        if dir.inode().mode() & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        Ok((dir, name.to_vec(), trailing))
    }

    fn start(&self, start: Option<&Path>) -> (Path, Path) {
        let state = self.lock();
        let base = start.cloned().unwrap_or_else(|| state.cwd.clone());
        (state.root.clone(), base)
    }
}

fn check_path(path: &[u8]) -> SysResult<()> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Looks up one `name` in directory `dir`: search permission, the child, and any mount
/// on it. `.` and `..` are handled here too.
pub fn step(vfs: &Vfs, cx: &Cx, root: &Path, dir: &Path, name: &[u8]) -> SysResult<Path> {
    let stat = dir.inode().stat()?;
    if stat.mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    permitted(&stat, &cx.creds, MAY_EXEC)?;
    match name {
        b"." | b"" => Ok(dir.clone()),
        b".." => Ok(vfs.parent(dir, root)),
        _ => {
            if name.len() > NAME_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            let inode = dir.inode().lookup(cx, name)?;
            let child = Path {
                mount: Arc::clone(&dir.mount),
                dentry: Arc::new(Dentry {
                    name: name.to_vec(),
                    parent: Some(Arc::clone(&dir.dentry)),
                    inode,
                }),
            };
            Ok(vfs.cross_down(child))
        }
    }
}

/// Path resolution proper.
pub fn resolve(
    vfs: &Vfs,
    cx: &Cx,
    root: &Path,
    base: Path,
    path: &[u8],
    follow: bool,
) -> SysResult<Path> {
    walk(vfs, cx, root, base, path, follow, Restrict::default())?.ok_or(Errno::ENOENT)
}

/// `openat2`'s `RESOLVE_*` restrictions on a resolution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restrict {
    /// `RESOLVE_NO_XDEV`: no mount point crossed (`EXDEV`).
    pub no_xdev: bool,
    /// `RESOLVE_NO_MAGICLINKS`: no `/proc` magic link followed (`ELOOP`).
    pub no_magiclinks: bool,
    /// `RESOLVE_NO_SYMLINKS`: no symlink followed at all (`ELOOP`).
    pub no_symlinks: bool,
    /// `RESOLVE_BENEATH`: never above the starting directory, no absolute path or
    /// symlink, no magic link (`EXDEV`).
    pub beneath: bool,
    /// `RESOLVE_IN_ROOT` (the root is the starting directory): no magic link (`EXDEV`).
    pub in_root: bool,
    /// A missing last component is not an error (`O_CREAT` checks the path it will make).
    pub missing_last_ok: bool,
}

/// Resolves `path` under `restrict`; `Ok(None)` when only the last component is missing
/// and `restrict.missing_last_ok`.
pub fn walk(
    vfs: &Vfs,
    cx: &Cx,
    root: &Path,
    base: Path,
    path: &[u8],
    follow: bool,
    restrict: Restrict,
) -> SysResult<Option<Path>> {
    check_path(path)?;
    if restrict.beneath && path[0] == b'/' {
        return Err(Errno::EXDEV);
    }
    let mut links = 0usize;
    let mut at = if path[0] == b'/' { root.clone() } else { base };
    // How many directories below the starting one `at` is (for RESOLVE_BENEATH).
    let mut depth = 0usize;
    let mut pending = Components::new(path);
    let trailing_slash = path.ends_with(b"/");
    while let Some((name, is_last)) = pending.next() {
        let next = match step(vfs, cx, root, &at, name) {
            Err(Errno::ENOENT) if is_last && restrict.missing_last_ok => return Ok(None),
            other => other?,
        };
        if restrict.no_xdev && !Arc::ptr_eq(&next.mount, &at.mount) {
            return Err(Errno::EXDEV);
        }
        let mode = next.inode().mode();
        let must_follow = !is_last || follow || trailing_slash;
        if mode & S_IFMT == S_IFLNK && must_follow && name != b"." && name != b".." {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            if restrict.no_symlinks {
                return Err(Errno::ELOOP);
            }
            if let Some(target) = next.inode().follow_magic(cx) {
                if restrict.beneath || restrict.in_root {
                    return Err(Errno::EXDEV);
                }
                if restrict.no_magiclinks {
                    return Err(Errno::ELOOP);
                }
                at = target?;
                continue;
            }
            let target = next.inode().readlink(cx)?;
            if target.is_empty() {
                return Err(Errno::ENOENT);
            }
            if target[0] == b'/' {
                if restrict.beneath {
                    return Err(Errno::EXDEV);
                }
                at = root.clone();
            }
            pending.push_link(target, is_last);
            continue;
        }
        if restrict.beneath {
            match name {
                b"." => {}
                b".." if depth == 0 => return Err(Errno::EXDEV),
                b".." => depth -= 1,
                _ => depth += 1,
            }
        }
        at = next;
    }
    if trailing_slash && at.inode().mode() & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    Ok(Some(at))
}

/// The components a walk has still to take: the rest of the path's, under the rest of
/// the targets of the symlinks met on the way (a target is walked before what follows
/// the link). Components are slices of those texts: a walk copies no name.
struct Components<'a> {
    path: Cursor<&'a [u8]>,
    /// Targets being walked, innermost last.
    links: Vec<Cursor<Vec<u8>>>,
}

impl<'a> Components<'a> {
    fn new(path: &'a [u8]) -> Self {
        Self {
            path: Cursor::new(path, true),
            links: Vec::new(),
        }
    }

    /// Walks `target` next; `last`: the link was the final component of the path (so
    /// the target's final component is too).
    fn push_link(&mut self, target: Vec<u8>, last: bool) {
        self.links.push(Cursor::new(target, last));
    }

    /// The next component, and whether it is the final one of the original path.
    fn next(&mut self) -> Option<(&[u8], bool)> {
        while self.links.last().is_some_and(Cursor::is_done) {
            self.links.pop();
        }
        match self.links.last_mut() {
            Some(link) => link.next(),
            None => self.path.next(),
        }
    }
}

/// A path text and how far into it a walk is.
struct Cursor<T> {
    text: T,
    at: usize,
    /// The text's final component is the final component of the original path.
    last: bool,
}

impl<T: AsRef<[u8]>> Cursor<T> {
    fn new(text: T, last: bool) -> Self {
        Self { text, at: 0, last }
    }

    fn is_done(&self) -> bool {
        self.text.as_ref()[self.at..].iter().all(|&b| b == b'/')
    }

    fn next(&mut self) -> Option<(&[u8], bool)> {
        let text = self.text.as_ref();
        let start = self.at + text[self.at..].iter().position(|&b| b != b'/')?;
        let end = text[start..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(text.len(), |i| start + i);
        self.at = end;
        let is_last = self.last && text[end..].iter().all(|&b| b == b'/');
        Some((&text[start..end], is_last))
    }
}

#[cfg(test)]
mod tests {
    use platform::MemoryFile;

    use super::*;
    use crate::kernel::Credentials;
    use crate::vfs::memfs::MemFs;
    use crate::vfs::{NewNode, S_IFREG};

    fn node(mode: u32) -> NewNode {
        NewNode::Node { mode, rdev: 0 }
    }

    /// `/a/b/f`, `/a/up -> ..`, `/loop1 <-> /loop2`, `/abs -> /a/b`, `/locked` (0700),
    /// and a second tmpfs mounted on `/mnt` holding `/mnt/inner`.
    fn tree() -> (Arc<FsContext>, Cx) {
        let memory = Arc::new(MemoryFile::new(1 << 24).unwrap());
        let root = MemFs::tmpfs(&memory, 0o755);
        let cx = Cx::root();
        let a = root.create(&cx, b"a", node(S_IFDIR | 0o755)).unwrap();
        let b = a.create(&cx, b"b", node(S_IFDIR | 0o755)).unwrap();
        b.create(&cx, b"f", node(S_IFREG | 0o644)).unwrap();
        a.create(&cx, b"up", NewNode::Symlink(b"..".to_vec()))
            .unwrap();
        root.create(&cx, b"loop1", NewNode::Symlink(b"loop2".to_vec()))
            .unwrap();
        root.create(&cx, b"loop2", NewNode::Symlink(b"loop1".to_vec()))
            .unwrap();
        root.create(&cx, b"abs", NewNode::Symlink(b"/a/b".to_vec()))
            .unwrap();
        root.create(&cx, b"locked", node(S_IFDIR | 0o700)).unwrap();
        root.create(&cx, b"mnt", node(S_IFDIR | 0o755)).unwrap();
        let vfs = Vfs::new(root, "tmpfs", "none");
        let fs = FsContext::new(Arc::clone(&vfs));
        let other = MemFs::tmpfs(&memory, 0o755);
        other.create(&cx, b"inner", node(S_IFREG | 0o644)).unwrap();
        let mnt = fs.lookup(&cx, None, b"/mnt", true).unwrap();
        vfs.mount(&mnt, other, "tmpfs", "other").unwrap();
        (fs, cx)
    }

    fn name(fs: &FsContext, cx: &Cx, path: &[u8], follow: bool) -> SysResult<Vec<u8>> {
        fs.lookup(cx, None, path, follow)
            .map(|p| p.name_from(&fs.root()))
    }

    #[test]
    fn symlinks_dotdot_and_mounts() {
        let (fs, cx) = tree();
        assert_eq!(name(&fs, &cx, b"/a/b/f", true).unwrap(), b"/a/b/f");
        assert_eq!(
            name(&fs, &cx, b"/a/up/a/b/../b/./f", true).unwrap(),
            b"/a/b/f"
        );
        assert_eq!(name(&fs, &cx, b"/abs/f", true).unwrap(), b"/a/b/f");
        assert_eq!(name(&fs, &cx, b"/abs", false).unwrap(), b"/abs");
        assert_eq!(
            name(&fs, &cx, b"/..", true).unwrap(),
            b"/",
            "no way above the root"
        );
        assert_eq!(name(&fs, &cx, b"/mnt/inner", true).unwrap(), b"/mnt/inner");
        assert_eq!(
            name(&fs, &cx, b"/mnt/../a", true).unwrap(),
            b"/a",
            ".. leaves the mount"
        );
        assert_eq!(name(&fs, &cx, b"/loop1", false).unwrap(), b"/loop1");
        assert_eq!(name(&fs, &cx, b"/loop1", true).err(), Some(Errno::ELOOP));
        assert_eq!(name(&fs, &cx, b"/loop1/x", false).err(), Some(Errno::ELOOP));
    }

    #[test]
    fn components_come_in_order_and_a_link_target_before_the_rest() {
        let mut c = Components::new(b"//a//b/c/");
        let mut seen: Vec<(Vec<u8>, bool)> = Vec::new();
        while let Some((name, last)) = c.next() {
            let name = name.to_vec();
            seen.push((name.clone(), last));
            if name == b"a" {
                c.push_link(b"x/y//".to_vec(), last);
            }
            if name == b"c" {
                c.push_link(b"/".to_vec(), last);
                c.push_link(b"z".to_vec(), last);
            }
        }
        let expect: Vec<(Vec<u8>, bool)> = [
            ("a", false),
            ("x", false),
            ("y", false),
            ("b", false),
            ("c", true),
            ("z", true),
        ]
        .iter()
        .map(|&(n, l)| (n.as_bytes().to_vec(), l))
        .collect();
        assert_eq!(seen, expect);
    }

    #[test]
    fn errnos() {
        let (fs, cx) = tree();
        assert_eq!(name(&fs, &cx, b"", true).err(), Some(Errno::ENOENT));
        assert_eq!(name(&fs, &cx, b"/nope", true).err(), Some(Errno::ENOENT));
        assert_eq!(name(&fs, &cx, b"/a/b/f/", true).err(), Some(Errno::ENOTDIR));
        assert_eq!(
            name(&fs, &cx, b"/a/b/f/x", true).err(),
            Some(Errno::ENOTDIR)
        );
        assert_eq!(name(&fs, &cx, b"/a/b/", true).unwrap(), b"/a/b");
        let long = vec![b'x'; NAME_MAX + 1];
        assert_eq!(name(&fs, &cx, &long, true).err(), Some(Errno::ENAMETOOLONG));
        let huge = vec![b'/'; PATH_MAX];
        assert_eq!(name(&fs, &cx, &huge, true).err(), Some(Errno::ENAMETOOLONG));
        let user = Cx {
            creds: Credentials::new(1000, 1000),
            ..Cx::root()
        };
        assert!(
            name(&fs, &cx, b"/locked/.", true).is_ok(),
            "root searches anything"
        );
        assert_eq!(
            name(&fs, &user, b"/locked/x", true).err(),
            Some(Errno::EACCES)
        );
    }

    #[test]
    fn parents_and_relative_lookups() {
        let (fs, cx) = tree();
        let b = fs.lookup(&cx, None, b"/a/b", true).unwrap();
        fs.set_cwd(b.clone());
        assert_eq!(name(&fs, &cx, b"f", true).unwrap(), b"/a/b/f");
        assert_eq!(name(&fs, &cx, b"../up", false).unwrap(), b"/a/up");
        let (dir, last, trailing) = fs.lookup_parent(&cx, None, b"../b/new/").unwrap();
        assert_eq!(
            (dir.name_from(&fs.root()), last, trailing),
            (b"/a/b".to_vec(), b"new".to_vec(), true)
        );
        let (dir, last, _) = fs.lookup_parent(&cx, Some(&fs.root()), b"abs/f").unwrap();
        assert_eq!(
            (dir.name_from(&fs.root()), last),
            (b"/a/b".to_vec(), b"f".to_vec())
        );
        assert_eq!(
            fs.lookup_parent(&cx, None, b"f/x").err(),
            Some(Errno::ENOTDIR)
        );
    }

    #[test]
    fn a_file_mounts_on_a_file_and_read_only_mounts_say_so() {
        let (fs, cx) = tree();
        let memory = Arc::new(MemoryFile::new(1 << 24).unwrap());
        let other = MemFs::tmpfs(&memory, 0o755);
        let file = other.create(&cx, b"bound", node(S_IFREG | 0o600)).unwrap();
        let at = fs.lookup(&cx, None, b"/a/b/f", true).unwrap();
        fs.vfs
            .mount_with(&at, Arc::clone(&file), "bind", "x", true)
            .unwrap();
        let seen = fs.lookup(&cx, None, b"/a/b/f", true).unwrap();
        assert!(
            same_inode(seen.inode(), &file),
            "the file is mounted over f"
        );
        assert!(seen.mount.is_read_only());
        assert_eq!(seen.name_from(&fs.root()), b"/a/b/f");
        let dir = fs.lookup(&cx, None, b"/a", true).unwrap();
        assert_eq!(
            fs.vfs.mount_with(&dir, file, "bind", "x", false).err(),
            Some(Errno::EISDIR)
        );
        let f = fs.lookup(&cx, None, b"/mnt/inner", true).unwrap();
        assert_eq!(
            fs.vfs
                .mount(&f, MemFs::tmpfs(&memory, 0o755), "tmpfs", "t")
                .err(),
            Some(Errno::ENOTDIR)
        );
    }
}
