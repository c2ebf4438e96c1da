//! Levels Tessera builds for files without any: the builder's output against a box filter of
//! an independent decode, the sidecar read back by the `tiff` crate, reuse on the next open,
//! rebuild after the file changes, cancellation, the size cap, and the command line.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::synth::{Kind, TiffSpec, pattern, write_file, write_tiff};
use crate::support::*;
use tessera::OpenImage;
use tessera::cache::PieceCache;
use tessera::format::Extent;
use tessera::levels::{self, BuildState, LevelsConfig};
use tessera::loader::Loader;
use tessera::render::{RenderRequest, render};

const W: u32 = 2100;
const H: u32 = 1301;

fn config(dir: &Path) -> LevelsConfig {
    LevelsConfig {
        dir: Some(dir.to_path_buf()),
        cap_bytes: 1 << 30,
        auto_pixels: 0,
    }
}

/// A temp dir holding one W x H fixture `name`, and the levels folder to use beside it.
fn one_image(kind: Kind, name: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempdir();
    let p = dir.path().join(name);
    write_file(kind, W, H, &p).expect("fixture");
    let store = dir.path().join("levels");
    (dir, p, store)
}

/// Build the levels of `path` through the library, as the viewer and `tessera levels` do.
fn build(path: &Path, cfg: &LevelsConfig) -> Arc<OpenImage> {
    let image = OpenImage::open(path).expect("open");
    let job = levels::prepare_build(&image, cfg).expect("prepare");
    job.run(&|| false, &|| ()).expect("build");
    image
}

/// Mean of each f x f block of an RGBA image (clipped at the edges), `spp` samples kept.
fn box_reference(img: &image::RgbaImage, f: u32, spp: usize) -> Vec<u8> {
    let (w, h) = img.dimensions();
    let mut out = Vec::new();
    for y in 0..h.div_ceil(f) {
        for x in 0..w.div_ceil(f) {
            for c in 0..spp {
                let (mut sum, mut n) = (0u64, 0u64);
                for yy in y * f..((y + 1) * f).min(h) {
                    for xx in x * f..((x + 1) * f).min(w) {
                        sum += u64::from(img.get_pixel(xx, yy)[c]);
                        n += 1;
                    }
                }
                out.push(((sum + n / 2) / n) as u8);
            }
        }
    }
    out
}

/// RGB levels are stored as RGBX (a reader may hand back 3 or 4 samples): the first `spp`
/// samples of each pixel of a `w`x`h` page.
fn first_samples(data: &[u8], w: u32, h: u32, spp: usize) -> Vec<u8> {
    let stored = data.len() / (w as usize * h as usize);
    data.chunks_exact(stored)
        .flat_map(|p| p[..spp].to_vec())
        .collect()
}

/// Every page of a sidecar, decoded by the `tiff` crate: (width, height, samples).
fn read_sidecar(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    let f = std::io::BufReader::new(std::fs::File::open(path).expect("open sidecar"));
    let mut d = tiff::decoder::Decoder::new(f).expect("sidecar is a TIFF");
    let mut pages = Vec::new();
    loop {
        let (w, h) = d.dimensions().expect("dimensions");
        let data = match d.read_image().expect("read page") {
            tiff::decoder::DecodingResult::U8(v) => v,
            other => panic!("8-bit samples expected, got {other:?}"),
        };
        pages.push((w, h, data));
        if !d.more_images() {
            break;
        }
        d.next_image().expect("next page");
    }
    pages
}

fn deflate(b: &[u8]) -> Vec<u8> {
    crate::support::encode::zlib(b, flate2::Compression::fast())
}

