//! What the caches hold and how units are cut into it: a *piece* is one unit of a level's
//! source (a strip, tile or row band), or a column window of one. Its [`PieceKey`] names the
//! source and the unit, never a position in a list the view rebuilds, so the CPU cache, the
//! GPU cache and the loader's band locks can all use it as identity.
//!
//! The column windows are cache policy: wide enough to keep texture counts low, narrow enough
//! not to read (or keep) far beyond the view. Every place that cuts a unit into pieces asks
//! [`Geometry`]; every place that moves an extent between levels uses [`scale_up`] and
//! [`scale_down`].

use crate::format::{Extent, Grid, Page, Storage};

/// Width of the column windows a raw band is read in (a multiple of 8 so 1-bit rows stay
/// byte-aligned): wide enough to keep texture counts low, narrow enough not to read far
/// beyond the view.
pub const COLUMN_CHUNK: u32 = 512;
/// Column windows of a decoded stream band (PNG, JPEG): a band is decoded whole, then cached
/// and uploaded as windows this wide, so only the columns in view take cache and GPU memory.
pub const STREAM_COLUMN_CHUNK: u32 = 2048;
/// Level rows per subsampled-preview piece.
pub const PREVIEW_ROWS: u32 = 256;

/// Where a level's pixels are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LevelSource {
    /// A page of the file: the image itself, or a reduced-resolution page.
    Page(u32),
    /// A page of the levels Tessera built (the sidecar attached to the image).
    Built(u32),
    /// Every 2^`step_log2`-th row and pixel of a raw page of the file, read on demand.
    Preview { page: u32, step_log2: u8 },
}

impl LevelSource {
    /// Whether the source's units are tile descriptors of a file (previews are not: they
    /// carry no descriptor state).
    pub fn has_descriptors(self) -> bool {
        !matches!(self, LevelSource::Preview { .. })
    }

    /// In words, for `--stats` and the panel: "file page 3", "built level 2", "preview 1/8".
    pub fn describe(self) -> String {
        match self {
            LevelSource::Page(p) => format!("file page {p}"),
            LevelSource::Built(i) => format!("built level {i}"),
            LevelSource::Preview { page, step_log2 } => {
                format!(
                    "preview of page {page}, every {} rows",
                    1u32 << step_log2.min(30)
                )
            }
        }
    }

    /// The row and column step of a preview (1 for every other source).
    pub fn preview_step(self) -> u32 {
        match self {
            LevelSource::Preview { step_log2, .. } => 1 << step_log2.min(30),
            _ => 1,
        }
    }
}

/// Identifies one decoded piece: the source, the unit on that source's grid, and the column
/// window `x0..x1` (in the source's pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PieceKey {
    pub source: LevelSource,
    pub unit: u64,
    pub x0: u32,
    pub x1: u32,
}

impl PieceKey {
    /// Columns `x0..x1` of unit `unit` of page `page` of the file.
    pub fn page(page: u32, unit: u64, x0: u32, x1: u32) -> Self {
        Self {
            source: LevelSource::Page(page),
            unit,
            x0,
            x1,
        }
    }
}

/// How a source's units are cut into pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// Whole units: compressed chunks and indexed bands decode as a whole.
    Whole,
    /// Raw units, read for just the columns asked (rounded out to `align` pixels so sub-byte
    /// rows stay byte-aligned); the viewer asks on a fixed grid of `width`-wide windows so
    /// that panning reuses cached pieces.
    Columns { width: u32, align: u32 },
    /// Decoded whole (stream bands), then cut into fixed `width`-wide windows.
    Cut { width: u32 },
}

/// A source's unit grid and the way its units are cut into pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub grid: Grid,
    pub windows: Windows,
}

impl Geometry {
    /// The pieces of a page of a file (or of the built levels).
    pub fn of_page(page: &Page) -> Self {
        let windows = match &page.storage {
            Storage::Stream { .. } => Windows::Cut {
                width: STREAM_COLUMN_CHUNK,
            },
            // JPEG 2000 decodes an area of a tile: a view decodes just the columns it needs.
            Storage::J2k { stream, .. } => Windows::Columns {
                width: stream.piece_side(),
                align: 1,
            },
            _ if page.column_readable() => Windows::Columns {
                width: COLUMN_CHUNK,
                align: if page.raw.bits_per_pixel().is_multiple_of(8) {
                    1
                } else {
                    8
                },
            },
            _ => Windows::Whole,
        };
        Self {
            grid: page.grid,
            windows,
        }
    }

