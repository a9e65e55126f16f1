//! The wire encoding under `protocol`: fixed-width little-endian integers, length-prefixed
//! byte strings and lists, and the `Wire` trait every message field implements.
//!
//! Decoding is for hostile input: every read is bounds-checked, lengths are checked
//! against the bytes that remain before anything is allocated, and nothing panics.

use thiserror::Error;

/// Why a byte string is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The message ended in the middle of a field.
    #[error("Message truncated")]
    Truncated,
    /// Bytes were left over after the last field.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
    /// The message is larger than `MAX_MESSAGE_SIZE`.
    #[error("Message of {0} bytes exceeds the maximum size")]
    TooLarge(usize),
    /// The header's length does not match the bytes received.
    #[error("Header says {header} bytes, but {actual} arrived")]
    LengthMismatch {
        /// The length in the header.
        header: u32,
        /// The length of the datagram.
        actual: usize,
    },
    /// The message kind is not one this side knows.
    #[error("Unknown message kind {0}")]
    UnknownKind(u16),
    /// A header flag is set that this version does not define.
    #[error("Unknown header flags {0:#x}")]
    UnknownFlags(u16),
    /// A boolean field held something other than 0 or 1.
    #[error("Invalid boolean {0}")]
    InvalidBool(u8),
}

/// An append-only buffer that fields are encoded into.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// The bytes written so far.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    /// Overwrites 4 bytes at `at` (used to patch the length into a header).
    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(dst) = self.buf.get_mut(at..at + 4) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }

    /// The number of bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
}

