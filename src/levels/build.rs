//! The level builder: one sequential pass over page 0, band by band, into the box filter, each
//! finished strip of each level written to the sidecar in place.
//!
//! Decoding runs on a few producer threads (bands handed over in order through bounded
//! channels, so memory holds a handful of bands, never the image); the filter and the writes
//! run on the calling thread. Before each band a producer waits while `yield_to()` says the
//! viewer has requests of its own, so the view stays responsive during a build.

use std::cell::RefCell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use super::boxfilter::{PairSums, PixelLayout, Pyramid, pair_sums};
use super::floatfilter::FloatPyramid;
use super::{BuildState, LevelPlan, LevelStatus};
use crate::decode::{self, tiff::DecoderCache};
use crate::error::{Error, FormatError};
use crate::format::{Extent, Page, Storage, StreamKind};
use crate::image::OpenImage;

/// Unit rows each producer asks the kernel for ahead of the one it decodes: deep for a
/// command-line pass, shallow in the viewer, where a view's reads must not queue behind
/// hundreds of MB of the build's.
const LOOKAHEAD: u64 = 12;
const LOOKAHEAD_BACKGROUND: u64 = 2;
/// Sidecars bigger than this have their strips written out as the pass goes.
const PUSH_WRITES_ABOVE: u64 = 1 << 30;

/// A build ready to run: the sidecar is created and attached, no pixel written yet.
#[derive(Debug)]
pub struct BuildJob {
    pub image: Arc<OpenImage>,
    pub plan: LevelPlan,
    pub status: Arc<LevelStatus>,
    pub(super) file: File,
    pub(super) work_path: PathBuf,
    pub(super) final_path: Option<PathBuf>,
    /// Bytes the pass may hold in decoded bands (the viewer's cache budget).
    pub memory_budget: usize,
    /// Running inside the viewer: read only a little ahead, so a view's reads do not queue
    /// behind the build's.
    pub background: bool,
    /// Run at the lowest CPU priority: the UI and the view's own decoding come first on a
    /// machine with few cores. Only when the view has previews to show meanwhile (a view
    /// waiting on the levels themselves wants them built at full speed; and an unprivileged
    /// thread cannot raise its priority back).
    pub low_priority: bool,
}

/// Lower the calling thread's CPU priority to the minimum (nice 19), if `job` asks for it.
fn lower_priority(job: &BuildJob) {
    if !job.low_priority {
        return;
    }
    crate::sys::lower_thread_priority();
}

/// What a finished build did.
#[derive(Debug, Clone)]
pub struct BuildSummary {
    pub levels: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub elapsed: Duration,
    /// Where the levels are kept (`None`: not kept).
    pub kept_at: Option<PathBuf>,
}

/// A full-width band of source rows as RGBA.
struct Band {
    y0: u32,
    rows: u32,
    rgba: Vec<u8>,
}

/// Writes one level's rows, a strip at a time.
struct StripWriter {
    index: usize,
    rows_per_strip: u32,
    height: u32,
    offset: u64,
    stride: u64,
    first_row: u32,
    buf: Vec<u8>,
}

