//! System V message queues (Linux's `ipc/msg.c`).
//!
//! Blocked senders and receivers sleep on the queue's wait queue and look again after
//! every change to it (a message in or out, `IPC_SET`, removal).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{get_or_create, now_seconds, Ids, IpcObject, IpcPerm, IpcPermAbi, READ_UGO, WRITE_UGO};
use crate::errno::{Errno, SysResult};
use crate::kernel::creds::{Credentials, CAP_SYS_RESOURCE};
use crate::kernel::wait::WaitQueue;

/// The largest message (`MSGMAX`), a queue's default size in bytes (`MSGMNB`), and the
/// most queues (`MSGMNI`).
pub const MSGMAX: usize = 8192;
pub const MSGMNB: u64 = 16384;
pub const MSGMNI: usize = 32000;

/// `msgrcv` flags.
pub const MSG_NOERROR: i32 = 0o10000;
pub const MSG_EXCEPT: i32 = 0o20000;
pub const MSG_COPY: i32 = 0o40000;

/// `msgctl` commands of queues' own.
pub const MSG_STAT: i32 = 11;
pub const MSG_INFO: i32 = 12;
pub const MSG_STAT_ANY: i32 = 13;

/// `struct msqid64_ds` on x86-64.
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct MsqidDs {
    pub perm: IpcPermAbi,
    pub stime: i64,
    pub rtime: i64,
    pub ctime: i64,
    pub cbytes: u64,
    pub qnum: u64,
    pub qbytes: u64,
    pub lspid: i32,
    pub lrpid: i32,
    pub unused4: u64,
    pub unused5: u64,
}
const _: () = assert!(std::mem::size_of::<MsqidDs>() == 120);

/// `struct msginfo` (`IPC_INFO`, `MSG_INFO`).
#[derive(
    Clone, Copy, Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable,
)]
#[repr(C)]
pub struct MsgInfo {
    pub msgpool: i32,
    pub msgmap: i32,
    pub msgmax: i32,
    pub msgmnb: i32,
    pub msgmni: i32,
    pub msgssz: i32,
    pub msgtql: i32,
    pub msgseg: u16,
    pub pad: u16,
}
const _: () = assert!(std::mem::size_of::<MsgInfo>() == 32);

/// One message.
pub struct Message {
    pub mtype: i64,
    pub text: Vec<u8>,
}

/// What waiters of a queue share with it.
#[derive(Default)]
pub struct QueueWaiters {
    pub queue: WaitQueue,
    removed: AtomicBool,
}

struct MsgQueue {
    perm: IpcPerm,
    messages: VecDeque<Message>,
    bytes: u64,
    qbytes: u64,
    stime: i64,
    rtime: i64,
    ctime: i64,
    lspid: i32,
    lrpid: i32,
    waiters: Arc<QueueWaiters>,
}

impl IpcObject for MsgQueue {
    fn perm(&self) -> &IpcPerm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut IpcPerm {
        &mut self.perm
    }
}

impl MsgQueue {
    fn ds(&self) -> MsqidDs {
        MsqidDs {
            perm: self.perm.abi(),
            stime: self.stime,
            rtime: self.rtime,
            ctime: self.ctime,
            cbytes: self.bytes,
            qnum: self.messages.len() as u64,
            qbytes: self.qbytes,
            lspid: self.lspid,
            lrpid: self.lrpid,
            ..MsqidDs::default()
        }
    }
}

/// Which message `msgrcv` takes (Linux's `convert_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    Any,
    Equal(i64),
    NotEqual(i64),
    /// The first of the lowest type at most this.
    LessEqual(i64),
    /// The message at this position (`MSG_COPY`).
    Number(i64),
}

impl Search {
    pub fn new(msgtyp: i64, flags: i32) -> Self {
        if flags & MSG_COPY != 0 {
            Self::Number(msgtyp)
        } else if msgtyp == 0 {
            Self::Any
        } else if msgtyp < 0 {
            Self::LessEqual(msgtyp.checked_neg().unwrap_or(i64::MAX))
        } else if flags & MSG_EXCEPT != 0 {
            Self::NotEqual(msgtyp)
        } else {
            Self::Equal(msgtyp)
        }
    }

