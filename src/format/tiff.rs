//! TIFF and BigTIFF: one descriptor per strip or tile (per plane for planar files), every IFD a
//! page. The `tiff` crate walks the IFD chain (with loop detection) and reads the tags; we turn
//! them into descriptors ourselves because its decoder exposes no per-chunk offsets API beyond
//! the raw tags, and we read uncompressed chunks ourselves (column windows, mmap). Compressed
//! chunks are decompressed by the `tiff` crate's `read_chunk` (see `decode::tiff`).

use std::sync::Arc;

use tiff::decoder::{Decoder, Limits};
use tiff::tags::Tag;

use super::{
    Codec, FileFormat, Grid, Layout, Mode, Page, Storage, check_dimensions, raw_band_rows,
};
use crate::data::{DataInfo, SampleType};
use crate::error::FormatError;
use crate::sample::{PixelKind, RawFormat};
use crate::source::{Source, SourceReader};

/// Pages beyond this are not read (a chain this long is a hostile file).
const MAX_PAGES: usize = 4096;
/// Largest chunk (one plane) we decompress: bigger ones would need more than a few MB each.
pub const MAX_CHUNK_BYTES: u64 = 256 << 20;

pub fn tiff_error(e: tiff::TiffError) -> FormatError {
    match e {
        tiff::TiffError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            FormatError::truncated("TIFF data ends early")
        }
        tiff::TiffError::IoError(source) => FormatError::Io { offset: 0, source },
        tiff::TiffError::UnsupportedError(e) => FormatError::unsupported(format!("TIFF: {e}")),
        tiff::TiffError::LimitsExceeded => FormatError::too_large("TIFF data exceeds limits"),
        other => FormatError::invalid(format!("TIFF: {other}")),
    }
}

/// Limits for the `tiff` crate: tag arrays can't be bigger than the file itself.
pub fn limits(file_len: u64) -> Limits {
    let mut l = Limits::unlimited();
    l.ifd_value_size = file_len.min(1 << 30) as usize;
    l.decoding_buffer_size = MAX_CHUNK_BYTES as usize;
    l.intermediate_buffer_size = MAX_CHUNK_BYTES as usize;
    l
}

/// A `tiff` decoder over the source, positioned at page `ifd`.
fn open_decoder<S: std::ops::Deref<Target = Source>>(
    source: S,
    ifd: usize,
) -> Result<Decoder<SourceReader<S>>, FormatError> {
    let len = source.len();
    let mut d = Decoder::new(SourceReader::new(source, 0))
        .map_err(tiff_error)?
        .with_limits(limits(len));
    if ifd > 0 {
        d.seek_to_image(ifd).map_err(tiff_error)?;
    }
    Ok(d)
}

/// A decoder that owns its source, for the workers' caches.
pub fn open_decoder_owned(
    source: Arc<Source>,
    ifd: usize,
) -> Result<Decoder<SourceReader<Arc<Source>>>, FormatError> {
    open_decoder(source, ifd)
}

pub fn parse(source: &Source) -> Result<Layout, FormatError> {
    let mut d = open_decoder(source, 0)?;
    let mut pages = Vec::new();
    loop {
        pages.push(parse_page(&mut d, pages.len())?);
        if !d.more_images() || pages.len() >= MAX_PAGES {
            break;
        }
        d.next_image().map_err(tiff_error)?;
    }
    Ok(Layout {
        format: FileFormat::Tiff,
        pages,
    })
}

fn tag_u16(d: &mut TiffDecoder, tag: Tag, default: u16) -> Result<u16, FormatError> {
    Ok(d.find_tag_unsigned::<u16>(tag)
        .map_err(tiff_error)?
        .unwrap_or(default))
}

type TiffDecoder<'a> = Decoder<SourceReader<&'a Source>>;

