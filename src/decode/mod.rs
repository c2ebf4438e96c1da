//! Descriptor + bytes → pixels.
//!
//! A [`Piece`] is one decoded unit (or a column window of a raw unit) as 8-bit RGBA, plus the
//! native sample values where RGBA cannot give them back (16-bit, palette index, CMYK, odd
//! maxval). Raw units are read here directly; codecs live in the submodules.

pub mod fits_tile;
pub mod indexed;
pub mod jpeg2000;
pub mod lerc;
pub mod libjpeg;

pub mod stream;
pub mod subsample;
pub mod tiff;

use crate::data::SampleBuf;
use crate::error::FormatError;
use crate::format::{Extent, Page, Storage};
use crate::sample::{self, NativeRow};
use crate::source::Source;

/// Native sample values of a piece, when RGBA does not carry them.
#[derive(Debug, Clone)]
pub enum Native {
    /// Read them back from the RGBA (8-bit gray/RGB/RGBA, bilevel).
    Derived,
    U8 {
        channels: usize,
        data: Vec<u8>,
    },
    U16 {
        channels: usize,
        data: Vec<u16>,
    },
    /// A data page's samples in their own type: the piece has no RGBA (the display mapping
    /// colours it).
    Data {
        channels: usize,
        data: SampleBuf,
    },
}

/// A decoded rectangle of an image.
#[derive(Debug, Clone)]
pub struct Piece {
    pub extent: Extent,
    pub rgba: Vec<u8>,
    pub native: Native,
}

impl Piece {
    /// A zeroed piece for `extent`, with native storage as `format` needs.
    pub fn new(extent: Extent, format: &sample::RawFormat) -> Self {
        let n = extent.pixels() as usize;
        if let Some(t) = format.data_type() {
            let channels = usize::from(format.samples);
            return Self {
                extent,
                rgba: Vec::new(),
                native: Native::Data {
                    channels,
                    data: SampleBuf::zeroed(t, n * channels),
                },
            };
        }
        let native = match format.native_layout() {
            None => Native::Derived,
            Some((channels, false)) => Native::U8 {
                channels,
                data: vec![0; n * channels],
            },
            Some((channels, true)) => Native::U16 {
                channels,
                data: vec![0; n * channels],
            },
        };
        Self {
            extent,
            rgba: vec![0; n * 4],
            native,
        }
    }

    /// Bytes held in memory, for the cache's budget.
    pub fn byte_size(&self) -> usize {
        self.rgba.len()
            + match &self.native {
                Native::Derived => 0,
                Native::U8 { data, .. } => data.len(),
                Native::U16 { data, .. } => data.len() * 2,
                Native::Data { data, .. } => data.byte_size(),
            }
            + std::mem::size_of::<Self>()
    }

    /// The RGBA row `y` (relative to the piece) and where its native values go.
    pub fn row_mut(&mut self, y: usize) -> (&mut [u8], NativeRow<'_>) {
        let w = self.extent.width() as usize;
        let rgba = self
            .rgba
            .get_mut(y * w * 4..(y + 1) * w * 4)
            .unwrap_or_default();
        let native = match &mut self.native {
            Native::Data { channels, data } => NativeRow::Data {
                buf: data,
                at: y * w * *channels,
            },
            Native::Derived => NativeRow::None,
            Native::U8 { channels, data } => {
                NativeRow::U8(&mut data[y * w * *channels..(y + 1) * w * *channels])
            }
            Native::U16 { channels, data } => {
                NativeRow::U16(&mut data[y * w * *channels..(y + 1) * w * *channels])
            }
        };
        (rgba, native)
    }

    /// Columns `x0..x1` (image coordinates, inside the piece) as a piece of their own.
    pub fn crop_columns(&self, x0: u32, x1: u32) -> Piece {
        let e = self.extent;
        let (w, cw) = (e.width() as usize, (x1 - x0) as usize);
        let from = (x0 - e.x0) as usize;
        let rows = e.height() as usize;
        fn crop<T: Copy>(
            data: &[T],
            ch: usize,
            (w, from, cw, rows): (usize, usize, usize, usize),
        ) -> Vec<T> {
            let mut out = Vec::with_capacity(rows * cw * ch);
            for r in 0..rows {
                out.extend_from_slice(&data[(r * w + from) * ch..(r * w + from + cw) * ch]);
            }
            out
        }
        let dims = (w, from, cw, rows);
        let native = match &self.native {
            Native::Derived => Native::Derived,
            Native::U8 { channels, data } => Native::U8 {
                channels: *channels,
                data: crop(data, *channels, dims),
            },
            Native::U16 { channels, data } => Native::U16 {
                channels: *channels,
                data: crop(data, *channels, dims),
            },
            Native::Data { channels, data } => Native::Data {
                channels: *channels,
                data: crate::with_samples!(data, v => SampleBuf::from(crop(v, *channels, dims))),
            },
        };
        let rgba = if self.rgba.is_empty() {
            Vec::new()
        } else {
            crop(&self.rgba, 4, dims)
        };
        Piece {
            extent: Extent::new(x0, e.y0, x1, e.y1),
            rgba,
            native,
        }
    }

