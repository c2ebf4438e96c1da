//! Synthetic test images, written row by row (or tile by tile) so multi-gigabyte benchmark
//! files need no memory. Used by the tests and, through `cargo run --release --example synth`,
//! by the benchmark scripts. The TIFF
//! writer covers the variants the parser must handle (strips/tiles, planar, 1–16 bits,
//! endianness, BigTIFF); compression is supplied by the caller so the library carries no
//! encoder.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// A deterministic, mildly compressible test pattern: sample `c` of pixel (x, y), 8-bit.
pub fn pattern(x: u32, y: u32, c: u32) -> u8 {
    let h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ c.wrapping_mul(0xC2B2_AE3D);
    let noise = (h >> 28) as u8;
    ((x / 4 + y / 3 + c * 70) as u8).wrapping_add(noise)
}

/// Benchmark image kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ppm,
    Pgm,
    Bmp,
    TiffStrip,
    TiffTiledRgba,
    /// float32 elevation model, 256² tiles, deflate + floating-point predictor, NaN holes.
    DemTiff,
    /// 12-bit values (80..4000) in uint16 samples, 256² tiles, deflate + predictor 2.
    Tiff12,
    /// float32 elevation model as FITS (bottom-up rows, NaN holes).
    DemFits,
}

/// A smooth synthetic terrain in metres (with a NaN lake), for float benchmarks and the demo.
pub fn elevation(x: u32, y: u32, w: u32, h: u32) -> f32 {
    let (fx, fy) = (f64::from(x) / f64::from(w), f64::from(y) / f64::from(h));
    let (dx, dy) = (fx - 0.62, fy - 0.35);
    if dx * dx + dy * dy < 0.004 {
        return f32::NAN;
    }
    let t = std::f64::consts::TAU;
    let hsh = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77);
    let noise = f64::from(hsh >> 24) / 255.0 - 0.5;
    (1800.0 * (t * fx * 1.3).sin() * (t * fy * 0.9).cos()
        + 500.0 * (t * (fx * 7.0 + fy * 4.0)).sin()
        + 90.0 * (t * fx * 61.0).sin() * (t * fy * 47.0).sin()
        + 2.0 * noise
        + 2100.0) as f32
}

fn deflate(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = e.write_all(b);
    e.finish().unwrap_or_default()
}

