//! `tessera convert`: any image Tessera reads to a tiled TIFF (BigTIFF when it may pass 4 GB),
//! optionally with a pyramid of 2x2 box-filtered levels (NewSubfileType 1 pages, the layout
//! `vips tiffsave --tile --pyramid` writes), streamed a row of tiles at a time: the source is
//! rendered one tile row at a time through the normal render path, each level keeps only the
//! two rows of tiles it is reducing, and compressed tiles go straight to the file. Pictures
//! are written as 8-bit gray, gray+alpha, RGB or RGBA; data pages as displayed (their mapping).

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::OpenImage;
use crate::display::Compiled;
use crate::error::Error;
use crate::format::{Extent, Mode};
use crate::progress::Progress;
use crate::render::{RenderRequest, render_mapped};

/// Tile compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Deflate,
    Zstd,
}

impl Compression {
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => Self::None,
            "deflate" => Self::Deflate,
            "zstd" => Self::Zstd,
            _ => return Err(format!("compression {s:?}: none, deflate or zstd")),
        })
    }
    fn code(self) -> u16 {
        match self {
            Self::None => 1,
            Self::Deflate => 8,
            Self::Zstd => 50000,
        }
    }
    fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::None => data.to_vec(),
            Self::Deflate => miniz_oxide::deflate::compress_to_vec_zlib(data, 4),
            Self::Zstd => zstd::bulk::compress(data, 3).unwrap_or_else(|_| data.to_vec()),
        }
    }
}

/// What to convert.
#[derive(Debug, Clone)]
pub struct ConvertRequest {
    pub page: u32,
    pub region: Extent,
    pub tile: u32,
    pub compression: Compression,
    pub pyramid: bool,
    pub out: PathBuf,
    pub cache_bytes: usize,
}

/// One level being written: its size, tile offsets and lengths, and the rows of pixels
/// waiting to make a row of tiles (and, for the next level, to be reduced).
struct Level {
    width: u32,
    height: u32,
    offsets: Vec<u64>,
    lengths: Vec<u64>,
    /// Rows of this level not yet written as tiles (at most one tile row).
    rows: Vec<u8>,
    /// Rows of this level not yet reduced into the next (an even count is reduced).
    pending: Vec<u8>,
    /// Rows of this level received so far.
    done: u32,
}

/// Sizes of the pyramid's levels: halving until the image fits one tile.
fn level_sizes(w: u32, h: u32, tile: u32, pyramid: bool) -> Vec<(u32, u32)> {
    let mut out = vec![(w, h)];
    let (mut lw, mut lh) = (w, h);
    while pyramid && (lw > tile || lh > tile) {
        (lw, lh) = (lw.div_ceil(2), lh.div_ceil(2));
        out.push((lw, lh));
    }
    out
}

/// The samples written per pixel for a page of `mode`: 1, 2, 3 or 4. Palettes are written
/// expanded (their colours), data pages as displayed, CMYK as rendered RGB.
fn samples_for(mode: Mode) -> usize {
    match mode {
        Mode::Bilevel | Mode::L | Mode::I16 => 1,
        Mode::La | Mode::La16 => 2,
        Mode::Rgba | Mode::Rgba16 | Mode::Cmyka | Mode::Pa => 4,
        Mode::P | Mode::Data | Mode::Rgb | Mode::Rgb16 | Mode::Cmyk | Mode::Cmyk16 => 3,
    }
}

