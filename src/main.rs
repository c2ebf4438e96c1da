//! The `tessera` command line: the viewer window (`tessera [FILE]`), `info`, `render`,
//! `bench-view` and `synth`. Errors print as one line and exit non-zero.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tessera::cache::{PieceCache, default_budget};
use tessera::levels::{self, BuildState, LevelsConfig};
use tessera::loader::Loader;
use tessera::render::{
    RenderRequest, parse_region, pick_built_level, pick_level, region_extent, render, write_png,
};
use tessera::{OpenImage, info, stats};

/// Default cache budget for `render`.
const RENDER_CACHE_BYTES: usize = 128 << 20;

const USAGE: &str = "usage:
  tessera [FILE] [--cache-mb M]          open the viewer (the bundled sample without FILE)
  tessera bench-view FILE [--cache-mb M] [--fit-only]
                                        drive the viewer along a scripted path, print JSON
  tessera info FILE [--json] [--page P]
  tessera render FILE --region X,Y,W,H [--scale N] [--page P] [--cache-mb M] [--stats] -o OUT.png
  tessera levels FILE [--rebuild]       build the zoomed-out levels (kept for the viewer)
  tessera index FILE [--rebuild]        record a PNG/JPEG's checkpoints (kept with the levels)
  level options (viewer, info, render, levels):
    --levels-dir DIR  where levels are kept (default ~/.cache/tessera/levels)
    --levels-cap-mb M total size of kept levels (default 4096)
    --no-keep-levels  build into a temporary file, keep nothing
  tessera synth KIND WIDTH HEIGHT OUT   (KIND: ppm pgm bmp tiff-strip tiff-tiled-rgba)";

fn main() -> ExitCode {
    tessera::bench_view::mark_process_start();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error chain joined, no backtrace.
            let msg = format!("{e:#}").replace('\n', " ");
            let _ = writeln!(std::io::stderr(), "tessera: {msg}");
            ExitCode::from(2)
        }
    }
}

/// Minimal flag parsing: `--name value`, `--flag`, and positionals.
struct Args<'a> {
    rest: Vec<&'a str>,
}

impl<'a> Args<'a> {
    fn new(args: &'a [String]) -> Self {
        Self {
            rest: args.iter().map(String::as_str).collect(),
        }
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| *a != name);
        before != self.rest.len()
    }

    fn value(&mut self, names: &[&str]) -> Result<Option<&'a str>> {
        let Some(i) = self.rest.iter().position(|a| names.contains(a)) else {
            return Ok(None);
        };
        if i + 1 >= self.rest.len() {
            bail!("{} needs a value", names[0]);
        }
        let v = self.rest.remove(i + 1);
        self.rest.remove(i);
        Ok(Some(v))
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>> {
        match self.value(&[name])? {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("{name} takes a number, not {v:?}")),
        }
    }

    fn positionals_upto(self, n: usize, usage: &str) -> Result<Vec<&'a str>> {
        if let Some(unknown) = self.rest.iter().find(|a| a.starts_with("--")) {
            bail!("unknown option {unknown}\n{usage}");
        }
        if self.rest.len() > n {
            bail!("{usage}");
        }
        Ok(self.rest)
    }

    fn positionals(self, n: usize, usage: &str) -> Result<Vec<&'a str>> {
        if let Some(unknown) = self.rest.iter().find(|a| a.starts_with("--")) {
            bail!("unknown option {unknown}\n{usage}");
        }
        if self.rest.len() != n {
            bail!("{usage}");
        }
        Ok(self.rest)
    }
}

fn run(args: &[String]) -> Result<()> {
    let Some((cmd, rest)) = args.split_first() else {
        return cmd_view(args, false);
    };
    match cmd.as_str() {
        "info" => cmd_info(rest),
        "render" => cmd_render(rest),
        "levels" => cmd_levels(rest),
        "index" => cmd_index(rest),
        "synth" => cmd_synth(rest),
        "bench-view" => cmd_view(rest, true),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other
            if other.starts_with("--")
                && !matches!(
                    other,
                    "--cache-mb" | "--levels-dir" | "--levels-cap-mb" | "--no-keep-levels"
                ) =>
        {
            bail!("unknown option {other}\n{USAGE}")
        }
        _ => cmd_view(args, false),
    }
}

