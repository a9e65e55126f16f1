//! Tests that run hand-assembled guest code on this host's KVM (skipped without
//! `/dev/kvm`).

#![allow(clippy::cast_possible_truncation)] // test addresses are small

use super::*;
use crate::{Access, Exit, FpuState};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x60_0000;
const STACK_TOP: u64 = 0x80_0000;

struct Harness {
    kvm: Kvm,
    space: Arc<dyn AddressSpace>,
}

fn harness_with(path: Option<Path>) -> Option<Harness> {
    harness_vcpus(path, 16)
}

fn harness_vcpus(path: Option<Path>, vcpus: usize) -> Option<Harness> {
    if let Err(e) = Kvm::probe() {
        eprintln!("skipping: {e}");
        return None;
    }
    let memory = Arc::new(MemoryFile::new(64 << 20).unwrap());
    let kvm = Kvm::with_options(memory, path, vcpus).unwrap();
    let space = kvm.new_address_space().unwrap();
    let h = Harness { kvm, space };
    let stack = h.page(&[]);
    h.space
        .map(
            STACK_TOP - PAGE_SIZE,
            PAGE_SIZE,
            stack,
            Perms::READ | Perms::WRITE,
        )
        .unwrap();
    Some(h)
}

fn harness() -> Option<Harness> {
    harness_with(None)
}

impl Harness {
    /// A fresh memory-file page holding `bytes`.
    fn page(&self, bytes: &[u8]) -> u64 {
        let mf = self.kvm.memory_file();
        let r = mf.allocate(PAGE_SIZE).unwrap();
        mf.write(r.offset, bytes).unwrap();
        r.offset
    }

    fn code(&self, bytes: &[u8]) -> Registers {
        let page = self.page(bytes);
        self.space
            .map(CODE, PAGE_SIZE, page, Perms::READ | Perms::EXEC)
            .unwrap();
        Registers::new(CODE, STACK_TOP)
    }
}

// Hand-assembled instructions.
const SYSCALL: [u8; 2] = [0x0f, 0x05];
fn mov_eax(v: u32) -> Vec<u8> {
    let mut b = vec![0xb8];
    b.extend_from_slice(&v.to_le_bytes());
    b
}
/// mov rax, [abs32]
fn load_rax(addr: u32) -> Vec<u8> {
    let mut b = vec![0x48, 0x8b, 0x04, 0x25];
    b.extend_from_slice(&addr.to_le_bytes());
    b
}
/// mov [abs32], rax
fn store_rax(addr: u32) -> Vec<u8> {
    let mut b = vec![0x48, 0x89, 0x04, 0x25];
    b.extend_from_slice(&addr.to_le_bytes());
    b
}

#[test]
fn probe_picks_a_path() {
    let Some(h) = harness() else { return };
    eprintln!("path: {:?}", h.kvm.path());
}