/// Convert `req.region` of `image` to a tiled TIFF. Written as `NAME.part`, renamed when
/// complete.
pub fn convert(
    image: Arc<OpenImage>,
    req: &ConvertRequest,
    mapping: Option<&Compiled>,
    progress: &Progress,
) -> Result<(), Error> {
    let io_err = |source: std::io::Error| Error::Open {
        path: req.out.clone(),
        source,
    };
    let (page, region) = crate::export::clip(&image, req.page, req.region)?;
    let tile = req.tile.clamp(16, 4096) / 16 * 16;
    let spp = samples_for(page.mode);
    let sizes = level_sizes(region.width(), region.height(), tile, req.pyramid);
    let raw_total: u64 = sizes
        .iter()
        .map(|&(w, h)| u64::from(w) * u64::from(h) * spp as u64)
        .sum();
    // Classic TIFF offsets are 32-bit: BigTIFF when the file could pass 4 GB.
    let big = raw_total > (3 << 30);
    let mut levels: Vec<Level> = sizes
        .iter()
        .map(|&(width, height)| Level {
            width,
            height,
            offsets: Vec::new(),
            lengths: Vec::new(),
            rows: Vec::new(),
            pending: Vec::new(),
            done: 0,
        })
        .collect();
    let loader = crate::export::own_loader(&image, req.cache_bytes);
    let part = crate::export::part_path(&req.out);
    let result = (|| -> Result<(), Error> {
        let file = std::fs::File::create(&part).map_err(io_err)?;
        let mut w = BufWriter::with_capacity(4 << 20, file);
        // Header; the first IFD's offset is patched at the end.
        if big {
            w.write_all(&[b'I', b'I', 43, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
                .map_err(io_err)?;
        } else {
            w.write_all(&[b'I', b'I', 42, 0, 0, 0, 0, 0])
                .map_err(io_err)?;
        }
        let mut y = region.y0;
        while y < region.y1 {
            // Reports what is done so far, and fails once cancelled.
            progress
                .update(u64::from(y - region.y0), u64::from(region.height()))
                .map_err(|source| Error::Format {
                    path: req.out.clone(),
                    source,
                })?;
            let y1 = (y + tile).min(region.y1);
            let band = Extent::new(region.x0, y, region.x1, y1);
            let (img, _) = render_mapped(&loader, RenderRequest::new(req.page, band, 1), mapping)?;
            let rows = pack(&img.data, spp);
            push_rows(&mut levels, 0, rows, tile, spp, req.compression, &mut w).map_err(io_err)?;
            y = y1;
        }
        // Every row is in: a cancel from now on comes too late to matter.
        let _ = progress.update(u64::from(region.height()), u64::from(region.height()));
        // Levels whose last row is odd still hold one row: reduce it alone.
        for i in 0..levels.len() {
            flush_level(&mut levels, i, tile, spp, req.compression, &mut w).map_err(io_err)?;
        }
        write_ifds(&mut w, &levels, tile, spp, req.compression, big).map_err(io_err)?;
        w.flush().map_err(io_err)?;
        Ok(())
    })();
    crate::export::finish(&part, &req.out, result)
}

/// RGBA rows as `spp` samples a pixel (gray from R, alpha kept where written).
fn pack(rgba: &[u8], spp: usize) -> Vec<u8> {
    match spp {
        4 => rgba.to_vec(),
        3 => rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        2 => rgba.chunks_exact(4).flat_map(|p| [p[0], p[3]]).collect(),
        _ => rgba.chunks_exact(4).map(|p| p[0]).collect(),
    }
}

/// Give level `i` more rows: write its full tile rows, and reduce pairs of rows into the next.
fn push_rows<W: Write + Seek>(
    levels: &mut [Level],
    i: usize,
    rows: Vec<u8>,
    tile: u32,
    spp: usize,
    comp: Compression,
    w: &mut W,
) -> std::io::Result<()> {
    let stride = levels[i].width as usize * spp;
    let n = rows.len() / stride.max(1);
    levels[i].done += n as u32;
    levels[i].rows.extend_from_slice(&rows);
    if i + 1 < levels.len() {
        levels[i].pending.extend_from_slice(&rows);
    }
    let tile_bytes = tile as usize * stride;
    while levels[i].rows.len() >= tile_bytes {
        let band: Vec<u8> = levels[i].rows.drain(..tile_bytes).collect();
        write_tile_row(&mut levels[i], &band, tile, spp, comp, w)?;
    }
    if levels[i].done == levels[i].height && !levels[i].rows.is_empty() {
        let band = std::mem::take(&mut levels[i].rows);
        write_tile_row(&mut levels[i], &band, tile, spp, comp, w)?;
    }
    if i + 1 < levels.len() {
        let pairs = levels[i].pending.len() / (2 * stride);
        if pairs > 0 {
            let src: Vec<u8> = levels[i].pending.drain(..pairs * 2 * stride).collect();
            let reduced = reduce(&src, levels[i].width, spp, pairs);
            push_rows(levels, i + 1, reduced, tile, spp, comp, w)?;
        }
    }
    Ok(())
}

/// At the end: a last unpaired row of level `i` is reduced alone (as `div_ceil` sizes want).
fn flush_level<W: Write + Seek>(
    levels: &mut [Level],
    i: usize,
    tile: u32,
    spp: usize,
    comp: Compression,
    w: &mut W,
) -> std::io::Result<()> {
    if i + 1 < levels.len() && !levels[i].pending.is_empty() {
        let mut src = std::mem::take(&mut levels[i].pending);
        let copy = src.clone();
        src.extend_from_slice(&copy);
        let reduced = reduce(&src, levels[i].width, spp, 1);
        push_rows(levels, i + 1, reduced, tile, spp, comp, w)?;
    }
    Ok(())
}

/// 2x2 box filter of `pairs` pairs of rows (an odd last column is averaged with itself).
fn reduce(src: &[u8], width: u32, spp: usize, pairs: usize) -> Vec<u8> {
    let w = width as usize;
    let ow = w.div_ceil(2);
    let stride = w * spp;
    let mut out = vec![0u8; ow * spp * pairs];
    for r in 0..pairs {
        let (a, b) = (&src[2 * r * stride..], &src[(2 * r + 1) * stride..]);
        for x in 0..ow {
            let (x0, x1) = (2 * x, (2 * x + 1).min(w - 1));
            for c in 0..spp {
                let sum = u32::from(a[x0 * spp + c])
                    + u32::from(a[x1 * spp + c])
                    + u32::from(b[x0 * spp + c])
                    + u32::from(b[x1 * spp + c]);
                out[(r * ow + x) * spp + c] = ((sum + 2) / 4) as u8;
            }
        }
    }
    out
}

/// Cut a band of up to `tile` rows into tiles (padded to whole tiles), compress them on all
/// cores, and write them in order.
fn write_tile_row<W: Write + Seek>(
    level: &mut Level,
    band: &[u8],
    tile: u32,
    spp: usize,
    comp: Compression,
    w: &mut W,
) -> std::io::Result<()> {
    let stride = level.width as usize * spp;
    let rows = band.len() / stride.max(1);
    let t = tile as usize;
    let across = level.width.div_ceil(tile) as usize;
    let tile_data = |tx: usize| {
        let mut buf = vec![0u8; t * t * spp];
        let x0 = tx * t;
        let cols = t.min(level.width as usize - x0);
        for r in 0..rows {
            let src = &band[r * stride + x0 * spp..r * stride + (x0 + cols) * spp];
            buf[r * t * spp..r * t * spp + cols * spp].copy_from_slice(src);
        }
        if comp != Compression::None {
            // Horizontal differencing (TIFF predictor 2): smaller and faster to compress.
            for row in buf.chunks_exact_mut(t * spp) {
                for i in (spp..row.len()).rev() {
                    row[i] = row[i].wrapping_sub(row[i - spp]);
                }
            }
        }
        comp.compress(&buf)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let per = across.div_ceil(threads);
    let mut done: Vec<Vec<u8>> = Vec::with_capacity(across);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let tile_data = &tile_data;
                scope.spawn(move || {
                    (k * per..((k + 1) * per).min(across))
                        .map(tile_data)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            done.extend(h.join().unwrap_or_default());
        }
    });
    if done.len() != across {
        return Err(std::io::Error::other("a tile compressor failed"));
    }
    for data in done {
        let at = w.stream_position()?;
        w.write_all(&data)?;
        level.offsets.push(at);
        level.lengths.push(data.len() as u64);
    }
    Ok(())
}

/// Every level's IFD, chained, after the data; the header's first-IFD offset patched. Values
/// that fit the entry (4 bytes, 8 in BigTIFF) are inline, longer arrays written before it.
fn write_ifds<W: Write + Seek>(
    w: &mut W,
    levels: &[Level],
    tile: u32,
    spp: usize,
    comp: Compression,
    big: bool,
) -> std::io::Result<()> {
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const LONG8: u16 = 16;
    let photometric: u64 = if spp >= 3 { 2 } else { 1 };
    let offset_type = if big { LONG8 } else { LONG };
    let type_size = |t: u16| match t {
        SHORT => 2usize,
        LONG => 4,
        _ => 8,
    };
    let capacity = if big { 8 } else { 4 };
    let mut link_at = if big { 8 } else { 4 };
    for (i, l) in levels.iter().enumerate() {
        let mut tags: Vec<(u16, u16, Vec<u64>)> = vec![
            (254, LONG, vec![u64::from(i > 0)]),
            (256, LONG, vec![u64::from(l.width)]),
            (257, LONG, vec![u64::from(l.height)]),
            (258, SHORT, vec![8; spp]),
            (259, SHORT, vec![u64::from(comp.code())]),
            (262, SHORT, vec![photometric]),
            (277, SHORT, vec![spp as u64]),
            (284, SHORT, vec![1]),
            (322, LONG, vec![u64::from(tile)]),
            (323, LONG, vec![u64::from(tile)]),
            (324, offset_type, l.offsets.clone()),
            (325, offset_type, l.lengths.clone()),
        ];
        if spp == 2 || spp == 4 {
            tags.push((338, SHORT, vec![2])); // ExtraSamples: unassociated alpha
        }
        if comp != Compression::None {
            tags.push((317, SHORT, vec![2])); // Predictor: horizontal differencing
        }
        tags.sort_by_key(|t| t.0);
        // Arrays too long for their entry go first, out of line.
        let mut pointers = Vec::with_capacity(tags.len());
        for (_, ty, values) in &tags {
            if values.len() * type_size(*ty) > capacity {
                align(w)?;
                pointers.push(Some(w.stream_position()?));
                for &v in values {
                    put(w, *ty, v)?;
                }
            } else {
                pointers.push(None);
            }
        }
        align(w)?;
        let ifd_at = w.stream_position()?;
        if big {
            w.write_all(&(tags.len() as u64).to_le_bytes())?;
        } else {
            w.write_all(&(tags.len() as u16).to_le_bytes())?;
        }
        for ((tag, ty, values), pointer) in tags.iter().zip(&pointers) {
            w.write_all(&tag.to_le_bytes())?;
            w.write_all(&ty.to_le_bytes())?;
            word(w, values.len() as u64, big)?;
            match pointer {
                Some(at) => word(w, *at, big)?,
                None => {
                    let mut used = 0;
                    for &v in values {
                        put(w, *ty, v)?;
                        used += type_size(*ty);
                    }
                    w.write_all(&vec![0u8; capacity - used])?;
                }
            }
        }
        let next_at = w.stream_position()?;
        word(w, 0, big)?;
        // Link the previous IFD (or the header) to this one.
        let end = w.stream_position()?;
        w.seek(SeekFrom::Start(link_at))?;
        word(w, ifd_at, big)?;
        w.seek(SeekFrom::Start(end))?;
        link_at = next_at;
    }
    Ok(())
}

/// One value of TIFF type `ty`, little-endian.
fn put<W: Write>(w: &mut W, ty: u16, v: u64) -> std::io::Result<()> {
    match ty {
        3 => w.write_all(&(v as u16).to_le_bytes()),
        4 => w.write_all(&(v as u32).to_le_bytes()),
        _ => w.write_all(&v.to_le_bytes()),
    }
}

fn word<W: Write>(w: &mut W, v: u64, big: bool) -> std::io::Result<()> {
    if big {
        w.write_all(&v.to_le_bytes())
    } else {
        w.write_all(&(v as u32).to_le_bytes())
    }
}

fn align<W: Write + Seek>(w: &mut W) -> std::io::Result<()> {
    let at = w.stream_position()?;
    if at % 2 == 1 {
        w.write_all(&[0])?;
    }
    Ok(())
}
