//! The namespace: mkdir, mknod, rmdir, unlink, rename, link, symlink, getdents,
//! getcwd, chdir, fchdir.

use super::fs::{
    cx, dir_of, lookup_at, read_path, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW,
};
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::{CAP_FOWNER, CAP_MKNOD, CAP_SYS_CHROOT};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::inotify;
use crate::vfs::path::{same_inode, step};
use crate::vfs::{
    permitted, Cx, DirEntry, NewNode, Path, MAY_EXEC, MAY_WRITE, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG,
    S_IFSOCK, S_ISVTX,
};

/// `renameat2` flag: swap the two names.
const RENAME_EXCHANGE: u32 = 2;

/// The parent directory and last name of `path` relative to `dirfd`.
fn parent_at(task: &Task, cx: &Cx, dirfd: i32, path: UserAddr) -> SysResult<(Path, Vec<u8>, bool)> {
    let name = read_path(task, path)?;
    let start = dir_of(task, dirfd, &name)?;
    task.fs.lookup_parent(cx, start.as_ref(), &name)
}

/// Write and search permission on a directory about to change, and a writable mount.
fn may_modify(cx: &Cx, dir: &Path) -> SysResult<()> {
    let stat = dir.inode().stat()?;
    permitted(&stat, &cx.creds, MAY_WRITE | MAY_EXEC)?;
    if dir.mount.is_read_only() || dir.inode().read_only() {
        return Err(Errno::EROFS);
    }
    Ok(())
}