/// Fixtures of every kind of pass: raw read as stored (PPM, PGM, bottom-up BGR BMP), raw
/// through RGBA (16-bit PPM), compressed tiles (deflate TIFF with alpha), a stream (PNG).
fn fixtures(dir: &Path) -> Vec<(PathBuf, usize)> {
    let mut out = Vec::new();
    for (kind, name, spp) in [
        (Kind::Ppm, "rgb.ppm", 3),
        (Kind::Pgm, "gray.pgm", 1),
        (Kind::Bmp, "bgr.bmp", 3),
    ] {
        let p = dir.join(name);
        write_file(kind, W, H, &p).expect("write");
        out.push((p, spp));
    }
    // 16-bit PPM: not a layout the filter reads as stored.
    let mut ppm16 = format!("P6\n{W} {H}\n65535\n").into_bytes();
    for y in 0..H {
        for x in 0..W {
            for c in 0..3 {
                let v = u16::from(pattern(x, y, c)) * 256 + (x % 7) as u16;
                ppm16.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    out.push((write(dir, "deep.ppm", &ppm16), 3));
    let spec = TiffSpec::new(W, H, 4, 8, 2).tiles(256, 256);
    let mut spec = spec;
    spec.extra_samples = vec![2];
    let mut cur = Cursor::new(Vec::new());
    write_tiff(
        &mut cur,
        &spec,
        &|x, y, c| u16::from(pattern(x, y, c)),
        Some((8, &deflate)),
    )
    .expect("tiff");
    out.push((write(dir, "rgba.tif", &cur.into_inner()), 4));
    let png = dir.join("rgb.png");
    image::RgbImage::from_fn(W, H, |x, y| {
        image::Rgb([pattern(x, y, 0), pattern(x, y, 1), pattern(x, y, 2)])
    })
    .save(&png)
    .expect("png");
    out.push((png, 3));
    out
}

#[test]
fn built_levels_are_the_box_filter_of_the_image() {
    let dir = tempdir();
    let cache = dir.path().join("levels");
    let cfg = config(&cache);
    for (path, spp) in fixtures(dir.path()) {
        let image = build(&path, &cfg);
        let built = image.built_levels().expect("attached");
        assert_eq!(built.status.state(), BuildState::Complete);
        let kept = built.kept_at.clone().expect("kept");
        let pages = read_sidecar(&kept);
        assert_eq!(
            pages.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
            vec![(1050, 651), (525, 326), (263, 163)],
            "{}",
            path.display()
        );
        let full = reference(&path);
        for (i, (pw, ph, data)) in pages.iter().enumerate() {
            let f = 2u32 << i;
            let want = box_reference(&full, f, spp);
            let data = first_samples(data, *pw, *ph, spp);
            let (max, mean) = diff(&data, &want);
            assert!(
                max == 0,
                "{} level 1/{f}: max {max}, mean {mean}",
                path.display()
            );
        }
    }
}

/// JPEG levels start from libjpeg's DCT scaling (1/2), not from full pixels: close to the box
/// filter of a full decode (odd sizes included), and the same pass records the checkpoints.
#[test]
fn jpeg_levels_come_from_dct_scaling_and_index_the_scan() {
    let dir = tempdir();
    let cfg = config(&dir.path().join("levels"));
    for (name, progressive_free_gray) in [("rgb.jpg", false), ("gray.jpg", true)] {
        let p = dir.path().join(name);
        let img = image::RgbImage::from_fn(W, H, |x, y| {
            let g = pattern(x, y, 0);
            if progressive_free_gray {
                image::Rgb([g, g, g])
            } else {
                image::Rgb([g, pattern(x, y, 1), pattern(x, y, 2)])
            }
        });
        let file = std::fs::File::create(&p).expect("create");
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(file, 92);
        if progressive_free_gray {
            enc.encode_image(&image::DynamicImage::ImageRgb8(img).to_luma8())
                .expect("jpeg");
        } else {
            enc.encode_image(&img).expect("jpeg");
        }
        let image = build(&p, &cfg);
        let built = image.built_levels().expect("attached");
        assert_eq!(built.status.state(), BuildState::Complete);
        let spp = if progressive_free_gray { 1 } else { 3 };
        let pages = read_sidecar(&built.kept_at.clone().expect("kept"));
        let full = reference(&p);
        for (i, (pw, ph, data)) in pages.iter().enumerate() {
            let f = 2u32 << i;
            let want = box_reference(&full, f, spp);
            let (max, mean) = diff(&first_samples(data, *pw, *ph, spp), &want);
            // A scaled inverse DCT is not a box filter: close, within JPEG's own error.
            assert!(
                mean < 2.0 && max < 48,
                "{name} level 1/{f}: max {max}, mean {mean}"
            );
        }
        let ix = image.index.as_ref().expect("an index");
        assert!(
            ix.is_complete(),
            "{name}: the build's pass indexed the scan"
        );
    }
}

#[test]
fn the_sidecar_is_reused_without_reading_the_file() {
    let (dir, p, store) = one_image(Kind::Ppm, "rgb.ppm");
    let cfg = config(&store);
    drop(build(&p, &cfg));
    let image = OpenImage::open(&p).expect("open");
    assert!(
        levels::attach_existing(&image, &cfg),
        "second open finds it"
    );
    let built = image.built_levels().expect("attached");
    let header_bytes = image.source.bytes_read();
    assert!(built.plan.levels.iter().any(|l| l.factor == 8));
    let req = RenderRequest::new(0, Extent::new(0, 0, W, H), 8);
    let loader = Loader::new(
        image.clone(),
        Arc::new(Mutex::new(PieceCache::new(16 << 20))),
        2,
        1024,
    );
    let (got, stats) = render(&loader, req).expect("render");
    assert_eq!(stats.factor, 8, "the 1/8 level renders it as is");
    assert!(matches!(
        stats.source,
        Some(tessera::pieces::LevelSource::Built(_))
    ));
    assert_eq!(
        image.source.bytes_read(),
        header_bytes,
        "no pixel of the source read"
    );
    let want = box_reference(&reference(&p), 8, 3);
    let rgb: Vec<u8> = got
        .data
        .chunks_exact(4)
        .flat_map(|px| px[..3].to_vec())
        .collect();
    assert_eq!(rgb, want);
    // `render --scale` on the command line goes through the same levels.
    let out = dir.path().join("out.png");
    let (code, _, stderr) = run(&[
        "render",
        p.to_str().expect("utf-8"),
        "--region",
        &format!("0,0,{W},{H}"),
        "--scale",
        "8",
        "--stats",
        "--levels-dir",
        store.to_str().expect("utf-8"),
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let read = stats_bytes_read(&stderr);
    assert!(
        stderr.contains("level: 1/8 (built level"),
        "the 1/8 built level is read: {stderr}"
    );
    // The 1/8 level's pixels, and the headers of the image and of its levels.
    assert!(
        read <= 263 * 163 * 4 + 16384,
        "read {read} bytes: the 1/8 level only"
    );
    let png = image::open(&out).expect("png").to_rgb8();
    assert_eq!(png.into_raw(), want);
}

#[test]
fn a_changed_file_gets_new_levels() {
    let (_dir, p, store) = one_image(Kind::Pgm, "gray.pgm");
    let cfg = config(&store);
    let first = build(&p, &cfg);
    let kept = first
        .built_levels()
        .and_then(|l| l.kept_at.clone())
        .expect("kept");
    drop(first);
    // Same size, new content and a new modification time.
    let mut bytes = std::fs::read(&p).expect("read");
    let header = bytes.len() - (W * H) as usize;
    for b in &mut bytes[header..] {
        *b = 255 - *b;
    }
    std::fs::write(&p, &bytes).expect("rewrite");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .append(true)
        .open(&p)
        .and_then(|f| f.set_modified(later))
        .expect("mtime");
    let image = OpenImage::open(&p).expect("open");
    assert!(
        !levels::attach_existing(&image, &cfg),
        "stale levels are not used"
    );
    assert!(!kept.exists(), "stale levels are deleted");
    drop(image);
    let rebuilt = build(&p, &cfg);
    let pages = read_sidecar(&kept);
    assert_eq!(pages[0].2, box_reference(&reference(&p), 2, 1));
    drop(rebuilt);
}

#[test]
fn a_cancelled_build_leaves_nothing_behind() {
    let dir = tempdir();
    let p = dir.path().join("tall.ppm");
    // Tall and narrow: 20 bands of 1024 rows, so the cancel lands mid-pass.
    write_file(Kind::Ppm, 600, 20000, &p).expect("ppm");
    let store = dir.path().join("levels");
    let cfg = config(&store);
    let image = OpenImage::open(&p).expect("open");
    let job = levels::prepare_build(&image, &cfg).expect("prepare");
    let status = job.status.clone();
    // Cancel from the producers' yield check, a few bands into the pass.
    let calls = AtomicUsize::new(0);
    let result = job.run(
        &|| {
            if calls.fetch_add(1, Ordering::SeqCst) == 10 {
                status.progress.cancel();
            }
            false
        },
        &|| (),
    );
    assert!(result.is_err(), "a cancelled build is not a finished one");
    assert_eq!(status.state(), BuildState::Cancelled);
    let done = status.rows_done(0);
    assert!(
        done > 0 && done < 10000,
        "cancelled mid-pass ({done} rows of the 1/2 level written)"
    );
    let left: Vec<_> = std::fs::read_dir(&store)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(image);
    let again = OpenImage::open(&p).expect("open");
    assert!(!levels::attach_existing(&again, &cfg));
    // A later build completes normally.
    drop(again);
    let image = build(&p, &cfg);
    assert_eq!(
        image.built_levels().map(|l| l.status.state()),
        Some(BuildState::Complete)
    );
}

#[test]
fn the_size_cap_evicts_the_least_recently_used() {
    let dir = tempdir();
    let store = dir.path().join("levels");
    let (a, b) = (dir.path().join("a.pgm"), dir.path().join("b.pgm"));
    write_file(Kind::Pgm, W, H, &a).expect("pgm");
    write_file(Kind::Pgm, W, H, &b).expect("pgm");
    let one = levels::LevelPlan::new(W, H, 1, 2).expect("plan").file_len;
    let cfg = LevelsConfig {
        cap_bytes: one + one / 2,
        ..config(&store)
    };
    let first = build(&a, &cfg);
    let a_kept = first
        .built_levels()
        .and_then(|l| l.kept_at.clone())
        .expect("kept");
    drop(first);
    let second = build(&b, &cfg);
    let b_kept = second
        .built_levels()
        .and_then(|l| l.kept_at.clone())
        .expect("kept");
    assert!(b_kept.exists());
    assert!(!a_kept.exists(), "the older sidecar made room");
    // A cap below one image's finest levels starts its levels coarser.
    let small = LevelsConfig {
        cap_bytes: one / 2,
        ..config(&dir.path().join("small"))
    };
    let c = build(&a, &small);
    assert_eq!(c.built_levels().map(|l| l.plan.levels[0].factor), Some(4));
}

#[test]
fn command_line_builds_lists_and_keeps_levels() {
    let (_dir, p, store) = one_image(Kind::Bmp, "rgb.bmp");
    let (file, store_s) = (p.to_str().expect("utf-8"), store.to_str().expect("utf-8"));
    let (code, stdout, stderr) = run(&["levels", file, "--levels-dir", store_s]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("built 3 levels"), "{stdout}");
    assert!(
        stdout.contains("1/2 1050x651, 1/4 525x326, 1/8 263x163"),
        "{stdout}"
    );
    assert!(stderr.contains("levels 100%"), "progress shown: {stderr}");
    let (code, stdout, _) = run(&["levels", file, "--levels-dir", store_s]);
    assert_eq!(code, 0);
    assert!(stdout.contains("levels already built"), "{stdout}");
    let (_, table, _) = run(&["info", file, "--levels-dir", store_s]);
    assert!(
        table.contains("built:   1/2 (1050x651,"),
        "info lists the built levels: {table}"
    );
    let (_, json, _) = run(&["info", file, "--json", "--levels-dir", store_s]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        v["built_levels"]["levels"].as_array().map(Vec::len),
        Some(3)
    );
    assert_eq!(v["built_levels"]["state"], "complete");
    // The sidecar is a TIFF of its own: `info` lists its descriptors.
    let sidecar = v["built_levels"]["path"]
        .as_str()
        .expect("path")
        .to_string();
    let (code, table, _) = run(&["info", &sidecar]);
    assert_eq!(code, 0);
    assert!(table.contains("pages:   3"), "{table}");
    // Unreadable input: one line, non-zero.
    let (code, _, stderr) = run(&["levels", "/nonexistent.ppm"]);
    assert_ne!(code, 0);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_damaged_sidecar_is_replaced_and_an_unusable_folder_is_one_line() {
    let (dir, p, store) = one_image(Kind::Ppm, "rgb.ppm");
    let cfg = config(&store);
    let first = build(&p, &cfg);
    let kept = first
        .built_levels()
        .and_then(|l| l.kept_at.clone())
        .expect("kept");
    drop(first);
    // Truncated (a crash, a full disk, someone's cleanup): not used, built again.
    let len = std::fs::metadata(&kept).expect("meta").len();
    std::fs::File::options()
        .write(true)
        .open(&kept)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let image = OpenImage::open(&p).expect("open");
    assert!(
        !levels::attach_existing(&image, &cfg),
        "a damaged sidecar is not used"
    );
    drop(image);
    let again = build(&p, &cfg);
    assert_eq!(
        std::fs::metadata(&kept).expect("meta").len(),
        again.built_levels().map(|l| l.plan.file_len).expect("plan")
    );
    // A levels folder that is a file: the build fails in one line, nothing panics.
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").expect("write");
    let (code, _, stderr) = run(&[
        "levels",
        p.to_str().expect("utf-8"),
        "--levels-dir",
        not_a_dir.to_str().expect("utf-8"),
    ]);
    assert_ne!(code, 0);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("file"), "{stderr}");
}

/// A full-quality scaled render of most of a big file without levels builds them first (and
/// keeps them): the output is the box filter of the image, and the next render reads only the
/// level. `--fast` reads a subsampled preview instead, and `--no-keep-levels` the file itself.
#[test]
fn a_render_of_a_whole_big_file_builds_and_keeps_its_levels() {
    let dir = tempdir();
    let store = dir.path().join("levels");
    // 16 Mpx: the size from which the viewer builds levels on its own.
    let p = dir.path().join("big.pgm");
    write_file(Kind::Pgm, 4096, 4096, &p).expect("fixture");
    let out = dir.path().join("out.png");
    let render_args = |extra: &[&str]| -> (i32, String) {
        let mut args = vec![
            "render",
            p.to_str().expect("utf-8"),
            "--region",
            "0,0,4096,4096",
            "--scale",
            "16",
            "--stats",
            "--levels-dir",
            store.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        let (code, _, stderr) = run(&args);
        (code, stderr)
    };
    let (code, stderr) = render_args(&[]);
    assert_eq!(code, 0, "{stderr}");
    // Built levels go down to 512 px: 1/8 is the coarsest.
    assert!(stderr.contains("level: 1/8 (built level"), "{stderr}");
    let want = box_reference(&reference(&p), 16, 1);
    let got = image::open(&out).expect("png").to_luma8().into_raw();
    let worst = got.iter().zip(&want).map(|(a, b)| a.abs_diff(*b)).max();
    assert_eq!(got.len(), want.len());
    assert!(worst <= Some(1), "the box filter of the image: {worst:?}");
    assert!(
        std::fs::read_dir(&store)
            .expect("store")
            .filter_map(Result::ok)
            .any(|e| e.path().extension().is_some_and(|x| x == "tif")),
        "the levels are kept"
    );
    // Again: the kept level serves it, no pixel of the file is read.
    let (code, stderr) = render_args(&[]);
    assert_eq!(code, 0, "{stderr}");
    let read = stats_bytes_read(&stderr);
    assert!(read <= 512 * 512 + 16384, "read {read} bytes");
    assert_eq!(
        image::open(&out).expect("png").to_luma8().into_raw(),
        got,
        "the same picture"
    );
    // --fast on a file whose levels are not kept: every 16th row and pixel.
    let (code, stderr) = render_args(&["--fast", "--no-keep-levels"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("level: 1/16 (preview"), "{stderr}");
    let fast = image::open(&out).expect("png").to_luma8();
    let full = reference(&p);
    assert_eq!(fast.get_pixel(3, 5)[0], full.get_pixel(48, 80)[0]);
    // Without --fast and without keeping, the file itself is read.
    let (code, stderr) = render_args(&["--no-keep-levels"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("level: 1/1 (file page 0)"), "{stderr}");
    assert_eq!(
        image::open(&out).expect("png").to_luma8().into_raw(),
        want,
        "the file's own box filter"
    );
}
