//! The command line end to end: `info` (table and JSON), `render` output format and stats,
//! and the loader's one-pass streaming of PNG bands.

use std::sync::{Arc, Mutex};

use crate::support::synth::{Kind, TiffSpec, write_file, write_tiff};
use crate::support::*;
use tessera::cache::{PieceCache, PieceKey};
use tessera::loader::Loader;

#[test]
fn info_json_lists_every_descriptor() {
    let dir = tempdir();
    let p = dir.path().join("t.tif");
    let spec = TiffSpec::new(100, 70, 3, 8, 2).tiles(32, 32);
    let mut f = std::fs::File::create(&p).expect("create");
    write_tiff(&mut f, &spec, &|x, y, c| ((x + y + c) % 256) as u16, None).expect("tiff");
    drop(f);
    let (code, stdout, stderr) = run(&["info", p.to_str().expect("utf-8"), "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(v["format"], "TIFF");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(100), Some(70))
    );
    assert_eq!(v["mode"], "RGB");
    assert_eq!(v["pages"], 1);
    let tiles = v["tiles"].as_array().expect("tiles");
    assert_eq!(tiles.len(), 4 * 3, "4x3 tiles of 32");
    let file_len = std::fs::metadata(&p).expect("meta").len();
    let mut area = 0u64;
    for t in tiles {
        let e: Vec<u64> = t["extent"]
            .as_array()
            .expect("extent")
            .iter()
            .filter_map(|v| v.as_u64())
            .collect();
        area += (e[2] - e[0]) * (e[3] - e[1]);
        assert_eq!(t["decoder"], "raw");
        assert_eq!(t["access"], "read");
        assert_eq!(t["length"], 32 * 32 * 3);
        assert!(t["offset"].as_u64().expect("offset") + 32 * 32 * 3 <= file_len);
        assert!(
            t["args"]
                .as_str()
                .expect("args")
                .starts_with("('RGB', 96, 1)")
        );
    }
    assert_eq!(area, 100 * 70, "edge tiles are clipped to the image");
}

#[test]
fn info_table_streams_a_million_descriptors() {
    let dir = tempdir();
    let p = dir.path().join("m.tif");
    // One row per strip, 1,000,000 rows: a million descriptors.
    let spec = TiffSpec::new(1, 1_000_000, 1, 8, 1).strips(1);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    write_tiff(&mut f, &spec, &|_, y, _| (y % 256) as u16, None).expect("tiff");
    drop(f);
    let (code, stdout, stderr) = run(&["info", p.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    let rows = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .count();
    assert_eq!(rows, 1_000_000);
    assert!(stdout.contains("999999  raw"));
}

#[test]
fn render_writes_rgb_or_rgba_png_and_stats() {
    let dir = tempdir();
    let ppm = dir.path().join("a.ppm");
    write_file(Kind::Ppm, 50, 40, &ppm).expect("ppm");
    let rgba = dir.path().join("a.tif");
    write_file(Kind::TiffTiledRgba, 50, 40, &rgba).expect("tif");
    for (input, color) in [
        (&ppm, image::ColorType::Rgb8),
        (&rgba, image::ColorType::Rgba8),
    ] {
        let out = dir.path().join("o.png");
        let (code, stdout, stderr) = run(&[
            "render",
            input.to_str().expect("utf-8"),
            "--region",
            "3,4,45,36",
            "--scale",
            "2",
            "--stats",
            "-o",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.is_empty());
        for key in ["descriptors read:", "bytes read:", "time:", "peak memory:"] {
            assert!(stderr.contains(key), "--stats prints {key}: {stderr}");
        }
        let img = image::open(&out).expect("png");
        assert_eq!(img.color(), color);
        assert_eq!(
            (img.width(), img.height()),
            (23, 18),
            "ceil(45/2) x ceil(36/2)"
        );
    }
}

#[test]
fn usage_errors_are_one_line() {
    for args in [
        vec![],
        vec!["frobnicate"],
        vec!["render", "x.ppm"],
        vec!["info"],
        vec![
            "render", "a", "--scale", "x", "--region", "0,0,1,1", "-o", "o.png",
        ],
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(!stderr.is_empty());
        assert!(stderr.starts_with("tessera: "), "{stderr}");
    }
}

/// Asking for every band of a PNG decodes the stream once, not once per band.
#[test]
fn png_bands_stream_in_one_pass() {
    let dir = tempdir();
    let p = dir.path().join("tall.png");
    let img = image::RgbImage::from_fn(1200, 4000, |x, y| {
        image::Rgb([x as u8, y as u8, (x ^ y) as u8])
    });
    img.save(&p).expect("png");
    let image = tessera::OpenImage::open(&p).expect("open");
    let page = &image.layout.pages[0];
    let bands = page.unit_count();
    assert!(bands >= 4, "{bands} bands");
    let keys: Vec<PieceKey> = (0..bands)
        .map(|unit| {
            let e = page.grid.unit_extent(unit);
            PieceKey::page(0, unit, e.x0, e.x1)
        })
        .collect();
    let loader = Loader::new(
        image.clone(),
        Arc::new(Mutex::new(PieceCache::new(256 << 20))),
        2,
        1024,
    );
    loader.request(keys.iter().copied());
    let mut got = 0;
    while got < keys.len() {
        let l = loader
            .results()
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("result");
        l.result.expect("band decodes");
        got += 1;
    }
    assert_eq!(loader.decoded(), bands, "each band decoded once");
}

fn big_plain_pgm(dir: &std::path::Path, side: u32) -> std::path::PathBuf {
    use std::io::Write;
    let p = dir.join("big.pgm");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    write!(f, "P2\n{side} {side}\n255\n").expect("header");
    for y in 0..side {
        for x in 0..side {
            write!(f, "{} ", (x + y) % 256).expect("sample");
        }
        writeln!(f).expect("eol");
    }
    drop(f);
    p
}

/// Indexing a plain PNM at open reports progress and stops when cancelled.
#[test]
fn indexing_reports_progress_and_can_be_cancelled() {
    let dir = tempdir();
    let p = big_plain_pgm(dir.path(), 1200);
    let progress = tessera::progress::Progress::new();
    let image = tessera::OpenImage::open_with_progress(&p, &progress).expect("open");
    assert!(image.layout.pages[0].descriptor_count() > 1);
    assert!(
        progress.fraction().is_some_and(|f| f > 0.5),
        "progress was reported"
    );
    let cancelled = tessera::progress::Progress::new();
    cancelled.cancel();
    let err = tessera::OpenImage::open_with_progress(&p, &cancelled).expect_err("cancelled");
    assert!(err.to_string().contains("cancelled"), "{err}");
}

#[test]
fn errors_print_each_cause_once() {
    let dir = tempdir();
    // Photometric 9 (ICC Lab) is not read: the reason must appear once, on one line.
    let mut f = std::io::Cursor::new(Vec::new());
    write_tiff(&mut f, &TiffSpec::new(8, 8, 1, 8, 9), &|_, _, _| 0, None).expect("tiff");
    let p = write(dir.path(), "lab.tif", &f.into_inner());
    let missing = dir.path().join("missing.tif");
    for path in [p, missing] {
        let (code, _, err) = run(&["info", path.to_str().expect("utf8")]);
        assert_eq!(code, 2);
        let line = err.trim();
        assert_eq!(line.lines().count(), 1, "{err}");
        let parts: Vec<&str> = line.split(": ").collect();
        for (i, a) in parts.iter().enumerate() {
            for b in &parts[i + 1..] {
                assert!(a.len() < 8 || a != b, "a cause repeated: {line}");
            }
        }
        assert!(
            !line.contains("photometric interpretation 9 with 1 samples: unsupported"),
            "{line}"
        );
    }
}
