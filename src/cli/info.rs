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
    /// The page to describe
    #[arg(long, value_name = "P", default_value_t = 0)]
    page: u32,
    #[command(flatten)]
    levels: LevelArgs,
}

pub fn run(a: InfoArgs) -> Result<()> {
    let image = OpenImage::open(&a.file)?;
    image.page(a.page)?;
    levels::attach_existing(&image, &a.levels.config());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let page = a.page as usize;
    let written = if a.json {
        info::write_json(&mut out, &image, page)
    } else {
        info::write_table(&mut out, &a.file.display().to_string(), &image, page)
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `tessera info big.tif | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing to stdout"),
    }
}
