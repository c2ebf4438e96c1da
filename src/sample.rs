//! Raw sample unpacking: PIL's *rawmode*, turned into 8-bit RGBA for display plus the native
//! values for the pixel inspector.
//!
//! Pure code, no I/O: every decoder (raw bands, decompressed TIFF chunks, PNG rows, BMP RLE,
//! ASCII PNM) ends in a row of packed samples that one [`RawFormat`] describes.

use std::fmt::Write as _;

use crate::data::{SampleBuf, SampleType};

/// What the samples of a pixel mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelKind {
    /// Gray, 1 to 16 bits; `white_is_zero` for PBM and TIFF MinIsWhite.
    Gray {
        white_is_zero: bool,
    },
    GrayA,
    Rgb,
    Rgba,
    Bgr,
    Bgra,
    /// Palette index (1, 2, 4 or 8 bits).
    Palette,
    /// `inverted` for Adobe CMYK JPEGs, which store 255 − ink.
    Cmyk {
        inverted: bool,
    },
    /// 16- or 32-bit little-endian words with channel masks (BMP BI_BITFIELDS). Masks of zero
    /// mean the channel is absent (alpha then reads as opaque).
    Bitfields {
        bytes: u8,
        masks: [u32; 4],
    },
    /// YCbCr (JFIF, full range), as some decoders hand JPEG-in-TIFF back.
    YCbCr,
    /// Scientific samples of one numeric type, `samples` channels: kept native (no RGBA),
    /// coloured by the display mapping.
    Data(SampleType),
}

/// How packed samples map to pixels: the layout of one stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFormat {
    pub kind: PixelKind,
    /// Bits per sample: 1, 2, 4, 8 or 16 (ignored for bitfields).
    pub bits: u8,
    /// Samples per pixel, including extra samples that are skipped (RGBX, BGRX).
    pub samples: u8,
    /// Byte order of 16-bit samples.
    pub big_endian: bool,
    /// Largest sample value (PNM maxval); values scale so that maxval is 255.
    pub maxval: u32,
    /// Colour samples are premultiplied by alpha (TIFF associated alpha).
    pub premultiplied: bool,
    /// PNG tRNS colour key: pixels whose gray/RGB samples equal it are transparent.
    pub color_key: Option<[u32; 3]>,
    /// Data samples stored signed with the sign bit offset (FITS BZERO = 2^(n−1)): flip the
    /// top bit to read them as unsigned.
    pub flip_sign: bool,
}

