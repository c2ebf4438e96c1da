//! PNG: header parsed by the `png` crate (CRC-checked); the pixel data is one zlib stream.
//! Each band is a descriptor; the first pass records a checkpoint per band (see `index` and
//! `decode::stream::png`), after which a band decodes from its own checkpoint.

use std::sync::Arc;

use super::{
    Codec, FileFormat, Grid, Layout, Mode, Page, Storage, check_dimensions, stream_band_rows,
};
use crate::error::FormatError;
use crate::sample::{PixelKind, RawFormat};
use crate::source::{Source, SourceReader};

pub fn png_error(e: png::DecodingError) -> FormatError {
    match e {
        png::DecodingError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            FormatError::truncated("PNG data ends early")
        }
        png::DecodingError::IoError(source) => FormatError::Io { offset: 0, source },
        png::DecodingError::LimitsExceeded => FormatError::too_large("PNG exceeds limits"),
        other => FormatError::invalid(format!("PNG: {other}")),
    }
}

/// Rows are decoded as stored; transparency (tRNS) is applied by our unpacker: the `png`
/// crate's EXPAND compares a low-bit-depth gray key with the key's high byte only.
pub fn row_transform() -> png::Transformations {
    png::Transformations::IDENTITY
}

/// The tRNS colour key of a gray or RGB image, as sample values. The `png` crate keeps one
/// byte per channel below 16 bits and two (big-endian) at 16.
fn color_key(color: png::ColorType, bits: u8, trns: Option<&[u8]>) -> Option<[u32; 3]> {
    let t = trns?;
    let v = |i: usize| -> Option<u32> {
        if bits == 16 {
            Some(u32::from(u16::from_be_bytes([
                *t.get(2 * i)?,
                *t.get(2 * i + 1)?,
            ])))
        } else {
            t.get(i).map(|&b| u32::from(b))
        }
    };
    match color {
        png::ColorType::Grayscale => Some([v(0)?, 0, 0]),
        png::ColorType::Rgb => Some([v(0)?, v(1)?, v(2)?]),
        _ => None,
    }
}

/// Byte offset of the first IDAT chunk's data.
fn first_idat(source: &Source) -> Result<u64, FormatError> {
    let mut pos = 8u64;
    for _ in 0..100_000 {
        let mut head = [0u8; 8];
        source
            .read_exact_at(pos, &mut head)
            .map_err(|_| FormatError::truncated("PNG has no IDAT chunk"))?;
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        if &head[4..8] == b"IDAT" {
            return Ok(pos + 8);
        }
        if &head[4..8] == b"IEND" {
            break;
        }
        pos += 12 + len;
    }
    Err(FormatError::invalid("PNG has no IDAT chunk"))
}

pub fn parse(source: &Source) -> Result<Layout, FormatError> {
    let mut decoder = png::Decoder::new(std::io::BufReader::new(SourceReader::new(source, 0)));
    decoder.set_ignore_text_chunk(true);
    let info = decoder.read_header_info().map_err(png_error)?;
    let (width, height) = check_dimensions(u64::from(info.width), u64::from(info.height))?;
    let reader = decoder.read_info().map_err(png_error)?;
    let info = reader.info();
    let bits = info.bit_depth as u8;
    let has_trns = info.trns.is_some();
    let interlaced = info.interlaced;
    let wide = bits == 16;
    let key = color_key(info.color_type, bits, info.trns.as_deref());
    let expand = key.is_some();
    let mut palette = None;
    let (mode, raw) = match info.color_type {
        png::ColorType::Grayscale if expand => (
            if wide { Mode::La16 } else { Mode::La },
            RawFormat::new(
                PixelKind::Gray {
                    white_is_zero: false,
                },
                bits,
            )
            .with_color_key(key),
        ),
        png::ColorType::Grayscale => (
            match bits {
                1 => Mode::Bilevel,
                16 => Mode::I16,
                _ => Mode::L,
            },
            RawFormat::new(
                PixelKind::Gray {
                    white_is_zero: false,
                },
                bits,
            ),
        ),
        png::ColorType::GrayscaleAlpha => (
            if wide { Mode::La16 } else { Mode::La },
            RawFormat::new(PixelKind::GrayA, bits),
        ),
        png::ColorType::Rgb if expand => (
            if wide { Mode::Rgba16 } else { Mode::Rgba },
            RawFormat::new(PixelKind::Rgb, bits).with_color_key(key),
        ),
        png::ColorType::Rgb => (
            if wide { Mode::Rgb16 } else { Mode::Rgb },
            RawFormat::new(PixelKind::Rgb, bits),
        ),
        png::ColorType::Rgba => (
            if wide { Mode::Rgba16 } else { Mode::Rgba },
            RawFormat::new(PixelKind::Rgba, bits),
        ),
        png::ColorType::Indexed => {
            let plte = info
                .palette
                .as_ref()
                .ok_or_else(|| FormatError::invalid("PNG palette image has no PLTE"))?;
            let trns = info.trns.as_deref().unwrap_or(&[]);
            let mut pal: Vec<[u8; 4]> = plte
                .chunks_exact(3)
                .enumerate()
                .map(|(i, c)| [c[0], c[1], c[2], trns.get(i).copied().unwrap_or(255)])
                .collect();
            pal.resize(256, [0, 0, 0, 255]);
            palette = Some(Arc::new(pal));
            (
                if has_trns { Mode::Pa } else { Mode::P },
                RawFormat::new(PixelKind::Palette, bits),
            )
        }
    };
    let offset = first_idat(source)?;
    Ok(Layout {
        format: FileFormat::Png,
        pages: vec![Page {
            width,
            height,
            mode,
            raw,
            palette,
            grid: Grid::new(width, height, width, height, stream_band_rows(width)),
            storage: Storage::Stream {
                offset,
                length: source.len() - offset,
                codec: Codec::Zip,
                interlaced,
                restart: None,
                scan: None,
            },
            reduced: false,
            data: None,
            physical: None,
            orientation: crate::orientation::Orientation::IDENTITY,
        }],
    })
}