    /// RGBA of image pixel (x, y), if inside.
    pub fn rgba_at(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if !self.extent.contains(x, y) {
            return None;
        }
        let i = ((y - self.extent.y0) as usize * self.extent.width() as usize
            + (x - self.extent.x0) as usize)
            * 4;
        self.rgba.get(i..i + 4).map(|p| [p[0], p[1], p[2], p[3]])
    }

    /// The data samples of a data piece, and their channel count.
    pub fn samples(&self) -> Option<(&SampleBuf, usize)> {
        match &self.native {
            Native::Data { channels, data } => Some((data, *channels)),
            _ => None,
        }
    }

    /// Native values of image pixel (x, y) in the mode's channel order (stored values; a
    /// data page's NaN stays NaN).
    pub fn native_at(&self, x: u32, y: u32, mode: crate::format::Mode) -> Option<Vec<f64>> {
        if !self.extent.contains(x, y) {
            return None;
        }
        let i = (y - self.extent.y0) as usize * self.extent.width() as usize
            + (x - self.extent.x0) as usize;
        if let Native::Data { channels, data } = &self.native {
            return Some((0..*channels).map(|c| data.get(i * channels + c)).collect());
        }
        let px = self.rgba_at(x, y)?;
        let values: Vec<u32> = match &self.native {
            Native::Derived => {
                let n = mode.channel_names().len();
                match mode {
                    crate::format::Mode::Bilevel => vec![u32::from(px[0] > 127)],
                    crate::format::Mode::L => vec![u32::from(px[0])],
                    crate::format::Mode::La => vec![u32::from(px[0]), u32::from(px[3])],
                    _ => px.iter().take(n).map(|&v| u32::from(v)).collect(),
                }
            }
            Native::U8 { channels, data } => data[i * channels..(i + 1) * channels]
                .iter()
                .map(|&v| u32::from(v))
                .collect(),
            Native::U16 { channels, data } => data[i * channels..(i + 1) * channels]
                .iter()
                .map(|&v| u32::from(v))
                .collect(),
            Native::Data { .. } => Vec::new(),
        };
        Some(values.into_iter().map(f64::from).collect())
    }
}

/// A piece made of stored rows `row_bytes` apart (a decompressed chunk, a decoder's output),
/// unpacked by `raw`; rows beyond the data stay zero.
pub(crate) fn piece_from_rows(
    extent: Extent,
    raw: &sample::RawFormat,
    palette: Option<&[[u8; 4]]>,
    data: &[u8],
    row_bytes: usize,
) -> Piece {
    let mut piece = Piece::new(extent, raw);
    let w = extent.width() as usize;
    for (y, src) in data
        .chunks_exact(row_bytes.max(1))
        .take(extent.height() as usize)
        .enumerate()
    {
        let (rgba, native) = piece.row_mut(y);
        raw.unpack_row(src, w, palette, rgba, native);
    }
    piece
}

/// The stored bytes of one compressed chunk (a TIFF chunk we decompress ourselves, a FITS
/// tile), at most [`crate::format::tiff::MAX_CHUNK_BYTES`] of them: no allocation sized by a
/// header beyond that.
pub(crate) fn read_chunk(
    source: &Source,
    offset: u64,
    len: u64,
    what: &str,
) -> Result<Vec<u8>, FormatError> {
    if len > crate::format::tiff::MAX_CHUNK_BYTES {
        return Err(FormatError::too_large(format!("{what} of {len} bytes")));
    }
    let mut buf = vec![0u8; len as usize];
    source.read_exact_at(offset, &mut buf)?;
    Ok(buf)
}

/// Decode the piece `extent` (columns from `pieces::Geometry`) of `unit`. Sequential streams are not
/// decoded here: see [`stream::decode_bands`].
pub fn decode_piece(
    source: &Source,
    page: &Page,
    unit: u64,
    extent: Extent,
    tiff_cache: &mut tiff::DecoderCache,
) -> Result<Piece, FormatError> {
    match &page.storage {
        Storage::Raw { .. } => read_raw(source, page, unit, extent),
        Storage::Chunks { codec, .. } if *codec == crate::format::Codec::Raw => {
            read_raw(source, page, unit, extent)
        }
        Storage::Chunks { .. } => tiff::decode_chunk(source, page, unit, tiff_cache),
        Storage::Indexed { .. } => indexed::decode_band(source, page, unit),
        Storage::Tiles(_) => fits_tile::decode_unit(source, page, unit),
        Storage::J2k { .. } => jpeg2000::decode_unit(source, page, unit, extent),
        Storage::Jxl(d) => crate::format::jxl::decode_unit(source, page, d, unit),
        Storage::Stream { .. } => Err(FormatError::invalid(
            "internal: stream bands decode through decode_bands",
        )),
    }
}

