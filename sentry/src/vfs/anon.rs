//! Open descriptions reached through a magic link without a path of their own (a pipe or
//! the caller's stdio behind `/proc/self/fd/N`, `/dev/stdin`): opening the link gives
//! the same description, as Linux reopens the object behind it.

use std::any::Any;
use std::sync::Arc;

use super::path::{Dentry, Mount};
use super::{Cx, FileDescription, Inode, Path, Stat};
use crate::errno::SysResult;

pub struct AnonInode {
    file: Arc<dyn FileDescription>,
}

impl AnonInode {
    /// A detached location for `file` (in no mount namespace).
    pub fn path(file: Arc<dyn FileDescription>) -> Path {
        let dentry = Arc::new(Dentry {
            name: file.anon_name(),
            parent: None,
            inode: Arc::new(Self { file }),
        });
        Path {
            mount: Arc::new(Mount {
                id: 0,
                root: Arc::clone(&dentry),
                mountpoint: None,
                fstype: "anon_inodefs",
                source: "none".to_string(),
                read_only: false.into(),
            }),
            dentry,
        }
    }
}

impl Inode for AnonInode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn dev(&self) -> u64 {
        self.file.stat().map_or(0, |s| s.dev)
    }

    fn ino(&self) -> u64 {
        self.file.stat().map_or(0, |s| s.ino)
    }

    fn stat(&self) -> SysResult<Stat> {
        self.file.stat()
    }

    fn open(
        &self,
        _cx: &Cx,
        _path: &Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        match self.file.reopen(flags) {
            Some(reopened) => reopened.map(Some),
            None => Ok(Some(Arc::clone(&self.file))),
        }
    }
}
