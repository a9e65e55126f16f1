//! The stub's seccomp filters, as BPF built rule by rule.
//!
//! Two filters, both installed by the stub before any application code runs:
//! - **A** (process-wide, installed by the main thread, inherited by every thread it
//!   creates): a syscall is allowed only if it comes from the stub's code pages (checked by
//!   `seccomp_data.instruction_pointer`) and is one the stub needs; everything else traps
//!   (`SECCOMP_RET_TRAP`, so the handler hands it to the Sentry).
//! - **B** (per application thread, stacked on A): from the stub's code only what the signal
//!   handler itself needs (futex, sched_yield, arch_prctl, rt_sigreturn, exit). So an application that
//!   jumps into the stub's code from one of its own threads cannot map, unmap, protect or
//!   clone: those trap like any other syscall of the application.
//!
//! Seccomp applies the most restrictive verdict of all stacked filters, so B only narrows A.

use super::stub::{CODE_LEN, KICKER_CLONE_FLAGS, SIG_INTERRUPT, STUB_BASE, THREAD_CLONE_FLAGS};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_TRAP: u32 = 0x0003_0000;
/// Syscall numbers at or above this are the x32 ABI.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;

// Offsets in struct seccomp_data.
const NR: u32 = 0;
const ARCH: u32 = 4;
const IP_LO: u32 = 8;
const IP_HI: u32 = 12;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}
const fn arg_hi(i: u32) -> u32 {
    20 + 8 * i
}

/// One BPF instruction (struct sock_filter).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

const _: () = assert!(std::mem::size_of::<SockFilter>() == 8);

/// Where a conditional jump goes.
#[derive(Clone, Copy)]
enum To {
    Next,
    Allow,
    Trap,
    Label(usize),
}

enum Insn {
    Load(u32),
    Jump { code: u16, k: u32, t: To, f: To },
    Goto(To),
    Label(usize),
}

/// A tiny assembler: forward jumps to labels and to the three verdicts at the end.
#[derive(Default)]
struct Program {
    insns: Vec<Insn>,
    labels: usize,
}

impl Program {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    fn load(&mut self, off: u32) {
        self.insns.push(Insn::Load(off));
    }

    fn jeq(&mut self, k: u32, t: To, f: To) {
        self.insns.push(Insn::Jump {
            code: BPF_JEQ_K,
            k,
            t,
            f,
        });
    }

    fn jge(&mut self, k: u32, t: To, f: To) {
        self.insns.push(Insn::Jump {
            code: BPF_JGE_K,
            k,
            t,
            f,
        });
    }

    fn goto(&mut self, to: To) {
        self.insns.push(Insn::Goto(to));
    }

    fn bind(&mut self, label: usize) {
        self.insns.push(Insn::Label(label));
    }

    /// Resolves labels and appends the verdicts.
    fn assemble(self) -> Vec<SockFilter> {
        let mut pos = vec![0usize; self.labels];
        let mut n = 0;
        for insn in &self.insns {
            match insn {
                Insn::Label(l) => pos[*l] = n,
                _ => n += 1,
            }
        }
        let (allow, trap) = (n, n + 1);
        let target = |to: To, at: usize| -> usize {
            match to {
                To::Next => at + 1,
                To::Allow => allow,
                To::Trap => trap,
                To::Label(l) => pos[l],
            }
        };
        let offset = |to: usize, at: usize| -> u32 {
            let d = to
                .checked_sub(at + 1)
                .expect("seccomp program: backward jump");
            u32::try_from(d).expect("seccomp program: jump too far")
        };
        let mut out = Vec::with_capacity(n + 3);
        for insn in &self.insns {
            let at = out.len();
            match *insn {
                Insn::Label(_) => continue,
                Insn::Load(k) => out.push(SockFilter {
                    code: BPF_LD_W_ABS,
                    jt: 0,
                    jf: 0,
                    k,
                }),
                Insn::Jump { code, k, t, f } => out.push(SockFilter {
                    code,
                    jt: u8::try_from(offset(target(t, at), at)).expect("seccomp: jump too far"),
                    jf: u8::try_from(offset(target(f, at), at)).expect("seccomp: jump too far"),
                    k,
                }),
                Insn::Goto(to) => out.push(SockFilter {
                    code: BPF_JA,
                    jt: 0,
                    jf: 0,
                    k: offset(target(to, at), at),
                }),
            }
        }
        for k in [RET_ALLOW, RET_TRAP] {
            out.push(SockFilter {
                code: BPF_RET_K,
                jt: 0,
                jf: 0,
                k,
            });
        }
        out
    }

    /// The common head: the native architecture and ABI, and an instruction pointer inside
    /// the stub's code. Anything else from anywhere traps: the i386 ABI (`int 0x80`) and
    /// x32 too, so the Sentry decides what they mean instead of the whole stub dying.
    fn head(&mut self) {
        self.load(ARCH);
        self.jeq(AUDIT_ARCH_X86_64, To::Next, To::Trap);
        self.load(NR);
        self.jge(X32_SYSCALL_BIT, To::Trap, To::Next);
        self.load(IP_HI);
        self.jeq(hi(STUB_BASE), To::Next, To::Trap);
        self.load(IP_LO);
        self.jge(lo(STUB_BASE + CODE_LEN), To::Trap, To::Next);
        self.load(NR);
    }

