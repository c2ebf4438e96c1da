//! The one model of resolution levels: the ordered levels of a page of an open image, whatever
//! their source, each with its factor and how its pieces are cut.
//!
//! Sources, finest first at each factor: a page of the file (the image itself at factor 1, or
//! a reduced-resolution page, as `vips tiffsave --pyramid` and `gdaladdo` write), a level
//! Tessera built into a sidecar (see `levels`), and a subsampled preview of a raw page (every
//! k-th row and pixel) that stands in where neither exists. The viewer's planning, `render`,
//! `info` and the level builder all ask this type; nothing else decides which level serves
//! a view.

use crate::format::Page;
use crate::image::OpenImage;
use crate::pieces::{Geometry, LevelSource};

/// Previews go down to about this many pixels on the longer side.
const PREVIEW_MIN_SIDE: u32 = 128;

/// One resolution level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Full-resolution pixels per level pixel (1, 2, 4, ...).
    pub factor: u32,
    pub source: LevelSource,
    /// Size in the level's own pixels.
    pub width: u32,
    pub height: u32,
    pub geometry: Geometry,
    /// For a built level: the preview of the same factor that stands in for rows not written
    /// yet (raw pages only).
    pub stand_in: Option<(LevelSource, Geometry)>,
}

impl Level {
    /// Whether the level's pixels are a box filter of the image (or the image itself): file
    /// pages and built levels are, previews are not.
    pub fn is_filtered(&self) -> bool {
        self.source.has_descriptors()
    }
}

/// The levels of one page, finest (the page itself) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pyramid {
    pub page: u32,
    /// Full-resolution size.
    pub width: u32,
    pub height: u32,
    levels: Vec<Level>,
}

impl Pyramid {
    /// The levels of `page` of `image`: the file's own reduced pages, then (for page 0) the
    /// levels built for it, then previews of a raw page down to a few hundred pixels where the
    /// file has no levels (with built levels, only below the coarsest of them). `None` when
    /// the page does not exist.
    pub fn of(image: &OpenImage, page: u32) -> Option<Self> {
        let base = image.layout.pages.get(page as usize)?;
        let mut levels: Vec<Level> = image
            .layout
            .reductions(page as usize)
            .into_iter()
            .filter_map(|(p, factor)| {
                let pg = image.layout.pages.get(p)?;
                Some(page_level(LevelSource::Page(p as u32), factor, pg))
            })
            .collect();
        let previews = levels.len() == 1 && crate::decode::subsample::supported(base);
        let preview = |factor: u32| {
            let source = LevelSource::Preview {
                page,
                step_log2: factor.trailing_zeros() as u8,
            };
            (source, Geometry::preview(base, factor))
        };
        let built = image.built_levels().filter(|_| page == 0);
        if let Some(built) = built {
            for (i, l) in built.plan.levels.iter().enumerate() {
                let Some(p) = built.image.layout.pages.get(i) else {
                    continue;
                };
                if !levels.iter().any(|v| v.factor == l.factor) {
                    let mut level = page_level(LevelSource::Built(i as u32), l.factor, p);
                    level.stand_in = previews.then(|| preview(l.factor));
                    levels.push(level);
                }
            }
        }
        if previews {
            let limit = built
                .and_then(|b| b.plan.levels.last())
                .map_or(1 << 20, |l| l.factor);
            let mut k = 2u32;
            while base.width.max(base.height) / k >= PREVIEW_MIN_SIDE && k <= limit {
                if !levels.iter().any(|v| v.factor == k) {
                    let (source, geometry) = preview(k);
                    levels.push(Level {
                        factor: k,
                        source,
                        width: geometry.grid.width,
                        height: geometry.grid.height,
                        geometry,
                        stand_in: None,
                    });
                }
                k *= 2;
            }
        }
        levels.sort_by_key(|l| l.factor);
        Some(Self {
            page,
            width: base.width,
            height: base.height,
            levels,
        })
    }

