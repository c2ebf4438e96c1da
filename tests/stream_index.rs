//! Random access into PNG and JPEG streams: every band decoded from its checkpoint (PNG) or
//! restart intervals (JPEG) equals the same rows of an independent whole-file decode; damage
//! fails at the damaged band while the bands before it still decode; kept indexes make a
//! second render read only what it needs.

use std::path::Path;

use crate::support::encode::*;
use crate::support::{bin, reference, run, stats_bytes_read, tempdir, write};
use tessera::OpenImage;
use tessera::decode::Piece;
use tessera::decode::stream::{BandSink, decode_bands};
use tessera::format::{Grid, Page, Storage};
use tessera::index::StreamIndex;

/// Page 0 of `image` cut into bands of `band_h` rows (small, so small files get many).
fn banded(image: &OpenImage, band_h: u32) -> Page {
    let mut page = image.layout.pages[0].clone();
    page.grid = Grid::new(page.width, page.height, page.width, page.height, band_h);
    page
}

/// One pass over every band, keeping nothing: records the checkpoints.
fn index_pass(image: &OpenImage, page: &Page, ix: &StreamIndex) -> Result<(), String> {
    tessera::decode::stream::index_pass(&image.source, page, ix, &|| false)
        .map_err(|e| e.to_string())
}

/// Band `band` alone, from the index.
fn one_band(image: &OpenImage, page: &Page, ix: &StreamIndex, band: u64) -> Result<Piece, String> {
    let mut got = None;
    decode_bands(
        &image.source,
        page,
        Some(ix),
        band..=band,
        BandSink {
            wants: &mut |_| true,
            emit: &mut |b, p| {
                if b == band {
                    got = Some(p);
                }
            },
        },
        &|| false,
    )
    .map_err(|e| e.to_string())?;
    got.ok_or_else(|| format!("band {band} not emitted"))
}

/// Largest and mean absolute difference between a piece and the reference's same rows.
fn band_diff(piece: &Piece, r: &image::RgbaImage) -> (u8, f64) {
    let e = piece.extent;
    let w = r.width() as usize;
    let want = &r.as_raw()[e.y0 as usize * w * 4..e.y1 as usize * w * 4];
    assert_eq!(piece.rgba.len(), want.len(), "band {e:?} size");
    crate::support::diff(&piece.rgba, want)
}

#[test]
fn png_bands_from_checkpoints_equal_a_whole_decode() {
    use png::{BitDepth as D, ColorType as C};
    let dir = tempdir();
    let cases = [
        (C::Grayscale, D::One, false),
        (C::Grayscale, D::Two, false),
        (C::Grayscale, D::Four, false),
        (C::Grayscale, D::Eight, false),
        (C::Grayscale, D::Sixteen, false),
        (C::GrayscaleAlpha, D::Eight, false),
        (C::GrayscaleAlpha, D::Sixteen, false),
        (C::Rgb, D::Eight, false),
        (C::Rgb, D::Eight, true),
        (C::Rgb, D::Sixteen, false),
        (C::Rgb, D::Sixteen, true),
        (C::Rgba, D::Eight, false),
        (C::Rgba, D::Sixteen, false),
        (C::Indexed, D::One, false),
        (C::Indexed, D::Four, true),
        (C::Indexed, D::Eight, true),
    ];
    let w = 301;
    for (i, (color, depth, trns)) in cases.into_iter().enumerate() {
        for (j, compression) in [png::Compression::Balanced, png::Compression::Fastest]
            .into_iter()
            .enumerate()
        {
            // About 200 KB of filtered rows, so that there are several deflate blocks.
            let spp = match color {
                C::Grayscale | C::Indexed => 1,
                C::GrayscaleAlpha => 2,
                C::Rgb => 3,
                C::Rgba => 4,
            };
            let h = (200_000 / (w * spp * depth as u32 / 8).max(1)).clamp(300, 6000);
            let bytes = encode_png(color, depth, trns, (w, h), compression, 4000 + 777 * i);
            let p = write(dir.path(), &format!("c{i}_{j}.png"), &bytes);
            let image = OpenImage::open(&p).expect("open");
            let row_bytes = image.layout.pages[0].raw.row_bytes(w) as u32;
            // Bands of about 24 KB of filtered data.
            let page = banded(&image, (24_000 / row_bytes).clamp(3, 200));
            let ix = StreamIndex::new(page.grid.unit_rows());
            index_pass(&image, &page, &ix).expect("index pass");
            assert!(ix.is_complete());
            let bands = page.grid.unit_rows();
            let own = (1..bands).filter(|&b| ix.checkpoint(b).is_some()).count();
            // Every band has its own, mid-block too (fdeflate, `Fastest`, writes one block).
            assert_eq!(
                own as u64,
                bands - 1,
                "case {i}/{j} ({color:?} {depth:?}): checkpoints for {own} of {bands} bands"
            );
            let r = reference(&p);
            for band in (0..bands).rev() {
                let piece = one_band(&image, &page, &ix, band)
                    .unwrap_or_else(|e| panic!("case {i}/{j} band {band}: {e}"));
                assert_eq!(
                    band_diff(&piece, &r).0,
                    0,
                    "case {i}/{j} ({color:?} {depth:?} trns {trns}) band {band} of {bands}"
                );
            }
        }
    }
}

