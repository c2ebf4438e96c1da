//! Region export to PNG, streamed: the region is rendered a band of output rows at a time
//! through the same loader and render path as `tessera render`, and each band goes straight
//! into the PNG encoder, so a region far bigger than RAM exports within the loader's cache
//! budget. It is written beside the target as `NAME.part` and renamed only when complete: a
//! cancelled or failed export leaves no file under the final name.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::OpenImage;
use crate::cache::PieceCache;
use crate::display::Compiled;
use crate::error::Error;
use crate::format::Extent;
use crate::loader::Loader;
use crate::progress::Progress;
use crate::render::{RenderRequest, render_mapped};

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
    let (_, region) = clip(&image, req.page, req.region)?;
    let scale = req.scale.max(1);
    let (ow, oh) = (
        region.width().div_ceil(scale),
        region.height().div_ceil(scale),
    );
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
        let mut row = 0u32;
        while row < oh {
            // Reports what is done so far, and fails once cancelled.
            progress
                .update(u64::from(row), u64::from(oh))
                .map_err(|source| Error::Format {
                    path: req.out.clone(),
                    source,
                })?;
            let rows = BAND_ROWS.min(oh - row);
            // The band's source rows: whole output rows of `scale` source rows each.
            let y0 = region.y0 + row * scale;
            let y1 = (y0 + rows * scale).min(region.y1);
            let band = Extent::new(region.x0, y0, region.x1, y1);
            let (img, _) =
                render_mapped(&loader, RenderRequest::new(req.page, band, scale), mapping)?;
            use std::io::Write;
            stream.write_all(&img.data).map_err(path_err)?;
            row += rows;
        }
        // Every row is in: a cancel from now on comes too late to matter.
        let _ = progress.update(u64::from(oh), u64::from(oh));
        stream.finish().map_err(io)?;
        Ok(())
    })();
    finish(&part, &req.out, result)
}