/// Write a benchmark image of `kind` with the [`pattern`].
pub fn write_file(kind: Kind, width: u32, height: u32, path: &Path) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut w = std::io::BufWriter::with_capacity(4 << 20, file);
    match kind {
        Kind::Ppm | Kind::Pgm => {
            let spp = if kind == Kind::Ppm { 3 } else { 1 };
            write!(
                w,
                "P{}\n{width} {height}\n255\n",
                if spp == 3 { 6 } else { 5 }
            )?;
            let mut row = vec![0u8; width as usize * spp];
            for y in 0..height {
                for x in 0..width {
                    for c in 0..spp {
                        row[x as usize * spp + c] = pattern(x, y, c as u32);
                    }
                }
                w.write_all(&row)?;
            }
        }
        Kind::Bmp => {
            let stride = (u64::from(width) * 3).div_ceil(4) * 4;
            let size = 54 + stride * u64::from(height);
            w.write_all(b"BM")?;
            w.write_all(&(size.min(u64::from(u32::MAX)) as u32).to_le_bytes())?;
            w.write_all(&[0; 4])?;
            w.write_all(&54u32.to_le_bytes())?;
            w.write_all(&40u32.to_le_bytes())?;
            w.write_all(&(width as i32).to_le_bytes())?;
            w.write_all(&(height as i32).to_le_bytes())?;
            w.write_all(&1u16.to_le_bytes())?;
            w.write_all(&24u16.to_le_bytes())?;
            w.write_all(&[0; 24])?;
            let mut row = vec![0u8; stride as usize];
            for fy in 0..height {
                let y = height - 1 - fy;
                for x in 0..width {
                    let i = x as usize * 3;
                    row[i] = pattern(x, y, 2);
                    row[i + 1] = pattern(x, y, 1);
                    row[i + 2] = pattern(x, y, 0);
                }
                w.write_all(&row)?;
            }
        }
        Kind::TiffStrip => {
            let spec = TiffSpec::new(width, height, 3, 8, 2).strips(16);
            write_tiff(&mut w, &spec, &|x, y, c| u16::from(pattern(x, y, c)), None)?;
        }
        Kind::DemTiff => {
            let mut spec = TiffSpec::new(width, height, 1, 32, 1).tiles(256, 256);
            spec.sample_format = 3;
            spec.predictor = 3;
            let f = move |x, y, _| f64::from(elevation(x, y, width, height));
            write_tiff_data(&mut w, &spec, &f, Some((8, &deflate)))?;
        }
        Kind::Tiff12 => {
            let mut spec = TiffSpec::new(width, height, 1, 16, 1).tiles(256, 256);
            spec.predictor = 2;
            let f = move |x, y, _| {
                let e = f64::from(elevation(x, y, width, height));
                if e.is_nan() {
                    80.0
                } else {
                    (80.0 + (e + 400.0) * 0.85).clamp(80.0, 4000.0).round()
                }
            };
            write_tiff_data(&mut w, &spec, &f, Some((8, &deflate)))?;
        }
        Kind::DemFits => {
            let cards = [
                format!("{:<8}= {:>20}", "SIMPLE", "T"),
                format!("{:<8}= {:>20}", "BITPIX", -32),
                format!("{:<8}= {:>20}", "NAXIS", 2),
                format!("{:<8}= {:>20}", "NAXIS1", width),
                format!("{:<8}= {:>20}", "NAXIS2", height),
                format!("{:<8}= {:>20}", "BUNIT", "'m'"),
                "END".to_string(),
            ];
            let mut header = Vec::new();
            for c in cards {
                header.extend_from_slice(format!("{c:<80}").as_bytes());
            }
            header.resize(header.len().div_ceil(2880) * 2880, b' ');
            w.write_all(&header)?;
            let mut row = vec![0u8; width as usize * 4];
            for fy in 0..height {
                let y = height - 1 - fy;
                for x in 0..width {
                    let v = elevation(x, y, width, height);
                    row[x as usize * 4..x as usize * 4 + 4].copy_from_slice(&v.to_be_bytes());
                }
                w.write_all(&row)?;
            }
            let len = 2880 + u64::from(width) * u64::from(height) * 4;
            let pad = (len.div_ceil(2880) * 2880 - len) as usize;
            w.write_all(&vec![0u8; pad])?;
        }
        Kind::TiffTiledRgba => {
            let mut spec = TiffSpec::new(width, height, 4, 8, 2).tiles(256, 256);
            spec.extra_samples = vec![2];
            write_tiff(
                &mut w,
                &spec,
                &|x, y, c| {
                    if c == 3 {
                        255
                    } else {
                        u16::from(pattern(x, y, c))
                    }
                },
                None,
            )?;
        }
    }
    w.flush()
}

/// What TIFF to write.
#[derive(Debug, Clone)]
pub struct TiffSpec {
    pub width: u32,
    pub height: u32,
    pub samples: u16,
    pub bits: u16,
    pub photometric: u16,
    /// `Some((w, h))` for tiles, else strips of `rows_per_strip`.
    pub tiles: Option<(u32, u32)>,
    pub rows_per_strip: u32,
    pub planar: bool,
    pub big_endian: bool,
    pub bigtiff: bool,
    pub predictor: u16,
    pub extra_samples: Vec<u16>,
    /// 16-bit RGB entries, 3 × 2^bits.
    pub colormap: Vec<u16>,
    /// Extra pages (reduced resolution): each written after the first with NewSubfileType 1.
    pub subfile_type: u32,
    /// SampleFormat: 1 unsigned, 2 signed, 3 IEEE float (written when not 1).
    pub sample_format: u16,
    /// GDAL_NODATA (42113) text.
    pub nodata: Option<String>,
    /// ImageDescription text (OME-XML, say).
    pub description: Option<String>,
    /// Orientation (274), written when not 1.
    pub orientation: u16,
}

