//! procfs: the caller's own process directory (`/proc/self` and `/proc/PID` for its own
//! PID), with `exe`, `cwd`, `root`, `fd/`, `maps`, `status`, `mounts`; and the global
//! `cpuinfo`, `meminfo`, `mounts`, `filesystems`, `version`. Only what the Sentry
//! really knows is shown; other processes' directories come with the process work.

use std::any::Any;
use std::fmt::Write as _;
use std::sync::Arc;

use platform::{MemoryFile, Perms};

use super::dev::{new_dev, StaticDir, StaticFile, StaticLink};
use super::file::InodeFile;
use super::{
    Cx, DirEntry, FileDescription, Inode, Path, Stat, StatFs, Time, DT_DIR, DT_LNK, DT_REG,
    PROC_SUPER_MAGIC, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
};
use crate::errno::{Errno, SysResult};
use crate::kernel::ipc::{msg, sem, shm};
use crate::kernel::usage::clock_ticks;
use crate::mm::VmaKind;

/// What `uname` reports (kept in step with `syscalls/info.rs`).
const RELEASE: &str = "6.8.0-bulwark";
const UTS_VERSION: &str = "#1 SMP PREEMPT_DYNAMIC Bulwark";

type Generator = fn(&ProcFs, &Cx) -> SysResult<Vec<u8>>;

/// What a procfs inode is.
#[derive(Clone, Copy, Debug)]
enum Node {
    Root,
    SelfLink,
    /// `/proc/thread-self`: `<tgid>/task/<tid>` of the caller.
    ThreadSelfLink,
    /// `/proc/PID` of the caller's process.
    Pid,
    File(Generator),
    /// `/proc/sysvipc`: the System V IPC objects.
    Sysvipc,
    /// `comm`: the thread's name, which a write of the thread's own process changes.
    Comm,
    Exe,
    Cwd,
    RootLink,
    FdDir,
    Fd(i32),
    FdInfoDir,
    FdInfo(i32),
    /// `/proc/PID/task`: the process's threads.
    TaskDir,
    /// `/proc/PID/task/TID`: one thread (the files of its process, seen as that thread).
    Task,
    /// `/proc/PID/ns`: the thread's namespaces.
    NsDir,
    Ns(super::nsfs::NsKind),
}

/// The filesystem: shared state of every procfs inode.
pub struct ProcFs {
    dev: u64,
    memory: Arc<MemoryFile>,
    /// `/proc/sys`: the sandbox's kernel settings.
    sys: Arc<StaticDir>,
}

pub struct ProcInode {
    fs: Arc<ProcFs>,
    node: Node,
    ino: u64,
    /// The process a `/proc/PID` node (and what is under it) describes; 0 above that.
    pid: i32,
    /// The thread a `/proc/PID/task/TID` node (and what is under it) describes; 0 else.
    tid: i32,
}

impl ProcFs {
    /// A procfs root; `memory` is the sandbox's memory, for `meminfo`.
    pub fn new_root(memory: &Arc<MemoryFile>) -> Arc<ProcInode> {
        let dev = new_dev();
        let f = |c: &str| StaticFile::new(dev, c) as Arc<dyn Inode>;
        let d = |v| StaticDir::new(dev, 0o555, v) as Arc<dyn Inode>;
        let sys = StaticDir::new(
            dev,
            0o555,
            vec![
                (
                    "kernel",
                    d(vec![
                        ("domainname", UtsSysctl::inode(dev, UtsField::Domainname)),
                        ("hostname", UtsSysctl::inode(dev, UtsField::Hostname)),
                        ("ngroups_max", f("65536\n")),
                        ("osrelease", f(&format!("{RELEASE}\n"))),
                        ("ostype", f("Linux\n")),
                        ("pid_max", f("4194304\n")),
                        // The System V shared memory limits the Sentry keeps to.
                        ("shmall", f(&format!("{}\n", shm::SHMALL))),
                        ("shmmax", f(&format!("{}\n", shm::SHMMAX))),
                        ("shmmni", f(&format!("{}\n", shm::SHMMNI))),
                        ("version", f(&format!("{UTS_VERSION}\n"))),
                    ]),
                ),
                ("fs", d(vec![("nr_open", f(&format!("{}\n", 1 << 20)))])),
                ("vm", d(vec![("overcommit_memory", f("0\n"))])),
            ],
        );
        // kernel/random: boot_id is fixed for the sandbox's life, uuid new at each open.
        let random = StaticDir::new(
            dev,
            0o555,
            vec![
                ("boot_id", f(&format!("{}\n", uuid()))),
                (
                    "uuid",
                    Arc::new(RandomUuid {
                        dev,
                        ino: 0x20_0000,
                    }) as Arc<dyn Inode>,
                ),
            ],
        );
        let sys = {
            let kernel = sys.lookup(&Cx::root(), b"kernel").ok();
            let kernel = kernel
                .as_ref()
                .and_then(|k| k.as_any().downcast_ref::<StaticDir>());
            match kernel {
                Some(k) => {
                    k.add("random", random);
                    sys
                }
                None => sys,
            }
        };
        let fs = Arc::new(Self {
            dev,
            memory: Arc::clone(memory),
            sys,
        });
        fs.inode(Node::Root, 1, 0, 0)
    }

    fn inode(self: &Arc<Self>, node: Node, ino: u64, pid: i32, tid: i32) -> Arc<ProcInode> {
        Arc::new(ProcInode {
            fs: Arc::clone(self),
            node,
            ino,
            pid,
            tid,
        })
    }
}

