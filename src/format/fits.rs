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
                skipped.push(format!("HDU {hdu} at offset {at}: {e}"));
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
        } else if kind == "BINTABLE" && h.get("ZIMAGE") == Some("T") && naxis == 2 {
            let table = Table {
                data,
                row_bytes: axes[0],
                rows: axes[1],
                heap: h
                    .int("THEAP")?
                    .map_or(axes[0] * axes[1], |t| t.max(0) as u64),
                pcount,
            };
            match compressed_page(source, &h, hdu, &table) {
                Ok(page) => pages.push(page),
                Err(FormatError::Unsupported(why)) => skipped.push(format!("HDU {hdu}: {why}")),
                Err(e) => return Err(e),
            }
        } else if naxis > 0 || hdu > 0 {
            skipped.push(format!("HDU {hdu}: {kind} with {naxis} axes"));
        }
        let padded = elements.div_ceil(BLOCK).saturating_mul(BLOCK);
        at = data.saturating_add(padded);
    }
    if !pages.is_empty() && !skipped.is_empty() {
        log::info!("FITS: skipped {}", skipped.join("; "));
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

/// An image's samples as BITPIX with BZERO/BSCALE make them (see [`sample_type`]).
#[derive(Debug, Clone, Copy)]
struct Scaled {
    ty: SampleType,
    /// Stored samples have their sign bit flipped (the unsigned conventions).
    flip: bool,
    bzero: f64,
    /// Physical = stored · scale + offset, beyond the unsigned conventions.
    scale: Option<(f64, f64)>,
}

fn scaled_type(h: &Header, bitpix: i64) -> Result<Scaled, FormatError> {
    let bzero = h.real("BZERO")?.unwrap_or(0.0);
    let bscale = h.real("BSCALE")?.unwrap_or(1.0);
    if bscale == 0.0 {
        return Err(FormatError::invalid("FITS BSCALE is 0"));
    }
    let (ty, flip, scale) = sample_type(bitpix, bzero, bscale)?;
    Ok(Scaled {
        ty,
        flip,
        bzero,
        scale,
    })
}

/// What a page's samples are: its [`DataInfo`] (scale, unit, no-data from `blank`, channel
/// names) and the raw format its stored rows unpack with.
fn samples(h: &Header, s: Scaled, channels: usize, blank: Option<i64>) -> (DataInfo, RawFormat) {
    let Scaled {
        ty: t,
        flip,
        bzero,
        scale,
    } = s;
    let mut info = DataInfo::new(t, channels);
    info.scale = scale;
    info.unit = h.string("BUNIT").filter(|u| !u.is_empty());
    // In the stored representation: the unsigned conventions shift BLANK by BZERO.
    info.nodata = blank.map(|b| if flip { b as f64 + bzero } else { b as f64 });
    let info = info.with_names(channel_names(h, channels));
    let mut raw = RawFormat::new(PixelKind::Data(t), t.bits()).with_samples(channels as u8);
    raw.flip_sign = flip;
    (info, raw)
}

/// Channel names: `CNAMEn`, or `CTYPE3` and the plane number; one channel takes `EXTNAME`.
/// Empty names leave the defaults (see [`DataInfo::with_names`]).
fn channel_names(h: &Header, channels: usize) -> Vec<String> {
    if channels == 1 {
        // fpack names its tables COMPRESSED_IMAGE: not a name for the data.
        let name = h.string("EXTNAME").filter(|n| n != "COMPRESSED_IMAGE");
        return vec![name.unwrap_or_default()];
    }
    (1..=channels)
        .map(|i| {
            h.string(&format!("CNAME{i}"))
                .or_else(|| h.string("CTYPE3").map(|c| format!("{c} {i}")))
                .unwrap_or_default()
        })
        .collect()
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
    let scaled = scaled_type(h, bitpix)?;
    let t = scaled.ty;
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
    let blank = if t.is_float() { None } else { h.int("BLANK")? };
    let (info, raw) = samples(h, scaled, channels as usize, blank);
    let info = Arc::new(info);
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
            physical: crate::physical::from_fits(&|k| h.string(k)),
            orientation: crate::orientation::Orientation::IDENTITY,
        });
    }
    Ok(())
}

/// Where a binary table's rows and heap are.
struct Table {
    data: u64,
    row_bytes: u64,
    rows: u64,
    /// Heap offset from the start of the data.
    heap: u64,
    pcount: u64,
}

/// How the tiles of a tile-compressed image (`.fz`, the FITS tiled image convention) are coded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TileCodec {
    Rice {
        block: usize,
        bytepix: usize,
    },
    /// gzip of the big-endian values; `shuffled`: GZIP_2, bytes grouped most significant first.
    Gzip {
        shuffled: bool,
    },
    None,
}

