//! The `tessera` command line: the viewer window (`tessera [FILE]`), `info`, `render`,
//! `bench-view` and `synth`. Errors print as one line and exit non-zero.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tessera::cache::{PieceCache, default_budget};
use tessera::loader::Loader;
use tessera::render::{RenderRequest, parse_region, region_extent, render, write_png};
use tessera::{OpenImage, info, stats};

/// Default cache budget for `render`.
const RENDER_CACHE_BYTES: usize = 128 << 20;

const USAGE: &str = "usage:
  tessera [FILE] [--cache-mb M]          open the viewer (the bundled sample without FILE)
  tessera bench-view FILE [--cache-mb M] drive the viewer along a scripted path, print JSON
  tessera info FILE [--json] [--page P]
  tessera render FILE --region X,Y,W,H [--scale N] [--page P] [--cache-mb M] [--stats] -o OUT.png
  tessera synth KIND WIDTH HEIGHT OUT   (KIND: ppm pgm bmp tiff-strip tiff-tiled-rgba)";

fn main() -> ExitCode {
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
        "synth" => cmd_synth(rest),
        "bench-view" => cmd_view(rest, true),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other if other.starts_with("--") && other != "--cache-mb" => {
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
    let usage = if bench {
        "usage: tessera bench-view FILE [--cache-mb M]"
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

fn cmd_info(args: &[String]) -> Result<()> {
    let mut a = Args::new(args);
    let json = a.flag("--json");
    let page: u32 = a.number("--page")?.unwrap_or(0);
    let pos = a.positionals(1, "usage: tessera info FILE [--json] [--page P]")?;
    let image = OpenImage::open(Path::new(pos[0]))?;
    image.page(page)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let written = if json {
        info::write_json(&mut out, &image.layout, page as usize)
    } else {
        info::write_table(
            &mut out,
            pos[0],
            image.source.len(),
            &image.layout,
            page as usize,
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
    let loader = Loader::new(
        image.clone(),
        cache,
        workers.unwrap_or_else(Loader::default_workers),
        4096,
    );
    let (img, rstats) = render(
        &loader,
        RenderRequest {
            page,
            region,
            scale,
        },
    )?;
    write_png(&out, &img, alpha).with_context(|| format!("writing {}", out.display()))?;
    if stats_wanted {
        eprintln!(
            "descriptors read: {} (units {}, from cache {})\nbytes read: {} in {} reads (storage: {})\ntime: {:.1} ms\npeak memory: {:.1} MB",
            rstats.descriptors,
            rstats.units,
            rstats.from_cache,
            image.source.bytes_read(),
            image.source.read_calls(),
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
