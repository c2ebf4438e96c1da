//! Exact box filter of every level in one top-to-bottom pass.
//!
//! Level `j` (factor 2^j) is the mean of each 2^j × 2^j block of source pixels, blocks at the
//! right and bottom edges clipped to the image. Rather than averaging averages (which rounds
//! at every level and weighs clipped edge blocks wrongly), each level keeps unrounded sums and
//! passes them down; a level row is divided once, by the number of source pixels it covers.
//! Memory is one row of sums per level, whatever the image height.

/// Accumulates the sums of one level's current row.
struct Acc {
    factor: u64,
    width: usize,
    height: u32,
    sums: Vec<u64>,
    rows_in: u32,
    y: u32,
}

/// Level-1 sums of a band of source rows, made on a producer thread: one row of sums per
/// pair of source rows (`counts` says how many of the pair's rows the band held; a pair cut
/// by a band boundary arrives in two halves).
#[derive(Debug, Default)]
pub struct PairSums {
    /// Level-1 row of the first entry.
    pub y: u32,
    pub counts: Vec<u8>,
    pub sums: Vec<u32>,
}

/// How a band's pixels are stored, for [`pair_sums`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelLayout {
    /// Bytes per pixel: 1 (gray), 3 (RGB/BGR), 4 (RGBA, RGBX, BGRA; and decoded RGBA).
    pub bpp: usize,
    /// Blue first (BMP): swapped to RGB.
    pub bgr: bool,
    /// Rows stored bottom-up (BMP): row 0 of the buffer is the band's last row.
    pub bottom_up: bool,
}

impl PixelLayout {
    /// Decoded RGBA rows, top-down.
    pub const RGBA: Self = Self {
        bpp: 4,
        bgr: false,
        bottom_up: false,
    };
}

/// Reduce `rows` rows of a `w`-pixel band starting at source row `y0` to level-1 sums of the
/// first `spp` samples of each pixel.
pub fn pair_sums(
    px: &[u8],
    layout: PixelLayout,
    w: u32,
    y0: u32,
    rows: u32,
    spp: usize,
) -> PairSums {
    let w = w as usize;
    let w1 = w.div_ceil(2);
    let row_len = w * layout.bpp;
    let mut out = PairSums {
        y: y0 / 2,
        counts: Vec::new(),
        sums: Vec::with_capacity((rows as usize / 2 + 2) * w1 * spp),
    };
    let row = |y: u32| {
        let i = (y - y0) as usize;
        let i = if layout.bottom_up {
            rows as usize - 1 - i
        } else {
            i
        };
        &px[i * row_len..(i + 1) * row_len]
    };
    let mut vertical = vec![0u16; row_len];
    let mut y = y0;
    let end = y0 + rows;
    while y < end {
        // This pair's rows inside the band: [y, pair_end).
        let pair_end = ((y / 2) * 2 + 2).min(end);
        if pair_end - y == 2 {
            for ((v, &a), &b) in vertical.iter_mut().zip(row(y)).zip(row(y + 1)) {
                *v = u16::from(a) + u16::from(b);
            }
        } else {
            for (v, &a) in vertical.iter_mut().zip(row(y)) {
                *v = u16::from(a);
            }
        }
        let at = out.sums.len();
        out.sums.resize(at + w1 * spp, 0);
        let dst = &mut out.sums[at..];
        match (layout.bpp, spp) {
            (1, _) => add_pairs::<1, 1>(dst, &vertical),
            (3, _) => add_pairs::<3, 3>(dst, &vertical),
            (4, 1) => add_pairs::<4, 1>(dst, &vertical),
            (4, 3) => add_pairs::<4, 3>(dst, &vertical),
            _ => add_pairs::<4, 4>(dst, &vertical),
        }
        if layout.bgr && spp >= 3 {
            for p in dst.chunks_exact_mut(spp) {
                p.swap(0, 2);
            }
        }
        out.counts.push((pair_end - y) as u8);
        y = pair_end;
    }
    out
}

/// Horizontal pairs of a row of vertical sums: pixels `BPP` samples apart, the first `SPP`
/// kept.
fn add_pairs<const BPP: usize, const SPP: usize>(sums: &mut [u32], vertical: &[u16]) {
    let pairs = vertical.len() / (2 * BPP);
    for (o, px) in sums
        .chunks_exact_mut(SPP)
        .zip(vertical.chunks_exact(2 * BPP))
    {
        for c in 0..SPP {
            o[c] = u32::from(px[c]) + u32::from(px[BPP + c]);
        }
    }
    if !vertical.len().is_multiple_of(2 * BPP) {
        let px = &vertical[pairs * 2 * BPP..];
        let o = &mut sums[pairs * SPP..(pairs + 1) * SPP];
        for c in 0..SPP {
            o[c] = u32::from(px[c]);
        }
    }
}

