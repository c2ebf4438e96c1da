//! Tiles of FITS tile-compressed images (`.fz`, as `fpack` and astropy write them): Rice,
//! gzip (plain and byte-shuffled) and uncompressed tiles, integer or quantized float, with
//! cfitsio's subtractive dithering undone exactly. A unit (a tile column by a band of whole tile
//! rows) decodes every tile it covers and flips FITS's bottom-up rows into the piece.

use std::sync::OnceLock;

use super::Piece;
use crate::data::{SampleBuf, SampleType};
use crate::error::FormatError;
use crate::format::fits::{Dither, TileCodec, TileTable};
use crate::format::{Page, Storage};
use crate::source::Source;

/// SUBTRACTIVE_DITHER_2's marker of an exact zero.
const ZERO_VALUE: i64 = -2_147_483_646;
const N_RANDOM: usize = 10_000;

/// cfitsio's table of dither offsets (`fits_init_randoms`): a Park–Miller sequence.
fn randoms() -> &'static [f32; N_RANDOM] {
    static TABLE: OnceLock<[f32; N_RANDOM]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let (a, m) = (16807.0f64, 2147483647.0f64);
        let mut seed = 1.0f64;
        let mut t = [0f32; N_RANDOM];
        for v in t.iter_mut() {
            let temp = a * seed;
            seed = temp - m * (temp / m).trunc();
            *v = (seed / m) as f32;
        }
        t
    })
}

/// Decode unit `unit` of a tile-compressed page.
pub fn decode_unit(source: &Source, page: &Page, unit: u64) -> Result<Piece, FormatError> {
    let Storage::Tiles(t) = &page.storage else {
        return Err(FormatError::invalid("internal: not a tiled FITS page"));
    };
    let extent = page.grid.unit_extent(unit);
    let mut piece = Piece::new(extent, &page.raw);
    let channels = t.planes as usize;
    let col = (unit % u64::from(page.grid.across())) as u32;
    let (w, x0) = (extent.width() as usize, col * t.tile_w);
    let super::Native::Data { data, .. } = &mut piece.native else {
        return Err(FormatError::invalid(
            "internal: a FITS tile piece without samples",
        ));
    };
    for p in 0..t.planes {
        for r in t.tile_rows(extent.y0, extent.y1) {
            let index = t.index(col, r, p);
            let tw = (page.width - x0).min(t.tile_w) as usize;
            let fy0 = r * t.tile_h;
            let th = (t.height - fy0).min(t.tile_h) as usize;
            let values = decode_tile(source, t, index, tw * th)?;
            for ly in 0..th {
                let fits_row = fy0 + ly as u32;
                let y = t.height - 1 - fits_row;
                if y < extent.y0 || y >= extent.y1 {
                    continue;
                }
                let dst_row = (y - extent.y0) as usize;
                for lx in 0..tw.min(w) {
                    let v = values[ly * tw + lx] + t.shift;
                    data.set((dst_row * w + lx) * channels + p as usize, v);
                }
            }
        }
    }
    Ok(piece)
}

