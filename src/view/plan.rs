//! View planning: from a pyramid, a viewport, a cache budget and the view's motion to the
//! pieces the view wants, as a pure function (no cache, no loader, no egui), so every rule
//! of it is unit tested.
//!
//! The view draws from the coarsest level whose pixels are no smaller than a screen pixel
//! and whose visible pieces fit half the cache; the coarsest level goes underneath as a
//! fill-in (the whole image when it is small: the navigator's thumbnail). Pieces nearest the
//! view's centre come first.

use crate::format::Extent;
use crate::pieces::{LevelSource, PieceKey, scale_down, scale_up};
use crate::pyramid::Pyramid;
use crate::view::viewport::Viewport;

/// Largest coarsest level kept whole for the navigator and fill-in.
pub const THUMBNAIL_BYTES: u64 = 16 << 20;

/// Why the view shows placeholders instead of pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewMode {
    /// Pieces are requested and drawn.
    Sharp,
    /// So zoomed out that the visible pieces of every level would overflow the cache (a file
    /// without levels): placeholders only.
    TooFarOut,
}

/// What a view wants.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub mode: ViewMode,
    /// Index of the pyramid level the view is drawn from.
    pub level: usize,
    /// Every piece to paint, in the order to load them: coarse fill-in under the view, the
    /// view's level nearest the centre first, then the rest of the thumbnail.
    pub wanted: Vec<PieceKey>,
    /// The pieces of the level that makes the view sharp.
    pub sharp: Vec<PieceKey>,
    /// Part of the view (full-resolution pixels) whose level is still being built with
    /// nothing to stand in for it: a placeholder, and the view is not sharp.
    pub unbuilt: Option<Extent>,
}

impl Plan {
    /// A plan that wants nothing.
    pub fn nothing(mode: ViewMode) -> Self {
        Self {
            mode,
            level: 0,
            wanted: Vec::new(),
            sharp: Vec::new(),
            unbuilt: None,
        }
    }
}

/// A pyramid with how far each of its levels is written (`ready[i]`: rows of level `i`),
/// answering the geometric questions planning and painting ask.
#[derive(Debug, Clone, Copy)]
pub struct Levels<'a> {
    pub pyramid: &'a Pyramid,
    pub ready: &'a [u32],
}