/// All levels of one image, fed with source rows (or their level-1 sums) top to bottom.
pub struct Pyramid {
    spp: usize,
    src_w: u32,
    src_h: u32,
    /// Level-1 row being completed from halves, and how many source rows it holds.
    first: Vec<u32>,
    first_rows: u32,
    /// Source rows taken so far.
    src_rows: u32,
    levels: Vec<Acc>,
    out: Vec<u8>,
    /// The row of sums just finished, on its way to the next level.
    carry: Vec<u64>,
}

impl Pyramid {
    /// Levels 1..=`count` (factors 2..2^count) of a `w`×`h` image with `spp` samples (1, 3 or
    /// 4) taken from each RGBA pixel.
    pub fn new(w: u32, h: u32, spp: usize, count: u32) -> Self {
        let levels = (1..=count)
            .map(|j| {
                let f = 1u64 << j;
                let width = u64::from(w).div_ceil(f) as usize;
                Acc {
                    factor: f,
                    width,
                    height: u64::from(h).div_ceil(f) as u32,
                    sums: vec![0; width * spp],
                    rows_in: 0,
                    y: 0,
                }
            })
            .collect::<Vec<_>>();
        let first_len = levels.first().map_or(0, |l| l.width * spp);
        Self {
            spp,
            src_w: w,
            src_h: h,
            first: vec![0; first_len],
            first_rows: 0,
            src_rows: 0,
            levels,
            out: Vec::new(),
            carry: Vec::new(),
        }
    }

    /// Source rows taken so far.
    pub fn rows_in(&self) -> u32 {
        self.src_rows
    }

    /// Add the next source row (`w` RGBA pixels); see [`Pyramid::push_pairs`].
    pub fn push_row(&mut self, rgba: &[u8], emit: &mut dyn FnMut(usize, u32, &[u8])) {
        let sums = pair_sums(
            rgba,
            PixelLayout::RGBA,
            self.src_w,
            self.src_rows,
            1,
            self.spp,
        );
        self.push_pairs(&sums, emit);
    }

    /// Add the level-1 sums of the next band. `emit(level, y, row)` receives each level row
    /// as soon as it is complete; `level` counts from 0 for factor 2.
    pub fn push_pairs(&mut self, pairs: &PairSums, emit: &mut dyn FnMut(usize, u32, &[u8])) {
        let Some(width) = self.levels.first().map(|l| l.width * self.spp) else {
            return;
        };
        for (i, &count) in pairs.counts.iter().enumerate() {
            let row = &pairs.sums[i * width..(i + 1) * width];
            let y1 = pairs.y + i as u32;
            self.src_rows += u32::from(count);
            let want = (self.src_h - y1 * 2).min(2);
            if self.first_rows == 0 && u32::from(count) >= want {
                // A whole pair (the usual case): no need to copy it.
                self.finish_first(row, want, emit);
                continue;
            }
            if self.first_rows == 0 {
                self.first.copy_from_slice(row);
            } else {
                for (a, &b) in self.first.iter_mut().zip(row) {
                    *a += b;
                }
            }
            self.first_rows += u32::from(count);
            if self.first_rows >= want {
                let first = std::mem::take(&mut self.first);
                let rows = self.first_rows;
                self.finish_first(&first, rows, emit);
                self.first = first;
                self.first_rows = 0;
            }
        }
    }

    fn finish_first(&mut self, row: &[u32], rows: u32, emit: &mut dyn FnMut(usize, u32, &[u8])) {
        let (spp, src_w, src_h) = (self.spp, self.src_w, self.src_h);
        let y = self.levels[0].y;
        divide_u32(row, spp, src_w, 2, rows, &mut self.out);
        emit(0, y, &self.out);
        self.levels[0].y += 1;
        if self.levels.len() == 1 {
            return;
        }
        self.carry.clear();
        self.carry.extend(row.iter().map(|&v| u64::from(v)));
        // Cascade: each finished row is one of the two rows the next level waits for.
        for i in 1..self.levels.len() {
            let below_done = self.levels[i - 1].y == self.levels[i - 1].height;
            let l = &mut self.levels[i];
            add_sum_pairs(&mut l.sums, &self.carry, spp);
            l.rows_in += 1;
            if l.rows_in < 2 && !below_done {
                break;
            }
            let rows = (u64::from(src_h) - u64::from(l.y) * l.factor).min(l.factor) as u32;
            divide_u64(&l.sums, spp, src_w, l.factor, rows, &mut self.out);
            emit(i, l.y, &self.out);
            l.y += 1;
            l.rows_in = 0;
            self.carry.clear();
            self.carry.extend_from_slice(&l.sums);
            l.sums.fill(0);
        }
    }
}

/// Add horizontal pairs of a row of sums from the level below.
fn add_sum_pairs(sums: &mut [u64], below: &[u64], spp: usize) {
    match spp {
        1 => add_sum_pairs_n::<1>(sums, below),
        3 => add_sum_pairs_n::<3>(sums, below),
        _ => add_sum_pairs_n::<4>(sums, below),
    }
}

