//! `tessera convert`: any image Tessera reads to a tiled TIFF (BigTIFF when it may pass 4 GB),
//! optionally with a pyramid of 2x2 box-filtered levels (NewSubfileType 1 pages, the layout
//! `vips tiffsave --tile --pyramid` writes), streamed a row of tiles at a time: the source is
//! rendered one tile row at a time through the normal render path, each level keeps only the
//! two rows of tiles it is reducing, and compressed tiles go straight to the file. Pictures
//! are written as 8-bit gray, gray+alpha, RGB or RGBA (JPEG: gray or YCbCr, without alpha);
//! data pages as displayed (their mapping), or as their native samples (any integer or float
//! type, levels the mean of the valid samples). The output can be shrunk and turned (see
//! [`crate::export::Frame`]): the export window writes its TIFFs here.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

use crate::OpenImage;
use crate::data::{SampleBuf, SampleType};
use crate::display::Compiled;
use crate::error::Error;
use crate::export::Frame;
use crate::format::{Extent, Mode};
use crate::orientation::Orientation;
use crate::progress::Progress;

/// Tile compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Deflate,
    Zstd,
    /// Baseline JPEG at this quality (1-100): 8-bit gray or YCbCr 4:2:0, no alpha.
    Jpeg(u8),
}

impl Compression {
    /// `none`, `deflate`, `zstd`, `jpeg` (quality 85) or `jpeg:Q`.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => Self::None,
            "deflate" => Self::Deflate,
            "zstd" => Self::Zstd,
            "jpeg" => Self::Jpeg(85),
            _ => match s.strip_prefix("jpeg:").map(str::parse::<u8>) {
                Some(Ok(q)) if (1..=100).contains(&q) => Self::Jpeg(q),
                _ => {
                    return Err(format!(
                        "compression {s:?}: none, deflate, zstd, jpeg or jpeg:Q (Q 1-100)"
                    ));
                }
            },
        })
    }

    fn code(self) -> u16 {
        match self {
            Self::None => 1,
            Self::Deflate => 8,
            Self::Zstd => 50000,
            Self::Jpeg(_) => 7,
        }
    }

    /// Whether the tiles go through horizontal differencing first (lossless codecs only).
    fn predicts(self) -> bool {
        matches!(self, Self::Deflate | Self::Zstd)
    }

    /// Compress one tile of `side` x `side` pixels.
    fn compress(self, data: &[u8], side: usize, px: &Pixels) -> std::io::Result<Vec<u8>> {
        Ok(match self {
            Self::None => data.to_vec(),
            Self::Deflate => miniz_oxide::deflate::compress_to_vec_zlib(data, 4),
            Self::Zstd => zstd::bulk::compress(data, 3)?,
            Self::Jpeg(q) => jpeg_tile(data, side, px.spp, q)?,
        })
    }
}

/// A complete baseline JPEG of one tile (its own tables: TIFF allows that, and libtiff, GDAL
/// and vips read it). mozjpeg is already here for decoding; it reports errors by unwinding.
fn jpeg_tile(data: &[u8], side: usize, spp: usize, quality: u8) -> std::io::Result<Vec<u8>> {
    let space = if spp == 1 {
        mozjpeg::ColorSpace::JCS_GRAYSCALE
    } else {
        mozjpeg::ColorSpace::JCS_RGB
    };
    std::panic::catch_unwind(|| -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(space);
        // Plain baseline libjpeg-turbo settings: no progressive scans, which TIFF forbids.
        c.set_fastest_defaults();
        c.set_size(side, side);
        c.set_quality(f32::from(quality));
        if spp > 1 {
            c.set_chroma_sampling_pixel_sizes((2, 2), (2, 2));
        }
        let mut started = c.start_compress(Vec::new())?;
        started.write_scanlines(data)?;
        started.finish()
    })
    .unwrap_or_else(|_| Err(std::io::Error::other("the JPEG encoder failed")))
}

/// What to convert.
#[derive(Debug, Clone)]
pub struct ConvertRequest {
    pub page: u32,
    pub region: Extent,
    /// Integer shrink factor of the output (1: full resolution).
    pub scale: u32,
    /// Turn and flip the output.
    pub orient: Orientation,
    pub tile: u32,
    pub compression: Compression,
    pub pyramid: bool,
    /// Data pages: write the stored samples instead of the displayed colours.
    pub native: bool,
    pub out: PathBuf,
    pub cache_bytes: usize,
}

/// How the output's pixels are stored: `spp` samples of type `ty` (8-bit unsigned for
/// pictures), RGB photometric or not, and the value that means no data.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pixels {
    spp: usize,
    ty: SampleType,
    rgb: bool,
    nodata: Option<f64>,
    /// Pictures: the last sample is alpha (2 or 4 samples).
    alpha: bool,
}

