//! The transport: one `SOCK_SEQPACKET` socket per channel, one message per datagram, at
//! most one FD per message passed as `SCM_RIGHTS`.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags,
    SocketType,
};
use thiserror::Error;

use crate::protocol::MAX_MESSAGE_SIZE;

/// A transport failure.
#[derive(Debug, Error)]
pub enum ChannelError {
    /// The socket call failed.
    #[error("Socket operation failed")]
    Io(#[source] rustix::io::Errno),
    /// The peer closed its end.
    #[error("Peer closed the channel")]
    Closed,
    /// A datagram or its control data did not fit (`MSG_TRUNC` / `MSG_CTRUNC`).
    #[error("Message or its FDs were truncated")]
    Truncated,
    /// The message was not handed to the kernel whole.
    #[error("Short send of {sent} of {len} bytes")]
    ShortSend {
        /// Bytes the kernel took.
        sent: usize,
        /// Bytes of the message.
        len: usize,
    },
}

/// Creates a connected pair of channel sockets (close-on-exec).
pub fn pair() -> Result<(OwnedFd, OwnedFd), ChannelError> {
    socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(ChannelError::Io)
}

/// Sends one message, with `fd` attached if given.
pub fn send(
    sock: BorrowedFd<'_>,
    msg: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> Result<(), ChannelError> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        // Cannot fail: the buffer is sized for one FD.
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    let sent = loop {
        match sendmsg(
            sock,
            &[IoSlice::new(msg)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::PIPE) => return Err(ChannelError::Closed),
            other => break other.map_err(ChannelError::Io)?,
        }
    };
    if sent != msg.len() {
        return Err(ChannelError::ShortSend {
            sent,
            len: msg.len(),
        });
    }
    Ok(())
}

/// Receives one message into `buf` (which must hold `MAX_MESSAGE_SIZE + 1` bytes so an
/// oversized datagram is detected) and the FD attached to it, if any. Received FDs are
/// close-on-exec; any beyond the first are closed.
pub fn recv<'b>(
    sock: BorrowedFd<'_>,
    buf: &'b mut [u8],
) -> Result<(&'b [u8], Option<OwnedFd>), ChannelError> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.map_err(ChannelError::Io)?,
        }
    };
    let mut first_fd = None;
    for cmsg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = cmsg {
            for fd in fds {
                if first_fd.is_none() {
                    first_fd = Some(fd);
                }
                // Any further FD is dropped (closed) here.
            }
        }
    }
    if msg.bytes == 0 {
        return Err(ChannelError::Closed);
    }
    if msg
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
        || msg.bytes > MAX_MESSAGE_SIZE
    {
        return Err(ChannelError::Truncated);
    }
    Ok((&buf[..msg.bytes], first_fd))
}

/// A receive buffer of the right size.
pub fn recv_buffer() -> Vec<u8> {
    vec![0u8; MAX_MESSAGE_SIZE + 1]
}

/// Borrows an owned FD (a small helper for callers holding `Option<OwnedFd>`).
pub fn borrow(fd: &Option<OwnedFd>) -> Option<BorrowedFd<'_>> {
    fd.as_ref().map(|f| f.as_fd())
}
