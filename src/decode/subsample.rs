//! Subsampled previews of raw layouts: every k-th row and every k-th pixel of a raw block, so
//! a picture of the whole file appears at once, whatever its size, before (or without)
//! box-filtered levels. Rows are read with one strided `pread` per row window; only the
//! column span in view is read.

use super::Piece;
use crate::error::FormatError;
use crate::format::{Extent, Grid, Page, Storage};
use crate::source::Source;

/// Level rows per preview piece.
const PREVIEW_ROWS: u32 = 256;

/// Whether a page can be previewed by subsampling (one raw block).
pub fn supported(page: &Page) -> bool {
    matches!(page.storage, Storage::Raw { .. })
}

/// The grid of a preview with step `k`: level-sized, in bands of `PREVIEW_ROWS` rows.
pub fn grid(page: &Page, k: u32) -> Grid {
    let (w, h) = (page.width.div_ceil(k), page.height.div_ceil(k));
    Grid::new(w, h, w, h, PREVIEW_ROWS)
}

/// Decode preview unit `unit` (on [`grid`]) for level columns `x0..x1`.
pub fn decode(
    source: &Source,
    page: &Page,
    k: u32,
    unit: u64,
    x0: u32,
    x1: u32,
) -> Result<Piece, FormatError> {
    let Storage::Raw {
        base,
        stride,
        bottom_up,
    } = &page.storage
    else {
        return Err(FormatError::unsupported("preview of a non-raw layout"));
    };
    let g = grid(page, k);
    let band = g.unit_extent(unit);
    let extent = Extent::new(x0.max(band.x0), band.y0, x1.min(band.x1), band.y1);
    let raw = page.raw;
    let mut piece = Piece::new(extent, &raw);
    let (w, h) = (extent.width() as usize, extent.height() as usize);
    if w == 0 || h == 0 {
        return Ok(piece);
    }
    // Base columns covered, aligned to whole bytes for sub-byte formats.
    let bx0 = extent.x0 * k;
    let bx1 = ((extent.x1 - 1) * k + 1).min(page.width);
    let bpp = raw.bits_per_pixel();
    let ax0 = if bpp.is_multiple_of(8) {
        bx0
    } else {
        bx0 / 8 * 8
    };
    let skip = raw.column_byte(ax0);
    let width_bytes = (raw.row_bytes(bx1) - skip).min(stride - skip) as usize;
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
    source.read_rows(
        base + first_file_row * stride,
        row_step,
        h,
        skip,
        width_bytes,
        &mut buf,
    )?;
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