fn add_sum_pairs_n<const S: usize>(sums: &mut [u64], below: &[u64]) {
    let pairs = below.len() / (2 * S);
    for (o, b) in sums.chunks_exact_mut(S).zip(below.chunks_exact(2 * S)) {
        for c in 0..S {
            o[c] += b[c] + b[S + c];
        }
    }
    if !below.len().is_multiple_of(2 * S) {
        let (o, b) = (
            &mut sums[pairs * S..(pairs + 1) * S],
            &below[pairs * 2 * S..],
        );
        for c in 0..S {
            o[c] += b[c];
        }
    }
}

/// Divide a row of sums by the number of source pixels each covers: `factor` columns (fewer
/// in the last pixel when the width is not a multiple) times `rows`. A straight loop over
/// the samples, shift when the count is a power of two, so it vectorises.
macro_rules! divide_fn {
    ($name:ident, $t:ty) => {
        fn $name(sums: &[$t], spp: usize, src_w: u32, factor: u64, rows: u32, out: &mut Vec<u8>) {
            out.clear();
            out.resize(sums.len(), 0);
            let n = sums.len() / spp;
            if n == 0 {
                return;
            }
            let last_cols = u64::from(src_w) - (n as u64 - 1) * factor;
            let body = if last_cols == factor { n } else { n - 1 } * spp;
            let full = u64::from(rows) * factor;
            if full.is_power_of_two() {
                let sh = full.trailing_zeros();
                let half = (full >> 1) as $t;
                for (o, &v) in out[..body].iter_mut().zip(&sums[..body]) {
                    *o = ((v + half) >> sh) as u8;
                }
            } else {
                let d = full as $t;
                for (o, &v) in out[..body].iter_mut().zip(&sums[..body]) {
                    *o = ((v + d / 2) / d) as u8;
                }
            }
            if body < sums.len() {
                let count = (last_cols * u64::from(rows)) as $t;
                for (o, &v) in out[body..].iter_mut().zip(&sums[body..]) {
                    *o = ((v + count / 2) / count) as u8;
                }
            }
        }
    };
}
divide_fn!(divide_u32, u32);
divide_fn!(divide_u64, u64);

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward mean of each block, straight from the definition.
    fn reference(img: &[u8], w: u32, h: u32, f: u32, spp: usize) -> Vec<u8> {
        let (lw, lh) = (w.div_ceil(f), h.div_ceil(f));
        let mut out = Vec::new();
        for y in 0..lh {
            for x in 0..lw {
                for c in 0..spp {
                    let (mut sum, mut n) = (0u64, 0u64);
                    for yy in y * f..((y + 1) * f).min(h) {
                        for xx in x * f..((x + 1) * f).min(w) {
                            sum += u64::from(img[((yy * w + xx) * 4) as usize + c]);
                            n += 1;
                        }
                    }
                    out.push(((sum + n / 2) / n) as u8);
                }
            }
        }
        out
    }

    #[test]
    fn every_level_is_the_exact_block_mean() {
        for (w, h, spp) in [(37u32, 23u32, 3usize), (64, 64, 4), (33, 70, 1), (1, 9, 3)] {
            let img: Vec<u8> = (0..w * h * 4)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            let count = 5;
            let mut p = Pyramid::new(w, h, spp, count);
            let mut got: Vec<Vec<u8>> = vec![Vec::new(); count as usize];
            let mut next_y = vec![0u32; count as usize];
            for row in img.chunks_exact(w as usize * 4) {
                p.push_row(row, &mut |l, y, r| {
                    assert_eq!(y, next_y[l], "rows arrive in order");
                    next_y[l] += 1;
                    got[l].extend_from_slice(r);
                });
            }
            for j in 0..count {
                let f = 2u32 << j;
                assert_eq!(
                    got[j as usize],
                    reference(&img, w, h, f, spp),
                    "{w}x{h} spp {spp} factor {f}"
                );
            }
            // The same through bands cut at odd rows, as producer threads hand them over.
            let mut p = Pyramid::new(w, h, spp, count);
            let mut banded: Vec<Vec<u8>> = vec![Vec::new(); count as usize];
            let row_len = w as usize * 4;
            let mut y0 = 0u32;
            for band in [3u32, 1, 4, 7].iter().cycle() {
                if y0 >= h {
                    break;
                }
                let rows = (*band).min(h - y0);
                let px = &img[y0 as usize * row_len..(y0 + rows) as usize * row_len];
                let pairs = pair_sums(px, PixelLayout::RGBA, w, y0, rows, spp);
                p.push_pairs(&pairs, &mut |l, _, r| banded[l].extend_from_slice(r));
                y0 += rows;
            }
            assert_eq!(banded, got, "{w}x{h} spp {spp} banded");
        }
    }
}