/// The `n` values of tile `index`, as `f64` (quantization undone, nulls as NaN).
fn decode_tile(
    source: &Source,
    t: &TileTable,
    index: usize,
    n: usize,
) -> Result<Vec<f64>, FormatError> {
    let (off, len) = t.tiles.get(index).copied().unwrap_or((0, 0));
    if len == 0 {
        // Not compressible: the raw values, gzip'd, in the fallback column.
        let (off, len) = t.fallback.get(index).copied().unwrap_or((0, 0));
        if len == 0 {
            return Err(FormatError::invalid(format!(
                "FITS tile {index} has no data"
            )));
        }
        let bytes = super::read_chunk(source, off, len, "FITS tile")?;
        let raw = gunzip(&bytes, n * t.raw.bytes())?;
        return Ok(be_values(&raw, t.raw, n));
    }
    let bytes = super::read_chunk(source, off, len, "FITS tile")?;
    let ints: Vec<f64> = match t.codec {
        TileCodec::Rice { block, bytepix } => rice(&bytes, n, bytepix, block)?
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        TileCodec::Gzip { shuffled } => {
            let mut raw = gunzip(&bytes, n * t.stored.bytes())?;
            if shuffled {
                raw = unshuffle(&raw, t.stored.bytes());
            }
            be_values(&raw, t.stored, n)
        }
        TileCodec::None => be_values(&bytes, t.stored, n),
    };
    let Some(crate::format::fits::Quant {
        per_tile: scales,
        dither,
        seed,
    }) = &t.quant
    else {
        return Ok(ints);
    };
    let (scale, zero) = scales.get(index).copied().unwrap_or((1.0, 0.0));
    let r = randoms();
    let mut iseed = ((index as i64 + seed - 1).rem_euclid(N_RANDOM as i64)) as usize;
    let mut next = (r[iseed] * 500.0) as usize;
    let mut out = Vec::with_capacity(n);
    for q in ints {
        let qi = q as i64;
        out.push(if t.zblank == Some(qi) {
            f64::NAN
        } else {
            match dither {
                Dither::None => q * scale + zero,
                Dither::Subtractive { zero_value } => {
                    if *zero_value && qi == ZERO_VALUE {
                        0.0
                    } else {
                        f64::from(((q - f64::from(r[next]) + 0.5) * scale + zero) as f32)
                    }
                }
            }
        });
        if *dither != Dither::None {
            next += 1;
            if next == N_RANDOM {
                iseed = (iseed + 1) % N_RANDOM;
                next = (r[iseed] * 500.0) as usize;
            }
        }
    }
    Ok(out)
}

/// Big-endian values of type `ty`.
fn be_values(raw: &[u8], ty: SampleType, n: usize) -> Vec<f64> {
    let mut buf = SampleBuf::zeroed(ty, n);
    buf.fill_from_bytes(0, raw, n, ty, true);
    (0..n).map(|i| buf.get(i)).collect()
}

/// GZIP_2: bytes were grouped most significant first; put each value back together.
fn unshuffle(raw: &[u8], bytes: usize) -> Vec<u8> {
    let n = raw.len() / bytes.max(1);
    let mut out = vec![0u8; raw.len()];
    for i in 0..n {
        for k in 0..bytes {
            out[i * bytes + k] = raw[k * n + i];
        }
    }
    out
}

/// A gzip member (RFC 1952): its header skipped, the deflate data inflated to at most
/// `expect` bytes (what the tile holds).
pub fn gunzip(data: &[u8], expect: usize) -> Result<Vec<u8>, FormatError> {
    let bad = |what: &str| FormatError::invalid(format!("FITS gzip tile: {what}"));
    if data.len() < 18 || data[0] != 0x1f || data[1] != 0x8b || data[2] != 8 {
        return Err(bad("not a gzip stream"));
    }
    let flags = data[3];
    let mut at = 10usize;
    if flags & 4 != 0 {
        let xlen = usize::from(u16::from_le_bytes([data[at], data[at + 1]]));
        at += 2 + xlen;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            let end = data
                .get(at..)
                .and_then(|d| d.iter().position(|&b| b == 0))
                .ok_or_else(|| bad("header name not terminated"))?;
            at += end + 1;
        }
    }
    if flags & 2 != 0 {
        at += 2;
    }
    let body = data.get(at..).ok_or_else(|| bad("truncated header"))?;
    let out = miniz_oxide::inflate::decompress_to_vec_with_limit(body, expect)
        .map_err(|e| bad(&format!("{:?}", e.status)))?;
    if out.len() < expect {
        return Err(bad(&format!("{} bytes, {expect} expected", out.len())));
    }
    Ok(out)
}

/// Rice codes differences mapped to unsigned: even for ≥ 0, odd for < 0.
fn unzigzag(diff: u64) -> i64 {
    if diff & 1 == 0 {
        (diff >> 1) as i64
    } else {
        !((diff >> 1) as i64)
    }
}