impl RawFormat {
    pub fn new(kind: PixelKind, bits: u8) -> Self {
        let samples = match kind {
            PixelKind::Gray { .. } | PixelKind::Palette => 1,
            PixelKind::GrayA => 2,
            PixelKind::Rgb | PixelKind::Bgr | PixelKind::YCbCr => 3,
            PixelKind::Rgba | PixelKind::Bgra | PixelKind::Cmyk { .. } => 4,
            PixelKind::Bitfields { bytes, .. } => bytes,
            PixelKind::Data(_) => 1,
        };
        Self {
            kind,
            bits,
            samples,
            big_endian: true,
            maxval: if bits >= 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            },
            premultiplied: false,
            color_key: None,
            flip_sign: false,
        }
    }

    pub fn with_color_key(mut self, key: Option<[u32; 3]>) -> Self {
        self.color_key = key;
        self
    }

    pub fn with_samples(mut self, samples: u8) -> Self {
        self.samples = samples;
        self
    }
    pub fn with_maxval(mut self, maxval: u32) -> Self {
        self.maxval = maxval.max(1);
        self
    }
    pub fn little_endian(mut self) -> Self {
        self.big_endian = false;
        self
    }
    pub fn premultiplied(mut self, yes: bool) -> Self {
        self.premultiplied = yes;
        self
    }

    /// Bits one pixel occupies in a stored row.
    pub fn bits_per_pixel(&self) -> u64 {
        match self.kind {
            PixelKind::Bitfields { bytes, .. } => u64::from(bytes) * 8,
            _ => u64::from(self.samples) * u64::from(self.bits),
        }
    }

    /// Bytes of a stored row of `width` pixels (rows start on a byte boundary).
    pub fn row_bytes(&self, width: u32) -> u64 {
        (u64::from(width) * self.bits_per_pixel()).div_ceil(8)
    }

    /// Byte offset of column `x` within a row; callers only ask for byte-aligned columns.
    pub fn column_byte(&self, x: u32) -> u64 {
        u64::from(x) * self.bits_per_pixel() / 8
    }

    /// Channels kept for the pixel inspector (colour + alpha, extras dropped).
    fn colour_channels(&self) -> usize {
        match self.kind {
            PixelKind::Gray { .. } | PixelKind::Palette => 1,
            PixelKind::GrayA => 2,
            PixelKind::Rgb | PixelKind::Bgr | PixelKind::YCbCr => 3,
            PixelKind::Rgba | PixelKind::Bgra => 4,
            PixelKind::Cmyk { .. } => (self.samples as usize).min(5),
            PixelKind::Bitfields { .. } => 4,
            PixelKind::Data(_) => self.samples as usize,
        }
    }

    /// The sample type of a data page.
    pub fn data_type(&self) -> Option<SampleType> {
        match self.kind {
            PixelKind::Data(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the stored row is exactly what the viewer keeps in memory: PIL's map modes
    /// `L`, `P`, `RGBX`, `RGBA`, `CMYK`. These files are memory-mapped.
    pub fn is_memory_layout(&self) -> bool {
        if self.bits != 8 || self.premultiplied || self.maxval != 255 {
            return false;
        }
        matches!(
            (self.kind, self.samples),
            (
                PixelKind::Gray {
                    white_is_zero: false
                },
                1
            ) | (PixelKind::Palette, 1)
                | (PixelKind::Rgb, 4)
                | (PixelKind::Rgba, 4)
                | (PixelKind::Cmyk { inverted: false }, 4)
        )
    }

    /// How native values are kept: `None` when they can be read back from the RGBA itself.
    pub fn native_layout(&self) -> Option<(usize, bool)> {
        let scaled = self.maxval != (1u32 << self.bits.min(31)) - 1;
        let channels = self.colour_channels();
        match self.kind {
            PixelKind::Palette => Some((1, false)),
            PixelKind::Cmyk { .. } => Some((channels, self.bits == 16)),
            PixelKind::YCbCr => Some((3, false)),
            PixelKind::Bitfields { .. } => None,
            PixelKind::Data(_) => None,
            _ if self.bits == 16 => Some((channels, true)),
            _ if scaled || self.premultiplied => Some((channels, true)),
            PixelKind::Gray {
                white_is_zero: true,
            } if self.bits > 1 => Some((1, true)),
            _ => None,
        }
    }

    /// PIL-style rawmode name, for descriptor args.
    pub fn rawmode(&self) -> String {
        let b16 = |s: &str| {
            if self.bits == 16 {
                format!("{s};16{}", if self.big_endian { "B" } else { "L" })
            } else {
                s.to_string()
            }
        };
        let mut name = match self.kind {
            PixelKind::Gray { white_is_zero } => match (self.bits, white_is_zero) {
                (1, false) => "1".to_string(),
                (1, true) => "1;I".to_string(),
                (8, false) => "L".to_string(),
                (8, true) => "L;I".to_string(),
                (16, _) => format!(
                    "I;16{}{}",
                    if self.big_endian { "B" } else { "" },
                    if white_is_zero { ";I" } else { "" }
                ),
                (b, w) => format!("L;{b}{}", if w { "I" } else { "" }),
            },
            PixelKind::GrayA => b16("LA"),
            PixelKind::Rgb if self.samples > 3 => b16("RGBX"),
            PixelKind::Rgb => b16("RGB"),
            PixelKind::Rgba if self.premultiplied => b16("RGBa"),
            PixelKind::Rgba => b16("RGBA"),
            PixelKind::Bgr if self.samples > 3 => "BGRX".to_string(),
            PixelKind::Bgr => "BGR".to_string(),
            PixelKind::Bgra => "BGRA".to_string(),
            PixelKind::Palette if self.bits == 8 => "P".to_string(),
            PixelKind::Palette => format!("P;{}", self.bits),
            PixelKind::Cmyk { inverted } => {
                let mut s = b16(if self.samples > 4 { "CMYKA" } else { "CMYK" });
                if inverted {
                    s.push_str(";I");
                }
                s
            }
            PixelKind::YCbCr => "YCbCr".to_string(),
            PixelKind::Data(t) => data_rawmode(t, self.big_endian, self.samples),
            PixelKind::Bitfields { bytes, masks } => {
                let mut s = format!("BGR;{}", bytes * 8);
                let _ = write!(
                    s,
                    "(masks {:#x},{:#x},{:#x},{:#x})",
                    masks[0], masks[1], masks[2], masks[3]
                );
                s
            }
        };
        if self.samples > self.colour_channels() as u8
            && !matches!(
                self.kind,
                PixelKind::Rgb | PixelKind::Bgr | PixelKind::Bitfields { .. } | PixelKind::Data(_)
            )
        {
            let _ = write!(name, "+{}X", self.samples as usize - self.colour_channels());
        }
        let default_max = (1u32 << self.bits.min(31)) - 1;
        if self.maxval != default_max
            && !matches!(self.kind, PixelKind::Bitfields { .. } | PixelKind::Data(_))
        {
            let _ = write!(name, ";max={}", self.maxval);
        }
        name
    }

    /// Rawmode of one plane of a planar TIFF (PIL names planes by channel).
    pub fn plane_rawmode(&self, plane: u32) -> String {
        if let PixelKind::Data(t) = self.kind {
            return format!("{}[{plane}]", data_rawmode(t, self.big_endian, 1));
        }
        let names: &[&str] = match self.kind {
            PixelKind::Rgb | PixelKind::Rgba => &["R", "G", "B", "A"],
            PixelKind::Cmyk { .. } => &["C", "M", "Y", "K", "A"],
            PixelKind::GrayA => &["L", "A"],
            _ => &["L"],
        };
        let name = names.get(plane as usize).copied().unwrap_or("X");
        if self.bits == 16 {
            format!("{name};16{}", if self.big_endian { "B" } else { "L" })
        } else {
            name.to_string()
        }
    }

    /// Unpack `width` pixels of one stored row (starting at a byte boundary) into RGBA8, and the
    /// native values into `native` when [`Self::native_layout`] asks for them.
    pub fn unpack_row(
        &self,
        src: &[u8],
        width: usize,
        palette: Option<&[[u8; 4]]>,
        rgba: &mut [u8],
        mut native: NativeRow<'_>,
    ) {
        if let PixelKind::Data(t) = self.kind {
            if let NativeRow::Data { buf, at } = native {
                let n = width * self.samples as usize;
                if self.flip_sign {
                    let mut flipped = src.to_vec();
                    let top = if self.big_endian { 0 } else { t.bytes() - 1 };
                    for s in flipped.chunks_exact_mut(t.bytes()) {
                        s[top] ^= 0x80;
                    }
                    buf.fill_from_bytes(at, &flipped, n, t, self.big_endian);
                } else {
                    buf.fill_from_bytes(at, src, n, t, self.big_endian);
                }
            }
            return;
        }
        let rgba = &mut rgba[..width * 4];
        if self.unpack_fast(src, width, rgba) {
            return;
        }
        let mut reader = SampleReader::new(src, self.bits, self.big_endian);
        let spp = self.samples as usize;
        let mut px = [0u32; 8];
        let channels = self.colour_channels();
        for x in 0..width {
            if let PixelKind::Bitfields { bytes, .. } = self.kind {
                let off = x * bytes as usize;
                let word = match bytes {
                    2 => u32::from(u16::from_le_bytes([byte(src, off), byte(src, off + 1)])),
                    3 => u32::from_le_bytes([
                        byte(src, off),
                        byte(src, off + 1),
                        byte(src, off + 2),
                        0,
                    ]),
                    _ => u32::from_le_bytes([
                        byte(src, off),
                        byte(src, off + 1),
                        byte(src, off + 2),
                        byte(src, off + 3),
                    ]),
                };
                px[0] = word;
            } else {
                for s in px.iter_mut().take(spp.min(8)) {
                    *s = reader.next();
                }
                for _ in 8..spp {
                    reader.next();
                }
            }
            let out = &mut rgba[x * 4..x * 4 + 4];
            self.pixel_to_rgba(&px, palette, out);
            if let Some(key) = self.color_key {
                let n = if matches!(self.kind, PixelKind::Gray { .. }) {
                    1
                } else {
                    3
                };
                if px[..n] == key[..n] {
                    out[3] = 0;
                }
            }
            if !matches!(native, NativeRow::None) {
                let values = self.native_values(&px);
                native.put(x, &values[..channels]);
            }
        }
    }

    /// Fast paths for the common 8-bit layouts; returns false when not applicable.
    fn unpack_fast(&self, src: &[u8], width: usize, rgba: &mut [u8]) -> bool {
        if self.bits != 8 || self.maxval != 255 || self.premultiplied || self.color_key.is_some() {
            return false;
        }
        let spp = self.samples as usize;
        if src.len() < width * spp {
            return false;
        }
        match self.kind {
            PixelKind::Gray {
                white_is_zero: false,
            } if spp == 1 => {
                for (o, &v) in rgba.chunks_exact_mut(4).zip(src) {
                    o.copy_from_slice(&[v, v, v, 255]);
                }
            }
            PixelKind::GrayA if spp == 2 => {
                for (o, s) in rgba.chunks_exact_mut(4).zip(src.chunks_exact(2)) {
                    o.copy_from_slice(&[s[0], s[0], s[0], s[1]]);
                }
            }
            PixelKind::Rgb if spp >= 3 => {
                for (o, s) in rgba.chunks_exact_mut(4).zip(src.chunks_exact(spp)) {
                    o.copy_from_slice(&[s[0], s[1], s[2], 255]);
                }
            }
            PixelKind::Rgba if spp == 4 => rgba.copy_from_slice(&src[..width * 4]),
            PixelKind::Bgr if spp >= 3 => {
                for (o, s) in rgba.chunks_exact_mut(4).zip(src.chunks_exact(spp)) {
                    o.copy_from_slice(&[s[2], s[1], s[0], 255]);
                }
            }
            PixelKind::Bgra if spp == 4 => {
                for (o, s) in rgba.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                    o.copy_from_slice(&[s[2], s[1], s[0], s[3]]);
                }
            }
            _ => return false,
        }
        true
    }

    fn scale(&self, v: u32) -> u8 {
        let m = self.maxval;
        if m == 255 {
            return v.min(255) as u8;
        }
        let v = u64::from(v.min(m));
        ((v * 255 + u64::from(m) / 2) / u64::from(m)) as u8
    }

    fn pixel_to_rgba(&self, px: &[u32; 8], palette: Option<&[[u8; 4]]>, out: &mut [u8]) {
        let rgba: [u8; 4] = match self.kind {
            PixelKind::Gray { white_is_zero } => {
                let v = if white_is_zero {
                    self.maxval.saturating_sub(px[0])
                } else {
                    px[0]
                };
                let l = self.scale(v);
                [l, l, l, 255]
            }
            PixelKind::GrayA => {
                let (l, a) = (self.scale(px[0]), self.scale(px[1]));
                let l = if self.premultiplied {
                    unpremultiply(l, a)
                } else {
                    l
                };
                [l, l, l, a]
            }
            PixelKind::Rgb => [self.scale(px[0]), self.scale(px[1]), self.scale(px[2]), 255],
            PixelKind::Bgr => [self.scale(px[2]), self.scale(px[1]), self.scale(px[0]), 255],
            PixelKind::Rgba | PixelKind::Bgra => {
                let (r, g, b) = if self.kind == PixelKind::Bgra {
                    (px[2], px[1], px[0])
                } else {
                    (px[0], px[1], px[2])
                };
                let a = self.scale(px[3]);
                let c = [self.scale(r), self.scale(g), self.scale(b)];
                if self.premultiplied {
                    [
                        unpremultiply(c[0], a),
                        unpremultiply(c[1], a),
                        unpremultiply(c[2], a),
                        a,
                    ]
                } else {
                    [c[0], c[1], c[2], a]
                }
            }
            PixelKind::Palette => palette
                .and_then(|p| p.get(px[0] as usize).copied())
                .unwrap_or([0, 0, 0, 255]),
            PixelKind::Cmyk { inverted } => {
                let ink = |v: u32| {
                    let v = self.scale(v);
                    if inverted { 255 - v } else { v }
                };
                let (c, m, y, k) = (ink(px[0]), ink(px[1]), ink(px[2]), ink(px[3]));
                let a = if self.samples > 4 {
                    self.scale(px[4])
                } else {
                    255
                };
                [
                    cmyk_channel(c, k),
                    cmyk_channel(m, k),
                    cmyk_channel(y, k),
                    a,
                ]
            }
            PixelKind::YCbCr => ycbcr_to_rgb(px[0] as u8, px[1] as u8, px[2] as u8),
            PixelKind::Data(_) => [0, 0, 0, 0],
            PixelKind::Bitfields { masks, .. } => {
                let word = px[0];
                let ch = |i: usize, absent: u8| {
                    let m = masks[i];
                    if m == 0 {
                        return absent;
                    }
                    let v = u64::from((word & m) >> m.trailing_zeros());
                    let max = u64::from(m >> m.trailing_zeros());
                    ((v * 255 + max / 2) / max) as u8
                };
                [ch(0, 0), ch(1, 0), ch(2, 0), ch(3, 255)]
            }
        };
        out.copy_from_slice(&rgba);
    }

    fn native_values(&self, px: &[u32; 8]) -> [u32; 8] {
        let mut v = *px;
        if let PixelKind::Bgr | PixelKind::Bgra = self.kind {
            v.swap(0, 2);
        }
        v
    }
}

fn byte(src: &[u8], i: usize) -> u8 {
    src.get(i).copied().unwrap_or(0)
}

/// Reads successive samples of 1 to 16 bits from a packed row; past the end it reads zeros.
struct SampleReader<'a> {
    src: &'a [u8],
    bit: usize,
    bits: u8,
    big_endian: bool,
}