#[test]
fn syscall_registers_round_trip() {
    let Some(h) = harness() else { return };
    let mut code = mov_eax(39);
    code.extend_from_slice(&SYSCALL);
    code.extend_from_slice(&[0x48, 0x89, 0xc3]); // mov rbx, rax
    code.extend(mov_eax(60));
    code.extend_from_slice(&SYSCALL);
    let mut regs = h.code(&code);
    regs.rdi = 0x1111;
    regs.r15 = 0xf0f0;
    regs.rflags |= 1; // CF
    let mut ctx = h.kvm.new_context().unwrap();
    assert_eq!(ctx.switch(&*h.space, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(regs.orig_rax, 39);
    assert_eq!(regs.rax, 39);
    assert_eq!(regs.rip, CODE + 7);
    assert_eq!(regs.rcx, CODE + 7);
    assert_eq!(regs.r11 & 0xfff, 0x203);
    assert_eq!(regs.rflags & 0xfff, 0x203);
    assert_eq!((regs.rdi, regs.r15, regs.rsp), (0x1111, 0xf0f0, STACK_TOP));
    assert_eq!((regs.cs, regs.ss), (crate::USER_CS, crate::USER_SS));
    regs.rax = 0x1234_5678_9abc;
    assert_eq!(ctx.switch(&*h.space, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(regs.orig_rax, 60);
    assert_eq!(regs.rbx, 0x1234_5678_9abc);
}

#[test]
fn page_faults_and_resume() {
    let Some(h) = harness() else { return };
    let mut code = load_rax(DATA as u32);
    code.extend(store_rax(DATA as u32 + 8));
    code.extend_from_slice(&SYSCALL);
    let mut regs = h.code(&code);
    let mut ctx = h.kvm.new_context().unwrap();
    let exit = ctx.switch(&*h.space, &mut regs).unwrap();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: DATA,
            access: Access::Read,
            present: false
        }
    );
    assert_eq!(regs.rip, CODE);
    let data = h.page(&0x77_u64.to_le_bytes());
    h.space.map(DATA, PAGE_SIZE, data, Perms::READ).unwrap();
    let exit = ctx.switch(&*h.space, &mut regs).unwrap();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: DATA + 8,
            access: Access::Write,
            present: true
        }
    );
    assert_eq!(regs.rip, CODE + 8);
    h.space
        .protect(DATA, PAGE_SIZE, Perms::READ | Perms::WRITE)
        .unwrap();
    assert_eq!(ctx.switch(&*h.space, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(h.kvm.memory_file().read_u64(data + 8).unwrap(), 0x77);
}

#[test]
fn exceptions_have_vectors() {
    let Some(h) = harness() else { return };
    let mut ctx = h.kvm.new_context().unwrap();
    let cases: [(&[u8], u8, u64, u64); 5] = [
        (&[0x0f, 0x0b], 6, 0, 0),  // ud2
        (&[0xcc], 3, 0, 1),        // int3: rip after
        (&[0xf4], 13, 0, 0),       // hlt
        (&[0xfa], 13, 0, 0),       // cli
        (&[0xe6, 0x80], 13, 0, 0), // out %al, $0x80
    ];
    for (code, vector, error_code, rip_after) in cases {
        let mut regs = h.code(code);
        let exit = ctx.switch(&*h.space, &mut regs).unwrap();
        assert_eq!(exit, Exit::Exception { vector, error_code }, "{code:x?}");
        assert_eq!(regs.rip, CODE + rip_after, "{code:x?}");
    }
}

#[test]
fn remap_and_unmap_take_effect() {
    let Some(h) = harness() else { return };
    let mut code = load_rax(DATA as u32);
    code.extend_from_slice(&SYSCALL);
    code.extend_from_slice(&[0xeb, 0x100_u16.wrapping_sub(code.len() as u16 + 2) as u8]);
    let mut regs = h.code(&code);
    let a = h.page(&1_u64.to_le_bytes());
    let b = h.page(&2_u64.to_le_bytes());
    h.space.map(DATA, PAGE_SIZE, a, Perms::READ).unwrap();
    let mut ctx = h.kvm.new_context().unwrap();
    assert_eq!(ctx.switch(&*h.space, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(regs.rax, 1);
    h.space.map(DATA, PAGE_SIZE, b, Perms::READ).unwrap();
    assert_eq!(ctx.switch(&*h.space, &mut regs).unwrap(), Exit::Syscall);
    assert_eq!(regs.rax, 2, "stale translation after remap");
    h.space.unmap(DATA, PAGE_SIZE).unwrap();
    let exit = ctx.switch(&*h.space, &mut regs).unwrap();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: DATA,
            access: Access::Read,
            present: false
        },
        "stale translation after unmap"
    );
}

#[test]
fn jumping_to_the_exit_page_faults() {
    let Some(h) = harness() else { return };
    // mov rax, imm64; jmp rax
    let mut code = vec![0x48, 0xb8];
    code.extend_from_slice(&MAX_USER_ADDRESS.to_le_bytes());
    code.extend_from_slice(&[0xff, 0xe0]);
    let mut regs = h.code(&code);
    let mut ctx = h.kvm.new_context().unwrap();
    let exit = ctx.switch(&*h.space, &mut regs).unwrap();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: MAX_USER_ADDRESS,
            access: Access::Exec,
            present: false
        }
    );
    assert_eq!(regs.rip, MAX_USER_ADDRESS);
}