impl BuildJob {
    /// Run the pass. `yield_to()` true makes the producers wait; `notify()` is called after
    /// each strip lands (the viewer repaints). Cancel through `status.progress`.
    pub fn run(
        self,
        yield_to: &(dyn Fn() -> bool + Sync),
        notify: &(dyn Fn() + Sync),
    ) -> Result<BuildSummary, Error> {
        let start = Instant::now();
        lower_priority(&self);
        let read_before = self.image.source.bytes_read();
        let result = self.pass(yield_to, notify);
        let status = &self.status;
        match result {
            Ok(written) => {
                if let Some(f) = &self.final_path
                    && let Err(e) = std::fs::rename(&self.work_path, f)
                {
                    let _ = std::fs::remove_file(&self.work_path);
                    status.set_state(BuildState::Failed(e.to_string()));
                    return Err(Error::Open {
                        path: f.clone(),
                        source: e,
                    });
                }
                if let Some(f) = &self.final_path {
                    crate::store::touch(f);
                }
                status.set_state(BuildState::Complete);
                notify();
                Ok(BuildSummary {
                    levels: self.plan.levels.len(),
                    bytes_read: self.image.source.bytes_read() - read_before,
                    bytes_written: written,
                    elapsed: start.elapsed(),
                    kept_at: self.final_path.clone(),
                })
            }
            Err(e) => {
                // Nothing half-built is ever found under the final name; a temporary file
                // goes when the image closes.
                if self.final_path.is_some() {
                    let _ = std::fs::remove_file(&self.work_path);
                }
                status.set_state(if matches!(e, FormatError::Cancelled) {
                    BuildState::Cancelled
                } else {
                    BuildState::Failed(e.to_string())
                });
                notify();
                Err(Error::Format {
                    path: self.image.path().to_path_buf(),
                    source: e,
                })
            }
        }
    }

