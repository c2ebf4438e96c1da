//! Standalone WebP (lossy VP8, lossless VP8L, extended with alpha): one page of row bands, a
//! stream that decodes only whole (the `image-webp` decoder has no partial decoding). A view
//! decodes the image once and keeps the bands it wants; zoomed out, levels are built from one
//! decode. Animated WebP is refused.

use std::io::BufReader;

use image_webp::WebPDecoder;

use super::{
    Codec, FileFormat, Grid, Layout, Mode, Page, Storage, check_dimensions, stream_band_rows,
};
use crate::error::FormatError;
use crate::sample::{PixelKind, RawFormat};
use crate::source::{Source, SourceReader};

/// WebP's own limit: 14-bit sizes.
pub const MAX_SIDE: u32 = 16383;
/// Most bytes one whole decode may take (a 16383² RGBA image is about 1 GiB).
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

pub fn sniff(magic: &[u8]) -> bool {
    magic.len() >= 12 && &magic[..4] == b"RIFF" && &magic[8..12] == b"WEBP"
}

pub fn webp_error(e: image_webp::DecodingError) -> FormatError {
    FormatError::invalid(format!("WebP: {e}"))
}

/// A WebP decoder over the source, its headers read.
pub fn decoder(
    source: &Source,
) -> Result<WebPDecoder<BufReader<SourceReader<&Source>>>, FormatError> {
    WebPDecoder::new(BufReader::with_capacity(
        64 << 10,
        SourceReader::new(source, 0),
    ))
    .map_err(webp_error)
}

pub fn parse(source: &Source) -> Result<Layout, FormatError> {
    let d = decoder(source)?;
    if d.is_animated() {
        return Err(FormatError::unsupported("animated WebP"));
    }
    let (w, h) = d.dimensions();
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(FormatError::invalid(format!(
            "WebP of {w}x{h} (at most {MAX_SIDE} a side)"
        )));
    }
    let (width, height) = check_dimensions(u64::from(w), u64::from(h))?;
    let alpha = d.has_alpha();
    let bytes = u64::from(width) * u64::from(height) * if alpha { 4 } else { 3 };
    if bytes > MAX_DECODE_BYTES {
        return Err(FormatError::too_large(format!(
            "WebP of {width}x{height} needs {bytes} bytes decoded whole"
        )));
    }
    let (mode, kind) = if alpha {
        (Mode::Rgba, PixelKind::Rgba)
    } else {
        (Mode::Rgb, PixelKind::Rgb)
    };
    let band = stream_band_rows(width);
    Ok(Layout {
        format: FileFormat::WebP,
        pages: vec![Page {
            width,
            height,
            mode,
            raw: RawFormat::new(kind, 8),
            palette: None,
            grid: Grid::new(width, height, width, height, band),
            storage: Storage::Stream {
                offset: 0,
                length: source.len(),
                codec: Codec::WebPImage,
                interlaced: false,
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
