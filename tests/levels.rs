//! Resolution levels a file already has: TIFF reduced-resolution pages become levels that
//! `render --scale`, `info` and the viewer use.

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use crate::support::synth::{TiffSpec, pattern, write_tiff_pages};
use crate::support::*;
use tessera::cache::PieceCache;
use tessera::format::Extent;
use tessera::loader::Loader;
use tessera::render::{RenderRequest, render};

const W: u32 = 1000;
const H: u32 = 760;

fn base(x: u32, y: u32, c: u32) -> u16 {
    u16::from(pattern(x, y, c))
}

/// The base image's pixel as RGBA.
fn base_rgba(x: u32, y: u32) -> [u8; 4] {
    [
        base(x, y, 0) as u8,
        base(x, y, 1) as u8,
        base(x, y, 2) as u8,
        255,
    ]
}

/// Box average of the base over the f x f block at level pixel (x, y), like a pyramid writer.
fn boxed(f: u32) -> impl Fn(u32, u32, u32) -> u16 {
    move |x, y, c| {
        let (mut sum, mut n) = (0u32, 0u32);
        for dy in 0..f {
            for dx in 0..f {
                let (bx, by) = (x * f + dx, y * f + dy);
                if bx < W && by < H {
                    sum += u32::from(base(bx, by, c));
                    n += 1;
                }
            }
        }
        ((sum + n / 2) / n.max(1)) as u16
    }
}

/// A pyramid TIFF: full resolution, then 1/2, 1/4, 1/8 as reduced-resolution pages.
fn pyramid(dir: &std::path::Path) -> std::path::PathBuf {
    let mut specs = vec![TiffSpec::new(W, H, 3, 8, 2).tiles(64, 64)];
    for f in [2u32, 4, 8] {
        let mut s = TiffSpec::new(W.div_ceil(f), H.div_ceil(f), 3, 8, 2).tiles(64, 64);
        s.subfile_type = 1;
        specs.push(s);
    }
    let (b2, b4, b8) = (boxed(2), boxed(4), boxed(8));
    let samplers: [&dyn Fn(u32, u32, u32) -> u16; 4] = [&base, &b2, &b4, &b8];
    let mut cur = Cursor::new(Vec::new());
    write_tiff_pages(&mut cur, &specs, &samplers, None).expect("tiff");
    write(dir, "pyramid.tif", &cur.into_inner())
}