impl TileCodec {
    pub fn name(self) -> &'static str {
        match self {
            TileCodec::Rice { .. } => "RICE_1",
            TileCodec::Gzip { shuffled: false } => "GZIP_1",
            TileCodec::Gzip { shuffled: true } => "GZIP_2",
            TileCodec::None => "NOCOMPRESS",
        }
    }
}

/// How quantized floats come back: `value = (q − dither + 0.5) · scale + zero`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dither {
    None,
    /// SUBTRACTIVE_DITHER_1 (and _2, where −2147483646 means exactly 0.0).
    Subtractive {
        zero_value: bool,
    },
}

/// How quantized float tiles come back.
#[derive(Debug, Clone)]
pub struct Quant {
    /// Per tile: (ZSCALE, ZZERO).
    pub per_tile: Vec<(f64, f64)>,
    pub dither: Dither,
    /// ZDITHER0: where the tiles' dither sequence starts.
    pub seed: i64,
}

/// The tiles of a tile-compressed image: one per table row, x fastest, then FITS rows from the
/// bottom, then planes.
#[derive(Debug, Clone)]
pub struct TileTable {
    pub codec: TileCodec,
    pub tile_w: u32,
    pub tile_h: u32,
    pub across: u32,
    pub down: u32,
    pub planes: u32,
    /// Full image height (rows are stored bottom-up).
    pub height: u32,
    /// File offset and length of each tile's compressed bytes; a tile that could not be
    /// compressed has its gzip'd raw values in `fallback` instead.
    pub tiles: Vec<(u64, u64)>,
    pub fallback: Vec<(u64, u64)>,
    /// The integer type the codec produces (`bytepix`), before any quantization is undone.
    pub stored: SampleType,
    /// The raw (uncompressed) type of fallback tiles: the image's ZBITPIX.
    pub raw: SampleType,
    /// Quantized floats: how to undo the quantization.
    pub quant: Option<Quant>,
    /// Stored value meaning no-data (ZBLANK) in the quantized integers.
    pub zblank: Option<i64>,
    /// Added to decoded values: BZERO of the unsigned conventions (stored signed), else 0.
    pub shift: f64,
}

impl TileTable {
    /// Index of tile (column `c`, FITS tile row `t`, plane `p`).
    pub fn index(&self, c: u32, t: u32, p: u32) -> usize {
        ((u64::from(p) * u64::from(self.down) + u64::from(t)) * u64::from(self.across)
            + u64::from(c)) as usize
    }

    /// FITS tile rows holding image rows `y0..y1` (image rows are top-down).
    pub fn tile_rows(&self, y0: u32, y1: u32) -> std::ops::RangeInclusive<u32> {
        let (f0, f1) = (self.height - y1, self.height - y0 - 1);
        (f0 / self.tile_h)..=(f1 / self.tile_h)
    }
}

/// A column of a binary table: byte offset in a row and its TFORM type letter.
fn column(h: &Header, name: &str) -> Result<Option<(u64, char)>, FormatError> {
    let fields = h.int("TFIELDS")?.unwrap_or(0).clamp(0, 999);
    let mut at = 0u64;
    for i in 1..=fields {
        let form = h.string(&format!("TFORM{i}")).unwrap_or_default();
        let digits: String = form.chars().take_while(|c| c.is_ascii_digit()).collect();
        let repeat: u64 = if digits.is_empty() {
            1
        } else {
            digits
                .parse()
                .map_err(|_| FormatError::invalid(format!("FITS TFORM{i} '{form}'")))?
        };
        let letter = form[digits.len()..].chars().next().unwrap_or(' ');
        let width = match letter {
            'L' | 'B' | 'A' => 1,
            'I' => 2,
            'J' | 'E' => 4,
            'K' | 'D' | 'C' | 'P' => 8,
            'M' | 'Q' => 16,
            'X' => 0,
            _ => return Err(FormatError::invalid(format!("FITS TFORM{i} '{form}'"))),
        };
        let bytes = if letter == 'X' {
            repeat.div_ceil(8)
        } else if matches!(letter, 'P' | 'Q') {
            width
        } else {
            repeat.saturating_mul(width)
        };
        if h.string(&format!("TTYPE{i}")).as_deref() == Some(name) {
            return Ok(Some((at, letter)));
        }
        at = at.saturating_add(bytes);
    }
    Ok(None)
}