#[test]
fn interrupt_spinning_context() {
    let Some(h) = harness() else { return };
    let mut regs = h.code(&[0xeb, 0xfe]); // jmp .
    let mut ctx = h.kvm.new_context().unwrap();
    let int = ctx.interrupter();
    int.interrupt();
    assert_eq!(ctx.switch(&*h.space, &mut regs).unwrap(), Exit::Interrupted);
    // Best of three, to keep a busy test machine's scheduling delays out of the figure.
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let int = int.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            int.interrupt();
            std::time::Instant::now()
        });
        let exit = ctx.switch(&*h.space, &mut regs).unwrap();
        let returned = std::time::Instant::now();
        let sent = t.join().unwrap();
        assert_eq!(exit, Exit::Interrupted);
        assert_eq!(regs.rip, CODE);
        best = best.min(returned.saturating_duration_since(sent));
    }
    assert!(best < std::time::Duration::from_millis(10), "{best:?}");
}

/// The architectural trampoline's exception entry, save area, exit and `iretq` resume run
/// here too (PVM delivers exceptions to ring 0, emulated); only its `syscall` entry cannot
/// (a PVM `syscall` stays in ring 3).
#[test]
fn architectural_trampoline_exception_path() {
    let Some(h) = harness_with(Some(Path::Architectural)) else {
        return;
    };
    assert_eq!(h.kvm.path(), Path::Architectural);
    // ud2; int3; mov rax, [DATA]; ud2
    let mut code = vec![0x0f, 0x0b, 0xcc];
    code.extend(load_rax(DATA as u32));
    code.extend_from_slice(&[0x0f, 0x0b]);
    let mut regs = h.code(&code);
    regs.rbx = 0xb0b0;
    regs.r12 = 0x1212;
    regs.r15 = 0x1515;
    regs.rax = 0xaaaa;
    regs.fs_base = 0x7000_0000;
    regs.gs_base = 0x7100_0000;
    let mut ctx = h.kvm.new_context().unwrap();
    let exit = ctx.switch(&*h.space, &mut regs).unwrap();
    assert_eq!(
        exit,
        Exit::Exception {
            vector: 6,
            error_code: 0
        }
    );
    assert_eq!(regs.rip, CODE);
    assert_eq!(
        (regs.rbx, regs.r12, regs.r15, regs.rax),
        (0xb0b0, 0x1212, 0x1515, 0xaaaa)
    );
    assert_eq!((regs.fs_base, regs.gs_base), (0x7000_0000, 0x7100_0000));
    assert_eq!(regs.rsp, STACK_TOP);
    assert_eq!(regs.orig_rax, u64::MAX);
    regs.rip += 2;
    regs.r12 = 0x2121;
    let exit = ctx.switch(&*h.space, &mut regs).unwrap();
    assert_eq!(
        exit,
        Exit::Exception {
            vector: 3,
            error_code: 0
        }
    );
    assert_eq!(regs.rip, CODE + 3);
    assert_eq!(regs.r12, 0x2121);
    let exit = ctx.switch(&*h.space, &mut regs).unwrap();
    assert_eq!(
        exit,
        Exit::PageFault {
            addr: DATA,
            access: Access::Read,
            present: false
        }
    );
    assert_eq!(regs.rip, CODE + 3);
    let data = h.page(&0x5a5a_u64.to_le_bytes());
    h.space.map(DATA, PAGE_SIZE, data, Perms::READ).unwrap();
    let exit = ctx.switch(&*h.space, &mut regs).unwrap();
    assert_eq!(
        exit,
        Exit::Exception {
            vector: 6,
            error_code: 0
        }
    );
    assert_eq!(regs.rax, 0x5a5a);
    // The FS base really is the guest's: set by wrfsbase on the way in, read back by
    // rdfsbase on the way out; a different value must come back as set.
    regs.fs_base = 0x1234_5000;
    regs.rip = CODE;
    assert_eq!(
        ctx.switch(&*h.space, &mut regs).unwrap(),
        Exit::Exception {
            vector: 6,
            error_code: 0
        }
    );
    assert_eq!(regs.fs_base, 0x1234_5000);
}

/// XMM0's low quadword in an XSAVE area.
fn xmm0(state: &FpuState) -> u64 {
    u64::from_le_bytes(state.as_bytes()[160..168].try_into().unwrap())
}

