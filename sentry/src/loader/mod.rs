//! The program loader: ELF executables (static, static-PIE, and dynamic through their
//! `PT_INTERP`), `#!` scripts, and the initial stack with argv, envp and the auxiliary
//! vector, as Linux's `fs/binfmt_elf.c` and `fs/binfmt_script.c` lay them out.
//!
//! Malformed input never panics: every header field is bounds-checked and a bad file is
//! `ENOEXEC` (or `ELIBBAD` for a bad interpreter), as on Linux.

mod elf;
pub mod harness;
mod stack;

use std::sync::Arc;

use platform::Perms;

pub use elf::{ElfInfo, ET_DYN_BASE};
pub use stack::{StackImage, AT_HWCAP2_VALUE, MAX_ARG_STRLEN};

use crate::errno::{Errno, SysResult};
use crate::mm::{MapFlags, MemoryManager, MemoryObject, UserAddr, PAGE_SIZE};

/// A file the loader can run: its bytes, and its page cache for mapping.
pub trait Executable: Send + Sync {
    /// Reads at `offset`, returning the bytes read (short only at the end of file).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize>;

    /// The object whose pages are mapped for the file's segments.
    fn memory_object(&self) -> Arc<dyn MemoryObject>;
}

/// How the loader finds the interpreter of a script or a dynamic executable. The
/// implementation resolves the path in the caller's mount namespace and checks execute
/// permission, as `execve` does.
pub trait Resolver {
    fn open_executable(&self, path: &[u8]) -> SysResult<Arc<dyn Executable>>;
}

/// Credentials and other per-exec facts the auxiliary vector reports.
#[derive(Clone, Debug, Default)]
pub struct ExecContext {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// `AT_SECURE`: set for set-user-ID executions.
    pub secure: bool,
    /// The 16 bytes `AT_RANDOM` points at.
    pub random: [u8; 16],
    /// The vDSO to map into the new program (`AT_SYSINFO_EHDR`), if any.
    pub vdso: Option<Arc<crate::vdso::Vdso>>,
}

/// What a successful load leaves: where the first thread starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loaded {
    pub entry: u64,
    pub stack_pointer: u64,
    /// The end of the loaded program, where `brk` starts.
    pub brk_start: u64,
}

/// The initial stack mapping; it grows down on faults beyond this.
pub const STACK_INITIAL_SIZE: u64 = 128 * 1024;
/// How many `#!` interpreters may be chained (Linux: 4 levels then `ELOOP`).
const MAX_SCRIPT_DEPTH: usize = 4;
/// Bytes of a `#!` line Linux reads (`BINPRM_BUF_SIZE`).
const SCRIPT_LINE_MAX: usize = 256;

/// Loads `file` (found at `path`) into `mm`, which must be empty, and builds the initial
/// stack. `argv` and `envp` are the caller's; a `#!` script changes `argv` as Linux does.
pub fn load(
    mm: &MemoryManager,
    resolver: &dyn Resolver,
    file: Arc<dyn Executable>,
    path: &[u8],
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    ctx: &ExecContext,
) -> SysResult<Loaded> {
    let mut file = file;
    let mut path = path.to_vec();
    let execfn = path.clone();
    for _ in 0..=MAX_SCRIPT_DEPTH {
        let mut head = vec![0u8; SCRIPT_LINE_MAX];
        let n = read_full(&*file, 0, &mut head)?;
        head.truncate(n);
        if head.starts_with(b"#!") {
            let (interp, arg) = parse_script_line(&head)?;
            // argv becomes: interpreter [arg] script-path original-argv[1..].
            let mut new_argv = vec![interp.clone()];
            new_argv.extend(arg);
            new_argv.push(path.clone());
            new_argv.extend(argv.into_iter().skip(1));
            argv = new_argv;
            file = resolver.open_executable(&interp)?;
            path = interp;
            continue;
        }
        return load_elf(mm, resolver, &*file, &execfn, argv, envp, ctx);
    }
    Err(Errno::ELOOP)
}

