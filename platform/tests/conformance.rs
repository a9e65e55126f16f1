//! The platform conformance suite: hand-written machine code run on every platform this
//! host has, checking every kind of exit and the isolation properties the Sentry relies on.
//!
//! Each check is one function over a `&Arc<dyn Platform>`; the `conformance!` macro at the
//! bottom turns it into one test per platform (`kvm::name`, `systrap::name`). A platform
//! the host lacks is reported and passed over, except that in CI (`CI=true`) a missing
//! `/dev/kvm` fails the KVM tests.

#![allow(clippy::cast_possible_truncation)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use platform::{
    vector, Access, AddressSpace, Context, Exit, FileRange, MemoryFile, Perms, Platform, Registers,
    PAGE_SIZE,
};

/// Where the guest's code, data and stack live.
const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x60_0000;
const STACK_TOP: u64 = 0x7000_0000;
/// A page the fault tests map and unmap.
const PROBE: u64 = 0x1000_0000;
/// A page the execute-fault tests map and unmap.
const PROBE_CODE: u64 = 0x2000_0000;

const SYS_GETPPID: u64 = 110;
const SYS_EXIT: u64 = 60;

/// Defines `fn $name() -> &'static [u8]`: the machine code of the given Intel-syntax
/// assembly, position-independent, to be copied into guest memory.
macro_rules! guest {
    ($name:ident: $($asm:literal),* $(,)?) => {
        core::arch::global_asm!(
            concat!(".pushsection .rodata.bulwark_guest_", stringify!($name), ",\"a\""),
            // Global, so the extern statics below resolve in release (LTO-free) links too.
            concat!(".globl bulwark_guest_", stringify!($name), "_start"),
            concat!(".globl bulwark_guest_", stringify!($name), "_end"),
            concat!("bulwark_guest_", stringify!($name), "_start:"),
            $($asm,)*
            concat!("bulwark_guest_", stringify!($name), "_end:"),
            ".popsection",
        );
        fn $name() -> &'static [u8] {
            extern "C" {
                #[link_name = concat!("bulwark_guest_", stringify!($name), "_start")]
                static START: u8;
                #[link_name = concat!("bulwark_guest_", stringify!($name), "_end")]
                static END: u8;
            }
            // SAFETY: the two symbols delimit one contiguous blob in a read-only section
            // emitted by the global_asm! above, which lives for the whole program.
            unsafe {
                let start = std::ptr::addr_of!(START);
                let end = std::ptr::addr_of!(END);
                std::slice::from_raw_parts(start, end.offset_from(start) as usize)
            }
        }
    };
}

// ---- The guest programs ---------------------------------------------------------------

// The registers are set by the test; the first instruction is the syscall.
guest!(syscall_then_store:
    "syscall",
    "mov [0x600000], rax",
    "mov [0x600008], rcx",
    "mov [0x600010], r11",
    "pushfq",
    "pop rax",
    "mov [0x600018], rax",
    "mov rax, 60",
    "syscall",
    "ud2",
);

// After the first syscall the test moves rip past the ud2 and sets every register.
guest!(syscall_then_store_all:
    "syscall",
    "ud2",
    "mov [0x600000], rax",
    "mov [0x600008], rbx",
    "mov [0x600010], rcx",
    "mov [0x600018], rdx",
    "mov [0x600020], rsi",
    "mov [0x600028], rdi",
    "mov [0x600030], rbp",
    "mov [0x600038], r8",
    "mov [0x600040], r9",
    "mov [0x600048], r10",
    "mov [0x600050], r11",
    "mov [0x600058], r12",
    "mov [0x600060], r13",
    "mov [0x600068], r14",
    "mov [0x600070], r15",
    "mov [0x600078], rsp",
    "pushfq",
    "pop rax",
    "mov [0x600080], rax",
    "mov rax, 60",
    "syscall",
    "ud2",
);

guest!(read_probe:
    "mov rax, [0x10000000]",
    "mov [0x600000], rax",
    "mov rax, 60",
    "syscall",
    "ud2",
);

guest!(write_probe:
    "mov qword ptr [0x10000008], 7",
    "mov rax, [0x10000008]",
    "mov [0x600000], rax",
    "mov rax, 60",
    "syscall",
    "ud2",
);

// rbx holds the target.
guest!(call_rbx:
    "call rbx",
    "mov rax, 60",
    "syscall",
    "ud2",
);

guest!(exit_now:
    "mov rax, 60",
    "syscall",
    "ud2",
);

