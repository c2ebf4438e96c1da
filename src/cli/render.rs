//! `tessera render FILE --region X,Y,W,H [--scale N] -o OUT.png`: the library picks the level
//! (and builds levels first when a full-quality render would read most of a big file).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tessera::cache::{PieceCache, default_budget};
use tessera::display::{Colormap, Mapping, Percentiles, Transfer, WindowArg};
use tessera::loader::Loader;
use tessera::render::{self, RenderRequest, region_extent, write_png};
use tessera::{OpenImage, stats};

use super::LevelArgs;

/// Default cache budget for `render`: a one-shot render never revisits a piece.
const RENDER_CACHE_BYTES: usize = 128 << 20;

#[derive(Debug, Args)]
pub struct RenderArgs {
    file: PathBuf,
    /// The region, in full-resolution pixels
    #[arg(long, value_name = "X,Y,W,H", value_parser = parse_region)]
    region: (u64, u64, u64, u64),
    /// Shrink by N with a box filter (output ceil(W/N) x ceil(H/N))
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    scale: u32,
    /// Draw from subsampled previews (every k-th row and pixel) where no level is coarse
    /// enough: faster, not a box filter
    #[arg(long)]
    fast: bool,
    #[arg(long, value_name = "P", default_value_t = 0)]
    page: u32,
    /// CPU cache budget in MB [default: 128]
    #[arg(long, value_name = "M")]
    cache_mb: Option<u64>,
    #[arg(long, hide = true)]
    workers: Option<usize>,
    /// Print descriptors and bytes read, time and peak memory to stderr
    #[arg(long)]
    stats: bool,
    /// Black and white points of data pages (16-bit, signed, float, many channels): LO,HI in
    /// the file's values, or auto[:P_LO,P_HI] percentiles [default: auto:0.1,99.9]
    #[arg(long, value_name = "LO,HI|auto", value_parser = WindowArg::parse, allow_hyphen_values = true)]
    window: Option<WindowArg>,
    /// Transfer function of data pages: linear, gamma[:G], log, sqrt, asinh
    #[arg(long, value_name = "F", value_parser = Transfer::parse)]
    transfer: Option<Transfer>,
    /// Colormap of a single channel: gray, viridis, magma, inferno, plasma, cividis, turbo,
    /// bluered, spectral
    #[arg(long, value_name = "NAME", value_parser = Colormap::parse)]
    colormap: Option<Colormap>,
    /// Channels of a data page to show: one (through the colormap), or several added up in
    /// red, green, blue, white, cyan, magenta, yellow (0,1,2 is RGB)
    #[arg(long, value_name = "C,C,...", value_delimiter = ',')]
    channels: Option<Vec<usize>>,
    /// Invert the data mapping (white for low values)
    #[arg(long)]
    invert: bool,
    /// The PNG to write
    #[arg(short = 'o', long = "output", value_name = "OUT.png")]
    output: PathBuf,
    #[command(flatten)]
    levels: LevelArgs,
}

/// Outputs bigger than this (64 Mpx, 256 MB as RGBA) are streamed to the PNG.
const STREAM_PIXELS: u64 = 64 << 20;

fn parse_region(s: &str) -> Result<(u64, u64, u64, u64), String> {
    render::parse_region(s).ok_or_else(|| format!("takes X,Y,W,H, not {s:?}"))
}

