//! Streams that decode only from their start: PNG (zlib) and JPEG (entropy-coded scan).
//!
//! This module dispatches by [`StreamKind`]; each kind lives in its own file: `png` (own IDAT
//! walk, inflater checkpoints), `jpeg_restart` (bands of restart intervals), `jpeg_scan`
//! (entropy checkpoints), interlaced PNG here; `jpeg` is what the JPEG kinds share (libjpeg
//! row decoding, bands from checkpoints), `bands` the band assembly and the sink every kind
//! feeds, `read_ahead` the reader thread. Rows stream through a few MB of decoder state; each
//! finished band goes to the sink as soon as it is complete.

mod bands;
mod jpeg;
mod jpeg_restart;
mod jpeg_scan;
mod png;
mod read_ahead;

pub use bands::BandSink;
use jpeg::jpeg_rows;
pub use jpeg::{ScaledRow, jpeg_scaled_rows};

use std::io::BufReader;
use std::ops::RangeInclusive;

use super::Piece;
use crate::error::FormatError;
#[cfg(test)]
use crate::format::Storage;
use crate::format::png::{png_error, row_transform};
use crate::format::{Page, StreamKind};
use crate::index::StreamIndex;
use crate::source::{Source, SourceReader};

/// Adam7 passes: (x0, y0, dx, dy).
const ADAM7: [(u32, u32, u32, u32); 7] = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
];

/// Decode bands `bands` of a stream page (rows above them are decoded but not kept), each
/// kind of stream its own way (see [`StreamKind`]). `cancelled()` is polled between rows.
/// PNG resumes from the nearest checkpoint in `index` and records checkpoints as it goes;
/// JPEG bands with checkpoints decode each from its own.
pub fn decode_bands(
    source: &Source,
    page: &Page,
    index: Option<&StreamIndex>,
    bands: RangeInclusive<u64>,
    sink: BandSink<'_>,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<(), FormatError> {
    let Some(kind) = page.stream_kind() else {
        return Err(FormatError::invalid("internal: not a stream page"));
    };
    let own;
    let index = match index {
        Some(ix) => ix,
        None => {
            own = StreamIndex::new(page.grid.unit_rows());
            &own
        }
    };
    match kind {
        StreamKind::PngInterlaced => png_interlaced(source, page, bands, sink, cancelled),
        StreamKind::Png => png::decode_bands(source, page, index, bands, sink, cancelled),
        StreamKind::JpegRestart(r) => {
            jpeg_restart::decode_bands(source, page, &r, index, bands, sink, cancelled)
        }
        StreamKind::JpegScanned(l) => {
            jpeg_scan::decode_bands(source, page, &l, index, bands, sink, cancelled)
        }
        StreamKind::JpegWhole | StreamKind::JpegProgressive => {
            jpeg_rows(source, page, bands, sink, cancelled)
        }
        StreamKind::WebP => webp_whole(source, page, bands, sink),
    }
}

/// WebP: one whole decode (the decoder has no other way), then the wanted bands cut from it.
/// A whole image is at most 16383² pixels; what it costs in memory is checked at open
/// ([`crate::format::webp::MAX_DECODE_BYTES`]).
fn webp_whole(
    source: &Source,
    page: &Page,
    bands: RangeInclusive<u64>,
    sink: BandSink<'_>,
) -> Result<(), FormatError> {
    let BandSink { wants, emit } = sink;
    let wanted: Vec<u64> = bands.filter(|&b| wants(b)).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut decoder = crate::format::webp::decoder(source)?;
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| FormatError::too_large("WebP image"))?;
    let mut buf = vec![0u8; size];
    decoder
        .read_image(&mut buf)
        .map_err(crate::format::webp::webp_error)?;
    let spp = if decoder.has_alpha() { 4 } else { 3 };
    let stride = page.width as usize * spp;
    for b in wanted {
        let e = page.grid.unit_extent(b);
        let mut piece = Piece::new(e, &page.raw);
        for y in e.y0..e.y1 {
            let row = buf
                .get(y as usize * stride..(y as usize + 1) * stride)
                .ok_or_else(|| FormatError::truncated("WebP image ends early"))?;
            let (rgba, native) = piece.row_mut((y - e.y0) as usize);
            page.raw
                .unpack_row(row, page.width as usize, None, rgba, native);
        }
        emit(b, piece);
    }
    Ok(())
}