    /// The position of the message it finds in `messages`.
    fn find(self, messages: &VecDeque<Message>) -> Option<usize> {
        match self {
            Self::Any => (!messages.is_empty()).then_some(0),
            Self::Equal(t) => messages.iter().position(|m| m.mtype == t),
            Self::NotEqual(t) => messages.iter().position(|m| m.mtype != t),
            Self::LessEqual(t) => messages
                .iter()
                .enumerate()
                .filter(|(_, m)| m.mtype <= t)
                .min_by_key(|&(i, m)| (m.mtype, i))
                .map(|(i, _)| i),
            Self::Number(n) => usize::try_from(n).ok().filter(|&n| n < messages.len()),
        }
    }
}

/// What a `msgrcv` asks for: which message, the buffer's size, and its flags.
pub struct Receive {
    pub search: Search,
    pub size: usize,
    pub flags: i32,
}

#[derive(Default)]
struct State {
    ids: Ids<MsgQueue>,
}

/// The sandbox's message queues.
#[derive(Default)]
pub struct Msg {
    state: Mutex<State>,
}

impl Msg {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `msgget`.
    pub fn get(&self, key: i32, flags: i32, creds: &Credentials) -> SysResult<i32> {
        let mut state = self.lock();
        get_or_create(
            &mut state.ids,
            key,
            flags,
            creds,
            |_| Ok(()),
            || {
                let queue = MsgQueue {
                    perm: IpcPerm::new(key, creds, flags),
                    messages: VecDeque::new(),
                    bytes: 0,
                    qbytes: MSGMNB,
                    stime: 0,
                    rtime: 0,
                    ctime: now_seconds(),
                    lspid: 0,
                    lrpid: 0,
                    waiters: Arc::default(),
                };
                Ok((queue, MSGMNI))
            },
        )
    }

    /// What the waiters of queue `id` sleep on.
    pub fn waiters(&self, id: i32) -> SysResult<Arc<QueueWaiters>> {
        Ok(Arc::clone(&self.lock().ids.get(id)?.waiters))
    }

