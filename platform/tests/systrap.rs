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