fn png_reader(
    source: &Source,
) -> Result<::png::Reader<BufReader<SourceReader<&Source>>>, FormatError> {
    let mut decoder = ::png::Decoder::new(BufReader::with_capacity(
        256 << 10,
        SourceReader::new(source, 0),
    ));
    decoder.set_ignore_text_chunk(true);
    decoder.set_transformations(row_transform());
    decoder.read_info().map_err(png_error)
}

/// Adam7: every band needs all seven passes, so the whole stream is read once and the pass
/// rows are scattered into the wanted bands only (bounded by what the caller wants).
fn png_interlaced(
    source: &Source,
    page: &Page,
    bands: RangeInclusive<u64>,
    sink: BandSink<'_>,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let BandSink { wants, emit } = sink;
    let mut reader = png_reader(source)?;
    let raw = page.raw;
    let grid = &page.grid;
    let mut pieces: Vec<(u64, Piece)> = bands
        .filter(|&b| wants(b))
        .map(|b| (b, Piece::new(grid.unit_extent(b), &raw)))
        .collect();
    let palette = page.palette.as_deref().map(Vec::as_slice);
    let (w, h) = (page.width, page.height);
    for (x0, y0, dx, dy) in ADAM7 {
        let pw = if w > x0 { (w - x0).div_ceil(dx) } else { 0 };
        let ph = if h > y0 { (h - y0).div_ceil(dy) } else { 0 };
        if pw == 0 || ph == 0 {
            continue;
        }
        let mut tmp = Piece::new(crate::format::Extent::new(0, 0, pw, 1), &raw);
        for line in 0..ph {
            if line % 64 == 0 && cancelled() {
                return Err(FormatError::Cancelled);
            }
            let row = reader.next_row().map_err(png_error)?.ok_or_else(|| {
                FormatError::truncated(format!("PNG data ends in Adam7 pass at line {line}"))
            })?;
            let y = y0 + line * dy;
            let band = grid.unit_row_of(y);
            let Some((_, piece)) = pieces.iter_mut().find(|(b, _)| *b == band) else {
                continue;
            };
            let (rgba, native) = tmp.row_mut(0);
            raw.unpack_row(row.data(), pw as usize, palette, rgba, native);
            for i in 0..pw {
                copy_pixel(&tmp, i, 0, piece, x0 + i * dx, y);
            }
        }
    }
    for (band, piece) in pieces {
        emit(band, piece);
    }
    Ok(())
}

/// Copy pixel (sx, sy) of `src` (piece coordinates) to image pixel (x, y) of `dst`.
fn copy_pixel(src: &Piece, sx: u32, sy: u32, dst: &mut Piece, x: u32, y: u32) {
    let sw = src.extent.width() as usize;
    let dw = dst.extent.width() as usize;
    let si = sy as usize * sw + sx as usize;
    let di = (y - dst.extent.y0) as usize * dw + (x - dst.extent.x0) as usize;
    dst.rgba[di * 4..di * 4 + 4].copy_from_slice(&src.rgba[si * 4..si * 4 + 4]);
    match (&src.native, &mut dst.native) {
        (super::Native::U8 { channels, data: s }, super::Native::U8 { data: d, .. }) => {
            d[di * channels..(di + 1) * channels]
                .copy_from_slice(&s[si * channels..(si + 1) * channels]);
        }
        (super::Native::U16 { channels, data: s }, super::Native::U16 { data: d, .. }) => {
            d[di * channels..(di + 1) * channels]
                .copy_from_slice(&s[si * channels..(si + 1) * channels]);
        }
        _ => {}
    }
}

