//! JPEG: markers walked up to the first scan (no entropy decoding). A baseline scan with
//! restart markers is cut into bands of whole restart intervals, found by scanning for the
//! markers (`decode::stream::jpeg_restart`); other scans decode only from their start.

use super::{
    Codec, FileFormat, Grid, Layout, Mode, Page, Restart, ScanLayout, Storage, check_dimensions,
    stream_band_rows,
};
use crate::error::FormatError;
use crate::sample::{PixelKind, RawFormat};
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
    /// Offset of the first entropy-coded byte (just after the SOS segment).
    pub entropy: u64,
    /// Offset of the SOF marker (its height field is patched for band decoding).
    pub sof: u64,
    /// DRI: MCUs per restart interval (0: no restart markers).
    pub restart_interval: u16,
    /// MCU size in pixels.
    pub mcu: (u32, u32),
    /// Components in the first scan (all of them when the scan is interleaved).
    pub scan_components: u8,
    /// The EXIF `Orientation` tag (1 when there is none).
    pub orientation: u16,
}

/// The `Orientation` tag (0x0112) of IFD0 in an EXIF block (the TIFF structure after
/// `Exif\0\0`), if it is there and readable.
pub fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(0..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |i: usize| -> Option<u16> {
        let b = tiff.get(i..i + 2)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |i: usize| -> Option<u32> {
        let b = tiff.get(i..i + 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count).find_map(|k| {
        let e = ifd + 2 + k * 12;
        // SHORT, one value, stored in the entry itself.
        (u16_at(e)? == 0x0112 && u16_at(e + 2)? == 3).then(|| u16_at(e + 8))?
    })
}

pub fn read_header(source: &Source) -> Result<JpegHeader, FormatError> {
    let mut pos = 2u64;
    let mut sof: Option<(u32, u32, u8, bool)> = None;
    let mut sof_at = 0u64;
    let mut mcu = (8u32, 8u32);
    let mut restart_interval = 0u16;
    let mut adobe = false;
    let mut orientation = 1u16;
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
                sof_at = pos;
                // Sampling factors: the MCU is the largest (h, v) times 8 when interleaved.
                let n = usize::from(f[5]).min(4);
                let mut comps = [0u8; 12];
                if source.read_exact_at(pos + 10, &mut comps[..n * 3]).is_ok() && n > 1 {
                    let (mut mh, mut mv) = (1u32, 1u32);
                    for c in comps[..n * 3].chunks_exact(3) {
                        mh = mh.max(u32::from(c[1] >> 4).clamp(1, 4));
                        mv = mv.max(u32::from(c[1] & 15).clamp(1, 4));
                    }
                    mcu = (mh * 8, mv * 8);
                }
            }
            0xDD if len >= 4 => {
                let mut r = [0u8; 2];
                source.read_exact_at(pos + 4, &mut r)?;
                restart_interval = u16::from_be_bytes(r);
            }
            0xEE => {
                let mut a = [0u8; 5];
                if len >= 7 && source.read_exact_at(pos + 4, &mut a).is_ok() && &a == b"Adobe" {
                    adobe = true;
                }
            }
            0xE1 if len > 8 => {
                // APP1: EXIF (a segment is at most 64 KB, so this read is bounded).
                let mut app = vec![0u8; (len - 2) as usize];
                if source.read_exact_at(pos + 4, &mut app).is_ok()
                    && app.starts_with(b"Exif\0\0")
                    && let Some(v) = exif_orientation(&app[6..])
                {
                    orientation = v;
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
                let mut ns = [0u8; 1];
                source.read_exact_at(pos + 4, &mut ns)?;
                return Ok(JpegHeader {
                    width,
                    height,
                    components,
                    progressive,
                    adobe,
                    scan: pos,
                    entropy: pos + 2 + len,
                    sof: sof_at,
                    restart_interval,
                    mcu: if ns[0] == 1 { (8, 8) } else { mcu },
                    scan_components: ns[0],
                    orientation,
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
    let restart = restart_layout(&h);
    // Without restart markers, a single interleaved baseline scan is cut at MCU rows.
    let scan = (restart.is_none()
        && !h.progressive
        && h.restart_interval == 0
        && h.scan_components == h.components)
        .then(|| ScanLayout {
            entropy: h.entropy,
            sof: h.sof,
            mcu_h: h.mcu.1,
            mcu_rows: h.height.div_ceil(h.mcu.1),
            mcus_per_row: h.width.div_ceil(h.mcu.0),
        });
    let band_h = match (&restart, &scan) {
        (Some(r), _) => r.band_rows,
        (None, Some(s)) => (stream_band_rows(h.width) / s.mcu_h).max(1) * s.mcu_h,
        (None, None) => stream_band_rows(h.width),
    };
    Ok(Layout {
        format: FileFormat::Jpeg,
        pages: vec![Page {
            width: h.width,
            height: h.height,
            mode,
            raw,
            palette: None,
            // Bands of exactly `band_h` rows (chunks of that height), not evened out: restart
            // bands must start where intervals realign with the left edge.
            grid: Grid::new(h.width, h.height, h.width, band_h, band_h),
            storage: Storage::Stream {
                offset: h.scan,
                length: source.len() - h.scan,
                codec: Codec::Jpeg,
                interlaced: h.progressive,
                restart,
                scan,
            },
            reduced: false,
            data: None,
            physical: None,
            orientation: crate::orientation::Orientation::from_exif(h.orientation),
        }],
    })
}

/// Bands made of whole restart intervals, when a baseline scan's intervals can start bands:
/// a band starts where an interval starts at the left edge, so bands are a multiple of
/// lcm(interval, MCUs per row) MCUs.
fn restart_layout(h: &JpegHeader) -> Option<Restart> {
    if h.progressive || h.restart_interval == 0 || h.scan_components != h.components {
        return None;
    }
    let interval = u64::from(h.restart_interval);
    let per_row = u64::from(h.width.div_ceil(h.mcu.0));
    let group_mcus = lcm(interval, per_row);
    let group_rows = group_mcus / per_row * u64::from(h.mcu.1);
    // A group taller than a quarter of the image gives too few bands to be worth it.
    if group_rows == 0 || group_rows * 4 > u64::from(h.height).max(1) {
        return None;
    }
    let want = u64::from(stream_band_rows(h.width));
    let groups = (want / group_rows).max(1);
    let band_rows = u32::try_from(groups * group_rows).ok()?;
    Some(Restart {
        entropy: h.entropy,
        sof: h.sof,
        interval: h.restart_interval,
        band_rows,
        intervals_per_band: groups * group_mcus / interval,
        intervals_per_group: group_mcus / interval,
        group_rows: u32::try_from(group_rows).ok()?,
        mcu_rows: u64::from(h.height.div_ceil(h.mcu.1)),
        mcus_per_row: per_row,
    })
}

fn lcm(a: u64, b: u64) -> u64 {
    let (mut x, mut y) = (a, b);
    while y != 0 {
        (x, y) = (y, x % y);
    }
    a.checked_div(x).map_or(0, |q| q * b)
}
