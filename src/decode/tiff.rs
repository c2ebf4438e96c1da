//! Compressed TIFF chunks, decompressed by the `tiff` crate's `read_chunk` (PackBits, LZW,
//! Deflate, JPEG, with the horizontal predictor undone). Each worker keeps one decoder per open
//! file and page, because building one re-reads the IFD and its offset arrays.

use std::sync::Arc;

use tiff::decoder::{Decoder, DecodingResult};

use super::{Piece, interleave_planes};
use crate::error::FormatError;
use crate::format::tiff::{open_decoder_owned, tiff_error};
use crate::format::{Codec, Page, Storage};
use crate::source::{Source, SourceReader};

type OwnedDecoder = Decoder<SourceReader<Arc<Source>>>;

/// A worker's decoder for the page it decoded last.
#[derive(Default)]
pub struct DecoderCache {
    current: Option<(usize, usize, OwnedDecoder)>,
    source: Option<Arc<Source>>,
}

impl DecoderCache {
    /// Remember which source the next decodes read from.
    pub fn set_source(&mut self, source: &Arc<Source>) {
        let same = self.source.as_ref().is_some_and(|s| Arc::ptr_eq(s, source));
        if !same {
            self.current = None;
            self.source = Some(source.clone());
        }
    }

    fn decoder(&mut self, ifd: usize) -> Result<&mut OwnedDecoder, FormatError> {
        let source = self
            .source
            .clone()
            .ok_or_else(|| FormatError::invalid("internal: no source for the TIFF decoder"))?;
        let key = Arc::as_ptr(&source) as usize;
        let reuse = matches!(&self.current, Some((k, i, _)) if *k == key && *i == ifd);
        if !reuse {
            self.current = Some((key, ifd, open_decoder_owned(source, ifd)?));
        }
        match &mut self.current {
            Some((_, _, d)) => Ok(d),
            None => Err(FormatError::invalid("internal: decoder cache empty")),
        }
    }
}

/// Stored row bytes of a decoded chunk (wider samples as big-endian bytes, half floats as
/// their bits).
fn result_bytes(result: DecodingResult) -> Result<Vec<u8>, FormatError> {
    fn be<T, const N: usize>(v: &[T], f: impl Fn(&T) -> [u8; N]) -> Vec<u8> {
        v.iter().flat_map(f).collect()
    }
    Ok(match result {
        DecodingResult::U8(v) => v,
        DecodingResult::U16(v) => be(&v, |s| s.to_be_bytes()),
        DecodingResult::U32(v) => be(&v, |s| s.to_be_bytes()),
        DecodingResult::U64(v) => be(&v, |s| s.to_be_bytes()),
        DecodingResult::I8(v) => v.iter().map(|&s| s as u8).collect(),
        DecodingResult::I16(v) => be(&v, |s| s.to_be_bytes()),
        DecodingResult::I32(v) => be(&v, |s| s.to_be_bytes()),
        DecodingResult::I64(v) => be(&v, |s| s.to_be_bytes()),
        DecodingResult::F16(v) => be(&v, |s| s.to_bits().to_be_bytes()),
        DecodingResult::F32(v) => be(&v, |s| s.to_be_bytes()),
        DecodingResult::F64(v) => be(&v, |s| s.to_be_bytes()),
    })
}

/// Decompress every plane of `unit` and unpack it.
pub fn decode_chunk(
    source: &Source,
    page: &Page,
    unit: u64,
    cache: &mut DecoderCache,
) -> Result<Piece, FormatError> {
    let Storage::Chunks {
        planes, ifd_index, ..
    } = &page.storage
    else {
        return Err(FormatError::invalid("internal: not a chunked page"));
    };
    let extent = page.grid.unit_extent(unit);
    // Check the chunks lie inside the file before the decoder tries them.
    for p in 0..*planes {
        let (off, len) = page.unit_bytes(unit, p);
        crate::format::check_span(off, len, source.len(), &format!("chunk {unit} (plane {p})"))?;
    }
    if page.raw.kind == crate::sample::PixelKind::Palette {
        return decode_palette_chunk(source, page, unit);
    }
    // Codecs the `tiff` crate cannot decode: the chunk's bytes go to our own decoder.
    if let Storage::Chunks {
        codec: codec @ (Codec::Jpeg2000 | Codec::Lerc),
        compression,
        ..
    } = &page.storage
    {
        let j2k = *codec == Codec::Jpeg2000;
        if *planes != 1 {
            return Err(FormatError::unsupported(format!(
                "planar TIFF with {} chunks",
                if j2k { "JPEG 2000" } else { "LERC" }
            )));
        }
        let (off, len) = page.unit_bytes(unit, 0);
        let bytes = super::read_chunk(source, off, len, "TIFF chunk")?;
        return if j2k {
            // Three components are YCbCr unless the code says RGB (33005), as OpenSlide and
            // libvips (which writes YCbCr under 33003 and 33004) read them.
            super::jpeg2000::decode_tiff_chunk(&bytes, page, extent, *compression != 33005)
        } else {
            let chunk = (page.grid.chunk_w, page.grid.chunk_h);
            super::lerc::decode_tiff_chunk(&bytes, page, extent, chunk)
        };
    }
    let decoder = cache.decoder(*ifd_index)?;
    let (chunk, _) = page.grid.unit_chunk(unit);
    let chunks_per_plane = u64::from(page.grid.across()) * u64::from(page.grid.chunk_rows());
    let (w, h) = (extent.width() as usize, extent.height() as usize);
    let mut bufs = Vec::with_capacity(*planes as usize);
    for p in 0..u64::from(*planes) {
        let index = u32::try_from(chunk + p * chunks_per_plane)
            .map_err(|_| FormatError::too_large("TIFF chunk index"))?;
        let result = decoder.read_chunk(index).map_err(tiff_error)?;
        bufs.push(result_bytes(result)?);
    }
    let mut raw = page.raw;
    raw.big_endian = true;
    // The `tiff` crate already inverts WhiteIsZero samples in decoded chunks.
    if let crate::sample::PixelKind::Gray { .. } = raw.kind {
        raw.kind = crate::sample::PixelKind::Gray {
            white_is_zero: false,
        };
    }
    let palette = page.palette.as_deref().map(Vec::as_slice);
    let data = if bufs.len() == 1 {
        bufs.pop().unwrap_or_default()
    } else {
        let plane_raw = crate::sample::RawFormat { samples: 1, ..raw };
        interleave_planes(
            &bufs,
            plane_raw.row_bytes(extent.width()) as usize,
            raw.bits,
            w,
        )
    };
    let row_bytes = raw.row_bytes(extent.width()) as usize;
    if data.len() < row_bytes * h {
        return Err(FormatError::truncated(format!(
            "chunk {unit} decoded to {} bytes, {} needed",
            data.len(),
            row_bytes * h
        )));
    }
    Ok(super::piece_from_rows(
        extent, &raw, palette, &data, row_bytes,
    ))
}

