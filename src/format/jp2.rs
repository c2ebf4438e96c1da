//! JPEG 2000: JP2 files and raw codestreams (`.j2k`, `.j2c`).
//!
//! The codestream's main header (SIZ, COD) and its tile-part headers (SOT) are parsed here;
//! OpenJPEG (`sys::openjpeg`) only ever decodes. Each codestream tile is a descriptor: its
//! offset and length come from the SOT markers. The codestream's own resolution levels are the
//! image's pyramid: page *r* is the image reduced 2^r times, decoded with OpenJPEG's reduce
//! factor, never from a full-resolution decode. A unit is a rectangle of whole tiles (one tile
//! where tiles are big enough), or, for an untiled image, a 1024-pixel square of the one tile;
//! units of a tiled codestream are cut into 512-row bands and 512-column windows: each piece is an area decode, so a view decodes within a tile
//! only the area it needs.

use std::sync::Arc;

use super::{Extent, FileFormat, Grid, Layout, Mode, Page, Storage, check_dimensions, check_span};
use crate::data::{DataInfo, SampleType};
use crate::error::FormatError;
use crate::sample::{PixelKind, RawFormat};
use crate::source::Source;

/// Most tile-parts we index (a hostile file could claim millions of tiny ones).
const MAX_TILE_PARTS: usize = 1 << 20;
/// Longest main header we read (PPM/TLM markers make it long; 16 MB is far beyond real files).
const MAX_MAIN_HEADER: u64 = 16 << 20;
/// Most components we accept.
pub const MAX_COMPONENTS: usize = 64;
/// Side of the pieces of a tiled codestream: row bands of units, column windows of bands,
/// each an area decode, so a view decodes the rows and columns it needs. Every area decode
/// parses the packet headers of its whole tile, so smaller pieces repeat that work (256 made
/// the benchmark's viewport 30% slower); an untiled codestream's pieces are its 1024-pixel
/// units for the same reason.
const TILED_PIECE_SIDE: u32 = 512;
/// Side of a unit of an untiled image (or of tiles smaller than this), at its own level.
const UNIT_SIDE: u32 = 1024;
/// Smallest unit side at reduced levels: they group tiles so a unit is not a sliver. At full
/// resolution a unit is one tile (one descriptor per codestream tile) down to 64 pixels.
const MIN_UNIT_SIDE: u32 = 256;
const MIN_TILE_UNIT_SIDE: u32 = 64;

pub fn sniff(magic: &[u8]) -> bool {
    magic.starts_with(&[0, 0, 0, 12, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A])
        || magic.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
}

/// One component of the codestream (SIZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub precision: u8,
    pub signed: bool,
    pub dx: u8,
    pub dy: u8,
}

/// How the decoded components become pixels.
#[derive(Debug, Clone, PartialEq)]
pub enum Color {
    Gray,
    GrayAlpha,
    Rgb,
    Rgba,
    /// sYCC (JP2 `colr` 18) or Aperio-style YCbCr TIFF tiles: converted to RGB.
    Ycc,
    /// JP2 `pclr`: one index component through a palette.
    Palette(Arc<Vec<[u8; 4]>>),
    /// Anything else (more than 8 bits, signed, many components): a data page.
    Data(SampleType),
}

/// A codestream's main header and where its tiles are.
#[derive(Debug, Clone)]
pub struct Codestream {
    /// Image area on the reference grid: `x0..x1`, `y0..y1` (XOsiz..Xsiz).
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
    pub tile_w: u32,
    pub tile_h: u32,
    pub tile_x0: u32,
    pub tile_y0: u32,
    pub tiles_across: u32,
    pub tiles_down: u32,
    pub components: Vec<Component>,
    /// Decomposition levels (the fewest of COD and COC): the most the image can be reduced.
    pub levels: u8,
    /// Multiple component transform on (RGB stored as YCbCr/RCT, undone by the decoder).
    pub mct: bool,
    /// File position of SOC and the main header's length (up to the first SOT).
    pub header: (u64, u64),
    /// Per tile, its tile-parts as (file offset of SOT, length including the SOT marker).
    pub tiles: Vec<Vec<(u64, u64)>>,
    /// The codestream ended before every tile was found (a truncated file).
    pub truncated: bool,
    pub color: Color,
}

