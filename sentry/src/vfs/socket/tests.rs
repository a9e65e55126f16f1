//! Unit tests of Unix sockets: the endpoint semantics the syscalls rely on, without a
//! task.

use std::sync::Arc;

use super::*;
use crate::vfs::pipe::pipe;

fn names() -> Arc<Namespace> {
    Arc::default()
}

fn cred() -> Ucred {
    Ucred {
        pid: 7,
        uid: 1000,
        gid: 1000,
    }
}

fn ctl() -> Control {
    Control {
        rights: Vec::new(),
        creds: cred(),
    }
}

fn recv(ep: &Endpoint, n: usize) -> SysResult<(Vec<u8>, Received)> {
    let mut buf = vec![0u8; n];
    let got = ep.recv(&mut buf, false)?;
    buf.truncate(got.len);
    Ok((buf, got))
}

#[test]
fn stream_pair_bytes_eof_and_epipe() {
    let (a, b) = Endpoint::pair(SockType::Stream, &names(), (0, 0), cred());
    assert_eq!(recv(&b, 4).err(), Some(Errno::EAGAIN));
    assert_eq!(a.send(b"hel", &mut ctl(), None), Ok(3));
    assert_eq!(a.send(b"lo", &mut ctl(), None), Ok(2));
    assert_eq!(b.readable_bytes(), Ok(5));
    assert_eq!(
        recv(&b, 4).unwrap().0,
        b"hell",
        "a stream reads across writes"
    );
    assert_eq!(recv(&b, 4).unwrap().0, b"o");
    a.shutdown(1).unwrap();
    assert_eq!(
        recv(&b, 4).unwrap().0,
        b"",
        "SHUT_WR is end-of-file at the peer"
    );
    assert_eq!(a.send(b"x", &mut ctl(), None), Err(Errno::EPIPE));
    assert_eq!(a.shutdown(3), Err(Errno::EINVAL));
    a.close(false);
    assert_eq!(b.send(b"x", &mut ctl(), None), Err(Errno::EPIPE));
    assert!(b.readiness() & POLLHUP != 0);
}

#[test]
fn stream_sender_waits_for_room_and_is_woken() {
    use crate::kernel::wait::Waker;
    let (a, b) = Endpoint::pair(SockType::Stream, &names(), (0, 0), cred());
    let big = vec![7u8; DEFAULT_BUF + 100];
    assert_eq!(a.send(&big, &mut ctl(), None), Ok(DEFAULT_BUF), "a part");
    assert_eq!(a.send(b"x", &mut ctl(), None), Err(Errno::EAGAIN), "full");
    assert_eq!(a.readiness() & POLLOUT, 0);
    let waker = Waker::new();
    let _reg = a.queue.register(&waker);
    let seen = waker.generation();
    let mut buf = vec![0u8; DEFAULT_BUF];
    assert_eq!(b.recv(&mut buf, false).unwrap().len, DEFAULT_BUF);
    assert!(waker.generation() != seen, "consuming woke the sender");
    assert!(a.readiness() & POLLOUT != 0);
}

#[test]
fn datagrams_keep_boundaries_and_truncate() {
    let (a, b) = Endpoint::pair(SockType::Dgram, &names(), (0, 0), cred());
    a.send(b"one", &mut ctl(), None).unwrap();
    a.send(b"three", &mut ctl(), None).unwrap();
    a.send(b"", &mut ctl(), None).unwrap();
    assert_eq!(b.readable_bytes(), Ok(3), "FIONREAD: the next datagram");
    assert_eq!(recv(&b, 64).unwrap().0, b"one");
    let mut small = [0u8; 2];
    let got = b.recv(&mut small, false).unwrap();
    assert_eq!((got.len, got.full_len, got.truncated), (2, 5, true));
    assert_eq!(recv(&b, 64).unwrap().0, b"", "a zero-length datagram");
    assert_eq!(recv(&b, 64).err(), Some(Errno::EAGAIN));
    let too_big = vec![0u8; DEFAULT_BUF];
    assert_eq!(a.send(&too_big, &mut ctl(), None), Err(Errno::EMSGSIZE));
}