    /// A pyramid of the given levels (finest first), for planning tests.
    pub fn from_levels(page: u32, width: u32, height: u32, mut levels: Vec<Level>) -> Self {
        levels.sort_by_key(|l| l.factor);
        Self {
            page,
            width,
            height,
            levels,
        }
    }

    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Level> {
        self.levels.get(index)
    }

    /// Index of the coarsest level.
    pub fn coarsest(&self) -> usize {
        self.levels.len().saturating_sub(1)
    }

    /// The levels that are pages of the file, as (page, factor), the page itself first.
    pub fn file_levels(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.levels.iter().filter_map(|l| match l.source {
            LevelSource::Page(p) => Some((p, l.factor)),
            _ => None,
        })
    }

    /// Levels other than the page itself (file pages and built levels, no previews).
    pub fn filtered_levels(&self) -> impl Iterator<Item = &Level> {
        self.levels.iter().filter(|l| l.is_filtered())
    }

    /// The level a piece source belongs to (a stand-in preview belongs to its built level).
    pub fn index_of(&self, source: LevelSource) -> Option<usize> {
        self.levels
            .iter()
            .position(|l| l.source == source || l.stand_in.is_some_and(|(s, _)| s == source))
    }

    /// Full-resolution pixels per pixel of a piece source.
    pub fn factor_of(&self, source: LevelSource) -> u32 {
        self.index_of(source)
            .and_then(|i| self.levels.get(i))
            .map_or(1, |l| l.factor)
    }

    /// How the pieces of a source are cut.
    pub fn geometry_of(&self, source: LevelSource) -> Option<Geometry> {
        let l = self.levels.get(self.index_of(source)?)?;
        Some(match l.stand_in {
            Some((s, g)) if s == source => g,
            _ => l.geometry,
        })
    }

    /// The level a view at `zoom` (screen pixels per image pixel) draws from: the coarsest
    /// whose pixels are no smaller than a screen pixel.
    pub fn for_zoom(&self, zoom: f64) -> usize {
        self.levels
            .iter()
            .rposition(|l| f64::from(l.factor) <= 1.0 / zoom)
            .unwrap_or(0)
    }

    /// The level a render shrunk by `scale` reads: the coarsest whose factor is at most
    /// `scale` and whose rows are all there (`ready[i]`: rows written of level `i`). Previews
    /// (every k-th pixel, not a box filter) only when `previews`.
    pub fn for_scale(&self, scale: u32, ready: &[u32], previews: bool) -> usize {
        self.levels
            .iter()
            .enumerate()
            .rposition(|(i, l)| {
                l.factor <= scale.max(1)
                    && (previews || l.is_filtered())
                    && ready.get(i).is_none_or(|&r| r >= l.height)
            })
            .unwrap_or(0)
    }

    /// Rows written so far of each level: all of them, but for a built level still being
    /// written.
    pub fn ready_rows(&self, image: &OpenImage) -> Vec<u32> {
        self.levels
            .iter()
            .map(|l| match (l.source, image.built_levels()) {
                (LevelSource::Built(i), Some(b)) => b.status.rows_done(i as usize).min(l.height),
                (LevelSource::Built(_), None) => 0,
                _ => l.height,
            })
            .collect()
    }
}

fn page_level(source: LevelSource, factor: u32, page: &Page) -> Level {
    Level {
        factor,
        source,
        width: page.width,
        height: page.height,
        geometry: Geometry::of_page(page),
        stand_in: None,
    }
}

