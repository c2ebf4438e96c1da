//! `tessera [FILE]`: the viewer window (the bundled sample without a file), and
//! `tessera bench-view FILE`: the same window driven along a scripted path.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use tessera::levels::LevelsConfig;

use super::LevelArgs;

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The image to open (the bundled sample without one)
    file: Option<PathBuf>,
    /// CPU cache budget in MB [default: an eighth of RAM]
    #[arg(long, value_name = "M")]
    cache_mb: Option<u64>,
    /// Show this page of the file
    #[arg(long, value_name = "P")]
    page: Option<u32>,
    /// Centre the view here: pixels (or the image's units), and a zoom factor or percentage
    #[arg(long, value_name = "X,Y[,ZOOM]")]
    at: Option<String>,
    #[command(flatten)]
    levels: LevelArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    file: PathBuf,
    /// CPU cache budget in MB
    #[arg(long, value_name = "M")]
    cache_mb: Option<u64>,
    /// Stop at the first sharp fit-to-window picture
    #[arg(long)]
    fit_only: bool,
    #[command(flatten)]
    levels: LevelArgs,
}

pub fn run(a: ViewArgs) -> Result<()> {
    let file = match a.file {
        Some(p) => p,
        None => sample_path()?,
    };
    // The syntax is checked here; physical units are read once the image (and its pixel
    // size) is open.
    if let Some(text) = &a.at {
        use tessera::physical::{PixelSize, Unit};
        let ok = |unit| {
            let any = PixelSize::new(1.0, 1.0, unit, "");
            tessera::view::location::parse(text, any.as_ref())
        };
        ok(Unit::Metre)
            .or_else(|_| ok(Unit::Degree))
            .map_err(|e| anyhow::anyhow!("--at {e}"))?;
    }
    window(file, a.cache_mb, &a.levels, None, (a.page, a.at))
}

pub fn bench(a: BenchArgs) -> Result<()> {
    window(
        a.file,
        a.cache_mb,
        &a.levels,
        Some(a.fit_only),
        (None, None),
    )
}

/// The sample shown when no file is given: embedded so the binary works from any directory.
const SAMPLE: &[u8] = include_bytes!("../../assets/sample.tif");

fn sample_path() -> Result<PathBuf> {
    let dir = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tessera");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("sample.tif");
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(SAMPLE.len() as u64) {
        std::fs::write(&path, SAMPLE).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(path)
}

/// Open the window on `file`; `bench`: run the scripted path (`Some(fit_only)`).
fn window(
    file: PathBuf,
    cache_mb: Option<u64>,
    levels: &LevelArgs,
    bench: Option<bool>,
    (page, at): (Option<u32>, Option<String>),
) -> Result<()> {
    // Fail fast, in one line, for a path that cannot be opened at all (a URL is checked by
    // its first request, in the window).
    if !file.to_str().is_some_and(tessera::source::remote::is_url) {
        std::fs::metadata(&file).with_context(|| format!("{}", file.display()))?;
    }
    let cfg = levels.config();
    let start = tessera::app::StartOptions {
        file: Some(file),
        cache_mb,
        bench: bench.is_some(),
        bench_fit_only: bench.unwrap_or(false),
        // Level options on the command line override the viewer's settings for this run.
        levels: (cfg != LevelsConfig::default()).then_some(cfg),
        open_feedback_after: None,
        page,
        at,
        settings: None,
    };
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        persist_window: bench.is_none(),
        // The benchmark measures what a frame costs, not the wait for the display's swap.
        glow_options: eframe::egui_glow::GlowConfiguration {
            vsync: bench.is_none(),
            ..Default::default()
        },
        viewport: egui::ViewportBuilder::default()
            .with_title("Tessera")
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "Tessera",
        options,
        Box::new(move |cc| Ok(Box::new(tessera::app::TesseraApp::new(cc, start)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open a window: {e}"))
}
