//! Scientific samples: the numeric type of a stored sample, pieces of samples kept in that type,
//! and what a page's channels mean (names, no-data value, physical scale).
//!
//! Pictures (8-bit and below, 16-bit PNG/PNM) become RGBA when decoded. Data pages (16-bit
//! gray, 32/64-bit, signed, float, many channels) keep their native samples in the cache and
//! become colours only through a [`crate::display::Mapping`], so that changing the contrast
//! never re-reads the file.

pub mod stats;

/// Numeric type of one stored sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleType {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    /// IEEE half float: kept in memory as `f32` (exact).
    F16,
    F32,
    F64,
}

impl SampleType {
    /// From a TIFF `SampleFormat` (1 unsigned, 2 signed, 3 IEEE float) and bit depth.
    pub fn from_tiff(format: u16, bits: u16) -> Option<Self> {
        Some(match (format, bits) {
            (1 | 4, 8) => Self::U8,
            (1 | 4, 16) => Self::U16,
            (1 | 4, 32) => Self::U32,
            (1 | 4, 64) => Self::U64,
            (2, 8) => Self::I8,
            (2, 16) => Self::I16,
            (2, 32) => Self::I32,
            (2, 64) => Self::I64,
            (3, 16) => Self::F16,
            (3, 32) => Self::F32,
            (3, 64) => Self::F64,
            _ => return None,
        })
    }

    pub fn bits(self) -> u8 {
        match self {
            Self::U8 | Self::I8 => 8,
            Self::U16 | Self::I16 | Self::F16 => 16,
            Self::U32 | Self::I32 | Self::F32 => 32,
            Self::U64 | Self::I64 | Self::F64 => 64,
        }
    }

    pub fn bytes(self) -> usize {
        usize::from(self.bits() / 8)
    }

    pub fn is_float(self) -> bool {
        matches!(self, Self::F16 | Self::F32 | Self::F64)
    }

    pub fn is_signed(self) -> bool {
        matches!(self, Self::I8 | Self::I16 | Self::I32 | Self::I64)
    }

    /// The name users of numpy, GDAL and astropy know.
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::U16 => "uint16",
            Self::U32 => "uint32",
            Self::U64 => "uint64",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::I64 => "int64",
            Self::F16 => "float16",
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }

    /// The full range of the type (for integer types), used as the window of "reset".
    pub fn range(self) -> Option<(f64, f64)> {
        Some(match self {
            Self::U8 => (0.0, 255.0),
            Self::U16 => (0.0, 65535.0),
            Self::U32 => (0.0, f64::from(u32::MAX)),
            Self::U64 => (0.0, u64::MAX as f64),
            Self::I8 => (-128.0, 127.0),
            Self::I16 => (-32768.0, 32767.0),
            Self::I32 => (f64::from(i32::MIN), f64::from(i32::MAX)),
            Self::I64 => (i64::MIN as f64, i64::MAX as f64),
            _ => return None,
        })
    }
}

/// Samples of a piece in their native type, interleaved (`pixel * channels + channel`).
#[derive(Debug, Clone, PartialEq)]
pub enum SampleBuf {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// Run `$body` with `$v` bound to the typed vector of a [`SampleBuf`].
#[macro_export]
macro_rules! with_samples {
    ($buf:expr, $v:ident => $body:expr) => {
        match $buf {
            $crate::data::SampleBuf::U8($v) => $body,
            $crate::data::SampleBuf::U16($v) => $body,
            $crate::data::SampleBuf::U32($v) => $body,
            $crate::data::SampleBuf::U64($v) => $body,
            $crate::data::SampleBuf::I8($v) => $body,
            $crate::data::SampleBuf::I16($v) => $body,
            $crate::data::SampleBuf::I32($v) => $body,
            $crate::data::SampleBuf::I64($v) => $body,
            $crate::data::SampleBuf::F32($v) => $body,
            $crate::data::SampleBuf::F64($v) => $body,
        }
    };
}

/// A sample type the mapping can read as `f64`.
pub trait Sample: Copy + Send + Sync + 'static {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

macro_rules! sample_impl {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    )*};
}
sample_impl!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

macro_rules! from_vec {
    ($($t:ty => $var:ident),*) => {$(
        impl From<Vec<$t>> for SampleBuf {
            fn from(v: Vec<$t>) -> Self {
                SampleBuf::$var(v)
            }
        }
    )*};
}
from_vec!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, i8 => I8, i16 => I16, i32 => I32,
    i64 => I64, f32 => F32, f64 => F64);

