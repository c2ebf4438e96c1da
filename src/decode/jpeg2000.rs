//! JPEG 2000 units: the decoder is handed a codestream made of the file's main header, the
//! tile-parts of just the tiles a unit covers, and an EOC marker, and asked for the unit's
//! area at the page's reduce factor. TIFF JPEG 2000 tiles (33003/33005) are whole
//! codestreams, decoded whole.

use std::sync::Mutex;

use super::Piece;
use crate::error::FormatError;
use crate::format::jp2::{self, Color};
use crate::format::{Extent, Page, Storage};
use crate::sample::{self, PixelKind};
use crate::source::Source;
use crate::sys::openjpeg::{self, Decoded, Request};

/// Most compressed bytes one unit may hand the decoder (OpenJPEG holds a tile's bytes in
/// memory): an untiled image bigger than this is refused with a clear error.
pub const MAX_UNIT_STREAM: u64 = 2 << 30;
/// Units whose compressed bytes exceed this decode one at a time, so that two workers never
/// hold two copies of a huge untiled codestream.
const BIG_UNIT_STREAM: u64 = 64 << 20;
static BIG_UNITS: Mutex<()> = Mutex::new(());

const EOC: [u8; 2] = [0xFF, 0xD9];

/// Decode the piece `extent` (a window of unit `unit`) of a JPEG 2000 page.
pub fn decode_unit(
    source: &Source,
    page: &Page,
    unit: u64,
    extent: Extent,
) -> Result<Piece, FormatError> {
    let Storage::J2k { stream, reduce } = &page.storage else {
        return Err(FormatError::invalid("internal: not a JPEG 2000 page"));
    };
    let r = u32::from(*reduce);
    let extent = extent
        .intersect(&page.grid.unit_extent(unit))
        .ok_or_else(|| FormatError::invalid("internal: window outside its unit"))?;
    let area = stream.reference_area(r, &extent);
    let tiles = stream.tiles_in(area);
    // The virtual codestream: main header, the tiles' parts in order, EOC.
    let mut segments = vec![stream.header];
    for &t in &tiles {
        let parts = stream
            .tiles
            .get(t)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                FormatError::truncated(format!("JPEG 2000 tile {t} is missing (file cut short?)"))
            })?;
        segments.extend(parts.iter().copied());
    }
    let total: u64 = segments.iter().map(|s| s.1).sum::<u64>() + 2;
    if total > MAX_UNIT_STREAM {
        return Err(FormatError::too_large(format!(
            "JPEG 2000 unit needs {total} compressed bytes in memory (at most {MAX_UNIT_STREAM})"
        )));
    }
    for &(off, len) in &segments {
        crate::format::check_span(off, len, source.len(), "JPEG 2000 tile-part")?;
    }
    let mut failed = None;
    let mut read = |pos: u64, buf: &mut [u8]| -> usize {
        let mut at = 0u64;
        for &(off, len) in &segments {
            if pos < at + len {
                let n = (buf.len() as u64).min(at + len - pos) as usize;
                return match source.read_some(off + (pos - at), &mut buf[..n]) {
                    Ok(n) => n,
                    Err(e) => {
                        failed = Some(e);
                        0
                    }
                };
            }
            at += len;
        }
        let k = (pos - at) as usize;
        let n = buf.len().min(EOC.len().saturating_sub(k));
        buf[..n].copy_from_slice(&EOC[k..k + n]);
        n
    };
    let request = Request {
        reduce: r,
        area: Some(area),
        max_bytes: extent.pixels() * stream.components.len() as u64 * 4 + (1 << 20),
    };
    let _one_at_a_time = (total > BIG_UNIT_STREAM).then(|| BIG_UNITS.lock());
    let decoded = openjpeg::decode(total, &mut read, &request);
    if let Some(e) = failed {
        return Err(e);
    }
    let decoded = decoded.map_err(FormatError::invalid)?;
    let origin = (stream.x0.div_ceil(1 << r), stream.y0.div_ceil(1 << r));
    fill_piece(&decoded, page, extent, origin, &stream.color)
}

