//! The display mapping: how native samples become screen colours. Per channel a window (black
//! and white points), a transfer function and invert; one channel through a colormap, or
//! several added up, each in its own colour (three in red, green and blue is RGB).
//!
//! Pure code, no I/O and no egui: the viewer and `render` compile a [`Mapping`] into a
//! [`Compiled`] table once per change and map cached native pieces with it, so a change never
//! re-reads or re-decodes the file.

pub mod colormap;

use crate::data::stats::Stats;
use crate::data::{DataInfo, Sample, SampleBuf};
use crate::with_samples;
pub use colormap::Colormap;

/// Entries of a compiled transfer table: finer than 8-bit output, so no banding appears.
pub const LUT_SIZE: usize = 4096;

/// How a windowed value in 0..1 becomes intensity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transfer {
    Linear,
    /// `t^γ` (γ < 1 brightens the dark end).
    Gamma(f32),
    /// `ln(1 + 1000 t) / ln(1001)`, as DS9.
    Log,
    Sqrt,
    /// `asinh(10 t) / asinh(10)`, as DS9.
    Asinh,
}

impl Transfer {
    pub const ALL: [Transfer; 5] = [
        Transfer::Linear,
        Transfer::Gamma(0.5),
        Transfer::Log,
        Transfer::Sqrt,
        Transfer::Asinh,
    ];

    pub fn apply(self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match self {
            Transfer::Linear => t,
            Transfer::Gamma(g) => t.powf(f64::from(g.max(0.01))),
            Transfer::Log => (1.0 + 1000.0 * t).ln() / 1001f64.ln(),
            Transfer::Sqrt => t.sqrt(),
            Transfer::Asinh => (10.0 * t).asinh() / 10f64.asinh(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Transfer::Linear => "linear",
            Transfer::Gamma(_) => "gamma",
            Transfer::Log => "log",
            Transfer::Sqrt => "sqrt",
            Transfer::Asinh => "asinh",
        }
    }

    /// `linear`, `gamma[:G]`, `log`, `sqrt`, `asinh`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        Ok(match name {
            "linear" => Transfer::Linear,
            "log" => Transfer::Log,
            "sqrt" => Transfer::Sqrt,
            "asinh" => Transfer::Asinh,
            "gamma" => {
                let g = if arg.is_empty() {
                    0.5
                } else {
                    arg.parse::<f32>()
                        .ok()
                        .filter(|g| *g > 0.0 && g.is_finite())
                        .ok_or_else(|| format!("gamma '{arg}' is not a positive number"))?
                };
                Transfer::Gamma(g)
            }
            _ => {
                return Err(format!(
                    "unknown transfer '{s}' (linear, gamma[:G], log, sqrt, asinh)"
                ));
            }
        })
    }
}

/// The mapping of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelMap {
    /// Black and white points, in physical units.
    pub lo: f64,
    pub hi: f64,
    pub transfer: Transfer,
    pub invert: bool,
    /// Colour in composite mode.
    pub color: [u8; 3],
    pub visible: bool,
}

/// Default channel colours in composite mode (Fiji's order).
pub const CHANNEL_COLORS: [[u8; 3]; 7] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 255],
    [0, 255, 255],
    [255, 0, 255],
    [255, 255, 0],
];

/// The whole mapping of a data page.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub channels: Vec<ChannelMap>,
    /// `Some(c)`: only channel `c`, through `colormap`; `None`: visible channels added up.
    pub single: Option<usize>,
    pub colormap: Colormap,
}

/// Percentiles auto contrast uses (0.1 % and 99.9 % unless set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub lo: f64,
    pub hi: f64,
}

impl Default for Percentiles {
    fn default() -> Self {
        Self { lo: 0.1, hi: 99.9 }
    }
}

impl Mapping {
    /// The mapping a data page opens with: one channel in gray, RGB data as RGB, several
    /// channels added up in Fiji's colours (the first seven shown). Windows span the type's
    /// range (or 0..1 for floats) until [`Mapping::auto`] sets them.
    pub fn for_data(info: &DataInfo) -> Self {
        let (lo, hi) = info.sample.range().unwrap_or((0.0, 1.0));
        let (lo, hi) = match info.scale {
            Some((s, o)) => (lo * s + o, hi * s + o),
            None => (lo, hi),
        };
        let channels = (0..info.channels)
            .map(|c| ChannelMap {
                lo,
                hi,
                transfer: Transfer::Linear,
                invert: false,
                color: CHANNEL_COLORS[c % CHANNEL_COLORS.len()],
                visible: c < CHANNEL_COLORS.len(),
            })
            .collect();
        let mut m = Self {
            channels,
            single: (info.channels == 1).then_some(0),
            colormap: Colormap::Gray,
        };
        if info.rgb && info.channels >= 3 {
            m.set_rgb([0, 1, 2]);
        }
        m
    }

