//! `tessera render FILE --region X,Y,W,H [--scale N] -o OUT.png`: the library picks the level
//! (and builds levels first when a full-quality render would read most of a big file).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use tessera::cache::{PieceCache, default_budget};
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
    /// The PNG to write
    #[arg(short = 'o', long = "output", value_name = "OUT.png")]
    output: PathBuf,
    #[command(flatten)]
    levels: LevelArgs,
}

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
    let alpha = p.mode.has_alpha();
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
    let (img, rstats) = render::render(&loader, req)?;
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
