//! What the integration tests share: a sandbox file tree served by a real Gofer.

use std::sync::Arc;

use platform::MemoryFile;
use sentry::vfs::FsContext;

/// The host's root, served read-only by an in-process Gofer, under the Sentry's overlay
/// (as `bulwark do` has it, without the Gofer's confinement).
pub fn host_root(memory: &Arc<MemoryFile>) -> Arc<FsContext> {
    let server = Arc::new(
        gofer::Server::new(vec![gofer::MountConfig {
            name: "/".into(),
            path: "/".into(),
            read_only: true,
        }])
        .expect("gofer server over /"),
    );
    let mut client_socks = Vec::new();
    let mut server_socks = Vec::new();
    for _ in 0..2 {
        let (a, b) = gofer::channel::pair().expect("socketpair");
        client_socks.push(a);
        server_socks.push(b);
    }
    // The serving threads end when the client's sockets close.
    drop(server.spawn(server_socks));
    let client = Arc::new(gofer::Client::new(client_socks));
    sentry::vfs::gofer::container_fs(client, memory).expect("container fs")
}