// Each faulting instruction comes first, so the fault's rip is CODE.
guest!(op_ud2: "ud2");
guest!(op_int3: "int3", "ud2");
guest!(op_div_rcx: "div rcx", "ud2");
guest!(op_hlt: "hlt", "ud2");
guest!(op_cli: "cli", "ud2");
guest!(op_in: "in al, dx", "ud2");
guest!(op_out: "out dx, al", "ud2");
guest!(op_mov_cr3: "mov cr3, rax", "ud2");
guest!(op_load_rbx: "mov rax, [rbx]", "mov rax, 60", "syscall", "ud2");
guest!(op_store_rbx: "mov [rbx], rax", "mov rax, 60", "syscall", "ud2");
guest!(op_jmp_rbx: "jmp rbx", "ud2");

// rdi: a pattern; rsi: where to store (this context's slot in the data page).
guest!(fpu_state:
    "movq xmm0, rdi",
    "vpbroadcastq ymm1, xmm0",
    "fldpi",
    "mov rax, 39",
    "syscall",
    "movq rax, xmm0",
    "mov [rsi], rax",
    "vextracti128 xmm2, ymm1, 1",
    "movq rax, xmm2",
    "mov [rsi + 8], rax",
    "fstp qword ptr [rsi + 16]",
    "mov rax, fs:[0]",
    "mov [rsi + 24], rax",
    "movq rax, xmm3",
    "mov [rsi + 32], rax",
    "mov rax, 60",
    "syscall",
    "ud2",
);

guest!(load_data_then_syscall:
    "mov rbx, [0x600000]",
    "mov rax, 39",
    "syscall",
    "ud2",
);

// rbx counts; the test answers each syscall with rax = rbx, which the guest checks.
guest!(counting_syscalls:
    "2:",
    "inc rbx",
    "mov rax, 39",
    "syscall",
    "cmp rax, rbx",
    "jne 3f",
    "jmp 2b",
    "3:",
    "ud2",
);

guest!(read_probe_loop:
    "2:",
    "mov rbx, [0x10000000]",
    "mov rax, 39",
    "syscall",
    "jmp 2b",
);

// Spins reading the probe page; ud2 if it ever reads the secret in rcx.
guest!(spin_reading_probe:
    "2:",
    "mov rbx, [0x10000000]",
    "cmp rbx, rcx",
    "je 3f",
    "jmp 2b",
    "3:",
    "ud2",
);

guest!(spin_writing_probe:
    "2:",
    "mov [0x10000000], rbx",
    "jmp 2b",
);

guest!(spin_forever:
    "2:",
    "jmp 2b",
);

/// A guest program: its machine code.
type Program = fn() -> &'static [u8];

// ---- The harness ----------------------------------------------------------------------

/// One guest: an address space with code, a data page and a stack, and a context.
struct Guest {
    memory: Arc<MemoryFile>,
    space: Arc<dyn AddressSpace>,
    ctx: Box<dyn Context>,
    regs: Registers,
    data: FileRange,
}

impl Guest {
    fn new(platform: &Arc<dyn Platform>, code: &[u8]) -> Self {
        let space = platform.new_address_space().expect("new_address_space");
        Self::in_space(platform, space, code)
    }

    /// A guest in an existing address space (sharing its code and data mappings if the
    /// space already has them: they are replaced by fresh ones here).
    fn in_space(platform: &Arc<dyn Platform>, space: Arc<dyn AddressSpace>, code: &[u8]) -> Self {
        let memory = Arc::clone(platform.memory_file());
        let code_len = (code.len() as u64).next_multiple_of(PAGE_SIZE);
        let code_range = memory.allocate(code_len).unwrap();
        memory.write(code_range.offset, code).unwrap();
        space
            .map(CODE, code_len, code_range.offset, Perms::READ | Perms::EXEC)
            .unwrap();
        let data = memory.allocate(PAGE_SIZE).unwrap();
        space
            .map(DATA, PAGE_SIZE, data.offset, Perms::READ | Perms::WRITE)
            .unwrap();
        let stack = memory.allocate(4 * PAGE_SIZE).unwrap();
        space
            .map(
                STACK_TOP - 4 * PAGE_SIZE,
                4 * PAGE_SIZE,
                stack.offset,
                Perms::READ | Perms::WRITE,
            )
            .unwrap();
        let ctx = platform.new_context().expect("new_context");
        Self {
            memory,
            space,
            ctx,
            regs: Registers::new(CODE, STACK_TOP - 64),
            data,
        }
    }

