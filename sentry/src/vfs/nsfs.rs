//! Namespace files: what `/proc/PID/ns/*` names and opens.
//!
//! Reading the link gives `TYPE:[INODE]`; opening it gives a file that names the
//! namespace, for `setns` and for comparing two processes' namespaces with `stat`. The
//! sandbox has one namespace of each type but UTS, so every process shows the same
//! inode for those (Linux's numbers for its first namespaces where it has fixed ones),
//! and its own UTS namespace's inode.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use super::file::{FileDescription, O_RDONLY};
use super::Stat;
use crate::errno::{Errno, SysResult};
use crate::kernel::clone::{
    CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME,
    CLONE_NEWUSER, CLONE_NEWUTS,
};
use crate::kernel::uts::UtsNamespace;

/// The device of namespace files (Linux's nsfs is an anonymous superblock; any fixed
/// number that no other filesystem of the sandbox uses does).
const NSFS_DEV: u64 = 4;

/// The namespace types, in the order `/proc/PID/ns` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsKind {
    Cgroup,
    Ipc,
    Mnt,
    Net,
    Pid,
    PidForChildren,
    Time,
    TimeForChildren,
    User,
    Uts,
}

impl NsKind {
    pub const ALL: [NsKind; 10] = [
        NsKind::Cgroup,
        NsKind::Ipc,
        NsKind::Mnt,
        NsKind::Net,
        NsKind::Pid,
        NsKind::PidForChildren,
        NsKind::Time,
        NsKind::TimeForChildren,
        NsKind::User,
        NsKind::Uts,
    ];

    /// The entry's name under `/proc/PID/ns`.
    pub fn entry(self) -> &'static str {
        match self {
            NsKind::Cgroup => "cgroup",
            NsKind::Ipc => "ipc",
            NsKind::Mnt => "mnt",
            NsKind::Net => "net",
            NsKind::Pid => "pid",
            NsKind::PidForChildren => "pid_for_children",
            NsKind::Time => "time",
            NsKind::TimeForChildren => "time_for_children",
            NsKind::User => "user",
            NsKind::Uts => "uts",
        }
    }

    pub fn from_entry(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.entry().as_bytes() == name)
    }

    /// The type's name in the link (`pid_for_children` names a `pid` namespace).
    fn type_name(self) -> &'static str {
        match self {
            NsKind::PidForChildren => "pid",
            NsKind::TimeForChildren => "time",
            other => other.entry(),
        }
    }

    /// The `CLONE_NEW*` flag of the type (`setns`'s `nstype`).
    pub fn clone_flag(self) -> u64 {
        match self {
            NsKind::Cgroup => CLONE_NEWCGROUP,
            NsKind::Ipc => CLONE_NEWIPC,
            NsKind::Mnt => CLONE_NEWNS,
            NsKind::Net => CLONE_NEWNET,
            NsKind::Pid | NsKind::PidForChildren => CLONE_NEWPID,
            NsKind::Time | NsKind::TimeForChildren => CLONE_NEWTIME,
            NsKind::User => CLONE_NEWUSER,
            NsKind::Uts => CLONE_NEWUTS,
        }
    }

    /// The inode of the sandbox's one namespace of this type (the UTS type's is its
    /// namespace's own). Linux's fixed numbers for its first namespaces, and the first
    /// dynamic ones for the mount and network namespaces.
    fn sandbox_ino(self) -> u64 {
        match self {
            NsKind::Ipc => 0xEFFF_FFFF,
            NsKind::Uts => 0xEFFF_FFFE,
            NsKind::User => 0xEFFF_FFFD,
            NsKind::Pid | NsKind::PidForChildren => 0xEFFF_FFFC,
            NsKind::Cgroup => 0xEFFF_FFFB,
            NsKind::Time | NsKind::TimeForChildren => 0xEFFF_FFFA,
            NsKind::Mnt => 0xF000_0000,
            NsKind::Net => 0xF000_0001,
        }
    }
}

/// One namespace, as a thread holds it.
#[derive(Clone)]
pub enum Namespace {
    /// The sandbox's one namespace of the type.
    Sandbox(NsKind),
    Uts(Arc<UtsNamespace>),
}

impl Namespace {
    /// Thread `uts`'s namespace of type `kind`.
    pub fn of(kind: NsKind, uts: Arc<UtsNamespace>) -> Self {
        match kind {
            NsKind::Uts => Namespace::Uts(uts),
            other => Namespace::Sandbox(other),
        }
    }

    pub fn kind(&self) -> NsKind {
        match self {
            Namespace::Sandbox(kind) => *kind,
            Namespace::Uts(_) => NsKind::Uts,
        }
    }

    pub fn ino(&self) -> u64 {
        match self {
            Namespace::Sandbox(kind) => kind.sandbox_ino(),
            Namespace::Uts(uts) => uts.ino(),
        }
    }

    /// What the `/proc/PID/ns` link reads.
    pub fn link(&self) -> Vec<u8> {
        format!("{}:[{}]", self.kind().type_name(), self.ino()).into_bytes()
    }
}

/// An open namespace file.
pub struct NsFile {
    pub namespace: Namespace,
    flags: AtomicI32,
}

impl NsFile {
    pub fn new(namespace: Namespace) -> Arc<Self> {
        Arc::new(Self {
            namespace,
            flags: AtomicI32::new(O_RDONLY),
        })
    }
}

impl FileDescription for NsFile {
    fn read(&self, _: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EINVAL)
    }

    fn write(&self, _: &[u8]) -> SysResult<usize> {
        Err(Errno::EBADF)
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            dev: NSFS_DEV,
            ino: self.namespace.ino(),
            nlink: 1,
            mode: super::S_IFREG | 0o444,
            blksize: 4096,
            ..Stat::default()
        })
    }

    fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }

    fn anon_name(&self) -> Vec<u8> {
        self.namespace.link()
    }

    fn as_namespace(&self) -> Option<&NsFile> {
        Some(self)
    }
}
