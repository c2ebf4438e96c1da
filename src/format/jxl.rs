//! JPEG XL (bare codestreams and the ISO BMFF container), decoded by `jxl-oxide`.
//!
//! Opening reads only the image header. A unit is a 1024-pixel square decoded as a cropped
//! render (`set_image_region`): `jxl-oxide` then decodes only the groups (256-pixel squares of
//! the codestream) the square touches. What it costs: the decoder needs the whole codestream
//! in memory, so the first unit decoded reads the file once and keeps it (at most
//! [`MAX_FILE_BYTES`]), and one decoder is shared, so JPEG XL units decode one at a time.

use std::io::Read;
use std::sync::{Arc, Mutex};

use jxl_oxide::{CropInfo, JxlImage, PixelFormat};

use super::{FileFormat, Grid, Layout, Mode, Page, Storage, check_dimensions};
use crate::data::{DataInfo, SampleType};
use crate::decode::Piece;
use crate::error::FormatError;
use crate::sample::{PixelKind, RawFormat};
use crate::source::{Source, SourceReader};

/// Largest file the decoder may hold in memory.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Side of a unit.
const UNIT_SIDE: u32 = 1024;
/// Most header bytes read at open (an embedded ICC profile can be long).
const MAX_HEADER_BYTES: u64 = 4 << 20;

pub fn sniff(magic: &[u8]) -> bool {
    magic.starts_with(&[0xFF, 0x0A])
        || magic.starts_with(&[
            0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A,
        ])
}

/// The shared decoder, loaded on the first decode.
#[derive(Debug, Default)]
pub struct Decoder {
    image: Mutex<Option<JxlImage>>,
}

fn jxl_error(e: impl std::fmt::Display) -> FormatError {
    FormatError::invalid(format!("JPEG XL: {e}"))
}

pub fn parse(source: &Source) -> Result<Layout, FormatError> {
    let mut uninit = JxlImage::builder().build_uninit();
    let mut pos = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    let image = loop {
        let n = source.read_some(pos, &mut buf)?;
        if n == 0 || pos >= MAX_HEADER_BYTES {
            return Err(FormatError::truncated("JPEG XL header"));
        }
        uninit.feed_bytes(&buf[..n]).map_err(jxl_error)?;
        pos += n as u64;
        match uninit.try_init().map_err(jxl_error)? {
            jxl_oxide::InitializeResult::Initialized(image) => break image,
            jxl_oxide::InitializeResult::NeedMoreData(u) => uninit = u,
        }
    };
    let (width, height) = check_dimensions(u64::from(image.width()), u64::from(image.height()))?;
    let format = image.pixel_format();
    let bits = match image.image_header().metadata.bit_depth {
        jxl_oxide::image::BitDepth::IntegerSample { bits_per_sample } => Some(bits_per_sample),
        jxl_oxide::image::BitDepth::FloatSample { .. } => None,
    };
    let (mode, raw, data) = pixel_format(format, bits)?;
    Ok(Layout {
        format: FileFormat::JpegXl,
        pages: vec![Page {
            width,
            height,
            mode,
            raw,
            palette: None,
            grid: Grid::new(width, height, UNIT_SIDE, UNIT_SIDE, UNIT_SIDE),
            storage: Storage::Jxl(Arc::new(Decoder::default())),
            reduced: false,
            data,
            physical: None,
            orientation: crate::orientation::Orientation::IDENTITY,
        }],
    })
}