impl<'a> SampleReader<'a> {
    fn new(src: &'a [u8], bits: u8, big_endian: bool) -> Self {
        Self {
            src,
            bit: 0,
            bits,
            big_endian,
        }
    }

    fn next(&mut self) -> u32 {
        let v = match self.bits {
            8 => u32::from(byte(self.src, self.bit / 8)),
            16 => {
                let i = self.bit / 8;
                let (a, b) = (byte(self.src, i), byte(self.src, i + 1));
                u32::from(if self.big_endian {
                    u16::from_be_bytes([a, b])
                } else {
                    u16::from_le_bytes([a, b])
                })
            }
            n => {
                let b = byte(self.src, self.bit / 8);
                let shift = 8 - (self.bit % 8) as u8 - n;
                u32::from((b >> shift) & ((1u16 << n) - 1) as u8)
            }
        };
        self.bit += usize::from(self.bits);
        v
    }
}

/// `255·(1−c)(1−k)` in 8-bit with rounding, as libjpeg and Pillow compute it.
pub fn cmyk_channel(ink: u8, k: u8) -> u8 {
    let t = u32::from(255 - ink) * u32::from(255 - k) + 128;
    (((t >> 8) + t) >> 8) as u8
}

fn unpremultiply(c: u8, a: u8) -> u8 {
    if a == 0 {
        0
    } else {
        ((u32::from(c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8
    }
}

/// JFIF YCbCr → RGB (full range), rounded like libjpeg's fixed-point tables.
pub fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 4] {
    let (y, cb, cr) = (f32::from(y), f32::from(cb) - 128.0, f32::from(cr) - 128.0);
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [
        c(y + 1.402 * cr),
        c(y - 0.344_136 * cb - 0.714_136 * cr),
        c(y + 1.772 * cb),
        255,
    ]
}

/// PIL-style rawmode of data samples: `I;16B`, `I;32S`, `F;32BF`, `F;64F`, with `xN` for N
/// channels.
fn data_rawmode(t: SampleType, big_endian: bool, samples: u8) -> String {
    let e = if big_endian { "B" } else { "" };
    let mut s = match t {
        SampleType::U8 => "L".to_string(),
        SampleType::I8 => "L;8S".to_string(),
        SampleType::F16 | SampleType::F32 | SampleType::F64 => format!("F;{}{e}F", t.bits()),
        SampleType::U16 | SampleType::U32 | SampleType::U64 => format!("I;{}{e}", t.bits()),
        SampleType::I16 | SampleType::I32 | SampleType::I64 => format!("I;{}{e}S", t.bits()),
    };
    if samples > 1 {
        let _ = write!(s, "x{samples}");
    }
    s
}

/// Where native values of one row go.
pub enum NativeRow<'a> {
    None,
    U8(&'a mut [u8]),
    U16(&'a mut [u16]),
    /// Typed samples of a data page, from sample index `at`.
    Data {
        buf: &'a mut SampleBuf,
        at: usize,
    },
}

impl NativeRow<'_> {
    fn put(&mut self, x: usize, values: &[u32]) {
        let n = values.len();
        match self {
            NativeRow::None | NativeRow::Data { .. } => {}
            NativeRow::U8(d) => {
                for (slot, &v) in d.iter_mut().skip(x * n).zip(values) {
                    *slot = v as u8;
                }
            }
            NativeRow::U16(d) => {
                for (slot, &v) in d.iter_mut().skip(x * n).zip(values) {
                    *slot = v as u16;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(f: RawFormat, src: &[u8], width: usize) -> Vec<u8> {
        let mut out = vec![0; width * 4];
        f.unpack_row(src, width, None, &mut out, NativeRow::None);
        out
    }

    #[test]
    fn sixteen_bit_rounds() {
        let f = RawFormat::new(
            PixelKind::Gray {
                white_is_zero: false,
            },
            16,
        );
        // 0x8080 = 32896 → 32896·255/65535 = 128.0 exactly; 0x00FF → 0.99 → 1.
        let out = unpack(f, &[0x80, 0x80, 0x00, 0xFF], 2);
        assert_eq!(out, vec![128, 128, 128, 255, 1, 1, 1, 255]);
        let le = f.little_endian();
        assert_eq!(unpack(le, &[0xFF, 0x00], 1)[0], 1);
    }

    #[test]
    fn odd_maxval_scales_to_full_range() {
        let f = RawFormat::new(
            PixelKind::Gray {
                white_is_zero: false,
            },
            8,
        )
        .with_maxval(100);
        assert_eq!(
            unpack(f, &[0, 50, 100, 200], 4),
            vec![
                0, 0, 0, 255, 128, 128, 128, 255, 255, 255, 255, 255, 255, 255, 255, 255
            ]
        );
    }

    #[test]
    fn bilevel_and_nibbles() {
        let pbm = RawFormat::new(
            PixelKind::Gray {
                white_is_zero: true,
            },
            1,
        );
        let out = unpack(pbm, &[0b1010_0000], 3);
        assert_eq!([out[0], out[4], out[8]], [0, 255, 0]);
        let pal = [[10, 20, 30, 255], [1, 2, 3, 4]];
        let p4 = RawFormat::new(PixelKind::Palette, 4);
        let mut rgba = vec![0; 8];
        p4.unpack_row(&[0x10], 2, Some(&pal), &mut rgba, NativeRow::None);
        assert_eq!(rgba, vec![1, 2, 3, 4, 10, 20, 30, 255]);
    }

    #[test]
    fn cmyk_matches_pillow_formula() {
        assert_eq!(cmyk_channel(0, 0), 255);
        assert_eq!(cmyk_channel(255, 0), 0);
        // 255·(1−0.5)(1−0.5) ≈ 63.75 → 64
        assert_eq!(cmyk_channel(128, 128), 63);
        let f = RawFormat::new(PixelKind::Cmyk { inverted: false }, 8);
        assert_eq!(unpack(f, &[0, 255, 0, 0], 1), vec![255, 0, 255, 255]);
    }

    #[test]
    fn bitfields_565() {
        let f = RawFormat::new(
            PixelKind::Bitfields {
                bytes: 2,
                masks: [0xF800, 0x07E0, 0x001F, 0],
            },
            16,
        );
        assert_eq!(unpack(f, &0xF800u16.to_le_bytes(), 1), vec![255, 0, 0, 255]);
    }

    #[test]
    fn memory_layout_rule() {
        assert!(RawFormat::new(PixelKind::Rgba, 8).is_memory_layout());
        assert!(
            RawFormat::new(PixelKind::Rgb, 8)
                .with_samples(4)
                .is_memory_layout()
        );
        assert!(!RawFormat::new(PixelKind::Rgb, 8).is_memory_layout());
        assert!(!RawFormat::new(PixelKind::Bgra, 8).is_memory_layout());
        assert_eq!(
            RawFormat::new(PixelKind::Bgr, 8).with_samples(4).rawmode(),
            "BGRX"
        );
    }
}