    fn run(&mut self) -> Exit {
        self.ctx
            .switch(&*self.space, &mut self.regs)
            .expect("switch failed")
    }

    /// Runs and expects a syscall exit with number `nr`.
    fn run_to_syscall(&mut self, nr: u64) {
        let exit = self.run();
        assert_eq!(
            exit,
            Exit::Syscall,
            "expected syscall {nr}, regs {:#x?}",
            self.regs
        );
        assert_eq!(self.regs.orig_rax, nr, "syscall number");
    }

    fn data(&self, index: u64) -> u64 {
        self.memory.read_u64(self.data.offset + index * 8).unwrap()
    }

    /// Maps a fresh page at `addr`; returns its memory-file range.
    fn map_page(&self, addr: u64, perms: Perms) -> FileRange {
        let range = self.memory.allocate(PAGE_SIZE).unwrap();
        self.space
            .map(addr, PAGE_SIZE, range.offset, perms)
            .unwrap();
        range
    }

    /// Restarts the guest at the top of its code with fresh registers.
    fn reset(&mut self) {
        self.regs = Registers::new(CODE, STACK_TOP - 64);
    }
}

fn run_on(name: &str, check: fn(&Arc<dyn Platform>)) {
    let available = platform::available();
    if !available.contains(&name) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        if ci || name == "systrap" {
            panic!("platform {name} is not available on this host (available: {available:?})");
        }
        eprintln!("platform {name} is not available on this host: NOT TESTED");
        return;
    }
    let memory = Arc::new(MemoryFile::new(1 << 30).expect("memory file"));
    let platform = platform::new_platform(name, memory).expect("platform");
    check(&platform);
}

// ---- The checks -----------------------------------------------------------------------

guest!(rdtsc_then_syscall:
    "rdtsc",
    "shl rdx, 32",
    "or rax, rdx",
    "mov rdi, rax",
    "mov eax, 110",
    "syscall",
    "ud2",
);

/// A platform that says application code reads the host's TSC (the vDSO then serves the
/// time from it) does: a guest's `rdtsc` lies between two host readings around it.
fn host_tsc_is_what_guests_read(p: &Arc<dyn Platform>) {
    if !p.host_tsc() {
        eprintln!(
            "{}: guests do not read the host's TSC (the vDSO takes the syscall)",
            p.name()
        );
        return;
    }
    let mut g = Guest::new(p, rdtsc_then_syscall());
    let before = platform::rdtsc();
    g.run_to_syscall(SYS_GETPPID);
    let after = platform::rdtsc();
    let guest = g.regs.rdi;
    assert!(
        (before..=after).contains(&guest),
        "guest TSC {guest} outside the host's [{before}, {after}]"
    );
}

fn syscall_exit_registers(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, syscall_then_store());
    g.regs.rax = SYS_GETPPID;
    (g.regs.rdi, g.regs.rsi, g.regs.rdx) = (0x1111, 0x2222, 0x3333);
    (g.regs.r10, g.regs.r8, g.regs.r9) = (0x4444, 0x5555, 0x6666);
    g.run_to_syscall(SYS_GETPPID);
    let r = g.regs;
    assert_eq!(r.rax, SYS_GETPPID);
    assert_eq!(
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9),
        (0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666)
    );
    assert_eq!(r.rip, CODE + 2, "rip points after the syscall instruction");
    assert_eq!(r.rcx, r.rip, "rcx holds the return address");
    assert_eq!(
        r.r11 & 0x202,
        0x202,
        "r11 holds RFLAGS (IF and bit 1 set): {:#x}",
        r.r11
    );
    assert_eq!(r.rflags & 0x202, 0x202, "rflags {:#x}", r.rflags);
    assert_eq!((r.cs, r.ss), (platform::USER_CS, platform::USER_SS));
    assert_eq!(r.rsp, STACK_TOP - 64);

    g.regs.rax = 0xfeed_beef;
    g.run_to_syscall(SYS_EXIT);
    assert_eq!(
        g.data(0),
        0xfeed_beef,
        "the code sees the rax the Sentry wrote"
    );
    assert_eq!(g.data(1), r.rip, "rcx after the syscall");
    assert_eq!(g.data(2), r.r11, "r11 after the syscall");
    assert_ne!(
        g.data(3) & 0x200,
        0,
        "interrupts stay enabled in application mode"
    );
}

