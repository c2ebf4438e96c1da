//! Region export to PNG, streamed: the region is rendered a band of output rows at a time
//! through the same loader and render path as `tessera render`, and each band goes straight
//! into the PNG encoder, so a region far bigger than RAM exports within the loader's cache
//! budget. It is written beside the target as `NAME.part` and renamed only when complete: a
//! cancelled or failed export leaves no file under the final name.
//!
//! [`Frame`] is what an export (PNG here, TIFF in `convert`) writes: a region of a page, shrunk
//! by a scale and turned by an orientation, handed out a band of output rows at a time, as
//! displayed RGBA or as the page's native samples.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::OpenImage;
use crate::cache::PieceCache;
use crate::display::Compiled;
use crate::error::Error;
use crate::format::Extent;
use crate::loader::Loader;
use crate::orientation::Orientation;
use crate::progress::Progress;
use crate::render::{RenderRequest, render_mapped, render_samples};

/// Output rows rendered per band.
pub const BAND_ROWS: u32 = 256;

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub page: u32,
    /// Full-resolution pixels of the page.
    pub region: Extent,
    /// Integer shrink factor: 1 = full resolution, 2 = half, ...
    pub scale: u32,
    pub out: PathBuf,
    /// CPU cache budget of the export's own loader.
    pub cache_bytes: usize,
    /// Turn and flip the output (the view's orientation).
    pub orient: Orientation,
}

/// Full-resolution samples a native band reads at once (before shrinking): bounds memory
/// whatever the scale and orientation.
const NATIVE_CHUNK_SAMPLES: u64 = 8 << 20;

/// What an export writes: `region` of `page` shrunk by `scale`, turned by `orient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub page: u32,
    pub region: Extent,
    pub scale: u32,
    pub orient: Orientation,
}

impl Frame {
    /// The frame of `region` (clipped to the page) of `page` of `image`, and the page.
    pub fn clipped(
        image: &OpenImage,
        page: u32,
        region: Extent,
        scale: u32,
        orient: Orientation,
    ) -> Result<(crate::format::Page, Self), Error> {
        let (p, region) = clip(image, page, region)?;
        let frame = Self {
            page,
            region,
            scale: scale.max(1),
            orient,
        };
        Ok((p, frame))
    }

    /// The output before it is turned: the region shrunk by the scale.
    fn scaled(&self) -> (u32, u32) {
        let s = self.scale.max(1);
        (
            self.region.width().div_ceil(s),
            self.region.height().div_ceil(s),
        )
    }

    /// The output's size as written.
    pub fn size(&self) -> (u32, u32) {
        let (w, h) = self.scaled();
        self.orient.display_size(w, h)
    }

    /// The full-resolution pixels behind `e`, a rectangle of the scaled (unturned) output.
    fn full(&self, e: &Extent) -> Extent {
        let s = self.scale.max(1);
        let r = &self.region;
        Extent::new(
            r.x0 + e.x0 * s,
            r.y0 + e.y0 * s,
            (r.x0 + e.x1 * s).min(r.x1),
            (r.y0 + e.y1 * s).min(r.y1),
        )
    }

    /// Hand the output to `each(y0, y1)` a band of at most `rows` rows at a time, reporting
    /// progress as it goes and stopping (with an error naming `out`) once it is cancelled.
    pub fn for_each_band(
        &self,
        rows: u32,
        progress: &Progress,
        out: &Path,
        mut each: impl FnMut(u32, u32) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let (_, oh) = self.size();
        let mut y = 0;
        while y < oh {
            // Reports what is done so far, and fails once cancelled.
            progress
                .update(u64::from(y), u64::from(oh))
                .map_err(|source| Error::Format {
                    path: out.to_path_buf(),
                    source,
                })?;
            let y1 = (y + rows.max(1)).min(oh);
            each(y, y1)?;
            y = y1;
        }
        // Every row is in: a cancel from now on comes too late to matter.
        let _ = progress.update(u64::from(oh), u64::from(oh));
        Ok(())
    }

    /// Output rows `y0..y1` and the scaled pixels they show.
    fn band(&self, y0: u32, y1: u32) -> (Extent, Extent) {
        let out = Extent::new(0, y0, self.size().0, y1);
        (out, self.orient.source_extent(self.scaled(), &out))
    }

    /// Output rows `y0..y1` as RGBA, a data page through `mapping`.
    pub fn display_rows(
        &self,
        loader: &Loader,
        mapping: Option<&Compiled>,
        y0: u32,
        y1: u32,
    ) -> Result<Vec<u8>, Error> {
        let (out, src) = self.band(y0, y1);
        let request = RenderRequest::new(self.page, self.full(&src), self.scale.max(1));
        let (img, _) = render_mapped(loader, request, mapping)?;
        Ok(if self.orient.is_identity() {
            img.data
        } else {
            self.orient.remap(self.scaled(), &img.data, &src, &out, 4)
        })
    }

