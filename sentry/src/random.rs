//! Randomness for the application (`AT_RANDOM`, `getrandom(2)`, `/dev/urandom`): the
//! host's `getrandom(2)`, called directly. It needs no file (the Sentry's root is empty,
//! so a library's fallback to `/dev/urandom` would fail) and works the same whether the
//! binary is linked statically or not.

use crate::errno::{Errno, SysResult};

/// Fills `buf` with random bytes; `EIO` if the host refuses.
pub fn fill(buf: &mut [u8]) -> SysResult<()> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                log::error!("getrandom: {e}");
                return Err(Errno::EIO);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn fills_a_buffer_larger_than_one_call() {
        let mut a = vec![0u8; 1 << 20];
        super::fill(&mut a).unwrap();
        assert!(a.iter().filter(|&&b| b == 0).count() < 1 << 14);
    }
}