fn syscall_resume_sets_every_register(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, syscall_then_store_all());
    g.regs.rax = SYS_GETPPID;
    g.run_to_syscall(SYS_GETPPID);
    let mut want = g.regs;
    want.rip += 2; // past the ud2
    want.rax = 0x1000;
    want.rbx = 0x1001;
    want.rcx = 0x1002;
    want.rdx = 0x1003;
    want.rsi = 0x1004;
    want.rdi = 0x1005;
    want.rbp = 0x1006;
    want.r8 = 0x1008;
    want.r9 = 0x1009;
    want.r10 = 0x100a;
    want.r11 = 0x100b;
    want.r12 = 0x100c;
    want.r13 = 0x100d;
    want.r14 = 0x100e;
    want.r15 = 0x100f;
    want.rsp = STACK_TOP - 0x200;
    want.rflags = platform::RFLAGS_FIXED | 0x1 | 0x400; // CF and DF
    g.regs = want;
    g.run_to_syscall(SYS_EXIT);
    let got: Vec<u64> = (0..17).map(|i| g.data(i)).collect();
    let expected = [
        want.rax, want.rbx, want.rcx, want.rdx, want.rsi, want.rdi, want.rbp, want.r8, want.r9,
        want.r10, want.r11, want.r12, want.r13, want.r14, want.r15, want.rsp,
    ];
    assert_eq!(&got[..16], &expected[..], "registers as the code saw them");
    assert_eq!(
        got[16] & 0x401,
        0x401,
        "CF and DF as set: rflags {:#x}",
        got[16]
    );
}

fn page_fault_read_unmapped_then_resume(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, read_probe());
    let exit = g.run();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: PROBE,
            access: Access::Read,
            present: false
        }
    );
    assert_eq!(g.regs.rip, CODE, "rip at the faulting instruction");
    let page = g.map_page(PROBE, Perms::READ);
    g.memory.write_u64(page.offset, 0x4242).unwrap();
    g.run_to_syscall(SYS_EXIT);
    assert_eq!(g.data(0), 0x4242);
}

fn page_fault_write_unmapped_then_resume(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, write_probe());
    let exit = g.run();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: PROBE + 8,
            access: Access::Write,
            present: false
        }
    );
    assert_eq!(g.regs.rip, CODE);
    let page = g.map_page(PROBE, Perms::READ | Perms::WRITE);
    g.run_to_syscall(SYS_EXIT);
    assert_eq!(g.data(0), 7);
    assert_eq!(
        g.memory.read_u64(page.offset + 8).unwrap(),
        7,
        "the write reached the file"
    );
}

fn page_fault_exec_unmapped_then_resume(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, call_rbx());
    g.regs.rbx = PROBE_CODE;
    let exit = g.run();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: PROBE_CODE,
            access: Access::Exec,
            present: false
        }
    );
    assert_eq!(g.regs.rip, PROBE_CODE);
    let page = g.map_page(PROBE_CODE, Perms::READ | Perms::EXEC);
    g.memory.write(page.offset, exit_now()).unwrap();
    g.run_to_syscall(SYS_EXIT);
    assert_eq!(g.regs.rip, PROBE_CODE + 9);
}

fn page_fault_write_read_only_then_protect(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, write_probe());
    let page = g.map_page(PROBE, Perms::READ);
    let exit = g.run();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: PROBE + 8,
            access: Access::Write,
            present: true
        }
    );
    assert_eq!(
        g.memory.read_u64(page.offset + 8).unwrap(),
        0,
        "the write did not happen"
    );
    g.space
        .protect(PROBE, PAGE_SIZE, Perms::READ | Perms::WRITE)
        .unwrap();
    g.run_to_syscall(SYS_EXIT);
    assert_eq!(g.memory.read_u64(page.offset + 8).unwrap(), 7);
}

fn page_fault_exec_no_exec_then_protect(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, call_rbx());
    g.regs.rbx = PROBE_CODE;
    let page = g.map_page(PROBE_CODE, Perms::READ | Perms::WRITE);
    g.memory.write(page.offset, exit_now()).unwrap();
    let exit = g.run();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: PROBE_CODE,
            access: Access::Exec,
            present: true
        }
    );
    g.space
        .protect(PROBE_CODE, PAGE_SIZE, Perms::READ | Perms::EXEC)
        .unwrap();
    g.run_to_syscall(SYS_EXIT);
}

