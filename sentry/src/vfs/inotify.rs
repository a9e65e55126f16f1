//! inotify: watches on inodes, and the events the VFS operations generate for them.
//!
//! Watches live in one sandbox-wide registry keyed by inode identity (`dev`, `ino`), as
//! Linux hangs its marks on the inode. The syscall layer reports each operation at its
//! choke point through the `*_event` functions; with no watch anywhere these cost one
//! atomic load ([`active`]), so the VFS fast paths pay nothing else.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::file::{FileDescription, O_RDWR, POLLIN};
use super::path::Path;
use super::{Inode, Stat, S_IFDIR, S_IFMT};
use crate::errno::{Errno, SysResult};
use crate::kernel::wait::WaitQueue;

pub const IN_ACCESS: u32 = 0x1;
pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_CLOSE_NOWRITE: u32 = 0x10;
pub const IN_OPEN: u32 = 0x20;
pub const IN_MOVED_FROM: u32 = 0x40;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;
pub const IN_DELETE: u32 = 0x200;
pub const IN_DELETE_SELF: u32 = 0x400;
pub const IN_MOVE_SELF: u32 = 0x800;
pub const IN_ALL_EVENTS: u32 = 0xfff;
pub const IN_UNMOUNT: u32 = 0x2000;
pub const IN_Q_OVERFLOW: u32 = 0x4000;
pub const IN_IGNORED: u32 = 0x8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;

/// Every bit `inotify_add_watch` knows (Linux's `ALL_INOTIFY_BITS`).
pub const ALL_BITS: u32 = IN_ALL_EVENTS
    | IN_UNMOUNT
    | IN_Q_OVERFLOW
    | IN_IGNORED
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_CREATE
    | IN_MASK_ADD
    | IN_ISDIR
    | IN_ONESHOT;

/// `/proc/sys/fs/inotify/max_queued_events`.
pub const MAX_QUEUED_EVENTS: usize = 16384;
/// `/proc/sys/fs/inotify/max_user_instances`.
pub const MAX_INSTANCES: usize = 128;
/// `/proc/sys/fs/inotify/max_user_watches` (Linux scales it with memory; at least this).
pub const MAX_WATCHES: usize = 8192;
/// `sizeof(struct inotify_event)` without its name.
const EVENT_HEADER: usize = 16;

/// An inode's identity, the registry's key.
type Key = (u64, u64);

/// How many watches exist in the sandbox: the one check the hot paths make.
static WATCHES: AtomicUsize = AtomicUsize::new(0);
/// How many inotify instances exist (`EMFILE` past [`MAX_INSTANCES`]).
static INSTANCES: AtomicUsize = AtomicUsize::new(0);
/// The watches on each inode: the instance and its watch descriptor.
type Registry = BTreeMap<Key, Vec<(Weak<Inotify>, i32)>>;
static REGISTRY: Mutex<Registry> = Mutex::new(BTreeMap::new());
/// The cookie that pairs an `IN_MOVED_FROM` with its `IN_MOVED_TO`.
static NEXT_COOKIE: AtomicU32 = AtomicU32::new(1);

/// Whether any watch exists; the event functions return at once when none does.
#[inline]
pub fn active() -> bool {
    WATCHES.load(Ordering::Relaxed) != 0
}

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn key_of(inode: &dyn Inode) -> Key {
    (inode.dev(), inode.ino())
}

fn is_dir(inode: &dyn Inode) -> bool {
    inode.mode() & S_IFMT == S_IFDIR
}

/// Sends an event to every watch on `key`.
fn dispatch(key: Key, mask: u32, cookie: u32, name: &[u8]) {
    let targets: Vec<(Arc<Inotify>, i32)> = match registry().get(&key) {
        Some(list) => list
            .iter()
            .filter_map(|(w, wd)| Some((w.upgrade()?, *wd)))
            .collect(),
        None => return,
    };
    for (instance, wd) in targets {
        instance.deliver(wd, mask, cookie, name);
    }
}

/// An event on the object at `path` (open, close, read, write, attributes): to its own
/// watches, and with its name to its directory's.
pub fn path_event(path: &Path, mask: u32) {
    if active() {
        let inode = path.inode();
        let parent = path.dentry.parent.as_ref().map(|p| &*p.inode);
        object_event(&**inode, parent.map(|p| (p, &path.dentry.name[..])), mask);
    }
}

