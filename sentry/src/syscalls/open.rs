//! Opening and closing: open, openat, creat, close, close_range.

use std::sync::Arc;

use super::fs::{cx, dir_of, read_path, AT_FDCWD};
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::file::{
    FileDescription, InodeFile, O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_EXCL, O_LARGEFILE,
    O_NOCTTY, O_NOFOLLOW, O_PATH, O_RDONLY, O_RDWR, O_TMPFILE, O_TRUNC, O_WRONLY,
};
use crate::vfs::inotify;
use crate::vfs::path::{step, Restrict};
use crate::vfs::{
    permitted, Cx, NewNode, Path, SetAttr, MAY_EXEC, MAY_READ, MAY_WRITE, S_IFDIR, S_IFLNK, S_IFMT,
    S_IFREG,
};

const RLIMIT_NOFILE: u32 = 7;
const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// The `RLIMIT_NOFILE` soft limit.
pub fn nofile_limit(task: &Task) -> u64 {
    task.group
        .limits()
        .get(RLIMIT_NOFILE)
        .map_or(1024, |l| l.cur)
}

/// Installs `file` at the lowest free descriptor.
pub fn install(task: &Task, file: Arc<dyn FileDescription>, cloexec: bool) -> SysResult<i64> {
    let fd = task.fds.insert(file, 0, cloexec, nofile_limit(task))?;
    Ok(i64::from(fd))
}

pub fn open(task: &mut Task, path: UserAddr, flags: i32, mode: u32) -> SysResult<i64> {
    openat(task, AT_FDCWD, path, flags, mode)
}

pub fn creat(task: &mut Task, path: UserAddr, mode: u32) -> SysResult<i64> {
    openat(task, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode)
}

