//! Bad input of every kind: a clean one-line error naming the file, a non-zero exit, no panic,
//! no hang. Also: a file truncated under a live memory map, and a 40 GB sparse file.

use std::io::{Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use crate::support::synth::{Kind, TiffSpec, write_file, write_tiff};
use crate::support::*;
use tessera::OpenImage;
use tessera::cache::PieceCache;
use tessera::format::Extent;
use tessera::loader::Loader;
use tessera::render::{RenderRequest, render};

/// Run `render` (whole image) and `info` on `path`; both must fail cleanly.
fn assert_clean_failure(path: &std::path::Path, what: &str) {
    let p = path.to_str().expect("utf-8 path");
    let out = path.with_extension("out.png");
    for args in [
        vec![
            "render",
            p,
            "--region",
            "0,0,1,1",
            "-o",
            out.to_str().expect("utf-8"),
        ],
        vec!["info", p],
    ] {
        let (code, stdout, stderr) = run(&args);
        if args[0] == "info" && code == 0 {
            // Some damage (e.g. a truncated pixel array) is only found when pixels are read.
            assert!(!stdout.is_empty(), "{what}: info printed nothing");
            continue;
        }
        assert_eq!(
            code, 2,
            "{what}: {args:?} should fail with the documented code 2: {stderr}"
        );
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{what}: {args:?}: want one line, got {stderr:?}"
        );
        assert!(
            lines[0].contains(path.file_name().and_then(|n| n.to_str()).unwrap_or("?")),
            "{what}: the error names the file: {stderr}"
        );
    }
}

pub fn fixtures(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (kind, name) in [
        (Kind::Ppm, "a.ppm"),
        (Kind::Pgm, "a.pgm"),
        (Kind::Bmp, "a.bmp"),
        (Kind::TiffStrip, "a.tif"),
        (Kind::TiffTiledRgba, "t.tif"),
        (Kind::DemTiff, "f32.tif"),
        (Kind::Tiff12, "u16.tif"),
        (Kind::DemFits, "f32.fits"),
    ] {
        let p = dir.join(name);
        write_file(kind, 61, 43, &p).expect("fixture");
        out.push((name.to_string(), std::fs::read(&p).expect("read")));
    }
    // A compressed TIFF, a PNG and a JPEG.
    let spec = TiffSpec::new(61, 43, 3, 8, 2).tiles(16, 16);
    let mut cur = std::io::Cursor::new(Vec::new());
    let deflate = |b: &[u8]| crate::support::encode::zlib(b, flate2::Compression::default());
    write_tiff(
        &mut cur,
        &spec,
        &|x, y, c| (x + y + c) as u16 % 256,
        Some((8, &deflate)),
    )
    .expect("tiff");
    out.push(("z.tif".into(), cur.into_inner()));
    let img = image::RgbImage::from_fn(61, 43, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    out.push(("a.png".into(), png));
    let mut jpg = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut jpg),
        image::ImageFormat::Jpeg,
    )
    .expect("jpg");
    out.push(("a.jpg".into(), jpg));
    out
}