    /// Show channels `rgb` as red, green and blue (the rest off).
    pub fn set_rgb(&mut self, rgb: [usize; 3]) {
        self.single = None;
        for (c, ch) in self.channels.iter_mut().enumerate() {
            ch.visible = false;
            if let Some(i) = rgb.iter().position(|&x| x == c) {
                ch.visible = true;
                ch.color = CHANNEL_COLORS[i];
            }
        }
    }

    /// Show exactly `list`: one channel alone (through the colormap), or several added up.
    pub fn set_channels(&mut self, list: &[usize]) {
        if let [one] = list {
            self.single = Some(*one);
            return;
        }
        self.single = None;
        for (c, ch) in self.channels.iter_mut().enumerate() {
            ch.visible = false;
            if let Some(i) = list.iter().position(|&x| x == c) {
                ch.visible = true;
                ch.color = CHANNEL_COLORS[i % CHANNEL_COLORS.len()];
            }
        }
    }

    /// Channels drawn.
    pub fn shown(&self) -> Vec<usize> {
        match self.single {
            Some(c) => vec![c],
            None => (0..self.channels.len())
                .filter(|&c| self.channels[c].visible)
                .collect(),
        }
    }

    /// Set every window from percentiles of `stats` of `info`'s page; RGB data shown as RGB
    /// share one window so colours keep their balance. Returns whether anything was known to
    /// set.
    pub fn auto(&mut self, stats: &mut Stats, p: Percentiles, info: &DataInfo) -> bool {
        if info.rgb && self.single.is_none() {
            let Some((lo, hi)) = stats.joint_window(p.lo, p.hi) else {
                return false;
            };
            for ch in &mut self.channels {
                (ch.lo, ch.hi) = widen(lo, hi);
            }
            return true;
        }
        let mut any = false;
        for (c, ch) in self.channels.iter_mut().enumerate() {
            if let Some((lo, hi)) = stats.window(c, p.lo, p.hi) {
                (ch.lo, ch.hi) = widen(lo, hi);
                any = true;
            }
        }
        any
    }

    /// Set every window to `lo..hi`.
    pub fn set_window(&mut self, lo: f64, hi: f64) {
        for ch in &mut self.channels {
            ch.lo = lo;
            ch.hi = hi;
        }
    }

    pub fn set_transfer(&mut self, t: Transfer) {
        for ch in &mut self.channels {
            ch.transfer = t;
        }
    }

    /// The tables that map samples of `info`'s pages.
    pub fn compile(&self, info: &DataInfo) -> Compiled {
        let (s, o) = info.scale.unwrap_or((1.0, 0.0));
        let shown = self.shown();
        let channels = shown
            .iter()
            .filter_map(|&c| {
                let ch = self.channels.get(c)?;
                let span = if ch.hi != ch.lo { ch.hi - ch.lo } else { 1.0 };
                // t = (physical − lo) / span, physical = stored · s + o.
                let a = s / span;
                let b = (o - ch.lo) / span;
                let lut = (0..LUT_SIZE)
                    .map(|i| {
                        let mut t = ch.transfer.apply(i as f64 / (LUT_SIZE - 1) as f64);
                        if ch.invert {
                            t = 1.0 - t;
                        }
                        if self.single.is_some() {
                            self.colormap.eval(t)
                        } else {
                            ch.color.map(|c| (f64::from(c) * t).round() as u8)
                        }
                    })
                    .collect();
                Some(CompiledChannel {
                    index: c,
                    a,
                    b,
                    lut,
                })
            })
            .collect();
        Compiled {
            channels,
            stride: info.channels,
            nodata: info.nodata,
        }
    }
}

/// A window that is never empty.
fn widen(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        (lo - 0.5, lo + 0.5)
    }
}

/// One shown channel, ready to map: `t = stored · a + b`, then `lut[t · (N−1)]`.
#[derive(Debug, Clone)]
pub struct CompiledChannel {
    pub index: usize,
    a: f64,
    b: f64,
    lut: Vec<[u8; 3]>,
}

/// A mapping compiled for one page's samples.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub channels: Vec<CompiledChannel>,
    stride: usize,
    nodata: Option<f64>,
}

impl Compiled {
    /// RGBA of `pixels` pixels of `buf`; no-data (NaN, the no-data value) is transparent.
    pub fn map(&self, buf: &SampleBuf, pixels: usize) -> Vec<u8> {
        let mut out = vec![0u8; pixels * 4];
        with_samples!(buf, v => self.map_typed(v, pixels, &mut out));
        out
    }

