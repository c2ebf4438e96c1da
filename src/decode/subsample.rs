//! Subsampled previews of raw layouts: every k-th row and every k-th pixel of a raw block or of
//! uncompressed TIFF strips or tiles, so a picture of the whole file appears at once, whatever
//! its size, before (or without) box-filtered levels. A raw block's rows are read with one
//! strided `pread` per row window; strips and tiles with one read per row and chunk, all asked
//! of the kernel first so they are fetched in parallel. Only the column span in view is read.

use super::Piece;
use crate::error::FormatError;
use crate::format::{Extent, Page, Storage};
use crate::source::Source;

/// Whether a page can be previewed by subsampling: one raw block, or uncompressed chunky
/// strips or tiles of whole-byte pixels.
pub fn supported(page: &Page) -> bool {
    match page.storage {
        Storage::Raw { .. } => true,
        Storage::Chunks {
            codec: crate::format::Codec::Raw,
            planes: 1,
            ..
        } => page.raw.bits_per_pixel().is_multiple_of(8),
        _ => false,
    }
}

/// Read, for each of `rows` image rows (`first`, `first + k`, ...), the bytes of image columns
/// `ax0..bx1` from uncompressed chunks into `buf` (`width_bytes` a row).
#[allow(clippy::too_many_arguments)] // reason: one call site, all plain geometry
fn read_chunk_rows(
    source: &Source,
    page: &Page,
    first: u64,
    k: u64,
    rows: usize,
    ax0: u32,
    bx1: u32,
    buf: &mut [u8],
) -> Result<(), FormatError> {
    let Storage::Chunks {
        offsets,
        lengths,
        chunk_stride,
        ..
    } = &page.storage
    else {
        return Err(FormatError::unsupported("preview of a compressed layout"));
    };
    let g = page.grid;
    let across = u64::from(g.across());
    let px = page.raw.bits_per_pixel() / 8;
    let width_bytes = (u64::from(bx1 - ax0) * px) as usize;
    let (c0, c1) = (ax0 / g.chunk_w, (bx1 - 1) / g.chunk_w);
    // (file offset, length, position in buf) of every segment.
    let mut segments = Vec::with_capacity(rows * (c1 - c0 + 1) as usize);
    for i in 0..rows {
        let y = first + i as u64 * k;
        let chunk_row = y / u64::from(g.chunk_h);
        let in_chunk = (y % u64::from(g.chunk_h)) * chunk_stride;
        for c in c0..=c1 {
            let chunk = (chunk_row * across + u64::from(c)) as usize;
            let cx0 = c * g.chunk_w;
            let sx0 = ax0.max(cx0);
            let sx1 = bx1.min(cx0 + g.chunk_w).min(page.width);
            let at = in_chunk + u64::from(sx0 - cx0) * px;
            let len = u64::from(sx1 - sx0) * px;
            let (Some(&off), Some(&stored)) = (offsets.get(chunk), lengths.get(chunk)) else {
                return Err(FormatError::truncated(format!("chunk {chunk} is missing")));
            };
            if at + len > stored {
                return Err(FormatError::truncated(format!(
                    "uncompressed chunk at offset {off} holds {stored} bytes, {} needed",
                    at + len
                )));
            }
            let dst = i * width_bytes + (u64::from(sx0 - ax0) * px) as usize;
            segments.push((off + at, len, dst));
        }
    }
    for &(off, len, _) in &segments {
        source.prefetch(off, len);
    }
    for (off, len, dst) in segments {
        source.read_rows(
            off,
            len,
            1,
            0,
            len as usize,
            &mut buf[dst..dst + len as usize],
        )?;
    }
    Ok(())
}

