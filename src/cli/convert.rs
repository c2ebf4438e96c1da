//! `tessera convert IN OUT.tif`: any image Tessera reads to a tiled (Big)TIFF, optionally with
//! a pyramid, streamed with a progress bar (see `tessera::convert`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use tessera::OpenImage;
use tessera::convert::{Compression, ConvertRequest, convert};
use tessera::display::Mapping;
use tessera::progress::Progress;

#[derive(Debug, Args)]
pub struct ConvertArgs {
    input: PathBuf,
    /// The TIFF to write
    output: PathBuf,
    /// Tile side in pixels (a multiple of 16)
    #[arg(long, value_name = "N", default_value_t = 256)]
    tile: u32,
    /// Tile compression: deflate, zstd, jpeg[:Q] (quality 1-100, default 85) or none
    #[arg(long, value_name = "C", default_value = "deflate", value_parser = Compression::parse)]
    compression: Compression,
    /// Data pages (16-bit, signed, float...): write the stored samples (native) or the
    /// displayed colours with auto contrast (display)
    #[arg(long, value_name = "S", default_value = "native", value_parser = ["native", "display"])]
    samples: String,
    /// Shrink the output by this integer factor (box filter; 1 = full resolution)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    scale: u32,
    /// Turn the output as the file's Orientation tag says (auto), or by a tag value 1-8
    #[arg(long, value_name = "O", default_value = "1")]
    orientation: String,
    /// Add reduced-resolution pages (2x2 box filter) down to one tile
    #[arg(long)]
    pyramid: bool,
    /// Only this region, in full-resolution pixels
    #[arg(long, value_name = "X,Y,W,H")]
    region: Option<String>,
    #[arg(long, value_name = "P", default_value_t = 0)]
    page: u32,
    /// CPU cache budget in MB
    #[arg(long, value_name = "M", default_value_t = 64)]
    cache_mb: u64,
}

pub fn run(a: ConvertArgs) -> Result<()> {
    let start = Instant::now();
    let image = OpenImage::open(&a.input)?;
    let remote = a
        .input
        .to_str()
        .is_some_and(tessera::source::remote::is_url);
    if !remote
        && a.output.exists()
        && std::fs::canonicalize(&a.output)? == std::fs::canonicalize(&a.input)?
    {
        bail!(
            "{}: refusing to write the output over the input",
            a.output.display()
        );
    }
    let p = image.page(a.page)?.clone();
    let region = match &a.region {
        None => p.extent(),
        Some(r) => match tessera::render::parse_extent(r) {
            Some(e) => e,
            None => bail!("--region takes X,Y,W,H, not {r:?}"),
        },
    };
    let native = a.samples == "native";
    let orient = match a.orientation.as_str() {
        "auto" => p.orientation,
        v => match v.parse::<u16>() {
            Ok(n @ 1..=8) => tessera::orientation::Orientation::from_exif(n),
            _ => bail!("--orientation takes auto or 1-8, not {v:?}"),
        },
    };
    // Data pages written as displayed: auto contrast over the whole page.
    let compiled = match &p.data {
        Some(info) if !native => {
            let loader = tessera::loader::Loader::new(
                image.clone(),
                std::sync::Arc::new(std::sync::Mutex::new(tessera::cache::PieceCache::new(
                    64 << 20,
                ))),
                2,
                4096,
            );
            let req = tessera::render::RenderRequest::new(a.page, region, 1);
            let mut m = Mapping::for_data(info);
            let (mut st, _) = tessera::render::auto_stats(&loader, &req)?;
            m.auto(&mut st, tessera::display::Percentiles::default(), info);
            Some(m.compile(info))
        }
        _ => None,
    };
    let req = ConvertRequest {
        page: a.page,
        region,
        scale: a.scale,
        orient,
        tile: a.tile,
        compression: a.compression,
        pyramid: a.pyramid,
        native,
        out: a.output.clone(),
        cache_bytes: (a.cache_mb as usize).saturating_mul(1 << 20),
    };
    let progress = Progress::new();
    let total = region.pixels() * 3;
    super::progress_bar::with_bar("convert", &progress, total, || {
        convert(image.clone(), &req, compiled.as_ref(), &progress)
    })?;
    eprintln!(
        "{}: {}x{} in {:.2} s",
        a.output.display(),
        region.width(),
        region.height(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