    /// The pieces of a subsampled preview of `page` with step `k`: a level-sized grid in
    /// bands of [`PREVIEW_ROWS`] rows, read in column windows.
    pub fn preview(page: &Page, k: u32) -> Self {
        let k = k.max(1);
        let (w, h) = (page.width.div_ceil(k), page.height.div_ceil(k));
        Self {
            grid: Grid::new(w, h, w, h, PREVIEW_ROWS),
            windows: Windows::Columns {
                width: COLUMN_CHUNK,
                align: 1,
            },
        }
    }

    /// The columns of the piece of `unit` that holds the columns `x0..x1` asked for: the
    /// window holding `x0` for a cut stream band, `x0..x1` (aligned, clipped to the unit)
    /// for a raw unit, the whole unit otherwise.
    pub fn piece_columns(&self, unit: u64, x0: u32, x1: u32) -> (u32, u32) {
        let full = self.grid.unit_extent(unit);
        match self.windows {
            Windows::Whole => (full.x0, full.x1),
            Windows::Cut { width } => {
                let c = x0.max(full.x0).min(full.x1.saturating_sub(1)) / width;
                ((c * width).max(full.x0), ((c + 1) * width).min(full.x1))
            }
            Windows::Columns { align, .. } => {
                let (a, b) = (x0.max(full.x0), x1.min(full.x1));
                if a >= b {
                    return (full.x0, full.x1);
                }
                let align = align.max(1);
                let a = full.x0 + (a - full.x0) / align * align;
                let b = (full.x0 + (b - full.x0).div_ceil(align) * align).min(full.x1);
                (a, b)
            }
        }
    }

    /// The extent of the key's piece, in the source's pixels.
    pub fn key_extent(&self, key: &PieceKey) -> Extent {
        let full = self.grid.unit_extent(key.unit);
        Extent::new(key.x0, full.y0, key.x1, full.y1)
    }

    /// Keys covering `region` (source pixels), each unit cut on its fixed window grid so that
    /// views that overlap share pieces (the viewer).
    pub fn keys_on_grid(&self, source: LevelSource, region: &Extent) -> Vec<PieceKey> {
        let mut keys = Vec::new();
        for unit in self.grid.units_in(region) {
            let full = self.grid.unit_extent(unit);
            let width = match self.windows {
                Windows::Whole => {
                    keys.push(key(source, unit, full.x0, full.x1));
                    continue;
                }
                Windows::Columns { width, .. } | Windows::Cut { width } => width,
            };
            let c0 = region.x0.max(full.x0) / width;
            let c1 = (region.x1.min(full.x1) - 1) / width;
            for c in c0..=c1 {
                let (x0, x1) = self.piece_columns(unit, c * width, (c + 1) * width);
                if x0 < x1 {
                    keys.push(key(source, unit, x0, x1));
                }
            }
        }
        keys
    }

    /// The fewest keys covering `region` (a one-shot render): raw units read exactly the
    /// region's columns; a stream band gives every window the region touches.
    pub fn keys_exact(&self, source: LevelSource, region: &Extent) -> Vec<PieceKey> {
        let mut keys = Vec::new();
        for unit in self.grid.units_in(region) {
            match self.windows {
                Windows::Cut { width } => {
                    for c in region.x0 / width..=(region.x1 - 1) / width {
                        let (x0, x1) = self.piece_columns(unit, c * width, c * width + 1);
                        keys.push(key(source, unit, x0, x1));
                    }
                }
                _ => {
                    let (x0, x1) = self.piece_columns(unit, region.x0, region.x1);
                    keys.push(key(source, unit, x0, x1));
                }
            }
        }
        keys
    }

    /// Every window a decoded stream band of `unit` is cut into, left to right.
    pub fn windows_of(&self, unit: u64) -> Vec<(u32, u32)> {
        let full = self.grid.unit_extent(unit);
        match self.windows {
            Windows::Cut { width } => (full.x0 / width..full.x1.div_ceil(width))
                .map(|c| ((c * width).max(full.x0), ((c + 1) * width).min(full.x1)))
                .collect(),
            _ => vec![(full.x0, full.x1)],
        }
    }
}

fn key(source: LevelSource, unit: u64, x0: u32, x1: u32) -> PieceKey {
    PieceKey {
        source,
        unit,
        x0,
        x1,
    }
}

/// An extent of a level with factor `f`, in full-resolution pixels of an image
/// `width` x `height` (clipped to it).
pub fn scale_up(e: &Extent, f: u32, width: u32, height: u32) -> Extent {
    Extent::new(
        e.x0.saturating_mul(f).min(width),
        e.y0.saturating_mul(f).min(height),
        e.x1.saturating_mul(f).min(width),
        e.y1.saturating_mul(f).min(height),
    )
}