/// Splits a `#!` line into the interpreter and its one optional argument.
fn parse_script_line(head: &[u8]) -> SysResult<(Vec<u8>, Option<Vec<u8>>)> {
    let body = &head[2..];
    let line = match body.iter().position(|&b| b == b'\n') {
        Some(end) => &body[..end],
        // Linux accepts a line cut at the buffer size only if the interpreter name
        // itself ended within it; keep it simple and take what is there.
        None => body,
    };
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let trimmed: &[u8] = {
        let start = line.iter().position(|b| !is_space(b)).unwrap_or(line.len());
        let end = line
            .iter()
            .rposition(|b| !is_space(b))
            .map_or(start, |e| e + 1);
        &line[start..end.max(start)]
    };
    if trimmed.is_empty() {
        return Err(Errno::ENOEXEC);
    }
    let split = trimmed.iter().position(is_space);
    let interp = trimmed[..split.unwrap_or(trimmed.len())].to_vec();
    let arg = split.map(|s| {
        let rest = &trimmed[s..];
        let start = rest.iter().position(|b| !is_space(b)).unwrap_or(rest.len());
        rest[start..].to_vec()
    });
    Ok((interp, arg.filter(|a| !a.is_empty())))
}

fn load_elf(
    mm: &MemoryManager,
    resolver: &dyn Resolver,
    file: &dyn Executable,
    execfn: &[u8],
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
    ctx: &ExecContext,
) -> SysResult<Loaded> {
    // Check the sizes before touching the address space (E2BIG leaves the caller intact
    // on Linux too, as it is found before the point of no return).
    let image = StackImage::new(execfn, &argv, &envp)?;
    let main = elf::ElfInfo::read(file, Errno::ENOEXEC)?;
    let interp = match &main.interp {
        Some(path) => {
            let exe = resolver.open_executable(path).map_err(|e| match e {
                Errno::ENOEXEC => Errno::ELIBBAD,
                other => other,
            })?;
            let info = elf::ElfInfo::read(&*exe, Errno::ELIBBAD)?;
            if info.interp.is_some() {
                return Err(Errno::ELIBBAD);
            }
            Some((exe, info))
        }
        None => None,
    };

    let main_bias = if main.is_dyn { ET_DYN_BASE } else { 0 };
    let main_map = elf::map_segments(mm, file, &main, main_bias, true)?;
    let (entry, base) = match &interp {
        Some((exe, info)) => {
            let m = elf::map_segments(mm, &**exe, info, 0, false)?;
            (info.entry + m.bias, m.bias)
        }
        None => (main.entry + main_map.bias, 0),
    };

    let stack_size = STACK_INITIAL_SIZE.max((image.size() + 64 * 1024).next_multiple_of(PAGE_SIZE));
    // The stack's top is the top of the address space (Linux: `TASK_SIZE`, less
    // randomisation).
    let stack_top = mm.user_end();
    let stack_bottom = stack_top - stack_size;
    let flags = MapFlags {
        fixed: true,
        growsdown: true,
        ..MapFlags::default()
    };
    mm.mmap(
        UserAddr::new(stack_bottom),
        stack_size,
        Perms::READ | Perms::WRITE,
        flags,
        None,
    )?;
    mm.mark_stack(UserAddr::new(stack_bottom));
    mm.set_mmap_base(UserAddr::new(
        stack_bottom - 8 * 1024 * 1024 - 16 * PAGE_SIZE,
    ));
    mm.set_brk_start(UserAddr::new(main_map.end));

    let vdso = match &ctx.vdso {
        Some(v) => Some(v.map(mm)?),
        None => None,
    };
    let auxv = stack::auxv(&main, &main_map, base, ctx, vdso);
    let sp = image.write(mm, stack_top, &auxv, ctx)?;
    Ok(Loaded {
        entry,
        stack_pointer: sp,
        brk_start: main_map.end,
    })
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &dyn Executable, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

#[cfg(test)]
mod tests;
