//! The loader on hostile executables: the input is an executable and, after the first
//! `\0\0BULWARK\0\0` separator, the file every interpreter path (`#!` or `PT_INTERP`)
//! resolves to. Loading may fail with any errno; it must never panic, hang or touch
//! memory outside the address space it builds.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use platform::MemoryFile;
use sentry::errno::SysResult;
use sentry::loader::harness::{null_memory_manager, BytesExecutable};
use sentry::loader::{load, ExecContext, Executable, Resolver};

const SEPARATOR: &[u8] = b"\0\0BULWARK\0\0";

struct AnyPath {
    memory: Arc<MemoryFile>,
    interpreter: Vec<u8>,
}

impl Resolver for AnyPath {
    fn open_executable(&self, path: &[u8]) -> SysResult<Arc<dyn Executable>> {
        let name = String::from_utf8_lossy(path).into_owned();
        Ok(BytesExecutable::new(
            &self.memory,
            self.interpreter.clone(),
            name,
        ))
    }
}

fuzz_target!(|data: &[u8]| {
    static MEMORY: OnceLock<Arc<MemoryFile>> = OnceLock::new();
    let memory = MEMORY.get_or_init(|| Arc::new(MemoryFile::new(1 << 30).expect("memfd")));
    let (program, interpreter) = match data
        .windows(SEPARATOR.len())
        .position(|w| w == SEPARATOR)
    {
        Some(at) => (&data[..at], &data[at + SEPARATOR.len()..]),
        None => (data, &[][..]),
    };
    let resolver = AnyPath {
        memory: Arc::clone(memory),
        interpreter: interpreter.to_vec(),
    };
    let mm = null_memory_manager(memory);
    let file = BytesExecutable::new(memory, program.to_vec(), "/fuzzed".into());
    let _ = load(
        &mm,
        &resolver,
        file,
        b"/fuzzed",
        vec![b"fuzzed".to_vec(), b"arg".to_vec()],
        vec![b"HOME=/".to_vec()],
        &ExecContext::default(),
    );
});
