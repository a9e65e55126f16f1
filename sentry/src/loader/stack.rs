//! The initial stack: argc, argv, envp, the auxiliary vector, and the strings they point
//! at, laid out as Linux's `create_elf_tables` does.

use super::elf::{ElfInfo, MappedImage};
use super::ExecContext;
use crate::errno::{Errno, SysResult};
use crate::mm::{MemoryManager, UserAddr};

/// The longest single argument or environment string, with its NUL (Linux:
/// `MAX_ARG_STRLEN`, 32 pages).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
/// The most argv + envp may take (Linux: a quarter of the 8 MiB default stack limit).
const ARG_MAX: usize = 2 * 1024 * 1024;

/// `AT_HWCAP2`: no bits. (`HWCAP2_FSGSBASE` would invite `wrfsbase`, which the platforms
/// do not promise to allow in application mode.)
pub const AT_HWCAP2_VALUE: u64 = 0;

const AT_NULL: u64 = 0;
const AT_PHDR: u64 = 3;
const AT_PHENT: u64 = 4;
const AT_PHNUM: u64 = 5;
const AT_PAGESZ: u64 = 6;
const AT_BASE: u64 = 7;
const AT_FLAGS: u64 = 8;
const AT_ENTRY: u64 = 9;
const AT_UID: u64 = 11;
const AT_EUID: u64 = 12;
const AT_GID: u64 = 13;
const AT_EGID: u64 = 14;
const AT_PLATFORM: u64 = 15;
const AT_HWCAP: u64 = 16;
const AT_CLKTCK: u64 = 17;
const AT_SECURE: u64 = 23;
const AT_RANDOM: u64 = 25;
const AT_HWCAP2: u64 = 26;
const AT_EXECFN: u64 = 31;
const AT_SYSINFO_EHDR: u64 = 33;
const AT_MINSIGSTKSZ: u64 = 51;

/// The strings of a new program's stack, checked against Linux's limits.
pub struct StackImage {
    execfn: Vec<u8>,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
}

impl StackImage {
    /// `E2BIG` if a string or the whole is longer than Linux allows.
    pub fn new(execfn: &[u8], argv: &[Vec<u8>], envp: &[Vec<u8>]) -> SysResult<Self> {
        let mut total = 0usize;
        for s in argv.iter().chain(envp) {
            if s.len() + 1 > MAX_ARG_STRLEN {
                return Err(Errno::E2BIG);
            }
            total = total.saturating_add(s.len() + 1 + 8);
        }
        if total > ARG_MAX {
            return Err(Errno::E2BIG);
        }
        Ok(Self {
            execfn: execfn.to_vec(),
            argv: argv.to_vec(),
            envp: envp.to_vec(),
        })
    }

    /// Bytes the image needs below the stack top (an upper bound).
    pub fn size(&self) -> u64 {
        let strings: usize = self
            .argv
            .iter()
            .chain(&self.envp)
            .map(|s| s.len() + 1 + 8)
            .sum::<usize>();
        (strings + self.execfn.len() + 1 + 1024) as u64
    }

    /// Writes the stack below `top` and returns the initial stack pointer (at argc).
    pub fn write(
        &self,
        mm: &MemoryManager,
        top: u64,
        auxv: &[(u64, u64)],
        ctx: &ExecContext,
    ) -> SysResult<u64> {
        let mut strings = Strings {
            bytes: Vec::new(),
            top: top - 8,
        };
        let execfn = strings.push(&self.execfn);
        let mut envp: Vec<u64> = self.envp.iter().rev().map(|s| strings.push(s)).collect();
        envp.reverse();
        let mut argv: Vec<u64> = self.argv.iter().rev().map(|s| strings.push(s)).collect();
        argv.reverse();
        let platform = strings.push(b"x86_64");
        strings.align(16);
        let random = strings.push_raw(&ctx.random);

        let mut words = vec![argv.len() as u64];
        words.extend(&argv);
        words.push(0);
        words.extend(&envp);
        words.push(0);
        for &(key, value) in auxv {
            words.extend([key, value]);
        }
        words.extend([AT_RANDOM, random, AT_PLATFORM, platform, AT_EXECFN, execfn]);
        words.extend([AT_NULL, 0]);
        let sp = (strings.low() - words.len() as u64 * 8) & !15;

        let mut image: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        image.resize(
            usize::try_from(strings.low() - sp).map_err(|_| Errno::E2BIG)?,
            0,
        );
        image.extend(strings.bytes.iter().rev());
        image.resize(usize::try_from(top - sp).map_err(|_| Errno::E2BIG)?, 0);
        mm.copy_out(UserAddr::new(sp), &image)?;
        Ok(sp)
    }
}

/// Strings placed downwards from `top`; `bytes` holds them reversed (lowest byte last).
struct Strings {
    bytes: Vec<u8>,
    top: u64,
}

impl Strings {
    fn low(&self) -> u64 {
        self.top - self.bytes.len() as u64
    }

    fn push(&mut self, s: &[u8]) -> u64 {
        self.bytes.push(0);
        self.push_raw(s)
    }

    fn push_raw(&mut self, s: &[u8]) -> u64 {
        self.bytes.extend(s.iter().rev());
        self.low()
    }

    fn align(&mut self, to: u64) {
        while !self.low().is_multiple_of(to) {
            self.bytes.push(0);
        }
    }
}

/// The auxiliary vector entries that do not point into the stack itself.
pub fn auxv(
    main: &ElfInfo,
    map: &MappedImage,
    interp_base: u64,
    ctx: &ExecContext,
    vdso: Option<u64>,
) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    if let Some(vdso) = vdso {
        v.push((AT_SYSINFO_EHDR, vdso));
    }
    v.extend([
        (AT_MINSIGSTKSZ, 2048),
        (AT_HWCAP, hwcap()),
        (AT_PAGESZ, 4096),
        (AT_CLKTCK, 100),
        (AT_PHDR, map.phdr_addr.unwrap_or(0)),
        (AT_PHENT, u64::from(main.phentsize)),
        (AT_PHNUM, u64::from(main.phnum)),
        (AT_BASE, interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, main.entry.wrapping_add(map.bias)),
        (AT_UID, u64::from(ctx.uid)),
        (AT_EUID, u64::from(ctx.euid)),
        (AT_GID, u64::from(ctx.gid)),
        (AT_EGID, u64::from(ctx.egid)),
        (AT_SECURE, u64::from(ctx.secure)),
        (AT_HWCAP2, AT_HWCAP2_VALUE),
    ]);
    v
}

/// `AT_HWCAP` on x86: CPUID leaf 1's EDX, as Linux reports it.
fn hwcap() -> u64 {
    u64::from(std::arch::x86_64::__cpuid(1).edx)
}
