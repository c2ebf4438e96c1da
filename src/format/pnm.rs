//! PNM family: P1–P6 and P7 (PAM). Binary forms are one raw block split into row bands; the
//! ASCII forms are indexed once (the byte offset of every band) so any band decodes alone.

use std::sync::Arc;

use super::{
    FileFormat, Grid, Layout, MAX_BAND_ROWS, Mode, Page, Storage, check_dimensions, check_span,
    raw_band_rows,
};
use crate::error::FormatError;
use crate::progress::Progress;
use crate::sample::{PixelKind, RawFormat};
use crate::source::Source;

/// Headers longer than this are not PNM headers (comments included).
const MAX_HEADER: usize = 1 << 20;

/// Streams bytes of the header with PNM's tokenising rules (comments from `#` to end of line).
struct HeaderReader<'a> {
    source: &'a Source,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> HeaderReader<'a> {
    fn new(source: &'a Source) -> Result<Self, FormatError> {
        let mut h = Self {
            source,
            buf: Vec::new(),
            pos: 2,
        };
        h.fill(4096)?;
        Ok(h)
    }

    /// Have at least `want` bytes buffered (less at the end of the file or header limit).
    fn fill(&mut self, want: usize) -> Result<(), FormatError> {
        let want = want.min(MAX_HEADER).min(self.source.len() as usize);
        if self.buf.len() < want {
            let start = self.buf.len();
            self.buf.resize(want, 0);
            let n = self
                .source
                .read_some(start as u64, &mut self.buf[start..])?;
            self.buf.truncate(start + n);
        }
        Ok(())
    }

    /// The byte at `pos`, reading more of the header as needed.
    fn at(&mut self, pos: usize) -> Option<u8> {
        if pos >= self.buf.len() {
            let _ = self.fill((pos + 1).max(self.buf.len() * 2));
        }
        self.buf.get(pos).copied()
    }

    fn skip_space_and_comments(&mut self) {
        while let Some(b) = self.at(self.pos) {
            if b == b'#' {
                while let Some(c) = self.at(self.pos) {
                    self.pos += 1;
                    if c == b'\n' || c == b'\r' {
                        break;
                    }
                }
            } else if b.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn number(&mut self, what: &str) -> Result<u64, FormatError> {
        self.skip_space_and_comments();
        let start = self.pos;
        while self.at(self.pos).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(if self.pos >= self.buf.len() {
                FormatError::truncated(format!("PNM header ends before the {what}"))
            } else {
                FormatError::invalid(format!("PNM header: expected the {what}"))
            });
        }
        std::str::from_utf8(&self.buf[start..self.pos])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&v| v <= u64::from(u32::MAX))
            .ok_or_else(|| FormatError::invalid(format!("PNM header: {what} is out of range")))
    }

    /// The single whitespace byte that ends a binary header.
    fn end_of_header(&mut self) -> Result<u64, FormatError> {
        match self.at(self.pos) {
            Some(b) if b.is_ascii_whitespace() => Ok(self.pos as u64 + 1),
            Some(_) => Err(FormatError::invalid(
                "PNM header: no whitespace before the data",
            )),
            None => Err(FormatError::truncated("PNM header ends before the data")),
        }
    }

    fn line(&mut self) -> Option<String> {
        self.at(self.pos)?;
        let start = self.pos;
        while self.at(self.pos).is_some_and(|b| b != b'\n') {
            self.pos += 1;
        }
        let line = String::from_utf8_lossy(&self.buf[start..self.pos]).into_owned();
        self.pos += 1;
        Some(line)
    }
}

pub fn parse(source: &Source, progress: &Progress) -> Result<Layout, FormatError> {
    let mut h = HeaderReader::new(source)?;
    let kind = h.at(1).unwrap_or(0);
    if kind == b'7' {
        return parse_pam(&mut h);
    }
    let width = h.number("width")?;
    let height = h.number("height")?;
    let (width, height) = check_dimensions(width, height)?;
    let maxval = if kind == b'1' || kind == b'4' {
        1
    } else {
        let m = h.number("maxval")?;
        if m == 0 || m > 65535 {
            return Err(FormatError::invalid(format!(
                "PNM maxval {m} (must be 1..65535)"
            )));
        }
        m as u32
    };
    let bits = if maxval > 255 { 16 } else { 8 };
    let (mode, raw) = match kind {
        b'1' | b'4' => (
            Mode::Bilevel,
            if kind == b'4' {
                RawFormat::new(
                    PixelKind::Gray {
                        white_is_zero: true,
                    },
                    1,
                )
            } else {
                // ASCII bilevel is indexed into one byte per sample, 1 = black.
                RawFormat::new(
                    PixelKind::Gray {
                        white_is_zero: true,
                    },
                    8,
                )
                .with_maxval(1)
            },
        ),
        b'2' | b'5' => (
            if bits == 16 { Mode::I16 } else { Mode::L },
            RawFormat::new(
                PixelKind::Gray {
                    white_is_zero: false,
                },
                bits,
            )
            .with_maxval(maxval),
        ),
        _ => (
            if bits == 16 { Mode::Rgb16 } else { Mode::Rgb },
            RawFormat::new(PixelKind::Rgb, bits).with_maxval(maxval),
        ),
    };
    if kind <= b'3' {
        // Plain PNM: the header ends at the first whitespace after the last number.
        let data = h.pos as u64;
        return index_plain(h.source, width, height, mode, raw, data, progress);
    }
    let data = h.end_of_header()?;
    raw_layout(h.source, width, height, mode, raw, data)
}