/// One pass over a stream page that records every band's checkpoint in `index` (the `index`
/// command): JPEG's marker scan or entropy pass, or PNG's decode (keeping no rows).
pub fn index_pass(
    source: &Source,
    page: &Page,
    index: &StreamIndex,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<(), FormatError> {
    match page.stream_kind() {
        Some(StreamKind::Png) => decode_bands(
            source,
            page,
            Some(index),
            0..=index.bands().saturating_sub(1),
            BandSink {
                wants: &mut |_| false,
                emit: &mut |_, _| {},
            },
            cancelled,
        ),
        _ => index_jpeg(source, page, index, cancelled),
    }
}

/// Record a JPEG stream's checkpoints without decoding pixels: the restart-marker scan, or the
/// entropy-decoding pass. Nothing to do for other streams (or once done).
pub fn index_jpeg(
    source: &Source,
    page: &Page,
    index: &StreamIndex,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let _one = index.scan_lock();
    if index.is_complete() {
        return Ok(());
    }
    match page.stream_kind() {
        Some(StreamKind::JpegRestart(r)) => jpeg_restart::scan(source, page, &r, index, cancelled),
        Some(StreamKind::JpegScanned(l)) => {
            jpeg_scan::index_pass(source, page, &l, index, cancelled)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 256;
    const H: u32 = 5000;

    fn gray(x: u32, y: u32) -> u8 {
        ((x * 3 + y / 7) % 251) as u8
    }

    fn jpeg(progressive: bool, height: u32) -> Vec<u8> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_GRAYSCALE);
        c.set_size(W as usize, height as usize);
        c.set_quality(95.0);
        if progressive {
            c.set_progressive_mode();
        } else {
            c.set_optimize_scans(false);
        }
        let data: Vec<u8> = (0..height)
            .flat_map(|y| (0..W).map(move |x| gray(x, y)))
            .collect();
        let mut started = c.start_compress(Vec::new()).expect("start");
        started.write_scanlines(&data).expect("rows");
        started.finish().expect("finish")
    }

    fn png() -> Vec<u8> {
        let img = image::GrayImage::from_fn(W, H, |x, y| image::Luma([gray(x, y)]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("png");
        out.into_inner()
    }

    /// Band `band` of `bytes`, decoded on its own through the stream's kind, and the same band
    /// decoded from the start of the stream.
    fn band_of(bytes: &[u8], band: u64) -> (Option<StreamKind>, Piece, Piece) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("s");
        std::fs::write(&path, bytes).expect("write");
        let source = Source::open(&path).expect("open");
        let layout = crate::format::parse(&source).expect("parse");
        let page = &layout.pages[0];
        let index = StreamIndex::new(page.grid.unit_rows());
        let kind = page.stream_kind();
        let alone = decode_one(&source, page, Some(&index), band);
        let mut plain = page.clone();
        if let Storage::Stream { scan, restart, .. } = &mut plain.storage {
            *scan = None;
            *restart = None;
        }
        let whole = decode_one(&source, &plain, None, band);
        (kind, alone, whole)
    }

    fn decode_one(source: &Source, page: &Page, index: Option<&StreamIndex>, band: u64) -> Piece {
        let mut got = None;
        decode_bands(
            source,
            page,
            index,
            band..=band,
            BandSink {
                wants: &mut |_| true,
                emit: &mut |b, p| {
                    if b == band {
                        got = Some(p);
                    }
                },
            },
            &|| false,
        )
        .expect("decode");
        got.expect("the band")
    }

    fn max_error(piece: &Piece) -> u8 {
        let e = piece.extent;
        let mut worst = 0;
        for y in e.y0..e.y1 {
            for x in e.x0..e.x1 {
                let v = piece.rgba_at(x, y).map_or(0, |p| p[0]);
                worst = worst.max(v.abs_diff(gray(x, y)));
            }
        }
        worst
    }

    #[test]
    fn each_kind_of_stream_decodes_its_bands_its_own_way() {
        let (kind, piece, _) = band_of(&png(), 3);
        assert_eq!(kind, Some(StreamKind::Png));
        assert!(kind.is_some_and(StreamKind::has_checkpoints));
        assert_eq!(max_error(&piece), 0, "PNG is lossless");
        assert!(piece.extent.y0 > 0, "band 3, not the first");

        // Baseline without restart markers, written with optimised Huffman tables that have
        // no code for a zero DC difference: the band still decodes from its checkpoint, equal
        // to the same rows of a decode from the start.
        let (kind, piece, whole) = band_of(&jpeg(false, H), 3);
        assert!(matches!(kind, Some(StreamKind::JpegScanned(_))), "{kind:?}");
        assert!(kind.is_some_and(StreamKind::bands_decode_alone));
        assert_eq!(piece.extent, whole.extent);
        assert!(
            piece.rgba == whole.rgba,
            "band 3 equals the whole decode's rows"
        );

        let (kind, piece, whole) = band_of(&jpeg(true, H), 3);
        assert_eq!(kind, Some(StreamKind::JpegProgressive));
        assert!(!kind.is_some_and(StreamKind::has_checkpoints));
        assert!(piece.rgba == whole.rgba);

        // One band: its checkpoint is the stream's start.
        let (kind, piece, whole) = band_of(&jpeg(false, 300), 0);
        assert!(matches!(kind, Some(StreamKind::JpegScanned(_))), "{kind:?}");
        assert_eq!(piece.extent.height(), 300);
        assert!(piece.rgba == whole.rgba);
    }
}