/// Two contexts share one vCPU: each one's FPU state is saved out when the other leases
/// the vCPU, and fetched from the vCPU when the Sentry asks while it is still live there.
#[test]
fn fpu_state_follows_contexts_through_one_vcpu() {
    let Some(h) = harness_vcpus(None, 1) else {
        return;
    };
    // 0: movq %xmm0, %rax; syscall; movq %rbx, %xmm0; syscall; jmp 0
    let code = [
        0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x0f, 0x05, 0x66, 0x48, 0x0f, 0x6e, 0xc3, 0x0f, 0x05, 0xeb,
        0xf0,
    ];
    let regs = h.code(&code);
    let mut a = h.kvm.new_context().unwrap();
    let mut b = h.kvm.new_context().unwrap();
    let (mut ra, mut rb) = (regs, regs);
    a.fpu_mut().as_bytes_mut()[160..168].copy_from_slice(&0xaaaa_u64.to_le_bytes());
    b.fpu_mut().as_bytes_mut()[160..168].copy_from_slice(&0xbbbb_u64.to_le_bytes());
    assert_eq!(a.switch(&*h.space, &mut ra).unwrap(), Exit::Syscall);
    assert_eq!(ra.rax, 0xaaaa);
    assert_eq!(b.switch(&*h.space, &mut rb).unwrap(), Exit::Syscall);
    assert_eq!(rb.rax, 0xbbbb);
    // Each sets a new XMM0 in the guest; b runs last, so a's is saved out by eviction
    // and b's is still live in the vCPU when asked for.
    ra.rbx = 0xa1a1;
    rb.rbx = 0xb1b1;
    assert_eq!(a.switch(&*h.space, &mut ra).unwrap(), Exit::Syscall);
    assert_eq!(b.switch(&*h.space, &mut rb).unwrap(), Exit::Syscall);
    assert_eq!(xmm0(a.fpu()), 0xa1a1);
    assert_eq!(xmm0(b.fpu()), 0xb1b1);
    // Back to the top: each reads its own XMM0.
    assert_eq!(a.switch(&*h.space, &mut ra).unwrap(), Exit::Syscall);
    assert_eq!(ra.rax, 0xa1a1);
    assert_eq!(b.switch(&*h.space, &mut rb).unwrap(), Exit::Syscall);
    assert_eq!(rb.rax, 0xb1b1);
    // A change through fpu_mut (b's state is live in the vCPU, a ran last) reaches the
    // guest: b is now before `movq %rbx, %xmm0`, run it, then change XMM0 and read it.
    assert_eq!(a.switch(&*h.space, &mut ra).unwrap(), Exit::Syscall);
    assert_eq!(b.switch(&*h.space, &mut rb).unwrap(), Exit::Syscall);
    b.fpu_mut().as_bytes_mut()[160..168].copy_from_slice(&0xb2b2_u64.to_le_bytes());
    assert_eq!(b.switch(&*h.space, &mut rb).unwrap(), Exit::Syscall);
    assert_eq!(rb.rax, 0xb2b2);
}

/// A context spinning in ring 3 on the architectural path is kicked out, parked at the
/// trampoline's resume entry with its registers in the save area, and resumes from there.
#[test]
fn architectural_interrupt_parks_and_resumes() {
    let Some(h) = harness_with(Some(Path::Architectural)) else {
        return;
    };
    // 0: inc %rbx; jmp 0 -- then at 5: ud2
    let mut regs = h.code(&[0x48, 0xff, 0xc3, 0xeb, 0xfb, 0x0f, 0x0b]);
    regs.r13 = 0x1313;
    let mut ctx = h.kvm.new_context().unwrap();
    let int = ctx.interrupter();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        int.interrupt();
    });
    assert_eq!(ctx.switch(&*h.space, &mut regs).unwrap(), Exit::Interrupted);
    t.join().unwrap();
    assert!(regs.rip == CODE || regs.rip == CODE + 3, "{:#x}", regs.rip);
    assert!(regs.rbx > 0, "the loop ran");
    assert_eq!(regs.r13, 0x1313);
    regs.rip = CODE + 5;
    assert_eq!(
        ctx.switch(&*h.space, &mut regs).unwrap(),
        Exit::Exception {
            vector: 6,
            error_code: 0
        }
    );
    assert_eq!(regs.r13, 0x1313);
}
