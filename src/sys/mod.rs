//! The operating system and C libraries, behind safe functions: every `unsafe` block of
//! Tessera is in this module (the crate denies `unsafe_code` elsewhere), each with a SAFETY
//! comment that says why it is sound. Calls that `rustix` wraps safely go through it; the
//! rest (`sync_file_range`, the SIGBUS handler, libjpeg's error manager) use `libc` and the
//! C API directly.

pub mod libjpeg;
pub mod openjpeg;
pub mod sigbus;

use std::fs::File;
use std::num::NonZeroU64;
use std::path::Path;

/// How a range of a file will be read, for the kernel's readahead and page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Viewport reads jump around: no readahead beyond what is asked for.
    Random,
    /// A one-pass tool reads front to back: read ahead of it.
    Sequential,
    /// Start reading this range now.
    WillNeed,
    /// Done with this range: drop it from the page cache.
    DontNeed,
}

/// Advise the kernel about `len` bytes at `offset` of `file` (`len` 0: to the end). Advice
/// is only advice: failure changes nothing but speed, so it is not reported.
pub fn advise(file: &File, offset: u64, len: u64, advice: Advice) {
    use rustix::fs::Advice as A;
    let a = match advice {
        Advice::Random => A::Random,
        Advice::Sequential => A::Sequential,
        Advice::WillNeed => A::WillNeed,
        Advice::DontNeed => A::DontNeed,
    };
    let _ = rustix::fs::fadvise(file, offset, NonZeroU64::new(len), a);
}

/// Map `file` read-only. The caller registers the mapping with [`sigbus`] before reading it.
pub fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only and private to its owner (`source::Source`), which
    // never hands out references into it beyond a copy. If the file shrinks underneath,
    // touching the lost pages raises SIGBUS; the `sigbus` guard the owner registers maps
    // zeros there and counts the fault, and the owner reports "the file changed" instead of
    // returning those zeros. Writes by other processes can change the bytes we copy, which
    // is a wrong picture, not undefined behaviour: we only ever copy out of the map.
    unsafe { memmap2::MmapOptions::new().map(file) }
}

/// Drop our page-table entries for `len` bytes at `offset` of a read-only file mapping: the
/// pages stay in the page cache but stop counting in our resident set.
pub fn release_mapped(map: &memmap2::Mmap, offset: usize, len: usize) {
    let page = rustix::param::page_size();
    let start = offset / page * page;
    let end = (offset.saturating_add(len)).div_ceil(page) * page;
    let end = end.min(map.len());
    if start >= end {
        return;
    }
    // SAFETY: `start..end` lies inside the live mapping `map` (checked above; `start` is
    // page-aligned as madvise requires). MADV_DONTNEED on a read-only file mapping only drops
    // page-table entries: later reads fault the same file contents back in, and no Rust
    // reference into the range exists across this call (we only copy out of the map).
    let _ = unsafe {
        rustix::mm::madvise(
            map.as_ptr().add(start) as *mut std::ffi::c_void,
            end - start,
            rustix::mm::Advice::LinuxDontNeed,
        )
    };
}

/// Ask the kernel to start writing back `len` bytes at `offset` of `file` now, so a long
/// sequential write does not pile up dirty pages. Advice only: failure is not reported.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is borrowed
    // from a live `File` for the duration of the call.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Free bytes for an unprivileged user in the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Physical memory, or `None` when the system does not say.
pub fn total_ram_bytes() -> Option<u64> {
    let info = rustix::system::sysinfo();
    let total = info
        .totalram
        .saturating_mul(u64::from(info.mem_unit.max(1)));
    (total > 0).then_some(total)
}

/// Lower the calling thread's CPU priority to the least (a background pass that must not
/// slow the UI). Failure leaves the priority as it is.
pub fn lower_thread_priority() {
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
}

/// The size of a memory page.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_facts_are_read() {
        assert!(total_ram_bytes().is_some_and(|b| b > 64 << 20));
        assert!(free_bytes(&std::env::temp_dir()).is_some());
        assert!(page_size().is_power_of_two());
    }

    #[test]
    fn released_pages_read_back_the_same() {
        use std::io::Write;
        let mut f = tempfile_in_tmp();
        let data: Vec<u8> = (0..3 * page_size()).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).expect("write");
        let map = map_file(&f).expect("map");
        let _guard = sigbus::register(map.as_ptr() as usize, map.len());
        assert_eq!(map[page_size() + 7], data[page_size() + 7]);
        release_mapped(&map, page_size() + 3, 10);
        advise(&f, 0, 0, Advice::DontNeed);
        assert_eq!(&map[..], &data[..], "faulted back in from the file");
    }

    fn tempfile_in_tmp() -> File {
        let path = std::env::temp_dir().join(format!("tessera-sys-{}", std::process::id()));
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("temp file");
        let _ = std::fs::remove_file(&path);
        f
    }
}
