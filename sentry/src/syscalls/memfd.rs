//! memfd: memfd_create, and the seal commands of fcntl (F_ADD_SEALS, F_GET_SEALS).

use std::sync::Arc;

use super::fs::cx;
use super::open::install;
use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::UserAddr;
use crate::vfs::file::{FileDescription, InodeFile, O_ACCMODE, O_LARGEFILE, O_RDONLY, O_RDWR};
use crate::vfs::memfd::{seals_of, MemfdInode, F_SEAL_EXEC, F_SEAL_SEAL};
use crate::vfs::memfs::MemFs;
use crate::vfs::path::{Dentry, Mount};
use crate::vfs::{Inode, Path, NAME_MAX, S_IFREG};

const MFD_CLOEXEC: u32 = 0x1;
const MFD_ALLOW_SEALING: u32 = 0x2;
const MFD_HUGETLB: u32 = 0x4;
const MFD_NOEXEC_SEAL: u32 = 0x8;
const MFD_EXEC: u32 = 0x10;
const MFD_ALL_FLAGS: u32 =
    MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/// The huge page size bits `MFD_HUGETLB` may carry.
const MFD_HUGE_MASK: u32 = 0x3f << 26;
/// The longest name, NUL included (Linux's `MFD_NAME_MAX_LEN`: `NAME_MAX` less "memfd:").
const NAME_MAX_LEN: usize = NAME_MAX - 6;

const F_ADD_SEALS: i32 = 1033;

pub fn memfd_create(task: &mut Task, name: UserAddr, flags: u32) -> SysResult<i64> {
    let allowed = if flags & MFD_HUGETLB != 0 {
        MFD_ALL_FLAGS | MFD_HUGE_MASK
    } else {
        MFD_ALL_FLAGS
    };
    if flags & !allowed != 0 || (flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0) {
        return Err(Errno::EINVAL);
    }
    let name = match task.mm.read_c_string(name, NAME_MAX_LEN) {
        Ok(n) if n.len() < NAME_MAX_LEN => n,
        Ok(_) | Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL),
        Err(e) => return Err(e),
    };
    if flags & MFD_HUGETLB != 0 {
        // There is no hugetlbfs to back it.
        log::warn!("memfd_create(MFD_HUGETLB): not implemented (EINVAL)");
        return Err(Errno::EINVAL);
    }
    let (mode, seals) = if flags & MFD_NOEXEC_SEAL != 0 {
        (0o666, F_SEAL_EXEC)
    } else if flags & MFD_ALLOW_SEALING != 0 {
        (0o777, 0)
    } else {
        (0o777, F_SEAL_SEAL)
    };
    let cx = cx(task);
    // Each memfd is the one file of its own unnamed tmpfs, as Linux's live on an
    // internal mount that no path reaches.
    let root: Arc<dyn Inode> = MemFs::tmpfs(task.kernel.memory(), 0o1777);
    let file = root.create_tmpfile(&cx, mode, false)?;
    debug_assert_eq!(file.mode() & S_IFREG, S_IFREG);
    let root = Arc::new(Dentry {
        name: b"/".to_vec(),
        parent: None,
        inode: root,
    });
    let mut shown = b"memfd:".to_vec();
    shown.extend_from_slice(&name);
    let path = Path {
        mount: Arc::new(Mount {
            id: 0,
            root: Arc::clone(&root),
            mountpoint: None,
            fstype: "tmpfs",
            source: "none".to_string(),
            read_only: false.into(),
        }),
        dentry: Arc::new(Dentry {
            name: shown,
            parent: Some(root),
            inode: Arc::new(MemfdInode::new(file, seals)),
        }),
    };
    let open = InodeFile::open(&cx, path, O_RDWR | O_LARGEFILE)?;
    install(
        task,
        Arc::new(open) as Arc<dyn FileDescription>,
        flags & MFD_CLOEXEC != 0,
    )
}

/// `F_ADD_SEALS` and `F_GET_SEALS` on `file`.
pub fn fcntl_seals(file: &dyn FileDescription, cmd: i32, arg: u64) -> SysResult<i64> {
    let inode = file.inode().ok_or(Errno::EINVAL)?;
    if cmd != F_ADD_SEALS {
        return seals_of(&**inode).map(i64::from);
    }
    if file.flags() & O_ACCMODE == O_RDONLY {
        return Err(Errno::EPERM);
    }
    let seals = u32::try_from(arg & 0xffff_ffff).unwrap_or(u32::MAX);
    match inode.seals() {
        Some(s) => s.add(seals).map(|()| 0),
        // A tmpfs file is sealed against sealing; other files have no seals.
        None => match seals_of(&**inode) {
            Ok(_) if seals & !crate::vfs::memfd::F_ALL_SEALS != 0 => Err(Errno::EINVAL),
            Ok(_) => Err(Errno::EPERM),
            Err(e) => Err(e),
        },
    }
}