pub fn run(a: RenderArgs) -> Result<()> {
    let start = Instant::now();
    let image = OpenImage::open(&a.file)?;
    if same_file(&a.file, &a.output) {
        bail!(
            "{}: refusing to write the output over the input",
            a.output.display()
        );
    }
    let p = image.page(a.page)?;
    let region = region_extent(&a.file, a.region, p.width, p.height)?;
    let data = p.data.clone();
    let alpha = p.mode.has_alpha() || data.as_ref().is_some_and(|d| d.may_have_holes());
    if data.is_none()
        && (a.window.is_some()
            || a.transfer.is_some()
            || a.colormap.is_some()
            || a.channels.is_some()
            || a.invert)
    {
        bail!(
            "{}: --window, --transfer, --colormap, --channels and --invert apply to data pages (16-bit, signed, float, many channels); this page is {}",
            a.file.display(),
            p.mode
        );
    }
    if let (Some(d), Some(list)) = (&data, &a.channels)
        && let Some(bad) = list.iter().find(|&&c| c >= d.channels)
    {
        bail!(
            "{}: channel {bad} does not exist (the page has {} channels)",
            a.file.display(),
            d.channels
        );
    }
    let mut req = RenderRequest::new(a.page, region, a.scale);
    req.fast = a.fast;
    if let Some(job) = render::prepare(&image, &req, &a.levels.config())? {
        super::levels::run_with_bar(&image, job)?;
    }
    let budget = a.cache_mb.map_or_else(
        || default_budget().min(RENDER_CACHE_BYTES),
        |mb| (mb as usize).saturating_mul(1 << 20),
    );
    let cache = Arc::new(Mutex::new(PieceCache::new(budget)));
    let workers = a.workers.unwrap_or_else(Loader::default_workers);
    let loader = Loader::new(image.clone(), cache, workers, 4096);
    let compiled = match &data {
        Some(info) => {
            let mut mapping = Mapping::for_data(info);
            if let Some(list) = &a.channels {
                mapping.set_channels(list);
            }
            match a.window.unwrap_or(WindowArg::Auto(Percentiles::default())) {
                WindowArg::Fixed(lo, hi) => mapping.set_window(lo, hi),
                WindowArg::Auto(p) => {
                    let (mut st, _) = render::auto_stats(&loader, &req)?;
                    mapping.auto(&mut st, p, info);
                }
            }
            if let Some(t) = a.transfer {
                mapping.set_transfer(t);
            }
            if let Some(c) = a.colormap {
                mapping.colormap = c;
            }
            if a.invert {
                for ch in &mut mapping.channels {
                    ch.invert = true;
                }
            }
            if a.stats {
                for c in mapping.shown() {
                    let ch = &mapping.channels[c];
                    eprintln!(
                        "window {}: {} .. {} ({})",
                        info.names[c],
                        tessera::data::format_value(ch.lo),
                        tessera::data::format_value(ch.hi),
                        ch.transfer.name()
                    );
                }
            }
            Some(mapping.compile(info))
        }
        None => None,
    };
    let (ow, oh) = (
        region.width().div_ceil(a.scale),
        region.height().div_ceil(a.scale),
    );
    if u64::from(ow) * u64::from(oh) > STREAM_PIXELS {
        // A big output is rendered and encoded a band at a time (see `export`): memory stays
        // within the cache budget whatever the region's size.
        let export = tessera::export::ExportRequest {
            page: a.page,
            region,
            scale: a.scale,
            out: a.output.clone(),
            cache_bytes: budget,
            orient: tessera::orientation::Orientation::IDENTITY,
        };
        drop(loader);
        tessera::export::export_png(
            image.clone(),
            &export,
            compiled.as_ref(),
            &tessera::progress::Progress::new(),
        )?;
        if a.stats {
            eprintln!(
                "streamed {ow}x{oh} in bands of {} rows\nbytes read: {} in {} reads\ntime: {:.1} ms\npeak memory: {:.1} MB",
                tessera::export::BAND_ROWS,
                image.bytes_read(),
                image.read_calls(),
                start.elapsed().as_secs_f64() * 1000.0,
                stats::peak_rss_bytes() as f64 / 1e6
            );
        }
        return Ok(());
    }
    let (img, rstats) = render::render_mapped(&loader, req, compiled.as_ref())?;
    // Keep the checkpoints this render's pass found, even short of the stream's end: the
    // next render or open resumes from them.
    if let Some(ix) = &image.index {
        ix.keep_progress();
    }
    write_png(&a.output, &img, alpha).with_context(|| format!("writing {}", a.output.display()))?;
    if a.stats {
        eprintln!(
            "level: 1/{} ({})\ndescriptors read: {} (units {}, from cache {})\nbytes read: {} in {} reads (storage: {})\ntime: {:.1} ms\npeak memory: {:.1} MB",
            rstats.factor,
            rstats.source.map_or_else(String::new, |s| s.describe()),
            rstats.descriptors,
            rstats.units,
            rstats.from_cache,
            image.bytes_read(),
            image.read_calls(),
            stats::storage_read_bytes(),
            start.elapsed().as_secs_f64() * 1000.0,
            stats::peak_rss_bytes() as f64 / 1e6
        );
        if let Some(f) = image.source.fetch_summary() {
            eprintln!("{f}\ndescriptor bytes: {}", rstats.descriptor_bytes);
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