fn exceptions_have_linux_vectors(p: &Arc<dyn Platform>) {
    struct Case {
        name: &'static str,
        code: Program,
        setup: fn(&mut Registers),
        vector: u8,
        rip_offset: u64,
    }
    let none = |_: &mut Registers| {};
    let cases = [
        Case {
            name: "ud2",
            code: op_ud2,
            setup: none,
            vector: vector::INVALID_OPCODE,
            rip_offset: 0,
        },
        Case {
            name: "int3",
            code: op_int3,
            setup: none,
            vector: vector::BREAKPOINT,
            rip_offset: 1,
        },
        Case {
            name: "div by zero",
            code: op_div_rcx,
            setup: |r| (r.rax, r.rdx, r.rcx) = (1, 0, 0),
            vector: vector::DIVIDE_ERROR,
            rip_offset: 0,
        },
        Case {
            name: "hlt",
            code: op_hlt,
            setup: none,
            vector: vector::GENERAL_PROTECTION,
            rip_offset: 0,
        },
        Case {
            name: "cli",
            code: op_cli,
            setup: none,
            vector: vector::GENERAL_PROTECTION,
            rip_offset: 0,
        },
        Case {
            name: "in",
            code: op_in,
            setup: |r| r.rdx = 0x80,
            vector: vector::GENERAL_PROTECTION,
            rip_offset: 0,
        },
        Case {
            name: "out",
            code: op_out,
            setup: |r| r.rdx = 0x80,
            vector: vector::GENERAL_PROTECTION,
            rip_offset: 0,
        },
        Case {
            name: "mov cr3",
            code: op_mov_cr3,
            setup: |r| r.rax = 0x1000,
            vector: vector::GENERAL_PROTECTION,
            rip_offset: 0,
        },
        Case {
            name: "non-canonical load",
            code: op_load_rbx,
            setup: |r| r.rbx = 0x8000_0000_0000_0000,
            vector: vector::GENERAL_PROTECTION,
            rip_offset: 0,
        },
    ];
    for case in cases {
        let mut g = Guest::new(p, (case.code)());
        (case.setup)(&mut g.regs);
        let exit = g.run();
        assert_eq!(
            exit,
            Exit::Exception {
                vector: case.vector,
                error_code: 0
            },
            "{}: regs {:#x?}",
            case.name,
            g.regs
        );
        assert_eq!(g.regs.rip, CODE + case.rip_offset, "{}: rip", case.name);
    }
}

fn kernel_half_is_unreachable(p: &Arc<dyn Platform>) {
    // The KVM platform keeps its ring-0 area (GDT, IDT, TSS, save areas, trampoline) at the
    // top of the address space; the start of the upper half is probed too. Every access
    // must fault; none may reach the syscall that follows it.
    let mut addrs: Vec<u64> = (0..512)
        .map(|i| 0xffff_ffff_ffe0_0000 + i * PAGE_SIZE)
        .collect();
    addrs.extend((0..512).map(|i| 0xffff_ffff_c000_0000 + i * 0x20_0000));
    addrs.extend((0..64).map(|i| 0xffff_8000_0000_0000 + i * PAGE_SIZE));
    addrs.extend((0..64).map(|i| 0xffff_ff80_0000_0000 + i * PAGE_SIZE));
    let programs: [(&str, Program); 3] = [
        ("read", op_load_rbx),
        ("write", op_store_rbx),
        ("execute", op_jmp_rbx),
    ];
    for (what, code) in programs {
        let mut g = Guest::new(p, code());
        for &addr in &addrs {
            g.reset();
            g.regs.rbx = addr;
            match g.run() {
                Exit::PageFault { addr: a, .. } => assert_eq!(a, addr, "{what} {addr:#x}"),
                Exit::Exception {
                    vector: vector::GENERAL_PROTECTION,
                    ..
                } => {}
                other => panic!("{what} of {addr:#x} did not fault: {other:?}"),
            }
        }
    }
}

/// XMM0 in the FXSAVE region of an XSAVE area.
const XMM_OFFSET: usize = 160;