    fn map_typed<T: Sample>(&self, v: &[T], pixels: usize, out: &mut [u8]) {
        let top = (LUT_SIZE - 1) as f64;
        let nodata = self.nodata;
        let index = |s: f64, ch: &CompiledChannel| -> Option<usize> {
            if crate::data::is_nodata(s, nodata) {
                return None;
            }
            Some(((s * ch.a + ch.b) * top + 0.5).clamp(0.0, top) as usize)
        };
        let out = &mut out[..pixels * 4];
        if let [ch] = self.channels.as_slice() {
            for (p, o) in out.chunks_exact_mut(4).enumerate() {
                let s = v
                    .get(p * self.stride + ch.index)
                    .map_or(f64::NAN, |s| s.to_f64());
                match index(s, ch) {
                    Some(i) => {
                        let c = ch.lut[i];
                        o.copy_from_slice(&[c[0], c[1], c[2], 255]);
                    }
                    None => o.copy_from_slice(&[0, 0, 0, 0]),
                }
            }
            return;
        }
        for (p, o) in out.chunks_exact_mut(4).enumerate() {
            let mut acc = [0u16; 3];
            let mut any = self.channels.is_empty();
            for ch in &self.channels {
                let s = v
                    .get(p * self.stride + ch.index)
                    .map_or(f64::NAN, |s| s.to_f64());
                if let Some(i) = index(s, ch) {
                    any = true;
                    let c = ch.lut[i];
                    for k in 0..3 {
                        acc[k] += u16::from(c[k]);
                    }
                }
            }
            let a = if any { 255 } else { 0 };
            o.copy_from_slice(&[
                acc[0].min(255) as u8,
                acc[1].min(255) as u8,
                acc[2].min(255) as u8,
                a,
            ]);
        }
    }
}

/// `--window`: `LO,HI` or `auto[:P_LO,P_HI]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WindowArg {
    Fixed(f64, f64),
    Auto(Percentiles),
}