    fn pass(
        &self,
        yield_to: &(dyn Fn() -> bool + Sync),
        notify: &(dyn Fn() + Sync),
    ) -> Result<u64, FormatError> {
        let page = &self.image.layout.pages[0];
        let plan = &self.plan;
        let last = plan.levels.last().map_or(2, |l| l.factor);
        let first = plan.levels.first().map_or(2, |l| l.factor);
        let mut pyramid = Pyramid::new(
            page.width,
            page.height,
            usize::from(plan.spp),
            last.trailing_zeros(),
        );
        let skip = first.trailing_zeros() as usize - 1;
        let mut writers: Vec<StripWriter> = plan
            .levels
            .iter()
            .enumerate()
            .map(|(index, l)| StripWriter {
                index,
                rows_per_strip: l.rows_per_strip,
                height: l.height,
                offset: l.offset,
                stride: l.stride,
                first_row: 0,
                buf: Vec::with_capacity((l.stride * u64::from(l.rows_per_strip)) as usize),
            })
            .collect();
        let pad = plan.spp == 3 && !plan.float;
        let push_writes = plan.file_len > PUSH_WRITES_ABOVE;
        let mut written = 0u64;
        // A failed write stops the pass at the next band (not after reading the whole file).
        let write_error: RefCell<Option<std::io::Error>> = RefCell::new(None);
        let file = &self.file;
        let status = &self.status;
        let mut emit = |level: usize, y: u32, row: &[u8]| {
            if level < skip || write_error.borrow().is_some() {
                return;
            }
            let w = &mut writers[level - skip];
            if w.buf.is_empty() {
                w.first_row = y;
            }
            if pad {
                // RGB to RGBX: the pad byte is opaque, for readers that take it as alpha.
                for px in row.chunks_exact(3) {
                    w.buf.extend_from_slice(&[px[0], px[1], px[2], 255]);
                }
            } else {
                w.buf.extend_from_slice(row);
            }
            if y + 1 - w.first_row == w.rows_per_strip || y + 1 == w.height {
                let at = w.offset + u64::from(w.first_row) * w.stride;
                match file.write_all_at(&w.buf, at) {
                    Ok(()) => {
                        // A big sidecar: start writing each strip out now, or the dirty pages
                        // pile up and are flushed in one burst that stalls the pass's reads.
                        // A small one stays in the page cache until the kernel gets to it.
                        if push_writes {
                            crate::sys::start_writeback(file, at, w.buf.len() as u64);
                        }
                        written += w.buf.len() as u64;
                        status.set_rows(w.index, y + 1);
                        notify();
                    }
                    Err(e) => *write_error.borrow_mut() = Some(e),
                }
                w.buf.clear();
            }
        };
        let height = page.height;
        let progress = &status.progress;
        let mut consume = |pairs: PairSums| -> Result<(), FormatError> {
            pyramid.push_pairs(&pairs, &mut emit);
            if let Some(e) = write_error.borrow_mut().take() {
                return Err(FormatError::Io {
                    offset: 0,
                    source: e,
                });
            }
            progress.update(u64::from(pyramid.rows_in()), u64::from(height))
        };
        let wait = || {
            while yield_to() && !progress.is_cancelled() {
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        progress.update(0, u64::from(height))?;
        if plan.float {
            // Data pages: float levels, the mean of the valid samples of each block.
            let mut fp = FloatPyramid::new(
                page.width,
                page.height,
                usize::from(plan.spp),
                last.trailing_zeros(),
            );
            let mut bytes = Vec::new();
            let mut emit_f32 = |level: usize, y: u32, row: &[f32]| {
                bytes.clear();
                bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
                emit(level, y, &bytes);
            };
            self.data_rows(page, &wait, &mut |row| {
                fp.push_row(row.iter().copied(), &mut emit_f32);
                if let Some(e) = write_error.borrow_mut().take() {
                    return Err(FormatError::Io {
                        offset: 0,
                        source: e,
                    });
                }
                progress.update(u64::from(fp.rows_in()), u64::from(height))
            })?;
            if fp.rows_in() != height {
                return Err(FormatError::truncated(format!(
                    "the pass ended after {} of {height} rows",
                    fp.rows_in()
                )));
            }
            return Ok(written);
        }
        let kind = page.stream_kind();
        match kind {
            Some(
                StreamKind::JpegRestart(_) | StreamKind::JpegScanned(_) | StreamKind::JpegWhole,
            ) => {
                self.jpeg_half_scale(page, &wait, &mut consume)?;
            }
            Some(StreamKind::PngInterlaced) => {
                return Err(FormatError::unsupported(
                    "levels of an interlaced PNG (every band needs the whole stream)",
                ));
            }
            Some(_) => self.stream_bands(page, &wait, &mut consume)?,
            None => self.parallel_bands(page, &wait, &mut consume)?,
        }
        if pyramid.rows_in() != height {
            return Err(FormatError::truncated(format!(
                "the pass ended after {} of {height} rows",
                pyramid.rows_in()
            )));
        }
        Ok(written)
    }

    /// Level 1 of a baseline JPEG from libjpeg's DCT scaling, in pairs of summed rows.
    fn jpeg_half_scale(
        &self,
        page: &Page,
        wait: &(dyn Fn() + Sync),
        consume: &mut dyn FnMut(PairSums) -> Result<(), FormatError>,
    ) -> Result<(), FormatError> {
        let spp = usize::from(self.plan.spp);
        let progress = &self.status.progress;
        // Level 1 straight from libjpeg's DCT scaling (1/2): a fraction of a full decode.
        // The checkpoint pass (marker scan or entropy pass) runs beside it.
        let w1 = page.width.div_ceil(2);
        let odd_w = !page.width.is_multiple_of(2);
        let odd_h = !page.height.is_multiple_of(2);
        let h1 = page.height.div_ceil(2);
        std::thread::scope(|scope| -> Result<(), FormatError> {
            if let Some(ix) = self.image.index.as_ref() {
                let source = &self.image.source;
                scope.spawn(move || {
                    lower_priority(self);
                    // Damage shows up in the pixel pass too; this one only records.
                    let _ =
                        decode::stream::index_jpeg(source, page, ix, &|| progress.is_cancelled());
                });
            }
            decode::stream::jpeg_scaled_rows(
                &self.image.source,
                page,
                2,
                &mut |y, rgba| {
                    wait();
                    // Each level-1 pixel stands for the 2x2 block (clipped at the edges)
                    // it was scaled from.
                    let rows = if odd_h && y + 1 == h1 { 1 } else { 2 };
                    let mut pairs = PairSums {
                        y,
                        counts: vec![rows as u8],
                        sums: Vec::with_capacity(w1 as usize * spp),
                    };
                    for (x, px) in rgba.chunks_exact(4).enumerate() {
                        let cols = if odd_w && x as u32 + 1 == w1 { 1 } else { 2 };
                        for &v in &px[..spp] {
                            pairs.sums.push(u32::from(v) * rows * cols);
                        }
                    }
                    consume(pairs)
                },
                &|| progress.is_cancelled(),
            )
        })?;
        Ok(())
    }

    /// Every band of a PNG stream, in order (the same pass records its checkpoints).
    fn stream_bands(
        &self,
        page: &Page,
        wait: &(dyn Fn() + Sync),
        consume: &mut dyn FnMut(PairSums) -> Result<(), FormatError>,
    ) -> Result<(), FormatError> {
        let spp = usize::from(self.plan.spp);
        let progress = &self.status.progress;
        let mut failed = None;
        // The same pass records the stream's checkpoints (PNG).
        let streamed = decode::stream::decode_bands(
            &self.image.source,
            page,
            self.image.index.as_ref(),
            0..=page.grid.unit_rows().saturating_sub(1),
            decode::stream::BandSink {
                wants: &mut |_| true,
                emit: &mut |unit, piece| {
                    if failed.is_some() {
                        return;
                    }
                    wait();
                    let e = piece.extent;
                    debug_assert_eq!(unit, page.grid.unit_row_of(e.y0));
                    let pairs = pair_sums(
                        &piece.rgba,
                        PixelLayout::RGBA,
                        e.width(),
                        e.y0,
                        e.height(),
                        spp,
                    );
                    if let Err(err) = consume(pairs) {
                        // Stop the stream too; the error, not "cancelled", is reported.
                        progress.cancel();
                        failed = Some(err);
                    }
                },
            },
            &|| progress.is_cancelled(),
        );
        if let Some(e) = failed {
            return Err(e);
        }
        streamed?;
        Ok(())
    }

    /// Every row of a data page, top to bottom, as stored values (`None`: no-data), decoded
    /// unit row by unit row.
    fn data_rows(
        &self,
        page: &Page,
        wait: &dyn Fn(),
        row_out: &mut RowSink<'_>,
    ) -> Result<(), FormatError> {
        let info = page
            .data
            .clone()
            .ok_or_else(|| FormatError::invalid("internal: not a data page"))?;
        let spp = info.channels;
        let mut cache = DecoderCache::default();
        cache.set_source(&self.image.source);
        let across = u64::from(page.grid.across());
        let mut row = vec![None; page.width as usize * spp];
        let progress = &self.status.progress;
        for r in 0..page.grid.unit_rows() {
            if progress.is_cancelled() {
                return Err(FormatError::Cancelled);
            }
            wait();
            let (y0, y1) = page.grid.unit_row_span(r);
            let mut pieces = Vec::with_capacity(across as usize);
            for unit in r * across..(r + 1) * across {
                let e = page.grid.unit_extent(unit);
                pieces.push(decode::decode_piece(
                    &self.image.source,
                    page,
                    unit,
                    e,
                    &mut cache,
                )?);
            }
            for y in y0..y1 {
                for p in &pieces {
                    let Some((buf, _)) = p.samples() else {
                        return Err(FormatError::invalid(
                            "internal: a data piece without samples",
                        ));
                    };
                    let e = p.extent;
                    let start = ((y - e.y0) * e.width()) as usize * spp;
                    for i in 0..e.width() as usize * spp {
                        let v = buf.get(start + i);
                        row[e.x0 as usize * spp + i] = (!info.is_nodata(v)).then_some(v);
                    }
                }
                row_out(&row)?;
            }
            if self.image.source.len() > crate::stats::total_ram_bytes() / 2 {
                for_row_bytes(page, r, |off, len| self.image.source.drop_cached(off, len));
            }
        }
        Ok(())
    }

    /// Decode unit rows on producer threads and hand them to `consume` in order.
    fn parallel_bands(
        &self,
        page: &Page,
        wait: &(dyn Fn() + Sync),
        consume: &mut dyn FnMut(PairSums) -> Result<(), FormatError>,
    ) -> Result<(), FormatError> {
        let rows = page.grid.unit_rows();
        // Each producer holds up to two bands (one decoding, one handed over): keep them all
        // within half the memory budget, however wide the image.
        let band_bytes = u64::from(page.width) * u64::from(page.grid.band_h) * 4;
        let fit = (self.memory_budget as u64 / 2 / (2 * band_bytes).max(1)).max(1);
        let producers = (std::thread::available_parallelism().map_or(2, |n| n.get()) as u64)
            .clamp(1, 4)
            .min(fit);
        let progress = &self.status.progress;
        let drop_behind = self.image.source.len() > crate::stats::total_ram_bytes() / 2;
        std::thread::scope(|scope| {
            let mut receivers = Vec::new();
            for k in 0..producers {
                let (tx, rx) = sync_channel::<Result<PairSums, FormatError>>(1);
                receivers.push(rx);
                let image = &self.image;
                std::thread::Builder::new()
                    .name(format!("tessera-levels-{k}"))
                    .spawn_scoped(scope, move || {
                        lower_priority(self);
                        let mut tiff_cache = DecoderCache::default();
                        tiff_cache.set_source(&image.source);
                        let spp = usize::from(self.plan.spp);
                        let native = native_layout(page);
                        let mut buf = Vec::new();
                        // Keep the disk busy: the fd is opened for random access, so the
                        // kernel does not read ahead of a sequential pass on its own.
                        let lookahead = if self.background {
                            LOOKAHEAD_BACKGROUND
                        } else {
                            LOOKAHEAD
                        };
                        let mut r = k;
                        while r < rows && !progress.is_cancelled() {
                            wait();
                            for ahead in 1..=lookahead {
                                prefetch_row(image, page, r + ahead * producers);
                            }
                            let band = match native {
                                Some(layout) => read_native(image, page, r, layout, &mut buf).map(
                                    |(y0, rows)| pair_sums(&buf, layout, page.width, y0, rows, spp),
                                ),
                                None => band_of_row(image, page, r, &mut tiff_cache).map(|b| {
                                    pair_sums(
                                        &b.rgba,
                                        PixelLayout::RGBA,
                                        page.width,
                                        b.y0,
                                        b.rows,
                                        spp,
                                    )
                                }),
                            };
                            // A file bigger than RAM: done with these pages.
                            if drop_behind {
                                for_row_bytes(page, r, |off, len| {
                                    image.source.drop_cached(off, len)
                                });
                            }
                            let failed = band.is_err();
                            if tx.send(band).is_err() || failed {
                                return;
                            }
                            r += producers;
                        }
                    })
                    .map_err(|e| FormatError::Io {
                        offset: 0,
                        source: e,
                    })?;
            }
            for r in 0..rows {
                let Ok(band) = receivers[(r % producers) as usize].recv() else {
                    // A producer stopped: cancelled (or it could not start).
                    return Err(FormatError::Cancelled);
                };
                if let Err(e) = band.and_then(&mut *consume) {
                    progress.cancel();
                    drop(receivers);
                    return Err(e);
                }
            }
            Ok(())
        })
    }
}

/// Takes one row of a data page (stored values, `None` for no-data).
type RowSink<'a> = dyn FnMut(&[Option<f64>]) -> Result<(), FormatError> + 'a;

/// Raw 8-bit gray, RGB(X/A) or BGR(X/A) rows in one full-width unit per row: the box filter
/// reads them as stored, skipping the conversion to RGBA (half the work of a raw pass).
fn native_layout(page: &Page) -> Option<PixelLayout> {
    use crate::sample::PixelKind;
    let raw = page.raw;
    let plain = raw.bits == 8
        && raw.maxval == 255
        && !raw.premultiplied
        && raw.color_key.is_none()
        && page.grid.across() == 1;
    let bottom_up = match page.storage {
        Storage::Raw { bottom_up, .. } => bottom_up,
        Storage::Chunks {
            codec: crate::format::Codec::Raw,
            planes: 1,
            ..
        } => false,
        _ => return None,
    };
    let (bpp, bgr) = match (raw.kind, raw.samples) {
        (
            PixelKind::Gray {
                white_is_zero: false,
            },
            1,
        ) => (1, false),
        (PixelKind::Rgb, 3) => (3, false),
        (PixelKind::Rgb | PixelKind::Rgba, 4) => (4, false),
        (PixelKind::Bgr, 3) => (3, true),
        (PixelKind::Bgr | PixelKind::Bgra, 4) => (4, true),
        _ => return None,
    };
    (plain && super::samples_for(page) as usize <= bpp).then_some(PixelLayout {
        bpp,
        bgr,
        bottom_up,
    })
}

/// Read unit row `r` as stored (see [`native_layout`]) into `buf`: (first row, rows).
fn read_native(
    image: &OpenImage,
    page: &Page,
    r: u64,
    layout: PixelLayout,
    buf: &mut Vec<u8>,
) -> Result<(u32, u32), FormatError> {
    let (y0, y1) = page.grid.unit_row_span(r);
    let rows = (y1 - y0) as usize;
    let width = page.width as usize * layout.bpp;
    buf.resize(rows * width, 0);
    match page.storage {
        Storage::Raw { base, stride, .. } => {
            let first = if layout.bottom_up {
                u64::from(page.height - y1)
            } else {
                u64::from(y0)
            };
            image
                .source
                .read_rows(base + first * stride, stride, rows, 0, width, buf)?;
        }
        Storage::Chunks { chunk_stride, .. } => {
            let (off, len) = page.unit_bytes(r, 0);
            let need = (rows as u64 - 1) * chunk_stride + width as u64;
            if need > len {
                return Err(FormatError::truncated(format!(
                    "uncompressed strip at offset {off} holds {len} bytes, {need} needed"
                )));
            }
            image
                .source
                .read_rows(off, chunk_stride, rows, 0, width, buf)?;
        }
        _ => return Err(FormatError::invalid("internal: not a raw page")),
    }
    Ok((y0, y1 - y0))
}

/// Ask the kernel for the bytes of unit row `r` ahead of time.
fn prefetch_row(image: &OpenImage, page: &Page, r: u64) {
    for_row_bytes(page, r, |off, len| image.source.prefetch(off, len));
}

/// Call `f(offset, length)` for the stored bytes of every unit of unit row `r`.
fn for_row_bytes(page: &Page, r: u64, mut f: impl FnMut(u64, u64)) {
    if r >= page.grid.unit_rows() {
        return;
    }
    let across = u64::from(page.grid.across());
    for unit in r * across..(r + 1) * across {
        for d in page.unit_descriptors(unit) {
            let d = page.descriptor(d);
            f(d.offset, d.length);
        }
    }
}

/// Unit row `r` of `page`, every unit across, as one full-width RGBA band.
fn band_of_row(
    image: &OpenImage,
    page: &Page,
    r: u64,
    tiff_cache: &mut DecoderCache,
) -> Result<Band, FormatError> {
    let across = u64::from(page.grid.across());
    let (y0, y1) = page.grid.unit_row_span(r);
    let decode = |unit: u64, cache: &mut DecoderCache| {
        let e = page.grid.unit_extent(unit);
        decode::decode_piece(&image.source, page, unit, e, cache)
    };
    if across == 1 {
        let piece = decode(r, tiff_cache)?;
        return Ok(Band {
            y0,
            rows: y1 - y0,
            rgba: piece.rgba,
        });
    }
    let w = page.width as usize;
    let rows = (y1 - y0) as usize;
    let mut rgba = vec![0u8; w * rows * 4];
    for unit in r * across..(r + 1) * across {
        let piece = decode(unit, tiff_cache)?;
        let e: Extent = piece.extent;
        let pw = e.width() as usize * 4;
        for (i, src) in piece.rgba.chunks_exact(pw).enumerate().take(rows) {
            let at = (i * w + e.x0 as usize) * 4;
            rgba[at..at + pw].copy_from_slice(src);
        }
    }
    Ok(Band {
        y0,
        rows: y1 - y0,
        rgba,
    })
}