/// The sticky-bit rule for removing or replacing `victim` in `dir`.
fn may_delete(cx: &Cx, dir: &Path, victim: &Path) -> SysResult<()> {
    let d = dir.inode().stat()?;
    if d.mode & S_ISVTX == 0 || cx.creds.capable(CAP_FOWNER) {
        return Ok(());
    }
    let v = victim.inode().stat()?;
    if cx.creds.fsuid == d.uid || cx.creds.fsuid == v.uid {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

fn is_mountpoint(task: &Task, at: &Path) -> bool {
    task.fs.vfs.mounts().iter().any(|m| {
        m.mountpoint
            .as_ref()
            .is_some_and(|mp| mp.mount.id == at.mount.id && same_inode(mp.inode(), at.inode()))
    })
}

pub fn mkdir(task: &mut Task, path: UserAddr, mode: u32) -> SysResult<i64> {
    mkdirat(task, AT_FDCWD, path, mode)
}

pub fn mkdirat(task: &mut Task, dirfd: i32, path: UserAddr, mode: u32) -> SysResult<i64> {
    let cx = cx(task);
    let (dir, name, _) = parent_at(task, &cx, dirfd, path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    may_modify(&cx, &dir)?;
    let mode = S_IFDIR | (mode & 0o1777 & !task.fs.umask());
    dir.inode()
        .create(&cx, &name, NewNode::Node { mode, rdev: 0 })?;
    inotify::entry_event(&**dir.inode(), &name, inotify::IN_CREATE, true, 0);
    Ok(0)
}

pub fn mknod(task: &mut Task, path: UserAddr, mode: u32, dev: u64) -> SysResult<i64> {
    mknodat(task, AT_FDCWD, path, mode, dev)
}

pub fn mknodat(task: &mut Task, dirfd: i32, path: UserAddr, mode: u32, dev: u64) -> SysResult<i64> {
    let kind = match mode & S_IFMT {
        0 => S_IFREG,
        k @ (S_IFREG | S_IFIFO | S_IFSOCK) => k,
        crate::vfs::S_IFCHR | crate::vfs::S_IFBLK if task.creds.capable(CAP_MKNOD) => mode & S_IFMT,
        crate::vfs::S_IFCHR | crate::vfs::S_IFBLK => return Err(Errno::EPERM),
        S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    let cx = cx(task);
    let (dir, name, _) = parent_at(task, &cx, dirfd, path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    may_modify(&cx, &dir)?;
    let mode = kind | (mode & 0o7777 & !task.fs.umask());
    dir.inode()
        .create(&cx, &name, NewNode::Node { mode, rdev: dev })?;
    inotify::entry_event(&**dir.inode(), &name, inotify::IN_CREATE, false, 0);
    Ok(0)
}

pub fn rmdir(task: &mut Task, path: UserAddr) -> SysResult<i64> {
    let cx = cx(task);
    let (dir, name, _) = parent_at(task, &cx, AT_FDCWD, path)?;
    remove(task, &cx, &dir, &name, true, false)
}

pub fn unlink(task: &mut Task, path: UserAddr) -> SysResult<i64> {
    unlinkat(task, AT_FDCWD, path, 0)
}

pub fn unlinkat(task: &mut Task, dirfd: i32, path: UserAddr, flags: i32) -> SysResult<i64> {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let cx = cx(task);
    let (dir, name, trailing) = parent_at(task, &cx, dirfd, path)?;
    remove(task, &cx, &dir, &name, flags & AT_REMOVEDIR != 0, trailing)
}

fn remove(
    task: &Task,
    cx: &Cx,
    dir: &Path,
    name: &[u8],
    is_dir: bool,
    trailing: bool,
) -> SysResult<i64> {
    match (name, is_dir) {
        (b".", true) => return Err(Errno::EINVAL),
        (b"..", true) => return Err(Errno::ENOTEMPTY),
        (b"." | b"..", false) => return Err(Errno::EISDIR),
        _ => {}
    }
    let victim = step(&task.fs.vfs, cx, &task.fs.root(), dir, name)?;
    let victim_is_dir = victim.inode().mode() & S_IFMT == S_IFDIR;
    if !is_dir && trailing {
        return Err(if victim_is_dir {
            Errno::EISDIR
        } else {
            Errno::ENOTDIR
        });
    }
    may_modify(cx, dir)?;
    may_delete(cx, dir, &victim)?;
    if victim_is_dir && (is_mountpoint(task, &victim) || victim.mount.id != dir.mount.id) {
        return Err(Errno::EBUSY);
    }
    dir.inode().unlink(cx, name, is_dir)?;
    inotify::removed(&**dir.inode(), name, &**victim.inode());
    Ok(0)
}

pub fn rename(task: &mut Task, old: UserAddr, new: UserAddr) -> SysResult<i64> {
    renameat2(task, AT_FDCWD, old, AT_FDCWD, new, 0)
}

pub fn renameat(
    task: &mut Task,
    olddir: i32,
    old: UserAddr,
    newdir: i32,
    new: UserAddr,
) -> SysResult<i64> {
    renameat2(task, olddir, old, newdir, new, 0)
}

pub fn renameat2(
    task: &mut Task,
    olddir: i32,
    old: UserAddr,
    newdir: i32,
    new: UserAddr,
    flags: u32,
) -> SysResult<i64> {
    let cx = cx(task);
    let (odir, oname, otrail) = parent_at(task, &cx, olddir, old)?;
    let (ndir, nname, ntrail) = parent_at(task, &cx, newdir, new)?;
    if [&oname[..], &nname[..]]
        .iter()
        .any(|n| *n == b"." || *n == b"..")
    {
        return Err(Errno::EBUSY);
    }
    let root = task.fs.root();
    let source = step(&task.fs.vfs, &cx, &root, &odir, &oname)?;
    if (otrail || ntrail) && source.inode().mode() & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    if odir.mount.id != ndir.mount.id || odir.inode().dev() != ndir.inode().dev() {
        return Err(Errno::EXDEV);
    }
    may_modify(&cx, &odir)?;
    may_modify(&cx, &ndir)?;
    may_delete(&cx, &odir, &source)?;
    let target = step(&task.fs.vfs, &cx, &root, &ndir, &nname).ok();
    if let Some(target) = &target {
        may_delete(&cx, &ndir, target)?;
        if is_mountpoint(task, target) {
            return Err(Errno::EBUSY);
        }
    }
    if is_mountpoint(task, &source) {
        return Err(Errno::EBUSY);
    }
    odir.inode()
        .rename(&cx, &oname, ndir.inode(), &nname, flags)?;
    if inotify::active() {
        let (od, nd) = (&**odir.inode(), &**ndir.inode());
        match &target {
            Some(t) if same_inode(t.inode(), source.inode()) => {}
            Some(t) if flags & RENAME_EXCHANGE != 0 => {
                inotify::rename_event(od, &oname, nd, &nname, &**source.inode(), None);
                inotify::rename_event(nd, &nname, od, &oname, &**t.inode(), None);
            }
            t => {
                let replaced = t.as_ref().map(|t| &**t.inode());
                inotify::rename_event(od, &oname, nd, &nname, &**source.inode(), replaced);
            }
        }
    }
    Ok(0)
}

pub fn link(task: &mut Task, old: UserAddr, new: UserAddr) -> SysResult<i64> {
    linkat(task, AT_FDCWD, old, AT_FDCWD, new, 0)
}

pub fn linkat(
    task: &mut Task,
    olddir: i32,
    old: UserAddr,
    newdir: i32,
    new: UserAddr,
    flags: i32,
) -> SysResult<i64> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let cx = cx(task);
    let nofollow = if flags & AT_SYMLINK_FOLLOW != 0 {
        0
    } else {
        super::fs::AT_SYMLINK_NOFOLLOW
    };
    let source = lookup_at(task, olddir, old, nofollow | (flags & AT_EMPTY_PATH))?;
    let (ndir, nname, trailing) = parent_at(task, &cx, newdir, new)?;
    if nname == b"." || nname == b".." || trailing {
        return Err(Errno::EEXIST);
    }
    if source.inode().mode() & S_IFMT == S_IFDIR {
        return Err(Errno::EPERM);
    }
    if source.mount.id != ndir.mount.id {
        return Err(Errno::EXDEV);
    }
    may_modify(&cx, &ndir)?;
    ndir.inode().link(&nname, source.inode())?;
    inotify::object_event(&**source.inode(), None, inotify::IN_ATTRIB);
    inotify::entry_event(&**ndir.inode(), &nname, inotify::IN_CREATE, false, 0);
    Ok(0)
}

pub fn symlink(task: &mut Task, target: UserAddr, path: UserAddr) -> SysResult<i64> {
    symlinkat(task, target, AT_FDCWD, path)
}

pub fn symlinkat(task: &mut Task, target: UserAddr, dirfd: i32, path: UserAddr) -> SysResult<i64> {
    let target = read_path(task, target)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let cx = cx(task);
    let (dir, name, _) = parent_at(task, &cx, dirfd, path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    may_modify(&cx, &dir)?;
    dir.inode().create(&cx, &name, NewNode::Symlink(target))?;
    inotify::entry_event(&**dir.inode(), &name, inotify::IN_CREATE, false, 0);
    Ok(0)
}

/// Writes directory entries with `encode` until `count` bytes are used.
fn dents(
    task: &Task,
    fd: i32,
    buf: UserAddr,
    count: u32,
    encode: fn(&DirEntry, u64) -> Vec<u8>,
) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut out: Vec<u8> = Vec::new();
    let mut too_small = false;
    file.getdents(&mut |e, next| {
        let rec = encode(e, next);
        if out.len() + rec.len() > count {
            too_small = out.is_empty();
            return false;
        }
        out.extend_from_slice(&rec);
        true
    })?;
    if too_small {
        return Err(Errno::EINVAL);
    }
    task.mm.copy_out(buf, &out)?;
    Ok(out.len() as i64)
}

fn dirent64(e: &DirEntry, next: u64) -> Vec<u8> {
    let len = (19 + e.name.len() + 1).next_multiple_of(8);
    let mut rec = Vec::with_capacity(len);
    rec.extend_from_slice(&e.ino.to_ne_bytes());
    rec.extend_from_slice(&next.to_ne_bytes());
    rec.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    rec.push(e.kind);
    rec.extend_from_slice(&e.name);
    rec.resize(len, 0);
    rec
}

fn dirent(e: &DirEntry, next: u64) -> Vec<u8> {
    // ino, off, reclen, name, NUL, (padding), d_type as the last byte.
    let len = (18 + e.name.len() + 2).next_multiple_of(8);
    let mut rec = Vec::with_capacity(len);
    rec.extend_from_slice(&e.ino.to_ne_bytes());
    rec.extend_from_slice(&next.to_ne_bytes());
    rec.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    rec.extend_from_slice(&e.name);
    rec.resize(len - 1, 0);
    rec.push(e.kind);
    rec
}

pub fn getdents64(task: &mut Task, fd: i32, buf: UserAddr, count: u32) -> SysResult<i64> {
    dents(task, fd, buf, count, dirent64)
}

pub fn getdents(task: &mut Task, fd: i32, buf: UserAddr, count: u32) -> SysResult<i64> {
    dents(task, fd, buf, count, dirent)
}

pub fn getcwd(task: &mut Task, buf: UserAddr, size: usize) -> SysResult<i64> {
    let cwd = task.fs.cwd();
    if cwd.inode().stat()?.nlink == 0 {
        // The working directory was removed.
        return Err(Errno::ENOENT);
    }
    let mut name = cwd.name_from(&task.fs.root());
    name.push(0);
    if name.len() > size {
        return Err(Errno::ERANGE);
    }
    task.mm.copy_out(buf, &name)?;
    Ok(name.len() as i64)
}

fn set_cwd(task: &Task, at: Path) -> SysResult<i64> {
    let stat = at.inode().stat()?;
    if stat.mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    permitted(&stat, &task.creds, MAY_EXEC)?;
    task.fs.set_cwd(at);
    Ok(0)
}

pub fn chdir(task: &mut Task, path: UserAddr) -> SysResult<i64> {
    let at = lookup_at(task, AT_FDCWD, path, 0)?;
    set_cwd(task, at)
}

pub fn fchdir(task: &mut Task, fd: i32) -> SysResult<i64> {
    let file = task.fds.get(fd)?;
    let at = file.path().cloned().ok_or(Errno::ENOTDIR)?;
    set_cwd(task, at)
}

pub fn chroot(task: &mut Task, path: UserAddr) -> SysResult<i64> {
    let at = lookup_at(task, AT_FDCWD, path, 0)?;
    let stat = at.inode().stat()?;
    if stat.mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    permitted(&stat, &task.creds, MAY_EXEC)?;
    if !task.creds.capable(CAP_SYS_CHROOT) {
        return Err(Errno::EPERM);
    }
    task.fs.set_root(at);
    Ok(0)
}