const GLOBAL_FILES: &[(&str, Generator)] = &[
    ("cpuinfo", cpuinfo),
    ("loadavg", loadavg),
    ("stat", kernel_stat),
    ("uptime", uptime),
    ("filesystems", filesystems),
    ("meminfo", meminfo),
    ("version", |_, _| {
        Ok(format!("Linux version {RELEASE} (bulwark@sandbox) {UTS_VERSION}\n").into_bytes())
    }),
];

/// `/proc/sysvipc`: one table per kind of System V IPC object.
const SYSVIPC_FILES: &[(&str, Generator)] = &[
    ("msg", |_, cx| {
        Ok(cx
            .kernel
            .as_ref()
            .map_or_else(|| msg::PROC_HEADER.to_string(), |k| k.ipc.msg.proc_table())
            .into_bytes())
    }),
    ("sem", |_, cx| {
        Ok(cx
            .kernel
            .as_ref()
            .map_or_else(|| sem::PROC_HEADER.to_string(), |k| k.ipc.sem.proc_table())
            .into_bytes())
    }),
    ("shm", |_, cx| {
        Ok(cx
            .kernel
            .as_ref()
            .map_or_else(|| shm::PROC_HEADER.to_string(), |k| k.ipc.shm.proc_table())
            .into_bytes())
    }),
];

const PID_FILES: &[(&str, Generator)] = &[
    ("environ", |_, cx| {
        Ok(cx.fs.as_ref().map(|f| f.environ()).unwrap_or_default())
    }),
    ("statm", statm),
    ("limits", limits),
    ("cmdline", |_, cx| {
        Ok(cx.fs.as_ref().map(|f| f.cmdline()).unwrap_or_default())
    }),
    ("comm", |_, cx| Ok(format!("{}\n", comm(cx)).into_bytes())),
    ("maps", maps),
    ("mountinfo", mountinfo),
    ("mounts", mounts),
    ("stat", stat),
    ("status", status),
];

/// A `/proc` entry name as a process ID.
fn pid_of(name: &[u8]) -> Option<i32> {
    std::str::from_utf8(name)
        .ok()?
        .parse()
        .ok()
        .filter(|&p: &i32| p > 0)
}

fn pid_ino(tgid: i32, n: u64) -> u64 {
    (u64::from(tgid.unsigned_abs()) << 16) | n
}

impl ProcInode {
    fn pid_child(&self, cx: &Cx, name: &[u8]) -> SysResult<Node> {
        Ok(match name {
            b"exe" => Node::Exe,
            b"cwd" => Node::Cwd,
            b"root" => Node::RootLink,
            b"fd" => Node::FdDir,
            b"fdinfo" => Node::FdInfoDir,
            b"task" => Node::TaskDir,
            b"comm" => Node::Comm,
            b"ns" => Node::NsDir,
            _ => {
                let _ = cx;
                PID_FILES
                    .iter()
                    .find(|(n, _)| n.as_bytes() == name)
                    .map(|&(_, g)| Node::File(g))
                    .ok_or(Errno::ENOENT)?
            }
        })
    }

    /// The process this node describes, as a caller context procfs generators read.
    fn target(&self, cx: &Cx) -> SysResult<Cx> {
        if self.pid == 0 {
            return Ok(cx.clone());
        }
        let mut t = cx.for_process(self.pid)?;
        if self.tid != 0 {
            t.tid = self.tid;
        }
        Ok(t)
    }

    /// The namespace of type `kind` of the thread `target` describes.
    fn namespace(
        &self,
        target: &Cx,
        kind: super::nsfs::NsKind,
    ) -> SysResult<super::nsfs::Namespace> {
        let kernel = target.kernel.as_ref().ok_or(Errno::ENOENT)?;
        let (thread, _) = kernel.thread(target.tid).ok_or(Errno::ENOENT)?;
        Ok(super::nsfs::Namespace::of(kind, thread.uts()))
    }

    /// The thread IDs of the process this node describes.
    fn threads(&self, cx: &Cx) -> SysResult<Vec<i32>> {
        let t = self.target(cx)?;
        let group = t.group.as_ref().ok_or(Errno::ENOENT)?;
        let mut tids: Vec<i32> = group.state().threads.iter().map(|h| h.tid()).collect();
        tids.sort_unstable();
        Ok(tids)
    }

    fn location(&self, cx: &Cx) -> SysResult<Path> {
        let cx = &self.target(cx)?;
        let fs = cx.fs.as_ref().ok_or(Errno::ENOENT)?;
        match self.node {
            Node::Exe => fs.exe().ok_or(Errno::ENOENT),
            Node::Cwd => Ok(fs.cwd()),
            Node::RootLink => Ok(fs.root()),
            Node::Fd(fd) => {
                let file = cx
                    .fds
                    .as_ref()
                    .ok_or(Errno::ENOENT)?
                    .get(fd)
                    .map_err(|_| Errno::ENOENT)?;
                Ok(match file.path() {
                    Some(p) => p.clone(),
                    None => super::anon::AnonInode::path(file),
                })
            }
            _ => Err(Errno::EINVAL),
        }
    }
}

