//! Render a region of an image to pixels, through the same loader and cache as the viewer:
//! only the descriptors that intersect the region are read.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::data::stats::Stats;
use crate::decode::Piece;
use crate::display::{Compiled, Mapping, Percentiles};
use crate::error::Error;
use crate::format::Extent;
use crate::image::OpenImage;
use crate::loader::Loader;
use crate::pieces::{LevelSource, PieceKey, scale_down};
use crate::pyramid::Pyramid;

/// Largest output we allocate: 2^28 pixels (1 GiB of RGBA).
pub const MAX_OUTPUT_PIXELS: u64 = 1 << 28;

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderRequest {
    pub page: u32,
    /// In full-resolution pixels of the page.
    pub region: Extent,
    /// Integer shrink factor (box filter); 1 = full resolution.
    pub scale: u32,
    /// Draw from subsampled previews (every k-th row and pixel) where they are coarser than
    /// the box-filtered levels: faster, not a box filter of the image.
    pub fast: bool,
}

impl RenderRequest {
    pub fn new(page: u32, region: Extent, scale: u32) -> Self {
        Self {
            page,
            region,
            scale,
            fast: false,
        }
    }

    /// Output size: `ceil(W/scale) x ceil(H/scale)`.
    pub fn output_size(&self) -> (u32, u32) {
        let s = self.scale.max(1);
        (
            self.region.width().div_ceil(s),
            self.region.height().div_ceil(s),
        )
    }
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
    /// Stored bytes of the descriptors the render needed (what a perfect reader fetches).
    pub descriptor_bytes: u64,
    /// The level read: its factor and source.
    pub factor: u32,
    pub source: Option<LevelSource>,
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

/// Parse `X,Y,W,H` into an extent, values past `u32` clamped (a region reaching past the
/// page is clipped or refused by whoever uses it).
pub fn parse_extent(s: &str) -> Option<Extent> {
    let (x, y, w, h) = parse_region(s)?;
    let c = |v: u64| v.min(u64::from(u32::MAX)) as u32;
    let (x, y) = (c(x), c(y));
    Some(Extent::new(
        x,
        y,
        x.saturating_add(c(w)),
        y.saturating_add(c(h)),
    ))
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

/// Reading at least this share of the image's pixels, a full-quality render builds the
/// levels first: the build reads the file once at disk speed, as the render would, and
/// keeps them, so the next render or open is instant.
const BUILD_SHARE: u64 = 2;

/// Prepare `image` for `req`: attach its kept checkpoint index and levels, and when a
/// full-quality scaled render would read most of an image that has no level coarse enough
/// (and levels are kept), prepare the build of its levels (run it, then render). Returns the
/// build to run, if any.
pub fn prepare(
    image: &Arc<OpenImage>,
    req: &RenderRequest,
    cfg: &crate::levels::LevelsConfig,
) -> Result<Option<crate::levels::BuildJob>, Error> {
    // A kept checkpoint index lets a PNG/JPEG render start near its region; attaching kept
    // levels attaches it too, so it is read once either way.
    if req.scale < 2 || req.page != 0 {
        if let Some(dir) = &cfg.dir {
            image.attach_index(dir);
        }
        return Ok(None);
    }
    crate::levels::attach_existing(image, cfg);
    if req.fast || cfg.dir.is_none() || image.built_levels().is_some() {
        return Ok(None);
    }
    let Some(pyramid) = Pyramid::of(image, 0) else {
        return Ok(None);
    };
    let ready = pyramid.ready_rows(image);
    let have = pyramid
        .get(pyramid.for_scale(req.scale, &ready, false))
        .map_or(1, |l| l.factor);
    let read = req.region.pixels() / u64::from(have).pow(2);
    let all = u64::from(pyramid.width) * u64::from(pyramid.height);
    let coarser = crate::sidecar::factors(pyramid.width, pyramid.height)
        .first()
        .is_some_and(|&f| f <= req.scale && f > have);
    // A remote file is never read whole unasked: `render` draws from its own levels.
    if !coarser
        || read * BUILD_SHARE < all
        || !crate::levels::wanted(image, cfg.auto_pixels)
        || image.source.is_remote()
    {
        return Ok(None);
    }
    crate::levels::prepare_build(image, cfg).map(Some)
}

/// Render `req` with `loader`; a data page is shown as the viewer opens it (auto contrast, see
/// [`default_display`]).
pub fn render(loader: &Loader, req: RenderRequest) -> Result<(Rgba, RenderStats), Error> {
    let image = loader.image().clone();
    let compiled = match &image.page(req.page)?.data {
        Some(info) => {
            let mapping = default_display(loader, &req, Percentiles::default())?;
            Some(mapping.compile(info))
        }
        None => None,
    };
    render_mapped(loader, req, compiled.as_ref())
}

/// The mapping a data page opens with, its windows from auto contrast at percentiles `p`
/// (see [`auto_stats`]).
pub fn default_display(
    loader: &Loader,
    req: &RenderRequest,
    p: Percentiles,
) -> Result<Mapping, Error> {
    let image = loader.image().clone();
    let page = image.page(req.page)?;
    let Some(info) = page.data.clone() else {
        return Err(Error::Request {
            path: image.path().to_path_buf(),
            msg: "not a data page".into(),
        });
    };
    let mut mapping = Mapping::for_data(&info);
    let (mut stats, _) = auto_stats(loader, req)?;
    mapping.auto(&mut stats, p, &info);
    Ok(mapping)
}

/// Coarsest-level pixels that auto contrast reads whole; above this it reads the region.
pub const AUTO_LEVEL_PIXELS: u64 = 16 << 20;

/// Statistics for auto contrast: from the coarsest level of the page's pyramid (a reduced
/// page, a built level or a subsampled preview) when it is small, as the viewer does; else
/// from the region being rendered, at the level the render reads.
/// Returns the statistics and the level they come from.
pub fn auto_stats(
    loader: &Loader,
    req: &RenderRequest,
) -> Result<(Stats, crate::pyramid::Level), Error> {
    let image = loader.image().clone();
    let base = image.page(req.page)?;
    let info = base.data.clone().ok_or_else(|| Error::Request {
        path: image.path().to_path_buf(),
        msg: "not a data page".into(),
    })?;
    let pyramid = Pyramid::of(&image, req.page).ok_or_else(|| Error::Request {
        path: image.path().to_path_buf(),
        msg: format!("page {} does not exist", req.page),
    })?;
    let ready = pyramid.ready_rows(&image);
    let coarsest = pyramid.for_scale(u32::MAX, &ready, true);
    let (level, region) = match pyramid.get(coarsest) {
        Some(l) if u64::from(l.width) * u64::from(l.height) <= AUTO_LEVEL_PIXELS => {
            (*l, Extent::new(0, 0, l.width, l.height))
        }
        _ => {
            let l = *pyramid
                .get(pyramid.for_scale(req.scale, &ready, req.fast))
                .ok_or_else(|| Error::Request {
                    path: image.path().to_path_buf(),
                    msg: "the page has no levels".into(),
                })?;
            let e = scale_down(&req.region, l.factor, base.width, base.height);
            (
                l,
                Extent::new(e.x0, e.y0, e.x1.min(l.width), e.y1.min(l.height)),
            )
        }
    };
    let keys = if region.is_empty() {
        Vec::new()
    } else {
        level.geometry.keys_exact(level.source, &region)
    };
    let mut stats = Stats::new(info.channels);
    fetch(loader, &keys, |piece, _| {
        if let Some((buf, _)) = piece.samples() {
            stats.add(&info, buf, piece.extent.pixels() as usize, false);
        }
    })?;
    Ok((stats, level))
}

/// Ask `loader` for `keys` and hand each piece to `each` as it arrives (with whether it came
/// from the cache). Blocks until every piece has arrived, or one failed.
fn fetch(
    loader: &Loader,
    keys: &[PieceKey],
    mut each: impl FnMut(&Piece, bool),
) -> Result<(), Error> {
    let image = loader.image().clone();
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
        each(&piece, loaded.cached);
    }
    Ok(())
}

/// Render `req` with `loader`, a data page's samples coloured by `mapping` (required for data
/// pages). Blocks until every piece has arrived (or one failed). A scaled render reads the
/// coarsest level of the page's pyramid whose factor is at most the scale (see
/// [`Pyramid::for_scale`]) and box-filters the rest of the way.
pub fn render_mapped(
    loader: &Loader,
    req: RenderRequest,
    mapping: Option<&Compiled>,
) -> Result<(Rgba, RenderStats), Error> {
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
    let (out_w, out_h) = req.output_size();
    if u64::from(out_w) * u64::from(out_h) > MAX_OUTPUT_PIXELS {
        return Err(Error::Request {
            path: image.path().to_path_buf(),
            msg: format!(
                "output of {out_w}x{out_h} pixels is too large (at most {MAX_OUTPUT_PIXELS}); use --scale"
            ),
        });
    }
    let pyramid = Pyramid::of(&image, req.page).ok_or_else(|| Error::Request {
        path: image.path().to_path_buf(),
        msg: format!("page {} does not exist", req.page),
    })?;
    let ready = pyramid.ready_rows(&image);
    let level = *pyramid
        .get(pyramid.for_scale(req.scale, &ready, req.fast))
        .ok_or_else(|| Error::Request {
            path: image.path().to_path_buf(),
            msg: "the page has no levels".into(),
        })?;
    let target = Target {
        region: r,
        scale: req.scale.max(1),
        factor: level.factor,
        full: (base.width, base.height),
        level: (level.width, level.height),
    };
    let level_region = target.level_region();
    let keys = if level_region.is_empty() {
        Vec::new()
    } else {
        level.geometry.keys_exact(level.source, &level_region)
    };
    let planes = image
        .source_page(level.source)
        .filter(|_| level.source.has_descriptors())
        .map_or(1, |p| p.descriptor_count() / p.unit_count().max(1));
    let mut out = Compositor::new(target);
    out.skip_transparent = mapping.is_some();
    let descriptor_bytes = image
        .source_page(level.source)
        .filter(|_| level.source.has_descriptors())
        .map_or(0, |p| {
            keys.iter()
                .flat_map(|k| p.unit_descriptors(k.unit))
                .map(|d| p.descriptor(d).length)
                .sum()
        });
    let mut stats = RenderStats {
        units: keys.len() as u64,
        descriptor_bytes,
        factor: level.factor,
        source: Some(level.source),
        ..RenderStats::default()
    };
    if base.data.is_some() && mapping.is_none() {
        return Err(Error::Request {
            path: image.path().to_path_buf(),
            msg: "internal: a data page renders through a display mapping".into(),
        });
    }
    fetch(loader, &keys, |piece, cached| {
        if cached {
            stats.from_cache += 1;
        } else {
            stats.descriptors += planes;
        }
        match (mapping, piece.samples()) {
            (Some(m), Some((buf, _))) => {
                let n = piece.extent.pixels() as usize;
                out.add(&Piece {
                    extent: piece.extent,
                    rgba: m.map(buf, n),
                    native: crate::decode::Native::Derived,
                });
            }
            _ => out.add(piece),
        }
    })?;
    Ok((out.finish(), stats))
}

/// The stored samples of `region` of data page `page` at full resolution, interleaved
/// (`pixel * channels + channel`), in the page's sample type (float16 as float32): what a
/// native export writes. Read through `loader` like a render.
pub fn render_samples(
    loader: &Loader,
    page: u32,
    region: Extent,
) -> Result<(crate::data::SampleBuf, usize), Error> {
    let image = loader.image().clone();
    let base = image.page(page)?;
    let request = |msg: String| Error::Request {
        path: image.path().to_path_buf(),
        msg,
    };
    let info = base
        .data
        .clone()
        .ok_or_else(|| request(format!("page {page} holds pictures, not data samples")))?;
    let r = region;
    if r.is_empty() || r.x1 > base.width || r.y1 > base.height {
        return Err(request(format!(
            "region {r:?} is empty or outside the image ({}x{})",
            base.width, base.height
        )));
    }
    let ch = info.channels.max(1);
    if r.pixels() * ch as u64 > MAX_OUTPUT_PIXELS {
        return Err(request(format!("{r:?} holds too many samples at once")));
    }
    let pyramid =
        Pyramid::of(&image, page).ok_or_else(|| request(format!("page {page} does not exist")))?;
    let level = *pyramid
        .get(0)
        .ok_or_else(|| request("the page has no levels".into()))?;
    let keys = level.geometry.keys_exact(level.source, &r);
    let w = r.width() as usize;
    let mut out = crate::data::SampleBuf::zeroed(info.sample, r.pixels() as usize * ch);
    let mut wrong = None;
    fetch(loader, &keys, |piece, _| {
        let Some(common) = piece.extent.intersect(&r) else {
            return;
        };
        let Some((buf, c)) = piece.samples().filter(|(_, c)| *c == ch) else {
            wrong = Some(piece.extent);
            return;
        };
        let n = common.width() as usize * c;
        let pw = piece.extent.width() as usize;
        for y in common.y0..common.y1 {
            let from =
                ((y - piece.extent.y0) as usize * pw + (common.x0 - piece.extent.x0) as usize) * c;
            let at = ((y - r.y0) as usize * w + (common.x0 - r.x0) as usize) * c;
            if !out.copy_run(at, buf, from, n) {
                wrong = Some(piece.extent);
            }
        }
    })?;
    match wrong {
        Some(e) => Err(request(format!(
            "piece {e:?} did not decode to the page's samples"
        ))),
        None => Ok((out, ch)),
    }
}

/// Where the output's pixels come from: a region of the full-resolution image, shrunk by
/// `scale`, read from a level with `factor` full-resolution pixels per level pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    region: Extent,
    scale: u32,
    factor: u32,
    /// Full-resolution and level sizes.
    full: (u32, u32),
    level: (u32, u32),
}