/// An event on `inode` (and its directory, given as the parent and the entry's name).
pub fn object_event(inode: &dyn Inode, parent: Option<(&dyn Inode, &[u8])>, mask: u32) {
    if !active() {
        return;
    }
    let mask = if is_dir(inode) { mask | IN_ISDIR } else { mask };
    // The directory's watches hear first, as on Linux.
    if let Some((dir, name)) = parent {
        dispatch(key_of(dir), mask, 0, name);
    }
    dispatch(key_of(inode), mask, 0, b"");
}

/// An entry of `dir` was created, removed or moved: `IN_CREATE`, `IN_DELETE`,
/// `IN_MOVED_FROM`/`IN_MOVED_TO` (with `cookie`).
pub fn entry_event(dir: &dyn Inode, name: &[u8], mask: u32, is_dir: bool, cookie: u32) {
    if active() {
        let mask = if is_dir { mask | IN_ISDIR } else { mask };
        dispatch(key_of(dir), mask, cookie, name);
    }
}

/// A rename of `old_dir`'s `old` (the inode `moved`) to `new_dir`'s `new`, which replaced
/// `replaced` if it existed.
pub fn rename_event(
    old_dir: &dyn Inode,
    old: &[u8],
    new_dir: &dyn Inode,
    new: &[u8],
    moved: &dyn Inode,
    replaced: Option<&dyn Inode>,
) {
    if !active() {
        return;
    }
    let cookie = NEXT_COOKIE.fetch_add(1, Ordering::Relaxed);
    let dir = is_dir(moved);
    entry_event(old_dir, old, IN_MOVED_FROM, dir, cookie);
    entry_event(new_dir, new, IN_MOVED_TO, dir, cookie);
    // Self events carry no IN_ISDIR (as Linux reports them).
    dispatch(key_of(moved), IN_MOVE_SELF, 0, b"");
    if let Some(r) = replaced {
        lost_link(r);
        drop_if_gone(r);
    }
}

/// `dir`'s entry `name`, the inode `victim`, was removed (`unlink`, `rmdir`): in Linux's
/// order, `IN_ATTRIB` for a file's link count, `IN_DELETE_SELF` and the end of the
/// victim's watches once it has no link left, then `IN_DELETE` in the directory.
pub fn removed(dir: &dyn Inode, name: &[u8], victim: &dyn Inode) {
    if active() {
        lost_link(victim);
        drop_if_gone(victim);
        entry_event(dir, name, IN_DELETE, is_dir(victim), 0);
    }
}

/// A file's link count changed.
fn lost_link(inode: &dyn Inode) {
    if !is_dir(inode) {
        object_event(inode, None, IN_ATTRIB);
    }
}

/// For an inode left without links: `IN_DELETE_SELF`, and its watches end
/// (`IN_IGNORED`).
fn drop_if_gone(inode: &dyn Inode) {
    if !is_dir(inode) && inode.stat().map_or(0, |s| s.nlink) != 0 {
        return;
    }
    dispatch(key_of(inode), IN_DELETE_SELF, 0, b"");
    let targets: Vec<(Arc<Inotify>, i32)> = registry()
        .get(&key_of(inode))
        .map(|l| {
            l.iter()
                .filter_map(|(w, wd)| Some((w.upgrade()?, *wd)))
                .collect()
        })
        .unwrap_or_default();
    for (instance, wd) in targets {
        let _ = instance.remove_watch(wd);
    }
}

/// One queued event.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name field's length: NUL-terminated and padded to the header's size.
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).next_multiple_of(EVENT_HEADER)
        }
    }

    fn size(&self) -> usize {
        EVENT_HEADER + self.name_len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.wd.to_ne_bytes());
        out.extend_from_slice(&self.mask.to_ne_bytes());
        out.extend_from_slice(&self.cookie.to_ne_bytes());
        let len = self.name_len();
        out.extend_from_slice(&u32::try_from(len).unwrap_or(0).to_ne_bytes());
        let start = out.len();
        out.extend_from_slice(&self.name);
        out.resize(start + len, 0);
    }
}