/// One IFD as a page: its samples, pixel kind, palette and chunk layout.
fn parse_page(d: &mut TiffDecoder, ifd_index: usize) -> Result<Page, FormatError> {
    let (w, h) = d.dimensions().map_err(tiff_error)?;
    let (width, height) = check_dimensions(u64::from(w), u64::from(h))?;
    let compression = tag_u16(d, Tag::Compression, 1)?;
    let photometric = d
        .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
        .map_err(tiff_error)?
        .ok_or_else(|| FormatError::invalid("TIFF page has no PhotometricInterpretation"))?;
    let Samples {
        per_pixel,
        bits,
        format,
    } = samples(d)?;
    let planar = tag_u16(d, Tag::PlanarConfiguration, 1)? == 2 && per_pixel > 1;
    let predictor = tag_u16(d, Tag::Predictor, 1)?;
    let extras = d
        .find_tag_unsigned_vec::<u16>(Tag::ExtraSamples)
        .map_err(tiff_error)?
        .unwrap_or_default();
    let alpha = extras.first().copied();
    let subfile = d
        .find_tag_unsigned::<u32>(Tag::NewSubfileType)
        .map_err(tiff_error)?
        .unwrap_or(0);
    let data = data_type(photometric, per_pixel, alpha, bits, format)?;
    let (mode, kind, premultiplied) = match data {
        Some(t) => (Mode::Data, PixelKind::Data(t), false),
        None => pixel_kind(photometric, per_pixel, alpha, bits, compression)?,
    };
    if planar && bits < 8 {
        return Err(FormatError::unsupported(
            "planar TIFF with sub-byte samples",
        ));
    }
    let mut raw = RawFormat::new(kind, bits as u8)
        .with_samples(per_pixel as u8)
        .premultiplied(premultiplied);
    if d.byte_order() == tiff::tags::ByteOrder::LittleEndian {
        raw = raw.little_endian();
    }
    // Read once: OME-XML channel names and the pixel size both come from it.
    let description = d
        .find_tag(Tag::ImageDescription)
        .ok()
        .flatten()
        .and_then(|v| v.into_string().ok())
        .unwrap_or_default();
    let data = match data {
        Some(t) => Some(Arc::new(data_info(
            d,
            &description,
            t,
            per_pixel,
            photometric,
        )?)),
        None => None,
    };
    let palette = if kind == PixelKind::Palette {
        Some(Arc::new(palette(d, bits)?))
    } else {
        None
    };
    let chunks = chunks(d, width, height)?;
    let planes = if planar { u32::from(per_pixel) } else { 1 };
    let chunk_raw = if planar {
        RawFormat { samples: 1, ..raw }
    } else {
        raw
    };
    let (chunk_w, chunk_h) = (chunks.width, chunks.height);
    let chunk_stride = chunk_raw.row_bytes(chunk_w);
    let chunk_bytes = chunk_stride * u64::from(chunk_h);
    let codec = codec(compression)?;
    // Split big uncompressed strips into bands; compressed chunks decode whole, so cap them.
    let max_band_rows = if codec == Codec::Raw && !chunks.tiled {
        // A unit holds every plane: size bands by all of them.
        raw_band_rows(chunk_stride.saturating_mul(u64::from(planes)))
    } else {
        if chunk_bytes.saturating_mul(u64::from(planes)) > MAX_CHUNK_BYTES {
            return Err(FormatError::too_large(format!(
                "TIFF {} of {chunk_w}x{chunk_h} ({chunk_bytes} bytes x {planes} planes) exceeds {MAX_CHUNK_BYTES}",
                if chunks.tiled {
                    "tile"
                } else {
                    "compressed strip"
                }
            )));
        }
        chunk_h
    };
    let grid = Grid::new(width, height, chunk_w, chunk_h, max_band_rows);
    let needed = u64::from(grid.across()) * u64::from(grid.chunk_rows()) * u64::from(planes);
    let (offsets, mut lengths) = (chunks.offsets, chunks.lengths);
    if (offsets.len() as u64) < needed || (lengths.len() as u64) < needed {
        return Err(FormatError::invalid(format!(
            "TIFF page {ifd_index} has {} offsets and {} byte counts for {needed} chunks",
            offsets.len(),
            lengths.len()
        )));
    }
    if codec == Codec::Raw {
        // Uncompressed chunks have a known size; a byte count that lies can't make us read more
        // (or less) than the chunk, and the end of the file bounds what is really there.
        for l in lengths.iter_mut() {
            *l = (*l).min(chunk_bytes);
            if *l == 0 {
                *l = chunk_bytes;
            }
        }
    }
    Ok(Page {
        width,
        height,
        mode,
        raw,
        palette,
        grid,
        storage: Storage::Chunks {
            offsets: Arc::new(offsets),
            lengths: Arc::new(lengths),
            codec,
            compression,
            predictor,
            planes,
            chunk_stride,
            ifd_index,
        },
        reduced: subfile & 1 == 1,
        data,
        physical: physical_size(d, &description),
        // An unreadable Orientation shows the rows as stored, as libtiff does.
        orientation: crate::orientation::Orientation::from_exif(
            d.find_tag_unsigned::<u16>(Tag::Orientation)
                .ok()
                .flatten()
                .unwrap_or(1),
        ),
    })
}

