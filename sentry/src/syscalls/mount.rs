//! `mount` and `umount2` inside the sandbox: tmpfs, proc, sysfs and bind mounts in the
//! sandbox's one mount table, remounts read-only or read-write, and unmounts. Nothing
//! here reaches the host: a bind mount binds a path the sandbox already sees.

use std::sync::Arc;

use super::fs::{lookup_at, read_path, AT_FDCWD};
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::CAP_SYS_ADMIN;
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::memfs::MemFs;
use crate::vfs::Inode;

const MS_RDONLY: u64 = 1;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_SYNCHRONOUS: u64 = 16;
const MS_REMOUNT: u64 = 32;
const MS_MANDLOCK: u64 = 64;
const MS_DIRSYNC: u64 = 128;
const MS_NOSYMFOLLOW: u64 = 256;
const MS_NOATIME: u64 = 1024;
const MS_NODIRATIME: u64 = 2048;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_REC: u64 = 16384;
const MS_SILENT: u64 = 32768;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
const MS_RELATIME: u64 = 1 << 21;
const MS_STRICTATIME: u64 = 1 << 24;
const MS_LAZYTIME: u64 = 1 << 25;
/// Linux's historic magic number in the upper 16 bits of the flags, ignored when there.
const MS_MGC_MSK: u64 = 0xffff_0000;
const MS_MGC_VAL: u64 = 0xc0ed_0000;

const PROPAGATION: u64 = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED;
/// Per-mount flags the Sentry accepts without acting on them: there are no device nodes
/// or set-user-ID programs that it would honour, and times are kept as they are.
/// `MS_NOEXEC` is accepted too, and logged: it is not enforced.
const ACCEPTED: u64 = MS_NOSUID
    | MS_NODEV
    | MS_NOEXEC
    | MS_SYNCHRONOUS
    | MS_MANDLOCK
    | MS_DIRSYNC
    | MS_NOSYMFOLLOW
    | MS_NOATIME
    | MS_NODIRATIME
    | MS_SILENT
    | MS_RELATIME
    | MS_STRICTATIME
    | MS_LAZYTIME;

const MNT_FORCE: i32 = 1;
const MNT_DETACH: i32 = 2;
const MNT_EXPIRE: i32 = 4;
const UMOUNT_NOFOLLOW: i32 = 8;

/// The `mode=` and `size=` options of a tmpfs (`size` with a k/m/g suffix).
fn tmpfs_options(data: &str) -> SysResult<(u32, Option<u64>)> {
    let (mut mode, mut size) = (0o1777, None);
    for opt in data.split(',').filter(|o| !o.is_empty()) {
        if let Some(m) = opt.strip_prefix("mode=") {
            mode = u32::from_str_radix(m, 8).map_err(|_| Errno::EINVAL)? & 0o7777;
        } else if let Some(s) = opt.strip_prefix("size=") {
            let (digits, unit) = match s.as_bytes().last() {
                Some(b'k' | b'K') => (&s[..s.len() - 1], 1u64 << 10),
                Some(b'm' | b'M') => (&s[..s.len() - 1], 1 << 20),
                Some(b'g' | b'G') => (&s[..s.len() - 1], 1 << 30),
                _ => (s, 1),
            };
            let n: u64 = digits.parse().map_err(|_| Errno::EINVAL)?;
            size = Some(n.checked_mul(unit).ok_or(Errno::EINVAL)?);
        } else {
            log::debug!("mount: tmpfs option {opt:?} ignored");
        }
    }
    Ok((mode, size))
}