impl Levels<'_> {
    /// A key's extent in its own source's pixels.
    pub fn key_extent(&self, key: &PieceKey) -> Extent {
        self.pyramid
            .geometry_of(key.source)
            .map_or(Extent::new(0, 0, 0, 0), |g| g.key_extent(key))
    }

    /// A key's extent in full-resolution pixels.
    pub fn image_extent(&self, key: &PieceKey) -> Extent {
        let p = self.pyramid;
        scale_up(
            &self.key_extent(key),
            p.factor_of(key.source),
            p.width,
            p.height,
        )
    }

    /// Decoded bytes of `keys` (as RGBA).
    pub fn bytes_of(&self, keys: &[PieceKey]) -> u64 {
        keys.iter().map(|k| self.key_extent(k).pixels() * 4).sum()
    }

    fn rows_ready(&self, index: usize) -> u32 {
        self.ready.get(index).copied().unwrap_or(u32::MAX)
    }

    /// Keys of level `index` covering `region` (full-resolution pixels). A built level still
    /// being written gives the strips that are done, and its stand-in preview (where there is
    /// one) for the rest.
    pub fn level_keys(&self, index: usize, region: &Extent) -> Vec<PieceKey> {
        let p = self.pyramid;
        let Some(level) = p.get(index) else {
            return Vec::new();
        };
        let r = scale_down(region, level.factor, p.width, p.height);
        let r = Extent::new(r.x0, r.y0, r.x1.min(level.width), r.y1.min(level.height));
        if r.is_empty() {
            return Vec::new();
        }
        let mut keys = level.geometry.keys_on_grid(level.source, &r);
        if let LevelSource::Built(_) = level.source {
            let done = self.rows_ready(index);
            let first_missing = keys
                .iter()
                .map(|k| level.geometry.key_extent(k))
                .filter(|e| e.y1 > done)
                .map(|e| e.y0)
                .min();
            if let Some(y0) = first_missing {
                keys.retain(|k| level.geometry.key_extent(k).y1 <= done);
                if let Some((source, geometry)) = level.stand_in {
                    let rest = Extent::new(r.x0, y0.max(r.y0), r.x1, r.y1);
                    keys.extend(geometry.keys_on_grid(source, &rest));
                }
            }
        }
        keys
    }

    /// Whether level `index` is a built level still being written with no preview to stand
    /// in for its missing rows.
    pub fn has_holes(&self, index: usize) -> bool {
        self.pyramid.get(index).is_some_and(|l| {
            matches!(l.source, LevelSource::Built(_))
                && l.stand_in.is_none()
                && self.rows_ready(index) < l.height
        })
    }

    /// The part of `region` (full-resolution pixels) that level `index` cannot show yet.
    pub fn unbuilt_part(&self, index: usize, region: &Extent) -> Option<Extent> {
        if !self.has_holes(index) {
            return None;
        }
        let l = self.pyramid.get(index)?;
        let grid = l.geometry.grid;
        let done = self.rows_ready(index).min(l.height.saturating_sub(1));
        // Strips land whole: the first unfinished one starts where the view's holes start.
        let (y0, _) = grid.unit_row_span(grid.unit_row_of(done));
        let y = y0.saturating_mul(l.factor).min(self.pyramid.height);
        let e = Extent::new(region.x0, region.y0.max(y), region.x1, region.y1);
        (!e.is_empty()).then_some(e)
    }
}

