//! FITS: the primary HDU and every IMAGE extension with two or more axes are pages. The data
//! of an image are raw big-endian samples at a 2880-byte aligned offset, rows stored bottom-up
//! (FITS row 1 is the bottom of the picture): exactly PIL's raw descriptor with orientation −1,
//! so pages are raw row bands read for the columns in view, like PPM.
//!
//! A third axis of up to [`MAX_CHANNELS`] planes is the page's channels (read plane by plane
//! and interleaved); a longer one (a spectral cube) makes each plane a page of its own.
//! `BZERO`/`BSCALE` of the unsigned conventions make unsigned samples; other values scale
//! stored samples to physical ones; `BLANK` is the no-data value.

use std::sync::Arc;

use super::{FileFormat, Grid, Layout, Mode, Page, Storage, check_dimensions, raw_band_rows};
use crate::data::{DataInfo, SampleType};
use crate::error::FormatError;
use crate::sample::{PixelKind, RawFormat};
use crate::source::Source;

/// FITS blocks are this long; headers and data start on block boundaries.
pub const BLOCK: u64 = 2880;
/// Header blocks one HDU may have (a 2.8 MB header is already absurd).
const MAX_HEADER_BLOCKS: u64 = 1000;
/// HDUs looked at.
const MAX_HDUS: usize = 4096;
/// Planes of a third axis shown as channels; longer cubes are pages.
pub const MAX_CHANNELS: u64 = 64;
/// Pages at most (planes of a cube included).
const MAX_PAGES: usize = 4096;

/// Whether the file starts like a FITS file.
pub fn sniff(magic: &[u8]) -> bool {
    magic.starts_with(b"SIMPLE  =")
}

/// One header: its cards as (keyword, value text).
struct Header {
    cards: Vec<(String, String)>,
}

impl Header {
    fn get(&self, key: &str) -> Option<&str> {
        self.cards
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn int(&self, key: &str) -> Result<Option<i64>, FormatError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    FormatError::invalid(format!("FITS keyword {key} = '{v}' is not an integer"))
                })
            })
            .transpose()
    }

    fn real(&self, key: &str) -> Result<Option<f64>, FormatError> {
        self.get(key)
            .map(|v| {
                v.replace(['D', 'd'], "E")
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| {
                        FormatError::invalid(format!("FITS keyword {key} = '{v}' is not a number"))
                    })
            })
            .transpose()
    }

    fn string(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|v| v.trim_matches('\'').trim().to_string())
    }
}

/// The value text of a card: a quoted string (with '' escapes) or the token before a comment.
fn card_value(rest: &str) -> String {
    let rest = rest.trim_start();
    if let Some(body) = rest.strip_prefix('\'') {
        let mut out = String::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    break;
                }
            } else {
                out.push(c);
            }
        }
        return format!("'{}'", out.trim_end());
    }
    rest.split('/').next().unwrap_or("").trim().to_string()
}

/// Read the header starting at `at`; returns it and where the data start.
fn read_header(source: &Source, at: u64) -> Result<(Header, u64), FormatError> {
    let mut cards = Vec::new();
    let mut block = vec![0u8; BLOCK as usize];
    for b in 0..MAX_HEADER_BLOCKS {
        let pos = at + b * BLOCK;
        if pos + BLOCK > source.len() {
            return Err(FormatError::truncated(format!(
                "FITS header at offset {at} ends before its END card"
            )));
        }
        source.read_exact_at(pos, &mut block)?;
        for card in block.chunks_exact(80) {
            if !card.iter().all(|c| (0x20..0x7f).contains(c)) {
                return Err(FormatError::invalid(format!(
                    "FITS header at offset {at} holds non-ASCII bytes"
                )));
            }
            let text = std::str::from_utf8(card).unwrap_or("");
            let key = text[..8].trim_end().to_string();
            if key == "END" {
                return Ok((Header { cards }, pos + BLOCK));
            }
            if &text[8..10] == "= " {
                cards.push((key, card_value(&text[10..])));
            }
        }
    }
    Err(FormatError::invalid(format!(
        "FITS header at offset {at} has no END card in {MAX_HEADER_BLOCKS} blocks"
    )))
}