#[test]
fn listen_connect_accept() {
    let ns = names();
    let srv = Endpoint::new(SockType::Stream, &ns, (0, 0));
    assert_eq!(srv.listen(1, cred()), Err(Errno::EINVAL), "unbound");
    srv.autobind().unwrap();
    let Some(Address::Abstract(name)) = srv.bound() else {
        panic!("autobind gives an abstract name");
    };
    assert_eq!(name.len(), 6);
    srv.listen(0, cred()).unwrap();
    assert_eq!(srv.accept().err(), Some(Errno::EAGAIN));
    let c1 = Endpoint::new(SockType::Stream, &ns, (0, 0));
    c1.connect(&srv, cred()).unwrap();
    assert!(srv.readiness() & POLLIN != 0);
    let c2 = Endpoint::new(SockType::Stream, &ns, (0, 0));
    assert_eq!(
        c2.connect(&srv, cred()),
        Err(Errno::EAGAIN),
        "backlog 0 takes one"
    );
    assert_eq!(c1.connect(&srv, cred()), Err(Errno::EISCONN));
    assert_eq!(c1.send(b"early", &mut ctl(), None), Ok(5), "before accept");
    let s1 = srv.accept().unwrap();
    assert_eq!(recv(&s1, 16).unwrap().0, b"early");
    assert_eq!(s1.bound(), srv.bound(), "the accepted socket has the name");
    assert_eq!(c1.peer_cred(), cred());
    c2.connect(&srv, cred()).unwrap();
    srv.close(false);
    assert_eq!(
        recv(&c2, 4).err(),
        Some(Errno::ECONNRESET),
        "never accepted"
    );
    let dg = Endpoint::new(SockType::Dgram, &ns, (0, 0));
    assert_eq!(dg.listen(1, cred()), Err(Errno::EOPNOTSUPP));
    assert_eq!(c2.connect(&dg, cred()), Err(Errno::EISCONN));
}

#[test]
fn rights_travel_and_end_a_stream_read() {
    let (a, b) = Endpoint::pair(SockType::Stream, &names(), (0, 0), cred());
    let (r, _w) = pipe(0);
    a.send(b"ab", &mut ctl(), None).unwrap();
    let mut with = ctl();
    with.rights.push(r as Arc<dyn crate::vfs::FileDescription>);
    a.send(b"cd", &mut with, None).unwrap();
    assert!(with.rights.is_empty(), "taken by the message");
    a.send(b"ef", &mut ctl(), None).unwrap();
    let (data, got) = recv(&b, 16).unwrap();
    assert_eq!(data, b"abcd");
    assert_eq!(got.rights.len(), 1);
    assert_eq!(recv(&b, 16).unwrap().0, b"ef");
}

#[test]
fn names_are_per_type_and_forgotten_at_close() {
    let ns = names();
    let s = Endpoint::new(SockType::Stream, &ns, (0, 0));
    let d = Endpoint::new(SockType::Dgram, &ns, (0, 0));
    let s2 = Endpoint::new(SockType::Stream, &ns, (0, 0));
    ns.bind_abstract(b"\0n", &s).unwrap();
    ns.bind_abstract(b"\0n", &d).unwrap();
    assert_eq!(ns.bind_abstract(b"\0n", &s2), Err(Errno::EADDRINUSE));
    s.set_bound(Address::Abstract(b"\0n".to_vec()), None);
    assert!(ns.lookup_abstract(SockType::Stream, b"\0n").is_some());
    s.close(false);
    assert!(ns.lookup_abstract(SockType::Stream, b"\0n").is_none());
    assert!(ns.lookup_abstract(SockType::Dgram, b"\0n").is_some());
    ns.bind_abstract(b"\0n", &s2).unwrap();
}

#[test]
fn sockaddr_forms() {
    assert_eq!(Address::sockaddr(None), vec![1, 0]);
    assert_eq!(
        Address::sockaddr(Some(&Address::Path(b"s".to_vec()))),
        vec![1, 0, b's', 0]
    );
    assert_eq!(
        Address::sockaddr(Some(&Address::Abstract(b"\0a".to_vec()))),
        vec![1, 0, 0, b'a']
    );
}
