//! Tests of the systrap platform on its own (the generic suite is `conformance.rs`).

use std::sync::Arc;

use platform::systrap::Systrap;
use platform::{AddressSpace, Exit, MemoryFile, Perms, Platform, Registers, PAGE_SIZE};

const CODE: u64 = 0x40_0000;
const STACK: u64 = 0x60_0000;

struct Setup {
    mem: Arc<MemoryFile>,
    platform: Systrap,
    space: Arc<dyn AddressSpace>,
}

fn setup(code: &[u8]) -> Setup {
    let mem = Arc::new(MemoryFile::new(64 << 20).unwrap());
    let platform = Systrap::new(mem.clone()).unwrap();
    let space = platform.new_address_space().unwrap();
    let c = mem.allocate(PAGE_SIZE).unwrap();
    mem.write(c.offset, code).unwrap();
    space
        .map(CODE, PAGE_SIZE, c.offset, Perms::READ | Perms::EXEC)
        .unwrap();
    let s = mem.allocate(PAGE_SIZE).unwrap();
    space
        .map(STACK, PAGE_SIZE, s.offset, Perms::READ | Perms::WRITE)
        .unwrap();
    Setup {
        mem,
        platform,
        space,
    }
}

#[test]
fn smoke_syscall() {
    // mov eax, 39; syscall; mov rbx, rax; mov eax, 60; syscall
    let code = [
        0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xc3, 0xb8, 60, 0, 0, 0, 0x0f, 0x05,
    ];
    let s = setup(&code);
    let mut ctx = s.platform.new_context().unwrap();
    let mut regs = Registers::new(CODE, STACK + PAGE_SIZE);
    assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(regs.orig_rax, 39);
    assert_eq!(regs.rip, CODE + 7);
    regs.rax = 1234;
    assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(regs.orig_rax, 60);
    assert_eq!(regs.rbx, 1234);
    let _ = &s.mem;
}

/// Times syscall round trips (a loop of `syscall`s, each answered at once).
#[test]
fn syscall_round_trip_time() {
    // loop: syscall; jmp loop
    let code = [0x0f, 0x05, 0xeb, 0xfc];
    let s = setup(&code);
    let mut ctx = s.platform.new_context().unwrap();
    let mut regs = Registers::new(CODE, STACK + PAGE_SIZE);
    let n = 200_000;
    for round in 0..3 {
        let start = std::time::Instant::now();
        for _ in 0..n {
            assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
        }
        eprintln!(
            "round {round}: {:?} per syscall round trip",
            start.elapsed() / n
        );
    }
}

fn stub_pid(s: &Setup) -> i32 {
    Systrap::stub_pid(&*s.space).expect("a systrap address space")
}

/// utime + stime of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command (which is in parentheses): state is field 3; utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn status_field(pid: i32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

/// A stub whose thread is parked in a syscall exit (and whose main thread and kicker wait
/// for requests) uses no CPU once the spinning phase is over.
#[test]
fn idle_stub_burns_no_cpu() {
    let code = [0x0f, 0x05, 0xeb, 0xfc];
    let s = setup(&code);
    let mut ctx = s.platform.new_context().unwrap();
    let mut regs = Registers::new(CODE, STACK + PAGE_SIZE);
    assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
    let pid = stub_pid(&s);
    // Past the spinning phase (tens of µs), then measure over 2 s.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let before = cpu_ticks(pid);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    eprintln!("idle stub: {used} ticks of CPU in 2 s ({hz} ticks/s)");
    // At most 1 tick (10 ms at 100 Hz, i.e. 0.5 % of one CPU) in 2 s.
    assert!(used <= 1, "idle stub used {used} ticks in 2 s");
    // And it still works after sleeping.
    assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
}

/// Dropping the address space kills and reaps the stub: no process, no zombie.
#[test]
fn stub_is_reaped_when_dropped() {
    let s = setup(&[0x0f, 0x05]);
    let pid = stub_pid(&s);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(s);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "stub {pid} still exists (zombie or alive)"
    );
}