/// The pixels of a level with factor `f` that cover `e` (full-resolution pixels of an image
/// `width` x `height`), clipped to the level.
pub fn scale_down(e: &Extent, f: u32, width: u32, height: u32) -> Extent {
    let f = f.max(1);
    Extent::new(
        e.x0 / f,
        e.y0 / f,
        e.x1.div_ceil(f).min(width.div_ceil(f)),
        e.y1.div_ceil(f).min(height.div_ceil(f)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(windows: Windows) -> Geometry {
        // Three bands of 10 rows, one chunk across, 5000 px wide.
        Geometry {
            grid: Grid::new(5000, 30, 5000, 10, 1024),
            windows,
        }
    }

    #[test]
    fn grid_windows_are_fixed_and_cover_the_region() {
        let g = geometry(Windows::Columns {
            width: 512,
            align: 1,
        });
        let src = LevelSource::Page(0);
        let keys = g.keys_on_grid(src, &Extent::new(600, 5, 1100, 15));
        // Two bands x windows 1 (512..1024) and 2 (1024..1536).
        let cols: Vec<(u64, u32, u32)> = keys.iter().map(|k| (k.unit, k.x0, k.x1)).collect();
        assert_eq!(
            cols,
            vec![
                (0, 512, 1024),
                (0, 1024, 1536),
                (1, 512, 1024),
                (1, 1024, 1536)
            ]
        );
        // A shifted view asks for the same pieces: panning reuses the cache.
        let again = g.keys_on_grid(src, &Extent::new(700, 5, 1200, 15));
        assert_eq!(keys, again);
        // The last window is clipped to the image.
        let edge = g.keys_on_grid(src, &Extent::new(4990, 0, 5000, 1));
        assert_eq!((edge[0].x0, edge[0].x1), (4608, 5000));
    }

    #[test]
    fn exact_keys_read_only_the_region_aligned_for_sub_byte_rows() {
        let g = geometry(Windows::Columns {
            width: 512,
            align: 8,
        });
        let keys = g.keys_exact(LevelSource::Page(0), &Extent::new(13, 0, 21, 1));
        assert_eq!(
            (keys[0].x0, keys[0].x1),
            (8, 24),
            "rounded out to whole bytes"
        );
        let whole = geometry(Windows::Whole);
        let keys = whole.keys_exact(LevelSource::Page(0), &Extent::new(13, 0, 21, 1));
        assert_eq!((keys[0].x0, keys[0].x1), (0, 5000));
    }

    #[test]
    fn stream_bands_are_cut_into_every_window_they_touch() {
        let g = geometry(Windows::Cut { width: 2048 });
        let src = LevelSource::Page(0);
        let keys = g.keys_exact(src, &Extent::new(2000, 0, 2100, 1));
        let cols: Vec<(u32, u32)> = keys.iter().map(|k| (k.x0, k.x1)).collect();
        assert_eq!(cols, vec![(0, 2048), (2048, 4096)]);
        assert_eq!(g.windows_of(0), vec![(0, 2048), (2048, 4096), (4096, 5000)]);
        // Grid keys and exact keys name the same pieces.
        let grid: Vec<(u32, u32)> = g
            .keys_on_grid(src, &Extent::new(2000, 0, 2100, 1))
            .iter()
            .map(|k| (k.x0, k.x1))
            .collect();
        assert_eq!(grid, cols);
        assert_eq!(
            g.key_extent(&keys[1]),
            Extent::new(2048, 0, 4096, 10),
            "a key's extent spans its unit's rows"
        );
    }

    #[test]
    fn extents_scale_between_levels() {
        let e = Extent::new(3, 5, 7, 9);
        assert_eq!(scale_up(&e, 4, 26, 100), Extent::new(12, 20, 26, 36));
        assert_eq!(
            scale_down(&Extent::new(12, 20, 27, 37), 4, 27, 100),
            Extent::new(3, 5, 7, 10)
        );
        // The level's last pixel covers the image's last columns.
        assert_eq!(scale_down(&Extent::new(0, 0, 27, 1), 4, 27, 1).x1, 7);
    }

    #[test]
    fn preview_sources_have_no_descriptors() {
        let p = LevelSource::Preview {
            page: 0,
            step_log2: 3,
        };
        assert!(!p.has_descriptors());
        assert_eq!(p.preview_step(), 8);
        assert!(LevelSource::Built(1).has_descriptors());
    }
}
