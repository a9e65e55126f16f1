//! The Gofer: the confined file server, its protocol, and the Sentry's client.
//!
//! - `protocol` (with `codec`): the messages and their fixed binary encoding.
//! - `channel`: the `SOCK_SEQPACKET` transport that carries them, with FDs as `SCM_RIGHTS`.
//! - `server`: serves mount roots to a hostile client, in the Gofer process.
//! - `client`: the typed, thread-safe API the Sentry uses.
//! - `confine`: the Gofer process's mount namespace, Landlock, seccomp and network
//!   confinement.
#![deny(unsafe_code)]

pub mod channel;
pub mod client;
mod codec;
pub mod confine;
pub mod errno;
pub mod protocol;
pub mod server;

pub use client::Client;
pub use errno::Errno;
pub use protocol::{Handle, Stat};
pub use server::{MountConfig, Server};
