//! Loading executables held in memory, without a platform: the loader's unit tests and
//! its fuzz target (`fuzz/fuzz_targets/elf_loader.rs`) run `load` through these.

use std::any::Any;
use std::sync::Arc;

use platform::{AddressSpace, MemoryFile, Perms, PlatformError};

use super::Executable;
use crate::errno::SysResult;
use crate::mm::cache::{BytesSource, FileCache};
use crate::mm::{MemoryManager, MemoryObject, USER_END};

/// An address space that accepts every request: what is checked is the memory manager's
/// view, not the platform's.
pub struct NullSpace;

impl AddressSpace for NullSpace {
    fn map(&self, _: u64, _: u64, _: u64, _: Perms) -> Result<(), PlatformError> {
        Ok(())
    }
    fn unmap(&self, _: u64, _: u64) -> Result<(), PlatformError> {
        Ok(())
    }
    fn protect(&self, _: u64, _: u64, _: Perms) -> Result<(), PlatformError> {
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An executable whose contents are a byte vector, cached in `memory` as a file would be.
pub struct BytesExecutable(Arc<FileCache>);

impl BytesExecutable {
    pub fn new(memory: &Arc<MemoryFile>, bytes: Vec<u8>, name: String) -> Arc<Self> {
        Arc::new(Self(FileCache::new(
            memory,
            Arc::new(BytesSource(bytes)),
            name,
        )))
    }
}

impl Executable for BytesExecutable {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        self.0.read_at(offset, buf)
    }
    fn memory_object(&self) -> Arc<dyn MemoryObject> {
        Arc::clone(&self.0) as Arc<dyn MemoryObject>
    }
}

/// An empty memory manager over `memory` whose mappings go nowhere.
pub fn null_memory_manager(memory: &Arc<MemoryFile>) -> MemoryManager {
    MemoryManager::new(Arc::clone(memory), Arc::new(NullSpace), USER_END)
        .expect("a memory manager over an empty address space")
}