#[test]
fn png_damage_fails_at_the_damaged_band_only() {
    let dir = tempdir();
    let (w, h) = (400, 600);
    let good = encode_png(
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        false,
        (w, h),
        png::Compression::Balanced,
        8192,
    );
    let good_path = write(dir.path(), "good.png", &good);
    let r = reference(&good_path);
    let band_h = 20;

    // Corrupted in the middle of the image data: the first pass stops there with an error.
    let mut bad = good.clone();
    let at = bad.len() * 6 / 10;
    for b in &mut bad[at..at + 200] {
        *b ^= 0x5A;
    }
    let bad_path = write(dir.path(), "bad.png", &bad);
    let image = OpenImage::open(&bad_path).expect("header is intact");
    let page = banded(&image, band_h);
    let ix = StreamIndex::new(page.grid.unit_rows());
    let err = index_pass(&image, &page, &ix).expect_err("corrupt data must fail");
    let reached = ix.reached();
    assert!(
        reached > 3 && reached < page.grid.unit_rows(),
        "reached {reached} of {}: {err}",
        page.grid.unit_rows()
    );
    // Bands wholly before the damage decode exactly, from their checkpoints.
    for band in 0..reached.saturating_sub(2) {
        let piece = one_band(&image, &page, &ix, band).expect("band before the damage");
        assert_eq!(band_diff(&piece, &r).0, 0, "band {band}");
    }
    // The damaged region fails (no panic, no garbage passed off as pixels).
    let last = page.grid.unit_rows() - 1;
    assert!(one_band(&image, &page, &ix, last).is_err());

    // Truncated: the same, with a truncation error.
    let cut = write(dir.path(), "cut.png", &good[..good.len() * 7 / 10]);
    let image = OpenImage::open(&cut).expect("header is intact");
    let page = banded(&image, band_h);
    let ix = StreamIndex::new(page.grid.unit_rows());
    let err = index_pass(&image, &page, &ix).expect_err("truncated data must fail");
    assert!(err.contains("ends"), "{err}");
    let reached = ix.reached();
    assert!(reached > 3, "reached {reached}");
    for band in 0..reached.saturating_sub(2) {
        let piece = one_band(&image, &page, &ix, band).expect("band before the cut");
        assert_eq!(band_diff(&piece, &r).0, 0, "band {band}");
    }
}