    /// `arg` (64 bits) must equal one of `values`, else trap.
    fn arg_in(&mut self, arg: u32, values: &[u64]) {
        for &v in values {
            let next = self.label();
            self.load(arg_hi(arg));
            self.jeq(hi(v), To::Next, To::Label(next));
            self.load(arg_lo(arg));
            self.jeq(lo(v), To::Allow, To::Label(next));
            self.bind(next);
        }
        self.goto(To::Trap);
    }
}

fn lo(v: u64) -> u32 {
    (v & 0xffff_ffff) as u32
}

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

fn nr(n: libc::c_long) -> u32 {
    u32::try_from(n).expect("syscall numbers are small")
}

/// Filter A: what the stub's own code may do, process-wide. `memfd` is the descriptor
/// number of the memory file in the stub.
pub(crate) fn stub_filter(memfd: i32) -> Vec<SockFilter> {
    let mut p = Program::default();
    p.head();
    let mmap = p.label();
    let clone = p.label();
    let tgkill = p.label();
    let arch_prctl = p.label();
    // Rule by rule, who needs it:
    for (n, to) in [
        // main thread: map the memory file (only shared + fixed, only the memory file).
        (libc::SYS_mmap, To::Label(mmap)),
        // main thread: unmap and protect application mappings.
        (libc::SYS_munmap, To::Allow),
        (libc::SYS_mprotect, To::Allow),
        // main thread: create the kicker and application threads (exact flags only).
        (libc::SYS_clone, To::Label(clone)),
        // everyone: wait and wake on the shared pages; the handler yields while it waits.
        (libc::SYS_futex, To::Allow),
        (libc::SYS_sched_yield, To::Allow),
        // kicker: signal an application thread of this process to stop it.
        (libc::SYS_tgkill, To::Label(tgkill)),
        // handler: return to the application.
        (libc::SYS_rt_sigreturn, To::Allow),
        // handler: save and restore FS/GS base where FSGSBASE is not enabled.
        (libc::SYS_arch_prctl, To::Label(arch_prctl)),
        // new application thread: its signal stack, its signal mask, its filter B.
        (libc::SYS_sigaltstack, To::Allow),
        (libc::SYS_rt_sigprocmask, To::Allow),
        (libc::SYS_seccomp, To::Allow),
        // an application thread leaves; the stub gives up.
        (libc::SYS_exit, To::Allow),
        (libc::SYS_exit_group, To::Allow),
    ] {
        p.jeq(nr(n), to, To::Next);
    }
    p.goto(To::Trap);
    p.bind(mmap);
    let fd = u64::try_from(memfd).expect("descriptors are non-negative");
    let flags = (libc::MAP_SHARED | libc::MAP_FIXED) as u64;
    let fd_ok = p.label();
    p.load(arg_hi(3));
    p.jeq(0, To::Next, To::Trap);
    p.load(arg_lo(3));
    p.jeq(lo(flags), To::Label(fd_ok), To::Trap);
    p.bind(fd_ok);
    p.arg_in(4, &[fd]);
    p.bind(clone);
    p.arg_in(0, &[KICKER_CLONE_FLAGS, THREAD_CLONE_FLAGS]);
    p.bind(tgkill);
    let sig = u64::try_from(SIG_INTERRUPT).expect("signal numbers are positive");
    let sig_ok = p.label();
    p.load(arg_lo(2));
    p.jeq(lo(sig), To::Label(sig_ok), To::Trap);
    p.bind(sig_ok);
    // The stub overwrites PID_PLACEHOLDER with its own PID before installing the filter.
    p.arg_in(0, &[PID_PLACEHOLDER]);
    p.bind(arch_prctl);
    p.arg_in(0, &FS_GS_CODES);
    p.assemble()
}

/// Stands for the stub's PID in filter A until the stub patches it in (see
/// [`pid_patch_index`]).
const PID_PLACEHOLDER: u64 = 0x5eed_f00d;

/// arch_prctl codes the handler uses: ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS.
const FS_GS_CODES: [u64; 4] = [0x1001, 0x1002, 0x1003, 0x1004];

/// Index of the instruction of filter A whose constant is the PID placeholder.
pub(crate) fn pid_patch_index(filter: &[SockFilter]) -> usize {
    let mut hits = filter
        .iter()
        .enumerate()
        .filter(|(_, f)| f.code == BPF_JEQ_K && u64::from(f.k) == PID_PLACEHOLDER);
    let (i, _) = hits.next().expect("filter A has the PID placeholder");
    assert!(hits.next().is_none(), "the PID placeholder is unique");
    i
}