/// The pixel size the page's tags give: OME-XML or Aperio's description, GeoTIFF's
/// ModelPixelScale, ImageJ's unit with the resolution tags, or the resolution tags alone.
/// Unreadable tags give no size rather than an error.
fn physical_size(d: &mut TiffDecoder, description: &str) -> Option<crate::physical::PixelSize> {
    use crate::physical::{self, PixelSize, Unit};
    if description.contains("<OME")
        && let Some(p) = physical::from_ome(description)
    {
        return Some(p);
    }
    if let Some(p) = physical::from_aperio(description) {
        return Some(p);
    }
    if let Some(scale) = d.find_tag(Tag::ModelPixelScaleTag).ok().flatten() {
        let scale = scale.into_f64_vec().unwrap_or_default();
        let keys = d
            .find_tag(Tag::GeoKeyDirectoryTag)
            .ok()
            .flatten()
            .and_then(|v| v.into_u16_vec().ok())
            .unwrap_or_default();
        if let Some(p) = physical::from_geotiff(&scale, &keys) {
            return Some(p);
        }
    }
    let rational = |d: &mut TiffDecoder, tag| match d.find_tag(tag).ok().flatten()? {
        tiff::decoder::ifd::Value::Rational(n, m) if m != 0 => Some(f64::from(n) / f64::from(m)),
        v => v.into_f64().ok(),
    };
    let (x, y) = (
        rational(d, Tag::XResolution)?,
        rational(d, Tag::YResolution)?,
    );
    // ImageJ keeps pixels per the `unit=` of its description, with ResolutionUnit "none".
    if description.starts_with("ImageJ=") {
        let per = description.lines().find_map(|l| {
            Some(match l.strip_prefix("unit=")?.trim() {
                "micron" | "um" | "µm" => 1e-6,
                "nm" => 1e-9,
                "mm" => 1e-3,
                "cm" => 1e-2,
                "m" | "meter" => 1.0,
                _ => return None,
            })
        })?;
        return PixelSize::new(per / x, per / y, Unit::Metre, "ImageJ unit and resolution");
    }
    let unit = d
        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
        .ok()
        .flatten()
        .unwrap_or(2);
    physical::from_tiff_resolution(x, y, unit)
}

/// The sample type when a page is scientific data rather than a picture: signed or float
/// samples, 32 or 64 bits, 16-bit gray or RGB, or gray with extra channels that are not alpha.
/// 8-bit (and smaller) pictures stay pictures.
fn data_type(
    photometric: u16,
    samples: u16,
    alpha: Option<u16>,
    bits: u16,
    format: u16,
) -> Result<Option<SampleType>, FormatError> {
    let has_alpha = matches!(alpha, Some(1 | 2));
    let data = format != 1
        || bits >= 32
        || (bits == 16 && matches!(photometric, 0..=2) && !has_alpha)
        || (matches!(photometric, 0 | 1) && samples > 1 && !has_alpha && bits >= 8);
    if !data {
        return Ok(None);
    }
    if !matches!(photometric, 0..=2) {
        return Err(FormatError::unsupported(format!(
            "TIFF photometric interpretation {photometric} with {bits}-bit samples of format {format}"
        )));
    }
    SampleType::from_tiff(format, bits)
        .map(Some)
        .ok_or_else(|| {
            FormatError::unsupported(format!(
                "TIFF sample format {format} with {bits} bits per sample"
            ))
        })
}

/// Channel names (OME-XML in ImageDescription), the GDAL no-data value, RGB-ness.
fn data_info(
    d: &mut TiffDecoder,
    description: &str,
    sample: SampleType,
    channels: u16,
    photometric: u16,
) -> Result<DataInfo, FormatError> {
    let mut info = DataInfo::new(sample, usize::from(channels));
    info.rgb = photometric == 2;
    if description.contains("<OME") {
        info = info.with_names(crate::data::ome_channel_names(description));
    }
    if let Ok(Some(v)) = d.find_tag(Tag::GdalNodata)
        && let Ok(text) = v.into_string()
    {
        let t = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        info.nodata = match t.to_ascii_lowercase().as_str() {
            "nan" => None,
            _ => t.parse::<f64>().ok().filter(|v| v.is_finite()),
        };
    }
    Ok(info)
}

/// Samples per pixel, bits per sample and SampleFormat, checked: one bit depth and format for
/// every sample.
struct Samples {
    per_pixel: u16,
    bits: u16,
    format: u16,
}