pub fn mount(
    task: &mut Task,
    source: UserAddr,
    target: UserAddr,
    fstype: UserAddr,
    flags: u64,
    data: UserAddr,
) -> SysResult<i64> {
    if !task.creds.capable(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let flags = if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags & !MS_MGC_MSK
    } else {
        flags
    };
    let at = lookup_at(task, AT_FDCWD, target, 0)?;
    let vfs = &task.fs.vfs;
    if flags & MS_REMOUNT != 0 {
        // Only the read-only bit changes here (with or without MS_BIND).
        vfs.remount(&at, flags & MS_RDONLY != 0)?;
        return Ok(0);
    }
    if flags & PROPAGATION != 0 {
        // One mount table, no other namespace to propagate to: the type has no effect.
        if flags & !(PROPAGATION | MS_REC | MS_SILENT) != 0
            || (flags & PROPAGATION).count_ones() != 1
        {
            return Err(Errno::EINVAL);
        }
        return Ok(0);
    }
    if flags & MS_MOVE != 0 {
        log::warn!("mount: MS_MOVE not implemented (EINVAL)");
        return Err(Errno::EINVAL);
    }
    let unknown = flags & !(ACCEPTED | MS_RDONLY | MS_BIND | MS_REC);
    if unknown != 0 {
        log::warn!("mount: flags {unknown:#x} not implemented (EINVAL)");
        return Err(Errno::EINVAL);
    }
    if flags & MS_NOEXEC != 0 {
        log::warn!("mount: MS_NOEXEC is not enforced (programs there still run)");
    }
    let read_only = flags & MS_RDONLY != 0;
    if flags & MS_BIND != 0 {
        // The tree at `source` (not the mounts below it: MS_REC adds nothing yet).
        let from = lookup_at(task, AT_FDCWD, source, 0)?;
        let root: Arc<dyn Inode> = Arc::clone(from.inode());
        let fstype = from.mount.fstype;
        let name = String::from_utf8_lossy(&read_path(task, source)?).into_owned();
        vfs.mount_with(&at, root, fstype, &name, read_only)?;
        return Ok(0);
    }
    let kind =
        read_path(task, fstype).map_err(|e| if e == Errno::ENOENT { Errno::ENODEV } else { e })?;
    let options = if data.is_null() {
        String::new()
    } else {
        String::from_utf8_lossy(&task.mm.read_c_string(data, 4096)?).into_owned()
    };
    let source = if source.is_null() {
        "none".to_string()
    } else {
        String::from_utf8_lossy(&read_path(task, source)?).into_owned()
    };
    let memory = task.kernel.memory();
    let (fs, name): (Arc<dyn Inode>, &'static str) = match kind.as_slice() {
        b"tmpfs" => {
            let (mode, size) = tmpfs_options(&options)?;
            (MemFs::tmpfs_sized(memory, mode, size), "tmpfs")
        }
        b"proc" => (crate::vfs::proc::ProcFs::new_root(memory), "proc"),
        b"sysfs" => (crate::vfs::sys::sysfs(), "sysfs"),
        other => {
            log::warn!(
                "mount: filesystem type {:?} not available in the sandbox (ENODEV)",
                String::from_utf8_lossy(other)
            );
            return Err(Errno::ENODEV);
        }
    };
    vfs.mount_with(&at, fs, name, &source, read_only)?;
    Ok(0)
}

pub fn umount2(task: &mut Task, target: UserAddr, flags: i32) -> SysResult<i64> {
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0
        || (flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0)
    {
        return Err(Errno::EINVAL);
    }
    if !task.creds.capable(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if flags & MNT_EXPIRE != 0 {
        // Linux marks the mount the first time and unmounts it the second; unused mounts
        // are not tracked here.
        return Err(Errno::EAGAIN);
    }
    let nofollow = if flags & UMOUNT_NOFOLLOW != 0 {
        super::fs::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    let at = lookup_at(task, AT_FDCWD, target, nofollow)?;
    task.fs.vfs.unmount(&at, flags & MNT_DETACH != 0)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_options_parse() {
        assert_eq!(tmpfs_options("").unwrap(), (0o1777, None));
        assert_eq!(
            tmpfs_options("mode=755,size=64k,nr_inodes=5").unwrap(),
            (0o755, Some(65536))
        );
        assert_eq!(tmpfs_options("size=2m").unwrap().1, Some(2 << 20));
        assert_eq!(tmpfs_options("size=x"), Err(Errno::EINVAL));
    }
}