impl Inode for ProcInode {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.fs.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn stat(&self) -> SysResult<Stat> {
        let mode = match self.node {
            Node::Root | Node::Pid | Node::TaskDir | Node::Task | Node::Sysvipc => S_IFDIR | 0o555,
            Node::FdDir | Node::FdInfoDir => S_IFDIR | 0o500,
            Node::NsDir => S_IFDIR | 0o511,
            Node::Ns(_) => S_IFLNK | 0o777,
            Node::FdInfo(_) => S_IFREG | 0o444,
            Node::File(_) => S_IFREG | 0o444,
            Node::Comm => S_IFREG | 0o644,
            Node::SelfLink | Node::ThreadSelfLink => S_IFLNK | 0o777,
            Node::Exe | Node::Cwd | Node::RootLink | Node::Fd(_) => S_IFLNK | 0o777,
        };
        let t = Time::now();
        Ok(Stat {
            dev: self.fs.dev,
            ino: self.ino,
            nlink: if mode & S_IFMT == S_IFDIR { 2 } else { 1 },
            mode,
            blksize: 1024,
            atime: t.sec,
            mtime: t.sec,
            ctime: t.sec,
            ..Stat::default()
        })
    }
    fn statfs(&self) -> SysResult<StatFs> {
        Ok(StatFs {
            f_type: PROC_SUPER_MAGIC,
            f_bsize: 4096,
            f_namelen: 255,
            f_frsize: 4096,
            ..StatFs::default()
        })
    }
    fn lookup(&self, cx: &Cx, name: &[u8]) -> SysResult<Arc<dyn Inode>> {
        let node = match self.node {
            Node::Root => match name {
                b"self" => Node::SelfLink,
                b"thread-self" => Node::ThreadSelfLink,
                b"sys" => return Ok(Arc::clone(&self.fs.sys) as Arc<dyn Inode>),
                b"sysvipc" => Node::Sysvipc,
                b"mounts" => {
                    return Ok(StaticLink::new(self.fs.dev, "self/mounts") as Arc<dyn Inode>)
                }
                _ if pid_of(name).is_some_and(|p| cx.for_process(p).is_ok()) => Node::Pid,
                _ => GLOBAL_FILES
                    .iter()
                    .find(|(n, _)| n.as_bytes() == name)
                    .map(|&(_, g)| Node::File(g))
                    .ok_or(Errno::ENOENT)?,
            },
            Node::Pid | Node::Task => self.pid_child(cx, name)?,
            Node::Sysvipc => SYSVIPC_FILES
                .iter()
                .find(|(n, _)| n.as_bytes() == name)
                .map(|&(_, g)| Node::File(g))
                .ok_or(Errno::ENOENT)?,
            Node::TaskDir => {
                let tid = pid_of(name).ok_or(Errno::ENOENT)?;
                if !self.threads(cx)?.contains(&tid) {
                    return Err(Errno::ENOENT);
                }
                Node::Task
            }
            Node::NsDir => Node::Ns(super::nsfs::NsKind::from_entry(name).ok_or(Errno::ENOENT)?),
            Node::FdDir | Node::FdInfoDir => {
                let fd: i32 = std::str::from_utf8(name)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(Errno::ENOENT)?;
                self.target(cx)?
                    .fds
                    .as_ref()
                    .ok_or(Errno::ENOENT)?
                    .get(fd)
                    .map_err(|_| Errno::ENOENT)?;
                if matches!(self.node, Node::FdDir) {
                    Node::Fd(fd)
                } else {
                    Node::FdInfo(fd)
                }
            }
            _ => return Err(Errno::ENOTDIR),
        };
        let n = match node {
            Node::Fd(fd) => 0x1000 + u64::from(fd.unsigned_abs()),
            Node::FdInfo(fd) => 0x1_0000 + u64::from(fd.unsigned_abs()),
            _ => {
                name.iter()
                    .fold(7u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                    & 0xfff
            }
        };
        // A /proc/PID directory and what is under it describe process PID.
        let pid = match (self.node, node) {
            (Node::Root, Node::Pid) => pid_of(name).unwrap_or(0),
            (Node::Root, _) => 0,
            _ => self.pid,
        };
        let tid = match (self.node, node) {
            (Node::TaskDir, Node::Task) => pid_of(name).unwrap_or(0),
            _ => self.tid,
        };
        let ino = if matches!(self.node, Node::Sysvipc) {
            n | 0x30_0000
        } else if matches!(self.node, Node::Root) && !matches!(node, Node::Pid) {
            n | 0x10_0000
        } else {
            pid_ino(if pid == 0 { cx.tgid } else { pid }, n)
        };
        Ok(self.fs.inode(node, ino, pid, tid) as Arc<dyn Inode>)
    }
    fn readdir(&self, cx: &Cx) -> SysResult<Vec<DirEntry>> {
        let e = |name: &str, kind| DirEntry {
            // Never 0: readdir(3) skips such entries as deleted.
            ino: 2 + name
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                % 0xffff,
            kind,
            name: name.as_bytes().to_vec(),
        };
        Ok(match self.node {
            Node::Root => {
                let mut pids: Vec<i32> = cx
                    .kernel
                    .as_ref()
                    .map(|k| {
                        k.groups()
                            .iter()
                            .filter(|g| g.view().is_some())
                            .map(|g| g.tgid)
                            .collect()
                    })
                    .unwrap_or_default();
                if !pids.contains(&cx.tgid) {
                    pids.push(cx.tgid);
                }
                pids.sort_unstable();
                let mut v: Vec<DirEntry> = pids.iter().map(|p| e(&p.to_string(), DT_DIR)).collect();
                v.extend([
                    e("self", DT_LNK),
                    e("thread-self", DT_LNK),
                    e("mounts", DT_LNK),
                    e("sys", DT_DIR),
                    e("sysvipc", DT_DIR),
                ]);
                v.extend(GLOBAL_FILES.iter().map(|(n, _)| e(n, DT_REG)));
                v
            }
            Node::Sysvipc => SYSVIPC_FILES.iter().map(|(n, _)| e(n, DT_REG)).collect(),
            Node::TaskDir => self
                .threads(cx)?
                .iter()
                .map(|t| e(&t.to_string(), DT_DIR))
                .collect(),
            Node::Pid | Node::Task => {
                let mut v = vec![
                    e("exe", DT_LNK),
                    e("cwd", DT_LNK),
                    e("root", DT_LNK),
                    e("fd", DT_DIR),
                    e("fdinfo", DT_DIR),
                    e("ns", DT_DIR),
                ];
                v.extend(PID_FILES.iter().map(|(n, _)| e(n, DT_REG)));
                v
            }
            Node::NsDir => super::nsfs::NsKind::ALL
                .iter()
                .map(|k| e(k.entry(), DT_LNK))
                .collect(),
            Node::FdDir | Node::FdInfoDir => {
                let kind = if matches!(self.node, Node::FdDir) {
                    DT_LNK
                } else {
                    DT_REG
                };
                self.target(cx)?
                    .fds
                    .as_ref()
                    .map(|t| t.fds())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|fd| e(&fd.to_string(), kind))
                    .collect()
            }
            _ => return Err(Errno::ENOTDIR),
        })
    }
    fn readlink(&self, cx: &Cx) -> SysResult<Vec<u8>> {
        match self.node {
            Node::SelfLink => return Ok(cx.tgid.to_string().into_bytes()),
            Node::ThreadSelfLink => return Ok(format!("{}/task/{}", cx.tgid, cx.tid).into_bytes()),
            _ => {}
        }
        let cx = &self.target(cx)?;
        match self.node {
            Node::Fd(fd) => {
                let file = cx
                    .fds
                    .as_ref()
                    .ok_or(Errno::ENOENT)?
                    .get(fd)
                    .map_err(|_| Errno::ENOENT)?;
                let root = cx.fs.as_ref().ok_or(Errno::ENOENT)?.root();
                Ok(match file.path() {
                    Some(p) => {
                        let mut name = p.name_from(&root);
                        let gone = p.inode().mode() & S_IFMT != S_IFDIR
                            && p.inode().stat().is_ok_and(|s| s.nlink == 0);
                        if gone && !name.ends_with(b" (deleted)") {
                            name.extend_from_slice(b" (deleted)");
                        }
                        name
                    }
                    None => file.anon_name(),
                })
            }
            Node::Exe | Node::Cwd | Node::RootLink => {
                let root = cx.fs.as_ref().ok_or(Errno::ENOENT)?.root();
                Ok(self.location(cx)?.name_from(&root))
            }
            Node::Ns(kind) => Ok(self.namespace(cx, kind)?.link()),
            _ => Err(Errno::EINVAL),
        }
    }
    fn follow_magic(&self, cx: &Cx) -> Option<SysResult<Path>> {
        match self.node {
            Node::Exe | Node::Cwd | Node::RootLink | Node::Fd(_) => Some(self.location(cx)),
            Node::Ns(kind) => Some(self.target(cx).and_then(|t| self.namespace(&t, kind)).map(
                |ns| {
                    super::anon::AnonInode::path(
                        super::nsfs::NsFile::new(ns) as Arc<dyn FileDescription>
                    )
                },
            )),
            _ => None,
        }
    }
    fn open(
        &self,
        cx: &Cx,
        path: &Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        match self.node {
            Node::File(generate) => {
                if flags & super::file::O_ACCMODE != super::file::O_RDONLY {
                    return Err(Errno::EACCES);
                }
                let data = generate(&self.fs, &self.target(cx)?)?;
                Ok(Some(Arc::new(InodeFile::with_snapshot(
                    cx,
                    path.clone(),
                    flags,
                    data,
                ))))
            }
            Node::Comm => {
                let target = self.target(cx)?;
                if flags & super::file::O_ACCMODE != super::file::O_RDONLY {
                    // Only a thread of the same process may rename it, as on Linux.
                    if target.tgid != cx.tgid {
                        return Err(Errno::EACCES);
                    }
                    let thread = target
                        .group
                        .as_ref()
                        .and_then(|g| {
                            g.state()
                                .threads
                                .iter()
                                .find(|t| t.tid() == target.tid)
                                .cloned()
                        })
                        .ok_or(Errno::ENOENT)?;
                    return Ok(Some(Arc::new(CommWriter {
                        thread,
                        flags: std::sync::atomic::AtomicI32::new(flags),
                    })));
                }
                let data = format!("{}\n", comm(&target)).into_bytes();
                Ok(Some(Arc::new(InodeFile::with_snapshot(
                    cx,
                    path.clone(),
                    flags,
                    data,
                ))))
            }
            Node::FdInfo(fd) => {
                let data = fdinfo(&self.target(cx)?, fd)?;
                Ok(Some(Arc::new(InodeFile::with_snapshot(
                    cx,
                    path.clone(),
                    flags,
                    data,
                ))))
            }
            Node::Root
            | Node::Pid
            | Node::FdDir
            | Node::FdInfoDir
            | Node::TaskDir
            | Node::Task
            | Node::NsDir
            | Node::Sysvipc => {
                let entries = self.readdir(cx)?;
                Ok(Some(Arc::new(InodeFile::with_listing(
                    cx,
                    path.clone(),
                    flags,
                    entries,
                ))))
            }
            _ => Ok(None),
        }
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        // Reached only through a description opened without a snapshot: empty.
        let _ = (offset, buf);
        Ok(0)
    }
}

