//! What the JPEG kinds share: decoding rows through libjpeg into bands (from the start, or
//! from a band's own small JPEG), DCT-scaled rows for levels, and the loop that decodes bands
//! from their checkpoints.

use std::io::BufReader;
use std::ops::RangeInclusive;

use super::bands::{BandSink, Bands};
use crate::decode::Piece;
use crate::error::FormatError;
use crate::format::{Page, StreamKind};
use crate::index::StreamIndex;
use crate::source::{Source, SourceReader};

/// Bands `bands` of a JPEG decoded from the start of its scan (progressive, or a baseline scan
/// that cannot be cut).
pub(super) fn jpeg_rows(
    source: &Source,
    page: &Page,
    bands: RangeInclusive<u64>,
    sink: BandSink<'_>,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    if page.stream_kind() == Some(StreamKind::JpegProgressive) {
        // libjpeg keeps every DCT coefficient of a progressive scan in memory (2 bytes per
        // sample at most): refuse what would not fit comfortably instead of swapping.
        let need = u64::from(page.width) * u64::from(page.height) * u64::from(page.raw.samples) * 2;
        let limit = crate::stats::total_ram_bytes() / 4;
        if need > limit {
            return Err(FormatError::too_large(format!(
                "progressive JPEG: decoding it needs up to {:.1} GB of memory (libjpeg keeps \
                 every DCT coefficient), over a quarter of this machine's RAM; convert it to \
                 baseline first (jpegtran -copy all in.jpg > out.jpg)",
                need as f64 / 1e9
            )));
        }
    }
    let reader = BufReader::with_capacity(256 << 10, SourceReader::new(source, 0));
    let end_row = page.grid.unit_extent(*bands.end()).y1;
    let BandSink { wants, emit } = sink;
    let first = *bands.start();
    let sink = BandSink {
        wants: &mut |b| b >= first && wants(b),
        emit,
    };
    jpeg_decode(reader, page, 0, (0, page.height), end_row, sink, cancelled)
}

/// Decode a JPEG from `reader` whose rows, after `skip` rows to drop, are image rows
/// `y0..y0 + height` (a whole file, or a band cut out of one), up to image row `end_row`,
/// into bands.
pub(super) fn jpeg_decode<R: std::io::BufRead>(
    reader: R,
    page: &Page,
    skip: u32,
    (y0, height): (u32, u32),
    end_row: u32,
    sink: BandSink<'_>,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let BandSink {
        wants: wanted,
        emit,
    } = sink;
    crate::decode::libjpeg::guarded(|| {
        let mut d = crate::decode::libjpeg::start(reader, page, 1)?;
        if d.width() != page.width as usize || d.height() != (skip + height) as usize {
            return Err(FormatError::invalid("JPEG size differs from its header"));
        }
        let comps = usize::from(page.raw.samples);
        let row_len = page.width as usize * comps;
        let mut bands = Bands::new(page);
        let mut row = vec![0u8; row_len];
        for _ in 0..skip {
            d.read_scanlines_into(&mut row)
                .map_err(|e| FormatError::truncated(format!("JPEG scan: {e}")))?;
        }
        for y in y0..end_row.min(y0 + height) {
            if y % 64 == 0 && cancelled() {
                return Err(FormatError::Cancelled);
            }
            d.read_scanlines_into(&mut row)
                .map_err(|e| FormatError::truncated(format!("JPEG scan at row {y}: {e}")))?;
            if let Some((band, piece)) = bands.row(y, &row, wanted) {
                emit(band, piece);
            }
        }
        // Stop early without finishing the scan: dropping the decompressor aborts it.
        Ok(())
    })
}

/// Receives each scaled row (its index, RGBA); an error stops the decode.
pub type ScaledRow<'a> = dyn FnMut(u32, &[u8]) -> Result<(), FormatError> + 'a;

/// Decode a baseline JPEG at `1/denom` scale (2, 4 or 8) through libjpeg's DCT scaling: the
/// inverse DCT runs on a corner of each block, which costs a fraction of a full decode. Each
/// scaled row goes to `on_row` as RGBA.
pub fn jpeg_scaled_rows(
    source: &Source,
    page: &Page,
    denom: u8,
    on_row: &mut ScaledRow,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    crate::decode::libjpeg::guarded(|| {
        let reader = BufReader::with_capacity(1 << 20, SourceReader::new(source, 0));
        let mut d = crate::decode::libjpeg::start(reader, page, denom)?;
        let (w, h) = (d.width(), d.height());
        let (want_w, want_h) = (
            page.width.div_ceil(u32::from(denom)),
            page.height.div_ceil(u32::from(denom)),
        );
        if (w, h) != (want_w as usize, want_h as usize) {
            return Err(FormatError::invalid(
                "JPEG scaled size differs from its header",
            ));
        }
        let palette = page.palette.as_deref().map(Vec::as_slice);
        let mut row = vec![0u8; w * usize::from(page.raw.samples)];
        let mut piece = Piece::new(crate::format::Extent::new(0, 0, want_w, 1), &page.raw);
        for y in 0..want_h {
            if y % 64 == 0 && cancelled() {
                return Err(FormatError::Cancelled);
            }
            d.read_scanlines_into(&mut row)
                .map_err(|e| FormatError::truncated(format!("JPEG scan at scaled row {y}: {e}")))?;
            let (rgba, native) = piece.row_mut(0);
            page.raw.unpack_row(&row, w, palette, rgba, native);
            on_row(y, &piece.rgba)?;
        }
        Ok(())
    })
}

/// A band cut out of a JPEG as a small JPEG of its own, and where its rows go.
pub(super) struct BandJpeg {
    pub bytes: Vec<u8>,
    /// Rows to drop at its top (a synthetic row), the image row of the next one, and rows.
    pub skip: u32,
    pub y0: u32,
    pub rows: u32,
}

/// Decode JPEG bands `first..=last` each from its own small JPEG: the checkpoint comes from
/// `index` (running `pass`, or waiting for the pass running, when none has reached the band),
/// and `band_file` cuts the band out of the file from it.
pub(super) fn jpeg_bands_from_checkpoints(
    page: &Page,
    index: &StreamIndex,
    bands: RangeInclusive<u64>,
    pass: &dyn Fn() -> Result<(), FormatError>,
    band_file: &dyn Fn(u64, &crate::index::Checkpoint) -> Result<BandJpeg, FormatError>,
    sink: BandSink<'_>,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let BandSink {
        wants: wanted,
        emit,
    } = sink;
    let last = (*bands.end()).min(page.grid.unit_rows().saturating_sub(1));
    for band in *bands.start()..=last {
        if !wanted(band) {
            continue;
        }
        let point = index
            .checkpoint_or_pass(band, pass, cancelled)?
            .ok_or_else(|| FormatError::invalid(format!("JPEG band {band} has no checkpoint")))?;
        let b = band_file(band, &point)?;
        let sink = BandSink {
            wants: &mut |k| k == band,
            emit: &mut *emit,
        };
        let end_row = page.grid.unit_extent(band).y1;
        jpeg_decode(
            &b.bytes[..],
            page,
            b.skip,
            (b.y0, b.rows),
            end_row,
            sink,
            cancelled,
        )?;
    }
    Ok(())
}