/// A FITS sample type: the type kept, whether stored samples have their sign bit flipped
/// (the unsigned conventions), and the physical scale left to apply.
type Samples = (SampleType, bool, Option<(f64, f64)>);

/// The sample type of BITPIX with BZERO/BSCALE: the unsigned conventions become unsigned types
/// (stored with the sign bit flipped).
fn sample_type(bitpix: i64, bzero: f64, bscale: f64) -> Result<Samples, FormatError> {
    let unit = bscale == 1.0;
    let (t, flip) = match bitpix {
        8 if unit && bzero == -128.0 => (SampleType::I8, true),
        8 => (SampleType::U8, false),
        16 if unit && bzero == 32768.0 => (SampleType::U16, true),
        16 => (SampleType::I16, false),
        32 if unit && bzero == 2_147_483_648.0 => (SampleType::U32, true),
        32 => (SampleType::I32, false),
        64 if unit && bzero == 9_223_372_036_854_775_808.0 => (SampleType::U64, true),
        64 => (SampleType::I64, false),
        -32 => (SampleType::F32, false),
        -64 => (SampleType::F64, false),
        b => {
            return Err(FormatError::invalid(format!("FITS BITPIX {b}")));
        }
    };
    let scale = (!flip && (bzero != 0.0 || bscale != 1.0)).then_some((bscale, bzero));
    Ok((t, flip, scale))
}

pub fn parse(source: &Source) -> Result<Layout, FormatError> {
    let mut pages = Vec::new();
    let mut at = 0u64;
    let mut skipped = Vec::new();
    for hdu in 0..MAX_HDUS {
        if at >= source.len() || pages.len() >= MAX_PAGES {
            break;
        }
        let (h, data) = match read_header(source, at) {
            Ok(x) => x,
            // Padding or junk after the last HDU: what came before stands.
            Err(e) if hdu > 0 => {
                log::warn!("FITS: stopped at offset {at}: {e}");
                break;
            }
            Err(e) => return Err(e),
        };
        let bitpix = h
            .int("BITPIX")?
            .ok_or_else(|| FormatError::invalid(format!("FITS HDU {hdu} has no BITPIX")))?;
        let naxis = h.int("NAXIS")?.unwrap_or(0);
        if !(0..=999).contains(&naxis) {
            return Err(FormatError::invalid(format!("FITS NAXIS {naxis}")));
        }
        let mut axes = Vec::with_capacity(naxis as usize);
        for i in 1..=naxis {
            let n = h.int(&format!("NAXIS{i}"))?.unwrap_or(0);
            if n < 0 {
                return Err(FormatError::invalid(format!("FITS NAXIS{i} = {n}")));
            }
            axes.push(n as u64);
        }
        let pcount = h.int("PCOUNT")?.unwrap_or(0).max(0) as u64;
        let gcount = h.int("GCOUNT")?.unwrap_or(1).max(0) as u64;
        let bytes = (bitpix.unsigned_abs() / 8).max(1);
        let elements = axes
            .iter()
            .try_fold(1u64, |a, &n| a.checked_mul(n))
            .map(|e| if naxis == 0 { 0 } else { e })
            .and_then(|e| e.checked_add(pcount))
            .and_then(|e| e.checked_mul(gcount))
            .and_then(|e| e.checked_mul(bytes))
            .ok_or_else(|| FormatError::too_large(format!("FITS HDU {hdu} data size")))?;
        let kind = if hdu == 0 {
            "IMAGE".to_string()
        } else {
            h.string("XTENSION").unwrap_or_default()
        };
        if kind == "IMAGE" && naxis >= 2 && axes[0] > 0 && axes[1] > 0 {
            image_pages(source, &h, hdu, data, bitpix, &axes, &mut pages)?;
        } else if naxis > 0 || hdu > 0 {
            let what = if h.get("ZIMAGE") == Some("T") {
                "tile-compressed image (.fz)".to_string()
            } else {
                format!("{kind} with {naxis} axes")
            };
            skipped.push(format!("HDU {hdu}: {what}"));
        }
        let padded = elements.div_ceil(BLOCK).saturating_mul(BLOCK);
        at = data.saturating_add(padded);
    }
    if pages.is_empty() {
        return Err(FormatError::unsupported(if skipped.is_empty() {
            "FITS file has no image".to_string()
        } else {
            format!(
                "FITS file has no image HDU Tessera reads ({})",
                skipped.join("; ")
            )
        }));
    }
    Ok(Layout {
        format: FileFormat::Fits,
        pages,
    })
}