impl Codestream {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }

    /// Size of the image reduced 2^r times (the decoder's rounding).
    pub fn level_size(&self, r: u32) -> (u32, u32) {
        let d = |v: u32| v.div_ceil(1 << r);
        (d(self.x1) - d(self.x0), d(self.y1) - d(self.y0))
    }

    /// The reference-grid area of level-`r` pixels `e`.
    pub fn reference_area(&self, r: u32, e: &Extent) -> (u32, u32, u32, u32) {
        let (ox, oy) = (self.x0.div_ceil(1 << r), self.y0.div_ceil(1 << r));
        let f = |v: u32, o: u32, lo: u32, hi: u32| {
            (u64::from(v + o) << r).clamp(u64::from(lo), u64::from(hi)) as u32
        };
        (
            f(e.x0, ox, self.x0, self.x1),
            f(e.y0, oy, self.y0, self.y1),
            f(e.x1, ox, self.x0, self.x1),
            f(e.y1, oy, self.y0, self.y1),
        )
    }

    /// Rows of a band and columns of a window (see [`TILED_PIECE_SIDE`]).
    pub fn piece_side(&self) -> u32 {
        if self.tiles.len() > 1 {
            TILED_PIECE_SIDE
        } else {
            UNIT_SIDE
        }
    }

    /// Tiles (row-major indices) a reference-grid area touches.
    pub fn tiles_in(&self, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> Vec<usize> {
        let col =
            |x: u32| (x.saturating_sub(self.tile_x0) / self.tile_w).min(self.tiles_across - 1);
        let row = |y: u32| (y.saturating_sub(self.tile_y0) / self.tile_h).min(self.tiles_down - 1);
        let (c0, c1) = (col(x0), col(x1.saturating_sub(1).max(x0)));
        let (r0, r1) = (row(y0), row(y1.saturating_sub(1).max(y0)));
        let mut out = Vec::new();
        for r in r0..=r1 {
            for c in c0..=c1 {
                out.push((r * self.tiles_across + c) as usize);
            }
        }
        out
    }

    /// Stored bytes of the given tiles (their tile-parts).
    pub fn tile_bytes(&self, tiles: &[usize]) -> u64 {
        tiles
            .iter()
            .filter_map(|&t| self.tiles.get(t))
            .flatten()
            .map(|p| p.1)
            .sum()
    }

    /// The page of level `r`: its grid of units and its pixel format.
    fn page(self: &Arc<Self>, r: u32) -> Result<Page, FormatError> {
        let (w, h) = self.level_size(r);
        let (width, height) = check_dimensions(u64::from(w), u64::from(h))?;
        let aligned = self.x0 == 0 && self.y0 == 0 && self.tile_x0 == 0 && self.tile_y0 == 0;
        let side = |t: u32| {
            if aligned && self.tiles.len() > 1 && t.is_multiple_of(1 << r) {
                let t = t >> r;
                // Whole tiles, grouped until a unit is at least the minimum side.
                let min = if r == 0 {
                    MIN_TILE_UNIT_SIDE
                } else {
                    MIN_UNIT_SIDE
                };
                t * min.div_ceil(t).max(1)
            } else {
                UNIT_SIDE
            }
        };
        let (cw, ch) = (side(self.tile_w), side(self.tile_h));
        let (mode, raw, palette, data) = pixel_format(&self.color, self.components.len())?;
        Ok(Page {
            width,
            height,
            mode,
            raw,
            palette,
            // Tiles taller than a band are cut into row bands, each decoded as an area.
            grid: Grid::new(width, height, cw, ch, self.piece_side()),
            storage: Storage::J2k {
                stream: self.clone(),
                reduce: r as u8,
            },
            reduced: r > 0,
            data,
            physical: None,
            orientation: crate::orientation::Orientation::IDENTITY,
        })
    }
}

