//! A deterministic, seeded stand-in for the fuzz targets, so CI exercises them: a few
//! thousand generated and mutated messages to the decoder and to a server over a
//! temporary tree. Nothing may panic, every reply must decode, and the tree beside the
//! served one must not change.

use std::fs;
use std::path::Path;

use gofer::protocol::{
    Bytes, Handle, Name, Request, Response, SetAttr, SetAttrMask, Timespec, MAX_MESSAGE_SIZE,
};
use gofer::{MountConfig, Server};

/// xorshift64*: small, seeded, good enough to pick fields.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(u64::try_from(n).unwrap())).unwrap()
    }
    fn pick<T: Clone>(&mut self, v: &[T]) -> T {
        v[self.index(v.len())].clone()
    }
}

const NAMES: &[&[u8]] = &[
    b"f",
    b"d",
    b"out",
    b"up",
    b"new",
    b"x",
    b"..",
    b".",
    b"",
    b"a/b",
    b"/",
    b"n\0ul",
    b"...",
    b"user.k",
    b"trusted.x",
];

fn name(r: &mut Rng) -> Name {
    if r.below(20) == 0 {
        return Name(vec![b'a'; r.index(300)]);
    }
    Name::from(r.pick(NAMES))
}

fn handle(r: &mut Rng, live: &[Handle]) -> Handle {
    if live.is_empty() || r.below(8) == 0 {
        Handle(r.below(40))
    } else {
        r.pick(live)
    }
}

fn flags(r: &mut Rng) -> u32 {
    match r.below(4) {
        0 => 0,
        1 => u32::try_from(r.below(4)).unwrap(),
        2 => 1 << r.below(32),
        _ => u32::try_from(r.next() >> 32).unwrap(),
    }
}

fn request(r: &mut Rng, live: &[Handle]) -> Request {
    let h = handle(r, live);
    let n = name(r);
    match r.below(23) {
        0 => Request::Attach {
            mount: Name::from(r.pick(&["/", "/ro", "/x", ""][..])),
        },
        1 => Request::Walk { dir: h, name: n },
        2 => Request::Stat { node: h },
        3 => Request::SetAttr {
            node: h,
            attr: SetAttr {
                mask: SetAttrMask::from_bits_retain(flags(r) & 0x7f),
                mode: flags(r),
                uid: flags(r),
                gid: flags(r),
                size: r.below(1 << 20),
                atime: Timespec {
                    sec: i64::try_from(r.below(1 << 40)).unwrap(),
                    nsec: flags(r),
                },
                mtime: Timespec {
                    sec: -1,
                    nsec: flags(r),
                },
            },
        },
        4 => Request::Open {
            node: h,
            flags: flags(r),
        },
        5 => Request::Create {
            dir: h,
            name: n,
            flags: flags(r),
            mode: flags(r),
            uid: 0,
            gid: 0,
        },
        6 => Request::Mkdir {
            dir: h,
            name: n,
            mode: flags(r),
            uid: flags(r),
            gid: 0,
        },
        7 => Request::Mknod {
            dir: h,
            name: n,
            mode: flags(r),
            rdev: r.next(),
            uid: 0,
            gid: 0,
        },
        8 => Request::Symlink {
            dir: h,
            name: n,
            target: Bytes(r.pick(NAMES).to_vec()),
            uid: 0,
            gid: 0,
        },
        9 => Request::Link {
            dir: h,
            name: n,
            target: handle(r, live),
        },
        10 => Request::Unlink {
            dir: h,
            name: n,
            flags: flags(r),
        },
        11 => Request::Rename {
            old_dir: h,
            old_name: n,
            new_dir: handle(r, live),
            new_name: name(r),
            flags: flags(r),
        },
        12 => Request::Readlink { node: h },
        13 => Request::Readdir {
            dir: h,
            cookie: r.below(3),
            max_bytes: flags(r),
        },
        14 => Request::StatFs { node: h },
        15 => Request::Fsync {
            node: h,
            datasync: r.below(2) == 0,
        },
        16 => Request::Fallocate {
            node: h,
            mode: flags(r),
            offset: r.below(1 << 20),
            len: r.below(1 << 16),
        },
        17 => Request::GetXattr {
            node: h,
            name: n,
            size: flags(r),
        },
        18 => Request::SetXattr {
            node: h,
            name: n,
            value: Bytes(vec![7; r.index(64)]),
            flags: flags(r),
        },
        19 => Request::ListXattr {
            node: h,
            size: flags(r),
        },
        20 => Request::RemoveXattr { node: h, name: n },
        21 => Request::ReaddirPlus {
            dir: h,
            cookie: r.below(3),
            max_bytes: flags(r),
        },
        _ => Request::Close { handles: vec![h] },
    }
}