impl TiffSpec {
    pub fn new(width: u32, height: u32, samples: u16, bits: u16, photometric: u16) -> Self {
        Self {
            width,
            height,
            samples,
            bits,
            photometric,
            tiles: None,
            rows_per_strip: height,
            planar: false,
            big_endian: false,
            bigtiff: false,
            predictor: 1,
            extra_samples: Vec::new(),
            colormap: Vec::new(),
            subfile_type: 0,
            sample_format: 1,
            nodata: None,
            description: None,
            orientation: 1,
        }
    }
    pub fn strips(mut self, rows: u32) -> Self {
        self.rows_per_strip = rows;
        self.tiles = None;
        self
    }
    pub fn tiles(mut self, w: u32, h: u32) -> Self {
        self.tiles = Some((w, h));
        self
    }
}

/// Compression: TIFF code and the function that compresses one chunk's bytes.
pub type Compressor<'a> = (u16, &'a dyn Fn(&[u8]) -> Vec<u8>);

struct Out<'a, W: Write + Seek> {
    w: &'a mut W,
    be: bool,
}

impl<W: Write + Seek> Out<'_, W> {
    fn u16(&mut self, v: u16) -> std::io::Result<()> {
        self.w.write_all(&if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    }
    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.w.write_all(&if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    }
    fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.w.write_all(&if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    }
}

/// Stored bytes of value `v` as a sample of `spec`'s type (big- or little-endian).
fn sample_bytes(spec: &TiffSpec, v: f64, big_endian: bool) -> Vec<u8> {
    macro_rules! b {
        ($x:expr) => {
            if big_endian {
                $x.to_be_bytes().to_vec()
            } else {
                $x.to_le_bytes().to_vec()
            }
        };
    }
    match (spec.sample_format, spec.bits) {
        (3, 16) => b!(half::f16::from_f64(v).to_bits()),
        (3, 32) => b!(v as f32),
        (3, _) => b!(v),
        (2, 8) => vec![v as i8 as u8],
        (2, 16) => b!(v as i16),
        (2, 32) => b!(v as i32),
        (2, _) => b!(v as i64),
        (_, 8) => vec![v as u8],
        (_, 16) => b!(v as u16),
        (_, 32) => b!(v as u32),
        (_, _) => b!(v as u64),
    }
}