/// Read a window of an uncompressed unit, only the rows and columns of `extent`.
fn read_raw(source: &Source, page: &Page, unit: u64, extent: Extent) -> Result<Piece, FormatError> {
    let full = page.grid.unit_extent(unit);
    let raw = page.raw;
    let mut piece = Piece::new(extent, &raw);
    let (w, h) = (extent.width() as usize, extent.height() as usize);
    let palette = page.palette.as_deref().map(Vec::as_slice);
    match &page.storage {
        Storage::Raw {
            base,
            stride,
            bottom_up,
            planes,
            plane_stride,
        } => {
            let planes = (*planes).max(1) as usize;
            let plane_raw = if planes > 1 {
                sample::RawFormat { samples: 1, ..raw }
            } else {
                raw
            };
            let skip = plane_raw.column_byte(extent.x0);
            let width_bytes = plane_raw.row_bytes(extent.x1) - skip;
            let width_bytes = width_bytes.min(stride - skip) as usize;
            // Stored rows in file order: top-down from y0, or bottom-up from y1-1.
            let first = if *bottom_up {
                u64::from(page.height - extent.y1)
            } else {
                u64::from(extent.y0)
            };
            let mut bufs = Vec::with_capacity(planes);
            for p in 0..planes as u64 {
                let mut buf = vec![0u8; h * width_bytes];
                source.read_rows(
                    base + p * plane_stride + first * stride,
                    *stride,
                    h,
                    skip,
                    width_bytes,
                    &mut buf,
                )?;
                bufs.push(buf);
            }
            let (data, row_len) = if planes == 1 {
                (bufs.pop().unwrap_or_default(), width_bytes)
            } else {
                let rows = interleave_planes(&bufs, width_bytes, raw.bits, w);
                (rows, width_bytes * planes)
            };
            for (i, src) in data.chunks_exact(row_len.max(1)).enumerate().take(h) {
                let y = if *bottom_up { h - 1 - i } else { i };
                let (rgba, native) = piece.row_mut(y);
                raw.unpack_row(src, w, palette, rgba, native);
            }
        }
        Storage::Chunks {
            planes,
            chunk_stride,
            ..
        } => {
            let planes = *planes as usize;
            let plane_raw = if planes > 1 {
                sample::RawFormat { samples: 1, ..raw }
            } else {
                raw
            };
            let skip = plane_raw.column_byte(extent.x0 - full.x0);
            let width_bytes = (plane_raw.row_bytes(extent.x1 - full.x0) - skip) as usize;
            let mut plane_bufs = Vec::with_capacity(planes);
            for p in 0..planes {
                let (off, len) = page.unit_bytes(unit, p as u32);
                // The band starts at `off`; rows beyond the stored length are missing data.
                let need = (h as u64 - 1) * chunk_stride + skip + width_bytes as u64;
                if need > len {
                    return Err(FormatError::truncated(format!(
                        "uncompressed chunk at offset {off} holds {len} bytes, {need} needed"
                    )));
                }
                let mut buf = vec![0u8; h * width_bytes];
                source.read_rows(off, *chunk_stride, h, skip, width_bytes, &mut buf)?;
                plane_bufs.push(buf);
            }
            if planes == 1 {
                for (y, src) in plane_bufs[0].chunks_exact(width_bytes).enumerate() {
                    let (rgba, native) = piece.row_mut(y);
                    raw.unpack_row(src, w, palette, rgba, native);
                }
            } else {
                let row = interleave_planes(&plane_bufs, width_bytes, raw.bits, w);
                let row_len = row.len() / h.max(1);
                for (y, src) in row.chunks_exact(row_len.max(1)).enumerate().take(h) {
                    let (rgba, native) = piece.row_mut(y);
                    raw.unpack_row(src, w, palette, rgba, native);
                }
            }
        }
        _ => unreachable!("read_raw is only called for raw storage"),
    }
    Ok(piece)
}

/// Interleave planar rows (`planes[p]` holds `h` rows of `row_bytes`) into chunky rows.
/// Only whole-byte samples are planar in practice; sub-byte planes are rejected upstream.
pub fn interleave_planes(planes: &[Vec<u8>], row_bytes: usize, bits: u8, width: usize) -> Vec<u8> {
    let n = planes.len();
    let bps = usize::from(bits / 8).max(1);
    let rows = planes.first().map_or(0, |p| p.len() / row_bytes.max(1));
    let mut out = vec![0u8; rows * width * n * bps];
    for r in 0..rows {
        for (p, plane) in planes.iter().enumerate() {
            let src = &plane[r * row_bytes..];
            for x in 0..width {
                let d = (r * width + x) * n * bps + p * bps;
                out[d..d + bps].copy_from_slice(&src[x * bps..x * bps + bps]);
            }
        }
    }
    out
}
