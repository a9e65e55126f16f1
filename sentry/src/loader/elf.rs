//! ELF headers and segment mapping.

use std::sync::Arc;

use goblin::container::{Container, Ctx};
use goblin::elf::header::{self, Header};
use goblin::elf::program_header::{self, ProgramHeader};
use goblin::elf::Elf;
use platform::Perms;

use super::{read_full, Executable};
use crate::errno::{Errno, SysResult};
use crate::mm::{MapFlags, MemoryManager, MemoryObject, UserAddr, PAGE_SIZE};

/// Where a position-independent main executable is loaded (Linux's `ELF_ET_DYN_BASE`
/// without randomisation: two thirds of the user half).
pub const ET_DYN_BASE: u64 = 0x5555_5555_4000;

/// Linux's `PATH_MAX`, the longest `PT_INTERP` it accepts.
const PATH_MAX: u64 = 4096;
/// At most this many bytes of program headers (Linux: 64 KiB).
const MAX_PHDRS_BYTES: usize = 65536;

/// The parts of an ELF file the loader uses.
#[derive(Clone, Debug)]
pub struct ElfInfo {
    pub entry: u64,
    /// `ET_DYN`: position independent, loaded at a bias.
    pub is_dyn: bool,
    pub phoff: u64,
    pub phnum: u16,
    pub phentsize: u16,
    pub phdrs: Vec<ProgramHeader>,
    /// The `PT_INTERP` path, without its NUL.
    pub interp: Option<Vec<u8>>,
}

/// Where an ELF image landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedImage {
    pub bias: u64,
    /// The page-aligned end of the highest segment.
    pub end: u64,
    /// The program headers' address in memory, if they are mapped.
    pub phdr_addr: Option<u64>,
}

impl ElfInfo {
    /// Reads and checks the headers; `bad` is the errno for a malformed file (`ENOEXEC`
    /// for the program, `ELIBBAD` for its interpreter).
    pub fn read(file: &dyn Executable, bad: Errno) -> SysResult<Self> {
        let mut ehdr = [0u8; header::header64::SIZEOF_EHDR];
        if read_full(file, 0, &mut ehdr)? < ehdr.len() || &ehdr[..4] != header::ELFMAG {
            return Err(bad);
        }
        let hdr: Header = Elf::parse_header(&ehdr).map_err(|_| bad)?;
        let ok = hdr.e_ident[header::EI_CLASS] == header::ELFCLASS64
            && hdr.e_ident[header::EI_DATA] == header::ELFDATA2LSB
            && hdr.e_machine == header::EM_X86_64
            && (hdr.e_type == header::ET_EXEC || hdr.e_type == header::ET_DYN)
            && usize::from(hdr.e_phentsize) == program_header::program_header64::SIZEOF_PHDR
            && hdr.e_phnum > 0;
        if !ok {
            return Err(bad);
        }
        let phdrs_len = usize::from(hdr.e_phnum) * program_header::program_header64::SIZEOF_PHDR;
        if phdrs_len > MAX_PHDRS_BYTES {
            return Err(bad);
        }
        let mut raw = vec![0u8; phdrs_len];
        if read_full(file, hdr.e_phoff, &mut raw)? < phdrs_len {
            return Err(bad);
        }
        let ctx = Ctx::new(Container::Big, goblin::container::Endian::Little);
        let phdrs =
            ProgramHeader::parse(&raw, 0, usize::from(hdr.e_phnum), ctx).map_err(|_| bad)?;
        let mut interp = None;
        for ph in phdrs
            .iter()
            .filter(|p| p.p_type == program_header::PT_INTERP)
        {
            if interp.is_some() || ph.p_filesz < 2 || ph.p_filesz > PATH_MAX {
                return Err(bad);
            }
            let len = usize::try_from(ph.p_filesz).map_err(|_| bad)?;
            let mut path = vec![0u8; len];
            if read_full(file, ph.p_offset, &mut path)? < len || path.pop() != Some(0) {
                return Err(bad);
            }
            if path.contains(&0) {
                return Err(bad);
            }
            interp = Some(path);
        }
        Ok(Self {
            entry: hdr.e_entry,
            is_dyn: hdr.e_type == header::ET_DYN,
            phoff: hdr.e_phoff,
            phnum: hdr.e_phnum,
            phentsize: hdr.e_phentsize,
            phdrs,
            interp,
        })
    }