/// A random (version 4) UUID, as `/proc/sys/kernel/random/uuid` gives.
fn uuid() -> String {
    let mut b = [0u8; 16];
    if crate::random::fill(&mut b).is_err() {
        return String::new();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// `/proc/sys/kernel/random/uuid`: a new UUID at each open.
struct RandomUuid {
    dev: u64,
    ino: u64,
}

impl Inode for RandomUuid {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        self.ino
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            dev: self.dev,
            ino: self.ino,
            nlink: 1,
            mode: S_IFREG | 0o444,
            blksize: 1024,
            ..Stat::default()
        })
    }
    fn open(
        &self,
        cx: &Cx,
        path: &Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        if flags & super::file::O_ACCMODE != super::file::O_RDONLY {
            return Err(Errno::EACCES);
        }
        let data = format!("{}\n", uuid()).into_bytes();
        Ok(Some(Arc::new(InodeFile::with_snapshot(
            cx,
            path.clone(),
            flags,
            data,
        ))))
    }
}

/// Which name of the UTS namespace a [`UtsSysctl`] is.
#[derive(Clone, Copy, Debug)]
enum UtsField {
    Hostname,
    Domainname,
}

/// `/proc/sys/kernel/hostname` and `domainname`: the sandbox's names (uname's), which a
/// write changes as `sethostname`/`setdomainname` do (the OCI `linux.sysctl` sets them
/// at boot).
struct UtsSysctl {
    dev: u64,
    field: UtsField,
}

