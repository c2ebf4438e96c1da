//! `tessera index FILE`: one pass over a PNG/JPEG stream to record its checkpoints, with a
//! progress bar that follows the bands reached.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use tessera::OpenImage;
use tessera::progress::Progress;

use super::LevelArgs;

#[derive(Debug, Args)]
pub struct IndexArgs {
    file: PathBuf,
    /// Run the pass again even when a kept index exists
    #[arg(long)]
    rebuild: bool,
    #[command(flatten)]
    levels: LevelArgs,
}

pub fn run(a: IndexArgs) -> Result<()> {
    let path = &a.file;
    let cfg = a.levels.config();
    let image = OpenImage::open(path)?;
    let Some(ix) = &image.index else {
        println!(
            "{}: no stream to index (every descriptor is read on its own already)",
            path.display()
        );
        return Ok(());
    };
    if let Some(dir) = &cfg.dir {
        let kept = tessera::index::file_for(dir, path);
        if a.rebuild
            && let Err(e) = std::fs::remove_file(&kept)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("cannot delete {}: {e}", kept.display());
        }
        if image.attach_index(dir) {
            println!(
                "{}: already indexed: {} checkpoints for {} bands in {}",
                path.display(),
                ix.checkpoints(),
                ix.bands(),
                kept.display()
            );
            return Ok(());
        }
    }
    image.source.advise_sequential();
    let page = image.page(0)?;
    let progress = Progress::new();
    let done = AtomicBool::new(false);
    let start = Instant::now();
    let bands = ix.bands();
    let result = super::progress_bar::with_bar("index", &progress, image.source.len(), || {
        std::thread::scope(|scope| {
            // The bar follows the bands the pass has reached.
            scope.spawn(|| {
                while !done.load(Ordering::Acquire) {
                    let _ = progress.update(ix.reached(), bands);
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            let r = tessera::decode::stream::index_pass(&image.source, page, ix, &|| false);
            if r.is_ok() {
                let _ = progress.update(bands, bands);
            }
            done.store(true, Ordering::Release);
            r
        })
    });
    result.map_err(|e| image.descriptor_error(ix.reached(), e))?;
    println!(
        "{}: {} checkpoints for {} bands in {:.2} s ({:.1} KB){}",
        path.display(),
        ix.checkpoints(),
        bands,
        start.elapsed().as_secs_f64(),
        ix.memory() as f64 / 1024.0,
        match &cfg.dir {
            Some(d) => format!(", kept in {}", tessera::index::file_for(d, path).display()),
            None => " (not kept)".into(),
        }
    );
    Ok(())
}