impl WindowArg {
    pub fn parse(s: &str) -> Result<Self, String> {
        let pair = |t: &str| -> Option<(f64, f64)> {
            let (a, b) = t.split_once(',')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        };
        if let Some(rest) = s.strip_prefix("auto") {
            if rest.is_empty() {
                return Ok(WindowArg::Auto(Percentiles::default()));
            }
            let (lo, hi) = rest
                .strip_prefix(':')
                .and_then(pair)
                .filter(|(lo, hi)| (0.0..=100.0).contains(lo) && lo < hi && *hi <= 100.0)
                .ok_or_else(|| {
                    format!("'{s}': expected auto:P_LO,P_HI with 0 <= P_LO < P_HI <= 100")
                })?;
            return Ok(WindowArg::Auto(Percentiles { lo, hi }));
        }
        let (lo, hi) = pair(s)
            .filter(|(lo, hi)| lo.is_finite() && hi.is_finite() && lo != hi)
            .ok_or_else(|| format!("'{s}': expected LO,HI (two different numbers) or auto"))?;
        Ok(WindowArg::Fixed(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleType;

    fn gray(lo: f64, hi: f64, t: Transfer) -> (Mapping, DataInfo) {
        let info = DataInfo::new(SampleType::U16, 1);
        let mut m = Mapping::for_data(&info);
        m.set_window(lo, hi);
        m.set_transfer(t);
        (m, info)
    }

    #[test]
    fn linear_window_maps_ends_to_black_and_white() {
        let (m, info) = gray(80.0, 4000.0, Transfer::Linear);
        let out = m
            .compile(&info)
            .map(&SampleBuf::U16(vec![0, 80, 2040, 4000, 60000]), 5);
        let l: Vec<u8> = out.chunks(4).map(|p| p[0]).collect();
        assert_eq!(l[0], 0);
        assert_eq!(l[1], 0);
        // Midpoint: index 2047 of 4096 → 127.
        assert!((126..=128).contains(&l[2]), "{l:?}");
        assert_eq!(l[3], 255);
        assert_eq!(l[4], 255);
        assert!(out.chunks(4).all(|p| p[3] == 255));
    }

    #[test]
    fn transfers_follow_their_formulas() {
        for (t, f) in [
            (Transfer::Gamma(0.5), 0.25f64.sqrt()),
            (Transfer::Sqrt, 0.5),
            (Transfer::Log, (1.0 + 250.0f64).ln() / 1001f64.ln()),
            (Transfer::Asinh, 2.5f64.asinh() / 10f64.asinh()),
        ] {
            assert!((t.apply(0.25) - f).abs() < 1e-12, "{t:?}");
            assert_eq!(t.apply(0.0), 0.0);
            assert!((t.apply(1.0) - 1.0).abs() < 1e-12);
            let (m, info) = gray(0.0, 4095.0, t);
            let v = m.compile(&info).map(&SampleBuf::U16(vec![1024]), 1)[0];
            let want = (t.apply(1024.0 / 4095.0) * 255.0).round();
            assert!((f64::from(v) - want).abs() <= 1.0, "{t:?}: {v} vs {want}");
        }
        assert_eq!(Transfer::parse("gamma:2.2"), Ok(Transfer::Gamma(2.2)));
        assert!(Transfer::parse("cubic").is_err());
    }

    #[test]
    fn invert_nodata_and_scale() {
        let mut info = DataInfo::new(SampleType::I16, 1);
        info.nodata = Some(-32768.0);
        info.scale = Some((0.5, 100.0));
        let mut m = Mapping::for_data(&info);
        m.set_window(100.0, 200.0);
        m.channels[0].invert = true;
        // stored 0 → 100 (black → inverted white); stored 200 → 200 (white → black).
        let out = m
            .compile(&info)
            .map(&SampleBuf::I16(vec![0, 200, -32768]), 3);
        assert_eq!(&out[0..4], &[255, 255, 255, 255]);
        assert_eq!(&out[4..8], &[0, 0, 0, 255]);
        assert_eq!(out[11], 0, "no-data is transparent");
        let f = DataInfo::new(SampleType::F32, 1);
        let out = Mapping::for_data(&f)
            .compile(&f)
            .map(&SampleBuf::F32(vec![f32::NAN]), 1);
        assert_eq!(out[3], 0, "NaN is transparent");
    }

    #[test]
    fn channels_add_up_in_their_colours() {
        let info = DataInfo::new(SampleType::U8, 3);
        let mut m = Mapping::for_data(&info);
        m.set_window(0.0, 255.0);
        m.set_rgb([0, 1, 2]);
        let c = m.compile(&info);
        assert_eq!(
            c.map(&SampleBuf::U8(vec![255, 0, 255]), 1),
            [255, 0, 255, 255]
        );
        // Red and white channels saturate at 255.
        m.set_channels(&[0, 3 % 3]);
        m.channels[0].color = [255, 0, 0];
        let mut m2 = m.clone();
        m2.single = None;
        m2.channels[1].visible = true;
        m2.channels[1].color = [255, 255, 255];
        m2.channels[2].visible = false;
        let out = m2.compile(&info).map(&SampleBuf::U8(vec![255, 128, 0]), 1);
        assert_eq!(out[0], 255);
        assert!((127..=129).contains(&out[1]));
        // One channel alone goes through the colormap.
        m.set_channels(&[1]);
        m.colormap = Colormap::Viridis;
        let out = m.compile(&info).map(&SampleBuf::U8(vec![0, 0, 0]), 1);
        assert_eq!(&out[..3], &Colormap::Viridis.eval(0.0));
    }

    #[test]
    fn auto_uses_percentiles() {
        let info = DataInfo::new(SampleType::U16, 1);
        let mut stats = Stats::new(1);
        let v: Vec<u16> = (0..1001).map(|i| 80 + i as u16 * 4).collect();
        stats.add(&info, &SampleBuf::U16(v), 1001, true);
        let mut m = Mapping::for_data(&info);
        assert!(m.auto(&mut stats, Percentiles { lo: 0.0, hi: 100.0 }, &info));
        assert_eq!((m.channels[0].lo, m.channels[0].hi), (80.0, 4080.0));
        assert!(m.auto(&mut stats, Percentiles::default(), &info));
        assert!((m.channels[0].lo - 84.0).abs() < 1e-9);
        assert!((m.channels[0].hi - 4076.0).abs() < 1e-9);
    }

    #[test]
    fn window_arguments() {
        assert_eq!(
            WindowArg::parse("80,4000"),
            Ok(WindowArg::Fixed(80.0, 4000.0))
        );
        assert_eq!(
            WindowArg::parse("auto"),
            Ok(WindowArg::Auto(Percentiles::default()))
        );
        assert_eq!(
            WindowArg::parse("auto:1,99"),
            Ok(WindowArg::Auto(Percentiles { lo: 1.0, hi: 99.0 }))
        );
        assert!(WindowArg::parse("auto:99,1").is_err());
        assert!(WindowArg::parse("5,5").is_err());
        assert!(WindowArg::parse("x").is_err());
    }
}
