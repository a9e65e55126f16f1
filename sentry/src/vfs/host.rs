//! A file the Sentry was handed as a host descriptor: the caller's stdio for `bulwark do`
//! (the Sentry never opens a host path itself).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

use super::{FileDescription, Stat};
use crate::errno::{Errno, SysResult};

pub struct HostFile {
    file: File,
}

impl HostFile {
    pub fn new(fd: OwnedFd) -> Self {
        Self {
            file: File::from(fd),
        }
    }
}

fn host_errno(err: &std::io::Error) -> Errno {
    if err.kind() == ErrorKind::Interrupted {
        return Errno::EINTR;
    }
    Errno::from_io(err)
}

impl FileDescription for HostFile {
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        (&self.file).read(buf).map_err(|e| host_errno(&e))
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        (&self.file).write(buf).map_err(|e| host_errno(&e))
    }

    fn stat(&self) -> SysResult<Stat> {
        let m = self.file.metadata().map_err(|e| host_errno(&e))?;
        Ok(Stat {
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            size: m.size().try_into().unwrap_or(i64::MAX),
            blksize: m.blksize().try_into().unwrap_or(4096),
            blocks: m.blocks().try_into().unwrap_or(0),
            atime: m.atime(),
            atime_nsec: m.atime_nsec(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
            ..Stat::default()
        })
    }
}
