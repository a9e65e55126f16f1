//! The stub: the only code of ours that runs in a stub process, and the layout of the
//! region it lives in.
//!
//! The stub is position-independent assembly (`global_asm!` below, between
//! `bulwark_stub_start` and `bulwark_stub_end`). The Sentry copies those bytes into the
//! first pages of a per-address-space memfd (the *stub file*), so the stub never runs from
//! the Sentry's image: the new process maps the stub file at [`STUB_BASE`], jumps there,
//! and unmaps everything else it inherited (the Sentry's code, heap, stacks, libc, vDSO).
//! What is left in the process is the stub region and, later, the application mappings
//! the Sentry asks for. No libc, no Rust runtime, no heap: nothing the application could
//! reuse.
//!
//! Region layout (offsets in the stub file = offsets from [`STUB_BASE`]):
//!
//! | offset | what |
//! |---|---|
//! | `0` | stub code (read + execute) |
//! | [`CTRL_OFF`] | control page: address-space requests, readiness, interrupt doorbell |
//! | [`FILTER_A_OFF`], [`FILTER_B_OFF`] | the seccomp programs (BPF) |
//! | up to [`MAIN_STACK_TOP_OFF`] | the main thread's stack |
//! | up to [`KICKER_STACK_TOP_OFF`] | the interrupt relay ("kicker") thread's stack |
//! | [`SLOTS_OFF`] + i × [`SLOT_SIZE`] | slot i: one page of per-thread state, then the thread's signal stack |
//!
//! Threads of a stub process:
//! - the **main** thread serves address-space requests (mmap/munmap/mprotect of the
//!   memory file, thread creation) written to the control page; all signals blocked;
//! - the **kicker** relays interrupts: it `tgkill`s a slot's thread when the Sentry sets the
//!   slot's kick flag (the Sentry cannot signal stub threads itself: they live in a PID
//!   namespace of their own, and their host TIDs are not known to it);
//! - one **application thread** per slot. It is always either running application code or
//!   parked in the signal handler. Every event (a trapped syscall, a fault, an interrupt
//!   signal) enters the handler, which stores where its `ucontext` is, saves FS/GS base,
//!   marks the slot stopped and waits (spin, then futex). The Sentry reads and edits the
//!   signal frame in place (it lies on the slot's signal stack, in the shared stub file),
//!   sets the slot running, and the handler returns through `rt_sigreturn`, which restores
//!   every register and the XSAVE state from the edited frame.

use std::arch::global_asm;

/// Where the stub region starts in every stub process; also the platform's
/// `max_user_address`, so no application mapping can overlap it.
pub(crate) const STUB_BASE: u64 = 0x7ffe_0000_0000;
/// Bytes of stub code (read + execute mapping).
pub(crate) const CODE_LEN: u64 = 0x2000;
pub(crate) const CTRL_OFF: u64 = 0x2000;
pub(crate) const FILTER_A_OFF: u64 = 0x3000;
pub(crate) const FILTER_B_OFF: u64 = 0x3800;
pub(crate) const FILTER_MAX_BYTES: u64 = 0x800;
pub(crate) const MAIN_STACK_TOP_OFF: u64 = 0x8000;
pub(crate) const KICKER_STACK_TOP_OFF: u64 = 0xa000;
pub(crate) const SLOTS_OFF: u64 = 0x10000;
/// One slot: the thread page and the signal stack. A power of two, and slots are aligned
/// to it, so the handler finds its slot from its stack pointer.
pub(crate) const SLOT_SIZE: u64 = 0x10000;
/// Bytes at the start of a slot that hold the thread page (the rest is the signal stack).
pub(crate) const THREAD_PAGE: u64 = 0x1000;
pub(crate) const MAX_SLOTS: u32 = 1023;
pub(crate) const REGION_LEN: u64 = SLOTS_OFF + MAX_SLOTS as u64 * SLOT_SIZE;
/// Linux's TASK_SIZE_MAX on x86-64 with 4-level paging: the end of user space.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;