/// A level of an image `w` x `h` with factor `f`, read from `source` in `tile`-px tiles
/// decoded whole (for planning tests).
#[cfg(test)]
pub(crate) fn test_level(source: LevelSource, f: u32, w: u32, h: u32, tile: u32) -> Level {
    let (lw, lh) = (w.div_ceil(f), h.div_ceil(f));
    Level {
        factor: f,
        source,
        width: lw,
        height: lh,
        geometry: Geometry {
            grid: crate::format::Grid::new(lw, lh, tile, tile, 1024),
            windows: crate::pieces::Windows::Whole,
        },
        stand_in: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Grid;
    use crate::pieces::Windows;

    fn level(source: LevelSource, f: u32, w: u32, h: u32) -> Level {
        test_level(source, f, w, h, 256)
    }

    fn tiff_pyramid() -> Pyramid {
        // As `vips tiffsave --pyramid` writes a 24000x24000 image: 1, 2, 4, ... 128.
        let levels = (0..8)
            .map(|i| level(LevelSource::Page(i), 1 << i, 24000, 24000))
            .collect();
        Pyramid::from_levels(0, 24000, 24000, levels)
    }

    #[test]
    fn a_render_reads_the_coarsest_level_at_most_its_scale() {
        let p = tiff_pyramid();
        let ready: Vec<u32> = p.levels().iter().map(|l| l.height).collect();
        let factor = |scale| p.levels()[p.for_scale(scale, &ready, false)].factor;
        assert_eq!(factor(1), 1);
        assert_eq!(factor(16), 16);
        assert_eq!(factor(23), 16, "not only factors that divide the scale");
        assert_eq!(factor(40), 32);
        assert_eq!(factor(3), 2);
        assert_eq!(factor(1000), 128);
    }

    #[test]
    fn unfinished_built_levels_and_previews_are_passed_over_by_renders() {
        let levels = vec![
            level(LevelSource::Page(0), 1, 4000, 4000),
            level(LevelSource::Built(0), 2, 4000, 4000),
            level(LevelSource::Built(1), 4, 4000, 4000),
            level(
                LevelSource::Preview {
                    page: 0,
                    step_log2: 3,
                },
                8,
                4000,
                4000,
            ),
        ];
        let p = Pyramid::from_levels(0, 4000, 4000, levels);
        let mut ready: Vec<u32> = p.levels().iter().map(|l| l.height).collect();
        assert_eq!(
            p.for_scale(8, &ready, false),
            2,
            "the preview is no box filter"
        );
        assert_eq!(p.for_scale(8, &ready, true), 3, "--fast takes the preview");
        ready[2] = 10;
        assert_eq!(
            p.for_scale(8, &ready, false),
            1,
            "1/4 is still being written"
        );
    }

    #[test]
    fn views_draw_from_the_coarsest_level_no_sharper_than_the_screen() {
        let p = tiff_pyramid();
        assert_eq!(p.for_zoom(1.0), 0);
        assert_eq!(p.for_zoom(2.0), 0, "magnified: the image itself");
        assert_eq!(p.for_zoom(0.3), 1, "1/3.3: the 1/2 level");
        assert_eq!(p.for_zoom(0.25), 2);
        assert_eq!(p.for_zoom(0.0001), 7);
    }

    #[test]
    fn stand_in_previews_belong_to_their_built_level() {
        let preview = LevelSource::Preview {
            page: 0,
            step_log2: 1,
        };
        let mut built = level(LevelSource::Built(0), 2, 1000, 1000);
        let g = Geometry {
            grid: Grid::new(500, 500, 500, 500, 256),
            windows: Windows::Columns {
                width: 512,
                align: 1,
            },
        };
        built.stand_in = Some((preview, g));
        let p = Pyramid::from_levels(
            0,
            1000,
            1000,
            vec![level(LevelSource::Page(0), 1, 1000, 1000), built],
        );
        assert_eq!(p.index_of(preview), Some(1));
        assert_eq!(p.factor_of(preview), 2);
        assert_eq!(p.geometry_of(preview), Some(g));
        assert_eq!(p.factor_of(LevelSource::Built(0)), 2);
        assert_eq!(p.index_of(LevelSource::Built(5)), None);
    }
}