type Format = (
    Mode,
    RawFormat,
    Option<Arc<Vec<[u8; 4]>>>,
    Option<Arc<DataInfo>>,
);

/// Mode and stored-row format of decoded samples (8-bit rows, or big-endian data samples).
pub fn pixel_format(color: &Color, channels: usize) -> Result<Format, FormatError> {
    let eight = |kind, mode| Ok((mode, RawFormat::new(kind, 8), None, None));
    match color {
        Color::Gray => eight(
            PixelKind::Gray {
                white_is_zero: false,
            },
            Mode::L,
        ),
        Color::GrayAlpha => eight(PixelKind::GrayA, Mode::La),
        Color::Rgb | Color::Ycc => eight(PixelKind::Rgb, Mode::Rgb),
        Color::Rgba => eight(PixelKind::Rgba, Mode::Rgba),
        Color::Palette(p) => Ok((
            Mode::P,
            RawFormat::new(PixelKind::Palette, 8),
            Some(p.clone()),
            None,
        )),
        Color::Data(t) => {
            let mut info = DataInfo::new(*t, channels);
            if channels == 3 {
                info.rgb = true;
                info = info.with_names(vec!["R".into(), "G".into(), "B".into()]);
            }
            let raw = RawFormat::new(PixelKind::Data(*t), t.bits()).with_samples(channels as u8);
            Ok((Mode::Data, raw, None, Some(Arc::new(info))))
        }
    }
}