impl UtsSysctl {
    fn inode(dev: u64, field: UtsField) -> Arc<dyn Inode> {
        Arc::new(Self { dev, field })
    }

    fn ino(&self) -> u64 {
        match self.field {
            UtsField::Hostname => 0x20_0001,
            UtsField::Domainname => 0x20_0002,
        }
    }
}

impl Inode for UtsSysctl {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dev(&self) -> u64 {
        self.dev
    }
    fn ino(&self) -> u64 {
        UtsSysctl::ino(self)
    }
    fn stat(&self) -> SysResult<Stat> {
        Ok(Stat {
            dev: self.dev,
            ino: UtsSysctl::ino(self),
            nlink: 1,
            mode: S_IFREG | 0o644,
            blksize: 1024,
            ..Stat::default()
        })
    }
    fn open(
        &self,
        cx: &Cx,
        path: &Path,
        flags: i32,
    ) -> SysResult<Option<Arc<dyn FileDescription>>> {
        if flags & super::file::O_ACCMODE != super::file::O_RDONLY {
            // Root's file (0644), and the name belongs to the sandbox: CAP_SYS_ADMIN, as
            // for sethostname(2).
            if !cx.creds.capable(crate::kernel::creds::CAP_SYS_ADMIN) {
                return Err(Errno::EACCES);
            }
            let kernel = cx.kernel.as_ref().ok_or(Errno::EACCES)?;
            return Ok(Some(Arc::new(UtsWriter {
                uts: kernel.uts_of(cx.tid),
                field: self.field,
                flags: std::sync::atomic::AtomicI32::new(flags),
            })));
        }
        let mut data = match (&cx.kernel, self.field) {
            (Some(k), UtsField::Hostname) => k.uts_of(cx.tid).hostname(),
            (Some(k), UtsField::Domainname) => k.uts_of(cx.tid).domainname(),
            (None, UtsField::Hostname) => b"bulwark".to_vec(),
            (None, UtsField::Domainname) => b"(none)".to_vec(),
        };
        data.push(b'\n');
        Ok(Some(Arc::new(InodeFile::with_snapshot(
            cx,
            path.clone(),
            flags,
            data,
        ))))
    }
}

/// An open `/proc/sys/kernel/hostname` (or `domainname`) for writing: each write sets
/// the name to what it holds up to a newline or NUL, at most 64 bytes (Linux's
/// `proc_dostring` of a `__NEW_UTS_LEN` string), in the UTS namespace of the thread that
/// writes (of the one that opened it, for a write from outside any thread).
struct UtsWriter {
    uts: Arc<crate::kernel::uts::UtsNamespace>,
    field: UtsField,
    flags: std::sync::atomic::AtomicI32,
}

impl FileDescription for UtsWriter {
    fn read(&self, _: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EBADF)
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        let end = buf
            .iter()
            .position(|&b| b == b'\n' || b == 0)
            .unwrap_or(buf.len())
            .min(64);
        let uts = crate::kernel::current::get()
            .map_or_else(|| Arc::clone(&self.uts), |(thread, _)| thread.uts());
        match self.field {
            UtsField::Hostname => uts.set_hostname(&buf[..end]),
            UtsField::Domainname => uts.set_domainname(&buf[..end]),
        }
        Ok(buf.len())
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::file::anon_stat())
    }

    fn flags(&self) -> i32 {
        self.flags.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }
}

fn cpuinfo(_: &ProcFs, _: &Cx) -> SysResult<Vec<u8>> {
    Ok(super::cpuinfo::text().as_bytes().to_vec())
}

fn filesystems(_: &ProcFs, _: &Cx) -> SysResult<Vec<u8>> {
    Ok(b"nodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\toverlay\nnodev\tpipefs\n".to_vec())
}

fn meminfo(fs: &ProcFs, _: &Cx) -> SysResult<Vec<u8>> {
    // The container's memory limit when it has one (`MemoryFile::total`).
    let total = fs.memory.total() / 1024;
    let used = fs.memory.allocated() / 1024;
    let free = total.saturating_sub(used);
    Ok(format!(
        "MemTotal:       {total:8} kB\nMemFree:        {free:8} kB\nMemAvailable:   {free:8} kB\n\
         Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\n\
         SwapFree:              0 kB\n"
    )
    .into_bytes())
}