    fn loads(&self) -> impl Iterator<Item = &ProgramHeader> {
        self.phdrs
            .iter()
            .filter(|p| p.p_type == program_header::PT_LOAD && p.p_memsz > 0)
    }
}

/// Maps the `PT_LOAD` segments of `info`. A main `ET_DYN` image goes at `bias`; an
/// interpreter (`is_main == false`) at a free place the memory manager picks.
pub fn map_segments(
    mm: &MemoryManager,
    file: &dyn Executable,
    info: &ElfInfo,
    bias: u64,
    is_main: bool,
) -> SysResult<MappedImage> {
    let bad = if is_main {
        Errno::ENOEXEC
    } else {
        Errno::ELIBBAD
    };
    let mut low = u64::MAX;
    let mut high = 0u64;
    for ph in info.loads() {
        let end = ph.p_vaddr.checked_add(ph.p_memsz).ok_or(bad)?;
        if ph.p_filesz > ph.p_memsz || ph.p_offset % PAGE_SIZE != ph.p_vaddr % PAGE_SIZE {
            return Err(bad);
        }
        low = low.min(ph.p_vaddr & !(PAGE_SIZE - 1));
        high = high.max(end);
    }
    if low == u64::MAX {
        return Err(bad);
    }
    let span = high.checked_next_multiple_of(PAGE_SIZE).ok_or(bad)? - low;
    let bias = if !info.is_dyn {
        0
    } else if is_main {
        bias.checked_sub(low).ok_or(bad)?
    } else {
        // Reserve the whole span, then place the segments inside it.
        let at = mm.mmap(
            UserAddr::NULL,
            span,
            Perms::empty(),
            MapFlags::default(),
            None,
        )?;
        at.get().wrapping_sub(low)
    };
    let top = low
        .checked_add(bias)
        .and_then(|l| l.checked_add(span))
        .ok_or(bad)?;
    if top > mm.user_end() {
        return Err(bad);
    }
    let object = file.memory_object();
    for ph in info.loads() {
        map_one(mm, &object, ph, bias)?;
    }
    let phdr_addr = info
        .phdrs
        .iter()
        .find(|p| p.p_type == program_header::PT_PHDR)
        .map(|p| p.p_vaddr)
        .or_else(|| {
            info.loads()
                .find(|p| p.p_offset <= info.phoff && info.phoff < p.p_offset + p.p_filesz)
                .map(|p| info.phoff - p.p_offset + p.p_vaddr)
        })
        .map(|v| v.wrapping_add(bias));
    Ok(MappedImage {
        bias,
        end: top,
        phdr_addr,
    })
}

fn map_one(
    mm: &MemoryManager,
    object: &Arc<dyn MemoryObject>,
    ph: &ProgramHeader,
    bias: u64,
) -> SysResult<()> {
    let mut perms = Perms::empty();
    if ph.is_read() {
        perms |= Perms::READ;
    }
    if ph.is_write() {
        perms |= Perms::WRITE;
    }
    if ph.is_executable() {
        perms |= Perms::EXEC;
    }
    let fixed = MapFlags {
        fixed: true,
        ..MapFlags::default()
    };
    let vaddr = ph.p_vaddr.wrapping_add(bias);
    let start = vaddr & !(PAGE_SIZE - 1);
    let file_end = vaddr + ph.p_filesz;
    let mem_end = vaddr + ph.p_memsz;
    let file_pages_end = file_end.next_multiple_of(PAGE_SIZE);
    if ph.p_filesz > 0 {
        let offset = ph.p_offset & !(PAGE_SIZE - 1);
        let obj = Some((Arc::clone(object), offset));
        mm.mmap(
            UserAddr::new(start),
            file_pages_end - start,
            perms,
            fixed,
            obj,
        )?;
        // The bss starts inside the last file page: the rest of that page must read as
        // zero, not as whatever follows in the file.
        if mem_end > file_end && file_end < file_pages_end && perms.contains(Perms::WRITE) {
            let zeros = vec![0u8; usize::try_from(file_pages_end - file_end).unwrap_or(0)];
            mm.copy_out(UserAddr::new(file_end), &zeros)?;
        }
    }
    let anon_start = if ph.p_filesz > 0 {
        file_pages_end
    } else {
        start
    };
    let anon_end = mem_end.next_multiple_of(PAGE_SIZE);
    if anon_end > anon_start {
        mm.mmap(
            UserAddr::new(anon_start),
            anon_end - anon_start,
            perms,
            fixed,
            None,
        )?;
    }
    Ok(())
}
