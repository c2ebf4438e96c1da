//! `tessera levels FILE`: build the zoomed-out levels with a progress bar.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use tessera::OpenImage;
use tessera::levels::{self, BuildJob, BuildSummary, BuiltLevels, Need};

use super::LevelArgs;

#[derive(Debug, Args)]
pub struct LevelsArgs {
    file: PathBuf,
    /// Build again even when kept levels exist
    #[arg(long)]
    rebuild: bool,
    #[command(flatten)]
    levels: LevelArgs,
}

pub fn run(a: LevelsArgs) -> Result<()> {
    let path = a.file.display();
    let image = OpenImage::open(&a.file)?;
    let job = match levels::prepare(&image, &a.levels.config(), a.rebuild)? {
        Need::OwnLevels(n) => {
            println!("{path}: the file has levels of its own ({n} in all); nothing to build");
            return Ok(());
        }
        Need::TooSmall { width, height } => {
            println!("{path}: {width}x{height} is small enough to show whole; no levels needed");
            return Ok(());
        }
        Need::Kept => {
            if let Some(built) = image.built_levels() {
                println!(
                    "{path}: levels already built: {} ({})",
                    built.image.path().display(),
                    describe(built)
                );
            }
            return Ok(());
        }
        Need::Build(job) => job,
    };
    let summary = run_with_bar(&image, job)?;
    let built = image
        .built_levels()
        .ok_or_else(|| anyhow::anyhow!("internal: levels not attached"))?;
    let secs = summary.elapsed.as_secs_f64();
    println!(
        "{path}: built {} levels in {:.2} s: read {:.0} MB ({:.0} MB/s), wrote {:.0} MB{}",
        summary.levels,
        secs,
        summary.bytes_read as f64 / 1e6,
        summary.bytes_read as f64 / 1e6 / secs.max(1e-9),
        summary.bytes_written as f64 / 1e6,
        match &summary.kept_at {
            Some(p) => format!(", kept in {}", p.display()),
            None => " (not kept)".into(),
        }
    );
    println!("  {}", describe(built));
    Ok(())
}

/// Run a level build in the foreground with a progress bar (`levels`, and a render that
/// builds levels first).
pub fn run_with_bar(image: &OpenImage, job: BuildJob) -> Result<BuildSummary, tessera::Error> {
    // Nothing else reads the file in this process: let the kernel read ahead of the pass.
    image.source.advise_sequential();
    let status = job.status.clone();
    super::progress_bar::with_bar("levels", &status.progress, image.source.len(), || {
        job.run(&|| false, &|| ())
    })
}

fn describe(built: &BuiltLevels) -> String {
    built
        .plan
        .levels
        .iter()
        .map(|l| format!("1/{} {}x{}", l.factor, l.width, l.height))
        .collect::<Vec<_>>()
        .join(", ")
}