#[test]
fn truncated_files_fail_cleanly() {
    let dir = tempdir();
    for (name, bytes) in fixtures(dir.path()) {
        for keep in [0usize, 1, 2, 5, 9, 20, 60, bytes.len() / 2, bytes.len() - 1] {
            if keep >= bytes.len() {
                continue;
            }
            let p = write(dir.path(), &format!("cut{keep}_{name}"), &bytes[..keep]);
            let out = dir.path().join("o.png");
            let (code, _, stderr) = run(&[
                "render",
                p.to_str().expect("utf-8"),
                "--region",
                "0,0,61,43",
                "-o",
                out.to_str().expect("utf-8"),
            ]);
            assert!(
                code == 0 || code == 2,
                "{name} cut at {keep}: exit {code} (0 or the documented 2): {stderr}"
            );
            if code == 0 {
                // Only a trailer (PNG IEND, JPEG EOI) was lost: the pixels must be intact.
                let whole = write(dir.path(), &format!("whole_{name}"), &bytes);
                let full = dir.path().join("full.png");
                let (c2, _, e2) = run(&[
                    "render",
                    whole.to_str().expect("utf-8"),
                    "--region",
                    "0,0,61,43",
                    "-o",
                    full.to_str().expect("utf-8"),
                ]);
                assert_eq!(c2, 0, "{e2}");
                assert_eq!(
                    image::open(&out).expect("out").to_rgba8(),
                    image::open(&full).expect("full").to_rgba8(),
                    "{name} cut at {keep} rendered wrong pixels"
                );
                assert!(
                    keep + 16 >= bytes.len(),
                    "{name} cut at {keep} of {} rendered",
                    bytes.len()
                );
            } else {
                assert_eq!(stderr.lines().count(), 1, "{name} cut at {keep}: {stderr}");
            }
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let dir = tempdir();
    let target = dir.path().join("o.png");
    for (name, bytes) in fixtures(dir.path()) {
        // Flip bytes across the header and data; any outcome but a panic or hang is fine,
        // and a failure is one line.
        for i in (0..bytes.len().min(400))
            .step_by(3)
            .chain((400..bytes.len()).step_by(997))
        {
            let mut b = bytes.clone();
            b[i] ^= 0xA5;
            let p = write(dir.path(), &format!("flip{i}_{name}"), &b);
            let (code, _, stderr) = run(&[
                "render",
                p.to_str().expect("utf-8"),
                "--region",
                "0,0,61,43",
                "-o",
                target.to_str().expect("utf-8"),
            ]);
            assert!(
                code == 0 || code == 2,
                "{name} byte {i}: exit {code} (0 or the documented 2): {stderr}"
            );
            if code != 0 {
                assert_eq!(stderr.lines().count(), 1, "{name} byte {i}: {stderr}");
            }
        }
    }
}

#[test]
fn lying_headers_and_bad_paths() {
    let dir = tempdir();
    let d = dir.path();
    let mut cases: Vec<(&str, std::path::PathBuf)> = vec![
        ("missing", d.join("does-not-exist.ppm")),
        ("directory", d.to_path_buf()),
        ("empty", write(d, "empty.ppm", b"")),
        ("unknown", write(d, "x.ppm", b"GIF89a not really")),
        (
            "huge ppm",
            write(d, "huge.ppm", b"P6\n4000000000 4000000000\n255\n\0\0\0"),
        ),
        ("zero width", write(d, "zero.pgm", b"P5\n0 10\n255\n")),
        ("maxval 0", write(d, "m0.pgm", b"P5\n2 2\n0\n\0\0\0\0")),
        (
            "pnm past eof",
            write(d, "short.pgm", b"P5\n1000 1000\n255\nabc"),
        ),
        (
            "bmp past eof",
            write(d, "s.bmp", &{
                let mut b = std::fs::read({
                    let p = d.join("ok.bmp");
                    write_file(Kind::Bmp, 9, 9, &p).expect("bmp");
                    p
                })
                .expect("read");
                b[10..14].copy_from_slice(&1_000_000u32.to_le_bytes());
                b
            }),
        ),
        (
            "bmp absurd size",
            write(d, "big.bmp", &{
                let mut b = std::fs::read(d.join("ok.bmp")).expect("read");
                b[18..22].copy_from_slice(&i32::MAX.to_le_bytes());
                b
            }),
        ),
    ];
    // A FIFO must not hang the open.
    let fifo = d.join("fifo.ppm");
    if rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from(0o600)).is_ok() {
        cases.push(("fifo", fifo));
    }
    // A TIFF whose IFD points to itself, and one with a zero tile size.
    let mut t = Vec::new();
    t.extend_from_slice(b"II*\0\x08\0\0\0");
    t.extend_from_slice(&1u16.to_le_bytes());
    t.extend_from_slice(&[0; 12]);
    t.extend_from_slice(&8u32.to_le_bytes());
    cases.push(("ifd loop", write(d, "loop.tif", &t)));
    let spec = TiffSpec::new(20, 20, 1, 8, 1).tiles(16, 16);
    let mut cur = std::io::Cursor::new(Vec::new());
    write_tiff(&mut cur, &spec, &|_, _, _| 1, None).expect("tiff");
    let mut tiled = cur.into_inner();
    // Patch TileWidth (tag 322, LONG) to 0.
    let pos = tiled
        .windows(4)
        .position(|w| w == [0x42, 0x01, 4, 0])
        .expect("tile width tag");
    tiled[pos + 8..pos + 12].copy_from_slice(&0u32.to_le_bytes());
    cases.push(("zero tile", write(d, "zerotile.tif", &tiled)));
    // A PNG with a bad CRC in IHDR.
    let img = image::GrayImage::from_fn(5, 5, |x, _| image::Luma([x as u8]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    png[29] ^= 0xFF;
    cases.push(("png crc", write(d, "crc.png", &png)));

    for (what, path) in cases {
        assert_clean_failure(&path, what);
    }
}

#[test]
fn region_outside_the_image_is_refused() {
    let dir = tempdir();
    let p = dir.path().join("r.ppm");
    write_file(Kind::Ppm, 10, 10, &p).expect("ppm");
    let out = dir.path().join("o.png");
    for region in [
        "5,5,6,1",
        "0,0,0,1",
        "1,2,3",
        "-1,0,1,1",
        "18446744073709551615,0,2,2",
    ] {
        let (code, _, stderr) = run(&[
            "render",
            p.to_str().expect("utf-8"),
            "--region",
            region,
            "-o",
            out.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 2, "{region}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{region}: {stderr}");
    }
    // The output may not overwrite the input.
    let (code, _, _) = run(&[
        "render",
        p.to_str().expect("utf-8"),
        "--region",
        "0,0,1,1",
        "-o",
        p.to_str().expect("utf-8"),
    ]);
    assert_ne!(code, 0);
    assert!(
        std::fs::metadata(&p).expect("still there").len() > 300,
        "input untouched"
    );
}

/// A memory-mapped file truncated while open: the affected pieces fail with a clear error,
/// the process survives, and the part still in the file keeps rendering.
#[test]
fn file_truncated_under_the_map_is_reported_not_fatal() {
    let dir = tempdir();
    let p = dir.path().join("m.pgm");
    write_file(Kind::Pgm, 4096, 4096, &p).expect("pgm");
    let image = OpenImage::open(&p).expect("open");
    assert!(image.source.is_mapped(), "an L image is memory-mapped");
    let cache = Arc::new(Mutex::new(PieceCache::new(1 << 20)));
    let loader = Loader::new(image, cache, 2, 256);
    // Truncate to half while open.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .and_then(|f| f.set_len(4096 * 2048))
        .expect("truncate");
    let bottom = render(
        &loader,
        RenderRequest::new(0, Extent::new(0, 3000, 4096, 4096), 1),
    );
    let err = bottom
        .expect_err("rows past the new end cannot render")
        .to_string();
    assert!(
        err.contains("changed") || err.contains("truncated"),
        "{err}"
    );
    let top = render(
        &loader,
        RenderRequest::new(0, Extent::new(0, 0, 4096, 1000), 1),
    );
    let (img, _) = top.expect("rows still in the file render");
    assert_eq!(img.data[0], crate::support::synth::pattern(0, 0, 0));
}

/// The same, with the truncation racing a render in another thread.
#[test]
fn file_truncated_during_render_does_not_crash() {
    let dir = tempdir();
    let p = dir.path().join("race.pgm");
    write_file(Kind::Pgm, 4096, 4096, &p).expect("pgm");
    let image = OpenImage::open(&p).expect("open");
    let cache = Arc::new(Mutex::new(PieceCache::new(1 << 20)));
    let loader = Loader::new(image, cache, 2, 256);
    let path = p.clone();
    let cutter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.set_len(100).expect("truncate");
    });
    for _ in 0..20 {
        let _ = render(
            &loader,
            RenderRequest::new(0, Extent::new(0, 0, 4096, 4096), 4),
        );
    }
    cutter.join().expect("cutter");
    let err = render(
        &loader,
        RenderRequest::new(0, Extent::new(0, 2000, 10, 2010), 1),
    );
    assert!(err.is_err(), "after truncation the rows are gone");
    let bad = render(
        &loader,
        RenderRequest::new(0, Extent::new(0, 2000, 10, 10), 1),
    );
    assert!(bad.is_err(), "an inverted extent is refused, not a panic");
}

/// A 40 GB sparse PGM: a region near the end renders correctly in a small process.
#[test]
fn sparse_40gb_file_renders_near_its_end() {
    let dir = tempdir();
    let p = dir.path().join("sparse.pgm");
    let (w, h) = (200_000u64, 200_001u64);
    let header = format!("P5\n{w} {h}\n255\n");
    let mut f = std::fs::File::create(&p).expect("create");
    f.write_all(header.as_bytes()).expect("header");
    let data = header.len() as u64;
    f.set_len(data + w * h).expect("sparse size");
    assert!(f.metadata().expect("meta").len() >= 40_000_000_000);
    // Write a recognisable stripe in rows h-10..h-5, columns 199_000..199_500.
    for y in h - 10..h - 5 {
        f.seek(SeekFrom::Start(data + y * w + 199_000))
            .expect("seek");
        let row: Vec<u8> = (0..500u64).map(|x| ((x + y) % 251) as u8).collect();
        f.write_all(&row).expect("row");
    }
    drop(f);
    let out = dir.path().join("o.png");
    let region = format!("198990,{},520,12", h - 12);
    let (code, _, stderr) = run(&[
        "render",
        p.to_str().expect("utf-8"),
        "--region",
        &region,
        "--stats",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let img = image::open(&out).expect("png").to_rgb8();
    assert_eq!(img.dimensions(), (520, 12));
    for (x, y, px) in img.enumerate_pixels() {
        let (fx, fy) = (198_990 + u64::from(x), h - 12 + u64::from(y));
        let want = if (h - 10..h - 5).contains(&fy) && (199_000..199_500).contains(&fx) {
            ((fx - 199_000 + fy) % 251) as u8
        } else {
            0
        };
        assert_eq!(px.0, [want; 3], "pixel {fx},{fy}");
    }
    let peak_mb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|v| v.trim_end_matches(" MB").parse().ok())
        .expect("peak memory in --stats");
    assert!(peak_mb < 64.0, "peak RSS {peak_mb} MB for a 40 GB file");
}

/// A progressive JPEG whose header claims 65535x65535: libjpeg would keep every coefficient
/// (25 GB; more than a quarter of any machine this runs on); refused in one line instead.
#[test]
fn a_huge_progressive_jpeg_is_refused_not_swapped() {
    let dir = tempdir();
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(64, 64);
    c.set_progressive_mode();
    let mut started = c.start_compress(Vec::new()).expect("start");
    started
        .write_scanlines(&[128u8; 64 * 64 * 3])
        .expect("write");
    let mut bytes = started.finish().expect("finish");
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC2])
        .expect("progressive SOF");
    bytes[sof + 5..sof + 7].copy_from_slice(&65535u16.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&65535u16.to_be_bytes());
    let p = write(dir.path(), "huge.jpg", &bytes);
    let out = dir.path().join("o.png");
    let (code, _, err) = run(&[
        "render",
        &p.display().to_string(),
        "--region",
        "0,0,64,64",
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("progressive JPEG"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