// Control page fields (offsets from the control page).
pub(crate) const C_REQ: u64 = 0x00;
pub(crate) const C_DONE: u64 = 0x04;
pub(crate) const C_MAIN_SLEEPING: u64 = 0x08;
pub(crate) const C_SENTRY_SLEEPING: u64 = 0x0c;
pub(crate) const C_KICK_SEQ: u64 = 0x10;
pub(crate) const C_READY: u64 = 0x14;
pub(crate) const C_PID: u64 = 0x18;
pub(crate) const C_FSGSBASE: u64 = 0x1c;
pub(crate) const C_NOPS: u64 = 0x20;
pub(crate) const C_NSLOTS: u64 = 0x24;
pub(crate) const C_RESULT: u64 = 0x28;
pub(crate) const C_MEMFD: u64 = 0x30;
/// Offset (from the region start) of the word in filter A where the stub writes its PID.
pub(crate) const C_PID_PATCH: u64 = 0x38;
pub(crate) const C_FPROG_A: u64 = 0x40;
pub(crate) const C_FPROG_B: u64 = 0x50;
pub(crate) const C_OPS: u64 = 0x100;
pub(crate) const OP_SIZE: u64 = 32;
pub(crate) const MAX_OPS: u32 = 120;

// Operations of the control page.
pub(crate) const OP_MAP: u32 = 1;
pub(crate) const OP_UNMAP: u32 = 2;
pub(crate) const OP_PROTECT: u32 = 3;
pub(crate) const OP_THREAD: u32 = 4;

// Thread page fields (offsets from the slot).
pub(crate) const T_STATE: u64 = 0x00;
pub(crate) const T_STUB_SLEEPING: u64 = 0x04;
pub(crate) const T_SENTRY_SLEEPING: u64 = 0x08;
pub(crate) const T_TID: u64 = 0x0c;
pub(crate) const T_SIG: u64 = 0x10;
pub(crate) const T_KICK: u64 = 0x14;
pub(crate) const T_INFO: u64 = 0x18;
pub(crate) const T_UC: u64 = 0x20;
pub(crate) const T_FS: u64 = 0x28;
pub(crate) const T_GS: u64 = 0x30;
pub(crate) const T_CMD: u64 = 0x38;

/// `T_STATE`: the thread is parked in the handler; its frame may be read and edited.
pub(crate) const STATE_STOPPED: u32 = 1;
/// `T_STATE`: the Sentry released the thread (to run, or to exit if `T_CMD` says so).
pub(crate) const STATE_RUN: u32 = 2;
/// `T_CMD`: leave the handler by exiting the thread.
pub(crate) const CMD_EXIT: u32 = 1;

/// The signal the kicker sends to make a thread running application code stop.
pub(crate) const SIG_INTERRUPT: i32 = libc::SIGUSR2;