fn parse_pam(h: &mut HeaderReader<'_>) -> Result<Layout, FormatError> {
    let (mut w, mut ht, mut depth, mut maxval, mut tupltype) = (None, None, None, None, None);
    // Skip the rest of the "P7" line.
    h.line();
    loop {
        let Some(line) = h.line() else {
            return Err(FormatError::truncated("PAM header has no ENDHDR"));
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(2, char::is_whitespace);
        let key = parts.next().unwrap_or("");
        let value = parts.next().unwrap_or("").trim();
        let num = || -> Result<u64, FormatError> {
            value
                .parse::<u64>()
                .map_err(|_| FormatError::invalid(format!("PAM header: {key} {value:?}")))
        };
        match key {
            "ENDHDR" => break,
            "WIDTH" => w = Some(num()?),
            "HEIGHT" => ht = Some(num()?),
            "DEPTH" => depth = Some(num()?),
            "MAXVAL" => maxval = Some(num()?),
            "TUPLTYPE" => tupltype = Some(value.to_string()),
            _ => {}
        }
    }
    let missing = |k| FormatError::invalid(format!("PAM header has no {k}"));
    let (width, height) =
        check_dimensions(w.ok_or(missing("WIDTH"))?, ht.ok_or(missing("HEIGHT"))?)?;
    let depth = depth.ok_or(missing("DEPTH"))?;
    let maxval = maxval.ok_or(missing("MAXVAL"))?;
    if maxval == 0 || maxval > 65535 {
        return Err(FormatError::invalid(format!("PAM maxval {maxval}")));
    }
    let bits = if maxval > 255 { 16 } else { 8 };
    let wide = bits == 16;
    let tupl = tupltype.unwrap_or_default();
    let (mode, kind) = match (tupl.as_str(), depth) {
        ("BLACKANDWHITE", 1) => (
            Mode::Bilevel,
            PixelKind::Gray {
                white_is_zero: false,
            },
        ),
        ("BLACKANDWHITE_ALPHA", 2) => (Mode::La, PixelKind::GrayA),
        ("GRAYSCALE", 1) | ("", 1) => (
            if wide { Mode::I16 } else { Mode::L },
            PixelKind::Gray {
                white_is_zero: false,
            },
        ),
        ("GRAYSCALE_ALPHA", 2) | ("", 2) => {
            (if wide { Mode::La16 } else { Mode::La }, PixelKind::GrayA)
        }
        ("RGB", 3) | ("", 3) => (if wide { Mode::Rgb16 } else { Mode::Rgb }, PixelKind::Rgb),
        ("RGB_ALPHA", 4) | ("", 4) => (
            if wide { Mode::Rgba16 } else { Mode::Rgba },
            PixelKind::Rgba,
        ),
        _ => {
            return Err(FormatError::unsupported(format!(
                "PAM tuple type {tupl:?} with depth {depth}"
            )));
        }
    };
    let raw = RawFormat::new(kind, bits).with_maxval(maxval as u32);
    let data = h.pos as u64;
    raw_layout(h.source, width, height, mode, raw, data)
}

/// A binary raster: one raw block at `data`, split into bands.
fn raw_layout(
    source: &Source,
    width: u32,
    height: u32,
    mode: Mode,
    raw: RawFormat,
    data: u64,
) -> Result<Layout, FormatError> {
    let stride = raw.row_bytes(width);
    check_span(
        data,
        stride * u64::from(height),
        source.len(),
        "the PNM raster",
    )?;
    Ok(Layout {
        format: FileFormat::Pnm,
        pages: vec![Page {
            width,
            height,
            mode,
            raw,
            palette: None,
            grid: Grid::new(width, height, width, height, raw_band_rows(stride)),
            storage: Storage::Raw {
                base: data,
                stride,
                bottom_up: false,
                planes: 1,
                plane_stride: 0,
            },
            reduced: false,
            data: None,
            physical: None,
            orientation: crate::orientation::Orientation::IDENTITY,
        }],
    })
}

/// One pass over a plain (ASCII) raster, recording where each band's first sample starts.
fn index_plain(
    source: &Source,
    width: u32,
    height: u32,
    mode: Mode,
    raw: RawFormat,
    data: u64,
    progress: &Progress,
) -> Result<Layout, FormatError> {
    let spp = u64::from(raw.samples);
    // Bands sized by their decoded RGBA, like raw bands.
    let band_rows = raw_band_rows(u64::from(width) * 4).min(MAX_BAND_ROWS);
    let grid = Grid::new(width, height, width, height, band_rows);
    let bands = grid.unit_count() as usize;
    let samples_per_band = u64::from(grid.band_h) * u64::from(width) * spp;
    let bilevel = matches!(mode, Mode::Bilevel);
    let mut offsets = Vec::with_capacity(bands);
    let mut scanner = PlainScanner::new(source, data, bilevel);
    let total = u64::from(width) * u64::from(height) * spp;
    let mut seen = 0u64;
    while seen < total {
        if seen.is_multiple_of(samples_per_band) {
            let start = scanner.next_token_start()?;
            offsets.push(start);
            progress.update(start, source.len())?;
        }
        if scanner.next_sample()?.is_none() {
            return Err(FormatError::truncated(format!(
                "plain PNM raster has {seen} of {total} samples"
            )));
        }
        seen += 1;
    }
    let end = scanner.pos;
    let mut lengths: Vec<u64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
    lengths.push(end - offsets.last().copied().unwrap_or(end));
    Ok(Layout {
        format: FileFormat::Pnm,
        pages: vec![Page {
            width,
            height,
            mode,
            raw,
            palette: None,
            grid,
            storage: Storage::Indexed {
                offsets: Arc::new(offsets),
                lengths: Arc::new(lengths),
                pens: Arc::new(Vec::new()),
                codec: super::Codec::PnmPlain,
            },
            reduced: false,
            data: None,
            physical: None,
            orientation: crate::orientation::Orientation::IDENTITY,
        }],
    })
}

/// Reads decimal samples from a plain PNM raster through a buffer. Bilevel (P1) samples are
/// single digits that need no separator.
pub struct PlainScanner<'a> {
    source: &'a Source,
    buf: Vec<u8>,
    buf_start: u64,
    pub pos: u64,
    bilevel: bool,
}