fn fpu_and_fs_base_are_per_context(p: &Arc<dyn Platform>) {
    let space = p.new_address_space().unwrap();
    let patterns = [0x0123_4567_89ab_cdef_u64, 0xfedc_ba98_7654_3210];
    let mut guests: Vec<Guest> = Vec::new();
    for (i, &pattern) in patterns.iter().enumerate() {
        let mut g = Guest::in_space(p, Arc::clone(&space), fpu_state());
        if let Some(first) = guests.first() {
            // Share the first guest's data page, so both contexts write to one place.
            g.space
                .map(
                    DATA,
                    PAGE_SIZE,
                    first.data.offset,
                    Perms::READ | Perms::WRITE,
                )
                .unwrap();
            g.data = first.data;
        }
        let slot = DATA + 0x100 * i as u64;
        g.regs.rdi = pattern;
        g.regs.rsi = slot;
        // fs:[0] reads the word at DATA + 0x800 + 8 * i.
        g.regs.fs_base = DATA + 0x800 + 8 * i as u64;
        g.memory
            .write_u64(g.data.offset + 0x800 + 8 * i as u64, pattern ^ 0xf5f5)
            .unwrap();
        guests.push(g);
    }
    // Both contexts load their registers and stop at the syscall, interleaved.
    for g in &mut guests {
        g.run_to_syscall(39);
    }
    for (g, &pattern) in guests.iter_mut().zip(&patterns) {
        let fpu = g.ctx.fpu().as_bytes();
        let xmm0 = u64::from_le_bytes(fpu[XMM_OFFSET..XMM_OFFSET + 8].try_into().unwrap());
        assert_eq!(xmm0, pattern, "the Sentry sees the context's xmm0");
        // Put a value into xmm3 through the saved state; the code stores it.
        let state = g.ctx.fpu_mut().as_bytes_mut();
        let xmm3 = XMM_OFFSET + 3 * 16;
        state[xmm3..xmm3 + 8].copy_from_slice(&(pattern ^ 0x3333).to_le_bytes());
        let hdr = platform::FpuState::XSAVE_HEADER_OFFSET;
        let bv = u64::from_le_bytes(state[hdr..hdr + 8].try_into().unwrap()) | 2;
        state[hdr..hdr + 8].copy_from_slice(&bv.to_le_bytes());
    }
    for g in guests.iter_mut().rev() {
        g.run_to_syscall(SYS_EXIT);
    }
    let g = &guests[0];
    for (i, &pattern) in patterns.iter().enumerate() {
        let base = 0x20 * i as u64;
        assert_eq!(g.data(base), pattern, "context {i}: xmm0");
        assert_eq!(
            g.data(base + 1),
            pattern,
            "context {i}: upper half of ymm1 (AVX)"
        );
        assert_eq!(
            f64::from_bits(g.data(base + 2)),
            std::f64::consts::PI,
            "context {i}: st0"
        );
        assert_eq!(g.data(base + 3), pattern ^ 0xf5f5, "context {i}: fs:[0]");
        assert_eq!(
            g.data(base + 4),
            pattern ^ 0x3333,
            "context {i}: xmm3 set by the Sentry"
        );
    }
}

fn address_spaces_are_isolated(p: &Arc<dyn Platform>) {
    let mut a = Guest::new(p, load_data_then_syscall());
    let mut b = Guest::new(p, load_data_then_syscall());
    a.memory.write_u64(a.data.offset, 0xaaaa).unwrap();
    b.memory.write_u64(b.data.offset, 0xbbbb).unwrap();
    for _ in 0..3 {
        a.reset();
        a.run_to_syscall(39);
        assert_eq!(a.regs.rbx, 0xaaaa);
        b.reset();
        b.run_to_syscall(39);
        assert_eq!(b.regs.rbx, 0xbbbb);
    }
    // One context moving between the two spaces sees each one's memory.
    for _ in 0..3 {
        for (space, want) in [
            (Arc::clone(&a.space), 0xaaaa),
            (Arc::clone(&b.space), 0xbbbb),
        ] {
            a.reset();
            let exit = a.ctx.switch(&*space, &mut a.regs).unwrap();
            assert_eq!(exit, Exit::Syscall);
            assert_eq!(a.regs.rbx, want);
        }
    }
    // What one space maps, the other does not have.
    b.space.unmap(DATA, PAGE_SIZE).unwrap();
    b.reset();
    assert_eq!(
        b.run(),
        Exit::PageFault {
            addr: DATA,
            access: Access::Read,
            present: false
        }
    );
    a.reset();
    a.run_to_syscall(39);
    assert_eq!(a.regs.rbx, 0xaaaa);
}