/// Filter B: what an application thread may do from the stub's code (the handler's needs).
pub(crate) fn thread_filter() -> Vec<SockFilter> {
    let mut p = Program::default();
    p.head();
    let arch_prctl = p.label();
    for n in [
        libc::SYS_futex,
        libc::SYS_sched_yield,
        libc::SYS_rt_sigreturn,
        libc::SYS_exit,
    ] {
        p.jeq(nr(n), To::Allow, To::Next);
    }
    p.jeq(nr(libc::SYS_arch_prctl), To::Label(arch_prctl), To::Trap);
    p.bind(arch_prctl);
    p.arg_in(0, &FS_GS_CODES);
    p.assemble()
}

/// The filter as bytes, to be copied into the stub file.
pub(crate) fn to_bytes(filter: &[SockFilter]) -> Vec<u8> {
    let mut out = Vec::with_capacity(filter.len() * 8);
    for f in filter {
        out.extend_from_slice(&f.code.to_le_bytes());
        out.push(f.jt);
        out.push(f.jf);
        out.extend_from_slice(&f.k.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a BPF program over a seccomp_data, the way the kernel would (the subset used).
    fn run(prog: &[SockFilter], nr: u32, ip: u64, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
        data[8..16].copy_from_slice(&ip.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let f = prog[pc];
            match f.code {
                BPF_LD_W_ABS => {
                    let k = f.k as usize;
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
                    pc += 1;
                }
                BPF_JEQ_K | BPF_JGE_K => {
                    let taken = if f.code == BPF_JEQ_K {
                        acc == f.k
                    } else {
                        acc >= f.k
                    };
                    pc += 1 + usize::from(if taken { f.jt } else { f.jf });
                }
                BPF_JA => pc += 1 + f.k as usize,
                BPF_RET_K => return f.k,
                c => panic!("unexpected BPF opcode {c:#x}"),
            }
        }
    }

    const IN_STUB: u64 = STUB_BASE + 0x100;
    const APP: u64 = 0x40_1000;

    #[test]
    fn stub_filter_allows_only_stub_code_and_listed_calls() {
        let f = stub_filter(7);
        let map_args = [0x1000, 0x1000, 3, 0x11, 7, 0];
        assert_eq!(run(&f, 9, IN_STUB, map_args), RET_ALLOW);
        // The same mmap from application code traps.
        assert_eq!(run(&f, 9, APP, map_args), RET_TRAP);
        // Another descriptor, or a private mapping, traps even from the stub.
        assert_eq!(run(&f, 9, IN_STUB, [0, 0x1000, 3, 0x11, 8, 0]), RET_TRAP);
        assert_eq!(run(&f, 9, IN_STUB, [0, 0x1000, 3, 0x12, 7, 0]), RET_TRAP);
        assert_eq!(run(&f, 202, IN_STUB, [0; 6]), RET_ALLOW);
        // open/openat/execve trap from anywhere.
        for n in [2, 257, 59, 41] {
            assert_eq!(run(&f, n, IN_STUB, [0; 6]), RET_TRAP);
            assert_eq!(run(&f, n, APP, [0; 6]), RET_TRAP);
        }
        // clone only with the exact thread flags.
        assert_eq!(
            run(&f, 56, IN_STUB, [THREAD_CLONE_FLAGS, 0, 0, 0, 0, 0]),
            RET_ALLOW
        );
        assert_eq!(run(&f, 56, IN_STUB, [0x11, 0, 0, 0, 0, 0]), RET_TRAP);
        // tgkill only of our own process (after the patch), only with the interrupt signal.
        let mut patched = f.clone();
        patched[pid_patch_index(&f)].k = 1;
        assert_eq!(run(&patched, 234, IN_STUB, [1, 5, 12, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&patched, 234, IN_STUB, [2, 5, 12, 0, 0, 0]), RET_TRAP);
        assert_eq!(run(&patched, 234, IN_STUB, [1, 5, 9, 0, 0, 0]), RET_TRAP);
        // arch_prctl only for FS/GS base.
        assert_eq!(run(&f, 158, IN_STUB, [0x1002, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, 158, IN_STUB, [0x2003, 0, 0, 0, 0, 0]), RET_TRAP);
        // Just past the code pages is not the stub.
        assert_eq!(run(&f, 202, STUB_BASE + CODE_LEN, [0; 6]), RET_TRAP);
        // x32 traps.
        assert_eq!(run(&f, 0x4000_0000 | 202, IN_STUB, [0; 6]), RET_TRAP);
    }

    #[test]
    fn thread_filter_narrows_to_the_handler() {
        let f = thread_filter();
        assert_eq!(run(&f, 202, IN_STUB, [0; 6]), RET_ALLOW);
        assert_eq!(run(&f, 15, IN_STUB, [0; 6]), RET_ALLOW);
        assert_eq!(run(&f, 158, IN_STUB, [0x1003, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, 158, IN_STUB, [0x2001, 0, 0, 0, 0, 0]), RET_TRAP);
        for n in [9, 10, 11, 56, 234, 317] {
            assert_eq!(run(&f, n, IN_STUB, [0; 6]), RET_TRAP);
        }
        assert_eq!(run(&f, 202, APP, [0; 6]), RET_TRAP);
    }
}