/// The page(s) of one image HDU whose data start at `data`.
fn image_pages(
    source: &Source,
    h: &Header,
    hdu: usize,
    data: u64,
    bitpix: i64,
    axes: &[u64],
    pages: &mut Vec<Page>,
) -> Result<(), FormatError> {
    let (width, height) = check_dimensions(axes[0], axes[1])?;
    let depth = axes
        .iter()
        .skip(2)
        .try_fold(1u64, |a, &n| a.checked_mul(n))
        .ok_or_else(|| FormatError::too_large("FITS cube depth"))?;
    let bzero = h.real("BZERO")?.unwrap_or(0.0);
    let bscale = h.real("BSCALE")?.unwrap_or(1.0);
    if bscale == 0.0 {
        return Err(FormatError::invalid("FITS BSCALE is 0"));
    }
    let (t, flip, scale) = sample_type(bitpix, bzero, bscale)?;
    let stride = u64::from(width) * u64::from(t.bits() / 8);
    let plane_stride = stride * u64::from(height);
    super::check_span(
        data,
        plane_stride.saturating_mul(depth),
        source.len(),
        &format!("FITS HDU {hdu} data"),
    )?;
    let (channels, page_count) = if depth <= MAX_CHANNELS {
        (depth, 1)
    } else {
        (1, depth)
    };
    let mut info = DataInfo::new(t, channels as usize);
    info.scale = scale;
    info.unit = h.string("BUNIT").filter(|u| !u.is_empty());
    if !t.is_float()
        && let Some(blank) = h.int("BLANK")?
    {
        // In the stored representation: the unsigned conventions shift it by BZERO.
        info.nodata = Some(if flip {
            blank as f64 + bzero
        } else {
            blank as f64
        });
    }
    if channels > 1 {
        let names: Vec<String> = (1..=channels)
            .map(|i| {
                h.string(&format!("CNAME{i}"))
                    .or_else(|| h.string("CTYPE3").map(|c| format!("{c} {i}")))
                    .unwrap_or_default()
            })
            .collect();
        info = info.with_names(names);
    } else if let Some(name) = h.string("EXTNAME").filter(|n| !n.is_empty()) {
        info = info.with_names(vec![name]);
    }
    let info = Arc::new(info);
    let mut raw = RawFormat::new(PixelKind::Data(t), t.bits()).with_samples(channels as u8);
    raw.flip_sign = flip;
    // A band holds every channel: size it by all of them.
    let grid = Grid::new(
        width,
        height,
        width,
        height,
        raw_band_rows(stride * channels),
    );
    for p in 0..page_count.min((MAX_PAGES - pages.len()) as u64) {
        pages.push(Page {
            width,
            height,
            mode: Mode::Data,
            raw,
            palette: None,
            grid,
            storage: Storage::Raw {
                base: data + p * plane_stride,
                stride,
                bottom_up: true,
                planes: channels as u32,
                plane_stride,
            },
            reduced: false,
            data: Some(info.clone()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_values() {
        assert_eq!(card_value(" 'IMAGE   '           / ext"), "'IMAGE'");
        assert_eq!(card_value(" 'O''Brien'"), "'O'Brien'");
        assert_eq!(card_value("                  16 / bits"), "16");
    }

    #[test]
    fn unsigned_conventions() {
        let u16 = sample_type(16, 32768.0, 1.0).ok();
        assert_eq!(u16, Some((SampleType::U16, true, None)));
        let scaled = sample_type(16, 10.0, 0.5).ok();
        assert_eq!(scaled, Some((SampleType::I16, false, Some((0.5, 10.0)))));
        assert_eq!(
            sample_type(-32, 0.0, 1.0).ok(),
            Some((SampleType::F32, false, None))
        );
        assert!(sample_type(12, 0.0, 1.0).is_err());
    }
}