fn samples(d: &mut TiffDecoder) -> Result<Samples, FormatError> {
    let per_pixel = tag_u16(d, Tag::SamplesPerPixel, 1)?;
    let bits_list = d
        .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)
        .map_err(tiff_error)?
        .unwrap_or_else(|| vec![1]);
    let bits = bits_list.first().copied().unwrap_or(1);
    if bits_list.iter().any(|&b| b != bits) {
        return Err(FormatError::unsupported(format!(
            "TIFF with mixed bits per sample {bits_list:?}"
        )));
    }
    if !matches!(bits, 1 | 2 | 4 | 8 | 16 | 32 | 64) {
        return Err(FormatError::unsupported(format!(
            "TIFF with {bits} bits per sample"
        )));
    }
    let formats = d
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(tiff_error)?
        .unwrap_or_else(|| vec![1]);
    let format = formats.first().copied().unwrap_or(1);
    if formats.iter().any(|&f| f != format) {
        return Err(FormatError::unsupported(format!(
            "TIFF with mixed sample formats {formats:?}"
        )));
    }
    // 4 (undefined) reads as unsigned, as libtiff does.
    let format = if format == 4 { 1 } else { format };
    if !matches!(format, 1..=3) {
        return Err(FormatError::unsupported(format!(
            "TIFF sample format {format} (complex or unknown)"
        )));
    }
    if per_pixel == 0 || per_pixel > 255 {
        return Err(FormatError::invalid(format!(
            "TIFF SamplesPerPixel {per_pixel} (1 to 255 supported)"
        )));
    }
    Ok(Samples {
        per_pixel,
        bits,
        format,
    })
}

/// The mode and pixel kind of a photometric interpretation with `samples` samples (`alpha`:
/// the first ExtraSamples value), and whether its alpha is premultiplied.
fn pixel_kind(
    photometric: u16,
    samples: u16,
    alpha: Option<u16>,
    bits: u16,
    compression: u16,
) -> Result<(Mode, PixelKind, bool), FormatError> {
    let wide = bits == 16;
    let pick = |narrow: Mode, wide_mode: Mode| if wide { wide_mode } else { narrow };
    let gray = PixelKind::Gray {
        white_is_zero: photometric == 0,
    };
    let has_alpha = matches!(alpha, Some(1 | 2));
    let found = match (photometric, samples) {
        (0 | 1, 1) if bits == 1 => (Mode::Bilevel, gray, false),
        (0 | 1, 1) => (pick(Mode::L, Mode::I16), gray, false),
        (0 | 1, _) if has_alpha => (
            pick(Mode::La, Mode::La16),
            PixelKind::GrayA,
            alpha == Some(1),
        ),
        (0 | 1, _) => (pick(Mode::L, Mode::I16), gray, false),
        (2, 3) => (pick(Mode::Rgb, Mode::Rgb16), PixelKind::Rgb, false),
        (2, s) if s > 3 && has_alpha => (
            pick(Mode::Rgba, Mode::Rgba16),
            PixelKind::Rgba,
            alpha == Some(1),
        ),
        (2, s) if s > 3 => (pick(Mode::Rgb, Mode::Rgb16), PixelKind::Rgb, false),
        (3, 1) if wide => {
            return Err(FormatError::unsupported("TIFF palette with 16-bit indices"));
        }
        (3, 1) => (Mode::P, PixelKind::Palette, false),
        (5, 4) => (
            pick(Mode::Cmyk, Mode::Cmyk16),
            PixelKind::Cmyk { inverted: false },
            false,
        ),
        (5, s) if s > 4 => (Mode::Cmyka, PixelKind::Cmyk { inverted: false }, false),
        (6, 3) if compression == 7 && bits != 8 => {
            return Err(FormatError::unsupported(
                "TIFF YCbCr with other than 8 bits",
            ));
        }
        (6, 3) if compression == 7 => (Mode::Rgb, PixelKind::YCbCr, false),
        _ => {
            return Err(FormatError::unsupported(format!(
                "TIFF photometric interpretation {photometric} with {samples} samples{}",
                if photometric == 6 {
                    " (YCbCr without JPEG compression)"
                } else {
                    ""
                }
            )));
        }
    };
    Ok(found)
}

/// A palette page's ColorMap as RGBA, 256 entries (16-bit colour values keep their top byte).
fn palette(d: &mut TiffDecoder, bits: u16) -> Result<Vec<[u8; 4]>, FormatError> {
    let map = d
        .find_tag_unsigned_vec::<u16>(Tag::ColorMap)
        .map_err(tiff_error)?
        .ok_or_else(|| FormatError::invalid("TIFF palette image has no ColorMap"))?;
    let n = 1usize << bits;
    if map.len() < 3 * n {
        return Err(FormatError::invalid(format!(
            "TIFF ColorMap has {} entries, needs {}",
            map.len(),
            3 * n
        )));
    }
    let mut pal: Vec<[u8; 4]> = (0..n)
        .map(|i| {
            let c = |v: u16| (v >> 8) as u8;
            [c(map[i]), c(map[n + i]), c(map[2 * n + i]), 255]
        })
        .collect();
    pal.resize(256, [0, 0, 0, 255]);
    Ok(pal)
}

