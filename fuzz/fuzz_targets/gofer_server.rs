//! The Gofer server's request handling over a temporary tree. The input is a sequence
//! of messages, each prefixed by a `u16` length; every message goes to the server as a
//! client would send it. The server must never panic, and the sentinel tree beside the
//! served one must never change.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use gofer::protocol::{Name, Request};
use gofer::{MountConfig, Server};
use libfuzzer_sys::fuzz_target;

struct World {
    _tmp: tempfile::TempDir,
    outside: PathBuf,
    server: Server,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let ro = tmp.path().join("ro");
        let outside = tmp.path().join("outside");
        for d in [&root, &ro, &outside, &root.join("d")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(root.join("f"), b"inside").unwrap();
        std::fs::write(ro.join("f"), b"ro").unwrap();
        std::fs::write(outside.join("secret"), b"secret").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink("..", root.join("up")).unwrap();
        let server = Server::new(vec![
            MountConfig {
                name: "/".into(),
                path: root,
                read_only: false,
            },
            MountConfig {
                name: "/ro".into(),
                path: ro,
                read_only: true,
            },
        ])
        .unwrap()
        .with_max_handles(4096);
        World {
            _tmp: tmp,
            outside,
            server,
        }
    })
}

fn outside_listing(dir: &PathBuf) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), std::fs::read(e.path()).unwrap_or_default())
        })
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    // Give every run handles to both roots, so walks have somewhere to start.
    for m in ["/", "/ro"] {
        let attach = Request::Attach {
            mount: Name::from(m),
        }
        .encode()
        .unwrap();
        let _ = w.server.handle_message(&attach);
    }
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let (reply, _fd) = w.server.handle_message(&rest[2..end]);
        assert!(gofer::protocol::Response::decode(&reply).is_ok());
        rest = &rest[end..];
    }
    assert_eq!(
        outside_listing(&w.outside),
        vec![(std::ffi::OsString::from("secret"), b"secret".to_vec())]
    );
});