impl Target {
    /// The level pixels covering the region.
    fn level_region(&self) -> Extent {
        let e = scale_down(&self.region, self.factor, self.full.0, self.full.1);
        Extent::new(e.x0, e.y0, e.x1.min(self.level.0), e.y1.min(self.level.1))
    }

    /// The output pixels that level pixel `i` (along one axis) falls into, with the number of
    /// full-resolution pixels it gives each: at most two, as a level pixel is no wider than an
    /// output pixel. The level's last pixel covers the image to its edge (writers that round
    /// level sizes down leave a few columns to it).
    fn spans(&self, i: u32, axis: usize) -> [(usize, u32); 2] {
        let (r0, r1, full, level) = if axis == 0 {
            (self.region.x0, self.region.x1, self.full.0, self.level.0)
        } else {
            (self.region.y0, self.region.y1, self.full.1, self.level.1)
        };
        let f = self.factor;
        let a = (i * f).max(r0);
        let end = if i + 1 >= level {
            full
        } else {
            ((i + 1) * f).min(full)
        };
        let b = end.min(r1);
        let mut out = [(0, 0); 2];
        if a >= b {
            return out;
        }
        let s = self.scale;
        let (o0, o1) = ((a - r0) / s, (b - 1 - r0) / s);
        for (n, o) in (o0..=o1).take(2).enumerate() {
            let lo = a.max(r0 + o * s);
            let hi = b.min(r0 + (o + 1) * s);
            out[n] = (o as usize, hi - lo);
        }
        out
    }
}