/// A cursor over received bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.buf.len() {
            return Err(ProtocolError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes exactly `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The number of bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes(self.buf.len()))
        }
    }
}

/// A value with a fixed binary encoding.
pub trait Wire: Sized {
    /// The smallest number of bytes an encoded value takes (bounds list preallocation).
    const MIN_SIZE: usize;
    /// Appends the encoding of `self`.
    fn put(&self, w: &mut Writer);
    /// Decodes one value.
    fn get(r: &mut Reader<'_>) -> Result<Self, ProtocolError>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const MIN_SIZE: usize = std::mem::size_of::<$t>();
            fn put(&self, w: &mut Writer) {
                w.bytes(&self.to_le_bytes());
            }
            fn get(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
                Ok(<$t>::from_le_bytes(r.array()?))
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64, i32, i64);

impl Wire for bool {
    const MIN_SIZE: usize = 1;
    fn put(&self, w: &mut Writer) {
        u8::from(*self).put(w);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        match u8::get(r)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(ProtocolError::InvalidBool(b)),
        }
    }
}

/// A list: a `u32` count, then the elements.
impl<T: Wire> Wire for Vec<T> {
    const MIN_SIZE: usize = 4;
    fn put(&self, w: &mut Writer) {
        // Lists never approach u32::MAX elements: messages are capped at 64 KiB.
        u32::try_from(self.len()).unwrap_or(u32::MAX).put(w);
        for item in self {
            item.put(w);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        let count = usize::try_from(u32::get(r)?).map_err(|_| ProtocolError::Truncated)?;
        // Refuse counts the remaining bytes cannot hold before allocating anything.
        let need = count
            .checked_mul(T::MIN_SIZE.max(1))
            .ok_or(ProtocolError::Truncated)?;
        if need > r.remaining() {
            return Err(ProtocolError::Truncated);
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(T::get(r)?);
        }
        Ok(out)
    }
}

/// A byte string with a `u32` length prefix (symlink targets, xattr values, lists).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl Wire for Bytes {
    const MIN_SIZE: usize = 4;
    fn put(&self, w: &mut Writer) {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX).put(w);
        w.bytes(&self.0);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        let len = usize::try_from(u32::get(r)?).map_err(|_| ProtocolError::Truncated)?;
        Ok(Bytes(r.take(len)?.to_vec()))
    }
}

/// A path component or xattr name: a byte string with a `u16` length prefix. Its
/// content is not checked here; the server validates names (see `server::check_name`).
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct Name(pub Vec<u8>);

impl Name {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Name {
    fn from(s: &[u8]) -> Name {
        Name(s.to_vec())
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl Wire for Name {
    const MIN_SIZE: usize = 2;
    fn put(&self, w: &mut Writer) {
        // Callers keep names far below 64 KiB; a longer one is cut, and the server
        // then sees a different (still validated) name rather than a framing error.
        let len = u16::try_from(self.0.len()).unwrap_or(u16::MAX);
        len.put(w);
        w.bytes(&self.0[..usize::from(len)]);
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        let len = usize::from(u16::get(r)?);
        Ok(Name(r.take(len)?.to_vec()))
    }
}

/// Declares a struct whose wire encoding is its fields in order.
macro_rules! wire_struct {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }

        impl $crate::codec::Wire for $name {
            const MIN_SIZE: usize = 0 $(+ <$t as $crate::codec::Wire>::MIN_SIZE)*;
            fn put(&self, w: &mut $crate::codec::Writer) {
                $($crate::codec::Wire::put(&self.$f, w);)*
            }
            fn get(r: &mut $crate::codec::Reader<'_>) -> Result<Self, $crate::codec::ProtocolError> {
                Ok($name { $($f: <$t as $crate::codec::Wire>::get(r)?),* })
            }
        }
    };
}
pub(crate) use wire_struct;

/// Declares a message enum: each variant has a `u16` kind and named fields encoded in
/// order after the header.
macro_rules! wire_enum {
    ($(#[$m:meta])* pub enum $name:ident {
        $($(#[$vm:meta])* $kind:literal => $var:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }),* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name { $($(#[$vm])* $var { $($(#[$fm])* $f: $t),* }),* }

        impl $name {
            /// The message kind written in the header.
            pub fn kind(&self) -> u16 {
                match self { $($name::$var { .. } => $kind),* }
            }

            fn put_body(&self, w: &mut $crate::codec::Writer) {
                match self {
                    $($name::$var { $($f),* } => { $($crate::codec::Wire::put($f, w);)* })*
                }
            }

            fn get_body(
                kind: u16,
                r: &mut $crate::codec::Reader<'_>,
            ) -> Result<Self, $crate::codec::ProtocolError> {
                match kind {
                    $($kind => Ok($name::$var { $($f: <$t as $crate::codec::Wire>::get(r)?),* }),)*
                    k => Err($crate::codec::ProtocolError::UnknownKind(k)),
                }
            }
        }
    };
}
pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_count_larger_than_the_message_is_refused_without_allocating() {
        let mut w = Writer::new();
        u32::MAX.put(&mut w);
        let bytes = w.into_inner();
        assert_eq!(
            Vec::<u64>::get(&mut Reader::new(&bytes)),
            Err(ProtocolError::Truncated)
        );
    }

    #[test]
    fn names_and_bytes_round_trip() {
        let mut w = Writer::new();
        Name::from("abc").put(&mut w);
        Bytes(vec![0, 1, 2]).put(&mut w);
        true.put(&mut w);
        let bytes = w.into_inner();
        let mut r = Reader::new(&bytes);
        assert_eq!(Name::get(&mut r).unwrap(), Name::from("abc"));
        assert_eq!(Bytes::get(&mut r).unwrap(), Bytes(vec![0, 1, 2]));
        assert!(bool::get(&mut r).unwrap());
        r.finish().unwrap();
    }

    #[test]
    fn bad_bool_and_truncation_are_errors() {
        assert_eq!(
            bool::get(&mut Reader::new(&[2])),
            Err(ProtocolError::InvalidBool(2))
        );
        assert_eq!(
            u64::get(&mut Reader::new(&[1, 2, 3])),
            Err(ProtocolError::Truncated)
        );
        assert_eq!(
            Name::get(&mut Reader::new(&[5, 0, b'a'])),
            Err(ProtocolError::Truncated)
        );
    }
}