impl SampleBuf {
    /// `n` zero samples of type `ty`.
    pub fn zeroed(ty: SampleType, n: usize) -> Self {
        match ty {
            SampleType::U8 => Self::U8(vec![0; n]),
            SampleType::U16 => Self::U16(vec![0; n]),
            SampleType::U32 => Self::U32(vec![0; n]),
            SampleType::U64 => Self::U64(vec![0; n]),
            SampleType::I8 => Self::I8(vec![0; n]),
            SampleType::I16 => Self::I16(vec![0; n]),
            SampleType::I32 => Self::I32(vec![0; n]),
            SampleType::I64 => Self::I64(vec![0; n]),
            SampleType::F16 | SampleType::F32 => Self::F32(vec![0.0; n]),
            SampleType::F64 => Self::F64(vec![0.0; n]),
        }
    }

    pub fn len(&self) -> usize {
        with_samples!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn byte_size(&self) -> usize {
        with_samples!(self, v => std::mem::size_of_val(v.as_slice()))
    }

    /// Sample `i` as `f64` (0 past the end).
    pub fn get(&self, i: usize) -> f64 {
        with_samples!(self, v => v.get(i).map_or(0.0, |s| s.to_f64()))
    }

    /// Set sample `i` to `v`, converted to the buffer's type (ignored past the end).
    pub fn set(&mut self, i: usize, v: f64) {
        fn put<T: Sample>(d: &mut [T], i: usize, v: f64) {
            if let Some(s) = d.get_mut(i) {
                *s = T::from_f64(v);
            }
        }
        with_samples!(self, d => put(d, i, v));
    }

    /// Copy `n` samples from `src[from..]` to `self[at..]`; false (and nothing copied) when
    /// the types differ or a range is out of bounds.
    pub fn copy_run(&mut self, at: usize, src: &SampleBuf, from: usize, n: usize) -> bool {
        macro_rules! run {
            ($($v:ident),*) => {
                match (self, src) {
                    $((SampleBuf::$v(d), SampleBuf::$v(s)) => {
                        match (d.get_mut(at..at + n), s.get(from..from + n)) {
                            (Some(d), Some(s)) => {
                                d.copy_from_slice(s);
                                true
                            }
                            _ => false,
                        }
                    })*
                    _ => false,
                }
            };
        }
        run!(U8, U16, U32, U64, I8, I16, I32, I64, F32, F64)
    }

    /// The samples as little-endian bytes (as a little-endian TIFF stores them).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        with_samples!(self, v => v.iter().flat_map(|s| s.to_le_bytes()).collect())
    }

    /// `w` x `h` pixels of `channels` samples shrunk by `scale` (partial edge blocks too):
    /// each output sample is the mean of the valid samples of its block (not NaN, not
    /// `nodata`), rounded for integer types; a block with none is `nodata` (NaN for floats
    /// without one, else 0).
    pub fn shrink(
        &self,
        (w, h): (usize, usize),
        channels: usize,
        scale: usize,
        ty: SampleType,
        nodata: Option<f64>,
    ) -> SampleBuf {
        let scale = scale.max(1);
        let (ow, oh) = (w.div_ceil(scale), h.div_ceil(scale));
        let mut out = SampleBuf::zeroed(ty, ow * oh * channels);
        let empty = nodata.unwrap_or(if ty.is_float() { f64::NAN } else { 0.0 });
        let mut sums = vec![(0.0f64, 0u32); ow * channels];
        for oy in 0..oh {
            sums.iter_mut().for_each(|s| *s = (0.0, 0));
            for y in oy * scale..((oy + 1) * scale).min(h) {
                for x in 0..w {
                    for c in 0..channels {
                        let v = self.get((y * w + x) * channels + c);
                        if !is_nodata(v, nodata) {
                            let s = &mut sums[(x / scale) * channels + c];
                            s.0 += v;
                            s.1 += 1;
                        }
                    }
                }
            }
            for (i, &(sum, n)) in sums.iter().enumerate() {
                let v = if n == 0 {
                    empty
                } else if ty.is_float() {
                    sum / f64::from(n)
                } else {
                    (sum / f64::from(n)).round()
                };
                out.set(oy * ow * channels + i, v);
            }
        }
        out
    }