/// The colour of components as a plain codestream (or a TIFF tile) describes them.
pub fn default_color(components: &[Component], ycc: bool) -> Color {
    let n = components.len();
    let eight = components.iter().all(|c| c.precision <= 8 && !c.signed);
    let same = components
        .iter()
        .all(|c| c.precision == components[0].precision && c.signed == components[0].signed);
    match (n, eight) {
        (1, true) => Color::Gray,
        (2, true) => Color::GrayAlpha,
        (3, true) if ycc => Color::Ycc,
        (3, true) => Color::Rgb,
        (4, true) => Color::Rgba,
        _ => {
            let c = components[0];
            let bits = if same {
                components[0].precision
            } else {
                components.iter().map(|c| c.precision).max().unwrap_or(16)
            };
            Color::Data(match (c.signed, bits) {
                (false, 0..=8) => SampleType::U8,
                (false, 9..=16) => SampleType::U16,
                (false, _) => SampleType::U32,
                (true, 0..=8) => SampleType::I8,
                (true, 9..=16) => SampleType::I16,
                (true, _) => SampleType::I32,
            })
        }
    }
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Parse a main header held in memory (SOC through the marker before the first SOT), as a
/// TIFF tile's codestream is: the sizes and components, for checks before decoding.
pub fn parse_main_header(bytes: &[u8]) -> Result<Codestream, FormatError> {
    if !bytes.starts_with(&[0xFF, 0x4F]) {
        return Err(FormatError::invalid(
            "JPEG 2000 codestream without SOC marker",
        ));
    }
    let mut cs = Codestream {
        x0: 0,
        y0: 0,
        x1: 0,
        y1: 0,
        tile_w: 0,
        tile_h: 0,
        tile_x0: 0,
        tile_y0: 0,
        tiles_across: 0,
        tiles_down: 0,
        components: Vec::new(),
        levels: 0,
        mct: false,
        header: (0, 0),
        tiles: Vec::new(),
        truncated: false,
        color: Color::Gray,
    };
    let mut pos = 2usize;
    let (mut siz, mut cod) = (false, false);
    let mut levels = u8::MAX;
    loop {
        let truncated = || FormatError::truncated("JPEG 2000 main header");
        let marker = be16(bytes.get(pos..pos + 2).ok_or_else(truncated)?, 0);
        if marker == 0xFF90 {
            break;
        }
        let len = usize::from(be16(bytes.get(pos..pos + 4).ok_or_else(truncated)?, 2));
        if marker >> 8 != 0xFF || len < 2 {
            return Err(FormatError::invalid(format!(
                "JPEG 2000 main header: marker {marker:04X} at {pos}"
            )));
        }
        let body = bytes
            .get(pos + 4..pos + 2 + len)
            .ok_or_else(|| FormatError::truncated("JPEG 2000 main header"))?;
        match marker {
            0xFF51 => {
                siz = true;
                parse_siz(body, &mut cs)?;
            }
            0xFF52 if body.len() >= 6 => {
                cod = true;
                cs.mct = body[4] != 0;
                levels = levels.min(body[5]);
            }
            0xFF53 => {
                // COC: component index is one byte below 257 components, else two.
                let at = if cs.components.len() < 257 { 2 } else { 3 };
                if let Some(&nl) = body.get(at) {
                    levels = levels.min(nl);
                }
            }
            _ => {}
        }
        pos += 2 + len;
    }
    if !siz || !cod {
        return Err(FormatError::invalid(
            "JPEG 2000 main header without SIZ or COD",
        ));
    }
    cs.levels = levels.min(32);
    cs.header = (0, pos as u64);
    Ok(cs)
}

fn parse_siz(b: &[u8], cs: &mut Codestream) -> Result<(), FormatError> {
    if b.len() < 36 {
        return Err(FormatError::invalid("JPEG 2000 SIZ marker too short"));
    }
    let (x1, y1, x0, y0) = (be32(b, 2), be32(b, 6), be32(b, 10), be32(b, 14));
    let (tw, th, tx0, ty0) = (be32(b, 18), be32(b, 22), be32(b, 26), be32(b, 30));
    let n = usize::from(be16(b, 34));
    if x0 >= x1 || y0 >= y1 || tw == 0 || th == 0 || tx0 > x0 || ty0 > y0 {
        return Err(FormatError::invalid(format!(
            "JPEG 2000 SIZ: image {x0},{y0}..{x1},{y1}, tiles {tw}x{th} at {tx0},{ty0}"
        )));
    }
    // Tiles must cover the image origin (15444-1 A.5.1).
    if u64::from(tx0) + u64::from(tw) <= u64::from(x0)
        || u64::from(ty0) + u64::from(th) <= u64::from(y0)
    {
        return Err(FormatError::invalid(
            "JPEG 2000 SIZ: first tile misses the image",
        ));
    }
    check_dimensions(u64::from(x1 - x0), u64::from(y1 - y0))?;
    if n == 0 || n > MAX_COMPONENTS {
        return Err(FormatError::unsupported(format!(
            "JPEG 2000 with {n} components (at most {MAX_COMPONENTS})"
        )));
    }
    let across = (u64::from(x1 - tx0)).div_ceil(u64::from(tw));
    let down = (u64::from(y1 - ty0)).div_ceil(u64::from(th));
    if across * down > 65535 {
        return Err(FormatError::invalid(format!(
            "JPEG 2000 SIZ: {across}x{down} tiles (at most 65535)"
        )));
    }
    let comps = b
        .get(36..36 + 3 * n)
        .ok_or_else(|| FormatError::invalid("JPEG 2000 SIZ marker too short"))?;
    cs.components = comps
        .chunks_exact(3)
        .map(|c| Component {
            precision: (c[0] & 0x7F) + 1,
            signed: c[0] & 0x80 != 0,
            dx: c[1],
            dy: c[2],
        })
        .collect();
    if cs
        .components
        .iter()
        .any(|c| c.precision > 31 || c.dx == 0 || c.dy == 0)
    {
        return Err(FormatError::unsupported(
            "JPEG 2000 component of more than 31 bits or zero subsampling",
        ));
    }
    (cs.x0, cs.y0, cs.x1, cs.y1) = (x0, y0, x1, y1);
    (cs.tile_w, cs.tile_h, cs.tile_x0, cs.tile_y0) = (tw, th, tx0, ty0);
    (cs.tiles_across, cs.tiles_down) = (across as u32, down as u32);
    Ok(())
}

/// Parse the codestream at `start..end` of the file: its main header, then every tile-part
/// header (SOT), to find each tile's bytes.
pub fn parse_codestream(source: &Source, start: u64, end: u64) -> Result<Codestream, FormatError> {
    // Read the main header: grow the buffer until it holds the first SOT.
    let mut want = 4096u64;
    let mut cs = loop {
        let n = want.min(end - start).min(MAX_MAIN_HEADER);
        let mut buf = vec![0u8; n as usize];
        let got = source.read_some(start, &mut buf)?;
        buf.truncate(got);
        match parse_main_header(&buf) {
            Ok(cs) => break cs,
            Err(FormatError::Truncated(_)) if n < end - start && n < MAX_MAIN_HEADER => want *= 4,
            Err(e) => return Err(e),
        }
    };
    cs.header = (start, cs.header.1);
    let ntiles = cs.tiles_across as usize * cs.tiles_down as usize;
    cs.tiles = vec![Vec::new(); ntiles];
    let mut pos = start + cs.header.1;
    let mut parts = 0usize;
    loop {
        if pos + 2 > end {
            cs.truncated = true;
            break;
        }
        let mut sot = [0u8; 12];
        let got = source.read_some(pos, &mut sot)?;
        if got >= 2 && be16(&sot, 0) == 0xFFD9 {
            break;
        }
        if got < 12 {
            cs.truncated = true;
            break;
        }
        if be16(&sot, 0) != 0xFF90 || be16(&sot, 2) != 10 {
            return Err(FormatError::invalid(format!(
                "JPEG 2000: expected a tile-part (SOT) at offset {pos}, found {:04X}",
                be16(&sot, 0)
            )));
        }
        let tile = usize::from(be16(&sot, 4));
        let psot = u64::from(be32(&sot, 6));
        if tile >= ntiles {
            return Err(FormatError::invalid(format!(
                "JPEG 2000: tile-part at offset {pos} for tile {tile} of {ntiles}"
            )));
        }
        // Psot 0: the last tile-part, running to EOC.
        let len = if psot == 0 {
            end.saturating_sub(2).max(pos + 12) - pos
        } else {
            psot
        };
        if len < 14 {
            return Err(FormatError::invalid(format!(
                "JPEG 2000: tile-part at offset {pos} of {len} bytes"
            )));
        }
        if pos + len > end {
            cs.truncated = true;
            break;
        }
        cs.tiles[tile].push((pos, len));
        parts += 1;
        if parts > MAX_TILE_PARTS {
            return Err(FormatError::too_large(
                "JPEG 2000 with over a million tile-parts",
            ));
        }
        pos += len;
        if psot == 0 {
            break;
        }
    }
    if cs.tiles.iter().all(Vec::is_empty) {
        return Err(FormatError::truncated("JPEG 2000 codestream holds no tile"));
    }
    Ok(cs)
}

/// A JP2 box: its type, and where its contents lie.
struct Box_ {
    kind: [u8; 4],
    start: u64,
    end: u64,
}

/// The boxes at `pos..end` of the file (one level).
fn boxes(source: &Source, mut pos: u64, end: u64) -> Result<Vec<Box_>, FormatError> {
    let mut out = Vec::new();
    while pos + 8 <= end {
        let mut h = [0u8; 16];
        let got = source.read_some(pos, &mut h)?;
        if got < 8 {
            break;
        }
        let len = u64::from(be32(&h, 0));
        let kind = [h[4], h[5], h[6], h[7]];
        let (header, total) = match len {
            0 => (8, end - pos),
            1 if got >= 16 => (
                16,
                u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]),
            ),
            l if l >= 8 => (8, l),
            _ => {
                return Err(FormatError::invalid(format!(
                    "JP2 box at offset {pos} of length {len}"
                )));
            }
        };
        if total < header {
            return Err(FormatError::invalid(format!(
                "JP2 box at offset {pos} of length {total}"
            )));
        }
        let box_end = pos.saturating_add(total).min(end);
        out.push(Box_ {
            kind,
            start: pos + header,
            end: box_end,
        });
        if out.len() > 4096 {
            return Err(FormatError::invalid("JP2 with over 4096 boxes"));
        }
        pos = box_end;
    }
    Ok(out)
}