/// Accumulates pieces into the output: a copy at full resolution, otherwise an area-weighted
/// box filter (each level pixel counts for the full-resolution pixels it stands for). When the
/// level's factor divides the scale and the region's origin, and the region ends on the
/// level's grid or at the image's edge, each output pixel is exactly the mean of its block of
/// level pixels, so a box-filtered level gives the full-resolution box filter (within
/// rounding); otherwise level pixels cut by an output pixel's edge count by the share they
/// cover, which is exact where the image is smooth at the level's scale.
struct Compositor {
    target: Target,
    out_w: usize,
    out_h: usize,
    /// Scale 1 from the image itself: the output. Otherwise weighted sums and weights.
    pixels: Vec<u8>,
    sums: Vec<u64>,
    weights: Vec<u32>,
    /// Data pages: transparent pixels are no-data and do not count (an output pixel is the
    /// mean of the valid pixels it covers, as built levels are).
    skip_transparent: bool,
}

impl Compositor {
    fn new(target: Target) -> Self {
        let out_w = target.region.width().div_ceil(target.scale) as usize;
        let out_h = target.region.height().div_ceil(target.scale) as usize;
        let n = out_w * out_h;
        // One level pixel per output pixel: a copy (scale 1 of the image, or a scale equal
        // to the level's factor with the region on the level's grid).
        let f = target.factor.max(1);
        let lr = target.level_region();
        let copy = target.scale == f
            && target.region.x0.is_multiple_of(f)
            && target.region.y0.is_multiple_of(f)
            && (lr.width() as usize, lr.height() as usize) == (out_w, out_h);
        Self {
            target,
            out_w,
            out_h,
            pixels: if copy { vec![0; n * 4] } else { Vec::new() },
            sums: if copy { Vec::new() } else { vec![0; n * 4] },
            weights: if copy { Vec::new() } else { vec![0; n] },
            skip_transparent: false,
        }
    }

