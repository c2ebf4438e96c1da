//! The box filter of data pages: levels as 32-bit floats, each pixel the mean of the valid
//! samples of its block. No-data (NaN, the file's no-data value) is skipped, so a hole does not
//! darken its neighbours; a block with no valid sample is NaN (no-data) itself.
//!
//! Each level keeps (sum, count) per sample of the row it is filling; a finished row is emitted
//! as floats and its sums and counts are added, in horizontal pairs, into the next level's row,
//! so every level is the exact mean of its block of source pixels.

/// One level's row being filled.
struct Acc {
    width: usize,
    height: u32,
    sums: Vec<f64>,
    counts: Vec<u32>,
    /// Rows of the level below (source rows for level 0) added so far.
    rows_in: u32,
    y: u32,
}

/// All float levels of one page, fed with source rows top to bottom.
pub struct FloatPyramid {
    spp: usize,
    src_h: u32,
    src_rows: u32,
    levels: Vec<Acc>,
    out: Vec<f32>,
}

impl FloatPyramid {
    /// Levels for factors 2..2^`count` of a `w`×`h` page with `spp` samples a pixel.
    pub fn new(w: u32, h: u32, spp: usize, count: u32) -> Self {
        let levels = (1..=count)
            .map(|j| {
                let f = 1u64 << j;
                let width = u64::from(w).div_ceil(f) as usize;
                Acc {
                    width,
                    height: u64::from(h).div_ceil(f) as u32,
                    sums: vec![0.0; width * spp],
                    counts: vec![0; width * spp],
                    rows_in: 0,
                    y: 0,
                }
            })
            .collect();
        Self {
            spp,
            src_h: h,
            src_rows: 0,
            levels,
            out: Vec::new(),
        }
    }

    pub fn rows_in(&self) -> u32 {
        self.src_rows
    }

    /// Add the next source row: `spp` values a pixel, `None` for no-data.
    /// `emit(level, y, row)` gets each level row as soon as it is complete.
    pub fn push_row(
        &mut self,
        row: impl Iterator<Item = Option<f64>>,
        emit: &mut dyn FnMut(usize, u32, &[f32]),
    ) {
        let spp = self.spp;
        let Some(l0) = self.levels.first_mut() else {
            self.src_rows += 1;
            return;
        };
        for (i, v) in row.enumerate() {
            if let Some(v) = v {
                let (x, c) = (i / spp, i % spp);
                let j = (x / 2) * spp + c;
                if let (Some(s), Some(n)) = (l0.sums.get_mut(j), l0.counts.get_mut(j)) {
                    *s += v;
                    *n += 1;
                }
            }
        }
        self.src_rows += 1;
        l0.rows_in += 1;
        let last = self.src_rows == self.src_h;
        if l0.rows_in == 2 || last {
            self.finish(0, emit);
        }
    }

    /// Level `i`'s row is complete: emit it and carry it up.
    fn finish(&mut self, i: usize, emit: &mut dyn FnMut(usize, u32, &[f32])) {
        let spp = self.spp;
        let l = &mut self.levels[i];
        self.out.clear();
        self.out
            .extend(l.sums.iter().zip(&l.counts).map(|(&s, &n)| {
                if n == 0 {
                    f32::NAN
                } else {
                    (s / f64::from(n)) as f32
                }
            }));
        emit(i, l.y, &self.out);
        l.y += 1;
        l.rows_in = 0;
        let done = l.y == l.height;
        if i + 1 < self.levels.len() {
            let (lower, upper) = self.levels.split_at_mut(i + 1);
            let (below, up) = (&mut lower[i], &mut upper[0]);
            for x in 0..below.width {
                for c in 0..spp {
                    let (from, to) = (x * spp + c, (x / 2) * spp + c);
                    up.sums[to] += below.sums[from];
                    up.counts[to] += below.counts[from];
                }
            }
            up.rows_in += 1;
            if up.rows_in == 2 || done {
                below.sums.fill(0.0);
                below.counts.fill(0);
                self.finish(i + 1, emit);
                return;
            }
        }
        let l = &mut self.levels[i];
        l.sums.fill(0.0);
        l.counts.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_block_means_that_skip_no_data() {
        let (w, h) = (7u32, 5u32);
        let v = |x: u32, y: u32| -> Option<f64> {
            if (x, y) == (1, 1) || (x >= 4 && y >= 4) {
                None
            } else {
                Some(f64::from(x * 10 + y))
            }
        };
        let mut p = FloatPyramid::new(w, h, 1, 2);
        let mut rows: Vec<Vec<Vec<f32>>> = vec![Vec::new(), Vec::new()];
        for y in 0..h {
            p.push_row((0..w).map(|x| v(x, y)), &mut |l, ly, r| {
                assert_eq!(ly as usize, rows[l].len());
                rows[l].push(r.to_vec());
            });
        }
        assert_eq!(p.rows_in(), h);
        for (l, f) in [(0usize, 2u32), (1, 4)] {
            assert_eq!(rows[l].len() as u32, h.div_ceil(f));
            for (ly, row) in rows[l].iter().enumerate() {
                assert_eq!(row.len() as u32, w.div_ceil(f));
                for (lx, &got) in row.iter().enumerate() {
                    let (mut s, mut n) = (0.0, 0);
                    for y in ly as u32 * f..((ly as u32 + 1) * f).min(h) {
                        for x in lx as u32 * f..((lx as u32 + 1) * f).min(w) {
                            if let Some(a) = v(x, y) {
                                s += a;
                                n += 1;
                            }
                        }
                    }
                    if n == 0 {
                        assert!(got.is_nan(), "level {l} ({lx},{ly})");
                    } else {
                        assert!(
                            (f64::from(got) - s / f64::from(n)).abs() < 1e-4,
                            "level {l} ({lx},{ly}): {got}"
                        );
                    }
                }
            }
        }
    }
}
