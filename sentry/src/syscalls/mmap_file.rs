//! The file side of `mmap`: which memory object a descriptor maps, with Linux's checks.

use std::sync::Arc;

use crate::errno::{Errno, SysResult};
use crate::kernel::Task;
use crate::mm::MemoryObject;
use crate::vfs::dev::is_dev_zero;
use crate::vfs::exec::Named;
use crate::vfs::file::{O_ACCMODE, O_APPEND, O_PATH, O_RDWR, O_WRONLY};

/// The object to map for `fd` (`None` for `/dev/zero`: anonymous memory), and whether the
/// descriptor allows writing through a shared mapping (which `mprotect` must respect).
pub fn object(
    task: &Task,
    fd: i32,
    shared: bool,
    write: bool,
    len: u64,
    offset: u64,
) -> SysResult<(Option<Arc<dyn MemoryObject>>, bool)> {
    let file = task.fds.get(fd)?;
    let flags = file.flags();
    if flags & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    let acc = flags & O_ACCMODE;
    if acc == O_WRONLY {
        return Err(Errno::EACCES);
    }
    let writable = acc == O_RDWR && flags & O_APPEND == 0;
    if shared && write && !writable {
        return Err(Errno::EACCES);
    }
    offset.checked_add(len).ok_or(Errno::EOVERFLOW)?;
    if file.inode().is_some_and(is_dev_zero) {
        return Ok((None, true));
    }
    let inner = file.memory_object()?;
    let (inner, writable) = match file.inode().and_then(|i| i.seals().cloned()) {
        Some(seals) if shared => seals.map_shared(inner, write, writable)?,
        _ => (inner, writable),
    };
    let name = match file.path() {
        Some(p) => String::from_utf8_lossy(&p.name_from(&task.fs.root())).into_owned(),
        None => inner.name(),
    };
    Ok((Some(Arc::new(Named { inner, name })), writable))
}