/// Decode a TIFF tile or strip that is a whole JPEG 2000 codestream; `ycc` when its three
/// components are YCbCr (after the codestream's own transform, if any).
pub fn decode_tiff_chunk(
    bytes: &[u8],
    page: &Page,
    extent: Extent,
    ycc: bool,
) -> Result<Piece, FormatError> {
    // Some writers wrap the codestream in JP2 boxes: start at SOC + SIZ.
    let start = bytes
        .windows(4)
        .take(4096)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .ok_or_else(|| FormatError::invalid("TIFF JPEG 2000 chunk without a codestream"))?;
    let bytes = &bytes[start..];
    let cs = jp2::parse_main_header(bytes)?;
    let samples = usize::from(page.raw.samples);
    if cs.components.len() != samples
        || cs.width() < extent.width()
        || cs.height() < extent.height()
    {
        return Err(FormatError::invalid(format!(
            "TIFF JPEG 2000 chunk of {}x{} with {} components, for a {}x{} chunk of {samples}",
            cs.width(),
            cs.height(),
            cs.components.len(),
            extent.width(),
            extent.height()
        )));
    }
    let mut read = |pos: u64, buf: &mut [u8]| -> usize {
        let from = (pos as usize).min(bytes.len());
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        n
    };
    let request = Request {
        reduce: 0,
        area: None,
        max_bytes: u64::from(cs.width()) * u64::from(cs.height()) * samples as u64 * 4 + (1 << 20),
    };
    let decoded =
        openjpeg::decode(bytes.len() as u64, &mut read, &request).map_err(FormatError::invalid)?;
    let color = match page.raw.kind {
        PixelKind::Rgb if ycc => Color::Ycc,
        PixelKind::Rgb => Color::Rgb,
        PixelKind::Rgba => Color::Rgba,
        PixelKind::GrayA => Color::GrayAlpha,
        PixelKind::Data(t) => Color::Data(t),
        _ => Color::Gray,
    };
    // The chunk's extent is placed at the codestream's origin.
    let local = Extent::new(0, 0, extent.width(), extent.height());
    let mut piece = fill_piece(&decoded, page, local, (cs.x0, cs.y0), &color)?;
    piece.extent = extent;
    Ok(piece)
}

/// Place decoded components into a piece covering `extent` (level pixels; `origin` is the
/// level's image origin on the decoder's grid).
fn fill_piece(
    d: &Decoded,
    page: &Page,
    extent: Extent,
    origin: (u32, u32),
    color: &Color,
) -> Result<Piece, FormatError> {
    let (w, h) = (extent.width() as usize, extent.height() as usize);
    let comps = &d.components;
    let n = comps.len();
    let need = match color {
        Color::Gray | Color::Palette(_) => 1,
        Color::GrayAlpha => 2,
        Color::Rgb | Color::Ycc => 3,
        Color::Rgba => 4,
        Color::Data(_) => usize::from(page.raw.samples),
    };
    if n < need {
        return Err(FormatError::invalid(format!(
            "JPEG 2000 decoded {n} components, {need} needed"
        )));
    }
    // Per component: the sample index of each output column and row.
    let index = |pos: u32, o: u32, step: u32, start: u32, len: u32| -> usize {
        (((pos + o) / step).saturating_sub(start)).min(len.saturating_sub(1)) as usize
    };
    let cols: Vec<Vec<usize>> = comps[..need]
        .iter()
        .map(|c| {
            (0..w as u32)
                .map(|x| index(extent.x0 + x, origin.0, c.dx, c.x0, c.width))
                .collect()
        })
        .collect();
    let raw = page.raw;
    let palette = page.palette.as_deref().map(Vec::as_slice);
    let mut piece = Piece::new(extent, &raw);
    let bytes_per = match color {
        Color::Data(t) => usize::from(t.bits() / 8),
        _ => 1,
    };
    let mut row = vec![0u8; w * need * bytes_per];
    let to8 = |v: i32, prec: u32| -> u8 {
        if prec >= 8 {
            (v >> (prec - 8)).clamp(0, 255) as u8
        } else {
            (v.max(0) as u32 * 255 / ((1u32 << prec) - 1)).min(255) as u8
        }
    };
    for y in 0..h {
        let rows: Vec<usize> = comps[..need]
            .iter()
            .map(|c| index(extent.y0 + y as u32, origin.1, c.dy, c.y0, c.height) * c.width as usize)
            .collect();
        let at = |k: usize, x: usize| comps[k].data[rows[k] + cols[k][x]];
        match color {
            Color::Ycc => {
                for x in 0..w {
                    let p = |k| to8(at(k, x), comps[k].precision);
                    let px = sample::ycbcr_to_rgb(p(0), p(1), p(2));
                    row[x * 3..x * 3 + 3].copy_from_slice(&px[..3]);
                }
            }
            Color::Palette(_) => {
                for (x, b) in row.iter_mut().enumerate() {
                    *b = at(0, x).clamp(0, 255) as u8;
                }
            }
            Color::Data(t) => {
                for x in 0..w {
                    for k in 0..need {
                        let v = at(k, x);
                        let o = (x * need + k) * bytes_per;
                        let dst = &mut row[o..o + bytes_per];
                        use crate::data::SampleType as S;
                        match t {
                            S::U8 => dst[0] = v.clamp(0, 255) as u8,
                            S::I8 => dst[0] = v.clamp(-128, 127) as i8 as u8,
                            S::U16 => {
                                dst.copy_from_slice(&(v.clamp(0, 65535) as u16).to_be_bytes())
                            }
                            S::I16 => {
                                dst.copy_from_slice(&(v.clamp(-32768, 32767) as i16).to_be_bytes())
                            }
                            S::U32 => dst.copy_from_slice(&(v.max(0) as u32).to_be_bytes()),
                            _ => dst.copy_from_slice(&v.to_be_bytes()),
                        }
                    }
                }
            }
            _ => {
                for x in 0..w {
                    for k in 0..need {
                        row[x * need + k] = to8(at(k, x), comps[k].precision);
                    }
                }
            }
        }
        let (rgba, native) = piece.row_mut(y);
        raw.unpack_row(&row, w, palette, rgba, native);
    }
    Ok(piece)
}