fn read_box(source: &Source, b: &Box_, max: u64) -> Result<Vec<u8>, FormatError> {
    let len = (b.end - b.start).min(max);
    let mut buf = vec![0u8; len as usize];
    let got = source.read_some(b.start, &mut buf)?;
    buf.truncate(got);
    Ok(buf)
}

/// Colour from the JP2 header boxes (`colr`, `pclr`, `cdef`), for components of `cs`.
fn jp2_color(source: &Source, jp2h: &Box_, cs: &Codestream) -> Result<Color, FormatError> {
    let mut enumcs = None;
    let mut alpha = false;
    let mut palette = None;
    for b in boxes(source, jp2h.start, jp2h.end)? {
        match &b.kind {
            b"colr" => {
                let c = read_box(source, &b, 64)?;
                if c.len() >= 7 && c[0] == 1 && enumcs.is_none() {
                    enumcs = Some(be32(&c, 3));
                }
            }
            b"cdef" => {
                let c = read_box(source, &b, 6 * 256 + 2)?;
                let n = c.get(..2).map_or(0, |n| usize::from(be16(n, 0)));
                alpha = (0..n).any(|i| {
                    c.get(2 + 6 * i + 2..2 + 6 * i + 4)
                        .is_some_and(|t| be16(t, 0) != 0)
                });
            }
            b"pclr" => {
                let c = read_box(source, &b, 3 + 255 + 1024 * 255 * 4)?;
                palette = Some(parse_pclr(&c)?);
            }
            _ => {}
        }
    }
    if let Some(p) = palette {
        let c = cs.components[0];
        if cs.components.len() != 1 || c.precision > 8 || c.signed {
            return Err(FormatError::unsupported(
                "JP2 palette over anything but one 8-bit component",
            ));
        }
        return Ok(Color::Palette(Arc::new(p)));
    }
    let color = default_color(&cs.components, enumcs == Some(18) && !cs.mct);
    Ok(match (color, alpha) {
        (Color::Rgb, true) if cs.components.len() == 4 => Color::Rgba,
        (c, _) => c,
    })
}