    fn queue<'a>(
        state: &'a mut State,
        id: i32,
        waiters: &QueueWaiters,
    ) -> SysResult<&'a mut MsgQueue> {
        if waiters.removed.load(Ordering::Relaxed) {
            return Err(Errno::EIDRM);
        }
        state.ids.get_mut(id).map_err(|_| Errno::EIDRM)
    }

    /// One try of `msgsnd`: `None` if the queue has no room for it yet.
    pub fn try_send(
        &self,
        id: i32,
        waiters: &QueueWaiters,
        message: &mut Option<Message>,
        creds: &Credentials,
        pid: i32,
    ) -> SysResult<Option<()>> {
        let mut state = self.lock();
        let queue = Self::queue(&mut state, id, waiters)?;
        queue.perm.check(creds, WRITE_UGO)?;
        let Some(len) = message.as_ref().map(|m| m.text.len() as u64) else {
            return Ok(Some(()));
        };
        let fits =
            queue.bytes + len <= queue.qbytes && (queue.messages.len() as u64) < queue.qbytes;
        if !fits {
            return Ok(None);
        }
        if let Some(m) = message.take() {
            queue.messages.push_back(m);
        }
        queue.bytes += len;
        queue.lspid = pid;
        queue.stime = now_seconds();
        queue.waiters.queue.notify_all();
        Ok(Some(()))
    }

    /// One try of `msgrcv`: the message (removed unless `MSG_COPY`), `None` if none
    /// matches yet. `E2BIG` if it is longer than the buffer without `MSG_NOERROR`.
    pub fn try_receive(
        &self,
        id: i32,
        waiters: &QueueWaiters,
        want: &Receive,
        creds: &Credentials,
        pid: i32,
    ) -> SysResult<Option<Message>> {
        let (search, size, flags) = (want.search, want.size, want.flags);
        let mut state = self.lock();
        let queue = Self::queue(&mut state, id, waiters)?;
        queue.perm.check(creds, READ_UGO)?;
        let Some(at) = search.find(&queue.messages) else {
            return Ok(None);
        };
        let len = queue.messages[at].text.len();
        if size < len && flags & MSG_NOERROR == 0 {
            return Err(Errno::E2BIG);
        }
        if flags & MSG_COPY != 0 {
            let m = &queue.messages[at];
            return Ok(Some(Message {
                mtype: m.mtype,
                text: m.text.clone(),
            }));
        }
        let Some(m) = queue.messages.remove(at) else {
            return Ok(None);
        };
        queue.bytes -= len as u64;
        queue.lrpid = pid;
        queue.rtime = now_seconds();
        queue.waiters.queue.notify_all();
        Ok(Some(m))
    }

    /// `IPC_STAT` (by ID), `MSG_STAT` and `MSG_STAT_ANY` (by index).
    pub fn stat(&self, id: i32, cmd: i32, creds: &Credentials) -> SysResult<(MsqidDs, i32)> {
        let state = self.lock();
        let (ret, queue) = state.ids.for_stat(id, cmd, MSG_STAT_ANY, creds)?;
        Ok((queue.ds(), ret))
    }

    /// `IPC_SET`: owner, mode and `msg_qbytes` (above `MSGMNB` only with
    /// `CAP_SYS_RESOURCE`).
    pub fn set(&self, id: i32, new: &MsqidDs, creds: &Credentials) -> SysResult<()> {
        let mut state = self.lock();
        let queue = state.ids.controlled(id, creds)?;
        if new.qbytes > MSGMNB && !creds.capable(CAP_SYS_RESOURCE) {
            return Err(Errno::EPERM);
        }
        queue.perm.update(&new.perm)?;
        queue.qbytes = new.qbytes;
        queue.ctime = now_seconds();
        queue.waiters.queue.notify_all();
        Ok(())
    }

    /// `IPC_RMID`: the queue and its messages go at once; waiters fail with `EIDRM`.
    pub fn remove(&self, id: i32, creds: &Credentials) -> SysResult<()> {
        let mut state = self.lock();
        state.ids.controlled(id, creds)?;
        if let Some(queue) = state.ids.remove(id) {
            queue.waiters.removed.store(true, Ordering::Relaxed);
            queue.waiters.queue.notify_all();
        }
        Ok(())
    }

    /// `IPC_INFO` and `MSG_INFO`, and the highest index in use.
    pub fn info(&self, usage: bool) -> (MsgInfo, i32) {
        let state = self.lock();
        let n = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
        // Linux's MSGPOOL (in KiB) and MSGSEG.
        let pool = MSGMNI as u64 * MSGMNB / 1024;
        let (msgpool, msgmap, msgtql) = if usage {
            let (count, bytes) = state.ids.iter().fold((0u64, 0u64), |(c, b), (_, q)| {
                (c + q.messages.len() as u64, b + q.bytes)
            });
            (n(state.ids.len() as u64), n(count), n(bytes))
        } else {
            (n(pool), n(MSGMNB), n(MSGMNB))
        };
        let info = MsgInfo {
            msgpool,
            msgmap,
            msgmax: n(MSGMAX as u64),
            msgmnb: n(MSGMNB),
            msgmni: n(MSGMNI as u64),
            msgssz: 16,
            msgtql,
            msgseg: u16::try_from(pool * 1024 / 16).unwrap_or(u16::MAX),
            pad: 0,
        };
        (info, state.ids.max_index().max(0))
    }

    /// `/proc/sysvipc/msg`.
    pub fn proc_table(&self) -> String {
        use std::fmt::Write as _;
        let state = self.lock();
        let mut out = PROC_HEADER.to_string();
        for (id, q) in state.ids.iter() {
            let _ = writeln!(
                out,
                "{:>10} {:>10}  {:>4o}  {:>10} {:>10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10}",
                q.perm.key,
                id,
                q.perm.mode,
                q.bytes,
                q.messages.len(),
                q.lspid,
                q.lrpid,
                q.perm.uid,
                q.perm.gid,
                q.perm.cuid,
                q.perm.cgid,
                q.stime,
                q.rtime,
                q.ctime,
            );
        }
        out
    }
}

/// The first line of `/proc/sysvipc/msg`.
pub const PROC_HEADER: &str = "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(types: &[i64]) -> VecDeque<Message> {
        types
            .iter()
            .map(|&mtype| Message {
                mtype,
                text: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn search_modes_pick_as_linux() {
        let q = queue(&[5, 2, 7, 2, 1]);
        assert_eq!(Search::new(0, 0).find(&q), Some(0));
        assert_eq!(Search::new(2, 0).find(&q), Some(1));
        assert_eq!(Search::new(5, MSG_EXCEPT).find(&q), Some(1));
        assert_eq!(Search::new(-6, 0).find(&q), Some(4));
        assert_eq!(Search::new(-3, 0).find(&queue(&[5, 2, 3, 2])), Some(1));
        assert_eq!(Search::new(3, MSG_COPY).find(&q), Some(3));
        assert_eq!(Search::new(9, MSG_COPY).find(&q), None);
        assert_eq!(Search::new(4, 0).find(&q), None);
        assert_eq!(Search::new(i64::MIN, 0), Search::LessEqual(i64::MAX));
    }
}
