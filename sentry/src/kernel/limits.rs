//! Resource limits (`getrlimit`, `setrlimit`, `prlimit64`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::errno::{Errno, SysResult};

pub const RLIM_INFINITY: u64 = u64::MAX;
pub const RLIMIT_NLIMITS: usize = 16;
pub const RLIMIT_STACK: usize = 3;
pub const RLIMIT_NOFILE: usize = 7;

/// `struct rlimit64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

const _: () = assert!(std::mem::size_of::<Rlimit>() == 16);

/// A thread group's limits.
#[derive(Clone, Debug)]
pub struct Limits([Rlimit; RLIMIT_NLIMITS]);

impl Default for Limits {
    /// The limits a process starts with on a default Linux system.
    fn default() -> Self {
        let inf = Rlimit {
            cur: RLIM_INFINITY,
            max: RLIM_INFINITY,
        };
        let mut l = [inf; RLIMIT_NLIMITS];
        l[RLIMIT_STACK] = Rlimit {
            cur: 8 << 20,
            max: RLIM_INFINITY,
        };
        l[4] = Rlimit {
            cur: 0,
            max: RLIM_INFINITY,
        }; // RLIMIT_CORE
        l[6] = Rlimit {
            cur: 63_422,
            max: 63_422,
        }; // RLIMIT_NPROC
        l[RLIMIT_NOFILE] = Rlimit {
            cur: 1024,
            max: 1_048_576,
        };
        l[8] = Rlimit {
            cur: 8 << 20,
            max: 8 << 20,
        }; // RLIMIT_MEMLOCK
        l[11] = Rlimit {
            cur: 63_422,
            max: 63_422,
        }; // RLIMIT_SIGPENDING
        l[12] = Rlimit {
            cur: 819_200,
            max: 819_200,
        }; // RLIMIT_MSGQUEUE
        l[13] = Rlimit { cur: 0, max: 0 }; // RLIMIT_NICE
        l[14] = Rlimit { cur: 0, max: 0 }; // RLIMIT_RTPRIO
        Self(l)
    }
}

impl Limits {
    pub fn get(&self, resource: u32) -> SysResult<Rlimit> {
        self.0.get(resource as usize).copied().ok_or(Errno::EINVAL)
    }

    /// Sets a limit. Raising the hard limit needs `CAP_SYS_RESOURCE` (`privileged`).
    pub fn set(&mut self, resource: u32, new: Rlimit, privileged: bool) -> SysResult<()> {
        let slot = self.0.get_mut(resource as usize).ok_or(Errno::EINVAL)?;
        if new.cur > new.max {
            return Err(Errno::EINVAL);
        }
        if new.max > slot.max && !privileged {
            return Err(Errno::EPERM);
        }
        if resource as usize == RLIMIT_NOFILE && new.max > 1_048_576 {
            // Linux: above fs.nr_open.
            return Err(Errno::EPERM);
        }
        *slot = new;
        Ok(())
    }
}