/// A compressed chunk of a palette page. The `tiff` crate refuses palette images in
/// `read_chunk`, so these are decompressed here (LZW, Deflate, PackBits, with the horizontal
/// predictor) and unpacked like raw palette rows.
fn decode_palette_chunk(source: &Source, page: &Page, unit: u64) -> Result<Piece, FormatError> {
    let Storage::Chunks {
        codec,
        predictor,
        chunk_stride,
        ..
    } = &page.storage
    else {
        return Err(FormatError::invalid("internal: not a chunked page"));
    };
    let extent = page.grid.unit_extent(unit);
    let (off, len) = page.unit_bytes(unit, 0);
    let input = super::read_chunk(source, off, len, "TIFF chunk")?;
    // Tiles are stored whole (padded at the image's edges); strips hold their own rows.
    let rows = if page.grid.chunk_w < page.width || page.grid.chunk_h > extent.height() {
        page.grid.chunk_h
    } else {
        extent.height()
    };
    let stride = *chunk_stride as usize;
    let expect = stride * rows as usize;
    let mut data = match codec {
        Codec::Lzw => lzw(&input, expect)?,
        Codec::Deflate => {
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&input, expect)
                .map_err(|e| FormatError::invalid(format!("TIFF deflate chunk: {:?}", e.status)))?
        }
        Codec::PackBits => packbits(&input, expect),
        other => {
            return Err(FormatError::unsupported(format!(
                "palette TIFF with {} compression",
                other.decoder_name()
            )));
        }
    };
    let needed = stride * extent.height() as usize;
    if data.len() < needed {
        return Err(FormatError::truncated(format!(
            "chunk {unit} decoded to {} bytes, {needed} needed",
            data.len()
        )));
    }
    if *predictor == 2 && page.raw.bits == 8 {
        for row in data.chunks_exact_mut(stride) {
            for i in 1..row.len() {
                row[i] = row[i].wrapping_add(row[i - 1]);
            }
        }
    }
    let palette = page.palette.as_deref().map(Vec::as_slice);
    Ok(super::piece_from_rows(
        extent, &page.raw, palette, &data, stride,
    ))
}

/// TIFF LZW (MSB first, early code-size switch) into at most `expect` bytes.
fn lzw(input: &[u8], expect: usize) -> Result<Vec<u8>, FormatError> {
    let mut d = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let mut out = vec![0u8; expect];
    let (mut i, mut o) = (0, 0);
    while o < out.len() {
        let r = d.decode_bytes(&input[i..], &mut out[o..]);
        i += r.consumed_in;
        o += r.consumed_out;
        match r.status {
            Ok(weezl::LzwStatus::Ok) if r.consumed_in + r.consumed_out > 0 => {}
            Ok(_) => break,
            Err(e) => return Err(FormatError::invalid(format!("TIFF LZW chunk: {e}"))),
        }
    }
    out.truncate(o);
    Ok(out)
}

/// PackBits into at most `expect` bytes (runs past it are cut).
fn packbits(input: &[u8], expect: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(expect);
    let mut i = 0;
    while i < input.len() && out.len() < expect {
        let n = input[i] as i8;
        i += 1;
        if n >= 0 {
            let count = n as usize + 1;
            let end = (i + count).min(input.len());
            out.extend_from_slice(&input[i..end]);
            i = end;
        } else if n != -128 {
            let count = (1 - n as isize) as usize;
            if let Some(&b) = input.get(i) {
                out.extend(std::iter::repeat_n(b, count));
            }
            i += 1;
        }
    }
    out.truncate(expect);
    out
}
