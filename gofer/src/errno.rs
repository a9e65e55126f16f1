//! `Errno`: a Linux error number, as carried by the protocol.
//!
//! The Gofer answers every failed request with the errno the host (or its own checks)
//! produced; the Sentry maps it to its own `Errno` type and hands it to the application
//! unchanged, so the value must be the one Linux returns for the operation.

use std::fmt;

/// A Linux errno value (positive, as in `errno`, never negated).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Errno = Errno(libc::$name);
            )*

            /// The symbolic name (`"ENOENT"`), where it is one the Gofer uses.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $(libc::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    EIO,
    ENXIO,
    E2BIG,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    EFBIG,
    ENOSPC,
    EROFS,
    EMLINK,
    ERANGE,
    ENAMETOOLONG,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENODATA,
    EOPNOTSUPP,
    EMSGSIZE,
    EPROTO,
    EOVERFLOW,
    ETXTBSY,
    EDQUOT,
);

impl Errno {
    /// Wraps a raw errno value. Values outside `1..=4095` (which Linux never returns)
    /// become `EIO`, so an `Errno` always names a real error.
    pub fn from_raw(raw: i32) -> Errno {
        if (1..=4095).contains(&raw) {
            Errno(raw)
        } else {
            Errno::EIO
        }
    }

    /// The raw, positive errno value.
    pub fn raw(self) -> i32 {
        self.0
    }
}

impl From<rustix::io::Errno> for Errno {
    fn from(e: rustix::io::Errno) -> Errno {
        Errno::from_raw(e.raw_os_error())
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl std::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_become_eio() {
        assert_eq!(Errno::from_raw(0), Errno::EIO);
        assert_eq!(Errno::from_raw(-2), Errno::EIO);
        assert_eq!(Errno::from_raw(5000), Errno::EIO);
        assert_eq!(Errno::from_raw(libc::ENOENT), Errno::ENOENT);
        assert_eq!(format!("{:?}", Errno::EROFS), "EROFS");
    }
}