struct Watch {
    key: Key,
    mask: u32,
}

#[derive(Default)]
struct State {
    watches: BTreeMap<i32, Watch>,
    last_wd: i32,
    events: VecDeque<Event>,
    /// The bytes of the queued events (`FIONREAD`).
    bytes: usize,
}

impl State {
    /// Queues `event`, merging it into an identical last one, or queueing one
    /// `IN_Q_OVERFLOW` when the queue is full.
    fn push(&mut self, event: Event) {
        if self.events.back() == Some(&event) {
            return;
        }
        let event = if self.events.len() >= MAX_QUEUED_EVENTS {
            let overflow = Event {
                wd: -1,
                mask: IN_Q_OVERFLOW,
                cookie: 0,
                name: Vec::new(),
            };
            if self.events.back() == Some(&overflow) {
                return;
            }
            overflow
        } else {
            event
        };
        self.bytes += event.size();
        self.events.push_back(event);
    }
}

/// An inotify instance: its watches and its queue of events.
pub struct Inotify {
    this: Weak<Inotify>,
    state: Mutex<State>,
    queue: WaitQueue,
    flags: AtomicI32,
}

impl Inotify {
    /// A new instance (`EMFILE` past the instance limit).
    pub fn new(flags: i32) -> SysResult<Arc<Self>> {
        if INSTANCES.fetch_add(1, Ordering::Relaxed) >= MAX_INSTANCES {
            INSTANCES.fetch_sub(1, Ordering::Relaxed);
            return Err(Errno::EMFILE);
        }
        Ok(Arc::new_cyclic(|this| Self {
            this: this.clone(),
            state: Mutex::new(State::default()),
            queue: WaitQueue::default(),
            flags: AtomicI32::new(O_RDWR | flags),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `inotify_add_watch` on `inode`: the watch descriptor, the same one again for an
    /// inode already watched.
    pub fn add_watch(&self, inode: &dyn Inode, mask: u32) -> SysResult<i32> {
        let key = key_of(inode);
        let events = mask & (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK);
        let mut state = self.state();
        if let Some((&wd, w)) = state.watches.iter_mut().find(|(_, w)| w.key == key) {
            if mask & IN_MASK_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            w.mask = if mask & IN_MASK_ADD != 0 {
                w.mask | events
            } else {
                events
            };
            return Ok(wd);
        }
        if state.watches.len() >= MAX_WATCHES {
            return Err(Errno::ENOSPC);
        }
        let mut wd = state.last_wd;
        loop {
            wd = if wd == i32::MAX { 1 } else { wd + 1 };
            if !state.watches.contains_key(&wd) {
                break;
            }
        }
        state.last_wd = wd;
        state.watches.insert(wd, Watch { key, mask: events });
        registry()
            .entry(key)
            .or_default()
            .push((self.this.clone(), wd));
        WATCHES.fetch_add(1, Ordering::Relaxed);
        Ok(wd)
    }

    /// `inotify_rm_watch`: ends the watch with `IN_IGNORED` (`EINVAL` for an unknown one).
    pub fn remove_watch(&self, wd: i32) -> SysResult<()> {
        let mut state = self.state();
        let watch = state.watches.remove(&wd).ok_or(Errno::EINVAL)?;
        state.push(Event {
            wd,
            mask: IN_IGNORED,
            cookie: 0,
            name: Vec::new(),
        });
        unregister(watch.key, &self.this, wd);
        drop(state);
        self.queue.notify_all();
        Ok(())
    }

    /// Queues an event for watch `wd` if its mask wants it.
    fn deliver(&self, wd: i32, mask: u32, cookie: u32, name: &[u8]) {
        let mut state = self.state();
        let Some(watch) = state.watches.get(&wd) else {
            return;
        };
        if watch.mask & mask & IN_ALL_EVENTS == 0 {
            return;
        }
        let oneshot = watch.mask & IN_ONESHOT != 0;
        state.push(Event {
            wd,
            mask,
            cookie,
            name: name.to_vec(),
        });
        if oneshot {
            if let Some(w) = state.watches.remove(&wd) {
                state.push(Event {
                    wd,
                    mask: IN_IGNORED,
                    cookie: 0,
                    name: Vec::new(),
                });
                unregister(w.key, &self.this, wd);
            }
        }
        drop(state);
        self.queue.notify_all();
    }
}

/// Takes watch `wd` of `instance` out of the registry.
fn unregister(key: Key, instance: &Weak<Inotify>, wd: i32) {
    let mut reg = registry();
    if let Some(list) = reg.get_mut(&key) {
        list.retain(|(w, d)| !(w.ptr_eq(instance) && *d == wd));
        if list.is_empty() {
            reg.remove(&key);
        }
    }
    WATCHES.fetch_sub(1, Ordering::Relaxed);
}

impl Drop for Inotify {
    fn drop(&mut self) {
        let watches = std::mem::take(&mut self.state().watches);
        for (wd, w) in watches {
            unregister(w.key, &self.this, wd);
        }
        INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FileDescription for Inotify {
    /// Whole events while they fit; `EINVAL` when the first does not.
    fn read(&self, buf: &mut [u8]) -> SysResult<usize> {
        let mut state = self.state();
        let Some(first) = state.events.front() else {
            return Err(Errno::EAGAIN);
        };
        if first.size() > buf.len() {
            return Err(Errno::EINVAL);
        }
        let mut out = Vec::new();
        while let Some(e) = state.events.front() {
            if out.len() + e.size() > buf.len() {
                break;
            }
            e.encode(&mut out);
            let size = e.size();
            state.bytes -= size;
            state.events.pop_front();
        }
        buf[..out.len()].copy_from_slice(&out);
        Ok(out.len())
    }

    fn stat(&self) -> SysResult<Stat> {
        Ok(super::file::anon_stat())
    }

    fn flags(&self) -> i32 {
        self.flags.load(Ordering::Relaxed)
    }

    fn set_flags(&self, flags: i32) {
        super::file::set_status_flags(&self.flags, flags);
    }

    fn anon_name(&self) -> Vec<u8> {
        b"anon_inode:inotify".to_vec()
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn readiness(&self) -> u16 {
        if self.state().events.is_empty() {
            0
        } else {
            POLLIN
        }
    }

    fn readable_bytes(&self) -> SysResult<usize> {
        Ok(self.state().bytes)
    }

    fn as_inotify(&self) -> Option<&Inotify> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(wd: i32, mask: u32, name: &[u8]) -> Event {
        Event {
            wd,
            mask,
            cookie: 0,
            name: name.to_vec(),
        }
    }

    #[test]
    fn identical_consecutive_events_coalesce() {
        let mut s = State::default();
        s.push(ev(1, IN_MODIFY, b"a"));
        s.push(ev(1, IN_MODIFY, b"a"));
        s.push(ev(1, IN_MODIFY, b"b"));
        s.push(ev(1, IN_MODIFY, b"a"));
        assert_eq!(s.events.len(), 3);
        assert_eq!(s.bytes, 3 * 32, "a name pads to 16 bytes");
    }

    #[test]
    fn a_full_queue_ends_with_one_overflow() {
        let mut s = State::default();
        for i in 0..MAX_QUEUED_EVENTS + 10 {
            s.push(ev(1, IN_CREATE, format!("f{i}").as_bytes()));
        }
        assert_eq!(s.events.len(), MAX_QUEUED_EVENTS + 1);
        assert_eq!(
            s.events.back().map(|e| (e.wd, e.mask)),
            Some((-1, IN_Q_OVERFLOW))
        );
    }

    #[test]
    fn read_takes_whole_events_and_refuses_a_short_buffer() {
        let i = Inotify::new(0).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(i.read(&mut buf), Err(Errno::EAGAIN));
        i.state().push(ev(3, IN_CREATE, b"name"));
        i.state().push(ev(3, IN_DELETE, b"name"));
        assert_eq!(i.readable_bytes(), Ok(64));
        assert_eq!(i.read(&mut buf[..31]), Err(Errno::EINVAL));
        assert_eq!(i.read(&mut buf[..40]), Ok(32), "one whole event");
        assert_eq!(&buf[0..4], &3i32.to_ne_bytes());
        assert_eq!(&buf[12..16], &16u32.to_ne_bytes(), "len");
        assert_eq!(&buf[16..21], b"name\0");
        assert_eq!(i.read(&mut buf), Ok(32));
    }
}
