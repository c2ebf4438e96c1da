//! Bytes at offsets: positioned reads (`pread`) and, where the layout allows, a memory map;
//! for a URL, range requests ([`remote`]) with an on-disk cache of what was fetched
//! ([`range_cache`]).
//!
//! Every read is checked against the file's length and reported as a typed error; a mapped file
//! that shrinks while open is caught by the `sigbus` module and turns the mapping off (reads fall back to
//! `pread`, which just comes back short). Reads are counted for `--stats` and the status bar.

pub mod range_cache;
pub mod remote;

use crate::sys::{self, Advice, sigbus};
use std::sync::Arc;

use std::fs::File;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{Error, FormatError};

/// Counters of what was read from one file.
#[derive(Debug, Default)]
struct IoStats {
    bytes: AtomicU64,
    reads: AtomicU64,
}

struct Mapping {
    // Field order matters: the guard unregisters before the map is unmapped.
    guard: sigbus::Guard,
    map: memmap2::Mmap,
}

/// An open image file.
pub struct Source {
    path: PathBuf,
    /// The local file; `None` for a remote object.
    file: Option<File>,
    remote: Option<Arc<remote::RemoteObject>>,
    len: u64,
    map: Option<Mapping>,
    /// Set once the mapping faulted: the file changed, so we stop trusting the map.
    map_poisoned: AtomicBool,
    stats: IoStats,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("mapped", &self.map.is_some())
            .finish()
    }
}

