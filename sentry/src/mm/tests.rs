use std::any::Any;

use platform::PlatformError;

use super::*;
use crate::mm::USER_END;

/// An address space that only records what the memory manager maps, so the tests can
/// check the platform's view without running application code.
#[derive(Default)]
struct RecordingSpace {
    pages: Mutex<BTreeMap<u64, (u64, Perms)>>,
}

impl RecordingSpace {
    fn get(&self, addr: u64) -> Option<(u64, Perms)> {
        self.pages.lock().unwrap().get(&addr).copied()
    }
}

impl AddressSpace for RecordingSpace {
    fn map(&self, addr: u64, len: u64, offset: u64, perms: Perms) -> Result<(), PlatformError> {
        let mut pages = self.pages.lock().unwrap();
        for i in 0..len / PAGE_SIZE {
            pages.insert(addr + i * PAGE_SIZE, (offset + i * PAGE_SIZE, perms));
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        let mut pages = self.pages.lock().unwrap();
        pages.retain(|&a, _| a < addr || a >= addr + len);
        Ok(())
    }

    fn protect(&self, addr: u64, len: u64, perms: Perms) -> Result<(), PlatformError> {
        let mut pages = self.pages.lock().unwrap();
        for (_, (_, p)) in pages.range_mut(addr..addr + len) {
            *p = perms;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn setup() -> (MemoryManager, Arc<RecordingSpace>) {
    let memory = Arc::new(MemoryFile::new(64 << 20).unwrap());
    let space = Arc::new(RecordingSpace::default());
    let mm = MemoryManager::new(
        memory,
        Arc::clone(&space) as Arc<dyn AddressSpace>,
        USER_END,
    )
    .unwrap();
    (mm, space)
}

const RW: Perms = Perms::READ.union(Perms::WRITE);

fn anon(mm: &MemoryManager, len: u64, perms: Perms) -> UserAddr {
    mm.mmap(UserAddr::NULL, len, perms, MapFlags::default(), None)
        .unwrap()
}

#[test]
fn anonymous_memory_reads_zero_and_keeps_writes() {
    let (mm, _) = setup();
    let a = anon(&mm, 3 * PAGE_SIZE, RW);
    let mut buf = [0xffu8; 16];
    mm.copy_in(a.checked_add(PAGE_SIZE - 8).unwrap(), &mut buf)
        .unwrap();
    assert_eq!(buf, [0; 16]);
    mm.copy_out(a.checked_add(PAGE_SIZE - 4).unwrap(), b"across a page")
        .unwrap();
    let mut back = [0u8; 13];
    mm.copy_in(a.checked_add(PAGE_SIZE - 4).unwrap(), &mut back)
        .unwrap();
    assert_eq!(&back, b"across a page");
    let value: u64 = mm
        .read(UserPtr::new(a.checked_add(PAGE_SIZE - 4).unwrap()))
        .unwrap();
    assert_eq!(value.to_le_bytes(), *b"across a");
}

#[test]
fn faults_map_zero_page_read_only_then_a_private_page() {
    let (mm, space) = setup();
    let a = anon(&mm, PAGE_SIZE, RW);
    assert_eq!(space.get(a.get()), None, "nothing is mapped before a fault");
    mm.handle_fault(a, Access::Read).unwrap();
    let (zero_offset, perms) = space.get(a.get()).unwrap();
    assert_eq!(
        perms,
        Perms::READ,
        "a read maps the shared zero page read-only"
    );
    mm.handle_fault(a, Access::Write).unwrap();
    let (offset, perms) = space.get(a.get()).unwrap();
    assert_eq!(perms, RW);
    assert_ne!(offset, zero_offset, "a write gets a page of its own");
}

#[test]
fn faults_outside_vmas_and_against_permissions() {
    let (mm, _) = setup();
    let a = anon(&mm, PAGE_SIZE, Perms::READ);
    assert_eq!(mm.handle_fault(a, Access::Write), Err(Fault::AccErr));
    assert_eq!(mm.handle_fault(a, Access::Exec), Err(Fault::AccErr));
    assert_eq!(
        mm.handle_fault(a.checked_add(PAGE_SIZE).unwrap(), Access::Read),
        Err(Fault::MapErr)
    );
    assert_eq!(
        mm.copy_out(a, b"x"),
        Err(Errno::EFAULT),
        "copy_out honours permissions"
    );
    assert_eq!(
        mm.copy_in(UserAddr::new(u64::MAX - 1), &mut [0; 4]),
        Err(Errno::EFAULT)
    );
}

#[test]
fn munmap_removes_memory_and_translations() {
    let (mm, space) = setup();
    let a = anon(&mm, 2 * PAGE_SIZE, RW);
    mm.copy_out(a, b"data").unwrap();
    mm.handle_fault(a, Access::Write).unwrap();
    mm.munmap(a, PAGE_SIZE).unwrap();
    assert_eq!(space.get(a.get()), None);
    assert_eq!(mm.copy_in(a, &mut [0; 4]), Err(Errno::EFAULT));
    assert_eq!(mm.vmas().len(), 1, "the second page is still mapped");
    assert_eq!(mm.munmap(UserAddr::new(0x1001), 1), Err(Errno::EINVAL));
}

#[test]
fn mprotect_splits_and_checks_the_whole_range() {
    let (mm, space) = setup();
    let a = anon(&mm, 3 * PAGE_SIZE, RW);
    mm.handle_fault(a.checked_add(PAGE_SIZE).unwrap(), Access::Write)
        .unwrap();
    mm.mprotect(a.checked_add(PAGE_SIZE).unwrap(), PAGE_SIZE, Perms::READ)
        .unwrap();
    assert_eq!(mm.vmas().len(), 3);
    assert_eq!(
        space.get(a.get() + PAGE_SIZE),
        None,
        "translation dropped until next fault"
    );
    assert_eq!(
        mm.handle_fault(a.checked_add(PAGE_SIZE).unwrap(), Access::Write),
        Err(Fault::AccErr)
    );
    mm.handle_fault(a.checked_add(PAGE_SIZE).unwrap(), Access::Read)
        .unwrap();
    assert_eq!(space.get(a.get() + PAGE_SIZE).unwrap().1, Perms::READ);
    // A hole anywhere in the range: ENOMEM, and nothing changed.
    mm.munmap(a.checked_add(2 * PAGE_SIZE).unwrap(), PAGE_SIZE)
        .unwrap();
    assert_eq!(
        mm.mprotect(a, 3 * PAGE_SIZE, Perms::empty()),
        Err(Errno::ENOMEM)
    );
    assert_eq!(mm.vmas()[0].perms, RW);
}

#[test]
fn fork_is_copy_on_write() {
    let (parent, parent_space) = setup();
    let a = anon(&parent, PAGE_SIZE, RW);
    parent.copy_out(a, b"before").unwrap();
    parent.handle_fault(a, Access::Write).unwrap();
    let child_space = Arc::new(RecordingSpace::default());
    let child = parent
        .fork(Arc::clone(&child_space) as Arc<dyn AddressSpace>)
        .unwrap();
    assert_eq!(
        parent_space.get(a.get()).unwrap().1,
        Perms::READ,
        "parent is now COW"
    );
    child.handle_fault(a, Access::Read).unwrap();
    assert_eq!(
        child_space.get(a.get()).unwrap(),
        parent_space.get(a.get()).unwrap()
    );
    parent.copy_out(a, b"parent").unwrap();
    let mut buf = [0u8; 6];
    child.copy_in(a, &mut buf).unwrap();
    assert_eq!(&buf, b"before", "the child keeps the old contents");
    assert_ne!(
        parent_space.get(a.get()).unwrap().0,
        child_space.get(a.get()).unwrap().0
    );
    assert_eq!(
        parent_space.get(a.get()).unwrap().1,
        RW,
        "the copy is remapped writable"
    );
    // The child is now the page's only owner: it writes in place.
    let before = child_space.get(a.get()).unwrap().0;
    child.handle_fault(a, Access::Write).unwrap();
    assert_eq!(child_space.get(a.get()).unwrap(), (before, RW));
}

#[test]
fn shared_anonymous_memory_stays_shared_across_fork() {
    let (parent, _) = setup();
    let flags = MapFlags {
        shared: true,
        ..MapFlags::default()
    };
    let a = parent
        .mmap(UserAddr::NULL, PAGE_SIZE, RW, flags, None)
        .unwrap();
    let child = parent.fork(Arc::new(RecordingSpace::default())).unwrap();
    child.copy_out(a, b"from child").unwrap();
    let mut buf = [0u8; 10];
    parent.copy_in(a, &mut buf).unwrap();
    assert_eq!(&buf, b"from child");
}

#[test]
fn fixed_and_noreplace() {
    let (mm, _) = setup();
    let a = anon(&mm, 2 * PAGE_SIZE, RW);
    mm.copy_out(a, b"old").unwrap();
    let noreplace = MapFlags {
        fixed_noreplace: true,
        ..MapFlags::default()
    };
    assert_eq!(
        mm.mmap(a, PAGE_SIZE, RW, noreplace, None),
        Err(Errno::EEXIST)
    );
    let fixed = MapFlags {
        fixed: true,
        ..MapFlags::default()
    };
    assert_eq!(mm.mmap(a, PAGE_SIZE, RW, fixed, None).unwrap(), a);
    let mut buf = [0xffu8; 3];
    mm.copy_in(a, &mut buf).unwrap();
    assert_eq!(buf, [0; 3], "MAP_FIXED replaced the old memory");
    assert_eq!(
        mm.mmap(UserAddr::new(0x1234), PAGE_SIZE, RW, fixed, None),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mm.mmap(UserAddr::NULL, 0, RW, MapFlags::default(), None),
        Err(Errno::ENOMEM)
    );
}

#[test]
fn brk_grows_and_shrinks() {
    let (mm, _) = setup();
    mm.set_brk_start(UserAddr::new(0x60_0100));
    assert_eq!(
        mm.brk(UserAddr::NULL),
        UserAddr::new(0x60_1000),
        "start rounds up to a page"
    );
    assert_eq!(mm.brk(UserAddr::new(0x60_3000)), UserAddr::new(0x60_3000));
    mm.copy_out(UserAddr::new(0x60_2ff0), &[1; 16]).unwrap();
    assert_eq!(mm.brk(UserAddr::new(0x60_2000)), UserAddr::new(0x60_2000));
    assert_eq!(
        mm.copy_in(UserAddr::new(0x60_2ff0), &mut [0; 16]),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        mm.brk(UserAddr::new(0x100)),
        UserAddr::new(0x60_2000),
        "below start: no change"
    );
}

#[test]
fn c_strings() {
    let (mm, _) = setup();
    let a = anon(&mm, PAGE_SIZE, RW);
    mm.copy_out(a.checked_add(PAGE_SIZE - 6).unwrap(), b"hello\0")
        .unwrap();
    assert_eq!(
        mm.read_c_string(a.checked_add(PAGE_SIZE - 6).unwrap(), 4096)
            .unwrap(),
        b"hello"
    );
    assert_eq!(
        mm.read_c_string(a.checked_add(PAGE_SIZE - 6).unwrap(), 4),
        Err(Errno::ENAMETOOLONG)
    );
    mm.copy_out(a.checked_add(PAGE_SIZE - 3).unwrap(), b"abc")
        .unwrap();
    assert_eq!(
        mm.read_c_string(a.checked_add(PAGE_SIZE - 3).unwrap(), 4096),
        Err(Errno::EFAULT),
        "an unterminated string running into unmapped memory"
    );
}

#[test]
fn c_strings_longer_than_one_copy_and_across_pages() {
    let (mm, _) = setup();
    let a = anon(&mm, 2 * PAGE_SIZE, RW);
    // 1,000 bytes that straddle the page boundary, read in several copies.
    let text: Vec<u8> = (0..1000u32)
        .map(|i| b'a' + u8::try_from(i % 26).unwrap())
        .collect();
    let start = a.checked_add(PAGE_SIZE - 300).unwrap();
    mm.copy_out(start, &text).unwrap();
    mm.copy_out(start.checked_add(1000).unwrap(), b"\0")
        .unwrap();
    assert_eq!(mm.read_c_string(start, 4095).unwrap(), text);
    assert_eq!(
        mm.read_c_string(start, 1000).unwrap(),
        text,
        "max is inclusive"
    );
    assert_eq!(
        mm.read_c_string(start, 999),
        Err(Errno::ENAMETOOLONG),
        "one byte too many"
    );
}

#[test]
fn growsdown_stack_extends_on_fault() {
    let (mm, _) = setup();
    let flags = MapFlags {
        growsdown: true,
        ..MapFlags::default()
    };
    let a = mm
        .mmap(UserAddr::new(0x7000_0000), PAGE_SIZE, RW, flags, None)
        .unwrap();
    assert_eq!(a, UserAddr::new(0x7000_0000));
    mm.handle_fault(UserAddr::new(0x7000_0000 - 2 * PAGE_SIZE), Access::Write)
        .unwrap();
    assert_eq!(mm.vmas()[0].start, 0x7000_0000 - 2 * PAGE_SIZE);
    assert_eq!(
        mm.handle_fault(UserAddr::new(0x7000_0000 - 1024 * PAGE_SIZE), Access::Write),
        Err(Fault::MapErr)
    );
}

#[test]
fn a_read_only_shared_mapping_stays_read_only() {
    let (mm, _) = setup();
    let flags = MapFlags {
        shared: true,
        max_perms: Some(Perms::all() - Perms::WRITE),
        ..MapFlags::default()
    };
    let a = mm
        .mmap(UserAddr::NULL, PAGE_SIZE, Perms::READ, flags, None)
        .unwrap();
    assert_eq!(mm.mprotect(a, PAGE_SIZE, RW), Err(Errno::EACCES));
    assert_eq!(
        mm.mmap(UserAddr::NULL, PAGE_SIZE, RW, flags, None),
        Err(Errno::EACCES)
    );
    mm.mprotect(a, PAGE_SIZE, Perms::READ | Perms::EXEC)
        .unwrap();
}

#[test]
fn reads_from_a_host_file_land_in_application_memory() {
    use std::os::fd::AsFd;
    let (mm, _) = setup();
    let page = usize::try_from(PAGE_SIZE).unwrap();
    let content: Vec<u8> = (0..3 * PAGE_SIZE + 100).map(|i| (i % 251) as u8).collect();
    let path = std::env::temp_dir().join(format!("bulwark-mm-host-{}", std::process::id()));
    std::fs::write(&path, &content).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let a = anon(&mm, 5 * PAGE_SIZE, RW);
    // Unaligned, across pages, at an offset of the file, short at its end.
    let at = a.checked_add(10).unwrap();
    let n = mm.read_from_host(at, 4 * page, file.as_fd(), 7).unwrap();
    assert_eq!(n, content.len() - 7);
    let mut back = vec![0u8; n];
    mm.copy_in(at, &mut back).unwrap();
    assert_eq!(back, content[7..]);
    // Into memory that is not writable: EFAULT; stopping at it part way: what was read.
    let ro = anon(&mm, 2 * PAGE_SIZE, Perms::READ);
    assert_eq!(
        mm.read_from_host(ro, 100, file.as_fd(), 0),
        Err(Errno::EFAULT)
    );
    mm.munmap(a.checked_add(2 * PAGE_SIZE).unwrap(), PAGE_SIZE)
        .unwrap();
    let n = mm
        .read_from_host(a.checked_add(PAGE_SIZE).unwrap(), 3 * page, file.as_fd(), 0)
        .unwrap();
    assert_eq!(n, page);
    // A copy-on-write page is copied before the read fills it, not shared.
    let child = mm.fork(Arc::new(RecordingSpace::default())).unwrap();
    mm.read_from_host(a, 16, file.as_fd(), PAGE_SIZE).unwrap();
    let mut mine = [0u8; 16];
    let mut theirs = [0u8; 16];
    mm.copy_in(a, &mut mine).unwrap();
    child.copy_in(a, &mut theirs).unwrap();
    assert_eq!(mine, content[page..page + 16]);
    assert_ne!(mine, theirs);
}

#[test]
fn a_file_fault_maps_its_cached_neighbours_read_only() {
    use crate::mm::cache::{BytesSource, FileCache};
    let (mm, space) = setup();
    let bytes: Vec<u8> = (0..20u8).flat_map(|i| [i; 4096]).collect();
    let cache = FileCache::new(mm.memory_file(), Arc::new(BytesSource(bytes)), "f".into());
    let a = mm
        .mmap(
            UserAddr::NULL,
            20 * PAGE_SIZE,
            RW,
            MapFlags::default(),
            Some((Arc::clone(&cache) as Arc<dyn MemoryObject>, 0)),
        )
        .unwrap();
    let at = |i: u64| a.get() + i * PAGE_SIZE;
    mm.handle_fault(UserAddr::new(at(3)), Access::Read).unwrap();
    // The fault read pages 3..16 of the file in one go (to the end of its 16-page
    // window) and mapped them all, private ones read-only; 0..3 were never read.
    for i in 0..20 {
        let want = (3..16).contains(&i);
        assert_eq!(space.get(at(i)).is_some(), want, "page {i}");
        if let Some((_, perms)) = space.get(at(i)) {
            assert_eq!(perms, Perms::READ, "page {i}");
        }
    }
    // A neighbour mapped ahead of its fault still reads the file and copies on write.
    let mut b = [0u8; 1];
    mm.copy_in(UserAddr::new(at(9)), &mut b).unwrap();
    assert_eq!(b, [9]);
    mm.handle_fault(UserAddr::new(at(9)), Access::Write)
        .unwrap();
    let (offset, perms) = space.get(at(9)).unwrap();
    assert_eq!(perms, RW);
    assert_ne!(Some(offset), cache.page(9).unwrap().map(|p| p.offset()));
    mm.copy_out(UserAddr::new(at(9)), &[0xff]).unwrap();
    let mut back = [0u8; 1];
    mm.memory_file()
        .read(cache.page(9).unwrap().unwrap().offset(), &mut back)
        .unwrap();
    assert_eq!(back, [9], "the file's page is untouched");
}

#[test]
fn a_write_fault_fills_its_window_of_a_large_anonymous_mapping_only() {
    let (mm, space) = setup();
    let big = anon(&mm, 64 * PAGE_SIZE, RW);
    let at = |i: u64| big.get() + i * PAGE_SIZE;
    mm.handle_fault(UserAddr::new(at(19)), Access::Write)
        .unwrap();
    // The window is 64 KiB of the address space, aligned.
    let window = at(19) & !(16 * PAGE_SIZE - 1);
    for i in 0..64 {
        let want = (window..window + 16 * PAGE_SIZE).contains(&at(i));
        assert_eq!(
            space.get(at(i)).map(|(_, p)| p),
            want.then_some(RW),
            "page {i}"
        );
    }
    // Each its own zeroed page, kept across fork as any other private page.
    let mut b = [1u8; 8];
    mm.copy_in(UserAddr::new(window + PAGE_SIZE), &mut b)
        .unwrap();
    assert_eq!(b, [0; 8]);
    let (x, y) = (window + PAGE_SIZE, window + 2 * PAGE_SIZE);
    assert_ne!(space.get(x).unwrap().0, space.get(y).unwrap().0);
    // A small mapping stays page by page (mincore sees what was touched).
    let small = anon(&mm, 3 * PAGE_SIZE, RW);
    mm.handle_fault(small.checked_add(PAGE_SIZE).unwrap(), Access::Write)
        .unwrap();
    assert!(space.get(small.get()).is_none());
    assert!(space.get(small.get() + 2 * PAGE_SIZE).is_none());
}
