//! Typed application addresses. A syscall argument that is a pointer becomes a `UserAddr`
//! or `UserPtr<T>` at the syscall boundary and stays one; only `MemoryManager` turns it
//! into bytes, through `copy_in`/`copy_out`, which fail with `EFAULT`.

use std::fmt;
use std::marker::PhantomData;

use crate::errno::{Errno, SysResult};

pub const PAGE_SIZE: u64 = platform::PAGE_SIZE;
/// `PAGE_SIZE` for buffer lengths.
pub const PAGE_BYTES: usize = 4096;

/// One past the highest application address (the top of the 47-bit user half, less a
/// guard page, as on Linux: `TASK_SIZE_MAX`).
pub const USER_END: u64 = (1 << 47) - PAGE_SIZE;

/// An address in the application's address space.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserAddr(u64);

impl UserAddr {
    pub const NULL: Self = Self(0);

    pub const fn new(addr: u64) -> Self {
        Self(addr)
    }

    pub const fn get(self) -> u64 {
        self.0
    }

    pub const fn is_null(self) -> bool {
        self.0 == 0
    }

    /// `self + len`, or `EFAULT` when it wraps.
    pub fn checked_add(self, len: u64) -> SysResult<Self> {
        self.0.checked_add(len).map(Self).ok_or(Errno::EFAULT)
    }

    pub const fn is_page_aligned(self) -> bool {
        self.0.is_multiple_of(PAGE_SIZE)
    }

    /// The start of the page holding this address.
    pub const fn page_down(self) -> Self {
        Self(self.0 & !(PAGE_SIZE - 1))
    }

    /// The first page boundary at or above this address, if there is one.
    pub fn page_up(self) -> Option<Self> {
        self.0.checked_next_multiple_of(PAGE_SIZE).map(Self)
    }

    /// Whether `[self, self + len)` lies in the user half.
    pub fn range_is_user(self, len: u64) -> bool {
        self.0.checked_add(len).is_some_and(|end| end <= USER_END)
    }
}

impl fmt::Debug for UserAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl From<u64> for UserAddr {
    fn from(addr: u64) -> Self {
        Self(addr)
    }
}

/// A typed pointer into the application's memory.
pub struct UserPtr<T> {
    addr: UserAddr,
    _type: PhantomData<fn() -> T>,
}

impl<T> UserPtr<T> {
    pub const fn new(addr: UserAddr) -> Self {
        Self {
            addr,
            _type: PhantomData,
        }
    }

    pub const fn addr(self) -> UserAddr {
        self.addr
    }

    pub const fn is_null(self) -> bool {
        self.addr.is_null()
    }

    /// The `index`-th element of an array starting here.
    pub fn offset(self, index: u64) -> SysResult<Self> {
        let size = std::mem::size_of::<T>() as u64;
        let bytes = index.checked_mul(size).ok_or(Errno::EFAULT)?;
        Ok(Self::new(self.addr.checked_add(bytes)?))
    }
}

impl<T> Clone for UserPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for UserPtr<T> {}

impl<T> fmt::Debug for UserPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.addr, f)
    }
}

impl<T> From<u64> for UserPtr<T> {
    fn from(addr: u64) -> Self {
        Self::new(UserAddr::new(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(UserAddr::new(u64::MAX).checked_add(1), Err(Errno::EFAULT));
        assert_eq!(UserAddr::new(0x1234).page_down(), UserAddr::new(0x1000));
        assert_eq!(UserAddr::new(0x1001).page_up(), Some(UserAddr::new(0x2000)));
        assert_eq!(UserAddr::new(u64::MAX).page_up(), None);
        assert!(UserAddr::new(USER_END - 8).range_is_user(8));
        assert!(!UserAddr::new(USER_END - 8).range_is_user(9));
        let p: UserPtr<u64> = UserPtr::from(0x1000);
        assert_eq!(p.offset(3).unwrap().addr(), UserAddr::new(0x1018));
        assert!(p.offset(u64::MAX).is_err());
    }
}
