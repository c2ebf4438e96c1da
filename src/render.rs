//! Render a region of an image to pixels, through the same loader and cache as the viewer:
//! only the descriptors that intersect the region are read.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::PieceKey;
use crate::decode::{Piece, piece_extent};
use crate::error::Error;
use crate::format::Extent;
use crate::loader::Loader;

/// Largest output we allocate: 2^28 pixels (1 GiB of RGBA).
pub const MAX_OUTPUT_PIXELS: u64 = 1 << 28;

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderRequest {
    pub page: u32,
    pub region: Extent,
    /// Integer shrink factor (box filter); 1 = full resolution.
    pub scale: u32,
}

/// An 8-bit RGBA image.
#[derive(Debug, Clone)]
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// What a render did.
#[derive(Debug, Clone, Default)]
pub struct RenderStats {
    pub units: u64,
    pub descriptors: u64,
    pub from_cache: u64,
}

/// Parse `X,Y,W,H`.
pub fn parse_region(s: &str) -> Option<(u64, u64, u64, u64)> {
    let v: Vec<u64> = s
        .split(',')
        .map(|p| p.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .ok()?;
    match v.as_slice() {
        [x, y, w, h] => Some((*x, *y, *w, *h)),
        _ => None,
    }
}

/// Check a region against a page and turn it into an extent.
pub fn region_extent(
    path: &Path,
    (x, y, w, h): (u64, u64, u64, u64),
    width: u32,
    height: u32,
) -> Result<Extent, Error> {
    let bad = |msg: String| Error::Request {
        path: path.to_path_buf(),
        msg,
    };
    if w == 0 || h == 0 {
        return Err(bad(format!("region {x},{y},{w},{h} is empty")));
    }
    let (x1, y1) = (x.saturating_add(w), y.saturating_add(h));
    if x1 > u64::from(width) || y1 > u64::from(height) {
        return Err(bad(format!(
            "region {x},{y},{w},{h} is outside the image ({width}x{height})"
        )));
    }
    Ok(Extent::new(x as u32, y as u32, x1 as u32, y1 as u32))
}

/// The coarsest resolution level that renders `req` exactly: its factor divides the scale and
/// the region's origin, and the region, reduced, still fits inside it. Returns the request
/// rewritten for that level (unchanged when no level fits).
pub fn pick_level(layout: &crate::format::Layout, req: RenderRequest) -> RenderRequest {
    if req.scale <= 1 {
        return req;
    }
    let r = req.region;
    let out = (
        r.width().div_ceil(req.scale),
        r.height().div_ceil(req.scale),
    );
    for level in layout.levels(req.page as usize).iter().rev() {
        let f = level.factor;
        if f == 1
            || !req.scale.is_multiple_of(f)
            || !r.x0.is_multiple_of(f)
            || !r.y0.is_multiple_of(f)
        {
            continue;
        }
        let Some(p) = layout.pages.get(level.page) else {
            continue;
        };
        let region = Extent::new(r.x0 / f, r.y0 / f, r.x1.div_ceil(f), r.y1.div_ceil(f));
        let scale = req.scale / f;
        let fits = region.x1 <= p.width && region.y1 <= p.height;
        if fits
            && (
                region.width().div_ceil(scale),
                region.height().div_ceil(scale),
            ) == out
        {
            return RenderRequest {
                page: level.page as u32,
                region,
                scale,
            };
        }
    }
    req
}

/// The coarsest built level that renders `req` exactly (same rule as [`pick_level`]), as a
/// request on the sidecar's pages. Only complete levels are used.
pub fn pick_built_level(
    built: &crate::levels::BuiltLevels,
    req: RenderRequest,
) -> Option<RenderRequest> {
    if req.scale <= 1 || req.page != 0 {
        return None;
    }
    let r = req.region;
    let out = (
        r.width().div_ceil(req.scale),
        r.height().div_ceil(req.scale),
    );
    for (i, p) in built.image.layout.pages.iter().enumerate().rev() {
        let f = built.factor(i);
        if !req.scale.is_multiple_of(f)
            || !r.x0.is_multiple_of(f)
            || !r.y0.is_multiple_of(f)
            || !built.rows_ready(i, p.height)
        {
            continue;
        }
        let region = Extent::new(r.x0 / f, r.y0 / f, r.x1.div_ceil(f), r.y1.div_ceil(f));
        let scale = req.scale / f;
        if region.x1 <= p.width
            && region.y1 <= p.height
            && (
                region.width().div_ceil(scale),
                region.height().div_ceil(scale),
            ) == out
        {
            return Some(RenderRequest {
                page: i as u32,
                region,
                scale,
            });
        }
    }
    None
}

/// Render `req` with `loader`. Blocks until every piece has arrived (or one failed). A scaled
/// render reads the coarsest resolution level that gives the same output, when the file has
/// levels.
pub fn render(loader: &Loader, req: RenderRequest) -> Result<(Rgba, RenderStats), Error> {
    let image = loader.image().clone();
    let base = image.page(req.page)?;
    let r = req.region;
    if r.x1 <= r.x0 || r.y1 <= r.y0 || r.x1 > base.width || r.y1 > base.height {
        return Err(Error::Request {
            path: image.path().to_path_buf(),
            msg: format!(
                "region {r:?} is empty or outside the image ({}x{})",
                base.width, base.height
            ),
        });
    }
    // The region is inside the base page (checked above) and `pick_level` only picks a
    // level the reduced region fits in.
    let req = pick_level(&image.layout, req);
    let page = image.page(req.page)?;
    let region = req.region;
    let scale = req.scale.max(1);
    let (out_w, out_h) = (
        region.width().div_ceil(scale),
        region.height().div_ceil(scale),
    );
    if u64::from(out_w) * u64::from(out_h) > MAX_OUTPUT_PIXELS {
        return Err(Error::Request {
            path: image.path().to_path_buf(),
            msg: format!(
                "output of {out_w}x{out_h} pixels is too large (at most {MAX_OUTPUT_PIXELS}); use --scale"
            ),
        });
    }
    let mut out = Compositor::new(region, scale);
    let mut stats = RenderStats::default();
    let stream = matches!(page.storage, crate::format::Storage::Stream { .. });
    let keys: Vec<PieceKey> = page
        .grid
        .units_in(&region)
        .flat_map(|unit| {
            if stream {
                // Decoded bands are cached as column windows: every window the region touches.
                let chunk = crate::format::STREAM_COLUMN_CHUNK;
                (region.x0 / chunk..=(region.x1 - 1) / chunk)
                    .map(|c| {
                        let want = Extent::new(c * chunk, region.y0, c * chunk + 1, region.y1);
                        let e = piece_extent(page, unit, &want);
                        PieceKey::new(req.page, unit, e.x0, e.x1)
                    })
                    .collect::<Vec<_>>()
            } else {
                let e = piece_extent(page, unit, &region);
                vec![PieceKey::new(req.page, unit, e.x0, e.x1)]
            }
        })
        .collect();
    let planes = page.descriptor_count() / page.unit_count().max(1);
    stats.units = keys.len() as u64;
    // Keep a bounded number of requests in flight; feed more as results come back.
    let window = 64;
    let mut next = 0;
    let mut outstanding: HashSet<PieceKey> = HashSet::new();
    while next < keys.len() || !outstanding.is_empty() {
        if next < keys.len() && outstanding.len() < window {
            let batch = &keys[next..keys.len().min(next + window - outstanding.len())];
            outstanding.extend(batch.iter().copied());
            loader.request(batch.iter().copied());
            next += batch.len();
        }
        let loaded = match loader.results().recv_timeout(Duration::from_secs(1)) {
            Ok(l) => l,
            Err(_) => {
                // Re-ask for anything that was dropped (e.g. by a full queue).
                let lost: Vec<PieceKey> = outstanding
                    .iter()
                    .filter(|k| !loader.is_pending(k))
                    .copied()
                    .collect();
                loader.request(lost);
                continue;
            }
        };
        if !outstanding.remove(&loaded.key) {
            continue;
        }
        let piece = loaded.result.map_err(|e| match Arc::try_unwrap(e) {
            Ok(e) => e,
            Err(e) => Error::Request {
                path: image.path().to_path_buf(),
                msg: e.to_string(),
            },
        })?;
        if loaded.cached {
            stats.from_cache += 1;
        } else {
            stats.descriptors += planes;
        }
        out.add(&piece);
    }
    Ok((out.finish(), stats))
}

/// Accumulates pieces into the output, box-filtering when scaling down.
struct Compositor {
    region: Extent,
    scale: u32,
    out_w: usize,
    out_h: usize,
    /// Scale 1: the output itself. Otherwise per-channel sums.
    pixels: Vec<u8>,
    sums: Vec<u32>,
}

impl Compositor {
    fn new(region: Extent, scale: u32) -> Self {
        let out_w = region.width().div_ceil(scale) as usize;
        let out_h = region.height().div_ceil(scale) as usize;
        let n = out_w * out_h * 4;
        Self {
            region,
            scale,
            out_w,
            out_h,
            pixels: if scale == 1 { vec![0; n] } else { Vec::new() },
            sums: if scale == 1 { Vec::new() } else { vec![0; n] },
        }
    }

    fn add(&mut self, piece: &Piece) {
        let Some(common) = piece.extent.intersect(&self.region) else {
            return;
        };
        let pw = piece.extent.width() as usize;
        let cols = common.width() as usize;
        for y in common.y0..common.y1 {
            let src_start =
                ((y - piece.extent.y0) as usize * pw + (common.x0 - piece.extent.x0) as usize) * 4;
            let src = &piece.rgba[src_start..src_start + cols * 4];
            let ry = (y - self.region.y0) as usize;
            let rx = (common.x0 - self.region.x0) as usize;
            if self.scale == 1 {
                let d = (ry * self.out_w + rx) * 4;
                self.pixels[d..d + cols * 4].copy_from_slice(src);
            } else {
                let s = self.scale as usize;
                let row = (ry / s) * self.out_w;
                for (i, px) in src.chunks_exact(4).enumerate() {
                    let d = (row + (rx + i) / s) * 4;
                    for (sum, &v) in self.sums[d..d + 4].iter_mut().zip(px) {
                        *sum += u32::from(v);
                    }
                }
            }
        }
    }

    fn finish(self) -> Rgba {
        let data = if self.scale == 1 {
            self.pixels
        } else {
            let s = self.scale;
            let (rw, rh) = (self.region.width(), self.region.height());
            let mut data = vec![0u8; self.out_w * self.out_h * 4];
            for oy in 0..self.out_h {
                let bh = (rh - oy as u32 * s).min(s);
                for ox in 0..self.out_w {
                    let bw = (rw - ox as u32 * s).min(s);
                    let n = bw * bh;
                    let i = (oy * self.out_w + ox) * 4;
                    for c in 0..4 {
                        data[i + c] = ((self.sums[i + c] + n / 2) / n) as u8;
                    }
                }
            }
            data
        };
        Rgba {
            width: self.out_w as u32,
            height: self.out_h as u32,
            data,
        }
    }
}

/// Write `img` as an 8-bit PNG, RGB or RGBA. Uses the fastest deflate setting: the output is a
/// view, not an archive.
pub fn write_png(path: &Path, img: &Rgba, alpha: bool) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let w = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut enc = png::Encoder::new(w, img.width, img.height);
    enc.set_color(if alpha {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fastest);
    let mut writer = enc.write_header().map_err(std::io::Error::other)?;
    if alpha {
        writer
            .write_image_data(&img.data)
            .map_err(std::io::Error::other)?;
    } else {
        let rgb: Vec<u8> = img
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        writer
            .write_image_data(&rgb)
            .map_err(std::io::Error::other)?;
    }
    writer.finish().map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_filter_averages_partial_edge_blocks() {
        let mut c = Compositor::new(Extent::new(0, 0, 3, 1), 2);
        let mut p = Piece::new(
            Extent::new(0, 0, 3, 1),
            &crate::decode::raw::RawFormat::new(crate::decode::raw::PixelKind::Rgba, 8),
        );
        p.rgba = vec![10, 0, 0, 255, 20, 0, 0, 255, 99, 0, 0, 255];
        c.add(&p);
        let out = c.finish();
        assert_eq!((out.width, out.height), (2, 1));
        assert_eq!(out.data[0], 15);
        assert_eq!(out.data[4], 99, "the last column averages over itself only");
    }

    #[test]
    fn regions_are_checked() {
        let p = Path::new("x");
        assert!(region_extent(p, (0, 0, 0, 1), 10, 10).is_err());
        assert!(region_extent(p, (5, 5, 6, 1), 10, 10).is_err());
        assert!(region_extent(p, (u64::MAX, 0, 2, 1), 10, 10).is_err());
        assert_eq!(
            region_extent(p, (5, 5, 5, 5), 10, 10).ok(),
            Some(Extent::new(5, 5, 10, 10))
        );
        assert_eq!(parse_region("1,2,3,4"), Some((1, 2, 3, 4)));
        assert_eq!(parse_region("1,2,3"), None);
    }
}
