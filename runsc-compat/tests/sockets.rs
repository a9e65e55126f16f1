//! Unix domain sockets under `bulwark do`, as real programs use them: Python's asyncio
//! serving and connecting on a socket path, `socket.socketpair()`, and a clean refusal of
//! the network families the sandbox does not have.

mod common;

use std::process::Command;

use common::{bulwark_do, platforms};

/// The host's Python interpreter itself (not a launcher script in front of it), or
/// `None` where there is none.
fn python() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !path.is_empty()).then_some(path)
}

/// Runs `script` with Python under each platform; returns each stdout after checking the
/// exit status is 0.
fn run_python(script: &str) -> Vec<(&'static str, String)> {
    let Some(python) = python() else {
        eprintln!("python3 not found: NOT TESTED");
        return Vec::new();
    };
    platforms()
        .into_iter()
        .map(|p| {
            let out = bulwark_do(p, &[&python, "-c", script]);
            assert!(
                out.status.success(),
                "{p}: {:?}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            (p, String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .collect()
}

const ASYNCIO_ECHO: &str = r#"
import asyncio, os, stat, tempfile

async def main():
    path = os.path.join(tempfile.mkdtemp(), "echo.sock")

    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(b"echo " + line)
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(handle, path)
    print("socket file:", stat.S_ISSOCK(os.stat(path).st_mode))
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(b"hello\n")
    await writer.drain()
    print((await reader.readline()).decode().strip())
    writer.close()
    server.close()
    await server.wait_closed()

asyncio.run(main())
"#;

#[test]
fn asyncio_unix_server_and_client_exchange_a_line() {
    for (p, out) in run_python(ASYNCIO_ECHO) {
        assert_eq!(out, "socket file: True\necho hello\n", "{p}");
    }
}

const SOCKETPAIR: &str = r#"
import array, os, socket

a, b = socket.socketpair()
a.sendall(b"ping")
print(b.recv(16).decode())
r, w = os.pipe()
socket.send_fds(a, [b"fd"], [w])
msg, fds, _, _ = socket.recv_fds(b, 16, 1)
os.write(fds[0], b"through")
print(msg.decode(), os.read(r, 16).decode())
d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
d1.send(b"one"); d1.send(b"two")
print(d2.recv(16).decode(), d2.recv(16).decode())
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("inet: created")
except OSError as e:
    print("inet:", e.errno == 97)
"#;

#[test]
fn socketpair_descriptor_passing_and_no_network_families() {
    for (p, out) in run_python(SOCKETPAIR) {
        assert_eq!(
            out, "ping\nfd through\none two\ninet: True\n",
            "{p}: AF_INET must fail with EAFNOSUPPORT (97)"
        );
    }
}