fn mutate(r: &mut Rng, mut msg: Vec<u8>) -> Vec<u8> {
    match r.below(6) {
        0 => {
            let i = r.index(msg.len());
            msg[i] ^= 1 << r.below(8);
        }
        1 => msg.truncate(r.index(msg.len() + 1)),
        2 => msg.extend((0..r.below(16)).map(|_| 0xff)),
        3 => {
            let i = r.index(msg.len());
            msg[i] = 0xff;
        }
        _ => {}
    }
    msg
}

fn listing(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name(), fs::read(e.path()).unwrap_or_default())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn decoder_survives_generated_and_mutated_messages() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let req = request(&mut r, &[Handle(1), Handle(2)]);
        let good = req.encode().unwrap();
        assert_eq!(Request::decode(&good).unwrap(), req);
        let bad = mutate(&mut r, good);
        if let Ok(decoded) = Request::decode(&bad) {
            // Accepted bytes are canonical: they re-encode to themselves.
            assert_eq!(decoded.encode().unwrap(), bad);
            accepted += 1;
        }
        let _ = Response::decode(&bad);
        // Pure noise.
        let noise: Vec<u8> = (0..r.index(64))
            .map(|_| u8::try_from(r.below(256)).unwrap())
            .collect();
        let _ = Request::decode(&noise);
        let _ = Response::decode(&noise);
    }
    assert!(
        accepted > 1000,
        "mutations should often stay valid ({accepted})"
    );
    assert!(Request::decode(&vec![0; MAX_MESSAGE_SIZE + 1]).is_err());
}

#[test]
fn server_survives_generated_and_mutated_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let ro = tmp.path().join("ro");
    let outside = tmp.path().join("outside");
    for d in [&root.join("d"), &ro, &outside] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(root.join("f"), b"inside").unwrap();
    fs::write(ro.join("f"), b"ro").unwrap();
    fs::write(outside.join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
    std::os::unix::fs::symlink("..", root.join("up")).unwrap();
    let before_outside = listing(&outside);
    let before_ro = listing(&ro);
    let server = Server::new(vec![
        MountConfig {
            name: "/".into(),
            path: root,
            read_only: false,
        },
        MountConfig {
            name: "/ro".into(),
            path: ro.clone(),
            read_only: true,
        },
    ])
    .unwrap()
    .with_max_handles(256);

    let mut r = Rng(0x0123_4567_89ab_cdef);
    let mut live: Vec<Handle> = Vec::new();
    let (mut ok, mut err) = (0u32, 0u32);
    for i in 0..5_000 {
        let req = request(&mut r, &live);
        let mut msg = req.encode().unwrap();
        if i % 4 == 3 {
            msg = mutate(&mut r, msg);
        }
        let (reply, fd) = server.handle_message(&msg);
        let reply = Response::decode(&reply).expect("every reply decodes");
        assert_eq!(
            reply.carries_fd(),
            fd.is_some(),
            "an FD comes exactly with Opened/Created"
        );
        match reply {
            Response::Error { errno } => {
                assert!(errno > 0);
                err += 1;
            }
            Response::Node { handle, .. } | Response::Created { handle, .. } => {
                live.push(handle);
                ok += 1;
            }
            _ => ok += 1,
        }
        if live.len() > 200 {
            live.drain(..100);
        }
    }
    assert!(
        ok > 500 && err > 500,
        "both successes and errors must be exercised ({ok}, {err})"
    );
    assert!(server.handle_count() <= 256);
    assert_eq!(
        listing(&outside),
        before_outside,
        "nothing outside the root may change"
    );
    assert_eq!(listing(&ro), before_ro, "the read-only tree may not change");
}