/// Two threads (so two vCPUs on KVM) read the probe page between syscalls; once `unmap`
/// has returned, the next access of each must fault.
fn unmap_is_effective_on_every_thread(p: &Arc<dyn Platform>) {
    let space = p.new_address_space().unwrap();
    let first = Guest::in_space(p, Arc::clone(&space), read_probe_loop());
    let probe = first.map_page(PROBE, Perms::READ);
    let unmapped = Arc::new(AtomicBool::new(false));
    let warm = Arc::new(Barrier::new(3));
    let mut threads = Vec::new();
    let mut guests = vec![
        first,
        Guest::in_space(p, Arc::clone(&space), read_probe_loop()),
    ];
    for mut g in guests.drain(..) {
        let (unmapped, warm) = (Arc::clone(&unmapped), Arc::clone(&warm));
        threads.push(thread::spawn(move || {
            for _ in 0..20 {
                g.run_to_syscall(39);
            }
            warm.wait();
            loop {
                let after = unmapped.load(Ordering::SeqCst);
                match g.run() {
                    Exit::Syscall if !after => continue,
                    Exit::PageFault {
                        addr: PROBE,
                        access: Access::Read,
                        present: false,
                    } => return after,
                    other => panic!("after unmap: {other:?} (unmap done: {after})"),
                }
            }
        }));
    }
    warm.wait();
    thread::sleep(Duration::from_millis(20));
    space.unmap(PROBE, PAGE_SIZE).unwrap();
    unmapped.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("thread");
    }
    p.memory_file().free(probe);
}

/// A context spinning on a page (never leaving the guest) must lose access to it when
/// another thread unmaps it: the Sentry reuses the memory at once.
fn unmap_stops_a_spinning_context(p: &Arc<dyn Platform>) {
    const SECRET: u64 = 0x5ec2_e7ab_cdef_0123;
    let mut g = Guest::new(p, spin_reading_probe());
    let probe = g.map_page(PROBE, Perms::READ);
    g.regs.rcx = SECRET;
    let space = Arc::clone(&g.space);
    let interrupter = g.ctx.interrupter();
    let runner = thread::spawn(move || {
        let exit = g.run();
        (exit, g)
    });
    thread::sleep(Duration::from_millis(100));
    space.unmap(PROBE, PAGE_SIZE).unwrap();
    // The page now holds somebody else's secret.
    p.memory_file().write_u64(probe.offset, SECRET).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !runner.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    if !runner.is_finished() {
        interrupter.interrupt();
    }
    let (exit, _g) = runner.join().unwrap();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: PROBE,
            access: Access::Read,
            present: false
        },
        "a spinning context must fault after unmap (ud2 = it read reused memory; \
         Interrupted = it kept the stale mapping for 5 s)"
    );
}

fn protect_stops_a_spinning_writer(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, spin_writing_probe());
    let probe = g.map_page(PROBE, Perms::READ | Perms::WRITE);
    g.regs.rbx = 0x1111;
    let space = Arc::clone(&g.space);
    let interrupter = g.ctx.interrupter();
    let runner = thread::spawn(move || {
        let exit = g.run();
        (exit, g)
    });
    thread::sleep(Duration::from_millis(100));
    space.protect(PROBE, PAGE_SIZE, Perms::READ).unwrap();
    let memory = p.memory_file();
    memory.write_u64(probe.offset, 0x2222).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !runner.is_finished() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        memory.read_u64(probe.offset).unwrap(),
        0x2222,
        "a write landed after protect"
    );
    if !runner.is_finished() {
        interrupter.interrupt();
    }
    let (exit, _g) = runner.join().unwrap();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: PROBE,
            access: Access::Write,
            present: true
        }
    );
}