#[test]
fn reduced_pages_are_levels() {
    let dir = tempdir();
    let p = pyramid(dir.path());
    let image = tessera::OpenImage::open(&p).expect("open");
    let levels = |page: u32| -> Vec<(tessera::pieces::LevelSource, u32)> {
        tessera::pyramid::Pyramid::of(&image, page)
            .expect("page")
            .levels()
            .iter()
            .map(|l| (l.source, l.factor))
            .collect()
    };
    use tessera::pieces::LevelSource::Page;
    assert_eq!(
        levels(0),
        vec![(Page(0), 1), (Page(1), 2), (Page(2), 4), (Page(3), 8)]
    );
    assert_eq!(
        levels(2),
        vec![(Page(2), 1)],
        "a reduced page has no levels of its own"
    );
    let (code, stdout, stderr) = run(&["info", p.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("levels:  1/1 (page 0), 1/2 (page 1), 1/4 (page 2), 1/8 (page 3)"),
        "{stdout}"
    );
    let (_, json, _) = run(&["info", p.to_str().expect("utf-8"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["levels"].as_array().map(Vec::len), Some(4));
}

/// `render --scale 8` reads the 1/8 level, and agrees with a box filter of the full image.
#[test]
fn scaled_render_uses_the_coarsest_exact_level() {
    let dir = tempdir();
    let p = pyramid(dir.path());
    for (scale, region) in [
        (8u32, (0u32, 0u32, W, H)),
        (4, (64, 128, 512, 400)),
        (2, (2, 2, 300, 200)),
    ] {
        let image = tessera::OpenImage::open(&p).expect("open");
        let loader = Loader::new(
            image.clone(),
            Arc::new(Mutex::new(PieceCache::new(64 << 20))),
            2,
            1024,
        );
        let (x, y, w, h) = region;
        let (got, _) = render(
            &loader,
            RenderRequest::new(0, Extent::new(x, y, x + w, y + h), scale),
        )
        .expect("render");
        let want = crop_scaled(&base_rgba, region, scale);
        let (max, mean) = diff(&got.data, &want);
        // Box of boxes vs one box: rounding differs by at most a level or two.
        assert!(
            max <= 2 && mean < 0.6,
            "scale {scale}: max {max}, mean {mean}"
        );
        let read = image.source.bytes_read();
        let full = u64::from(w) * u64::from(h) * 3;
        assert!(
            read * (u64::from(scale) * u64::from(scale)) < full * 6,
            "scale {scale}: read {read} bytes for a {full}-byte region"
        );
    }
}

/// `--scale N` for N that no level's factor divides reads the coarsest level at most N (here
/// 1/8 for 11 and 23) and box-filters the rest, close to the full-resolution box filter.
#[test]
fn any_scale_reads_the_coarsest_level_at_most_the_scale() {
    let dir = tempdir();
    let p = pyramid(dir.path());
    for (scale, want_factor) in [(3u32, 2u32), (11, 8), (23, 8)] {
        let image = tessera::OpenImage::open(&p).expect("open");
        let loader = Loader::new(
            image.clone(),
            Arc::new(Mutex::new(PieceCache::new(64 << 20))),
            2,
            1024,
        );
        let (got, stats) = render(
            &loader,
            RenderRequest::new(0, Extent::new(0, 0, W, H), scale),
        )
        .expect("render");
        assert_eq!(stats.factor, want_factor, "scale {scale}");
        let want = crop_scaled(&base_rgba, (0, 0, W, H), scale);
        // The pattern is smooth but for its sawtooth wraps: level pixels cut by an output
        // pixel's edge only differ there.
        let (_, mean) = diff(&got.data, &want);
        assert!(mean < 1.5, "scale {scale}: mean difference {mean}");
        let level_bytes =
            u64::from(W.div_ceil(want_factor)) * u64::from(H.div_ceil(want_factor)) * 3;
        assert!(
            image.source.bytes_read() < level_bytes * 2 + (64 << 10),
            "scale {scale}: read {} bytes, the level has {level_bytes}",
            image.source.bytes_read()
        );
    }
}

/// Subsampled previews of raw blocks, uncompressed strips and tiles pick exactly every k-th
/// row and pixel.
#[test]
fn previews_subsample_raw_blocks_exactly() {
    use crate::support::synth::{Kind, write_file};
    let dir = tempdir();
    let (w, h) = (1001u32, 777u32);
    for (kind, name) in [
        (Kind::Ppm, "p.ppm"),
        (Kind::Bmp, "b.bmp"),
        (Kind::Pgm, "g.pgm"),
        (Kind::TiffStrip, "s.tif"),
        (Kind::TiffTiledRgba, "t.tif"),
    ] {
        let p = dir.path().join(name);
        write_file(kind, w, h, &p).expect("fixture");
        let image = tessera::OpenImage::open(&p).expect("open");
        let page = &image.layout.pages[0];
        let gray = kind == Kind::Pgm;
        for k in [2u32, 8, 64] {
            let grid = tessera::pieces::Geometry::preview(page, k).grid;
            for unit in 0..grid.unit_count() {
                let e = grid.unit_extent(unit);
                let piece =
                    tessera::decode::subsample::decode(&image.source, page, k, unit, 3, e.x1)
                        .expect("preview");
                assert_eq!(piece.extent, Extent::new(3, e.y0, e.x1, e.y1));
                for y in e.y0..e.y1 {
                    for x in 3..e.x1 {
                        let (bx, by) = (x * k, y * k);
                        let want = if gray {
                            let v = pattern(bx, by, 0);
                            [v, v, v, 255]
                        } else {
                            [
                                pattern(bx, by, 0),
                                pattern(bx, by, 1),
                                pattern(bx, by, 2),
                                255,
                            ]
                        };
                        assert_eq!(piece.rgba_at(x, y), Some(want), "{name} k={k} ({x},{y})");
                    }
                }
            }
        }
    }
}

/// Sub-byte rows (PBM) preview correctly too.
#[test]
fn previews_of_bilevel_rows() {
    let dir = tempdir();
    let (w, h) = (203u32, 61u32);
    let mut f = format!("P4\n{w} {h}\n").into_bytes();
    let bit = |x: u32, y: u32| (x * 7 + y * 3).is_multiple_of(5);
    for y in 0..h {
        let mut row = vec![0u8; w.div_ceil(8) as usize];
        for x in 0..w {
            if bit(x, y) {
                row[(x / 8) as usize] |= 0x80 >> (x % 8);
            }
        }
        f.extend_from_slice(&row);
    }
    let p = write(dir.path(), "b.pbm", &f);
    let image = tessera::OpenImage::open(&p).expect("open");
    let page = &image.layout.pages[0];
    for k in [2u32, 4, 16] {
        let piece = tessera::decode::subsample::decode(&image.source, page, k, 0, 0, w.div_ceil(k))
            .expect("preview");
        for y in 0..piece.extent.y1 {
            for x in 0..piece.extent.x1 {
                let v = if bit(x * k, y * k) { 0 } else { 255 };
                assert_eq!(piece.rgba_at(x, y), Some([v, v, v, 255]), "k={k} ({x},{y})");
            }
        }
    }
}