impl Pixels {
    fn bytes_per_pixel(&self) -> usize {
        self.spp * self.ty.bytes()
    }
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

/// How `req` stores the pixels of `page`, or why it cannot.
fn pixels_for(page: &crate::format::Page, req: &ConvertRequest) -> Result<Pixels, String> {
    if let (true, Some(info)) = (req.native, &page.data) {
        if matches!(req.compression, Compression::Jpeg(_)) {
            return Err(
                "JPEG holds 8-bit pictures: write native samples with deflate, zstd or none".into(),
            );
        }
        let ty = match info.sample {
            SampleType::F16 => SampleType::F32,
            t => t,
        };
        return Ok(Pixels {
            spp: info.channels.max(1),
            ty,
            rgb: info.rgb && info.channels == 3,
            nodata: info.nodata,
            alpha: false,
        });
    }
    let mut spp = samples_for(page.mode);
    if matches!(req.compression, Compression::Jpeg(_)) {
        // JPEG has no alpha: gray or colour alone.
        spp = if spp <= 2 { 1 } else { 3 };
    }
    Ok(Pixels {
        spp,
        ty: SampleType::U8,
        rgb: spp >= 3,
        nodata: None,
        alpha: spp == 2 || spp == 4,
    })
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
    let (page, frame) = Frame::clipped(&image, req.page, req.region, req.scale, req.orient)?;
    let px = pixels_for(&page, req).map_err(|msg| Error::Request {
        path: req.out.clone(),
        msg,
    })?;
    let (ow, oh) = frame.size();
    let tile = req.tile.clamp(16, 4096) / 16 * 16;
    let sizes = level_sizes(ow, oh, tile, req.pyramid);
    let raw_total: u64 = sizes
        .iter()
        .map(|&(w, h)| u64::from(w) * u64::from(h) * px.bytes_per_pixel() as u64)
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
    let out = Out {
        tile,
        px,
        comp: req.compression,
    };
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
        // Native samples where `pixels_for` chose them (a data page asked for natively).
        let native = req.native && page.data.is_some();
        frame.for_each_band(tile, progress, &req.out, |y0, y1| {
            let rows = if native {
                frame.native_rows(&loader, y0, y1)?
            } else {
                pack(&frame.display_rows(&loader, mapping, y0, y1)?, px.spp)
            };
            push_rows(&mut levels, 0, rows, &out, &mut w).map_err(io_err)
        })?;
        // Levels whose last row is odd still hold one row: reduce it alone.
        for i in 0..levels.len() {
            flush_level(&mut levels, i, &out, &mut w).map_err(io_err)?;
        }
        write_ifds(&mut w, &levels, &out, big).map_err(io_err)?;
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

/// How tiles are cut, stored and compressed.
struct Out {
    tile: u32,
    px: Pixels,
    comp: Compression,
}

/// Give level `i` more rows: write its full tile rows, and reduce pairs of rows into the next.
fn push_rows<W: Write + Seek>(
    levels: &mut [Level],
    i: usize,
    rows: Vec<u8>,
    out: &Out,
    w: &mut W,
) -> std::io::Result<()> {
    let stride = levels[i].width as usize * out.px.bytes_per_pixel();
    let n = rows.len() / stride.max(1);
    levels[i].done += n as u32;
    levels[i].rows.extend_from_slice(&rows);
    if i + 1 < levels.len() {
        levels[i].pending.extend_from_slice(&rows);
    }
    let tile_bytes = out.tile as usize * stride;
    while levels[i].rows.len() >= tile_bytes {
        let band: Vec<u8> = levels[i].rows.drain(..tile_bytes).collect();
        write_tile_row(&mut levels[i], &band, out, w)?;
    }
    if levels[i].done == levels[i].height && !levels[i].rows.is_empty() {
        let band = std::mem::take(&mut levels[i].rows);
        write_tile_row(&mut levels[i], &band, out, w)?;
    }
    if i + 1 < levels.len() {
        let pairs = levels[i].pending.len() / (2 * stride);
        if pairs > 0 {
            let src: Vec<u8> = levels[i].pending.drain(..pairs * 2 * stride).collect();
            let reduced = reduce(&src, levels[i].width, &out.px, pairs);
            push_rows(levels, i + 1, reduced, out, w)?;
        }
    }
    Ok(())
}

/// At the end: a last unpaired row of level `i` is reduced alone (as `div_ceil` sizes want).
fn flush_level<W: Write + Seek>(
    levels: &mut [Level],
    i: usize,
    out: &Out,
    w: &mut W,
) -> std::io::Result<()> {
    if i + 1 < levels.len() && !levels[i].pending.is_empty() {
        let mut src = std::mem::take(&mut levels[i].pending);
        let copy = src.clone();
        src.extend_from_slice(&copy);
        let reduced = reduce(&src, levels[i].width, &out.px, 1);
        push_rows(levels, i + 1, reduced, out, w)?;
    }
    Ok(())
}

/// 2x2 box filter of `pairs` pairs of rows (an odd last column is averaged with itself).
/// Native samples: the mean of the valid samples (see [`SampleBuf::shrink`]).
fn reduce(src: &[u8], width: u32, px: &Pixels, pairs: usize) -> Vec<u8> {
    let w = width as usize;
    let spp = px.spp;
    if px.ty != SampleType::U8 || px.nodata.is_some() {
        let n = src.len() / px.ty.bytes();
        let mut buf = SampleBuf::zeroed(px.ty, n);
        buf.fill_from_bytes(0, src, n, px.ty, false);
        return buf
            .shrink((w, 2 * pairs), spp, 2, px.ty, px.nodata)
            .to_le_bytes();
    }
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

/// Horizontal differencing (TIFF predictor 2) of one row of integer samples `bytes` wide,
/// little-endian, `spp` to a pixel.
fn predict_row(row: &mut [u8], spp: usize, bytes: usize) {
    macro_rules! diff {
        ($t:ty) => {{
            let n = row.len() / bytes;
            let get = |row: &[u8], i: usize| {
                <$t>::from_le_bytes(
                    row[i * bytes..(i + 1) * bytes]
                        .try_into()
                        .unwrap_or_default(),
                )
            };
            for i in (spp..n).rev() {
                let v = get(row, i).wrapping_sub(get(row, i - spp));
                row[i * bytes..(i + 1) * bytes].copy_from_slice(&v.to_le_bytes());
            }
        }};
    }
    match bytes {
        1 => {
            for i in (spp..row.len()).rev() {
                row[i] = row[i].wrapping_sub(row[i - spp]);
            }
        }
        2 => diff!(u16),
        4 => diff!(u32),
        _ => diff!(u64),
    }
}

/// Cut a band of up to `tile` rows into tiles (padded to whole tiles), compress them on all
/// cores, and write them in order.
fn write_tile_row<W: Write + Seek>(
    level: &mut Level,
    band: &[u8],
    out: &Out,
    w: &mut W,
) -> std::io::Result<()> {
    let bpp = out.px.bytes_per_pixel();
    let stride = level.width as usize * bpp;
    let rows = band.len() / stride.max(1);
    let t = out.tile as usize;
    let across = level.width.div_ceil(out.tile) as usize;
    // Floats are stored without a predictor (predictor 3 is not written).
    let predict = out.comp.predicts() && !out.px.ty.is_float();
    let tile_data = |tx: usize| -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; t * t * bpp];
        let x0 = tx * t;
        let cols = t.min(level.width as usize - x0);
        for r in 0..rows {
            let src = &band[r * stride + x0 * bpp..r * stride + (x0 + cols) * bpp];
            buf[r * t * bpp..r * t * bpp + cols * bpp].copy_from_slice(src);
        }
        if predict {
            for row in buf.chunks_exact_mut(t * bpp) {
                predict_row(row, out.px.spp, out.px.ty.bytes());
            }
        }
        out.comp.compress(&buf, t, &out.px)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let per = across.div_ceil(threads);
    let mut done: Vec<std::io::Result<Vec<u8>>> = Vec::with_capacity(across);
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
        let data = data?;
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
    out: &Out,
    big: bool,
) -> std::io::Result<()> {
    const ASCII: u16 = 2;
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const LONG8: u16 = 16;
    let (tile, px, comp) = (out.tile, &out.px, out.comp);
    let spp = px.spp;
    let jpeg = matches!(comp, Compression::Jpeg(_));
    let photometric: u64 = match (px.rgb, jpeg) {
        (true, true) => 6, // YCbCr: what the JPEG tiles hold
        (true, false) => 2,
        _ => 1,
    };
    let format: u64 = if px.ty.is_float() {
        3
    } else if px.ty.is_signed() {
        2
    } else {
        1
    };
    let offset_type = if big { LONG8 } else { LONG };
    let type_size = |t: u16| match t {
        ASCII => 1usize,
        SHORT => 2,
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
            (258, SHORT, vec![u64::from(px.ty.bits()); spp]),
            (259, SHORT, vec![u64::from(comp.code())]),
            (262, SHORT, vec![photometric]),
            (277, SHORT, vec![spp as u64]),
            (284, SHORT, vec![1]),
            (322, LONG, vec![u64::from(tile)]),
            (323, LONG, vec![u64::from(tile)]),
            (324, offset_type, l.offsets.clone()),
            (325, offset_type, l.lengths.clone()),
        ];
        let colour = if px.rgb { 3 } else { 1 };
        if spp > colour {
            // ExtraSamples: unassociated alpha for pictures, unspecified data channels.
            let extra = if px.alpha { 2 } else { 0 };
            tags.push((338, SHORT, vec![extra; spp - colour]));
        }
        if comp.predicts() && !px.ty.is_float() {
            tags.push((317, SHORT, vec![2])); // Predictor: horizontal differencing
        }
        if format != 1 {
            tags.push((339, SHORT, vec![format; spp])); // SampleFormat
        }
        if jpeg && px.rgb {
            tags.push((530, SHORT, vec![2, 2])); // YCbCrSubSampling: 4:2:0
        }
        if let Some(v) = px.nodata {
            // GDAL_NODATA, as GDAL writes it: the value as text.
            let mut text: Vec<u64> = format!("{v}").bytes().map(u64::from).collect();
            text.push(0);
            tags.push((42113, ASCII, text));
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
        2 => w.write_all(&[v as u8]),
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
