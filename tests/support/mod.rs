//! Shared test support: the fixture writers ([`synth`]), writing fixtures to a temp dir,
//! rendering through the real engine, comparing with an independent decode, running the CLI.

pub mod encode;
pub mod server;
pub mod synth;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tessera::OpenImage;
use tessera::cache::PieceCache;
use tessera::format::Extent;
use tessera::loader::Loader;
use tessera::render::{RenderRequest, Rgba, render};

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Render `region` (x, y, w, h) of page 0 through the same loader the viewer uses.
pub fn render_region(
    path: &Path,
    region: (u32, u32, u32, u32),
    scale: u32,
) -> Result<Rgba, String> {
    render_page(path, 0, region, scale)
}

pub fn render_page(
    path: &Path,
    page: u32,
    region: (u32, u32, u32, u32),
    scale: u32,
) -> Result<Rgba, String> {
    render_page_window(path, page, region, scale, None)
}

/// Render a region of page 0 of an open image (a picture page).
pub fn render_image(
    image: &Arc<OpenImage>,
    (x, y, w, h): (u32, u32, u32, u32),
    scale: u32,
) -> Result<Rgba, String> {
    let cache = Arc::new(Mutex::new(PieceCache::new(8 << 20)));
    let loader = Loader::new(image.clone(), cache, 2, 1024);
    let req = RenderRequest::new(0, Extent::new(x, y, x + w, y + h), scale);
    render(&loader, req)
        .map(|(img, _)| img)
        .map_err(|e| e.to_string())
}

/// [`render_page`], a data page through a linear `window` (or auto contrast when `None`).
pub fn render_page_window(
    path: &Path,
    page: u32,
    (x, y, w, h): (u32, u32, u32, u32),
    scale: u32,
    window: Option<(f64, f64)>,
) -> Result<Rgba, String> {
    let image = OpenImage::open(path).map_err(|e| e.to_string())?;
    let data = image.page(page).map_err(|e| e.to_string())?.data.clone();
    let cache = Arc::new(Mutex::new(PieceCache::new(8 << 20)));
    let loader = Loader::new(image, cache, 2, 1024);
    let req = RenderRequest::new(page, Extent::new(x, y, x + w, y + h), scale);
    let result = match (data, window) {
        (Some(info), Some((lo, hi))) => {
            let mut m = tessera::display::Mapping::for_data(&info);
            m.set_window(lo, hi);
            tessera::render::render_mapped(&loader, req, Some(&m.compile(&info)))
        }
        _ => render(&loader, req),
    };
    result.map(|(img, _)| img).map_err(|e| e.to_string())
}

/// The image crate's decode of the whole file, as RGBA8.
pub fn reference(path: &Path) -> image::RgbaImage {
    image::ImageReader::open(path)
        .expect("open")
        .with_guessed_format()
        .expect("guess")
        .decode()
        .unwrap_or_else(|e| panic!("image crate cannot decode {}: {e}", path.display()))
        .to_rgba8()
}

/// Crop a reference image to a region, box-filtered by `scale` like `render`.
pub fn crop_scaled(
    reference: &dyn Fn(u32, u32) -> [u8; 4],
    (x, y, w, h): (u32, u32, u32, u32),
    scale: u32,
) -> Vec<u8> {
    let (ow, oh) = (w.div_ceil(scale), h.div_ceil(scale));
    let mut out = Vec::with_capacity((ow * oh * 4) as usize);
    for oy in 0..oh {
        for ox in 0..ow {
            let mut sum = [0u32; 4];
            let mut n = 0;
            for dy in 0..scale {
                for dx in 0..scale {
                    let (px, py) = (ox * scale + dx, oy * scale + dy);
                    if px < w && py < h {
                        let p = reference(x + px, y + py);
                        for c in 0..4 {
                            sum[c] += u32::from(p[c]);
                        }
                        n += 1;
                    }
                }
            }
            for s in sum {
                out.push(((s + n / 2) / n) as u8);
            }
        }
    }
    out
}

/// Regions that matter: whole image, interior, touching right and bottom edges, 1-pixel.
pub fn regions(w: u32, h: u32) -> Vec<(u32, u32, u32, u32)> {
    let mut r = vec![(0, 0, w, h)];
    if w > 4 && h > 4 {
        r.push((w / 3, h / 4, w / 2, h / 2));
        r.push((w - w / 3, h - h / 3, w / 3, h / 3)); // bottom-right corner
        r.push((1, h - 2, w - 1, 2)); // bottom edge
        r.push((w - 1, 0, 1, h)); // last column
        r.push((w / 2, h / 2, 1, 1));
    }
    r
}

