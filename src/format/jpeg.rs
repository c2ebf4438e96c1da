//! JPEG: markers walked up to the first scan (no entropy decoding). The scan decodes only from
//! its start, so each band is a descriptor that streams from the SOS (random access by restart
//! markers and checkpoints comes in a later issue).

use super::{
    Codec, FileFormat, Grid, Layout, Mode, Page, Storage, check_dimensions, raw_band_rows,
};
use crate::decode::raw::{PixelKind, RawFormat};
use crate::error::FormatError;
use crate::source::Source;

/// What the header says about a JPEG.
#[derive(Debug, Clone, Copy)]
pub struct JpegHeader {
    pub width: u32,
    pub height: u32,
    pub components: u8,
    pub progressive: bool,
    /// An Adobe APP14 marker: CMYK is then stored inverted.
    pub adobe: bool,
    /// Offset of the first SOS marker.
    pub scan: u64,
}

pub fn read_header(source: &Source) -> Result<JpegHeader, FormatError> {
    let mut pos = 2u64;
    let mut sof: Option<(u32, u32, u8, bool)> = None;
    let mut adobe = false;
    for _ in 0..10_000 {
        let mut m = [0u8; 4];
        source
            .read_exact_at(pos, &mut m)
            .map_err(|_| FormatError::truncated("JPEG header ends before the first scan"))?;
        if m[0] != 0xFF {
            return Err(FormatError::invalid(format!(
                "JPEG: expected a marker at offset {pos}"
            )));
        }
        let marker = m[1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        let len = u64::from(u16::from_be_bytes([m[2], m[3]]));
        if len < 2 {
            return Err(FormatError::invalid(format!(
                "JPEG marker {marker:#04x} length {len}"
            )));
        }
        match marker {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                let mut f = [0u8; 6];
                source.read_exact_at(pos + 4, &mut f)?;
                let h = u32::from(u16::from_be_bytes([f[1], f[2]]));
                let w = u32::from(u16::from_be_bytes([f[3], f[4]]));
                if !matches!(marker, 0xC0..=0xC2) {
                    return Err(FormatError::unsupported(format!(
                        "JPEG process (SOF{})",
                        marker - 0xC0
                    )));
                }
                sof = Some((w, h, f[5], marker == 0xC2));
            }
            0xEE => {
                let mut a = [0u8; 5];
                if len >= 7 && source.read_exact_at(pos + 4, &mut a).is_ok() && &a == b"Adobe" {
                    adobe = true;
                }
            }
            0xDA => {
                let (w, h, components, progressive) =
                    sof.ok_or_else(|| FormatError::invalid("JPEG scan before any frame header"))?;
                let (width, height) = check_dimensions(u64::from(w), u64::from(h))?;
                if !matches!(components, 1 | 3 | 4) {
                    return Err(FormatError::unsupported(format!(
                        "JPEG with {components} components"
                    )));
                }
                return Ok(JpegHeader {
                    width,
                    height,
                    components,
                    progressive,
                    adobe,
                    scan: pos,
                });
            }
            0xD9 => break,
            _ => {}
        }
        pos += 2 + len;
    }
    Err(FormatError::invalid("JPEG has no scan"))
}

pub fn parse(source: &Source) -> Result<Layout, FormatError> {
    let h = read_header(source)?;
    let (mode, raw) = match h.components {
        1 => (
            Mode::L,
            RawFormat::new(
                PixelKind::Gray {
                    white_is_zero: false,
                },
                8,
            ),
        ),
        4 => (
            Mode::Cmyk,
            RawFormat::new(PixelKind::Cmyk { inverted: h.adobe }, 8),
        ),
        _ => (Mode::Rgb, RawFormat::new(PixelKind::Rgb, 8)),
    };
    Ok(Layout {
        format: FileFormat::Jpeg,
        pages: vec![Page {
            width: h.width,
            height: h.height,
            mode,
            raw,
            palette: None,
            grid: Grid::new(
                h.width,
                h.height,
                h.width,
                h.height,
                raw_band_rows(u64::from(h.width) * 4),
            ),
            storage: Storage::Stream {
                offset: h.scan,
                length: source.len() - h.scan,
                codec: Codec::Jpeg,
                interlaced: h.progressive,
            },
            reduced: false,
        }],
    })
}