    /// Decode `count` stored samples of type `ty` (byte order `big_endian`) from `src` into
    /// `self[at..]`; missing bytes read as zero.
    pub fn fill_from_bytes(
        &mut self,
        at: usize,
        src: &[u8],
        count: usize,
        ty: SampleType,
        big_endian: bool,
    ) {
        let n = ty.bytes();
        let word = |i: usize| -> [u8; 8] {
            let mut b = [0u8; 8];
            if let Some(s) = src.get(i * n..i * n + n) {
                if big_endian {
                    b[..n].copy_from_slice(s);
                } else {
                    for (d, x) in b[..n].iter_mut().zip(s.iter().rev()) {
                        *d = *x;
                    }
                }
            }
            b // big-endian bytes in b[..n]
        };
        macro_rules! fill {
            ($d:ident, $conv:expr) => {
                for (i, slot) in $d.iter_mut().skip(at).take(count).enumerate() {
                    let b = word(i);
                    *slot = $conv(b);
                }
            };
        }
        match (self, ty) {
            (SampleBuf::U8(d), _) => fill!(d, |b: [u8; 8]| b[0]),
            (SampleBuf::I8(d), _) => fill!(d, |b: [u8; 8]| b[0] as i8),
            (SampleBuf::U16(d), _) => fill!(d, |b: [u8; 8]| u16::from_be_bytes([b[0], b[1]])),
            (SampleBuf::I16(d), _) => fill!(d, |b: [u8; 8]| i16::from_be_bytes([b[0], b[1]])),
            (SampleBuf::U32(d), _) => {
                fill!(d, |b: [u8; 8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            (SampleBuf::I32(d), _) => {
                fill!(d, |b: [u8; 8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            }
            (SampleBuf::U64(d), _) => fill!(d, u64::from_be_bytes),
            (SampleBuf::I64(d), _) => fill!(d, i64::from_be_bytes),
            (SampleBuf::F32(d), SampleType::F16) => fill!(d, |b: [u8; 8]| {
                half::f16::from_bits(u16::from_be_bytes([b[0], b[1]])).to_f32()
            }),
            (SampleBuf::F32(d), _) => fill!(d, |b: [u8; 8]| f32::from_bits(u32::from_be_bytes([
                b[0], b[1], b[2], b[3]
            ]))),
            (SampleBuf::F64(d), _) => fill!(d, |b: [u8; 8]| f64::from_bits(u64::from_be_bytes(b))),
        }
    }
}

/// Whether stored value `v` is no-data: NaN, or `nodata`.
#[inline]
pub fn is_nodata(v: f64, nodata: Option<f64>) -> bool {
    v.is_nan() || nodata == Some(v)
}

/// What the channels of a data page mean.
#[derive(Debug, Clone, PartialEq)]
pub struct DataInfo {
    pub sample: SampleType,
    pub channels: usize,
    /// One name per channel (from OME-XML, `ImageDescription` or FITS headers, else numbers).
    pub names: Vec<String>,
    /// Stored value that means "no data" (GDAL_NODATA, FITS BLANK); NaN always does.
    pub nodata: Option<f64>,
    /// Physical value = stored · scale + offset (FITS BSCALE/BZERO beyond the unsigned
    /// conventions, which become unsigned types instead).
    pub scale: Option<(f64, f64)>,
    /// The stored channels are R, G, B (TIFF photometric RGB): shown as RGB by default.
    pub rgb: bool,
    /// Physical unit of the values (FITS BUNIT), if known.
    pub unit: Option<String>,
}

impl DataInfo {
    pub fn new(sample: SampleType, channels: usize) -> Self {
        Self {
            sample,
            channels,
            names: (0..channels).map(|c| format!("channel {c}")).collect(),
            nodata: None,
            scale: None,
            rgb: false,
            unit: None,
        }
    }

    /// Whether stored value `v` is no-data: NaN, or the page's no-data value.
    #[inline]
    pub fn is_nodata(&self, v: f64) -> bool {
        is_nodata(v, self.nodata)
    }

    /// Physical value of stored value `v`, `None` for no-data (NaN or the no-data value).
    #[inline]
    pub fn value(&self, v: f64) -> Option<f64> {
        if self.is_nodata(v) {
            return None;
        }
        Some(match self.scale {
            Some((s, o)) => v * s + o,
            None => v,
        })
    }

    /// Whether some pixels may be no-data (drawn over a checkerboard).
    pub fn may_have_holes(&self) -> bool {
        self.nodata.is_some() || self.sample.is_float()
    }

    /// A one-line description: `float32, 1 channel` / `uint16, 5 channels (DAPI, ...)`.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}, {} channel{}",
            self.sample.name(),
            self.channels,
            if self.channels == 1 { "" } else { "s" }
        );
        if let Some(nd) = self.nodata {
            s.push_str(&format!(", no-data {}", format_value(nd)));
        }
        if let Some((sc, off)) = self.scale {
            s.push_str(&format!(", value = stored × {sc} + {off}"));
        }
        s
    }

    /// Names given by the file (OME `Channel Name`, `ImageDescription` lines, FITS keys),
    /// used when there is one per channel.
    pub fn with_names(mut self, names: Vec<String>) -> Self {
        if names.len() == self.channels && names.iter().all(|n| !n.trim().is_empty()) {
            self.names = names;
        }
        self
    }
}

/// A native value as users read it: integers as is, floats with 6 significant digits.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let a = v.abs();
    if (1e-4..1e6).contains(&a) {
        let digits = (5 - a.log10().floor() as i32).clamp(0, 9) as usize;
        let s = format!("{v:.digits$}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        format!("{v:.5e}")
    }
}

/// Channel names from an OME-XML `ImageDescription` (`<Channel ... Name="DAPI"`), in order.
pub fn ome_channel_names(xml: &str) -> Vec<String> {
    let mut names = Vec::new();
    for part in xml.split("<Channel").skip(1) {
        let tag = part.split('>').next().unwrap_or("");
        let name = tag
            .split("Name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        names.push(name.to_string());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_averages_valid_samples_only() {
        // 3x2, one channel, a no-data value of -1 and a NaN-free int type.
        let b = SampleBuf::I16(vec![1, 2, 7, 4, -1, -1]);
        let s = b.shrink((3, 2), 1, 2, SampleType::I16, Some(-1.0));
        // Block (0..2, 0..2): 1, 2, 4 valid -> 2.33 -> 2; block (2, 0..2): 7 alone.
        assert_eq!(s, SampleBuf::I16(vec![2, 7]));
        let f = SampleBuf::F32(vec![f32::NAN, f32::NAN, 1.0, 2.0]);
        let s = f.shrink((2, 2), 1, 2, SampleType::F32, None);
        assert_eq!(s, SampleBuf::F32(vec![1.5]));
        let s = SampleBuf::F32(vec![f32::NAN; 4]).shrink((2, 2), 1, 2, SampleType::F32, None);
        assert!(s.get(0).is_nan());
        // Two channels stay apart.
        let c = SampleBuf::U8(vec![0, 100, 10, 200]);
        assert_eq!(
            c.shrink((2, 1), 2, 2, SampleType::U8, None),
            SampleBuf::U8(vec![5, 150])
        );
        let mut d = SampleBuf::zeroed(SampleType::U16, 4);
        assert!(d.copy_run(1, &SampleBuf::U16(vec![7, 8, 9]), 1, 2));
        assert_eq!(d, SampleBuf::U16(vec![0, 8, 9, 0]));
        assert!(!d.copy_run(3, &SampleBuf::U16(vec![7, 8]), 0, 2));
        assert!(!d.copy_run(0, &SampleBuf::U8(vec![7]), 0, 1));
        assert_eq!(SampleBuf::I16(vec![-2]).to_le_bytes(), vec![0xFE, 0xFF]);
    }

    #[test]
    fn bytes_decode_in_both_orders() {
        let mut b = SampleBuf::zeroed(SampleType::I16, 2);
        b.fill_from_bytes(0, &[0xFF, 0xFE, 0x00, 0x02], 2, SampleType::I16, true);
        assert_eq!(b, SampleBuf::I16(vec![-2, 2]));
        b.fill_from_bytes(0, &[0xFE, 0xFF, 0x02, 0x00], 2, SampleType::I16, false);
        assert_eq!(b, SampleBuf::I16(vec![-2, 2]));
        let mut f = SampleBuf::zeroed(SampleType::F16, 1);
        f.fill_from_bytes(0, &0x3C00u16.to_le_bytes(), 1, SampleType::F16, false);
        assert_eq!(f, SampleBuf::F32(vec![1.0]));
        let mut d = SampleBuf::zeroed(SampleType::F64, 1);
        d.fill_from_bytes(0, &(-2.5f64).to_be_bytes(), 1, SampleType::F64, true);
        assert_eq!(d.get(0), -2.5);
    }

    #[test]
    fn values_print_as_users_read_them() {
        assert_eq!(format_value(4000.0), "4000");
        assert_eq!(format_value(-12.0), "-12");
        assert_eq!(format_value(1234.5678), "1234.57");
        assert_eq!(format_value(0.001234567), "0.00123457");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(3.0e-9), "3.00000e-9");
    }

    #[test]
    fn ome_names() {
        let xml = r#"<OME><Image><Pixels><Channel ID="Channel:0:0" Name="DAPI" SamplesPerPixel="1"/><Channel ID="Channel:0:1" Name="GFP"/></Pixels></Image></OME>"#;
        assert_eq!(ome_channel_names(xml), vec!["DAPI", "GFP"]);
    }

    #[test]
    fn nodata_and_scale() {
        let mut i = DataInfo::new(SampleType::I16, 1);
        i.nodata = Some(-32768.0);
        i.scale = Some((2.0, 1.0));
        assert_eq!(i.value(-32768.0), None);
        assert_eq!(i.value(3.0), Some(7.0));
        assert_eq!(i.value(f64::NAN), None);
    }
}