fn pixel_format(
    format: PixelFormat,
    bits: Option<u32>,
) -> Result<(Mode, RawFormat, Option<Arc<DataInfo>>), FormatError> {
    let channels = match format {
        PixelFormat::Gray => 1,
        PixelFormat::Graya => 2,
        PixelFormat::Rgb => 3,
        PixelFormat::Rgba => 4,
        PixelFormat::Cmyk | PixelFormat::Cmyka => {
            return Err(FormatError::unsupported("CMYK JPEG XL"));
        }
    };
    let eight = |kind, mode| (mode, RawFormat::new(kind, 8), None);
    Ok(match (bits, channels) {
        (Some(0..=8), 1) => eight(
            PixelKind::Gray {
                white_is_zero: false,
            },
            Mode::L,
        ),
        (Some(0..=8), 2) => eight(PixelKind::GrayA, Mode::La),
        (Some(0..=8), 3) => eight(PixelKind::Rgb, Mode::Rgb),
        (Some(0..=8), _) => eight(PixelKind::Rgba, Mode::Rgba),
        (b, n) => {
            let t = if b.is_some_and(|b| b <= 16) {
                SampleType::U16
            } else {
                SampleType::F32
            };
            let mut info = DataInfo::new(t, n);
            let names: Vec<String> = match n {
                1 => vec!["L".into()],
                2 => vec!["L".into(), "A".into()],
                3 => vec!["R".into(), "G".into(), "B".into()],
                _ => vec!["R".into(), "G".into(), "B".into(), "A".into()],
            };
            info.rgb = n >= 3;
            info = info.with_names(names);
            let raw = RawFormat::new(PixelKind::Data(t), t.bits()).with_samples(n as u8);
            (Mode::Data, raw, Some(Arc::new(info)))
        }
    })
}

/// Decode unit `unit` of a JPEG XL page: a cropped render of its square.
pub fn decode_unit(
    source: &Source,
    page: &Page,
    decoder: &Decoder,
    unit: u64,
) -> Result<Piece, FormatError> {
    let extent = page.grid.unit_extent(unit);
    let mut guard = decoder
        .image
        .lock()
        .map_err(|_| FormatError::invalid("internal: JPEG XL decoder poisoned"))?;
    if guard.is_none() {
        if source.len() > MAX_FILE_BYTES {
            return Err(FormatError::too_large(format!(
                "JPEG XL of {} bytes (the decoder holds the file; at most {MAX_FILE_BYTES})",
                source.len()
            )));
        }
        let mut bytes = Vec::with_capacity(source.len() as usize);
        SourceReader::new(source, 0)
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| FormatError::Io {
                offset: 0,
                source: e,
            })?;
        let image = JxlImage::builder().read(&bytes[..]).map_err(jxl_error)?;
        if image.width() != page.width || image.height() != page.height {
            return Err(FormatError::FileChanged { len: source.len() });
        }
        *guard = Some(image);
    }
    let image = guard
        .as_mut()
        .ok_or_else(|| FormatError::invalid("internal: JPEG XL decoder missing"))?;
    image.set_image_region(CropInfo {
        width: extent.width(),
        height: extent.height(),
        left: extent.x0,
        top: extent.y0,
    });
    if image.num_loaded_keyframes() == 0 {
        return Err(FormatError::truncated("JPEG XL holds no complete frame"));
    }
    let render = image.render_frame(0).map_err(jxl_error)?;
    let mut stream = render.stream();
    let (w, h, c) = (
        stream.width() as usize,
        stream.height() as usize,
        stream.channels() as usize,
    );
    if w != extent.width() as usize || h != extent.height() as usize {
        return Err(FormatError::invalid(format!(
            "JPEG XL render of {w}x{h} for a {}x{} unit",
            extent.width(),
            extent.height()
        )));
    }
    let raw = page.raw;
    let samples = usize::from(raw.samples);
    if c != samples {
        return Err(FormatError::invalid(format!(
            "JPEG XL render of {c} channels for a page of {samples}"
        )));
    }
    let bytes: Vec<u8> = match raw.kind {
        PixelKind::Data(SampleType::U16) => {
            let mut v = vec![0u16; w * h * c];
            stream.write_to_buffer(&mut v);
            v.iter().flat_map(|s| s.to_be_bytes()).collect()
        }
        PixelKind::Data(_) => {
            let mut v = vec![0f32; w * h * c];
            stream.write_to_buffer(&mut v);
            v.iter().flat_map(|s| s.to_be_bytes()).collect()
        }
        _ => {
            let mut v = vec![0u8; w * h * c];
            stream.write_to_buffer(&mut v);
            v
        }
    };
    let row = bytes.len() / h.max(1);
    Ok(crate::decode::piece_from_rows(
        extent, &raw, None, &bytes, row,
    ))
}