/// Rice decompression of `n` values of `bytepix` bytes in blocks of `block` (cfitsio's
/// `fits_rdecomp`): the first value raw, then per block a split `fs` and the differences.
pub fn rice(data: &[u8], n: usize, bytepix: usize, block: usize) -> Result<Vec<i64>, FormatError> {
    let (fsbits, fsmax, bbits) = match bytepix {
        1 => (3u32, 6i64, 8u32),
        2 => (4, 14, 16),
        _ => (5, 25, 32),
    };
    let bad = || FormatError::truncated("FITS Rice tile ends early");
    let mut pos = 0usize;
    let mut next = || -> Result<u64, FormatError> {
        let b = *data.get(pos).ok_or_else(bad)?;
        pos += 1;
        Ok(u64::from(b))
    };
    // 8-bit values are unsigned (FITS BITPIX 8); wider ones signed, wrapping at their width.
    let width = bytepix as u32 * 8;
    let wrap = |v: i64| -> i64 {
        let shift = 64 - width;
        if bytepix == 1 {
            v & 0xFF
        } else {
            (v << shift) >> shift
        }
    };
    let mut last: i64 = 0;
    for _ in 0..bytepix {
        last = (last << 8) | next()? as i64;
    }
    last = wrap(last);
    let mut out = Vec::with_capacity(n);
    let mut b: u64 = next()?;
    let mut nbits: i32 = 8;
    let mask = |bits: i32| -> u64 { if bits <= 0 { 0 } else { (1u64 << bits) - 1 } };
    let mut i = 0;
    while i < n {
        nbits -= fsbits as i32;
        while nbits < 0 {
            b = (b << 8) | next()?;
            nbits += 8;
        }
        let fs = (b >> nbits) as i64 - 1;
        b &= mask(nbits);
        let imax = (i + block).min(n);
        if fs < 0 {
            while i < imax {
                out.push(last);
                i += 1;
            }
        } else if fs == fsmax {
            while i < imax {
                let mut k = bbits as i32 - nbits;
                let mut diff: u64 = b << k.max(0);
                k -= 8;
                while k >= 0 {
                    b = next()?;
                    diff |= b << k;
                    k -= 8;
                }
                if nbits > 0 {
                    b = next()?;
                    diff |= b >> (-k);
                    b &= mask(nbits);
                } else {
                    b = 0;
                }
                last = wrap(last.wrapping_add(unzigzag(diff)));
                out.push(last);
                i += 1;
            }
        } else {
            while i < imax {
                while b == 0 {
                    nbits += 8;
                    b = next()?;
                }
                let top = 63 - b.leading_zeros() as i32; // index of the highest set bit
                let nzero = nbits - top - 1;
                nbits -= nzero + 1;
                b ^= 1u64 << nbits;
                nbits -= fs as i32;
                while nbits < 0 {
                    b = (b << 8) | next()?;
                    nbits += 8;
                }
                let diff = ((nzero as u64) << fs) | (b >> nbits);
                b &= mask(nbits);
                last = wrap(last.wrapping_add(unzigzag(diff)));
                out.push(last);
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dither_table_matches_cfitsio() {
        // cfitsio checks its table by the value at index 9999 of the sequence.
        let r = randoms();
        assert!((f64::from(r[0]) - 16807.0 / 2_147_483_647.0).abs() < 1e-12);
        // The 10000th Park–Miller value from seed 1 is 1043618065 (Park & Miller 1988).
        assert!((f64::from(r[N_RANDOM - 1]) - 1_043_618_065.0 / 2_147_483_647.0).abs() < 1e-7);
    }

    #[test]
    fn gzip_header_and_shuffle() {
        let shuffled = [1u8, 3, 2, 4];
        assert_eq!(unshuffle(&shuffled, 2), vec![1, 2, 3, 4]);
        assert!(gunzip(&[0u8; 20], 4).is_err());
    }
}