/// The real path: `render` records the checkpoints and keeps them; the second render of a
/// region near the bottom reads a fraction of the file; `info` lists the checkpoints.
#[test]
fn kept_index_makes_the_second_render_read_little() {
    let dir = tempdir();
    let levels = dir.path().join("levels");
    let (w, h) = (1000, 5000); // bands of 1024 rows: five
    let bytes = encode_png(
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        false,
        (w, h),
        png::Compression::Balanced,
        65536,
    );
    let p = write(dir.path(), "tall.png", &bytes);
    let region = "600,4600,300,300";
    let out1 = dir.path().join("a.png");
    let out2 = dir.path().join("b.png");
    let args = |out: &Path| {
        vec![
            "render".to_string(),
            p.display().to_string(),
            "--region".into(),
            region.into(),
            "--stats".into(),
            "--levels-dir".into(),
            levels.display().to_string(),
            "-o".into(),
            out.display().to_string(),
        ]
    };
    let a1 = args(&out1);
    let (code, _, err1) = run(&a1.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err1}");
    let first = stats_bytes_read(&err1);
    assert!(
        first > bytes.len() as u64 * 8 / 10,
        "first render streams: {err1}"
    );
    assert!(tessera::index::file_for(&levels, &p).exists(), "index kept");
    let a2 = args(&out2);
    let (code, _, err2) = run(&a2.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err2}");
    let second = stats_bytes_read(&err2);
    assert!(
        second < bytes.len() as u64 / 3,
        "second render read {second} of {} bytes",
        bytes.len()
    );
    let r = reference(&p);
    for out in [&out1, &out2] {
        let got = image::open(out).expect("render output").to_rgba8();
        let want = image::imageops::crop_imm(&r, 600, 4600, 300, 300).to_image();
        assert_eq!(crate::support::diff(got.as_raw(), want.as_raw()).0, 0);
    }
    let (code, table, _) = run(&[
        "info",
        &p.display().to_string(),
        "--levels-dir",
        &levels.display().to_string(),
    ]);
    assert_eq!(code, 0);
    assert!(table.contains("(complete)"), "{table}");
    assert!(table.contains("checkpoint zlib byte"), "{table}");
    // `tessera index`: finds the kept index, or runs the pass with a progress bar.
    let (code, out, _) = run(&[
        "index",
        &p.display().to_string(),
        "--levels-dir",
        &levels.display().to_string(),
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("already indexed: 4 checkpoints for 5 bands"),
        "{out}"
    );
    let other = dir.path().join("other");
    let (code, out, err) = run(&[
        "index",
        &p.display().to_string(),
        "--levels-dir",
        &other.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("4 checkpoints for 5 bands"), "{out}");
    assert!(err.contains("index 100%"), "{err}");
    assert!(tessera::index::file_for(&other, &p).exists());
    // A one-band image has nothing to resume from: nothing is kept for it.
    let small = write(
        dir.path(),
        "small.png",
        &encode_png(
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            false,
            (300, 200),
            png::Compression::Balanced,
            8192,
        ),
    );
    let small_levels = dir.path().join("small-levels");
    let (code, _, err) = run(&[
        "render",
        &small.display().to_string(),
        "--region",
        "0,0,300,200",
        "--levels-dir",
        &small_levels.display().to_string(),
        "-o",
        &dir.path().join("s.png").display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!tessera::index::file_for(&small_levels, &small).exists());
    let (code, _, err) = run(&["index", "/nonexistent/x.png"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(bin().exists());
}

#[test]
fn jpeg_restart_bands_equal_a_whole_decode() {
    let dir = tempdir();
    let (w, h) = (256u32, 3100u32);
    // (components, luma sampling, MCU width, interval in MCU-row fractions)
    let cases: [(u8, (i32, i32), u32, &str); 7] = [
        (1, (1, 1), 8, "row"),
        (3, (1, 1), 8, "half row"),
        (3, (2, 2), 16, "row"),
        (3, (2, 2), 16, "two rows"),
        (3, (2, 1), 16, "quarter row"),
        (3, (1, 2), 8, "row"),
        (4, (1, 1), 8, "row"),
    ];
    for (i, (components, sampling, mcu_w, layout)) in cases.into_iter().enumerate() {
        let per_row = w.div_ceil(mcu_w);
        let interval = match layout {
            "row" => per_row,
            "half row" => per_row / 2,
            "quarter row" => per_row / 4,
            _ => per_row * 2,
        };
        let bytes = encode_jpeg_rst(components, sampling, interval, w, h);
        let p = write(dir.path(), &format!("r{i}.jpg"), &bytes);
        let image = OpenImage::open(&p).expect("open");
        let page = &image.layout.pages[0];
        let Storage::Stream {
            restart: Some(_), ..
        } = page.storage
        else {
            panic!("case {i}: restart intervals not used");
        };
        // Each band from its intervals, against the same library's whole-file decode.
        let (own, whole) = bands_and_whole(&image);
        assert!(own.len() >= 3, "case {i}: {} bands", own.len());
        let r = reference(&p);
        for (band, (piece, same)) in own.iter().zip(&whole).enumerate() {
            assert_eq!(piece.extent, same.extent);
            // Identical, edges included (decoded with the interval groups around them).
            let (max, _) = crate::support::diff(&piece.rgba, &same.rgba);
            assert_eq!(max, 0, "case {i} band {band}");
            // And close to an independent decoder (zune-jpeg via `image`).
            let (max, mean) = band_diff(piece, &r);
            assert!(
                max <= 32 && mean <= 1.5,
                "case {i} band {band}: {max} {mean}"
            );
        }
        let ix = image.index.as_ref().expect("an index");
        assert!(ix.is_complete(), "the marker scan reached every band");
    }
    // Intervals that never realign with the left edge within a quarter of the image: no
    // restart bands (decoded from the start instead, still correct).
    let bytes = encode_jpeg_rst(3, (1, 1), 31, w, 400);
    let p = write(dir.path(), "odd.jpg", &bytes);
    let image = OpenImage::open(&p).expect("open");
    assert!(matches!(
        image.layout.pages[0].storage,
        Storage::Stream { restart: None, .. }
    ));
    crate::support::check_against_image_crate(&p, 32, 1.5);
}

#[test]
fn jpeg_truncated_fails_at_the_cut_band() {
    let dir = tempdir();
    let bytes = encode_jpeg_rst(3, (1, 1), 32, 256, 3100);
    let cut = write(dir.path(), "cut.jpg", &bytes[..bytes.len() * 8 / 10]);
    let image = OpenImage::open(&cut).expect("header is intact");
    let page = &image.layout.pages[0];
    let ix = image.index.as_ref().expect("an index");
    let bands = page.grid.unit_rows();
    assert!(
        one_band(&image, page, ix, bands - 1).is_err(),
        "last band is cut"
    );
    let reached = ix.reached();
    assert!(
        reached >= 1 && reached < bands,
        "reached {reached} of {bands}"
    );
    let whole = write(dir.path(), "whole.jpg", &bytes);
    let r = reference(&whole);
    for band in 0..reached.saturating_sub(1) {
        let piece = one_band(&image, page, ix, band).expect("band before the cut");
        assert!(band_diff(&piece, &r).0 <= 32, "band {band}");
    }
}

/// Decode every band of page 0 through `decode_bands` with the image's own index, and the
/// whole file streamed from its start (same library) for comparison.
fn bands_and_whole(image: &OpenImage) -> (Vec<Piece>, Vec<Piece>) {
    let page = &image.layout.pages[0];
    let ix = image.index.as_ref().expect("an index");
    let bands = page.grid.unit_rows();
    let mut plain = page.clone();
    if let Storage::Stream { scan, restart, .. } = &mut plain.storage {
        *scan = None;
        *restart = None;
    }
    let mut whole = Vec::new();
    decode_bands(
        &image.source,
        &plain,
        None,
        0..=bands - 1,
        BandSink {
            wants: &mut |_| true,
            emit: &mut |_, p| whole.push(p),
        },
        &|| false,
    )
    .expect("whole decode");
    let own = (0..bands)
        .rev()
        .map(|b| one_band(image, page, ix, b).unwrap_or_else(|e| panic!("band {b}: {e}")))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (own, whole)
}

#[test]
fn jpeg_without_restart_markers_bands_from_entropy_checkpoints() {
    let dir = tempdir();
    let (w, h) = (250u32, 3100u32);
    let cases: [(u8, (i32, i32), bool); 8] = [
        (1, (1, 1), false),
        (3, (1, 1), false),
        (3, (2, 2), false),
        (3, (2, 1), false),
        (3, (1, 2), false),
        (4, (1, 1), false),
        (3, (2, 2), true),
        (1, (1, 1), true),
    ];
    for (i, (components, sampling, optimize)) in cases.into_iter().enumerate() {
        let bytes = encode_jpeg(components, sampling, 0, optimize, w, h);
        let p = write(dir.path(), &format!("s{i}.jpg"), &bytes);
        let image = OpenImage::open(&p).expect("open");
        assert!(
            matches!(
                image.layout.pages[0].storage,
                Storage::Stream { scan: Some(_), .. }
            ),
            "case {i}: not cut at MCU rows"
        );
        let (own, whole) = bands_and_whole(&image);
        assert!(own.len() >= 3, "case {i}: {} bands", own.len());
        let r = reference(&p);
        for (b, (piece, same)) in own.iter().zip(&whole).enumerate() {
            assert_eq!(piece.extent, same.extent);
            assert_eq!(
                crate::support::diff(&piece.rgba, &same.rgba).0,
                0,
                "case {i} band {b}: differs from the whole decode"
            );
            let (max, mean) = band_diff(piece, &r);
            assert!(max <= 32 && mean <= 1.5, "case {i} band {b}: {max} {mean}");
        }
        let ix = image.index.as_ref().expect("an index");
        assert!(ix.is_complete());
    }
}

#[test]
fn jpeg_entropy_pass_stops_at_damage() {
    let dir = tempdir();
    let bytes = encode_jpeg(3, (2, 2), 0, false, 256, 3100);
    let whole = write(dir.path(), "whole.jpg", &bytes);
    let r = reference(&whole);
    // Cut: the pass reports where the data ends; bands above still decode.
    let cut = write(dir.path(), "cut.jpg", &bytes[..bytes.len() * 8 / 10]);
    let image = OpenImage::open(&cut).expect("header is intact");
    let page = &image.layout.pages[0];
    let ix = image.index.as_ref().expect("an index");
    let bands = page.grid.unit_rows();
    let err = one_band(&image, page, ix, bands - 1).expect_err("last band is cut");
    assert!(err.contains("ends"), "{err}");
    let reached = ix.reached();
    assert!(
        reached >= 1 && reached < bands,
        "reached {reached} of {bands}"
    );
    for band in 0..reached {
        let piece = one_band(&image, page, ix, band).expect("band before the cut");
        assert!(band_diff(&piece, &r).0 <= 32, "band {band}");
    }
    // Garbage in the middle of the data (bits that still decode, as libjpeg would decode
    // them too): no panic; the last band is a one-line error or a band of the right size, and
    // the first band, above the damage, equals the undamaged file's.
    let mut bad = bytes.clone();
    let at = bad.len() / 2;
    for b in &mut bad[at..at + 64] {
        *b = 0xA5;
    }
    let bad = write(dir.path(), "bad.jpg", &bad);
    let image = OpenImage::open(&bad).expect("header is intact");
    let page = &image.layout.pages[0];
    let ix = image.index.as_ref().expect("an index");
    let last = page.grid.unit_rows() - 1;
    match one_band(&image, page, ix, last) {
        Err(e) => assert_eq!(e.lines().count(), 1, "one line: {e}"),
        Ok(p) => assert_eq!(p.extent, page.grid.unit_extent(last), "the band's rows"),
    }
    let first = one_band(&image, page, ix, 0).expect("the first band is intact");
    let clean = OpenImage::open(&whole).expect("open");
    let cp = &clean.layout.pages[0];
    let want = one_band(&clean, cp, clean.index.as_ref().expect("an index"), 0).expect("band");
    assert!(
        first.rgba == want.rgba,
        "the first band equals the undamaged file's"
    );
}

#[test]
fn checkpoints_of_a_partial_pass_are_kept_and_extended() {
    let dir = tempdir();
    let levels = dir.path().join("levels");
    let (w, h) = (1000, 5000); // five bands
    let bytes = encode_png(
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        false,
        (w, h),
        png::Compression::Balanced,
        65536,
    );
    let p = write(dir.path(), "tall.png", &bytes);
    let render = |region: &str, out: &str| {
        let out = dir.path().join(out);
        let (code, _, err) = run(&[
            "render",
            &p.display().to_string(),
            "--region",
            region,
            "--stats",
            "--levels-dir",
            &levels.display().to_string(),
            "-o",
            &out.display().to_string(),
        ]);
        assert_eq!(code, 0, "{err}");
        stats_bytes_read(&err)
    };
    let info = || {
        run(&[
            "info",
            &p.display().to_string(),
            "--levels-dir",
            &levels.display().to_string(),
        ])
        .1
    };
    // Band 2 of 0..=4: the pass stops at band 3's first row, and what it found is kept.
    let first = render("600,2100,300,300", "a.png");
    assert!(
        tessera::index::file_for(&levels, &p).exists(),
        "partial index kept"
    );
    let table = info();
    assert!(
        !table.contains("(complete)") && table.contains("bands reached"),
        "{table}"
    );
    assert!(table.contains("4 of 5 bands reached"), "{table}");
    // The same view again resumes from the kept checkpoint of band 2 (reading ahead from
    // there to the end of this small file: 3/5 of it).
    let second = render("600,2100,300,300", "b.png");
    assert!(
        second < first * 7 / 10,
        "second read {second}, first {first}"
    );
    // A view further down extends the kept index to the end.
    render("600,4600,300,300", "c.png");
    assert!(info().contains("(complete)"), "{}", info());
    let third = render("600,4600,300,300", "d.png");
    assert!(third < bytes.len() as u64 / 3, "third read {third}");
    let r = reference(&p);
    for (name, (x, y)) in [
        ("a.png", (600, 2100)),
        ("b.png", (600, 2100)),
        ("d.png", (600, 4600)),
    ] {
        let got = image::open(dir.path().join(name)).expect("out").to_rgba8();
        let want = image::imageops::crop_imm(&r, x, y, 300, 300).to_image();
        assert_eq!(
            crate::support::diff(got.as_raw(), want.as_raw()).0,
            0,
            "{name}"
        );
    }
}