/// A `pclr` box as RGBA entries (8-bit columns; wider columns keep their top 8 bits).
fn parse_pclr(c: &[u8]) -> Result<Vec<[u8; 4]>, FormatError> {
    let bad = || FormatError::invalid("JP2 pclr box");
    let entries = usize::from(be16(c.get(..2).ok_or_else(bad)?, 0));
    let cols = usize::from(*c.get(2).ok_or_else(bad)?);
    if entries == 0 || entries > 1024 || cols == 0 || cols > 4 {
        return Err(bad());
    }
    let depths: Vec<u8> = c
        .get(3..3 + cols)
        .ok_or_else(bad)?
        .iter()
        .map(|d| (d & 0x7F) + 1)
        .collect();
    let widths: Vec<usize> = depths.iter().map(|&d| usize::from(d).div_ceil(8)).collect();
    let mut pos = 3 + cols;
    let mut out = Vec::with_capacity(entries.min(256));
    for _ in 0..entries.min(256) {
        let mut px = [0, 0, 0, 255];
        for (k, (&w, &d)) in widths.iter().zip(&depths).enumerate() {
            let bytes = c.get(pos..pos + w).ok_or_else(bad)?;
            let v = bytes.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
            let v8 = if d >= 8 {
                (v >> (d - 8)) as u8
            } else {
                (v * 255 / ((1 << d) - 1)) as u8
            };
            pos += w;
            match (cols, k) {
                (1 | 2, 0) => px = [v8, v8, v8, 255],
                (2, 1) | (4, 3) => px[3] = v8,
                (_, k) if k < 3 => px[k] = v8,
                _ => {}
            }
        }
        out.push(px);
    }
    Ok(out)
}

