//! Statistics of native samples for auto contrast and the histogram: exact count, min, max and
//! mean, and a bounded uniform sample (reservoir) from which percentiles and histograms come.
//! Memory is bounded whatever the file size: at most [`RESERVOIR`] values per channel.

use super::{DataInfo, Sample, SampleBuf};
use crate::with_samples;

/// Values kept per channel for percentiles and histograms.
pub const RESERVOIR: usize = 65_536;
/// Pixels sampled from one piece at most (a strided subset), so a big piece costs little.
pub const PER_PIECE: usize = 16_384;

/// Running statistics of one channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelStats {
    pub count: u64,
    pub nodata: u64,
    pub min: f64,
    pub max: f64,
    sum: f64,
    seen: u64,
    sample: Vec<f32>,
    sorted: bool,
}

impl ChannelStats {
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    fn add(&mut self, v: f64, rng: &mut u64) {
        if self.count == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.count += 1;
        self.sum += v;
        self.seen += 1;
        self.sorted = false;
        if self.sample.len() < RESERVOIR {
            self.sample.push(v as f32);
        } else {
            // Algorithm R: keep each value seen with probability RESERVOIR / seen.
            let j = (next(rng) % self.seen) as usize;
            if j < RESERVOIR {
                self.sample[j] = v as f32;
            }
        }
    }

    /// The `p`-th percentile (0..=100) of the sampled values, linearly interpolated.
    pub fn percentile(&mut self, p: f64) -> Option<f64> {
        if self.sample.is_empty() {
            return None;
        }
        if !self.sorted {
            self.sample.sort_unstable_by(f32::total_cmp);
            self.sorted = true;
        }
        let n = self.sample.len();
        let pos = (p.clamp(0.0, 100.0) / 100.0) * (n - 1) as f64;
        let (i, f) = (pos.floor() as usize, pos.fract());
        let a = f64::from(self.sample[i]);
        let b = f64::from(self.sample[(i + 1).min(n - 1)]);
        let v = a + (b - a) * f;
        // The extremes are known exactly.
        Some(if p <= 0.0 {
            self.min
        } else if p >= 100.0 {
            self.max
        } else {
            v.clamp(self.min, self.max)
        })
    }

    /// Counts of the sampled values in `bins` equal bins over `lo..=hi`.
    pub fn histogram(&self, lo: f64, hi: f64, bins: usize) -> Vec<u32> {
        let bins = bins.max(1);
        let mut out = vec![0u32; bins];
        let span = hi - lo;
        if span.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            if let Some(first) = out.first_mut() {
                *first = self.sample.len() as u32;
            }
            return out;
        }
        let scale = bins as f64 / span;
        for &v in &self.sample {
            let b = ((f64::from(v) - lo) * scale).floor();
            if b >= 0.0 && b < bins as f64 {
                out[b as usize] += 1;
            } else if f64::from(v) == hi {
                out[bins - 1] += 1;
            }
        }
        out
    }
}

/// Statistics of every channel of a page, fed piece by piece.
#[derive(Debug, Clone)]
pub struct Stats {
    pub channels: Vec<ChannelStats>,
    rng: u64,
}