impl<'a> PlainScanner<'a> {
    pub fn new(source: &'a Source, pos: u64, bilevel: bool) -> Self {
        Self {
            source,
            buf: Vec::new(),
            buf_start: pos,
            pos,
            bilevel,
        }
    }

    fn peek(&mut self) -> Result<Option<u8>, FormatError> {
        let rel = self.pos - self.buf_start;
        if rel >= self.buf.len() as u64 {
            self.buf_start = self.pos;
            self.buf.resize(1 << 20, 0);
            let n = self.source.read_some(self.pos, &mut self.buf)?;
            self.buf.truncate(n);
            if n == 0 {
                return Ok(None);
            }
        }
        Ok(Some(self.buf[(self.pos - self.buf_start) as usize]))
    }

    /// Skip whitespace and comments; the position of the next sample.
    pub fn next_token_start(&mut self) -> Result<u64, FormatError> {
        while let Some(b) = self.peek()? {
            if b == b'#' {
                while let Some(c) = self.peek()? {
                    self.pos += 1;
                    if c == b'\n' {
                        break;
                    }
                }
            } else if b.is_ascii_whitespace() {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(self.pos)
    }

    pub fn next_sample(&mut self) -> Result<Option<u32>, FormatError> {
        self.next_token_start()?;
        let mut v: u32 = 0;
        let mut digits = 0;
        while let Some(b) = self.peek()? {
            if !b.is_ascii_digit() {
                if digits == 0 {
                    return Err(FormatError::invalid(format!(
                        "plain PNM raster: unexpected byte {b:#04x} at offset {}",
                        self.pos
                    )));
                }
                break;
            }
            v = v.saturating_mul(10).saturating_add(u32::from(b - b'0'));
            digits += 1;
            self.pos += 1;
            if self.bilevel {
                break;
            }
        }
        Ok((digits > 0).then_some(v))
    }
}