pub fn parse(source: &Source) -> Result<Layout, FormatError> {
    let len = source.len();
    let mut magic = [0u8; 4];
    source.read_exact_at(0, &mut magic)?;
    let cs = if magic == [0xFF, 0x4F, 0xFF, 0x51] {
        let mut cs = parse_codestream(source, 0, len)?;
        cs.color = default_color(&cs.components, false);
        cs
    } else {
        let top = boxes(source, 0, len)?;
        let jp2c = top
            .iter()
            .find(|b| &b.kind == b"jp2c")
            .ok_or_else(|| FormatError::invalid("JP2 file without a codestream (jp2c box)"))?;
        check_span(jp2c.start, 0, len, "JP2 codestream")?;
        let mut cs = parse_codestream(source, jp2c.start, jp2c.end)?;
        cs.color = match top.iter().find(|b| &b.kind == b"jp2h") {
            Some(h) => jp2_color(source, h, &cs)?,
            None => default_color(&cs.components, false),
        };
        cs
    };
    let cs = Arc::new(cs);
    let mut pages = Vec::new();
    for r in 0..=u32::from(cs.levels) {
        let (w, h) = cs.level_size(r);
        if r > 0 && (w < 1 || h < 1 || w.max(h) < 64) {
            break;
        }
        pages.push(cs.page(r)?);
    }
    Ok(Layout {
        format: FileFormat::Jpeg2000,
        pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn siz(w: u32, h: u32, tw: u32, th: u32, comps: &[u8]) -> Vec<u8> {
        let mut b = vec![0xFF, 0x4F, 0xFF, 0x51];
        b.extend_from_slice(&((38 + 3 * comps.len()) as u16).to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        for v in [w, h, 0, 0, tw, th, 0, 0] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend_from_slice(&(comps.len() as u16).to_be_bytes());
        for &c in comps {
            b.extend_from_slice(&[c, 1, 1]);
        }
        // COD: 5 levels, MCT on.
        b.extend_from_slice(&[0xFF, 0x52, 0, 12, 0, 0, 0, 1, 1, 5, 4, 4, 0, 0]);
        b.extend_from_slice(&[0xFF, 0x90]);
        b
    }

    #[test]
    fn main_header_gives_sizes_tiles_and_levels() {
        let cs = parse_main_header(&siz(1000, 700, 256, 256, &[7, 7, 7])).expect("header");
        assert_eq!((cs.width(), cs.height()), (1000, 700));
        assert_eq!((cs.tiles_across, cs.tiles_down), (4, 3));
        assert_eq!((cs.levels, cs.mct), (5, true));
        assert_eq!(cs.level_size(2), (250, 175));
        assert_eq!(cs.level_size(3), (125, 88));
        assert_eq!(default_color(&cs.components, false), Color::Rgb);
        // A level-2 unit maps back to the reference grid, clamped to the image.
        assert_eq!(
            cs.reference_area(2, &Extent::new(192, 128, 250, 175)),
            (768, 512, 1000, 700)
        );
        assert_eq!(cs.tiles_in((768, 512, 1000, 700)), vec![11]);
        assert_eq!(cs.tiles_in((0, 0, 257, 10)), vec![0, 1]);
    }

    #[test]
    fn hostile_headers_are_refused() {
        assert!(parse_main_header(&siz(0, 10, 256, 256, &[7])).is_err());
        assert!(parse_main_header(&siz(10, 10, 0, 256, &[7])).is_err());
        assert!(parse_main_header(&siz(1 << 31, 10, 1, 1, &[7])).is_err());
        assert!(
            parse_main_header(&siz(100_000, 100_000, 1, 1, &[7])).is_err(),
            "10^10 tiles"
        );
        let h = siz(10, 10, 256, 256, &[7]);
        assert!(matches!(
            parse_main_header(&h[..20]),
            Err(FormatError::Truncated(_))
        ));
        assert!(matches!(
            default_color(
                &parse_main_header(&siz(9, 9, 9, 9, &[15]))
                    .expect("h")
                    .components,
                false
            ),
            Color::Data(SampleType::U16)
        ));
        assert!(matches!(
            default_color(
                &parse_main_header(&siz(9, 9, 9, 9, &[0x8F]))
                    .expect("h")
                    .components,
                false
            ),
            Color::Data(SampleType::I16)
        ));
    }
}
