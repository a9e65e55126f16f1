//! What the integration tests share: a sandbox file tree served by a real Gofer.
// Each test crate includes this module and uses a part of it.
#![allow(dead_code)]

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

/// Compiles `source` with gcc into a directory of its own (per test thread, so parallel
/// tests never rewrite a binary another one runs).
pub fn compile(name: &str, source: &str, flags: &[&str]) -> std::path::PathBuf {
    let thread = std::thread::current()
        .name()
        .unwrap_or("main")
        .replace("::", "-");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sentry-vfs")
        .join(thread);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    let out = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let status = std::process::Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success(), "gcc {name}");
    out
}

/// Runs `path` (with `argv`) in a fresh sandbox over the host root on platform `name`,
/// the program found through the VFS as `execve` finds it. Returns its exit and stdout,
/// or `None` where the platform is missing (never for systrap, nor for kvm in CI).
pub fn run_in_sandbox(
    name: &str,
    path: &std::path::Path,
    argv: &[&str],
) -> Option<(sentry::kernel::ExitStatus, String)> {
    run_in_sandbox_as(name, path, argv, 0)
}

/// [`run_in_sandbox`] as user and group `id`.
pub fn run_in_sandbox_as(
    name: &str,
    path: &std::path::Path,
    argv: &[&str],
    id: u32,
) -> Option<(sentry::kernel::ExitStatus, String)> {
    use std::io::Read;
    use std::os::fd::OwnedFd;

    use sentry::kernel::{Credentials, InitSpec, Kernel, Task};
    use sentry::vfs::exec::VfsResolver;
    use sentry::vfs::Cx;

    if !platform::available().contains(&name) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci || name != "kvm", "CI needs /dev/kvm");
        assert!(name != "systrap", "systrap must work everywhere");
        eprintln!("platform {name} not available here: NOT TESTED");
        return None;
    }
    let memory = Arc::new(MemoryFile::new(1 << 30).unwrap());
    let platform = platform::new_platform(name, Arc::clone(&memory)).unwrap();
    let kernel = Kernel::new(platform);
    let fs = host_root(&memory);
    let creds = Credentials::new(id, id);
    let resolver = VfsResolver {
        fs: Arc::clone(&fs),
        cx: Cx {
            creds: creds.clone(),
            ..Cx::root()
        },
    };
    let path_bytes = path.as_os_str().as_encoded_bytes();
    let (at, exe) = resolver.open(path_bytes).unwrap();
    fs.set_exe(at);
    let (mut reader, writer) = std::io::pipe().unwrap();
    let stdin: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let spec = InitSpec {
        path: path_bytes,
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        envp: vec![b"PATH=/usr/bin:/bin".to_vec()],
        creds,
        preserved: Vec::new(),
        stdio: vec![
            stdin,
            OwnedFd::from(writer.try_clone().unwrap()),
            OwnedFd::from(writer),
        ],
        fs,
    };
    let task = Task::new_init(&kernel, &resolver, exe, spec).unwrap();
    let (init, waker) = (Arc::clone(&task.group), Arc::clone(&task.handle.waker));
    task.run();
    let status = init.wait_exit(&waker);
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    Some((status, out))
}