fn maps(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let mm = cx.mm.as_ref().ok_or(Errno::ENOENT)?;
    let mut out = String::new();
    for vma in mm.vmas() {
        let p = |f: Perms, c: char| if vma.perms.contains(f) { c } else { '-' };
        let (offset, name) = match &vma.object {
            Some((obj, off)) if !(vma.shared && obj.name().starts_with("/dev/zero")) => {
                (*off, obj.name())
            }
            Some((obj, _)) => (0, obj.name()),
            None => (
                0,
                match vma.kind {
                    VmaKind::Heap => "[heap]".to_string(),
                    VmaKind::Stack => "[stack]".to_string(),
                    VmaKind::Plain => String::new(),
                },
            ),
        };
        let line = format!(
            "{:08x}-{:08x} {}{}{}{} {:08x} 00:00 0",
            vma.start,
            vma.end,
            p(Perms::READ, 'r'),
            p(Perms::WRITE, 'w'),
            p(Perms::EXEC, 'x'),
            if vma.shared { 's' } else { 'p' },
            offset
        );
        if name.is_empty() {
            let _ = writeln!(out, "{line}");
        } else {
            let _ = writeln!(out, "{line:<72} {name}");
        }
    }
    Ok(out.into_bytes())
}

fn mounts(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let fs = cx.fs.as_ref().ok_or(Errno::ENOENT)?;
    let root = fs.root();
    let mut out = Vec::new();
    for m in fs.vfs.mounts() {
        let at = match &m.mountpoint {
            Some(mp) => mp.name_from(&root),
            None => b"/".to_vec(),
        };
        out.extend_from_slice(m.source.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&at);
        let opts = if m.is_read_only() { "ro" } else { "rw" };
        out.extend_from_slice(format!(" {} {opts} 0 0\n", m.fstype).as_bytes());
    }
    Ok(out)
}

/// `/proc/self/fdinfo/N`: the description's offset, flags (with `O_CLOEXEC` for the
/// descriptor's flag, as Linux shows it) and mount, then what the file adds.
fn fdinfo(cx: &Cx, fd: i32) -> SysResult<Vec<u8>> {
    let fds = cx.fds.as_ref().ok_or(Errno::ENOENT)?;
    let file = fds.get(fd).map_err(|_| Errno::ENOENT)?;
    let pos = file.seek(0, super::file::SEEK_CUR).unwrap_or(0);
    let mut flags = file.flags();
    if fds.cloexec(fd).unwrap_or(false) {
        flags |= super::file::O_CLOEXEC;
    }
    let flags = u32::from_ne_bytes(flags.to_ne_bytes());
    let mnt = file.path().map_or(0, |p| p.mount.id);
    let ino = file.stat().map_or(0, |s| s.ino);
    let mut out =
        format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt}\nino:\t{ino}\n").into_bytes();
    out.extend(file.fdinfo());
    Ok(out)
}