    fn add(&mut self, piece: &Piece) {
        let t = self.target;
        let lr = t.level_region();
        let Some(common) = piece.extent.intersect(&lr) else {
            return;
        };
        let pw = piece.extent.width() as usize;
        let cols = common.width() as usize;
        let copy = self.sums.is_empty();
        let col_spans: Vec<[(usize, u32); 2]> = if copy {
            Vec::new()
        } else {
            (common.x0..common.x1).map(|x| t.spans(x, 0)).collect()
        };
        for y in common.y0..common.y1 {
            let src_start =
                ((y - piece.extent.y0) as usize * pw + (common.x0 - piece.extent.x0) as usize) * 4;
            let src = &piece.rgba[src_start..src_start + cols * 4];
            if copy {
                let ry = (y - lr.y0) as usize;
                let rx = (common.x0 - lr.x0) as usize;
                let d = (ry * self.out_w + rx) * 4;
                self.pixels[d..d + cols * 4].copy_from_slice(src);
                continue;
            }
            for (oy, wy) in t.spans(y, 1) {
                if wy == 0 {
                    continue;
                }
                let row = oy * self.out_w;
                for (px, spans) in src.chunks_exact(4).zip(&col_spans) {
                    if self.skip_transparent && px[3] == 0 {
                        continue;
                    }
                    for &(ox, wx) in spans {
                        if wx == 0 {
                            continue;
                        }
                        let w = wx * wy;
                        let i = row + ox;
                        self.weights[i] += w;
                        for (sum, &v) in self.sums[i * 4..i * 4 + 4].iter_mut().zip(px) {
                            *sum += u64::from(w) * u64::from(v);
                        }
                    }
                }
            }
        }
    }