/// Pack samples of one chunk row-major (planar: one plane) into stored bytes.
fn chunk_bytes(
    spec: &TiffSpec,
    x0: u32,
    y0: u32,
    cw: u32,
    ch: u32,
    plane: Option<u16>,
    sample: &dyn Fn(u32, u32, u32) -> f64,
) -> Vec<u8> {
    let spp = if plane.is_some() { 1 } else { spec.samples };
    let bits = u64::from(spec.bits);
    let row_bytes = (u64::from(cw) * u64::from(spp) * bits).div_ceil(8) as usize;
    let mut out = vec![0u8; row_bytes * ch as usize];
    let bytes = (spec.bits / 8).max(1) as usize;
    for r in 0..ch {
        let row = &mut out[r as usize * row_bytes..(r as usize + 1) * row_bytes];
        let mut bit = 0usize;
        // Previous sample values per channel, for the horizontal predictor.
        let mut prev = vec![0u64; spp as usize];
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        for c in 0..cw {
            for s in 0..spp {
                let (x, y) = (x0 + c, y0 + r);
                let ch_index = plane.unwrap_or(s);
                let inside = x < spec.width && y < spec.height;
                let v = if inside {
                    sample(x, y, u32::from(ch_index))
                } else {
                    0.0
                };
                if spec.bits >= 8 {
                    // Predictor 3 works on big-endian bytes; everything else in file order.
                    let be = spec.big_endian || spec.predictor == 3;
                    let mut b = sample_bytes(spec, v, be);
                    if spec.predictor == 2 {
                        let mut w = [0u8; 8];
                        w[8 - bytes..].copy_from_slice(&sample_bytes(spec, v, true));
                        let cur = u64::from_be_bytes(w);
                        let d = cur.wrapping_sub(prev[s as usize]) & mask;
                        prev[s as usize] = cur;
                        let db = d.to_be_bytes();
                        b = db[8 - bytes..].to_vec();
                        if !spec.big_endian {
                            b.reverse();
                        }
                    }
                    row[bit / 8..bit / 8 + bytes].copy_from_slice(&b);
                } else {
                    let n = spec.bits as usize;
                    let shift = 8 - (bit % 8) - n;
                    row[bit / 8] |= ((v as u8) & ((1 << n) - 1)) << shift;
                }
                bit += spec.bits as usize;
            }
        }
        if spec.predictor == 3 {
            // libtiff's fpDiff: bytes regrouped most significant first, then differenced
            // with a stride of one pixel.
            let n = row.len() / bytes;
            let tmp = row.to_vec();
            for i in 0..n {
                for k in 0..bytes {
                    row[k * n + i] = tmp[i * bytes + k];
                }
            }
            let stride = spp as usize;
            for i in (stride..row.len()).rev() {
                row[i] = row[i].wrapping_sub(row[i - stride]);
            }
        }
    }
    out
}

/// Write `spec` filled with [`pattern`] (uncompressed) to `path`, and return the path.
pub fn pattern_tiff(path: &Path, spec: &TiffSpec) -> std::path::PathBuf {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    write_tiff(&mut f, spec, &|x, y, c| u16::from(pattern(x, y, c)), None).expect("tiff");
    f.flush().expect("flush");
    path.to_path_buf()
}

/// Write a one-page TIFF. `sample(x, y, channel)` gives stored sample values.
pub fn write_tiff<W: Write + Seek>(
    w: &mut W,
    spec: &TiffSpec,
    sample: &dyn Fn(u32, u32, u32) -> u16,
    compress: Option<Compressor<'_>>,
) -> std::io::Result<()> {
    write_tiff_pages(w, std::slice::from_ref(spec), &[sample], compress)
}

/// Write a one-page TIFF of any sample type: `sample(x, y, channel)` as `f64`, converted to
/// the spec's `sample_format` and `bits`.
pub fn write_tiff_data<W: Write + Seek>(
    w: &mut W,
    spec: &TiffSpec,
    sample: &dyn Fn(u32, u32, u32) -> f64,
    compress: Option<Compressor<'_>>,
) -> std::io::Result<()> {
    write_tiff_pages_data(w, std::slice::from_ref(spec), &[sample], compress)
}

/// A sample function of any type: `(x, y, channel) -> value`.
type DataSample<'a> = dyn Fn(u32, u32, u32) -> f64 + 'a;

/// Write several pages (e.g. a pyramid) into one TIFF.
pub fn write_tiff_pages<W: Write + Seek>(
    w: &mut W,
    specs: &[TiffSpec],
    samples: &[&dyn Fn(u32, u32, u32) -> u16],
    compress: Option<Compressor<'_>>,
) -> std::io::Result<()> {
    let wrapped: Vec<Box<DataSample<'_>>> = samples
        .iter()
        .map(|f| {
            Box::new(move |x, y, c| f64::from(f(x, y, c))) as Box<dyn Fn(u32, u32, u32) -> f64>
        })
        .collect();
    let refs: Vec<&dyn Fn(u32, u32, u32) -> f64> = wrapped.iter().map(|b| b.as_ref()).collect();
    write_tiff_pages_data(w, specs, &refs, compress)
}

