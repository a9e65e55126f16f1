use std::collections::BTreeMap;
use std::sync::Mutex;

use platform::MemoryFile;

use super::harness::{null_memory_manager, BytesExecutable};
use super::*;

/// Files by path, for the resolver.
struct Files {
    memory: Arc<MemoryFile>,
    files: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Files {
    fn new() -> Self {
        Self {
            memory: Arc::new(MemoryFile::new(256 << 20).unwrap()),
            files: Mutex::default(),
        }
    }

    fn add(&self, path: &str, bytes: Vec<u8>) {
        self.files
            .lock()
            .unwrap()
            .insert(path.as_bytes().to_vec(), bytes);
    }

    fn add_host(&self, path: &str) {
        self.add(path, std::fs::read(path).unwrap());
    }
}

impl Resolver for Files {
    fn open_executable(&self, path: &[u8]) -> SysResult<Arc<dyn Executable>> {
        let bytes = self
            .files
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .ok_or(Errno::ENOENT)?;
        let name = String::from_utf8_lossy(path).into_owned();
        Ok(BytesExecutable::new(&self.memory, bytes, name))
    }
}

fn run(files: &Files, path: &str, argv: &[&str]) -> (SysResult<Loaded>, MemoryManager) {
    let mm = null_memory_manager(&files.memory);
    let file = match files.open_executable(path.as_bytes()) {
        Ok(f) => f,
        Err(e) => return (Err(e), mm),
    };
    let argv = argv.iter().map(|s| s.as_bytes().to_vec()).collect();
    let envp = vec![b"HOME=/root".to_vec()];
    let ctx = ExecContext {
        uid: 1000,
        euid: 1000,
        random: [7; 16],
        ..ExecContext::default()
    };
    let loaded = load(&mm, files, file, path.as_bytes(), argv, envp, &ctx);
    (loaded, mm)
}

fn read_u64(mm: &MemoryManager, addr: u64) -> u64 {
    mm.read(crate::mm::UserPtr::<u64>::from(addr)).unwrap()
}

fn auxv(mm: &MemoryManager, sp: u64) -> BTreeMap<u64, u64> {
    let argc = read_u64(mm, sp);
    let mut at = sp + 8 * (argc + 2);
    while read_u64(mm, at) != 0 {
        at += 8;
    }
    at += 8;
    let mut map = BTreeMap::new();
    loop {
        let (k, v) = (read_u64(mm, at), read_u64(mm, at + 8));
        if k == 0 {
            return map;
        }
        map.insert(k, v);
        at += 16;
    }
}

fn c_string(mm: &MemoryManager, addr: u64) -> String {
    String::from_utf8(mm.read_c_string(UserAddr::new(addr), 4096).unwrap()).unwrap()
}

const INTERP: &str = "/lib64/ld-linux-x86-64.so.2";

#[test]
fn dynamic_pie_loads_with_its_interpreter() {
    let files = Files::new();
    files.add_host("/bin/true");
    files.add_host(INTERP);
    let (loaded, mm) = run(&files, "/bin/true", &["true", "--version"]);
    let loaded = loaded.unwrap();
    let sp = loaded.stack_pointer;
    assert_eq!(sp % 16, 0, "the stack pointer is 16-byte aligned at argc");
    assert_eq!(read_u64(&mm, sp), 2, "argc");
    assert_eq!(c_string(&mm, read_u64(&mm, sp + 8)), "true");
    assert_eq!(c_string(&mm, read_u64(&mm, sp + 16)), "--version");
    assert_eq!(read_u64(&mm, sp + 24), 0, "argv ends with NULL");
    assert_eq!(c_string(&mm, read_u64(&mm, sp + 32)), "HOME=/root");
    let aux = auxv(&mm, sp);
    let base = aux[&7];
    assert!(
        base != 0 && loaded.entry > base,
        "entry is in the interpreter"
    );
    assert!(
        aux[&9] >= ET_DYN_BASE,
        "AT_ENTRY is the program's, at the PIE base"
    );
    assert_eq!(aux[&6], 4096);
    assert_eq!(aux[&11], 1000, "AT_UID");
    assert_eq!(c_string(&mm, aux[&31]), "/bin/true", "AT_EXECFN");
    assert_eq!(c_string(&mm, aux[&15]), "x86_64", "AT_PLATFORM");
    let mut random = [0u8; 16];
    mm.copy_in(UserAddr::new(aux[&25]), &mut random).unwrap();
    assert_eq!(random, [7; 16], "AT_RANDOM");
    // AT_PHDR points at the program headers: their first entry is PT_PHDR (6) here.
    let phdr_type = read_u64(&mm, aux[&3]) & 0xffff_ffff;
    assert_eq!(phdr_type, 6);
    assert_eq!(aux[&4], 56);
    // The ELF magic is mapped at the PIE base.
    let mut magic = [0u8; 4];
    mm.copy_in(UserAddr::new(ET_DYN_BASE), &mut magic).unwrap();
    assert_eq!(&magic, b"\x7fELF");
}

/// A minimal static ELF: one RX segment with the code, one RW segment with 8 bytes of data
/// in the file and a page of bss after them.
fn tiny_static_elf() -> Vec<u8> {
    let mut f = vec![0u8; 0x2000];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2; // 64-bit
    f[5] = 1; // little-endian
    f[6] = 1;
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&0x40_1000u64.to_le_bytes()); // entry
    f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    f[52..54].copy_from_slice(&64u16.to_le_bytes());
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes()); // phnum
    let phdr =
        |f: &mut Vec<u8>, at: usize, flags: u32, off: u64, vaddr: u64, filesz: u64, memsz: u64| {
            f[at..at + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            f[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            f[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
            f[at + 16..at + 24].copy_from_slice(&vaddr.to_le_bytes());
            f[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
            f[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
        };
    phdr(&mut f, 64, 5, 0, 0x40_0000, 0x1010, 0x1010);
    phdr(&mut f, 120, 6, 0x1ff8, 0x60_1ff8, 8, 0x1008);
    f[0x1000..0x1002].copy_from_slice(&[0x0f, 0x05]); // syscall
    f[0x1ff8..0x2000].copy_from_slice(b"DATADATA");
    f
}

#[test]
fn static_executable_with_bss() {
    let files = Files::new();
    let mut elf = tiny_static_elf();
    // Garbage after the data in the file's last page must not show in the bss.
    elf.extend([0xaa; 16]);
    files.add("/tiny", elf);
    let (loaded, mm) = run(&files, "/tiny", &["tiny"]);
    let loaded = loaded.unwrap();
    assert_eq!(loaded.entry, 0x40_1000);
    assert_eq!(loaded.brk_start, 0x60_3000);
    let mut data = [0u8; 16];
    mm.copy_in(UserAddr::new(0x60_1ff8), &mut data).unwrap();
    assert_eq!(&data, b"DATADATA\0\0\0\0\0\0\0\0");
    assert_eq!(read_u64(&mm, 0x60_2ff8), 0, "bss end");
    assert_eq!(
        auxv(&mm, loaded.stack_pointer)[&7],
        0,
        "AT_BASE is 0 without interpreter"
    );
    let text = mm
        .vmas()
        .into_iter()
        .find(|v| v.start == 0x40_0000)
        .unwrap();
    assert_eq!(text.perms, Perms::READ | Perms::EXEC);
}

#[test]
fn scripts_rewrite_argv() {
    let files = Files::new();
    files.add("/tiny", tiny_static_elf());
    files.add("/script", b"#!  /tiny  -x y \nrest".to_vec());
    files.add("/nested", b"#!/script\n".to_vec());
    let (loaded, mm) = run(&files, "/nested", &["nested", "arg1"]);
    let sp = loaded.unwrap().stack_pointer;
    let argv: Vec<String> = (0..read_u64(&mm, sp))
        .map(|i| c_string(&mm, read_u64(&mm, sp + 8 + 8 * i)))
        .collect();
    assert_eq!(argv, ["/tiny", "-x y", "/script", "/nested", "arg1"]);
}

#[test]
fn bad_executables_get_linux_errors() {
    let files = Files::new();
    files.add("/empty", Vec::new());
    files.add("/text", b"hello world".to_vec());
    files.add("/shebang-only", b"#!   \n".to_vec());
    files.add("/loop", b"#!/loop\n".to_vec());
    let mut arm = tiny_static_elf();
    arm[18] = 183; // EM_AARCH64
    files.add("/arm", arm);
    let mut wants_bad_interp = tiny_static_elf();
    // Turn the second program header into PT_INTERP naming /text.
    wants_bad_interp[120..124].copy_from_slice(&3u32.to_le_bytes());
    wants_bad_interp[120 + 8..120 + 16].copy_from_slice(&0x1f00u64.to_le_bytes());
    wants_bad_interp[120 + 32..120 + 40].copy_from_slice(&6u64.to_le_bytes());
    wants_bad_interp[0x1f00..0x1f06].copy_from_slice(b"/text\0");
    files.add("/bad-interp", wants_bad_interp.clone());
    wants_bad_interp[0x1f00..0x1f06].copy_from_slice(b"/none\0");
    files.add("/missing-interp", wants_bad_interp);
    for (path, want) in [
        ("/empty", Errno::ENOEXEC),
        ("/text", Errno::ENOEXEC),
        ("/shebang-only", Errno::ENOEXEC),
        ("/loop", Errno::ELOOP),
        ("/arm", Errno::ENOEXEC),
        ("/bad-interp", Errno::ELIBBAD),
        ("/missing-interp", Errno::ENOENT),
        ("/nowhere", Errno::ENOENT),
    ] {
        assert_eq!(run(&files, path, &["x"]).0, Err(want), "{path}");
    }
    let huge = "x".repeat(MAX_ARG_STRLEN);
    assert_eq!(run(&files, "/text", &[&huge]).0, Err(Errno::E2BIG));
}

#[test]
fn truncated_and_mutated_elves_never_panic() {
    let files = Files::new();
    let elf = tiny_static_elf();
    let mut seed = 0x1234_5678_u64;
    for round in 0..2000 {
        let mut bytes = elf.clone();
        if round % 4 == 0 {
            bytes.truncate((round * 7) % 300);
        } else {
            for _ in 0..(round % 8) + 1 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % 200;
                bytes[at] = seed.to_le_bytes()[2];
            }
        }
        files.add("/fuzz", bytes);
        let _ = run(&files, "/fuzz", &["fuzz"]);
    }
}
