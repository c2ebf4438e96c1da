//! `tessera info FILE`: the layout as a table or JSON (see `tessera::info`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tessera::{OpenImage, info, levels};

use super::LevelArgs;

#[derive(Debug, Args)]
pub struct InfoArgs {
    file: PathBuf,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    /// Data pages: min, max, mean and percentiles of each channel, from the coarsest level
    #[arg(long)]
    stats: bool,
    /// The page to describe
    #[arg(long, value_name = "P", default_value_t = 0)]
    page: u32,
    #[command(flatten)]
    levels: LevelArgs,
}

pub fn run(a: InfoArgs) -> Result<()> {
    let image = OpenImage::open(&a.file)?;
    let p = image.page(a.page)?;
    if a.stats && p.data.is_none() {
        anyhow::bail!(
            "{}: --stats describes data pages (16-bit, signed, float, many channels); this page is {}",
            a.file.display(),
            p.mode
        );
    }
    levels::attach_existing(&image, &a.levels.config());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let page = a.page as usize;
    let written = if a.json {
        info::write_json(&mut out, &image, page)
    } else {
        info::write_table(&mut out, &a.file.display().to_string(), &image, page)
    };
    if a.stats && written.is_ok() {
        write_stats(&mut out, &image, a.page)?;
    }
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `tessera info big.tif | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// `--stats`: per channel of a data page, from the coarsest level (a reduced page, a built
/// level or a subsampled preview; the page itself when it has none).
fn write_stats(
    out: &mut impl Write,
    image: &std::sync::Arc<OpenImage>,
    page: u32,
) -> anyhow::Result<()> {
    let p = image.page(page)?;
    let Some(info) = p.data.clone() else {
        anyhow::bail!(
            "--stats describes data pages (16-bit, signed, float, many channels); this page is {}",
            p.mode
        );
    };
    let full = tessera::format::Extent::new(0, 0, p.width, p.height);
    let mut req = tessera::render::RenderRequest::new(page, full, u32::MAX / 2);
    req.fast = true;
    let cache = std::sync::Arc::new(std::sync::Mutex::new(tessera::cache::PieceCache::new(
        64 << 20,
    )));
    let loader = tessera::loader::Loader::new(
        image.clone(),
        cache,
        tessera::loader::Loader::default_workers(),
        4096,
    );
    let (mut stats, level) = tessera::render::auto_stats(&loader, &req)?;
    let f = tessera::data::format_value;
    writeln!(
        out,
        "\nstatistics from level 1/{} ({}, {}x{}):",
        level.factor,
        level.source.describe(),
        level.width,
        level.height
    )?;
    writeln!(
        out,
        "  {:<16} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>10}",
        "channel", "min", "max", "mean", "p0.1", "p50", "p99.9", "no-data"
    )?;
    for (c, name) in info.names.iter().enumerate() {
        let ch = &mut stats.channels[c];
        let (min, max) = (ch.min, ch.max);
        let mean = ch.mean();
        let pct = |ch: &mut tessera::data::stats::ChannelStats, p| {
            ch.percentile(p).map_or("-".to_string(), f)
        };
        let (p1, p50, p999) = (pct(ch, 0.1), pct(ch, 50.0), pct(ch, 99.9));
        let known = ch.count > 0;
        writeln!(
            out,
            "  {:<16} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12} {:>10}",
            name,
            if known { f(min) } else { "-".into() },
            if known { f(max) } else { "-".into() },
            mean.map_or("-".to_string(), f),
            p1,
            p50,
            p999,
            ch.nodata
        )?;
    }
    Ok(())
}
