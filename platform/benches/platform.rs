//! Platform round trips, measured side by side in one run:
//! `cargo bench -p platform --bench platform`.
//!
//! Each row is one kind of round trip between the Sentry and application code, in ns per
//! round trip. `BENCH_ITERATIONS` scales the iteration counts (default 1.0).
//! Rows for other platforms go beside the KVM ones: add a `fn <platform>_rows` that
//! returns `Vec<Row>` and call it from `main`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::kvm::Kvm;
use platform::systrap::Systrap;
use platform::{AddressSpace, Exit, MemoryFile, Perms, Platform, Registers, PAGE_SIZE};

const CODE: u64 = 0x40_0000;
const STACK_TOP: u64 = 0x80_0000;
const UNMAPPED: u32 = 0x60_0000;

/// One measured figure.
struct Row {
    name: String,
    iterations: u64,
    total: Duration,
}

impl Row {
    fn ns(&self) -> f64 {
        self.total.as_nanos() as f64 / self.iterations.max(1) as f64
    }
}

/// Times `iterations` calls of `op` (after one untimed warm-up call).
fn bench(name: &str, iterations: u64, mut op: impl FnMut()) -> Row {
    op();
    let start = Instant::now();
    for _ in 0..iterations {
        op();
    }
    row(name, iterations, start.elapsed())
}

/// A figure timed elsewhere (when the loop itself is inside the thing measured).
fn row(name: &str, iterations: u64, total: Duration) -> Row {
    Row {
        name: name.to_string(),
        iterations,
        total,
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<52} {:>10} {:>14}",
        "round trip", "iterations", "ns each"
    );
    for r in rows {
        println!("{:<52} {:>10} {:>14.0}", r.name, r.iterations, r.ns());
    }
}

#[allow(clippy::cast_possible_truncation)] // a count scaled by a small factor
fn scaled(n: u64) -> u64 {
    let scale: f64 = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * scale) as u64).max(1)
}

fn native_rows() -> Vec<Row> {
    vec![bench("native getppid", scaled(1_000_000), || {
        // SAFETY: getppid has no preconditions.
        std::hint::black_box(unsafe { libc::getppid() });
    })]
}

/// An address space with `code` at CODE and a stack, and a context.
fn guest(
    p: &dyn Platform,
    code: &[u8],
) -> (Arc<dyn AddressSpace>, Box<dyn platform::Context>, Registers) {
    let memory = p.memory_file();
    let space = p.new_address_space().expect("address space");
    let page = memory.allocate(PAGE_SIZE).expect("code page");
    memory.write(page.offset, code).expect("code");
    space
        .map(CODE, PAGE_SIZE, page.offset, Perms::READ | Perms::EXEC)
        .expect("map code");
    let stack = memory.allocate(PAGE_SIZE).expect("stack page");
    space
        .map(
            STACK_TOP - PAGE_SIZE,
            PAGE_SIZE,
            stack.offset,
            Perms::READ | Perms::WRITE,
        )
        .expect("map stack");
    let ctx = p.new_context().expect("context");
    (space, ctx, Registers::new(CODE, STACK_TOP))
}

fn kvm_rows() -> Vec<Row> {
    if let Err(e) = Kvm::probe() {
        println!("kvm: not available ({e})");
        return Vec::new();
    }
    let memory = Arc::new(MemoryFile::new(256 << 20).expect("memory file"));
    let kvm = Kvm::new(memory).expect("kvm");
    println!("kvm: {:?} path", kvm.path());
    let n = scaled(20_000);
    let mut rows = Vec::new();
    let cpl3 = kvm.time_bare_exits(true, n).expect("bare exits, ring 3");
    rows.push(row("kvm: bare exit (out loop, CPL 3)", n, cpl3));
    let cpl0 = kvm.time_bare_exits(false, n).expect("bare exits, ring 0");
    rows.push(row("kvm: bare exit (out loop, CPL 0)", n, cpl0));

    // syscall; jmp back
    let (space, mut ctx, mut regs) = guest(&kvm, &[0x0f, 0x05, 0xeb, 0xfc]);
    rows.push(bench("kvm: syscall (Context::switch)", n, || {
        regs.rax = 39;
        let exit = ctx.switch(&*space, &mut regs).expect("switch");
        assert_eq!(exit, Exit::Syscall);
    }));

    // mov rax, [UNMAPPED]: faults every time it is resumed.
    let mut load = vec![0x48, 0x8b, 0x04, 0x25];
    load.extend_from_slice(&UNMAPPED.to_le_bytes());
    let (space, mut ctx, mut regs) = guest(&kvm, &load);
    rows.push(bench("kvm: page fault (Context::switch)", n, || {
        let exit = ctx.switch(&*space, &mut regs).expect("switch");
        assert!(matches!(exit, Exit::PageFault { .. }), "{exit:?}");
    }));
    rows
}

fn systrap_rows() -> Vec<Row> {
    if let Err(e) = Systrap::probe() {
        println!("systrap: not available ({e})");
        return Vec::new();
    }
    let memory = Arc::new(MemoryFile::new(256 << 20).expect("memory file"));
    let systrap = Systrap::new(memory).expect("systrap");
    let n = scaled(200_000);
    let mut rows = Vec::new();

    // syscall; jmp back
    let (space, mut ctx, mut regs) = guest(&systrap, &[0x0f, 0x05, 0xeb, 0xfc]);
    rows.push(bench("systrap: syscall (Context::switch)", n, || {
        regs.rax = 39;
        let exit = ctx.switch(&*space, &mut regs).expect("switch");
        assert_eq!(exit, Exit::Syscall);
    }));

    // mov rax, [UNMAPPED]: faults every time it is resumed.
    let mut load = vec![0x48, 0x8b, 0x04, 0x25];
    load.extend_from_slice(&UNMAPPED.to_le_bytes());
    let (space, mut ctx, mut regs) = guest(&systrap, &load);
    rows.push(bench(
        "systrap: page fault (Context::switch)",
        n / 4,
        || {
            let exit = ctx.switch(&*space, &mut regs).expect("switch");
            assert!(matches!(exit, Exit::PageFault { .. }), "{exit:?}");
        },
    ));

    // A new address space: a stub process in its own namespaces, started and ready.
    rows.push(bench(
        "systrap: new address space (stub start)",
        scaled(50),
        || {
            drop(systrap.new_address_space().expect("address space"));
        },
    ));
    rows
}

fn main() {
    let mut rows = native_rows();
    let systrap = systrap_rows();
    let systrap_ratio = match (rows.first(), systrap.first()) {
        (Some(native), Some(sys)) => Some(sys.ns() / native.ns()),
        _ => None,
    };
    rows.extend(systrap);
    let kvm = kvm_rows();
    if let (Some(bare), Some(sys)) = (
        kvm.iter().find(|r| r.name.contains("CPL 3")),
        kvm.iter().find(|r| r.name.contains("syscall")),
    ) {
        let ratio = sys.ns() / bare.ns();
        rows.extend(kvm);
        print_table(&rows);
        println!("kvm: syscall / bare exit (CPL 3) = {ratio:.2}");
    } else {
        rows.extend(kvm);
        print_table(&rows);
    }
    if let Some(ratio) = systrap_ratio {
        println!("systrap: syscall / native getppid = {ratio:.1}");
    }
}
