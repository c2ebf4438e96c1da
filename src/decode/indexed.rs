//! Bands of sequential encodings that were indexed once at open: plain (ASCII) PNM samples
//! and BMP RLE4/RLE8 commands. Each band starts at its recorded offset (and, for RLE, pen).

use super::Piece;
use crate::error::FormatError;
use crate::format::bmp::{RleCommand, RleStream};
use crate::format::pnm::PlainScanner;
use crate::format::{Codec, Mode, Page, Storage};
use crate::source::Source;

pub fn decode_band(source: &Source, page: &Page, unit: u64) -> Result<Piece, FormatError> {
    let Storage::Indexed {
        offsets,
        pens,
        codec,
        ..
    } = &page.storage
    else {
        return Err(FormatError::invalid("internal: not an indexed page"));
    };
    let extent = page.grid.unit_extent(unit);
    let offset = offsets
        .get(unit as usize)
        .copied()
        .ok_or_else(|| FormatError::invalid(format!("band {unit} is not in the index")))?;
    let (w, h) = (extent.width() as usize, extent.height() as usize);
    let raw = page.raw;
    // Stored samples of the band, as the page's raw format describes them.
    let stored: Vec<u8> = match codec {
        Codec::PnmPlain => {
            let spp = usize::from(raw.samples);
            let mut scanner = PlainScanner::new(source, offset, page.mode == Mode::Bilevel);
            let n = w * h * spp;
            let wide = raw.bits == 16;
            let mut out = Vec::with_capacity(n * if wide { 2 } else { 1 });
            for i in 0..n {
                let v = scanner.next_sample()?.ok_or_else(|| {
                    FormatError::truncated(format!("plain PNM band {unit} ends after {i} samples"))
                })?;
                let v = v.min(raw.maxval);
                if wide {
                    out.extend_from_slice(&(v as u16).to_be_bytes());
                } else {
                    out.push(v as u8);
                }
            }
            out
        }
        Codec::BmpRle4 | Codec::BmpRle8 => {
            let pen = pens.get(unit as usize).copied().unwrap_or((page.height, 0));
            rle_band(source, page, *codec, offset, pen, extent.y0, extent.y1)?
        }
        _ => return Err(FormatError::invalid("internal: not an indexed codec")),
    };
    let row_bytes = raw.row_bytes(extent.width()) as usize;
    let palette = page.palette.as_deref().map(Vec::as_slice);
    let mut piece = Piece::new(extent, &raw);
    for (y, src) in stored.chunks_exact(row_bytes).take(h).enumerate() {
        let (rgba, native) = piece.row_mut(y);
        raw.unpack_row(src, w, palette, rgba, native);
    }
    Ok(piece)
}

/// Decode RLE commands from `offset` into one index byte per pixel for image rows `y0..y1`,
/// stopping when the pen leaves the band. Pixels no command reaches stay at index 0.
fn rle_band(
    source: &Source,
    page: &Page,
    codec: Codec,
    offset: u64,
    pen: (u32, u32),
    y0: u32,
    y1: u32,
) -> Result<Vec<u8>, FormatError> {
    let width = page.width as usize;
    let height = page.height;
    let mut out = vec![0u8; width * (y1 - y0) as usize];
    // File rows (from the bottom) that belong to this band.
    let (file_lo, file_hi) = (height - y1, height - y0);
    let (mut row, mut x) = pen;
    let mut stream = RleStream::new(source, offset);
    let mut put = |row: u32, x: u32, v: u8| {
        if row >= file_lo && row < file_hi && (x as usize) < width {
            let y = (height - 1 - row - y0) as usize;
            out[y * width + x as usize] = v;
        }
    };
    while row < file_hi {
        let Some(cmd) = stream.next_command(codec)? else {
            return Err(FormatError::truncated(
                "BMP RLE stream ends before the bitmap does",
            ));
        };
        match cmd {
            RleCommand::EndOfLine => {
                row += 1;
                x = 0;
            }
            RleCommand::EndOfBitmap => break,
            RleCommand::Delta(dx, dy) => {
                x = x.saturating_add(u32::from(dx));
                row = row.saturating_add(u32::from(dy));
            }
            RleCommand::Run { count, value } => {
                for i in 0..u32::from(count) {
                    let v = if codec == Codec::BmpRle4 {
                        if i % 2 == 0 { value >> 4 } else { value & 0x0F }
                    } else {
                        value
                    };
                    put(row, x + i, v);
                }
                x = x.saturating_add(u32::from(count));
            }
            RleCommand::Literal { count, offset } => {
                let resume = stream.pos;
                stream.pos = offset;
                let mut byte = 0u8;
                for i in 0..u32::from(count) {
                    let v = if codec == Codec::BmpRle4 {
                        if i % 2 == 0 {
                            byte = stream
                                .byte()?
                                .ok_or_else(|| FormatError::truncated("BMP RLE literal run"))?;
                            byte >> 4
                        } else {
                            byte & 0x0F
                        }
                    } else {
                        stream
                            .byte()?
                            .ok_or_else(|| FormatError::truncated("BMP RLE literal run"))?
                    };
                    put(row, x + i, v);
                }
                stream.pos = resume;
                x = x.saturating_add(u32::from(count));
            }
        }
    }
    Ok(out)
}