    /// Output rows `y0..y1` of a data page as its stored samples (little-endian, float16 as
    /// float32), shrunk by the mean of the valid samples.
    pub fn native_rows(&self, loader: &Loader, y0: u32, y1: u32) -> Result<Vec<u8>, Error> {
        let page = loader.image().page(self.page)?.clone();
        let info = page.data.clone().ok_or_else(|| Error::Request {
            path: loader.image().path().to_path_buf(),
            msg: format!("page {} holds pictures, not data samples", self.page),
        })?;
        let ch = info.channels.max(1);
        let s = self.scale.max(1);
        let (out, src) = self.band(y0, y1);
        // Whole scaled rows of `src`, as many as keep the full-resolution read bounded.
        let per_row = u64::from(src.width()) * u64::from(s) * u64::from(s) * ch as u64;
        let rows = (NATIVE_CHUNK_SAMPLES / per_row.max(1)).clamp(1, u64::from(u32::MAX)) as u32;
        let mut bytes = Vec::new();
        let mut y = src.y0;
        while y < src.y1 {
            let y1 = (y + rows).min(src.y1);
            let full = self.full(&Extent::new(src.x0, y, src.x1, y1));
            let (buf, _) = render_samples(loader, self.page, full)?;
            let buf = if s > 1 {
                let dims = (full.width() as usize, full.height() as usize);
                buf.shrink(dims, ch, s as usize, info.sample, info.nodata)
            } else {
                buf
            };
            bytes.extend_from_slice(&buf.to_le_bytes());
            y = y1;
        }
        Ok(if self.orient.is_identity() {
            bytes
        } else {
            let bpp = ch * native_sample_bytes(info.sample);
            self.orient.remap(self.scaled(), &bytes, &src, &out, bpp)
        })
    }
}

/// Bytes a native sample of type `ty` is written with (float16 is written as float32).
pub fn native_sample_bytes(ty: crate::data::SampleType) -> usize {
    match ty {
        crate::data::SampleType::F16 => 4,
        t => t.bytes(),
    }
}

/// The partial file an export writes before it is complete.
pub fn part_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    out.with_file_name(name)
}

/// The page and the part of `region` inside it, or an error naming the image.
pub(crate) fn clip(
    image: &OpenImage,
    page: u32,
    region: Extent,
) -> Result<(crate::format::Page, Extent), Error> {
    let p = image.page(page)?.clone();
    let clipped = region
        .intersect(&p.extent())
        .ok_or_else(|| Error::Request {
            path: image.path().to_path_buf(),
            msg: format!(
                "region {region:?} is outside the {}x{} page",
                p.width, p.height
            ),
        })?;
    Ok((p, clipped))
}

/// A loader of the writer's own (its own cache of `cache_bytes`, at least 16 MB), so that a
/// long write neither evicts the viewer's pieces nor grows past its budget.
pub(crate) fn own_loader(image: &Arc<OpenImage>, cache_bytes: usize) -> Loader {
    let cache = Arc::new(Mutex::new(PieceCache::new(cache_bytes.max(16 << 20))));
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    Loader::new(image.clone(), cache, workers, 4096)
}

/// Rename the finished part file to `out`, or remove it if the write failed.
pub(crate) fn finish(part: &Path, out: &Path, result: Result<(), Error>) -> Result<(), Error> {
    match result {
        Ok(()) => std::fs::rename(part, out).map_err(|source| Error::Open {
            path: out.to_path_buf(),
            source,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(part);
            Err(e)
        }
    }
}

/// Export `req.region` of `image` to a PNG at `req.out`, through `mapping` for data pages
/// (the display mapping on screen), reporting rows to `progress`, which can cancel it.
pub fn export_png(
    image: Arc<OpenImage>,
    req: &ExportRequest,
    mapping: Option<&Compiled>,
    progress: &Progress,
) -> Result<(), Error> {
    let path_err = |source: std::io::Error| Error::Open {
        path: req.out.clone(),
        source,
    };
    let (_, frame) = Frame::clipped(&image, req.page, req.region, req.scale, req.orient)?;
    let (ow, oh) = frame.size();
    let loader = own_loader(&image, req.cache_bytes);
    let part = part_path(&req.out);
    let result = (|| -> Result<(), Error> {
        let file = std::fs::File::create(&part).map_err(path_err)?;
        let mut enc = png::Encoder::new(BufWriter::with_capacity(1 << 20, file), ow, oh);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let io = |e: png::EncodingError| path_err(std::io::Error::other(e.to_string()));
        let mut writer = enc.write_header().map_err(io)?;
        let mut stream = writer.stream_writer().map_err(io)?;
        frame.for_each_band(BAND_ROWS, progress, &req.out, |y0, y1| {
            let band = frame.display_rows(&loader, mapping, y0, y1)?;
            use std::io::Write;
            stream.write_all(&band).map_err(path_err)
        })?;
        stream.finish().map_err(io)?;
        Ok(())
    })();
    finish(&part, &req.out, result)
}