impl Source {
    /// Open a regular file for reading. FIFOs and devices are refused before they can block.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(url) = path.to_str().filter(|p| remote::is_url(p)) {
            return Self::open_remote(url);
        }
        let err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(err)?;
        let ft = meta.file_type();
        let what = if ft.is_dir() {
            Some("is a directory")
        } else if ft.is_fifo() {
            Some("is a FIFO, not a file")
        } else if ft.is_socket() {
            Some("is a socket, not a file")
        } else if ft.is_block_device() || ft.is_char_device() {
            Some("is a device, not a file")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
                what,
            });
        }
        // O_NONBLOCK: if the path was swapped for a FIFO since the check, open must not hang.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(err)?;
        let meta = file.metadata().map_err(err)?;
        if !meta.file_type().is_file() {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
                what: "is not a regular file",
            });
        }
        let len = meta.len();
        if len == 0 {
            return Err(Error::Format {
                path: path.to_path_buf(),
                source: FormatError::invalid("file (it is empty)"),
            });
        }
        // Viewport reads jump around: no readahead beyond what we ask for.
        sys::advise(&file, 0, 0, Advice::Random);
        Ok(Self {
            path: path.to_path_buf(),
            file: Some(file),
            remote: None,
            len,
            map: None,
            map_poisoned: AtomicBool::new(false),
            stats: IoStats::default(),
        })
    }

    /// Open a remote object: its size, version and first bytes come with one request.
    pub fn open_remote(url: &str) -> Result<Self, Error> {
        let object = remote::RemoteObject::open(url).map_err(|msg| Error::Open {
            path: PathBuf::from(url),
            source: std::io::Error::other(msg),
        })?;
        Ok(Self {
            path: PathBuf::from(url),
            file: None,
            len: object.len(),
            remote: Some(Arc::new(object)),
            map: None,
            map_poisoned: AtomicBool::new(false),
            stats: IoStats::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The remote object behind this source, if it is one.
    pub fn remote(&self) -> Option<&Arc<remote::RemoteObject>> {
        self.remote.as_ref()
    }

    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// What a remote object has cost so far: `range GET: 12 requests (1 in flight), 3.4 MB
    /// fetched, 40 blocks from the range cache`; `None` for a local file.
    pub fn fetch_summary(&self) -> Option<String> {
        let r = self.remote.as_ref()?;
        let st = &r.stats;
        Some(format!(
            "range GET: {} requests ({} in flight), {:.1} MB fetched, {} blocks from the range cache",
            st.requests.load(Ordering::Relaxed),
            st.in_flight.load(Ordering::Relaxed),
            st.bytes.load(Ordering::Relaxed) as f64 / 1e6,
            st.disk_blocks.load(Ordering::Relaxed)
        ))
    }

    /// Start reading these `(offset, length)` ranges now, without waiting: a remote object
    /// puts them in flight together (near ones in one request); a local file asks the kernel.
    pub fn prefetch_ranges(&self, ranges: &[(u64, u64)]) {
        match &self.remote {
            Some(r) => r.prefetch(ranges),
            None => {
                for &(off, len) in ranges {
                    self.prefetch(off, len);
                }
            }
        }
    }

    /// Bytes read from the file so far (through `pread` or the map).
    pub fn bytes_read(&self) -> u64 {
        self.stats.bytes.load(Ordering::Relaxed)
    }

    /// Reads made so far.
    pub fn read_calls(&self) -> u64 {
        self.stats.reads.load(Ordering::Relaxed)
    }

    /// Length when the file was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_mapped(&self) -> bool {
        self.map.is_some() && !self.map_poisoned.load(Ordering::Acquire)
    }

    /// Map the file (for layouts PIL would map). Failure just leaves `pread` in charge.
    pub fn enable_mmap(&mut self) {
        let Some(file) = &self.file else {
            return;
        };
        if self.map.is_some() {
            return;
        }
        // If the file shrinks, touching the lost pages raises SIGBUS; `sigbus` maps zeros
        // there, counts the fault, and `read_mapped` turns that into FileChanged, so no zeros
        // ever reach the user.
        let Ok(map) = sys::map_file(file) else {
            return;
        };
        let _ = map.advise(memmap2::Advice::Random);
        if let Some(guard) = sigbus::register(map.as_ptr() as usize, map.len()) {
            self.map = Some(Mapping { guard, map });
        }
    }

    fn count(&self, bytes: usize) {
        self.stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// The file's current length (it may have changed since open).
    pub fn current_len(&self) -> u64 {
        match &self.file {
            Some(f) => f.metadata().map(|m| m.len()).unwrap_or(0),
            // A remote object's version is checked on every response instead.
            None => self.len,
        }
    }

    fn changed_or_truncated(&self, offset: u64, want: usize) -> FormatError {
        let now = self.current_len();
        if now != self.len {
            FormatError::FileChanged { len: now }
        } else {
            FormatError::truncated(format!(
                "{want} bytes at offset {offset} run past the end of the file ({} bytes)",
                self.len
            ))
        }
    }

    /// Read up to `buf.len()` bytes at `offset`; returns how many were read (short at EOF).
    pub fn read_some(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FormatError> {
        let Some(file) = &self.file else {
            let n = match &self.remote {
                Some(r) => r.read_some(offset, buf)?,
                None => 0,
            };
            self.count(n);
            return Ok(n);
        };
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(FormatError::Io {
                        offset: offset + done as u64,
                        source,
                    });
                }
            }
        }
        self.count(done);
        Ok(done)
    }

    /// Fill `buf` from `offset`, through the map when there is one.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), FormatError> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(self.changed_or_truncated(offset, buf.len()));
        }
        if self.read_mapped(offset, buf)? {
            return Ok(());
        }
        if let Some(r) = &self.remote {
            r.read_exact_at(offset, buf)?;
            self.count(buf.len());
            return Ok(());
        }
        let n = self.read_some(offset, buf)?;
        if n < buf.len() {
            return Err(self.changed_or_truncated(offset, buf.len()));
        }
        Ok(())
    }

    /// Copy from the mapping; Ok(false) when there is no usable mapping.
    fn read_mapped(&self, offset: u64, buf: &mut [u8]) -> Result<bool, FormatError> {
        let Some(m) = &self.map else {
            return Ok(false);
        };
        if self.map_poisoned.load(Ordering::Acquire) {
            return Ok(false);
        }
        let (start, end) = (offset as usize, offset as usize + buf.len());
        let Some(src) = m.map.get(start..end) else {
            return Ok(false);
        };
        let before = m.guard.faults();
        buf.copy_from_slice(src);
        if m.guard.faults() != before || before != 0 {
            self.map_poisoned.store(true, Ordering::Release);
            return Err(FormatError::FileChanged {
                len: self.current_len(),
            });
        }
        self.count(buf.len());
        Ok(true)
    }

    /// Read a window of `rows` stored rows, `stride` bytes apart from `offset`: from each row,
    /// `width` bytes starting `skip` bytes in. `out` receives the rows packed (`width` apart).
    pub fn read_rows(
        &self,
        offset: u64,
        stride: u64,
        rows: usize,
        skip: u64,
        width: usize,
        out: &mut [u8],
    ) -> Result<(), FormatError> {
        let out = &mut out[..rows * width];
        if rows == 0 || width == 0 {
            return Ok(());
        }
        let span = (rows as u64 - 1) * stride + skip + width as u64;
        let whole = width as u64 == stride && skip == 0;
        self.prefetch_rows(offset, stride, rows, skip, width);
        let result = self.read_rows_now(offset, stride, skip, width, span, whole, out);
        self.release_mapped(offset + skip, span - skip);
        result
    }

    /// Tell the kernel the file will now be read front to back (a one-pass tool): its own
    /// readahead then runs ahead of the reads. The viewer keeps the random-access advice.
    pub fn advise_sequential(&self) {
        if let Some(f) = &self.file {
            sys::advise(f, 0, 0, Advice::Sequential);
        }
    }

    /// Ask the kernel to start reading `len` bytes at `offset` (a sequential pass reads ahead
    /// of itself with this: the file descriptor is opened for random access).
    pub fn prefetch(&self, offset: u64, len: u64) {
        if len > 0 {
            self.prefetch_rows(offset, len, 1, 0, len as usize);
        }
    }

    /// Ask the kernel to start reading every row window now, so a cold band costs one round of
    /// parallel I/O instead of one synchronous read (or page fault) per row.
    fn prefetch_rows(&self, offset: u64, stride: u64, rows: usize, skip: u64, width: usize) {
        if let Some(r) = &self.remote {
            let ranges: Vec<(u64, u64)> = (0..rows as u64)
                .map(|i| (offset + i * stride + skip, width as u64))
                .collect();
            r.prefetch(&ranges);
            return;
        }
        let Some(file) = &self.file else {
            return;
        };
        let gap = stride.saturating_sub(width as u64);
        // Small gaps: one range (the gap costs less than the extra requests).
        let ranges: Box<dyn Iterator<Item = (u64, u64)>> = if gap <= 16 << 10 || rows == 1 {
            let span = (rows as u64 - 1) * stride + width as u64;
            Box::new(std::iter::once((offset + skip, span)))
        } else {
            Box::new((0..rows as u64).map(move |r| (offset + r * stride + skip, width as u64)))
        };
        let mapped = self.is_mapped();
        for (off, len) in ranges {
            if off.saturating_add(len) > self.len {
                break;
            }
            if mapped {
                if let Some(m) = &self.map {
                    let _ =
                        m.map
                            .advise_range(memmap2::Advice::WillNeed, off as usize, len as usize);
                }
            } else {
                sys::advise(file, off, len, Advice::WillNeed);
            }
        }
    }

    /// Unmap pages of a span we copied out of the map: they stay in the page cache, but stop
    /// counting in our resident set (fault-around maps 64 KB for every page touched).
    fn release_mapped(&self, offset: u64, len: u64) {
        if let Some(m) = &self.map
            && offset.saturating_add(len) <= m.map.len() as u64
        {
            sys::release_mapped(&m.map, offset as usize, len as usize);
        }
    }

    #[allow(clippy::too_many_arguments)] // reason: the row window's geometry, computed once
    fn read_rows_now(
        &self,
        offset: u64,
        stride: u64,
        skip: u64,
        width: usize,
        span: u64,
        whole: bool,
        out: &mut [u8],
    ) -> Result<(), FormatError> {
        // When the window is most of each row, one read of the span beats a read per row.
        if whole || (span <= (8 << 20) && (width as u64) * 2 >= stride) {
            if whole {
                return self.read_exact_at(offset, out);
            }
            let mut tmp = vec![0u8; span as usize];
            self.read_exact_at(offset, &mut tmp)?;
            for (r, dst) in out.chunks_exact_mut(width).enumerate() {
                let s = r * stride as usize + skip as usize;
                dst.copy_from_slice(&tmp[s..s + width]);
            }
            return Ok(());
        }
        for (r, dst) in out.chunks_exact_mut(width).enumerate() {
            self.read_exact_at(offset + r as u64 * stride + skip, dst)?;
        }
        Ok(())
    }

    /// Tell the kernel to drop this file's cached pages (for cold-cache benchmarks).
    pub fn evict_page_cache(&self) {
        self.drop_cached(0, 0);
    }

    /// Tell the kernel we are done with `len` bytes at `offset` (0: to the end): a pass over a
    /// file bigger than RAM then does not push everything else out of the page cache, and the
    /// kernel does not spend its time reclaiming behind it.
    pub fn drop_cached(&self, offset: u64, len: u64) {
        if let Some(f) = &self.file {
            sys::advise(f, offset, len, Advice::DontNeed);
        }
    }
}

/// A `Read + Seek` cursor over a [`Source`], for decoders that want a stream (`tiff`, `png`,
/// `mozjpeg`). `S` is `&Source` while parsing and `Arc<Source>` in the workers' caches.
pub struct SourceReader<S> {
    source: S,
    pos: u64,
}

impl<S: std::ops::Deref<Target = Source>> SourceReader<S> {
    pub fn new(source: S, pos: u64) -> Self {
        Self { source, pos }
    }
}

impl<S: std::ops::Deref<Target = Source>> std::io::Read for SourceReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self
            .source
            .read_some(self.pos, buf)
            .map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<S: std::ops::Deref<Target = Source>> std::io::Seek for SourceReader<S> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            std::io::SeekFrom::Start(p) => Some(p),
            std::io::SeekFrom::End(d) => self.source.len().checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| std::io::Error::other("seek before start of file"))?;
        Ok(self.pos)
    }
}