/// Max and mean absolute difference.
pub fn diff(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len(), "sizes differ");
    let mut max = 0u8;
    let mut sum = 0u64;
    for (x, y) in a.iter().zip(b) {
        let d = x.abs_diff(*y);
        max = max.max(d);
        sum += u64::from(d);
    }
    (max, sum as f64 / a.len().max(1) as f64)
}

/// Render every region (scale 1 and 3) and compare with `reference(x, y)`.
pub fn check_against(
    path: &Path,
    w: u32,
    h: u32,
    reference: &dyn Fn(u32, u32) -> [u8; 4],
    max_tolerance: u8,
    mean_tolerance: f64,
) {
    check_against_window(path, (w, h), reference, max_tolerance, mean_tolerance, None);
}

/// [`check_against`], a data page shown through a linear `window`.
pub fn check_against_window(
    path: &Path,
    (w, h): (u32, u32),
    reference: &dyn Fn(u32, u32) -> [u8; 4],
    max_tolerance: u8,
    mean_tolerance: f64,
    window: Option<(f64, f64)>,
) {
    for region in regions(w, h) {
        for scale in [1, 3] {
            let got = render_page_window(path, 0, region, scale, window)
                .unwrap_or_else(|e| panic!("{}: render {region:?}: {e}", path.display()));
            let want = crop_scaled(reference, region, scale);
            let (max, mean) = diff(&got.data, &want);
            assert!(
                max <= max_tolerance && mean <= mean_tolerance,
                "{}: region {region:?} scale {scale}: max diff {max}, mean {mean:.3}",
                path.display()
            );
        }
    }
}

/// Compare with the image crate's decode of the same file.
pub fn check_against_image_crate(path: &Path, max_tolerance: u8, mean_tolerance: f64) {
    let r = reference(path);
    let (w, h) = r.dimensions();
    check_against(
        path,
        w,
        h,
        &|x, y| r.get_pixel(x, y).0,
        max_tolerance,
        mean_tolerance,
    );
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tessera"))
}

/// A levels folder for this test process: the CLI keeps PNG/JPEG indexes (and levels) in
/// the user's cache folder by default, which tests must leave alone.
fn levels_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// Run the CLI (its default levels folder a temporary one); returns (exit code, stdout,
/// stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    run_env(args, &[])
}

/// [`run`] with more environment variables (the range cache's folder, AWS keys...).
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("TESSERA_LEVELS_DIR", levels_dir())
        .envs(env.iter().copied())
        .output()
        .expect("run tessera");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `tessera render PATH --region REGION [EXTRA...] -o OUT`: the exit code and stderr.
pub fn render_cli(path: &Path, region: &str, out: &Path, extra: &[&str]) -> (i32, String) {
    let (p, o) = (
        path.to_str().expect("utf-8 path"),
        out.to_str().expect("utf-8 path"),
    );
    let mut args = vec!["render", p, "--region", region];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", o]);
    let (code, _, err) = run(&args);
    (code, err)
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write fixture");
    p
}

/// The `bytes read: N` line of `render --stats`.
pub fn stats_bytes_read(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("bytes read: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'bytes read' in {stderr}"))
}

/// Every native sample of page `page`, row-major, channels interleaved.
pub fn native(path: &Path, page: u32) -> (u32, u32, usize, Vec<f64>) {
    let image = OpenImage::open(path).expect("open");
    let p = image.page(page).expect("page").clone();
    let channels = p.data.as_ref().map_or(1, |d| d.channels);
    let (w, h) = (p.width, p.height);
    let mut out = vec![f64::NAN; w as usize * h as usize * channels];
    let mut cache = tessera::decode::tiff::DecoderCache::default();
    cache.set_source(&image.source);
    for unit in 0..p.unit_count() {
        let e = p.grid.unit_extent(unit);
        let piece =
            tessera::decode::decode_piece(&image.source, &p, unit, e, &mut cache).expect("decode");
        let tessera::decode::Native::Data { data, channels: c } = &piece.native else {
            panic!("{} is not decoded as data", path.display());
        };
        assert_eq!(*c, channels);
        for y in e.y0..e.y1 {
            for x in e.x0..e.x1 {
                let i = ((y - e.y0) * e.width() + (x - e.x0)) as usize;
                for k in 0..channels {
                    out[(y as usize * w as usize + x as usize) * channels + k] =
                        data.get(i * channels + k);
                }
            }
        }
    }
    (w, h, channels, out)
}