/// The sample shown when no file is given: embedded so the binary works from any directory.
const SAMPLE: &[u8] = include_bytes!("../assets/sample.tif");

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

fn cmd_view(args: &[String], bench: bool) -> Result<()> {
    let mut a = Args::new(args);
    let cache_mb: Option<u64> = a.number("--cache-mb")?;
    let bench_fit_only = bench && a.flag("--fit-only");
    let cfg = levels_config(&mut a)?;
    // Level options on the command line override the viewer's settings for this run.
    let levels = (cfg != LevelsConfig::default()).then_some(cfg);
    let usage = if bench {
        "usage: tessera bench-view FILE [--cache-mb M] [--fit-only]"
    } else {
        "usage: tessera [FILE] [--cache-mb M]"
    };
    let rest = a.positionals_upto(1, usage)?;
    let file = match rest.first() {
        Some(f) => {
            let p = PathBuf::from(f);
            // Fail fast, in one line, for a path that cannot be opened at all.
            std::fs::metadata(&p).with_context(|| format!("{}", p.display()))?;
            Some(p)
        }
        None if bench => bail!("{usage}"),
        None => Some(sample_path()?),
    };
    let start = tessera::app::StartOptions {
        file,
        cache_mb,
        bench,
        bench_fit_only,
        levels,
    };
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        persist_window: !bench,
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

/// The level options shared by every command.
fn levels_config(a: &mut Args) -> Result<LevelsConfig> {
    let mut cfg = LevelsConfig::default();
    if let Some(d) = a.value(&["--levels-dir"])? {
        cfg.dir = Some(PathBuf::from(d));
    }
    if let Some(mb) = a.number::<u64>("--levels-cap-mb")? {
        cfg.cap_bytes = mb.saturating_mul(1 << 20);
    }
    if a.flag("--no-keep-levels") {
        cfg.dir = None;
    }
    Ok(cfg)
}

fn cmd_info(args: &[String]) -> Result<()> {
    let mut a = Args::new(args);
    let json = a.flag("--json");
    let page: u32 = a.number("--page")?.unwrap_or(0);
    let cfg = levels_config(&mut a)?;
    let pos = a.positionals(1, "usage: tessera info FILE [--json] [--page P]")?;
    let image = OpenImage::open(Path::new(pos[0]))?;
    image.page(page)?;
    levels::attach_existing(&image, &cfg);
    let built = image.levels().filter(|_| page == 0);
    let index = image.index.as_ref().filter(|_| page == 0);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let written = if json {
        info::write_json(&mut out, &image.layout, page as usize, built, index)
    } else {
        info::write_table(
            &mut out,
            pos[0],
            image.source.len(),
            &image.layout,
            page as usize,
            built,
            index,
        )
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `tessera info big.tif | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

fn cmd_render(args: &[String]) -> Result<()> {
    let usage = "usage: tessera render FILE --region X,Y,W,H [--scale N] [--page P] [--cache-mb M] [--stats] -o OUT.png";
    let mut a = Args::new(args);
    let stats_wanted = a.flag("--stats");
    let region = a
        .value(&["--region"])?
        .ok_or_else(|| anyhow::anyhow!("--region X,Y,W,H is required\n{usage}"))?;
    let scale: u32 = a.number("--scale")?.unwrap_or(1);
    let page: u32 = a.number("--page")?.unwrap_or(0);
    let cache_mb: Option<u64> = a.number("--cache-mb")?;
    let workers: Option<usize> = a.number("--workers")?;
    let cfg = levels_config(&mut a)?;
    let out = a
        .value(&["-o", "--output"])?
        .ok_or_else(|| anyhow::anyhow!("-o OUT.png is required\n{usage}"))?;
    let pos = a.positionals(1, usage)?;
    if scale == 0 {
        bail!("--scale must be at least 1");
    }
    let input = PathBuf::from(pos[0]);
    let out = PathBuf::from(out);
    let start = Instant::now();
    let image = OpenImage::open(&input)?;
    if same_file(&input, &out) {
        bail!(
            "{}: refusing to write the output over the input",
            out.display()
        );
    }
    let region = parse_region(region)
        .ok_or_else(|| anyhow::anyhow!("--region takes X,Y,W,H, not {region:?}"))?;
    let p = image.page(page)?;
    let region = region_extent(&input, region, p.width, p.height)?;
    let alpha = p.mode.has_alpha();
    // A one-shot render never revisits a piece: a small cache is enough (the viewer's default
    // is a share of RAM).
    let budget = cache_mb.map_or_else(
        || default_budget().min(RENDER_CACHE_BYTES),
        |mb| (mb as usize).saturating_mul(1 << 20),
    );
    let cache = Arc::new(Mutex::new(PieceCache::new(budget)));
    let mut req = RenderRequest {
        page,
        region,
        scale,
    };
    // A kept checkpoint index lets a PNG/JPEG render start near its region.
    if let Some(dir) = &cfg.dir {
        image.attach_index(dir);
    }
    // Built levels serve a zoomed-out render when the file's own levels do not.
    let mut source = image.clone();
    if scale > 1 && page == 0 && pick_level(&image.layout, req) == req {
        levels::attach_existing(&image, &cfg);
        if let Some(built) = image.levels()
            && let Some(r) = pick_built_level(built, req)
        {
            source = built.image.clone();
            req = r;
        }
    }
    let loader = Loader::new(
        source,
        cache,
        workers.unwrap_or_else(Loader::default_workers),
        4096,
    );
    let (img, rstats) = render(&loader, req)?;
    write_png(&out, &img, alpha).with_context(|| format!("writing {}", out.display()))?;
    if stats_wanted {
        eprintln!(
            "descriptors read: {} (units {}, from cache {})\nbytes read: {} in {} reads (storage: {})\ntime: {:.1} ms\npeak memory: {:.1} MB",
            rstats.descriptors,
            rstats.units,
            rstats.from_cache,
            loader.image().source.bytes_read(),
            loader.image().source.read_calls(),
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

fn cmd_synth(args: &[String]) -> Result<()> {
    let a = Args::new(args);
    let pos = a.positionals(4, "usage: tessera synth KIND WIDTH HEIGHT OUT")?;
    let w: u32 = pos[1].parse().context("WIDTH")?;
    let h: u32 = pos[2].parse().context("HEIGHT")?;
    let kind = tessera::synth::Kind::parse(pos[0])
        .ok_or_else(|| anyhow::anyhow!("unknown KIND {:?}", pos[0]))?;
    tessera::synth::write_file(kind, w, h, Path::new(pos[3]))
        .with_context(|| format!("writing {}", pos[3]))
}

/// One pass over a PNG/JPEG stream to record its checkpoints, with a progress bar.
fn cmd_index(args: &[String]) -> Result<()> {
    let usage = "usage: tessera index FILE [--rebuild] [--levels-dir DIR] [--no-keep-levels]";
    let mut a = Args::new(args);
    let rebuild = a.flag("--rebuild");
    let cfg = levels_config(&mut a)?;
    let pos = a.positionals(1, usage)?;
    let path = Path::new(pos[0]);
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
        if rebuild {
            let _ = std::fs::remove_file(&kept);
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
    let page = &image.layout.pages[0];
    let progress = tessera::progress::Progress::new();
    let done = std::sync::atomic::AtomicBool::new(false);
    let start = Instant::now();
    let bands = ix.bands();
    std::thread::scope(|scope| {
        scope.spawn(|| progress_bar("index", &progress, &done, start, image.source.len()));
        // The bar follows the bands the pass has reached.
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let _ = progress.update(ix.reached(), bands);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        let jpeg = matches!(
            page.storage,
            tessera::format::Storage::Stream {
                codec: tessera::format::Codec::Jpeg,
                ..
            }
        );
        let r = if jpeg {
            tessera::decode::stream::index_jpeg(&image.source, page, ix, &|| false)
        } else {
            // PNG: the pass decodes every row (keeping none) and checkpoints each band.
            tessera::decode::stream::decode_bands(
                &image.source,
                page,
                Some(ix),
                0,
                bands.saturating_sub(1),
                &mut |_| false,
                &mut |_, _| {},
                &|| false,
            )
        };
        if r.is_ok() {
            let _ = progress.update(bands, bands);
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        r
    })
    .map_err(|e| image.descriptor_error(ix.reached(), e))?;
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

fn cmd_levels(args: &[String]) -> Result<()> {
    let usage = "usage: tessera levels FILE [--rebuild] [--levels-dir DIR] [--levels-cap-mb M] [--no-keep-levels]";
    let mut a = Args::new(args);
    let rebuild = a.flag("--rebuild");
    let cfg = levels_config(&mut a)?;
    let pos = a.positionals(1, usage)?;
    let path = Path::new(pos[0]);
    let image = OpenImage::open(path)?;
    let page = &image.layout.pages[0];
    if image.layout.levels(0).len() > 1 {
        println!(
            "{}: the file has levels of its own ({} in all); nothing to build",
            path.display(),
            image.layout.levels(0).len() - 1
        );
        return Ok(());
    }
    if levels::plan::factors(page.width, page.height).is_empty() {
        println!(
            "{}: {}x{} is small enough to show whole; no levels needed",
            path.display(),
            page.width,
            page.height
        );
        return Ok(());
    }
    if rebuild && let Some(dir) = &cfg.dir {
        let _ = std::fs::remove_file(levels::sidecar::file_for(dir, path, 0));
    }
    if levels::attach_existing(&image, &cfg)
        && let Some(built) = image.levels()
    {
        println!(
            "{}: levels already built: {} ({})",
            path.display(),
            built.image.path().display(),
            describe_levels(built)
        );
        return Ok(());
    }
    let job = levels::prepare_build(&image, &cfg)?;
    // Nothing else reads the file in this process: let the kernel read ahead of the pass.
    image.source.advise_sequential();
    let status = job.status.clone();
    let done = std::sync::atomic::AtomicBool::new(false);
    let start = Instant::now();
    let total = image.source.len();
    let summary = std::thread::scope(|scope| {
        scope.spawn(|| progress_bar("levels", &status.progress, &done, start, total));
        let r = job.run(&|| false, &|| ());
        done.store(true, std::sync::atomic::Ordering::Release);
        r
    })?;
    let built = image
        .levels()
        .ok_or_else(|| anyhow::anyhow!("internal: levels not attached"))?;
    let secs = summary.elapsed.as_secs_f64();
    println!(
        "{}: built {} levels in {:.2} s: read {:.0} MB ({:.0} MB/s), wrote {:.0} MB{}",
        path.display(),
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
    println!("  {}", describe_levels(built));
    debug_assert_eq!(built.status.state(), BuildState::Complete);
    Ok(())
}

fn describe_levels(built: &levels::BuiltLevels) -> String {
    built
        .plan
        .levels
        .iter()
        .map(|l| format!("1/{} {}x{}", l.factor, l.width, l.height))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A progress bar on stderr: redrawn in place on a terminal, a line every 10 % otherwise.
fn progress_bar(
    label: &str,
    progress: &tessera::progress::Progress,
    done: &std::sync::atomic::AtomicBool,
    start: Instant,
    total: u64,
) {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let mut last_decile = 0;
    let mut ticks = 0u32;
    while !done.load(std::sync::atomic::Ordering::Acquire) {
        // Wake often (the command should not wait on the bar), draw every 100 ms.
        std::thread::sleep(std::time::Duration::from_millis(10));
        ticks += 1;
        if !ticks.is_multiple_of(10) {
            continue;
        }
        let f = progress.fraction().unwrap_or(0.0).clamp(0.0, 1.0);
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        let rate = f64::from(f) * total as f64 / 1e6 / secs;
        if tty {
            let filled = (f * 30.0) as usize;
            eprint!(
                "\r{label} [{}{}] {:3.0}% {:6.0} MB/s",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                f * 100.0,
                rate
            );
        } else if (f * 10.0) as u32 > last_decile {
            last_decile = (f * 10.0) as u32;
            eprintln!("{label} {:3.0}% {:.0} MB/s", f * 100.0, rate);
        }
    }
    // The final state, whatever the timing: 100% for a finished build.
    let f = progress.fraction().unwrap_or(0.0).clamp(0.0, 1.0);
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "{}{label} {:3.0}% {:.0} MB/s",
        if tty { "\r" } else { "" },
        f * 100.0,
        f64::from(f) * total as f64 / 1e6 / secs
    );
}