/// The stub holds only the memory file, maps only its own region and the application's
/// mappings, runs in namespaces of its own, with no_new_privs and a seccomp filter.
#[test]
fn stub_is_confined() {
    let s = setup(&[0x0f, 0x05]);
    let pid = stub_pid(&s);
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| std::fs::read_link(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(fds.len(), 1, "fds: {fds:?}");
    assert!(
        fds[0].to_string_lossy().contains("bulwark-memory"),
        "fds: {fds:?}"
    );
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    for line in maps.lines() {
        let start = u64::from_str_radix(line.split('-').next().unwrap(), 16).unwrap();
        let ok = start == CODE
            || start == STACK
            || (0x7ffe_0000_0000..0x7fff_0000_0000).contains(&start)
            || line.contains("[vsyscall]");
        assert!(ok, "unexpected mapping in the stub: {line}\n{maps}");
    }
    assert_eq!(status_field(pid, "Seccomp:"), "2");
    assert_eq!(status_field(pid, "NoNewPrivs:"), "1");
    for ns in ["user", "pid", "net", "ipc", "mnt", "uts"] {
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let its = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_ne!(ours, its, "the stub shares our {ns} namespace");
    }
}

/// A context's stub thread exits when the context is dropped, and its slot is reused.
#[test]
fn dropping_a_context_ends_its_stub_thread() {
    let s = setup(&[0x0f, 0x05, 0xeb, 0xfc]);
    let pid = stub_pid(&s);
    let threads = || status_field(pid, "Threads:").parse::<u32>().unwrap();
    // main + kicker
    assert_eq!(threads(), 2);
    for _ in 0..3 {
        let mut ctx = s.platform.new_context().unwrap();
        let mut regs = Registers::new(CODE, STACK + PAGE_SIZE);
        assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
        assert_eq!(threads(), 3);
        drop(ctx);
        let start = std::time::Instant::now();
        while threads() != 2 {
            assert!(start.elapsed().as_secs() < 5, "stub thread did not exit");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// A context moves between address spaces (as after execve): it gets a stub thread in
/// each, and its registers and FPU state follow it.
#[test]
fn context_moves_between_address_spaces() {
    let s = setup(&[0x0f, 0x05, 0xeb, 0xfc]);
    let other = s.platform.new_address_space().unwrap();
    let c = s.mem.allocate(PAGE_SIZE).unwrap();
    // mov rbx, rax; syscall; jmp back
    s.mem
        .write(c.offset, &[0x48, 0x89, 0xc3, 0x0f, 0x05, 0xeb, 0xf9])
        .unwrap();
    other
        .map(CODE, PAGE_SIZE, c.offset, Perms::READ | Perms::EXEC)
        .unwrap();
    let mut ctx = s.platform.new_context().unwrap();
    let mut regs = Registers::new(CODE, STACK + PAGE_SIZE);
    assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(regs.rip, CODE + 2);
    regs.rip = CODE;
    regs.rax = 77;
    assert_eq!(ctx.switch(&*other, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(regs.rbx, 77);
    assert_eq!(regs.rip, CODE + 5);
    drop(other);
    // The first space still works for this context after the other is gone.
    regs.rip = CODE;
    assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
}

/// FS and GS base survive switches and follow each context, on both of the stub's paths:
/// `rdfsbase`/`wrfsbase` (where the host enables FSGSBASE) and `arch_prctl`.
#[test]
fn fs_and_gs_base_per_context_on_both_paths() {
    // mov rax, fs:[0]; mov rbx, gs:[0]; syscall; jmp back
    let code = [
        0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, // mov rax, fs:[0]
        0x65, 0x48, 0x8b, 0x1c, 0x25, 0, 0, 0, 0, // mov rbx, gs:[0]
        0x0f, 0x05, // syscall
        0xeb, 0xea, // jmp CODE
    ];
    for arch_prctl in [false, true] {
        let mem = Arc::new(MemoryFile::new(64 << 20).unwrap());
        let mut platform = Systrap::new(mem.clone()).unwrap();
        if arch_prctl {
            platform.use_arch_prctl_for_fs_base();
        }
        let space = platform.new_address_space().unwrap();
        let c = mem.allocate(PAGE_SIZE).unwrap();
        mem.write(c.offset, &code).unwrap();
        space
            .map(CODE, PAGE_SIZE, c.offset, Perms::READ | Perms::EXEC)
            .unwrap();
        let d = mem.allocate(PAGE_SIZE).unwrap();
        for i in 0..4u64 {
            mem.write_u64(d.offset + 8 * i, 0x1111 * (i + 1)).unwrap();
        }
        space
            .map(STACK, PAGE_SIZE, d.offset, Perms::READ | Perms::WRITE)
            .unwrap();
        let mut ctxs: Vec<_> = (0..2).map(|_| platform.new_context().unwrap()).collect();
        let mut regs: Vec<_> = (0..2u64)
            .map(|i| {
                let mut r = Registers::new(CODE, STACK + PAGE_SIZE);
                r.fs_base = STACK + 16 * i;
                r.gs_base = STACK + 16 * i + 8;
                r
            })
            .collect();
        for round in 0..3 {
            for i in 0..2 {
                assert_eq!(
                    ctxs[i].switch(&*space, &mut regs[i]).unwrap(),
                    Exit::Syscall,
                    "arch_prctl {arch_prctl} round {round} ctx {i}: {:#x?}",
                    regs[i]
                );
                let i64 = i as u64;
                assert_eq!(
                    regs[i].rax,
                    0x1111 * (2 * i64 + 1),
                    "arch_prctl {arch_prctl} round {round} ctx {i} fs"
                );
                assert_eq!(
                    regs[i].rbx,
                    0x1111 * (2 * i64 + 2),
                    "arch_prctl {arch_prctl} round {round} ctx {i} gs"
                );
                assert_eq!(regs[i].fs_base, STACK + 16 * i64);
                assert_eq!(regs[i].gs_base, STACK + 16 * i64 + 8);
            }
        }
        // The Sentry moves FS base (as arch_prctl(ARCH_SET_FS) would): the code sees it.
        regs[0].fs_base = STACK + 8;
        assert_eq!(
            ctxs[0].switch(&*space, &mut regs[0]).unwrap(),
            Exit::Syscall
        );
        assert_eq!(
            regs[0].rax, 0x2222,
            "arch_prctl {arch_prctl}: moved fs base"
        );
    }
}

/// If the stub dies (killed from outside), a running switch reports an error instead of
/// hanging.
#[test]
fn switch_fails_when_the_stub_dies() {
    // jmp . (spins forever)
    let s = setup(&[0xeb, 0xfe]);
    let pid = stub_pid(&s);
    let mut ctx = s.platform.new_context().unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        // SAFETY: kill has no memory preconditions; pid is the stub, still unreaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut regs = Registers::new(CODE, STACK + PAGE_SIZE);
    let start = std::time::Instant::now();
    assert!(ctx.switch(&*s.space, &mut regs).is_err());
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    killer.join().unwrap();
    // The address space reports the death too, and dropping everything reaps the stub.
    assert!(s.space.unmap(CODE, PAGE_SIZE).is_err());
}

/// A stub dies with the Sentry: a helper process (this test binary, re-run) creates a
/// stub and is killed; the stub must be gone (dead, or a zombie awaiting its new parent).
#[test]
fn stub_dies_with_the_sentry() {
    if std::env::var_os("BULWARK_SYSTRAP_HELPER").is_some() {
        let s = setup(&[0xeb, 0xfe]);
        println!("stub {}", stub_pid(&s));
        std::thread::sleep(std::time::Duration::from_secs(60));
        return;
    }
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stub_dies_with_the_sentry", "--nocapture"])
        .env("BULWARK_SYSTRAP_HELPER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let pid: i32 = out
        .lines()
        .map(|l| l.unwrap())
        .find_map(|l| l.strip_prefix("stub ").map(|p| p.parse().unwrap()))
        .expect("the helper reports its stub");
    let alive = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    };
    assert!(alive());
    child.kill().unwrap();
    child.wait().unwrap();
    let start = std::time::Instant::now();
    while alive() {
        assert!(
            start.elapsed().as_secs() < 5,
            "stub {pid} outlived the Sentry"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `int 0x80` (the i386 syscall ABI) is a #GP at the instruction, as on hardware without
/// that gate, and leaves the address space working.
#[test]
fn int80_is_a_general_protection_fault() {
    // mov eax, 20; int 0x80; syscall
    let s = setup(&[0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0x0f, 0x05]);
    let mut ctx = s.platform.new_context().unwrap();
    let mut regs = Registers::new(CODE, STACK + PAGE_SIZE);
    assert_eq!(
        ctx.switch(&*s.space, &mut regs).unwrap(),
        Exit::Exception {
            vector: platform::vector::GENERAL_PROTECTION,
            error_code: 0x402
        }
    );
    assert_eq!(regs.rip, CODE + 5);
    regs.rip = CODE + 7;
    assert_eq!(ctx.switch(&*s.space, &mut regs).unwrap(), Exit::Syscall);
}

/// Where the host permits no new namespaces the stub shares the Sentry's (its PID is then
/// not 1, which its tgkill rule must know): syscalls, interrupts and confinement still work.
#[test]
fn works_without_namespaces() {
    let mem = Arc::new(MemoryFile::new(64 << 20).unwrap());
    let mut platform = Systrap::new(mem.clone()).unwrap();
    platform.without_namespaces();
    let space = platform.new_address_space().unwrap();
    let c = mem.allocate(PAGE_SIZE).unwrap();
    // syscall; jmp .
    mem.write(c.offset, &[0x0f, 0x05, 0xeb, 0xfe]).unwrap();
    space
        .map(CODE, PAGE_SIZE, c.offset, Perms::READ | Perms::EXEC)
        .unwrap();
    let pid = Systrap::stub_pid(&*space).unwrap();
    let ours = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        ours
    );
    assert_eq!(status_field(pid, "Seccomp:"), "2");
    assert_eq!(
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count(),
        1
    );
    let mut ctx = platform.new_context().unwrap();
    let mut regs = Registers::new(CODE, STACK + PAGE_SIZE);
    assert_eq!(ctx.switch(&*space, &mut regs).unwrap(), Exit::Syscall);
    // Now it spins at `jmp .`: interrupt it from another thread.
    let irq = ctx.interrupter();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        irq.interrupt();
    });
    let start = std::time::Instant::now();
    assert_eq!(ctx.switch(&*space, &mut regs).unwrap(), Exit::Interrupted);
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    t.join().unwrap();
}