/// `/proc/self/limits`.
fn limits(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    const NAMES: [(&str, &str); 16] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let group = cx.group.as_ref().ok_or(Errno::ENOENT)?;
    let limits = group.limits().clone();
    let show = |v: u64| {
        if v == crate::kernel::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    let mut out = format!(
        "{:<26}{:<21}{:<21}{:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    for (i, (name, unit)) in (0u32..).zip(NAMES) {
        let l = limits.get(i)?;
        out.push_str(&format!(
            "{name:<26}{:<21}{:<21}{unit:<10}\n",
            show(l.cur),
            show(l.max)
        ));
    }
    Ok(out.into_bytes())
}

fn mountinfo(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let fs = cx.fs.as_ref().ok_or(Errno::ENOENT)?;
    let root = fs.root();
    let mut out = Vec::new();
    for m in fs.vfs.mounts() {
        let (parent, at) = match &m.mountpoint {
            Some(mp) => (mp.mount.id, mp.name_from(&root)),
            None => (m.id, b"/".to_vec()),
        };
        let dev = m.root.inode.dev();
        let opts = if m.is_read_only() { "ro" } else { "rw" };
        out.extend_from_slice(
            format!("{} {parent} {}:{} / ", m.id, dev >> 8, dev & 0xff).as_bytes(),
        );
        out.extend_from_slice(&at);
        out.extend_from_slice(format!(" {opts} - {} {} {opts}\n", m.fstype, m.source).as_bytes());
    }
    Ok(out)
}

/// The process's name: its executable's, cut to 15 bytes as Linux's `comm`.
fn comm(cx: &Cx) -> String {
    // The thread's name (prctl(PR_SET_NAME), or the program's at execve).
    let named = cx.group.as_ref().and_then(|g| {
        let threads = g.state().threads.clone();
        threads
            .iter()
            .find(|t| t.tid() == cx.tid)
            .and_then(|t| t.control.name())
    });
    if let Some(n) = named {
        return String::from_utf8_lossy(&n).into_owned();
    }
    let name = cx
        .fs
        .as_ref()
        .and_then(|f| f.exe())
        .map(|p| String::from_utf8_lossy(&p.dentry.name).into_owned())
        .unwrap_or_default();
    name.chars().take(15).collect()
}

/// `/proc/PID/stat` (and `task/TID/stat`). Fault counts, the scheduling fields and the
/// addresses of the program's segments read 0.
fn stat(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let (ppid, pgrp, session, threads, tty) = match &cx.group {
        Some(g) => {
            let ppid = g.parent().map_or(0, |p| p.tgid);
            let s = g.state();
            (ppid, s.pgid, s.sid, s.threads.len(), s.ctty.clone())
        }
        None => (0, cx.tgid, cx.tgid, 1, None),
    };
    // The controlling terminal as Linux encodes a device number here, and its
    // foreground process group.
    let (tty_nr, tpgid) = tty.map_or((0, -1), |pty| {
        let nr = super::tty::devpts::slave_rdev(pty.index);
        (nr, pty.lock().pgrp.unwrap_or(-1))
    });
    let state = state(cx).0;
    let vsize: u64 = cx
        .mm
        .as_ref()
        .map_or(0, |mm| mm.vmas().iter().map(|v| v.end - v.start).sum());
    let rss = cx.mm.as_ref().map_or(0, |mm| mm.resident_pages());
    let (own, children, start) = match (&cx.kernel, &cx.group) {
        (Some(k), Some(g)) => (k.group_usage(g), g.usage.children(), g.start_time),
        _ => Default::default(),
    };
    let mut fields = vec![
        cx.tgid.to_string(),
        format!("({})", comm(cx)),
        state.to_string(),
        ppid.to_string(),
        pgrp.to_string(),
        session.to_string(),
        tty_nr.to_string(),
        tpgid.to_string(),
    ];
    // flags, minflt, cminflt, majflt, cmajflt
    fields.extend(std::iter::repeat_n("0".to_string(), 5));
    // utime, stime, cutime, cstime
    fields.extend(
        [own.user, own.system, children.user, children.system].map(|d| clock_ticks(d).to_string()),
    );
    fields.extend(["20".into(), "0".into(), threads.to_string(), "0".into()]);
    // starttime, vsize, rss, rsslim
    fields.extend([
        clock_ticks(start).to_string(),
        vsize.to_string(),
        rss.to_string(),
        u64::MAX.to_string(),
    ]);
    // startcode … exit_code: 33 more fields, 52 in all.
    fields.extend(std::iter::repeat_n("0".to_string(), 52 - fields.len()));
    Ok(format!("{}\n", fields.join(" ")).into_bytes())
}

/// The sandbox's uptime and thread count (from the kernel, when the caller has one).
fn sandbox_clock(cx: &Cx) -> (std::time::Duration, usize) {
    cx.kernel
        .as_ref()
        .map_or((std::time::Duration::ZERO, 1), |k| {
            (k.uptime(), k.tables().threads.len().max(1))
        })
}

/// `uptime`: seconds since boot (`CLOCK_BOOTTIME`); idle time is not accounted (0).
fn uptime(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let (up, _) = sandbox_clock(cx);
    Ok(format!("{}.{:02} 0.00\n", up.as_secs(), up.subsec_millis() / 10).into_bytes())
}

/// `loadavg`: the load is not accounted (0); runnable/total threads and the last PID.
fn loadavg(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let (_, threads) = sandbox_clock(cx);
    let last = cx
        .kernel
        .as_ref()
        .and_then(|k| k.tables().threads.keys().next_back().copied())
        .unwrap_or(cx.tgid);
    Ok(format!("0.00 0.00 0.00 1/{threads} {last}\n").into_bytes())
}

/// `/proc/stat`: CPU time is not accounted per state yet, so the counters are 0; the boot
/// time and process counts are the sandbox's.
fn kernel_stat(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let (up, threads) = sandbox_clock(cx);
    let now = Time::now().sec;
    let btime = now - i64::try_from(up.as_secs()).unwrap_or(0);
    let cpus = crate::kernel::process::host_cpus();
    let mut out = String::from("cpu  0 0 0 0 0 0 0 0 0 0\n");
    for i in 0..cpus {
        let _ = writeln!(out, "cpu{i} 0 0 0 0 0 0 0 0 0 0");
    }
    let _ = write!(
        out,
        "intr 0\nctxt 0\nbtime {btime}\nprocesses {threads}\nprocs_running 1\nprocs_blocked 0\nsoftirq 0\n"
    );
    Ok(out.into_bytes())
}

/// `statm`: size, resident, shared, text, lib, data, dirty, in pages.
fn statm(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let Some(mm) = cx.mm.as_ref() else {
        return Ok(b"0 0 0 0 0 0 0\n".to_vec());
    };
    let pages = |v: &crate::mm::Vma| (v.end - v.start) / crate::mm::PAGE_SIZE;
    let vmas = mm.vmas();
    let size: u64 = vmas.iter().map(pages).sum();
    let text: u64 = vmas
        .iter()
        .filter(|v| v.perms.contains(Perms::EXEC))
        .map(pages)
        .sum();
    let data: u64 = vmas
        .iter()
        .filter(|v| !v.shared && v.perms.contains(Perms::WRITE))
        .map(pages)
        .sum();
    let resident = mm.resident_pages();
    Ok(format!("{size} {resident} 0 {text} 0 {data} 0\n").into_bytes())
}

/// An open `/proc/PID/comm` for writing: each write names the thread (its first 15
/// bytes, a newline included, as Linux keeps them).
struct CommWriter {
    thread: Arc<crate::kernel::process::TaskHandle>,
    flags: std::sync::atomic::AtomicI32,
}

impl FileDescription for CommWriter {
    fn read(&self, _: &mut [u8]) -> SysResult<usize> {
        Err(Errno::EBADF)
    }

    fn write(&self, buf: &[u8]) -> SysResult<usize> {
        self.thread.control.set_name(Some(buf));
        Ok(buf.len())
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::file::anon_stat())
    }

    fn flags(&self) -> i32 {
        self.flags.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }
}

/// The thread's state letter and name, as `stat` and `status` show them (for a process,
/// its main thread's).
fn state(cx: &Cx) -> (char, &'static str) {
    let Some(g) = &cx.group else {
        return ('R', "running");
    };
    g.state().run_state(cx.tid)
}