fn eight_threads_run_eight_contexts(p: &Arc<dyn Platform>) {
    const ITERATIONS: u64 = 2000;
    let space = p.new_address_space().unwrap();
    let threads: Vec<_> = (0..8u64)
        .map(|id| {
            let mut g = Guest::in_space(p, Arc::clone(&space), counting_syscalls());
            thread::spawn(move || {
                g.regs.r12 = id;
                for i in 1..=ITERATIONS {
                    g.run_to_syscall(39);
                    assert_eq!((g.regs.rbx, g.regs.r12), (i, id), "thread {id}");
                    g.regs.rax = g.regs.rbx;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a thread failed");
    }
}

fn interrupt_stops_a_spinning_context(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, spin_forever());
    let interrupter = g.ctx.interrupter();
    let mut latencies = Vec::new();
    for _ in 0..5 {
        let sent = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let (sent2, interrupter2) = (Arc::clone(&sent), Arc::clone(&interrupter));
        let kicker = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            sent2.store(start.elapsed().as_nanos() as u64, Ordering::SeqCst);
            interrupter2.interrupt();
        });
        let exit = g.run();
        let returned = start.elapsed().as_nanos() as u64;
        kicker.join().unwrap();
        assert_eq!(exit, Exit::Interrupted);
        latencies.push(Duration::from_nanos(returned - sent.load(Ordering::SeqCst)));
    }
    latencies.sort();
    eprintln!("interrupt latencies: {latencies:?}");
    assert!(
        latencies[2] < Duration::from_millis(10),
        "median latency {:?}",
        latencies[2]
    );
    assert!(
        latencies[4] < Duration::from_millis(100),
        "worst latency {:?}",
        latencies[4]
    );
}

fn interrupt_before_switch_is_kept(p: &Arc<dyn Platform>) {
    let mut g = Guest::new(p, exit_now());
    g.ctx.interrupter().interrupt();
    assert_eq!(g.run(), Exit::Interrupted);
    assert_eq!(g.regs.rip, CODE, "no guest code ran");
    g.run_to_syscall(SYS_EXIT);
}

/// Interrupts rain on a context making syscalls: whenever one lands, the context must be
/// in application code (never inside the platform's own exit path), and no syscall may be
/// lost or run twice.
fn interrupts_during_syscalls_stop_in_application_code(p: &Arc<dyn Platform>) {
    const SYSCALLS: u64 = 20_000;
    let mut g = Guest::new(p, counting_syscalls());
    let interrupter = g.ctx.interrupter();
    let done = Arc::new(AtomicBool::new(false));
    let done2 = Arc::clone(&done);
    let kicker = thread::spawn(move || {
        while !done2.load(Ordering::SeqCst) {
            interrupter.interrupt();
            thread::yield_now();
        }
    });
    let (mut answered, mut interrupted) = (0u64, 0u64);
    while answered < SYSCALLS {
        match g.run() {
            Exit::Syscall => {
                answered += 1;
                assert_eq!(g.regs.rbx, answered, "syscall lost or repeated");
                g.regs.rax = answered;
            }
            Exit::Interrupted => {
                interrupted += 1;
                let rip = g.regs.rip;
                let code_end = CODE + counting_syscalls().len() as u64;
                assert!(
                    (CODE..code_end).contains(&rip),
                    "interrupted at {rip:#x}, outside the application's code"
                );
            }
            other => panic!("after {answered} syscalls: {other:?}, regs {:#x?}", g.regs),
        }
    }
    done.store(true, Ordering::SeqCst);
    kicker.join().unwrap();
    eprintln!(
        "{}: {interrupted} interrupts over {SYSCALLS} syscalls",
        p.name()
    );
}

fn a_million_syscalls(p: &Arc<dyn Platform>) {
    const ITERATIONS: u64 = 1_000_000;
    let mut g = Guest::new(p, counting_syscalls());
    let start = Instant::now();
    for i in 1..=ITERATIONS {
        let exit = g.run();
        if exit != Exit::Syscall || g.regs.rbx != i {
            panic!("round trip {i}: {exit:?}, rbx {}", g.regs.rbx);
        }
        g.regs.rax = i;
    }
    let per = start.elapsed() / ITERATIONS as u32;
    eprintln!(
        "{}: {ITERATIONS} syscall round trips, {per:?} each",
        p.name()
    );
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod kvm {
            $( #[test] fn $check() { super::run_on("kvm", super::$check) } )*
        }
        mod systrap {
            $( #[test] fn $check() { super::run_on("systrap", super::$check) } )*
        }
    };
}

conformance!(
    host_tsc_is_what_guests_read,
    syscall_exit_registers,
    syscall_resume_sets_every_register,
    page_fault_read_unmapped_then_resume,
    page_fault_write_unmapped_then_resume,
    page_fault_exec_unmapped_then_resume,
    page_fault_write_read_only_then_protect,
    page_fault_exec_no_exec_then_protect,
    exceptions_have_linux_vectors,
    kernel_half_is_unreachable,
    fpu_and_fs_base_are_per_context,
    address_spaces_are_isolated,
    unmap_is_effective_on_every_thread,
    unmap_stops_a_spinning_context,
    protect_stops_a_spinning_writer,
    eight_threads_run_eight_contexts,
    interrupt_stops_a_spinning_context,
    interrupt_before_switch_is_kept,
    interrupts_during_syscalls_stop_in_application_code,
    a_million_syscalls,
);