/// [`write_tiff_pages`] with samples of any type.
pub fn write_tiff_pages_data<W: Write + Seek>(
    w: &mut W,
    specs: &[TiffSpec],
    samples: &[&dyn Fn(u32, u32, u32) -> f64],
    compress: Option<Compressor<'_>>,
) -> std::io::Result<()> {
    let first = &specs[0];
    let (be, big) = (first.big_endian, first.bigtiff);
    let base = w.stream_position()?;
    let mut o = Out { w, be };
    o.w.write_all(if be { b"MM" } else { b"II" })?;
    if big {
        o.u16(43)?;
        o.u16(8)?;
        o.u16(0)?;
        o.u64(0)?; // patched: first IFD
    } else {
        o.u16(42)?;
        o.u32(0)?;
    }
    // Where the pointer to the next IFD goes.
    let mut link_at = base + if big { 8 } else { 4 };
    for (spec, sample) in specs.iter().zip(samples) {
        let (cw, chh) = spec.tiles.unwrap_or((spec.width, spec.rows_per_strip));
        let across = spec.width.div_ceil(cw);
        let down = spec.height.div_ceil(chh);
        let planes: Vec<Option<u16>> = if spec.planar {
            (0..spec.samples).map(Some).collect()
        } else {
            vec![None]
        };
        let mut offsets = Vec::new();
        let mut counts = Vec::new();
        for plane in &planes {
            for ty in 0..down {
                for tx in 0..across {
                    let (x0, y0) = (tx * cw, ty * chh);
                    // Strips: the last one holds only the remaining rows.
                    let rows = if spec.tiles.is_some() {
                        chh
                    } else {
                        chh.min(spec.height - y0)
                    };
                    let raw = chunk_bytes(spec, x0, y0, cw, rows, *plane, *sample);
                    let data = match &compress {
                        Some((_, f)) => f(&raw),
                        None => raw,
                    };
                    offsets.push(o.w.stream_position()?);
                    counts.push(data.len() as u64);
                    o.w.write_all(&data)?;
                }
            }
        }
        // Out-of-line values.
        let mut entries: Vec<(u16, u16, Vec<u64>)> = Vec::new(); // tag, type, values
        const ASCII: u16 = 2;
        const SHORT: u16 = 3;
        const LONG: u16 = 4;
        const LONG8: u16 = 16;
        let off_type = if big { LONG8 } else { LONG };
        if spec.subfile_type != 0 {
            entries.push((254, LONG, vec![u64::from(spec.subfile_type)]));
        }
        entries.push((256, LONG, vec![u64::from(spec.width)]));
        entries.push((257, LONG, vec![u64::from(spec.height)]));
        entries.push((
            258,
            SHORT,
            vec![u64::from(spec.bits); spec.samples as usize],
        ));
        entries.push((
            259,
            SHORT,
            vec![u64::from(compress.as_ref().map_or(1, |c| c.0))],
        ));
        entries.push((262, SHORT, vec![u64::from(spec.photometric)]));
        let ascii = |t: &str| t.bytes().chain([0]).map(u64::from).collect::<Vec<u64>>();
        if let Some(d) = &spec.description {
            entries.push((270, ASCII, ascii(d)));
        }
        if spec.sample_format != 1 {
            entries.push((
                339,
                SHORT,
                vec![u64::from(spec.sample_format); spec.samples as usize],
            ));
        }
        if let Some(n) = &spec.nodata {
            entries.push((42113, ASCII, ascii(n)));
        }
        if spec.tiles.is_none() {
            entries.push((273, off_type, offsets.clone()));
        }
        if spec.orientation != 1 {
            entries.push((274, SHORT, vec![u64::from(spec.orientation)]));
        }
        entries.push((277, SHORT, vec![u64::from(spec.samples)]));
        if spec.tiles.is_none() {
            entries.push((278, LONG, vec![u64::from(spec.rows_per_strip)]));
            entries.push((279, off_type, counts.clone()));
        }
        entries.push((284, SHORT, vec![if spec.planar { 2 } else { 1 }]));
        if spec.predictor != 1 {
            entries.push((317, SHORT, vec![u64::from(spec.predictor)]));
        }
        if !spec.colormap.is_empty() {
            entries.push((
                320,
                SHORT,
                spec.colormap.iter().map(|&v| u64::from(v)).collect(),
            ));
        }
        if let Some((tw, th)) = spec.tiles {
            entries.push((322, LONG, vec![u64::from(tw)]));
            entries.push((323, LONG, vec![u64::from(th)]));
            entries.push((324, off_type, offsets.clone()));
            entries.push((325, off_type, counts.clone()));
        }
        if !spec.extra_samples.is_empty() {
            entries.push((
                338,
                SHORT,
                spec.extra_samples.iter().map(|&v| u64::from(v)).collect(),
            ));
        }
        entries.sort_by_key(|e| e.0);
        let size_of = |t: u16| match t {
            ASCII => 1,
            SHORT => 2,
            LONG => 4,
            _ => 8,
        };
        let inline = if big { 8 } else { 4 };
        // Write arrays that don't fit inline, remember where.
        let mut where_: Vec<Option<u64>> = Vec::new();
        for (_, t, vals) in &entries {
            if vals.len() * size_of(*t) > inline {
                if o.w.stream_position()? % 2 == 1 {
                    o.w.write_all(&[0])?;
                }
                where_.push(Some(o.w.stream_position()?));
                for &v in vals {
                    match *t {
                        ASCII => o.w.write_all(&[v as u8])?,
                        SHORT => o.u16(v as u16)?,
                        LONG => o.u32(v as u32)?,
                        _ => o.u64(v)?,
                    }
                }
            } else {
                where_.push(None);
            }
        }
        if o.w.stream_position()? % 2 == 1 {
            o.w.write_all(&[0])?;
        }
        let ifd = o.w.stream_position()?;
        // Link the previous IFD (or the header) to this one.
        o.w.seek(SeekFrom::Start(link_at))?;
        if big {
            o.u64(ifd - base)?;
        } else {
            o.u32((ifd - base) as u32)?;
        }
        o.w.seek(SeekFrom::Start(ifd))?;
        if big {
            o.u64(entries.len() as u64)?;
        } else {
            o.u16(entries.len() as u16)?;
        }
        for ((tag, t, vals), at) in entries.iter().zip(&where_) {
            o.u16(*tag)?;
            o.u16(*t)?;
            if big {
                o.u64(vals.len() as u64)?;
            } else {
                o.u32(vals.len() as u32)?;
            }
            let mut field = Vec::new();
            match at {
                Some(pos) => {
                    if big {
                        field.extend_from_slice(&if be {
                            (pos - base).to_be_bytes()
                        } else {
                            (pos - base).to_le_bytes()
                        });
                    } else {
                        let p = (pos - base) as u32;
                        field.extend_from_slice(&if be {
                            p.to_be_bytes()
                        } else {
                            p.to_le_bytes()
                        });
                    }
                }
                None => {
                    for &v in vals {
                        match *t {
                            ASCII => field.push(v as u8),
                            SHORT => field.extend_from_slice(&if be {
                                (v as u16).to_be_bytes()
                            } else {
                                (v as u16).to_le_bytes()
                            }),
                            LONG => field.extend_from_slice(&if be {
                                (v as u32).to_be_bytes()
                            } else {
                                (v as u32).to_le_bytes()
                            }),
                            _ => field.extend_from_slice(&if be {
                                v.to_be_bytes()
                            } else {
                                v.to_le_bytes()
                            }),
                        }
                    }
                }
            }
            field.resize(inline, 0);
            o.w.write_all(&field)?;
        }
        link_at = o.w.stream_position()?;
        if big {
            o.u64(0)?;
        } else {
            o.u32(0)?;
        }
    }
    o.w.seek(SeekFrom::End(0))?;
    Ok(())
}