/// Flags of the clone that makes the kicker thread.
pub(crate) const KICKER_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;
/// Flags of the clone that makes an application thread: the kernel stores the new
/// thread's TID in its slot and clears it (with a futex wake) when the thread exits.
pub(crate) const THREAD_CLONE_FLAGS: u64 =
    KICKER_CLONE_FLAGS | (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u64;

/// Handler spin iterations (a few ns each, tens of µs in all) before a parked thread
/// sleeps on its futex.
///
/// The spin loops have no `pause`: in a nested VM (as on the PVM development machines)
/// `pause` triggers pause-loop exits to the hypervisor, and a round trip measured
/// ~110 µs with it against ~2.3 µs without.
const HANDLER_SPIN: u32 = 10_000;
/// `sched_yield`s (about a µs each) after the spin, before the thread sleeps. Yielding, not
/// spinning, is what keeps round trips fast when the Sentry thread and the stub thread
/// share a CPU (a busy host): a pure spin then burns its whole budget before the other
/// side can run.
const HANDLER_YIELDS: u32 = 50;
/// Spin iterations of the main thread before it sleeps waiting for a request.
const MAIN_SPIN: u32 = 20_000;

const CTRL_ADDR: u64 = STUB_BASE + CTRL_OFF;
const SLOTS_ADDR: u64 = STUB_BASE + SLOTS_OFF;

// Entry: the new process's only thread jumps to offset 0 with r12 = the stub file's FD and
// r13 = the memory file's FD, running on a stack it must not trust (a copy of the
// Sentry's). On any setup failure it exits with a code naming the step (0x40 + step).
global_asm!(
    ".pushsection .text.bulwark_stub,\"ax\",@progbits",
    ".balign 64",
    ".globl bulwark_stub_start",
    "bulwark_stub_start:",
    // Map the writable part of the region (control page, filters, stacks, slots).
    "mov rdi, {data_addr}",
    "mov rsi, {data_len}",
    "mov edx, 3",
    "mov r10d, 0x11",
    "mov r8, r12",
    "mov r9, {code_len}",
    "mov eax, 9",
    "syscall",
    "mov edi, 0x41",
    "cmp rax, -4095",
    "jae .Lbws_die",
    "mov rsp, {main_stack_top}",
    "mov r15, {ctrl}",
    // Unmap everything inherited from the Sentry: below and above the region.
    "xor edi, edi",
    "mov rsi, {base}",
    "mov eax, 11",
    "syscall",
    "mov edi, 0x42",
    "test rax, rax",
    "jnz .Lbws_die",
    "mov rdi, {region_end}",
    "mov rsi, {above_len}",
    "mov eax, 11",
    "syscall",
    "mov edi, 0x43",
    "test rax, rax",
    "jnz .Lbws_die",
    // Close every descriptor but the memory file.
    "mov [r15 + {c_memfd}], r13",
    "test r13, r13",
    "jz 2f",
    "xor edi, edi",
    "lea rsi, [r13 - 1]",
    "xor edx, edx",
    "mov eax, 436",
    "syscall",
    "mov edi, 0x44",
    "test rax, rax",
    "jnz .Lbws_die",
    "2:",
    "lea rdi, [r13 + 1]",
    "mov esi, 0xffffffff",
    "xor edx, edx",
    "mov eax, 436",
    "syscall",
    "mov edi, 0x45",
    "test rax, rax",
    "jnz .Lbws_die",
    // Die with the Sentry; never gain privileges.
    "mov edi, 1",
    "mov esi, 9",
    "mov eax, 157",
    "syscall",
    "mov edi, 0x46",
    "test rax, rax",
    "jnz .Lbws_die",
    "mov edi, 38",
    "mov esi, 1",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "mov eax, 157",
    "syscall",
    "mov edi, 0x47",
    "test rax, rax",
    "jnz .Lbws_die",
    // Block every signal in this thread (and the kicker, which inherits the mask).
    "push -1",
    "mov edi, 2",
    "mov rsi, rsp",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 14",
    "syscall",
    "add rsp, 8",
    "mov edi, 0x48",
    "test rax, rax",
    "jnz .Lbws_die",
    // Ignore every signal (the inherited handlers point into the unmapped Sentry)...
    "sub rsp, 32",
    "mov qword ptr [rsp], 1",
    "mov qword ptr [rsp + 8], 0",
    "mov qword ptr [rsp + 16], 0",
    "mov qword ptr [rsp + 24], 0",
    "mov ebx, 1",
    "3:",
    "mov edi, ebx",
    "mov rsi, rsp",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 13",
    "syscall",
    "inc ebx",
    "cmp ebx, 64",
    "jbe 3b",
    // ...but handle the ones that stop an application thread.
    "lea rax, [rip + .Lbws_handler]",
    "mov [rsp], rax",
    "mov qword ptr [rsp + 8], 0x0c000004",
    "lea rax, [rip + .Lbws_restorer]",
    "mov [rsp + 16], rax",
    "mov qword ptr [rsp + 24], -1",
    "lea rbx, [rip + .Lbws_signals]",
    "4:",
    "movzx edi, byte ptr [rbx]",
    "test edi, edi",
    "jz 5f",
    "mov rsi, rsp",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 13",
    "syscall",
    "mov edi, 0x49",
    "test rax, rax",
    "jnz .Lbws_die",
    "inc rbx",
    "jmp 4b",
    "5:",
    "add rsp, 32",
    // Our PID (in our PID namespace), for the kicker's tgkill.
    "mov eax, 39",
    "syscall",
    "mov [r15 + {c_pid}], eax",
    // ...which filter A's tgkill rule must know (the Sentry left its place in C_PID_PATCH).
    "mov ecx, [r15 + {c_pid_patch}]",
    "mov rdx, {base}",
    "mov [rdx + rcx], eax",
    // The process-wide seccomp filter; from here on every syscall not from this code traps.
    "mov edi, 1",
    "xor esi, esi",
    "lea rdx, [r15 + {c_fprog_a}]",
    "mov eax, 317",
    "syscall",
    "mov edi, 0x4a",
    "test rax, rax",
    "jnz .Lbws_die",
    // The kicker thread.
    "mov rdi, {kicker_flags}",
    "mov rsi, {kicker_stack_top}",
    "xor edx, edx",
    "xor r10d, r10d",
    "xor r8d, r8d",
    "mov eax, 56",
    "syscall",
    "test rax, rax",
    "jz .Lbws_kicker",
    "mov edi, 0x4b",
    "cmp rax, -4095",
    "jae .Lbws_die",
    // Ready.
    "mov dword ptr [r15 + {c_ready}], 1",
    "lea rdi, [r15 + {c_ready}]",
    "mov esi, 1",
    "mov edx, 0x7fffffff",
    "mov eax, 202",
    "syscall",
    // ---- Main loop: serve address-space requests.
    ".Lbws_main_loop:",
    "mov eax, [r15 + {c_req}]",
    "cmp eax, [r15 + {c_done}]",
    "jne .Lbws_main_do",
    "mov ecx, {main_spin}",
    "6:",
    "mov eax, [r15 + {c_req}]",
    "cmp eax, [r15 + {c_done}]",
    "jne .Lbws_main_do",
    "dec ecx",
    "jnz 6b",
    "7:",
    "mov eax, 1",
    "xchg [r15 + {c_main_sleeping}], eax",
    "mov edx, [r15 + {c_done}]",
    "mov eax, [r15 + {c_req}]",
    "cmp eax, edx",
    "jne 8f",
    "lea rdi, [r15 + {c_req}]",
    "xor esi, esi",
    "xor r10d, r10d",
    "mov eax, 202",
    "syscall",
    "8:",
    "mov dword ptr [r15 + {c_main_sleeping}], 0",
    "jmp .Lbws_main_loop",
    ".Lbws_main_do:",
    "mov r14d, eax",
    "xor r12d, r12d",
    "xor ebx, ebx",
    ".Lbws_op_loop:",
    "mov eax, [r15 + {c_nops}]",
    "mov ecx, {max_ops}",
    "cmp eax, ecx",
    "cmova eax, ecx",
    "cmp ebx, eax",
    "jae .Lbws_ops_done",
    "mov rbp, rbx",
    "shl rbp, 5",
    "lea rbp, [r15 + rbp + {c_ops}]",
    "mov eax, [rbp]",
    "cmp eax, {op_map}",
    "je .Lbws_op_map",
    "cmp eax, {op_unmap}",
    "je .Lbws_op_unmap",
    "cmp eax, {op_protect}",
    "je .Lbws_op_protect",
    "cmp eax, {op_thread}",
    "je .Lbws_op_thread",
    "mov r12, -22",
    "jmp .Lbws_ops_done",
    // Requests come from shared memory the application can write too: each op's range is
    // loaded into registers once, checked there (below the stub region, no overflow), and
    // only the checked registers are used, so the application can neither map, unmap nor
    // protect anything over the stub, nor race the check.
    ".Lbws_op_map:",
    "mov rdi, [rbp + 8]",
    "mov rsi, [rbp + 16]",
    "mov rax, rdi",
    "add rax, rsi",
    "jc .Lbws_op_inval",
    "mov rcx, {base}",
    "cmp rax, rcx",
    "ja .Lbws_op_inval",
    "mov edx, [rbp + 4]",
    "mov r10d, 0x11",
    "mov r8, [r15 + {c_memfd}]",
    "mov r9, [rbp + 24]",
    "mov eax, 9",
    "syscall",
    "jmp .Lbws_op_check",
    ".Lbws_op_unmap:",
    "mov rdi, [rbp + 8]",
    "mov rsi, [rbp + 16]",
    "mov rax, rdi",
    "add rax, rsi",
    "jc .Lbws_op_inval",
    "mov rcx, {base}",
    "cmp rax, rcx",
    "ja .Lbws_op_inval",
    "mov eax, 11",
    "syscall",
    "jmp .Lbws_op_check",
    ".Lbws_op_protect:",
    "mov rdi, [rbp + 8]",
    "mov rsi, [rbp + 16]",
    "mov rax, rdi",
    "add rax, rsi",
    "jc .Lbws_op_inval",
    "mov rcx, {base}",
    "cmp rax, rcx",
    "ja .Lbws_op_inval",
    "mov edx, [rbp + 4]",
    "mov eax, 10",
    "syscall",
    "jmp .Lbws_op_check",
    ".Lbws_op_thread:",
    "mov r13, [rbp + 8]",
    // The slot must be one of the slots.
    "mov rax, r13",
    "mov rcx, {slots}",
    "sub rax, rcx",
    "jb .Lbws_op_inval",
    "test rax, {slot_mask}",
    "jnz .Lbws_op_inval",
    "cmp rax, {slots_len}",
    "jae .Lbws_op_inval",
    "mov rdi, {thread_flags}",
    "lea rsi, [r13 + {slot_size}]",
    "xor edx, edx",
    "lea r10, [r13 + {t_tid}]",
    "xor r8d, r8d",
    "mov eax, 56",
    "syscall",
    "test rax, rax",
    "jz .Lbws_thread",
    "jmp .Lbws_op_check",
    ".Lbws_op_inval:",
    "mov rax, -22",
    ".Lbws_op_check:",
    "cmp rax, -4095",
    "jb 9f",
    "mov r12, rax",
    "jmp .Lbws_ops_done",
    "9:",
    "inc ebx",
    "jmp .Lbws_op_loop",
    ".Lbws_ops_done:",
    "mov [r15 + {c_result}], r12",
    "mov eax, r14d",
    "xchg [r15 + {c_done}], eax",
    "cmp dword ptr [r15 + {c_sentry_sleeping}], 0",
    "je .Lbws_main_loop",
    "lea rdi, [r15 + {c_done}]",
    "mov esi, 1",
    "mov edx, 0x7fffffff",
    "mov eax, 202",
    "syscall",
    "jmp .Lbws_main_loop",
    // ---- A new application thread: r13 = its slot, r15 = the control page, rsp = the
    // top of its slot. Sets up its signal stack, unblocks signals, adds the thread
    // filter, and parks in the handler through a trapped syscall.
    ".Lbws_thread:",
    "sub rsp, 32",
    "lea rax, [r13 + {thread_page}]",
    "mov [rsp], rax",
    "mov qword ptr [rsp + 8], 0",
    "mov qword ptr [rsp + 16], {altstack_len}",
    "mov rdi, rsp",
    "xor esi, esi",
    "mov eax, 131",
    "syscall",
    "test rax, rax",
    "jnz .Lbws_thread_die",
    "mov qword ptr [rsp], 0",
    "mov edi, 2",
    "mov rsi, rsp",
    "xor edx, edx",
    "mov r10d, 8",
    "mov eax, 14",
    "syscall",
    "test rax, rax",
    "jnz .Lbws_thread_die",
    "mov edi, 1",
    "xor esi, esi",
    "lea rdx, [r15 + {c_fprog_b}]",
    "mov eax, 317",
    "syscall",
    "test rax, rax",
    "jnz .Lbws_thread_die",
    "mov eax, 39",
    "syscall",
    "ud2",
    ".Lbws_thread_die:",
    "xor edi, edi",
    "mov eax, 60",
    "syscall",
    "ud2",
    // ---- The kicker: tgkill every slot whose kick flag is set, then sleep on the doorbell.
    ".Lbws_kicker:",
    "mov r12d, [r15 + {c_kick_seq}]",
    "mov r13d, [r15 + {c_nslots}]",
    "mov ecx, {max_slots}",
    "cmp r13d, ecx",
    "cmova r13d, ecx",
    "xor ebx, ebx",
    "mov rbp, {slots}",
    "2:",
    "cmp ebx, r13d",
    "jae 4f",
    "cmp dword ptr [rbp + {t_kick}], 0",
    "je 3f",
    "xor eax, eax",
    "xchg [rbp + {t_kick}], eax",
    "test eax, eax",
    "jz 3f",
    "mov esi, [rbp + {t_tid}]",
    "test esi, esi",
    "jz 3f",
    "mov edi, [r15 + {c_pid}]",
    "mov edx, {sig_interrupt}",
    "mov eax, 234",
    "syscall",
    "3:",
    "add rbp, {slot_size}",
    "inc ebx",
    "jmp 2b",
    "4:",
    "lea rdi, [r15 + {c_kick_seq}]",
    "xor esi, esi",
    "mov edx, r12d",
    "xor r10d, r10d",
    "mov eax, 202",
    "syscall",
    "jmp .Lbws_kicker",
    // ---- The signal handler (SA_SIGINFO | SA_ONSTACK, every signal blocked): rdi = signo,
    // rsi = siginfo, rdx = ucontext, rsp on the slot's signal stack.
    ".Lbws_handler:",
    "mov rbx, rsp",
    "and rbx, -{slot_size}",
    "mov [rbx + {t_sig}], edi",
    "mov [rbx + {t_info}], rsi",
    "mov [rbx + {t_uc}], rdx",
    "mov r15, {ctrl}",
    "mov r12d, [r15 + {c_fsgsbase}]",
    "test r12d, r12d",
    "jz 2f",
    "rdfsbase rax",
    "mov [rbx + {t_fs}], rax",
    "rdgsbase rax",
    "mov [rbx + {t_gs}], rax",
    "jmp 3f",
    "2:",
    "mov edi, 0x1003",
    "lea rsi, [rbx + {t_fs}]",
    "mov eax, 158",
    "syscall",
    "mov edi, 0x1004",
    "lea rsi, [rbx + {t_gs}]",
    "mov eax, 158",
    "syscall",
    "3:",
    "mov r13, [rbx + {t_fs}]",
    "mov r14, [rbx + {t_gs}]",
    // Publish the stop; wake the Sentry if it sleeps.
    "mov eax, {stopped}",
    "xchg [rbx + {t_state}], eax",
    "cmp dword ptr [rbx + {t_sentry_sleeping}], 0",
    "je 4f",
    "lea rdi, [rbx + {t_state}]",
    "mov esi, 1",
    "mov edx, 1",
    "mov eax, 202",
    "syscall",
    // Wait to be released: spin, then sleep.
    "4:",
    "mov ecx, {handler_spin}",
    "5:",
    "cmp dword ptr [rbx + {t_state}], {run}",
    "je 8f",
    "dec ecx",
    "jnz 5b",
    // Then yield a while (a Sentry thread sharing our CPU runs at once), then sleep.
    "mov r8d, {handler_yields}",
    "55:",
    "mov eax, 24",
    "syscall",
    "cmp dword ptr [rbx + {t_state}], {run}",
    "je 8f",
    "dec r8d",
    "jnz 55b",
    "6:",
    "mov eax, 1",
    "xchg [rbx + {t_stub_sleeping}], eax",
    "cmp dword ptr [rbx + {t_state}], {run}",
    "je 7f",
    "lea rdi, [rbx + {t_state}]",
    "xor esi, esi",
    "mov edx, {stopped}",
    "xor r10d, r10d",
    "mov eax, 202",
    "syscall",
    "jmp 6b",
    "7:",
    "mov dword ptr [rbx + {t_stub_sleeping}], 0",
    "8:",
    "cmp dword ptr [rbx + {t_cmd}], {cmd_exit}",
    "je 9f",
    "test r12d, r12d",
    "jz 2f",
    "mov rax, [rbx + {t_fs}]",
    "wrfsbase rax",
    "mov rax, [rbx + {t_gs}]",
    "wrgsbase rax",
    "ret",
    "2:",
    "mov rsi, [rbx + {t_fs}]",
    "cmp rsi, r13",
    "je 3f",
    "mov edi, 0x1002",
    "mov eax, 158",
    "syscall",
    "3:",
    "mov rsi, [rbx + {t_gs}]",
    "cmp rsi, r14",
    "je 4f",
    "mov edi, 0x1001",
    "mov eax, 158",
    "syscall",
    "4:",
    "ret",
    "9:",
    "xor edi, edi",
    "mov eax, 60",
    "syscall",
    "ud2",
    ".Lbws_restorer:",
    "mov eax, 15",
    "syscall",
    "ud2",
    ".Lbws_die:",
    "mov eax, 231",
    "syscall",
    "ud2",
    ".Lbws_signals:",
    ".byte 31, 11, 7, 8, 4, 5, 12, 0",
    ".globl bulwark_stub_end",
    "bulwark_stub_end:",
    ".popsection",
    base = const STUB_BASE,
    data_addr = const STUB_BASE + CODE_LEN,
    data_len = const REGION_LEN - CODE_LEN,
    code_len = const CODE_LEN,
    main_stack_top = const STUB_BASE + MAIN_STACK_TOP_OFF,
    kicker_stack_top = const STUB_BASE + KICKER_STACK_TOP_OFF,
    ctrl = const CTRL_ADDR,
    slots = const SLOTS_ADDR,
    region_end = const STUB_BASE + REGION_LEN,
    above_len = const TASK_SIZE - (STUB_BASE + REGION_LEN),
    c_req = const C_REQ,
    c_done = const C_DONE,
    c_main_sleeping = const C_MAIN_SLEEPING,
    c_sentry_sleeping = const C_SENTRY_SLEEPING,
    c_kick_seq = const C_KICK_SEQ,
    c_ready = const C_READY,
    c_pid = const C_PID,
    c_pid_patch = const C_PID_PATCH,
    slot_mask = const SLOT_SIZE - 1,
    slots_len = const MAX_SLOTS as u64 * SLOT_SIZE,
    c_fsgsbase = const C_FSGSBASE,
    c_nops = const C_NOPS,
    c_nslots = const C_NSLOTS,
    c_result = const C_RESULT,
    c_memfd = const C_MEMFD,
    c_fprog_a = const C_FPROG_A,
    c_fprog_b = const C_FPROG_B,
    c_ops = const C_OPS,
    max_ops = const MAX_OPS,
    max_slots = const MAX_SLOTS,
    op_map = const OP_MAP,
    op_unmap = const OP_UNMAP,
    op_protect = const OP_PROTECT,
    op_thread = const OP_THREAD,
    t_state = const T_STATE,
    t_stub_sleeping = const T_STUB_SLEEPING,
    t_sentry_sleeping = const T_SENTRY_SLEEPING,
    t_tid = const T_TID,
    t_sig = const T_SIG,
    t_kick = const T_KICK,
    t_info = const T_INFO,
    t_uc = const T_UC,
    t_fs = const T_FS,
    t_gs = const T_GS,
    t_cmd = const T_CMD,
    stopped = const STATE_STOPPED,
    run = const STATE_RUN,
    cmd_exit = const CMD_EXIT,
    slot_size = const SLOT_SIZE,
    thread_page = const THREAD_PAGE,
    altstack_len = const SLOT_SIZE - THREAD_PAGE,
    kicker_flags = const KICKER_CLONE_FLAGS,
    thread_flags = const THREAD_CLONE_FLAGS,
    sig_interrupt = const SIG_INTERRUPT,
    handler_spin = const HANDLER_SPIN,
    handler_yields = const HANDLER_YIELDS,
    main_spin = const MAIN_SPIN,
);

extern "C" {
    static bulwark_stub_start: u8;
    static bulwark_stub_end: u8;
}

/// The stub's machine code, to be copied to offset 0 of a stub file.
pub(crate) fn code() -> &'static [u8] {
    let start = std::ptr::addr_of!(bulwark_stub_start);
    let end = std::ptr::addr_of!(bulwark_stub_end);
    let len = (end as usize).saturating_sub(start as usize);
    // SAFETY: both symbols are defined by the global_asm! above in one section, start
    // before end, and the bytes between them are the stub's code, which lives (read-only)
    // as long as the program.
    unsafe { std::slice::from_raw_parts(start, len) }
}

/// Offset of the start of slot `slot` in the region.
pub(crate) const fn slot_off(slot: u32) -> u64 {
    SLOTS_OFF + slot as u64 * SLOT_SIZE
}

const _: () = assert!(
    STUB_BASE.is_multiple_of(1 << 32),
    "the filter compares the IP's high half"
);
const _: () = assert!(SLOTS_OFF.is_multiple_of(SLOT_SIZE) && SLOT_SIZE.is_power_of_two());
const _: () = assert!(C_OPS + MAX_OPS as u64 * OP_SIZE <= 0x1000);
const _: () = assert!(STUB_BASE + REGION_LEN <= TASK_SIZE);