/// Checks the access an open asks for against the inode.
fn may_open(cx: &Cx, at: &Path, flags: i32) -> SysResult<()> {
    let stat = at.inode().stat()?;
    let kind = stat.mode & S_IFMT;
    if kind == S_IFLNK {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && kind != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    let acc = flags & O_ACCMODE;
    let writes = acc == O_WRONLY || acc == O_RDWR;
    if kind == S_IFDIR && (writes || flags & O_TRUNC != 0 && flags & O_CREAT != 0) {
        return Err(Errno::EISDIR);
    }
    let mut want = 0;
    if acc == O_RDONLY || acc == O_RDWR {
        want |= MAY_READ;
    }
    if writes || flags & O_TRUNC != 0 {
        want |= MAY_WRITE;
    }
    permitted(&stat, &cx.creds, want)?;
    if (writes || flags & O_TRUNC != 0) && (at.mount.is_read_only() || at.inode().read_only()) {
        return Err(Errno::EROFS);
    }
    Ok(())
}

/// The filesystem view an open resolves in: the caller context's (`openat2`'s
/// `RESOLVE_IN_ROOT` gives one rooted at the directory), else the task's.
fn fs_of<'a>(task: &'a Task, cx: &'a Cx) -> &'a crate::vfs::FsContext {
    cx.fs.as_deref().unwrap_or(&task.fs)
}

/// Creates a regular file `name` in `dir` for `open(O_CREAT)`.
fn create_file(task: &Task, cx: &Cx, dir: &Path, name: &[u8], mode: u32) -> SysResult<Path> {
    let stat = dir.inode().stat()?;
    permitted(&stat, &cx.creds, MAY_WRITE | MAY_EXEC)?;
    if dir.mount.is_read_only() || dir.inode().read_only() {
        return Err(Errno::EROFS);
    }
    let mode = S_IFREG | (mode & 0o7777 & !fs_of(task, cx).umask());
    let inode = dir
        .inode()
        .create(cx, name, NewNode::Node { mode, rdev: 0 })?;
    inotify::entry_event(&**dir.inode(), name, inotify::IN_CREATE, false, 0);
    Ok(Path {
        mount: Arc::clone(&dir.mount),
        dentry: Arc::new(crate::vfs::path::Dentry {
            name: name.to_vec(),
            parent: Some(Arc::clone(&dir.dentry)),
            inode,
        }),
    })
}

pub fn openat(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    flags: i32,
    mode: u32,
) -> SysResult<i64> {
    let name = read_path(task, path)?;
    let cx = cx(task);
    let file = open_path(task, &cx, dirfd, &name, flags, mode)?;
    super::tty::acquire_on_open(task, &*file, flags);
    install(task, file, flags & O_CLOEXEC != 0)
}

/// The open proper, shared with `execve`-time and test callers.
pub fn open_path(
    task: &Task,
    cx: &Cx,
    dirfd: i32,
    name: &[u8],
    flags: i32,
    mode: u32,
) -> SysResult<Arc<dyn FileDescription>> {
    // On x86-64 every open but an O_PATH one is a large-file open (`force_o_largefile`).
    if flags & O_TMPFILE == O_TMPFILE {
        return open_tmpfile(task, cx, dirfd, name, flags | O_LARGEFILE, mode);
    }
    let flags = if flags & O_PATH != 0 {
        flags & (O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW)
    } else {
        flags | O_LARGEFILE
    };
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = dir_of(task, dirfd, name)?;
    let follow = flags & O_NOFOLLOW == 0;
    let mut created = false;
    let at = if flags & O_CREAT != 0 && flags & O_PATH == 0 {
        let (dir, last, trailing) = fs_of(task, cx).lookup_parent(cx, start.as_ref(), name)?;
        if trailing || last == b"." || last == b".." {
            return Err(Errno::EISDIR);
        }
        match step(
            &fs_of(task, cx).vfs,
            cx,
            &fs_of(task, cx).root(),
            &dir,
            &last,
        ) {
            Ok(existing) => {
                if flags & O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                if existing.inode().mode() & S_IFMT == S_IFLNK && follow {
                    match fs_of(task, cx).lookup(cx, Some(&dir), &last, true) {
                        Err(Errno::ENOENT) => {
                            // A dangling symlink: O_CREAT makes its target, as Linux.
                            let (at, made) = create_through_link(task, cx, existing, mode)?;
                            created = made;
                            at
                        }
                        other => other?,
                    }
                } else {
                    existing
                }
            }
            Err(Errno::ENOENT) => {
                created = true;
                create_file(task, cx, &dir, &last, mode)?
            }
            Err(e) => return Err(e),
        }
    } else {
        fs_of(task, cx).lookup(cx, start.as_ref(), name, follow)?
    };
    if flags & O_PATH != 0 {
        if flags & O_DIRECTORY != 0 && at.inode().mode() & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        return Ok(Arc::new(InodeFile::new(cx, at, flags)));
    }
    if !created {
        may_open(cx, &at, flags)?;
    }
    let acc = flags & O_ACCMODE;
    let is_reg = at.inode().mode() & S_IFMT == S_IFREG;
    if is_reg && (acc == O_WRONLY || acc == O_RDWR || flags & O_TRUNC != 0) {
        at.inode().prepare_write()?;
    }
    if is_reg && flags & O_TRUNC != 0 && !created && at.inode().size() != 0 {
        at.inode().setattr(&SetAttr {
            size: Some(0),
            ..SetAttr::default()
        })?;
        inotify::path_event(&at, inotify::IN_MODIFY);
    }
    let kept = flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    let file = match at.inode().open(cx, &at, kept)? {
        Some(file) => file,
        None => Arc::new(InodeFile::open(cx, at.clone(), kept)?),
    };
    inotify::path_event(&at, inotify::IN_OPEN);
    Ok(file)
}

/// `open(O_CREAT)` of a symlink whose target does not exist: follows the chain of links
/// (at most 40) to the missing name and creates it there.
fn create_through_link(task: &Task, cx: &Cx, mut link: Path, mode: u32) -> SysResult<(Path, bool)> {
    for _ in 0..crate::vfs::path::MAX_SYMLINKS {
        let target = link.inode().readlink(cx)?;
        let parent = link
            .dentry
            .parent
            .as_ref()
            .map(|p| Path {
                mount: Arc::clone(&link.mount),
                dentry: Arc::clone(p),
            })
            .ok_or(Errno::ENOENT)?;
        let (dir, name, trailing) = fs_of(task, cx).lookup_parent(cx, Some(&parent), &target)?;
        if trailing || name == b"." || name == b".." {
            return Err(Errno::EISDIR);
        }
        match step(
            &fs_of(task, cx).vfs,
            cx,
            &fs_of(task, cx).root(),
            &dir,
            &name,
        ) {
            Ok(next) if next.inode().mode() & S_IFMT == S_IFLNK => link = next,
            Ok(next) => return Ok((next, false)),
            Err(Errno::ENOENT) => return Ok((create_file(task, cx, &dir, &name, mode)?, true)),
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ELOOP)
}

/// `O_TMPFILE`: an unnamed file in the directory `name`.
fn open_tmpfile(
    task: &Task,
    cx: &Cx,
    dirfd: i32,
    name: &[u8],
    flags: i32,
    mode: u32,
) -> SysResult<Arc<dyn FileDescription>> {
    let acc = flags & O_ACCMODE;
    if acc != O_WRONLY && acc != O_RDWR {
        return Err(Errno::EINVAL);
    }
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = dir_of(task, dirfd, name)?;
    let dir = fs_of(task, cx).lookup(cx, start.as_ref(), name, true)?;
    let stat = dir.inode().stat()?;
    if stat.mode & S_IFMT != S_IFDIR {
        return Err(Errno::ENOTDIR);
    }
    permitted(&stat, &cx.creds, MAY_WRITE | MAY_EXEC)?;
    if dir.mount.is_read_only() || dir.inode().read_only() {
        return Err(Errno::EROFS);
    }
    let mode = mode & 0o7777 & !fs_of(task, cx).umask();
    let inode = dir.inode().create_tmpfile(cx, mode, flags & O_EXCL == 0)?;
    let at = Path {
        mount: Arc::clone(&dir.mount),
        dentry: Arc::new(crate::vfs::path::Dentry {
            name: format!("#{} (deleted)", inode.ino()).into_bytes(),
            parent: Some(Arc::clone(&dir.dentry)),
            inode,
        }),
    };
    let kept = flags & !(O_TMPFILE | O_EXCL | O_CLOEXEC);
    Ok(Arc::new(InodeFile::open(cx, at, kept)?))
}

pub fn close(task: &mut Task, fd: i32) -> SysResult<i64> {
    let file = task.fds.remove(fd)?;
    super::lock::release_on_close(task, &file);
    drop(file);
    Ok(0)
}

pub fn close_range(task: &mut Task, first: u32, last: u32, flags: u32) -> SysResult<i64> {
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    if flags & CLOSE_RANGE_UNSHARE != 0 && Arc::strong_count(&task.fds) > 1 {
        // A table shared with CLONE_FILES relatives is copied first, as unshare does.
        task.fds = Arc::new(task.fds.fork());
    }
    let first = i32::try_from(first).unwrap_or(i32::MAX);
    let last = i32::try_from(last).unwrap_or(i32::MAX);
    let closed = task
        .fds
        .close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
    drop(closed);
    Ok(0)
}

/// `struct open_how` (the first version; larger structs must be zero past it).
#[repr(C)]
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const OPEN_HOW_SIZE_VER0: usize = 24;
/// The flags `open` knows (Linux's `VALID_OPEN_FLAGS`).
const VALID_OPEN_FLAGS: u64 = 0o37_777_703;

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;

pub fn openat2(
    task: &mut Task,
    dirfd: i32,
    path: UserAddr,
    how: UserAddr,
    size: usize,
) -> SysResult<i64> {
    if !(OPEN_HOW_SIZE_VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; size];
    task.mm.copy_in(how, &mut raw)?;
    if raw[OPEN_HOW_SIZE_VER0..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let how = <OpenHow as zerocopy::FromBytes>::read_from_bytes(&raw[..OPEN_HOW_SIZE_VER0])
        .map_err(|_| Errno::EINVAL)?;
    if how.flags & !VALID_OPEN_FLAGS != 0 || how.mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = i32::try_from(how.flags).map_err(|_| Errno::EINVAL)?;
    if how.mode != 0 && flags & O_CREAT == 0 && flags & O_TMPFILE != O_TMPFILE {
        return Err(Errno::EINVAL);
    }
    if how.resolve & !0x3f != 0
        || (how.resolve & RESOLVE_BENEATH != 0 && how.resolve & RESOLVE_IN_ROOT != 0)
    {
        return Err(Errno::EINVAL);
    }
    if how.resolve & RESOLVE_CACHED != 0 && flags & (O_CREAT | O_TRUNC | O_TMPFILE) != 0 {
        // Linux cannot promise these without blocking; the caller retries without.
        return Err(Errno::EAGAIN);
    }
    let mode = u32::try_from(how.mode).unwrap_or(0);
    let in_root = how.resolve & RESOLVE_IN_ROOT != 0;
    let restrict = Restrict {
        no_xdev: how.resolve & RESOLVE_NO_XDEV != 0,
        no_magiclinks: how.resolve & RESOLVE_NO_MAGICLINKS != 0,
        no_symlinks: how.resolve & RESOLVE_NO_SYMLINKS != 0,
        beneath: how.resolve & RESOLVE_BENEATH != 0,
        in_root,
        missing_last_ok: flags & O_CREAT != 0,
    };
    if restrict == Restrict::default() {
        return openat(task, dirfd, path, flags, mode);
    }
    let name = read_path(task, path)?;
    let mut cx = cx(task);
    let start = if in_root {
        // The directory is the root: absolute paths and `..` stay beneath it.
        let dir = match dir_of(task, dirfd, b".")? {
            Some(d) => d,
            None => task.fs.cwd(),
        };
        let fs = task.fs.fork();
        fs.set_root(dir.clone());
        fs.set_cwd(dir);
        cx.fs = Some(fs);
        None
    } else {
        dir_of(task, dirfd, &name)?
    };
    // The path is checked against the restrictions, then opened as openat would.
    // (A path changed by another thread in between is opened as it is then.)
    let follow = flags & O_NOFOLLOW == 0;
    fs_of(task, &cx).check_restricted(&cx, start.as_ref(), &name, follow, restrict)?;
    let file = if in_root {
        open_path(task, &cx, AT_FDCWD, &name, flags, mode)?
    } else {
        open_path(task, &cx, dirfd, &name, flags, mode)?
    };
    super::tty::acquire_on_open(task, &*file, flags);
    install(task, file, flags & O_CLOEXEC != 0)
}