fn next(state: &mut u64) -> u64 {
    // xorshift64*: deterministic, so percentiles are reproducible run to run.
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

impl Stats {
    pub fn new(channels: usize) -> Self {
        Self {
            channels: vec![ChannelStats::default(); channels],
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// Values seen (not no-data), over all channels.
    pub fn count(&self) -> u64 {
        self.channels.iter().map(|c| c.count).sum()
    }

    /// Add the samples of a piece (`pixels` of them), a strided subset when it is big;
    /// `all` adds every pixel (for exact figures on small levels).
    pub fn add(&mut self, info: &DataInfo, buf: &SampleBuf, pixels: usize, all: bool) {
        let step = if all {
            1
        } else {
            pixels.div_ceil(PER_PIECE).max(1)
        };
        with_samples!(buf, v => self.add_typed(info, v, pixels, step));
    }

    fn add_typed<T: Sample>(&mut self, info: &DataInfo, v: &[T], pixels: usize, step: usize) {
        let ch = info.channels.min(self.channels.len());
        let stride = info.channels;
        let mut p = 0;
        while p < pixels {
            for c in 0..ch {
                let Some(s) = v.get(p * stride + c) else {
                    return;
                };
                match info.value(s.to_f64()) {
                    Some(x) if x.is_finite() => self.channels[c].add(x, &mut self.rng),
                    _ => self.channels[c].nodata += 1,
                }
            }
            p += step;
        }
    }

    /// The `(lo, hi)` percentiles of channel `c`.
    pub fn window(&mut self, c: usize, lo: f64, hi: f64) -> Option<(f64, f64)> {
        let ch = self.channels.get_mut(c)?;
        Some((ch.percentile(lo)?, ch.percentile(hi)?))
    }

    /// One window for all channels (RGB data keeps its colour balance).
    pub fn joint_window(&mut self, lo: f64, hi: f64) -> Option<(f64, f64)> {
        let mut all = ChannelStats::default();
        let mut rng = 1;
        for c in &self.channels {
            for &v in &c.sample {
                all.add(f64::from(v), &mut rng);
            }
        }
        Some((all.percentile(lo)?, all.percentile(hi)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SampleType;

    #[test]
    fn percentiles_match_a_sort() {
        let info = DataInfo::new(SampleType::U16, 1);
        let values: Vec<u16> = (0..10_000u32)
            .map(|i| ((i * 7919) % 10_000) as u16)
            .collect();
        let mut s = Stats::new(1);
        s.add(&info, &SampleBuf::U16(values), 10_000, true);
        let c = &mut s.channels[0];
        assert_eq!((c.min, c.max), (0.0, 9999.0));
        assert_eq!(c.mean(), Some(4999.5));
        // Every value is in the reservoir: the percentile is the interpolated order statistic.
        assert!((c.percentile(0.1).unwrap_or(0.0) - 9.999).abs() < 1e-6);
        assert!((c.percentile(99.9).unwrap_or(0.0) - 9989.001).abs() < 1e-3);
        assert_eq!(c.percentile(50.0), Some(4999.5));
    }

    #[test]
    fn reservoir_stays_bounded_and_representative() {
        let info = DataInfo::new(SampleType::F32, 1);
        let mut s = Stats::new(1);
        for k in 0..40 {
            let v: Vec<f32> = (0..100_000)
                .map(|i| ((i + k * 100_000) as f32) / 4e6)
                .collect();
            s.add(&info, &SampleBuf::F32(v), 100_000, true);
        }
        let c = &mut s.channels[0];
        assert_eq!(c.count, 4_000_000);
        assert_eq!(c.sample.len(), RESERVOIR);
        // Uniform on [0, 1): the sampled median is within 1 % of 0.5.
        let m = c.percentile(50.0).unwrap_or(0.0);
        assert!((m - 0.5).abs() < 0.01, "median {m}");
    }

    #[test]
    fn nodata_and_nan_are_skipped() {
        let mut info = DataInfo::new(SampleType::F32, 2);
        info.nodata = Some(-9999.0);
        let mut s = Stats::new(2);
        let v = vec![1.0, f32::NAN, -9999.0, 5.0, 3.0, 7.0];
        s.add(&info, &SampleBuf::F32(v), 3, true);
        assert_eq!((s.channels[0].count, s.channels[0].nodata), (2, 1));
        assert_eq!((s.channels[1].count, s.channels[1].nodata), (2, 1));
        assert_eq!((s.channels[0].min, s.channels[0].max), (1.0, 3.0));
        let h = s.channels[1].histogram(5.0, 7.0, 2);
        assert_eq!(h, vec![1, 1]);
    }
}