/// The signal sets `status` shows: pending for the thread, pending for the process,
/// blocked, ignored, caught.
fn signal_sets(cx: &Cx) -> [u64; 5] {
    use crate::kernel::signal::{SIG_DFL, SIG_IGN};
    let Some(g) = &cx.group else {
        return [0; 5];
    };
    let (thread_pending, blocked) =
        g.state()
            .threads
            .iter()
            .find(|h| h.tid() == cx.tid)
            .map_or((0, 0), |h| {
                let s = h.signals();
                (s.pending.set().0, s.mask.0)
            });
    let shared = g.state().pending.set().0;
    let actions = g.sighand();
    let actions = actions.lock().unwrap_or_else(|e| e.into_inner());
    let (mut ignored, mut caught) = (0u64, 0u64);
    for sig in 1..=64 {
        match actions.get(sig).handler {
            SIG_DFL => {}
            SIG_IGN => ignored |= 1 << (sig - 1),
            _ => caught |= 1 << (sig - 1),
        }
    }
    [thread_pending, shared, blocked, ignored, caught]
}

/// `status`, in Linux's order; what the Sentry does not account (locked and swapped
/// memory, context switches) reads 0.
fn status(_: &ProcFs, cx: &Cx) -> SysResult<Vec<u8>> {
    let c = &cx.creds;
    let groups: String = c.groups.iter().map(|g| format!("{g} ")).collect();
    let fdsize = cx.fds.as_ref().map_or(64, |t| t.capacity());
    let kb = |pages: u64| pages * (crate::mm::PAGE_SIZE / 1024);
    let (vm, rss, stack, data) = cx.mm.as_ref().map_or((0, 0, 0, 0), |mm| {
        let vmas = mm.vmas();
        let size = |f: &dyn Fn(&crate::mm::Vma) -> bool| {
            vmas.iter()
                .filter(|v| f(v))
                .map(|v| (v.end - v.start) / 1024)
                .sum::<u64>()
        };
        (
            size(&|_| true),
            kb(mm.resident_pages()),
            size(&|v| v.kind == VmaKind::Stack),
            size(&|v| v.object.is_none() && v.perms.contains(Perms::WRITE)),
        )
    });
    let (ppid, threads) = cx.group.as_ref().map_or((0, 1), |g| {
        (g.parent().map_or(0, |p| p.tgid), g.state().threads.len())
    });
    let (letter, name) = state(cx);
    let umask = cx.fs.as_ref().map_or(0o022, |f| f.umask());
    let [sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt] = signal_sets(cx);
    let mut out = String::new();
    let _ = write!(
        out,
        "Name:\t{comm}\nUmask:\t{umask:04o}\nState:\t{letter} ({name})\nTgid:\t{tgid}\n\
         Ngid:\t0\nPid:\t{tid}\nPPid:\t{ppid}\nTracerPid:\t0\n\
         Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t{fdsize}\nGroups:\t{groups}\n\
         NStgid:\t{tgid}\nNSpid:\t{tid}\n",
        c.uid,
        c.euid,
        c.suid,
        c.fsuid,
        c.gid,
        c.egid,
        c.sgid,
        c.fsgid,
        comm = comm(cx),
        tgid = cx.tgid,
        tid = cx.tid,
    );
    if cx.mm.is_some() {
        let _ = write!(
            out,
            "VmPeak:\t{vm:8} kB\nVmSize:\t{vm:8} kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\n\
             VmHWM:\t{rss:8} kB\nVmRSS:\t{rss:8} kB\nVmData:\t{data:8} kB\n\
             VmStk:\t{stack:8} kB\nVmSwap:\t       0 kB\n"
        );
    }
    let _ = write!(
        out,
        "Threads:\t{threads}\nSigQ:\t0/0\nSigPnd:\t{sig_pnd:016x}\nShdPnd:\t{shd_pnd:016x}\n\
         SigBlk:\t{sig_blk:016x}\nSigIgn:\t{sig_ign:016x}\nSigCgt:\t{sig_cgt:016x}\n\
         CapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{:016x}\n\
         CapAmb:\t{:016x}\nNoNewPrivs:\t{}\n\
         Cpus_allowed_list:\t0-{}\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
        c.caps.inheritable,
        c.caps.permitted,
        c.caps.effective,
        c.caps.bounding,
        c.caps.ambient,
        u8::from(c.no_new_privs),
        crate::kernel::process::host_cpus() - 1
    );
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_files_and_self() {
        let memory = Arc::new(MemoryFile::new(1 << 24).unwrap());
        let root = ProcFs::new_root(&memory);
        let cx = Cx {
            tgid: 7,
            tid: 7,
            ..Cx::root()
        };
        assert_eq!(
            root.lookup(&cx, b"self").unwrap().readlink(&cx).unwrap(),
            b"7"
        );
        assert!(root.lookup(&cx, b"7").is_ok());
        assert_eq!(
            root.lookup(&cx, b"8").err(),
            Some(Errno::ENOENT),
            "only real processes"
        );
        let info = meminfo(&root.fs, &cx).unwrap();
        assert!(String::from_utf8(info).unwrap().starts_with("MemTotal:"));
        let kernel = root
            .lookup(&cx, b"sys")
            .unwrap()
            .lookup(&cx, b"kernel")
            .unwrap();
        let release = kernel.lookup(&cx, b"osrelease").unwrap();
        let mut buf = [0u8; 32];
        let n = release.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf[..n], format!("{RELEASE}\n").as_bytes());
        let cpus = String::from_utf8(cpuinfo(&root.fs, &cx).unwrap()).unwrap();
        assert!(cpus.contains("processor\t: 0"));
    }
}