/// Decode preview unit `unit` (on `pieces::Geometry::preview`'s grid) for level columns `x0..x1`.
pub fn decode(
    source: &Source,
    page: &Page,
    k: u32,
    unit: u64,
    x0: u32,
    x1: u32,
) -> Result<Piece, FormatError> {
    if !supported(page) {
        return Err(FormatError::unsupported("preview of a compressed layout"));
    }
    let (base, stride, bottom_up, planes, plane_stride) = match &page.storage {
        Storage::Raw {
            base,
            stride,
            bottom_up,
            planes,
            plane_stride,
        } => (*base, *stride, *bottom_up, (*planes).max(1), *plane_stride),
        _ => (0, page.raw.row_bytes(page.width), false, 1, 0),
    };
    let (base, stride, bottom_up) = (&base, &stride, &bottom_up);
    let g = crate::pieces::Geometry::preview(page, k).grid;
    let band = g.unit_extent(unit);
    let extent = Extent::new(x0.max(band.x0), band.y0, x1.min(band.x1), band.y1);
    let raw = page.raw;
    let mut piece = Piece::new(extent, &raw);
    // A planar raw block (a FITS cube) is read one plane at a time, as one-sample pixels.
    let plane_raw = if planes > 1 {
        crate::sample::RawFormat { samples: 1, ..raw }
    } else {
        raw
    };
    let (w, h) = (extent.width() as usize, extent.height() as usize);
    if w == 0 || h == 0 {
        return Ok(piece);
    }
    // Base columns covered, aligned to whole bytes for sub-byte formats.
    let bx0 = extent.x0 * k;
    let bx1 = ((extent.x1 - 1) * k + 1).min(page.width);
    let bpp = plane_raw.bits_per_pixel();
    let ax0 = if bpp.is_multiple_of(8) {
        bx0
    } else {
        bx0 / 8 * 8
    };
    let skip = plane_raw.column_byte(ax0);
    let width_bytes = (plane_raw.row_bytes(bx1) - skip).min(stride - skip) as usize;
    let span_px = (bx1 - ax0) as usize;
    // Stored rows of the level rows, in file order.
    let first_image_row = u64::from(extent.y0) * u64::from(k);
    let last_image_row = u64::from(extent.y1 - 1) * u64::from(k);
    let (first_file_row, row_step) = if *bottom_up {
        (
            u64::from(page.height) - 1 - last_image_row,
            stride * u64::from(k),
        )
    } else {
        (first_image_row, stride * u64::from(k))
    };
    let mut buf = vec![0u8; h * width_bytes];
    if planes > 1 {
        let px_bytes = (bpp / 8) as usize;
        let mut bufs = Vec::with_capacity(planes as usize);
        for p in 0..u64::from(planes) {
            let mut b = vec![0u8; h * width_bytes];
            source.read_rows(
                base + p * plane_stride + first_file_row * stride,
                row_step,
                h,
                skip,
                width_bytes,
                &mut b,
            )?;
            bufs.push(b);
        }
        let n = planes as usize;
        let mut row = vec![0u8; w * px_bytes * n];
        for i in 0..h {
            let y = if *bottom_up { h - 1 - i } else { i };
            for x in 0..w {
                let s = ((extent.x0 + x as u32) * k - ax0) as usize * px_bytes + i * width_bytes;
                for (p, b) in bufs.iter().enumerate() {
                    let d = (x * n + p) * px_bytes;
                    row[d..d + px_bytes].copy_from_slice(&b[s..s + px_bytes]);
                }
            }
            let (rgba, native) = piece.row_mut(y);
            raw.unpack_row(&row, w, None, rgba, native);
        }
        return Ok(piece);
    }
    if matches!(page.storage, Storage::Raw { .. }) {
        source.read_rows(
            base + first_file_row * stride,
            row_step,
            h,
            skip,
            width_bytes,
            &mut buf,
        )?;
    } else {
        read_chunk_rows(
            source,
            page,
            first_image_row,
            u64::from(k),
            h,
            ax0,
            bx1,
            &mut buf,
        )?;
    }
    let palette = page.palette.as_deref().map(Vec::as_slice);
    if bpp.is_multiple_of(8) {
        // Whole-byte pixels: gather the sampled pixels' bytes into one row and unpack only
        // those (a 1-in-k preview unpacks 1/k of each row).
        let px_bytes = (bpp / 8) as usize;
        let mut row = vec![0u8; w * px_bytes];
        for (i, src) in buf.chunks_exact(width_bytes).enumerate() {
            let y = if *bottom_up { h - 1 - i } else { i };
            for (x, dst) in row.chunks_exact_mut(px_bytes).enumerate() {
                let s = ((extent.x0 + x as u32) * k - ax0) as usize * px_bytes;
                dst.copy_from_slice(&src[s..s + px_bytes]);
            }
            let (rgba, native) = piece.row_mut(y);
            raw.unpack_row(&row, w, palette, rgba, native);
        }
        return Ok(piece);
    }
    let mut full = Piece::new(Extent::new(0, 0, span_px as u32, 1), &raw);
    for (i, src) in buf.chunks_exact(width_bytes).enumerate() {
        let y = if *bottom_up { h - 1 - i } else { i };
        {
            let (rgba, native) = full.row_mut(0);
            raw.unpack_row(src, span_px, palette, rgba, native);
        }
        for x in 0..w {
            let sx = ((extent.x0 + x as u32) * k - ax0) as usize;
            let si = sx * 4;
            let di = (y * w + x) * 4;
            piece.rgba[di..di + 4].copy_from_slice(&full.rgba[si..si + 4]);
            match (&full.native, &mut piece.native) {
                (super::Native::U8 { channels, data: s }, super::Native::U8 { data: d, .. }) => {
                    let c = *channels;
                    d[(y * w + x) * c..(y * w + x + 1) * c]
                        .copy_from_slice(&s[sx * c..(sx + 1) * c]);
                }
                (super::Native::U16 { channels, data: s }, super::Native::U16 { data: d, .. }) => {
                    let c = *channels;
                    d[(y * w + x) * c..(y * w + x + 1) * c]
                        .copy_from_slice(&s[sx * c..(sx + 1) * c]);
                }
                _ => {}
            }
        }
    }
    Ok(piece)
}