/// Strips or tiles: their size and every offset and byte count.
struct Chunks {
    tiled: bool,
    width: u32,
    height: u32,
    offsets: Vec<u64>,
    lengths: Vec<u64>,
}

fn chunks(d: &mut TiffDecoder, width: u32, height: u32) -> Result<Chunks, FormatError> {
    let tiled = d
        .find_tag_unsigned::<u32>(Tag::TileWidth)
        .map_err(tiff_error)?
        .is_some();
    let (chunk_w, chunk_h, offsets_tag, counts_tag) = if tiled {
        let tw = d.get_tag_u32(Tag::TileWidth).map_err(tiff_error)?;
        let th = d.get_tag_u32(Tag::TileLength).map_err(tiff_error)?;
        if tw == 0 || th == 0 || tw % 16 != 0 || th % 16 != 0 {
            return Err(FormatError::invalid(format!(
                "TIFF tile size {tw}x{th} (must be non-zero multiples of 16)"
            )));
        }
        (tw, th, Tag::TileOffsets, Tag::TileByteCounts)
    } else {
        let rps = d
            .find_tag_unsigned::<u32>(Tag::RowsPerStrip)
            .map_err(tiff_error)?
            .unwrap_or(u32::MAX);
        if rps == 0 {
            return Err(FormatError::invalid("TIFF RowsPerStrip is 0"));
        }
        (
            width,
            rps.min(height),
            Tag::StripOffsets,
            Tag::StripByteCounts,
        )
    };
    let offsets = d
        .find_tag_unsigned_vec::<u64>(offsets_tag)
        .map_err(tiff_error)?
        .ok_or_else(|| FormatError::invalid("TIFF page has no strip or tile offsets"))?;
    let lengths = d
        .find_tag_unsigned_vec::<u64>(counts_tag)
        .map_err(tiff_error)?
        .ok_or_else(|| FormatError::invalid("TIFF page has no strip or tile byte counts"))?;
    Ok(Chunks {
        tiled,
        width: chunk_w,
        height: chunk_h,
        offsets,
        lengths,
    })
}

/// The codec of a TIFF compression code.
fn codec(compression: u16) -> Result<Codec, FormatError> {
    Ok(match compression {
        1 => Codec::Raw,
        5 => Codec::Lzw,
        7 => Codec::Jpeg,
        8 | 32946 => Codec::Deflate,
        32773 => Codec::PackBits,
        6 => {
            return Err(FormatError::unsupported(
                "old-style JPEG compression (6) in TIFF",
            ));
        }
        50000 => Codec::Zstd,
        50001 => Codec::WebP,
        // Aperio's YCbCr (33003) and RGB (33005) tiles, and the older codes for the same:
        // one JPEG 2000 codestream per chunk.
        33003 | 33004 | 33005 | 34712 => Codec::Jpeg2000,
        34887 => Codec::Lerc,
        c => Codec::TiffOther(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photometric_interpretations_map_to_modes() {
        let kind = |p, s, a, b, c| pixel_kind(p, s, a, b, c).map(|(m, _, pre)| (m, pre));
        assert_eq!(kind(1, 1, None, 1, 1).ok(), Some((Mode::Bilevel, false)));
        assert_eq!(kind(1, 1, None, 16, 1).ok(), Some((Mode::I16, false)));
        assert_eq!(kind(1, 2, Some(1), 8, 1).ok(), Some((Mode::La, true)));
        assert_eq!(kind(2, 4, Some(2), 8, 1).ok(), Some((Mode::Rgba, false)));
        assert_eq!(
            kind(2, 4, Some(0), 8, 1).ok(),
            Some((Mode::Rgb, false)),
            "unspecified extra"
        );
        assert_eq!(kind(5, 4, None, 16, 1).ok(), Some((Mode::Cmyk16, false)));
        assert_eq!(kind(6, 3, None, 8, 7).ok(), Some((Mode::Rgb, false)));
        assert!(kind(6, 3, None, 8, 1).is_err(), "YCbCr without JPEG");
        assert!(kind(3, 1, None, 16, 1).is_err(), "16-bit palette");
        assert!(kind(9, 1, None, 8, 1).is_err());
        assert!(matches!(codec(6), Err(FormatError::Unsupported(_))));
        assert_eq!(codec(32946).ok(), Some(Codec::Deflate));
    }
}