/// One page from a tile-compressed image table.
fn compressed_page(
    source: &Source,
    h: &Header,
    hdu: usize,
    t: &Table,
) -> Result<Page, FormatError> {
    let zbitpix = h
        .int("ZBITPIX")?
        .ok_or_else(|| FormatError::invalid(format!("FITS HDU {hdu}: no ZBITPIX")))?;
    let znaxis = h.int("ZNAXIS")?.unwrap_or(0);
    if !(2..=999).contains(&znaxis) {
        return Err(FormatError::unsupported(format!(
            "compressed image with {znaxis} axes"
        )));
    }
    let mut axes = Vec::new();
    for i in 1..=znaxis {
        let n = h.int(&format!("ZNAXIS{i}"))?.unwrap_or(0);
        if n <= 0 {
            return Err(FormatError::invalid(format!(
                "FITS HDU {hdu}: ZNAXIS{i} = {n}"
            )));
        }
        axes.push(n as u64);
    }
    let (width, height) = check_dimensions(axes[0], axes[1])?;
    let planes: u64 = axes[2..]
        .iter()
        .try_fold(1u64, |a, &n| a.checked_mul(n))
        .unwrap_or(u64::MAX);
    if planes > MAX_CHANNELS {
        return Err(FormatError::unsupported(format!(
            "compressed cube of {planes} planes (at most {MAX_CHANNELS})"
        )));
    }
    let tile = |i: i64, default: u64| -> Result<u64, FormatError> {
        let v = h
            .int(&format!("ZTILE{i}"))?
            .map_or(default, |v| v.max(0) as u64);
        Ok(v)
    };
    let tile_w = tile(1, axes[0])?.clamp(1, axes[0]) as u32;
    let tile_h = tile(2, 1)?.clamp(1, axes[1]) as u32;
    for i in 3..=znaxis {
        if tile(i, 1)? != 1 {
            return Err(FormatError::unsupported("compressed tiles spanning planes"));
        }
    }
    let across = width.div_ceil(tile_w);
    let down = height.div_ceil(tile_h);
    let count = u64::from(across) * u64::from(down) * planes;
    if count != t.rows {
        return Err(FormatError::invalid(format!(
            "FITS HDU {hdu}: {} table rows for {count} tiles",
            t.rows
        )));
    }
    let zval = |name: &str| -> Result<Option<i64>, FormatError> {
        for i in 1..=9 {
            if h.string(&format!("ZNAME{i}")).as_deref() == Some(name) {
                return h.int(&format!("ZVAL{i}"));
            }
        }
        Ok(None)
    };
    let cmp = h.string("ZCMPTYPE").unwrap_or_default();
    let quantized = zbitpix < 0 && column(h, "ZSCALE")?.is_some();
    let default_bytepix: i64 = if quantized { 4 } else { zbitpix.abs() / 8 };
    let codec = match cmp.as_str() {
        "RICE_1" | "RICE_ONE" => {
            let block = zval("BLOCKSIZE")?.unwrap_or(32);
            let bytepix = zval("BYTEPIX")?.unwrap_or(default_bytepix);
            if !(1..=64).contains(&block) || !matches!(bytepix, 1 | 2 | 4) {
                return Err(FormatError::invalid(format!(
                    "FITS HDU {hdu}: RICE block {block}, {bytepix} bytes a pixel"
                )));
            }
            TileCodec::Rice {
                block: block as usize,
                bytepix: bytepix as usize,
            }
        }
        "GZIP_1" => TileCodec::Gzip { shuffled: false },
        "GZIP_2" => TileCodec::Gzip { shuffled: true },
        "NOCOMPRESS" => TileCodec::None,
        other => {
            return Err(FormatError::unsupported(format!(
                "tile-compressed image with {other} (RICE_1, GZIP_1, GZIP_2 are read)"
            )));
        }
    };
    let (raw, _, _) = sample_type(zbitpix, 0.0, 1.0)?;
    let stored = if quantized {
        SampleType::I32
    } else {
        match codec {
            TileCodec::Rice { bytepix: 1, .. } => SampleType::U8,
            TileCodec::Rice { bytepix: 2, .. } => SampleType::I16,
            TileCodec::Rice { .. } => SampleType::I32,
            _ => raw,
        }
    };
    // Descriptors of the compressed bytes (and of gzip'd raw fallbacks) in the heap.
    let heap = t.data.saturating_add(t.heap);
    super::check_span(
        t.data,
        t.row_bytes.saturating_mul(t.rows),
        source.len(),
        &format!("FITS HDU {hdu} table"),
    )?;
    if t.row_bytes.saturating_mul(t.rows) > crate::format::tiff::MAX_CHUNK_BYTES {
        return Err(FormatError::too_large(format!(
            "FITS HDU {hdu}: a tile table of {} rows of {} bytes",
            t.rows, t.row_bytes
        )));
    }
    let mut table = vec![0u8; (t.row_bytes * t.rows) as usize];
    source.read_exact_at(t.data, &mut table)?;
    let row = |i: u64| &table[(i * t.row_bytes) as usize..((i + 1) * t.row_bytes) as usize];
    let read = |bytes: &[u8], at: u64, n: usize| -> Option<u64> {
        let s = bytes.get(at as usize..at as usize + n)?;
        let mut b = [0u8; 8];
        b[8 - n..].copy_from_slice(s);
        Some(u64::from_be_bytes(b))
    };
    let descriptors = |name: &str| -> Result<Option<Vec<(u64, u64)>>, FormatError> {
        let Some((at, letter)) = column(h, name)? else {
            return Ok(None);
        };
        let n = match letter {
            'P' => 4,
            'Q' => 8,
            _ => {
                return Err(FormatError::invalid(format!(
                    "FITS column {name} is not an array"
                )));
            }
        };
        let mut out = Vec::with_capacity(t.rows as usize);
        for i in 0..t.rows {
            let r = row(i);
            let (len, off) = (read(r, at, n), read(r, at + n as u64, n));
            let (Some(len), Some(off)) = (len, off) else {
                return Err(FormatError::invalid(format!(
                    "FITS column {name} past its row"
                )));
            };
            if off.saturating_add(len) > t.pcount.saturating_add(t.row_bytes * t.rows) {
                return Err(FormatError::invalid(format!(
                    "FITS tile {i} lies past the heap"
                )));
            }
            out.push((heap.saturating_add(off), len));
        }
        Ok(Some(out))
    };
    let tiles = descriptors("COMPRESSED_DATA")?
        .ok_or_else(|| FormatError::invalid(format!("FITS HDU {hdu}: no COMPRESSED_DATA")))?;
    let fallback = descriptors("GZIP_COMPRESSED_DATA")?.unwrap_or_default();
    for &(off, len) in tiles.iter().chain(&fallback) {
        super::check_span(off, len, source.len(), &format!("FITS HDU {hdu} tile"))?;
    }
    let scalar = |name: &str| -> Result<Option<Vec<f64>>, FormatError> {
        let Some((at, letter)) = column(h, name)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(t.rows as usize);
        for i in 0..t.rows {
            let r = row(i);
            let v = match letter {
                'D' => read(r, at, 8).map(f64::from_bits),
                'E' => read(r, at, 4).map(|b| f64::from(f32::from_bits(b as u32))),
                'J' => read(r, at, 4).map(|b| f64::from(b as u32 as i32)),
                'K' => read(r, at, 8).map(|b| b as i64 as f64),
                _ => None,
            };
            out.push(v.ok_or_else(|| FormatError::invalid(format!("FITS column {name}")))?);
        }
        Ok(Some(out))
    };
    let quant = if quantized {
        let scales = scalar("ZSCALE")?.unwrap_or_default();
        let zeros = scalar("ZZERO")?
            .ok_or_else(|| FormatError::invalid(format!("FITS HDU {hdu}: ZSCALE without ZZERO")))?;
        let dither = match h.string("ZQUANTIZ").as_deref() {
            Some("SUBTRACTIVE_DITHER_1") => Dither::Subtractive { zero_value: false },
            Some("SUBTRACTIVE_DITHER_2") => Dither::Subtractive { zero_value: true },
            _ => Dither::None,
        };
        let seed = h.int("ZDITHER0")?.unwrap_or(1);
        Some(Quant {
            per_tile: scales.into_iter().zip(zeros).collect(),
            dither,
            seed,
        })
    } else {
        None
    };
    let mut scaled = scaled_type(h, zbitpix)?;
    if quantized {
        // Quantized floats come back as floats, unscaled.
        scaled = Scaled {
            ty: SampleType::F32,
            flip: false,
            scale: None,
            ..scaled
        };
    }
    let (out_type, flip, bzero) = (scaled.ty, scaled.flip, scaled.bzero);
    let channels = planes as usize;
    let blank = if quantized {
        None
    } else {
        h.int("BLANK")?.or(h.int("ZBLANK")?)
    };
    let (info, raw_format) = samples(h, scaled, channels, blank);
    // Units: a tile column by a band of whole tile rows (row tiles are grouped into bands).
    let stride = u64::from(width) * u64::from(out_type.bits() / 8) * planes;
    let band = if tile_h == 1 {
        raw_band_rows(stride)
    } else {
        tile_h
    };
    let grid = Grid::new(width, height, tile_w, band, band);
    let table = TileTable {
        codec,
        tile_w,
        tile_h,
        across,
        down,
        planes: planes as u32,
        height,
        tiles,
        fallback,
        stored,
        raw,
        quant,
        zblank: h.int("ZBLANK")?,
        shift: if flip { bzero } else { 0.0 },
    };
    Ok(Page {
        width,
        height,
        mode: Mode::Data,
        raw: raw_format,
        palette: None,
        grid,
        storage: Storage::Tiles(Arc::new(table)),
        reduced: false,
        data: Some(Arc::new(info)),
        physical: crate::physical::from_fits(&|k| h.string(k)),
        orientation: crate::orientation::Orientation::IDENTITY,
    })
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