/// Plan the view: the level, and the pieces to load and paint, nearest the centre first.
/// `motion` is the centre's movement since the last frame (image pixels): the view reaches
/// ahead of it. `budget` is the CPU cache's size in bytes.
pub fn plan(levels: Levels<'_>, view: &Viewport, motion: (f64, f64), budget: u64) -> Plan {
    let p = levels.pyramid;
    let (w, h) = (p.width, p.height);
    let Some(region) = view.prefetch_extent(w, h, motion) else {
        return Plan::nothing(ViewMode::Sharp);
    };
    let ideal = p.for_zoom(view.zoom);
    // A level still being built (with nothing to stand in for it) gives way to a finer level
    // that fits, when there is one.
    let finer: Vec<usize> = if levels.has_holes(ideal) {
        (0..ideal).rev().collect()
    } else {
        Vec::new()
    };
    let chosen = finer
        .into_iter()
        .chain(ideal..p.len())
        .map(|index| (index, levels.level_keys(index, &region)))
        .find(|(_, keys)| levels.bytes_of(keys) <= budget / 2);
    let Some((level, mut keys)) = chosen else {
        return Plan::nothing(ViewMode::TooFarOut);
    };
    let (cx, cy) = (view.center_x, view.center_y);
    let dist = |k: &PieceKey| {
        let e = levels.image_extent(k);
        let mx = (f64::from(e.x0) + f64::from(e.x1)) / 2.0 - cx;
        let my = (f64::from(e.y0) + f64::from(e.y1)) / 2.0 - cy;
        mx * mx + my * my
    };
    keys.sort_by(|a, b| dist(a).total_cmp(&dist(b)));
    let coarsest = p.coarsest();
    // The coarsest level under everything: the whole image when it is small (the navigator's
    // thumbnail, and instant fill-in wherever the view goes), else the view.
    let whole = levels.level_keys(coarsest, &Extent::new(0, 0, w, h));
    let fill = if levels.bytes_of(&whole) <= (budget / 8).min(THUMBNAIL_BYTES) {
        whole
    } else if coarsest != level {
        let k = levels.level_keys(coarsest, &region);
        if levels.bytes_of(&k) <= budget / 8 {
            k
        } else {
            Vec::new()
        }
    } else {
        Vec::new()
    };
    // The view's own keys are already listed when it is drawn from the coarsest level. Fill-in
    // under the view loads first, the rest of the thumbnail after the view.
    let (fill, rest): (Vec<PieceKey>, Vec<PieceKey>) = fill
        .into_iter()
        .filter(|k| !keys.contains(k))
        .partition(|k| levels.image_extent(k).intersect(&region).is_some());
    let wanted = fill
        .into_iter()
        .chain(keys.iter().copied())
        .chain(rest)
        .collect();
    Plan {
        mode: ViewMode::Sharp,
        level,
        wanted,
        sharp: keys,
        unbuilt: levels.unbuilt_part(level, &region),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Grid;
    use crate::pieces::{Geometry, Windows};
    use crate::pyramid::test_level as level;

    const MB: u64 = 1 << 20;

    /// A 16384x16384 image in 256-px tiles with levels 1/2 .. 1/64 of the file.
    fn tiled() -> Pyramid {
        let levels = (0..7)
            .map(|i| level(LevelSource::Page(i), 1 << i, 16384, 16384, 256))
            .collect();
        Pyramid::from_levels(0, 16384, 16384, levels)
    }

    fn all_ready(p: &Pyramid) -> Vec<u32> {
        p.levels().iter().map(|l| l.height).collect()
    }

    fn with_ready<'a>(pyramid: &'a Pyramid, ready: &'a [u32]) -> Levels<'a> {
        Levels { pyramid, ready }
    }

    fn view_at(zoom: f64, cx: f64, cy: f64) -> Viewport {
        screen_at(1000.0, 800.0, zoom, cx, cy)
    }

    fn screen_at(sw: f64, sh: f64, zoom: f64, cx: f64, cy: f64) -> Viewport {
        let mut v = Viewport::new(sw, sh);
        v.zoom = zoom;
        v.center_x = cx;
        v.center_y = cy;
        v
    }

    #[test]
    fn one_to_one_reads_the_image_nearest_the_centre_first() {
        let p = tiled();
        let ready = all_ready(&p);
        let levels = with_ready(&p, &ready);
        let plan = plan(levels, &view_at(1.0, 8000.0, 8000.0), (0.0, 0.0), 512 * MB);
        assert_eq!(plan.mode, ViewMode::Sharp);
        assert_eq!(plan.level, 0);
        // 1000x800 around (8000, 8000): tiles 29..=33 across, 29..=32 down.
        assert_eq!(plan.sharp.len(), 20);
        let first = levels.image_extent(&plan.sharp[0]);
        assert!(first.contains(8000, 8000), "{first:?}");
        let d = |k: &PieceKey| {
            let e = levels.image_extent(k);
            let (x, y) = (f64::from(e.x0 + e.x1) / 2.0, f64::from(e.y0 + e.y1) / 2.0);
            (x - 8000.0).powi(2) + (y - 8000.0).powi(2)
        };
        assert!(plan.sharp.windows(2).all(|w| d(&w[0]) <= d(&w[1])));
        // The coarsest level (256x256: one tile) is the fill-in, loaded first.
        assert_eq!(plan.wanted[0].source, LevelSource::Page(6));
        assert_eq!(plan.wanted.len(), 21);
    }

    #[test]
    fn zoomed_out_views_draw_from_a_coarser_level() {
        let p = tiled();
        let ready = all_ready(&p);
        let levels = with_ready(&p, &ready);
        let fit = 1000.0 / 16384.0;
        let plan = plan(levels, &view_at(fit, 8192.0, 8192.0), (0.0, 0.0), 512 * MB);
        assert_eq!(p.levels()[plan.level].factor, 16);
        assert!(plan.sharp.iter().all(|k| k.source == LevelSource::Page(4)));
        assert_eq!(plan.sharp.len(), 16, "1024x1024 at 1/16: 4 x 4 tiles");
    }

    #[test]
    fn a_small_cache_moves_to_a_coarser_level_and_then_gives_up() {
        let p = tiled();
        let ready = all_ready(&p);
        let levels = with_ready(&p, &ready);
        let v = view_at(1.0, 8000.0, 8000.0);
        // 20 tiles of 256 KB do not fit half of 8 MB: the 1/2 level's do.
        let small = plan(levels, &v, (0.0, 0.0), 8 * MB);
        assert_eq!(small.level, 1);
        // Without levels, nothing fits: placeholders only.
        let alone = Pyramid::from_levels(0, 16384, 16384, vec![p.levels()[0]]);
        let ready = all_ready(&alone);
        let levels = with_ready(&alone, &ready);
        let fit = 1000.0 / 16384.0;
        let far = plan(levels, &view_at(fit, 8192.0, 8192.0), (0.0, 0.0), 64 * MB);
        assert_eq!(far.mode, ViewMode::TooFarOut);
        assert!(far.wanted.is_empty());
    }

    #[test]
    fn motion_reaches_ahead_of_the_view() {
        let p = tiled();
        let ready = all_ready(&p);
        let levels = with_ready(&p, &ready);
        let v = view_at(1.0, 8000.0, 8000.0);
        let still = plan(levels, &v, (0.0, 0.0), 512 * MB);
        let moving = plan(levels, &v, (50.0, 0.0), 512 * MB);
        let right = |pl: &Plan| {
            pl.sharp
                .iter()
                .map(|k| levels.image_extent(k).x1)
                .max()
                .unwrap_or(0)
        };
        assert!(right(&moving) > right(&still));
        assert_eq!(
            still.sharp.iter().map(|k| levels.image_extent(k).x0).min(),
            moving.sharp.iter().map(|k| levels.image_extent(k).x0).min(),
            "nothing is added behind the motion"
        );
    }

    #[test]
    fn a_built_level_being_written_stands_in_a_preview_or_shows_its_holes() {
        let (w, h) = (8192, 8192);
        let built = |stand_in| {
            let mut l = level(LevelSource::Built(0), 8, w, h, 1024);
            l.geometry.grid = Grid::new(1024, 1024, 1024, 64, 1024);
            l.stand_in = stand_in;
            l
        };
        let preview = LevelSource::Preview {
            page: 0,
            step_log2: 3,
        };
        let pg = Geometry {
            grid: Grid::new(1024, 1024, 1024, 1024, 256),
            windows: Windows::Columns {
                width: 512,
                align: 1,
            },
        };
        let base = level(LevelSource::Page(0), 1, w, h, 512);
        let fit = 1000.0 / 8192.0;
        let v = screen_at(1000.0, 1000.0, fit, 4096.0, 4096.0);
        // Written down to row 128 of 1024.
        let ready = [h, 128];
        let with = Pyramid::from_levels(0, w, h, vec![base, built(Some((preview, pg)))]);
        let levels = with_ready(&with, &ready);
        let pl = plan(levels, &v, (0.0, 0.0), 512 * MB);
        assert_eq!(pl.level, 1);
        assert_eq!(pl.unbuilt, None);
        assert_eq!(
            pl.sharp
                .iter()
                .filter(|k| k.source == LevelSource::Built(0))
                .count(),
            2,
            "the two strips written"
        );
        assert!(pl.sharp.iter().any(|k| k.source == preview));
        let without = Pyramid::from_levels(0, w, h, vec![base, built(None)]);
        let levels = with_ready(&without, &ready);
        let pl = plan(levels, &v, (0.0, 0.0), 8192 * MB);
        // The full image fits this (huge) budget: the finer level is drawn instead.
        assert_eq!(pl.level, 0);
        let pl = plan(levels, &v, (0.0, 0.0), 256 * MB);
        assert_eq!(pl.level, 1);
        assert_eq!(
            pl.unbuilt,
            Some(Extent::new(0, 1024, 8192, 8192)),
            "rows 128.. of the 1/8 level"
        );
    }
}
