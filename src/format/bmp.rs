//! BMP: palette (1/4/8-bit), 16/24/32-bit with BI_BITFIELDS masks (alpha from V4/V5 headers),
//! bottom-up or top-down rows. Uncompressed pixels are one raw block; RLE4/RLE8 streams are
//! indexed once so that each band starts at a known byte and pen position.

use std::sync::Arc;

use super::{
    Codec, FileFormat, Grid, Layout, Mode, Page, Storage, check_dimensions, check_span,
    raw_band_rows,
};
use crate::error::FormatError;
use crate::progress::Progress;
use crate::sample::{PixelKind, RawFormat};
use crate::source::Source;

fn u16le(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32le(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

pub fn parse(source: &Source, progress: &Progress) -> Result<Layout, FormatError> {
    let mut head = [0u8; 14 + 124 + 16];
    let n = source.read_some(0, &mut head)?;
    if n < 14 + 12 {
        return Err(FormatError::truncated("BMP header"));
    }
    let pixel_offset = u64::from(u32le(&head, 10));
    let dib = u32le(&head, 14) as usize;
    if !matches!(dib, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124) {
        return Err(FormatError::unsupported(format!("BMP header size {dib}")));
    }
    if n < 14 + dib {
        return Err(FormatError::truncated("BMP info header"));
    }
    let h = &head[14..n];
    let (width, height, bpp, compression, colors_used) = if dib == 12 {
        (
            i64::from(u16le(h, 4)),
            i64::from(u16le(h, 6)),
            u16le(h, 10),
            0,
            0,
        )
    } else {
        (
            i64::from(u32le(h, 4) as i32),
            i64::from(u32le(h, 8) as i32),
            u16le(h, 14),
            u32le(h, 16),
            if dib >= 36 { u32le(h, 32) } else { 0 },
        )
    };
    let top_down = height < 0;
    let (width, height) = check_dimensions(width.max(0) as u64, height.unsigned_abs())?;
    if top_down && matches!(compression, 1 | 2) {
        return Err(FormatError::invalid("BMP: RLE images cannot be top-down"));
    }

    // Masks: inside V2+ headers, or right after a 40-byte header for (ALPHA)BITFIELDS.
    let (masks, after_header) = masks(source, h, dib, bpp, compression)?;
    let (mode, raw, codec) = pixel_format(bpp, compression, masks)?;
    let palette = if mode == Mode::P {
        let entry = if dib == 12 { 3 } else { 4 };
        Some(Arc::new(palette(
            source,
            after_header,
            entry,
            bpp,
            colors_used,
        )?))
    } else {
        None
    };

    let storage_page = |raw: RawFormat, grid: Grid, storage: Storage| Page {
        width,
        height,
        mode,
        raw,
        palette: palette.clone(),
        grid,
        storage,
        reduced: false,
        data: None,
        physical: None,
        orientation: crate::orientation::Orientation::IDENTITY,
    };
    let page = if codec == Codec::Raw {
        let stride = (u64::from(width) * u64::from(bpp)).div_ceil(32) * 4;
        check_span(
            pixel_offset,
            stride * u64::from(height),
            source.len(),
            "the BMP pixel array",
        )?;
        storage_page(
            raw,
            Grid::new(width, height, width, height, raw_band_rows(stride)),
            Storage::Raw {
                base: pixel_offset,
                stride,
                bottom_up: !top_down,
                planes: 1,
                plane_stride: 0,
            },
        )
    } else {
        let grid = Grid::new(
            width,
            height,
            width,
            height,
            raw_band_rows(u64::from(width) * 4),
        );
        let (offsets, lengths, pens) = index_rle(source, pixel_offset, &grid, codec, progress)?;
        storage_page(
            raw,
            grid,
            Storage::Indexed {
                offsets: Arc::new(offsets),
                lengths: Arc::new(lengths),
                pens: Arc::new(pens),
                codec,
            },
        )
    };
    Ok(Layout {
        format: FileFormat::Bmp,
        pages: vec![page],
    })
}

/// The channel masks (R, G, B, A) and where the data after the header and masks starts.
fn masks(
    source: &Source,
    h: &[u8],
    dib: usize,
    bpp: u16,
    compression: u32,
) -> Result<([u32; 4], usize), FormatError> {
    let mut masks = [0u32; 4];
    let mut after_header = 14 + dib;
    if matches!(compression, 3 | 6) {
        if dib >= 52 {
            masks[..3].copy_from_slice(&[u32le(h, 40), u32le(h, 44), u32le(h, 48)]);
            if dib >= 56 {
                masks[3] = u32le(h, 52);
            }
        } else {
            let count = if compression == 6 { 4 } else { 3 };
            let mut m = [0u8; 16];
            source.read_exact_at(after_header as u64, &mut m[..count * 4])?;
            for (i, mask) in masks.iter_mut().take(count).enumerate() {
                *mask = u32le(&m, i * 4);
            }
            after_header += count * 4;
        }
    } else if dib >= 56 && bpp == 32 {
        // V4/V5 headers carry an alpha mask even for BI_RGB; honour it when set.
        masks[3] = u32le(h, 52);
    }
    Ok((masks, after_header))
}

/// Mode, sample layout and codec of a bit depth and compression (`masks`: for bit fields).
fn pixel_format(
    bpp: u16,
    compression: u32,
    masks: [u32; 4],
) -> Result<(Mode, RawFormat, Codec), FormatError> {
    Ok(match (bpp, compression) {
        (1 | 4 | 8, 0) => (
            Mode::P,
            RawFormat::new(PixelKind::Palette, bpp as u8),
            Codec::Raw,
        ),
        (8, 1) => (
            Mode::P,
            RawFormat::new(PixelKind::Palette, 8),
            Codec::BmpRle8,
        ),
        (4, 2) => (
            Mode::P,
            RawFormat::new(PixelKind::Palette, 8),
            Codec::BmpRle4,
        ),
        (24, 0) => (Mode::Rgb, RawFormat::new(PixelKind::Bgr, 8), Codec::Raw),
        (32, 0) if masks[3] == 0 => (
            Mode::Rgb,
            RawFormat::new(PixelKind::Bgr, 8).with_samples(4),
            Codec::Raw,
        ),
        (32, 0) => (Mode::Rgba, RawFormat::new(PixelKind::Bgra, 8), Codec::Raw),
        (16, 0) => (
            Mode::Rgb,
            bitfields(2, [0x7C00, 0x03E0, 0x001F, 0]),
            Codec::Raw,
        ),
        (16 | 32, 3 | 6) => {
            for m in masks {
                if m != 0
                    && (m >> m.trailing_zeros()).count_ones() + m.trailing_zeros() > bpp as u32
                {
                    return Err(FormatError::invalid(format!("BMP bit mask {m:#x}")));
                }
                if m != 0 && !(m >> m.trailing_zeros()).wrapping_add(1).is_power_of_two() {
                    return Err(FormatError::invalid(format!(
                        "BMP bit mask {m:#x} is not contiguous"
                    )));
                }
            }
            if masks[..3].iter().all(|&m| m == 0) {
                return Err(FormatError::invalid("BMP bit masks are all zero"));
            }
            let mode = if masks[3] != 0 { Mode::Rgba } else { Mode::Rgb };
            (mode, bitfields((bpp / 8) as u8, masks), Codec::Raw)
        }
        _ => {
            return Err(FormatError::unsupported(format!(
                "BMP with {bpp} bits per pixel and compression {compression}"
            )));
        }
    })
}

/// The colour table at `at`: `colors_used` entries of `entry` bytes (BGR or BGRX), at most
/// 2^bpp, padded to 256 opaque black entries.
fn palette(
    source: &Source,
    at: usize,
    entry: usize,
    bpp: u16,
    colors_used: u32,
) -> Result<Vec<[u8; 4]>, FormatError> {
    let max = 1usize << bpp.min(8);
    // A header claiming more colours than the bit depth can index (up to 2^31−1 seen) is
    // accepted with a warning: only the first 2^bpp entries can be used, and the pixels start
    // at their own offset, so nothing is read by the claim.
    if colors_used as usize > max {
        log::warn!(
            "BMP header claims {colors_used} palette entries; a {bpp}-bit image uses the first {max}"
        );
    }
    let count = if colors_used == 0 {
        max
    } else {
        (colors_used as usize).min(max)
    };
    let mut bytes = vec![0u8; count * entry];
    source
        .read_exact_at(at as u64, &mut bytes)
        .map_err(|_| FormatError::truncated("BMP palette"))?;
    let mut pal: Vec<[u8; 4]> = bytes
        .chunks_exact(entry)
        .map(|c| [c[2], c[1], c[0], 255])
        .collect();
    pal.resize(256, [0, 0, 0, 255]);
    Ok(pal)
}

fn bitfields(bytes: u8, masks: [u32; 4]) -> RawFormat {
    RawFormat::new(PixelKind::Bitfields { bytes, masks }, 8)
}

/// Walk an RLE stream once. Rows run bottom-up, so bands are met from the last to the first.
/// Returns per band: the offset of its first command, the stream length from there, and the
/// pen (file row, x) at that command. A band skipped by a delta gets the pen of the band after
/// it, so its decoder finds nothing of its own and leaves it at index 0.
#[allow(clippy::type_complexity)] // reason: three parallel per-band arrays, used once
fn index_rle(
    source: &Source,
    start: u64,
    grid: &Grid,
    codec: Codec,
    progress: &Progress,
) -> Result<(Vec<u64>, Vec<u64>, Vec<(u32, u32)>), FormatError> {
    let bands = grid.unit_count() as usize;
    let height = grid.height;
    let mut offsets = vec![u64::MAX; bands];
    let mut pens = vec![(height, 0u32); bands];
    let mut stream = RleStream::new(source, start);
    // File row r (0 = bottom) is image row height-1-r.
    let (mut row, mut x) = (0u32, 0u32);
    let mut entered = bands;
    while row < height {
        let band = grid.unit_row_of(height - 1 - row) as usize;
        if band < entered {
            progress.update(stream.pos, source.len())?;
            for b in band..entered {
                offsets[b] = stream.pos;
                pens[b] = (row, x);
            }
            entered = band;
        }
        match stream.next_command(codec)? {
            None | Some(RleCommand::EndOfBitmap) => break,
            Some(RleCommand::EndOfLine) => {
                row += 1;
                x = 0;
            }
            Some(RleCommand::Delta(dx, dy)) => {
                x = x.saturating_add(u32::from(dx));
                row = row.saturating_add(u32::from(dy));
            }
            Some(RleCommand::Run { count, .. } | RleCommand::Literal { count, .. }) => {
                x = x.saturating_add(u32::from(count));
            }
        }
    }
    let end = stream.pos.min(source.len());
    // Bands the stream never reached (early end of bitmap) decode to nothing.
    for o in offsets.iter_mut().filter(|o| **o == u64::MAX) {
        *o = end;
    }
    let lengths = offsets.iter().map(|&o| end.saturating_sub(o)).collect();
    Ok((offsets, lengths, pens))
}

/// One RLE command.
#[derive(Debug)]
pub enum RleCommand {
    EndOfLine,
    EndOfBitmap,
    Delta(u8, u8),
    /// `count` pixels alternating the two indices of `value` (RLE4) or repeating it (RLE8).
    Run {
        count: u8,
        value: u8,
    },
    /// `count` pixels from the following bytes, starting at `offset`.
    Literal {
        count: u8,
        offset: u64,
    },
}

/// Buffered reader of RLE commands.
pub struct RleStream<'a> {
    source: &'a Source,
    buf: Vec<u8>,
    buf_start: u64,
    pub pos: u64,
}

impl<'a> RleStream<'a> {
    pub fn new(source: &'a Source, pos: u64) -> Self {
        Self {
            source,
            buf: Vec::new(),
            buf_start: pos,
            pos,
        }
    }

    pub fn byte(&mut self) -> Result<Option<u8>, FormatError> {
        let rel = self.pos.wrapping_sub(self.buf_start);
        if self.pos < self.buf_start || rel >= self.buf.len() as u64 {
            self.buf_start = self.pos;
            self.buf.resize(256 << 10, 0);
            let n = self.source.read_some(self.pos, &mut self.buf)?;
            self.buf.truncate(n);
            if n == 0 {
                return Ok(None);
            }
        }
        let b = self.buf[(self.pos - self.buf_start) as usize];
        self.pos += 1;
        Ok(Some(b))
    }

    /// The next command; `None` at the end of the file. Literal bytes are skipped over (the
    /// decoder reads them with [`Self::byte`] after rewinding to `offset`).
    pub fn next_command(&mut self, codec: Codec) -> Result<Option<RleCommand>, FormatError> {
        let Some(a) = self.byte()? else {
            return Ok(None);
        };
        let b = self
            .byte()?
            .ok_or_else(|| FormatError::truncated("BMP RLE stream"))?;
        Ok(Some(match (a, b) {
            (0, 0) => RleCommand::EndOfLine,
            (0, 1) => RleCommand::EndOfBitmap,
            (0, 2) => {
                let dx = self
                    .byte()?
                    .ok_or_else(|| FormatError::truncated("BMP RLE delta"))?;
                let dy = self
                    .byte()?
                    .ok_or_else(|| FormatError::truncated("BMP RLE delta"))?;
                RleCommand::Delta(dx, dy)
            }
            (0, n) => {
                let offset = self.pos;
                let bytes = if codec == Codec::BmpRle4 {
                    u64::from(n).div_ceil(2)
                } else {
                    u64::from(n)
                };
                // Literal runs are padded to 16 bits.
                self.pos += bytes + (bytes & 1);
                RleCommand::Literal { count: n, offset }
            }
            (n, v) => RleCommand::Run { count: n, value: v },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_depths_and_compressions_map_to_formats() {
        let mode = |bpp, c, m| pixel_format(bpp, c, m).map(|(mode, _, codec)| (mode, codec));
        let none = [0; 4];
        assert_eq!(mode(8, 1, none).ok(), Some((Mode::P, Codec::BmpRle8)));
        assert_eq!(mode(4, 2, none).ok(), Some((Mode::P, Codec::BmpRle4)));
        assert_eq!(mode(24, 0, none).ok(), Some((Mode::Rgb, Codec::Raw)));
        assert_eq!(
            mode(32, 0, [0, 0, 0, 0xFF00_0000]).ok(),
            Some((Mode::Rgba, Codec::Raw))
        );
        let rgb565 = [0xF800, 0x07E0, 0x001F, 0];
        assert_eq!(mode(16, 3, rgb565).ok(), Some((Mode::Rgb, Codec::Raw)));
        assert!(
            mode(16, 3, [0xF0F0, 0, 0, 0]).is_err(),
            "a mask with a hole"
        );
        assert!(
            mode(16, 3, [0x1_0000, 0, 0, 0]).is_err(),
            "a mask wider than the pixel"
        );
        assert!(mode(16, 3, none).is_err(), "all masks zero");
        assert!(mode(8, 2, none).is_err(), "RLE4 on 8 bits");
    }
}
