//! TIFF LERC chunks (34887), as GDAL and libtiff write them: a Lerc2 blob, alone or wrapped
//! in zlib (LERC_DEFLATE) or ZSTD (LERC_ZSTD). The wrapper is recognised by its magic bytes,
//! which is what libtiff's LercParameters tag records. Pixels the blob's mask marks invalid
//! become NaN (floats) or the page's no-data value (integers).

use lerc_core::PixelData;
use lerc_reader::Decoded;

use super::Piece;
use crate::data::SampleType;
use crate::error::FormatError;
use crate::format::{Extent, Page};
use crate::sample::PixelKind;

/// Decode one LERC chunk of `chunk_w` x `chunk_h` pixels into a piece covering `extent`.
pub fn decode_tiff_chunk(
    input: &[u8],
    page: &Page,
    extent: Extent,
    (chunk_w, chunk_h): (u32, u32),
) -> Result<Piece, FormatError> {
    let samples = usize::from(page.raw.samples);
    let sample_bytes = usize::from(page.raw.bits).div_ceil(8).max(1);
    // A blob is at most the raw samples, a mask bit a pixel and its headers.
    let limit = (chunk_w as usize * chunk_h as usize * (samples * sample_bytes + 1) + 4096)
        .min(crate::format::tiff::MAX_CHUNK_BYTES as usize);
    let unwrapped;
    let blob: &[u8] = if input.starts_with(b"Lerc2 ") || input.starts_with(b"CntZImage ") {
        input
    } else if input.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        unwrapped = zstd_bounded(input, limit)?;
        &unwrapped
    } else if let [cmf, flg, ..] = input
        && cmf & 0x0F == 8
        && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
    {
        unwrapped = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(input, limit)
            .map_err(|e| FormatError::invalid(format!("LERC deflate wrapper: {:?}", e.status)))?;
        &unwrapped
    } else {
        return Err(FormatError::invalid(
            "LERC chunk: not a Lerc blob, zlib or ZSTD",
        ));
    };
    let lerc = |e: lerc_core::Error| FormatError::invalid(format!("LERC: {e}"));
    let info = lerc_reader::inspect_first(blob).map_err(lerc)?;
    // A strip's blob may hold just its own rows (the last strip is short).
    let rows_ok = (extent.height()..=chunk_h).contains(&info.height);
    if info.width != chunk_w || !rows_ok || info.depth as usize != samples {
        return Err(FormatError::invalid(format!(
            "LERC blob of {}x{}x{} in a {chunk_w}x{chunk_h} chunk of {samples} samples",
            info.width, info.height, info.depth
        )));
    }
    let Decoded { pixels, mask, .. } = lerc_reader::decode_first(blob).map_err(lerc)?;
    let t = match page.raw.kind {
        PixelKind::Data(t) => t,
        _ if page.raw.bits == 8 => SampleType::U8,
        _ => SampleType::U16,
    };
    let nodata = page.data.as_ref().and_then(|d| d.nodata);
    // Native samples as the page's stored (big-endian) rows.
    let n = chunk_w as usize * info.height as usize * samples;
    let mut bytes = Vec::with_capacity(n * usize::from(t.bits() / 8));
    macro_rules! put {
        ($v:expr, $conv:expr) => {{
            if $v.len() < n {
                return Err(FormatError::truncated("LERC blob holds too few samples"));
            }
            for (i, s) in $v[..n].iter().enumerate() {
                let valid = mask.as_ref().is_none_or(|m| m.get(i / samples) != Some(&0));
                let conv = $conv;
                bytes.extend_from_slice(&conv(*s, valid));
            }
        }};
    }
    let fill = |valid: bool| if valid { None } else { nodata };
    match (pixels, t) {
        (PixelData::U8(v), SampleType::U8) => {
            put!(v, |s: u8, ok| [fill(ok).map_or(s, |d| d as u8)])
        }
        (PixelData::I8(v), SampleType::I8) => {
            put!(v, |s: i8, ok| [fill(ok).map_or(s, |d| d as i8) as u8])
        }
        (PixelData::U16(v), SampleType::U16) => {
            put!(v, |s: u16, ok| fill(ok)
                .map_or(s, |d| d as u16)
                .to_be_bytes())
        }
        (PixelData::I16(v), SampleType::I16) => {
            put!(v, |s: i16, ok| fill(ok)
                .map_or(s, |d| d as i16)
                .to_be_bytes())
        }
        (PixelData::U32(v), SampleType::U32) => {
            put!(v, |s: u32, ok| fill(ok)
                .map_or(s, |d| d as u32)
                .to_be_bytes())
        }
        (PixelData::I32(v), SampleType::I32) => {
            put!(v, |s: i32, ok| fill(ok)
                .map_or(s, |d| d as i32)
                .to_be_bytes())
        }
        (PixelData::F32(v), SampleType::F32) => put!(v, |s: f32, ok: bool| {
            if ok { s } else { f32::NAN }.to_be_bytes()
        }),
        (PixelData::F64(v), SampleType::F64) => put!(v, |s: f64, ok: bool| {
            if ok { s } else { f64::NAN }.to_be_bytes()
        }),
        (p, t) => {
            return Err(FormatError::invalid(format!(
                "LERC blob of {:?} samples in a page of {}",
                p.data_type(),
                t.name()
            )));
        }
    }
    let row_bytes = chunk_w as usize * samples * usize::from(t.bits() / 8);
    let mut raw = page.raw;
    raw.big_endian = true;
    let palette = page.palette.as_deref().map(Vec::as_slice);
    Ok(super::piece_from_rows(
        extent, &raw, palette, &bytes, row_bytes,
    ))
}

/// A ZSTD frame decompressed into at most `limit` bytes.
fn zstd_bounded(input: &[u8], limit: usize) -> Result<Vec<u8>, FormatError> {
    use std::io::Read;
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(input)
        .map_err(|e| FormatError::invalid(format!("LERC ZSTD wrapper: {e}")))?
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| FormatError::invalid(format!("LERC ZSTD wrapper: {e}")))?;
    if out.len() > limit {
        return Err(FormatError::too_large(
            "LERC ZSTD wrapper decompresses past its chunk",
        ));
    }
    Ok(out)
}