    fn finish(self) -> Rgba {
        let data = if self.sums.is_empty() {
            self.pixels
        } else {
            let mut data = vec![0u8; self.out_w * self.out_h * 4];
            for (i, &w) in self.weights.iter().enumerate() {
                let w = u64::from(w.max(1));
                for c in 0..4 {
                    data[i * 4 + c] = ((self.sums[i * 4 + c] + w / 2) / w) as u8;
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

    fn gray_piece(extent: Extent, v: impl Fn(u32, u32) -> u8) -> Piece {
        let mut p = Piece::new(
            extent,
            &crate::sample::RawFormat::new(crate::sample::PixelKind::Rgba, 8),
        );
        for y in extent.y0..extent.y1 {
            for x in extent.x0..extent.x1 {
                let i = (((y - extent.y0) * extent.width() + x - extent.x0) * 4) as usize;
                p.rgba[i..i + 4].copy_from_slice(&[v(x, y), 0, 0, 255]);
            }
        }
        p
    }

    fn target(region: Extent, scale: u32, factor: u32, full: (u32, u32)) -> Target {
        Target {
            region,
            scale,
            factor,
            full,
            level: (full.0.div_ceil(factor), full.1.div_ceil(factor)),
        }
    }

    /// Render `region` / `scale` from a level with `factor` that is the exact box filter
    /// (rounded) of the image `v` (`w` x `h`).
    fn via_level(
        v: &dyn Fn(u32, u32) -> u8,
        (w, h): (u32, u32),
        region: Extent,
        scale: u32,
        factor: u32,
    ) -> Rgba {
        let t = target(region, scale, factor, (w, h));
        let level = gray_piece(Extent::new(0, 0, t.level.0, t.level.1), |lx, ly| {
            let (x0, y0) = (lx * factor, ly * factor);
            let (x1, y1) = ((x0 + factor).min(w), (y0 + factor).min(h));
            let mut sum = 0u32;
            for y in y0..y1 {
                for x in x0..x1 {
                    sum += u32::from(v(x, y));
                }
            }
            let n = (x1 - x0) * (y1 - y0);
            ((sum + n / 2) / n) as u8
        });
        let mut c = Compositor::new(t);
        c.add(&level);
        c.finish()
    }

    fn direct(v: &dyn Fn(u32, u32) -> u8, (w, h): (u32, u32), region: Extent, scale: u32) -> Rgba {
        let mut c = Compositor::new(target(region, scale, 1, (w, h)));
        c.add(&gray_piece(Extent::new(0, 0, w, h), v));
        c.finish()
    }

    fn max_difference(a: &Rgba, b: &Rgba) -> u8 {
        assert_eq!((a.width, a.height), (b.width, b.height));
        a.data
            .iter()
            .zip(&b.data)
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn box_filter_averages_partial_edge_blocks() {
        let mut c = Compositor::new(target(Extent::new(0, 0, 3, 1), 2, 1, (3, 1)));
        c.add(&gray_piece(Extent::new(0, 0, 3, 1), |x, _| {
            [10, 20, 99][x as usize]
        }));
        let out = c.finish();
        assert_eq!((out.width, out.height), (2, 1));
        assert_eq!(out.data[0], 15);
        assert_eq!(out.data[4], 99, "the last column averages over itself only");
    }

    #[test]
    fn a_box_filtered_level_whose_factor_divides_the_scale_gives_the_box_filter() {
        // Noise: any error in the weights shows.
        let noise = |x: u32, y: u32| (x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) as u8;
        let size = (203, 157);
        for (region, scale, factor) in [
            (Extent::new(0, 0, 203, 157), 8, 4),
            (Extent::new(16, 8, 203, 157), 16, 8),
            (Extent::new(4, 4, 100, 92), 12, 4),
            (Extent::new(8, 0, 203, 157), 8, 8),
        ] {
            let want = direct(&noise, size, region, scale);
            let got = via_level(&noise, size, region, scale, factor);
            assert!(
                max_difference(&want, &got) <= 1,
                "{region:?} /{scale} from 1/{factor}"
            );
        }
    }

    #[test]
    fn other_scales_resample_the_level_by_area() {
        // A smooth image: area weighting across level pixels matches the full-resolution box
        // filter (scale 23 from the 1/16 level, 40 from 1/32, unaligned origins).
        let smooth = |x: u32, y: u32| ((x * 2 + y) * 255 / 1900) as u8;
        let size = (700, 500);
        for (region, scale, factor) in [
            (Extent::new(0, 0, 700, 500), 23, 16),
            (Extent::new(13, 7, 690, 480), 40, 32),
            (Extent::new(5, 0, 700, 500), 3, 2),
        ] {
            let want = direct(&smooth, size, region, scale);
            let got = via_level(&smooth, size, region, scale, factor);
            assert!(
                max_difference(&want, &got) <= 1,
                "{region:?} /{scale} from 1/{factor}: {}",
                max_difference(&want, &got)
            );
        }
    }

    #[test]
    fn a_level_rounded_down_still_covers_the_image_edge() {
        // A writer that rounds level sizes down (101 / 4 = 25) leaves the last column to the
        // level's last pixel.
        let t = Target {
            level: (25, 1),
            ..target(Extent::new(0, 0, 101, 1), 101, 4, (101, 1))
        };
        let mut c = Compositor::new(t);
        c.add(&gray_piece(Extent::new(0, 0, 25, 1), |_, _| 200));
        let out = c.finish();
        assert_eq!(out.data[0], 200);
        assert_eq!(t.spans(24, 0), [(0, 5), (0, 0)], "columns 96..101");
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
