//! Scientific samples: every TIFF sample type (chunky and planar, predictors 2 and 3, many
//! channels, no-data), FITS (BZERO/BSCALE/BLANK, cubes, bottom-up rows), decoded exactly
//! against the values the fixtures were written from; the display mapping on the command line.

use std::path::{Path, PathBuf};

use tessera::OpenImage;

use crate::support::synth::{TiffSpec, write_tiff_data};
use crate::support::{self, encode::zlib, native, render_cli, run, tempdir};

/// A value of type (format, bits) at (x, y, c): spans the type's range, negative for signed,
/// fractional for floats.
fn value(format: u16, bits: u16, x: u32, y: u32, c: u32) -> f64 {
    let t = f64::from((x * 7 + y * 13 + c * 31) % 97) / 96.0;
    match (format, bits) {
        (3, 16) => (t - 0.5) * 1000.0,
        (3, _) => (t - 0.5) * 1.0e6 + f64::from(x) * 1e-3,
        (2, b) => {
            let m = 2f64.powi(i32::from(b) - 1);
            ((t * 2.0 - 1.0) * (m - 1.0)).round()
        }
        (_, 64) => (t * 1.8e19).floor(),
        (_, b) => (t * (2f64.powi(i32::from(b)) - 1.0)).round(),
    }
}

fn expected(format: u16, bits: u16, w: u32, h: u32, ch: u32) -> Vec<f64> {
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                let v = value(format, bits, x, y, c);
                out.push(match (format, bits) {
                    (3, 16) => f64::from(half::f16::from_f64(v).to_f32()),
                    (3, 32) => f64::from(v as f32),
                    (1, 64) => v as u64 as f64,
                    (2, 64) => v as i64 as f64,
                    _ => v,
                });
            }
        }
    }
    out
}

fn write(dir: &Path, name: &str, spec: &TiffSpec, deflate: bool) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    let (fmt, bits) = (spec.sample_format, spec.bits);
    let sample = move |x, y, c| value(fmt, bits, x, y, c);
    let z = |b: &[u8]| zlib(b, flate2::Compression::fast());
    write_tiff_data(
        &mut f,
        spec,
        &sample,
        deflate.then_some((8, &z as &dyn Fn(&[u8]) -> Vec<u8>)),
    )
    .expect("write");
    path
}

#[test]
fn every_tiff_sample_type_decodes_exactly() {
    let dir = tempdir();
    let types = [
        (1, 16),
        (1, 32),
        (1, 64),
        (2, 8),
        (2, 16),
        (2, 32),
        (2, 64),
        (3, 16),
        (3, 32),
        (3, 64),
    ];
    let (w, h) = (37, 29);
    for (fmt, bits) in types {
        for (samples, planar, tiled, predictor, be) in [
            (1, false, false, 1, false),
            (3, false, true, 1, true),
            (3, true, false, 1, false),
            (5, false, true, if fmt == 3 { 3 } else { 2 }, false),
            (2, true, true, if fmt == 3 { 3 } else { 2 }, true),
        ] {
            let mut spec = TiffSpec::new(w, h, samples, bits, 1).strips(8);
            if tiled {
                spec = spec.tiles(16, 16);
            }
            spec.sample_format = fmt;
            spec.planar = planar;
            spec.big_endian = be;
            spec.predictor = predictor;
            spec.extra_samples = vec![0; samples as usize - 1];
            let name = format!("t{fmt}-{bits}-{samples}-{planar}-{tiled}-{predictor}.tif");
            let path = write(dir.path(), &name, &spec, predictor != 1 || tiled);
            let (gw, gh, ch, got) = native(&path, 0);
            assert_eq!((gw, gh, ch), (w, h, samples as usize), "{name}");
            let want = expected(fmt, bits, w, h, u32::from(samples));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(a == b, "{name}: sample {i}: {a} != {b}");
            }
        }
    }
}

#[test]
fn sixty_four_channels_and_names_and_nodata() {
    let dir = tempdir();
    let mut spec = TiffSpec::new(20, 10, 64, 16, 1).strips(4);
    spec.planar = true;
    spec.extra_samples = vec![0; 63];
    let path = write(dir.path(), "c64.tif", &spec, true);
    let (_, _, ch, got) = native(&path, 0);
    assert_eq!(ch, 64);
    assert_eq!(got, expected(1, 16, 20, 10, 64));

    let mut spec = TiffSpec::new(16, 16, 2, 32, 1);
    spec.sample_format = 3;
    spec.extra_samples = vec![0];
    spec.nodata = Some("-9999".into());
    spec.description = Some(
        r#"<?xml version="1.0"?><OME><Image><Pixels><Channel ID="Channel:0:0" Name="DAPI"/><Channel ID="Channel:0:1" Name="GFP"/></Pixels></Image></OME>"#.into(),
    );
    let path = write(dir.path(), "named.tif", &spec, false);
    let image = OpenImage::open(&path).expect("open");
    let info = image
        .page(0)
        .expect("page")
        .data
        .clone()
        .expect("data page");
    assert_eq!(info.names, vec!["DAPI", "GFP"]);
    assert_eq!(info.nodata, Some(-9999.0));
    let (code, out, err) = run(&["info", path.to_str().expect("utf8")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("float32, 2 channels"), "{out}");
    assert!(out.contains("DAPI") && out.contains("GFP"), "{out}");
    assert!(out.contains("-9999"), "{out}");
}

#[test]
fn eight_bit_pictures_stay_pictures() {
    let dir = tempdir();
    let spec = TiffSpec::new(16, 16, 3, 8, 2);
    let path = write(dir.path(), "rgb8.tif", &spec, false);
    let image = OpenImage::open(&path).expect("open");
    assert!(image.page(0).expect("page").data.is_none());
}

/// One HDU of a FITS file: its header cards and data.
type Hdu<'a> = (Vec<(&'a str, String)>, Vec<u8>);

/// A FITS file: header cards (padded to 2880), then big-endian data padded to 2880.
pub fn fits(cards: &[(&str, String)], data: &[u8], extensions: &[Hdu<'_>]) -> Vec<u8> {
    fn hdu(out: &mut Vec<u8>, cards: &[(&str, String)], data: &[u8]) {
        let start = out.len();
        for (k, v) in cards {
            let card = format!("{k:<8}= {v:>20}");
            out.extend_from_slice(format!("{card:<80}").as_bytes());
        }
        out.extend_from_slice(format!("{:<80}", "END").as_bytes());
        while !(out.len() - start).is_multiple_of(2880) {
            out.push(b' ');
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(2880) {
            out.push(0);
        }
    }
    let mut out = Vec::new();
    hdu(&mut out, cards, data);
    for (c, d) in extensions {
        hdu(&mut out, c, d);
    }
    out
}

fn card(k: &'static str, v: impl ToString) -> (&'static str, String) {
    (k, v.to_string())
}

#[test]
fn fits_conventions_decode_exactly() {
    let dir = tempdir();
    let (w, h) = (13u32, 7u32);
    // uint16 by BZERO 32768, BLANK, stored bottom-up.
    let mut data = Vec::new();
    let val = |x: u32, y: u32| ((x * 5000 + y * 311) % 65536) as u16;
    for fy in 0..h {
        let y = h - 1 - fy; // FITS row 1 is the bottom of the picture
        for x in 0..w {
            let stored = (i32::from(val(x, y)) - 32768) as i16;
            data.extend_from_slice(&stored.to_be_bytes());
        }
    }
    let primary = vec![
        card("SIMPLE", "T"),
        card("BITPIX", 16),
        card("NAXIS", 2),
        card("NAXIS1", w),
        card("NAXIS2", h),
        card("BZERO", 32768),
        card("BSCALE", 1),
        card("BLANK", -32768),
    ];
    // An IMAGE extension: a float32 cube of 3 channels with NaN, and a BINTABLE to skip.
    let mut cube = Vec::new();
    for c in 0..3u32 {
        for fy in 0..h {
            let y = h - 1 - fy;
            for x in 0..w {
                let v = if x == 0 && y == 0 {
                    f32::NAN
                } else {
                    (x as f32 - 3.5) * 0.25 + y as f32 * 10.0 + c as f32 * 1000.0
                };
                cube.extend_from_slice(&v.to_be_bytes());
            }
        }
    }
    let ext = vec![
        card("XTENSION", "'IMAGE   '"),
        card("BITPIX", -32),
        card("NAXIS", 3),
        card("NAXIS1", w),
        card("NAXIS2", h),
        card("NAXIS3", 3),
        card("PCOUNT", 0),
        card("GCOUNT", 1),
        card("CTYPE3", "'BAND'"),
        card("BUNIT", "'Jy/beam'"),
    ];
    let table = vec![
        card("XTENSION", "'BINTABLE'"),
        card("BITPIX", 8),
        card("NAXIS", 2),
        card("NAXIS1", 4),
        card("NAXIS2", 2),
        card("PCOUNT", 0),
        card("GCOUNT", 1),
        card("TFIELDS", 1),
    ];
    // int16 scaled: physical = stored · 0.5 + 100.
    let mut scaled = Vec::new();
    for i in 0..(w * h) as i16 {
        scaled.extend_from_slice(&(i - 20).to_be_bytes());
    }
    let ext2 = vec![
        card("XTENSION", "'IMAGE   '"),
        card("BITPIX", 16),
        card("NAXIS", 2),
        card("NAXIS1", w),
        card("NAXIS2", h),
        card("BSCALE", 0.5),
        card("BZERO", 100),
    ];
    let bytes = fits(
        &primary,
        &data,
        &[(ext, cube), (table, vec![0; 8]), (ext2, scaled)],
    );
    let path = support::write(dir.path(), "multi.fits", &bytes);
    let image = OpenImage::open(&path).expect("open");
    assert_eq!(image.layout.pages.len(), 3, "the BINTABLE is not a page");
    let info0 = image.page(0).expect("page").data.clone().expect("data");
    assert_eq!(info0.sample, tessera::data::SampleType::U16);
    assert_eq!(info0.nodata, Some(0.0), "BLANK -32768 + BZERO");
    let (_, _, _, got) = native(&path, 0);
    for y in 0..h {
        for x in 0..w {
            assert_eq!(got[(y * w + x) as usize], f64::from(val(x, y)), "({x},{y})");
        }
    }
    let (_, _, ch, got) = native(&path, 1);
    assert_eq!(ch, 3);
    assert!(got[0].is_nan());
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                if x == 0 && y == 0 {
                    continue;
                }
                let want = (x as f32 - 3.5) * 0.25 + y as f32 * 10.0 + c as f32 * 1000.0;
                assert_eq!(got[((y * w + x) * 3 + c) as usize], f64::from(want));
            }
        }
    }
    let info1 = image.page(1).expect("page").data.clone().expect("data");
    assert_eq!(info1.names, vec!["BAND 1", "BAND 2", "BAND 3"]);
    assert_eq!(info1.unit.as_deref(), Some("Jy/beam"));
    let info2 = image.page(2).expect("page").data.clone().expect("data");
    assert_eq!(info2.scale, Some((0.5, 100.0)));
    let (_, _, _, got) = native(&path, 2);
    // Stored row 0 is the bottom row; physical values through the scale.
    let stored_first = got[((h - 1) * w) as usize];
    assert_eq!(stored_first, -20.0);
    assert_eq!(info2.value(stored_first), Some(90.0));

    // A window on the command line maps the 16-bit page exactly.
    let out = dir.path().join("w.png");
    let (code, err) = render_cli(
        &path,
        &format!("0,0,{w},{h}"),
        &out,
        &["--window", "0,65535"],
    );
    assert_eq!(code, 0, "{err}");
    let png = image::open(&out).expect("png").to_rgba8();
    for y in 0..h {
        for x in 0..w {
            let v = f64::from(val(x, y));
            let p = png.get_pixel(x, y).0;
            if v == 0.0 {
                assert_eq!(p[3], 0, "BLANK is transparent");
                continue;
            }
            let want = (v / 65535.0 * 255.0).round();
            assert!(
                (f64::from(p[0]) - want).abs() <= 1.0,
                "({x},{y}): {p:?} vs {want}"
            );
        }
    }
}

#[test]
fn twelve_bit_microscope_image_renders_visible_by_default() {
    let dir = tempdir();
    // Values 80..4000 in 16-bit samples: `value >> 8` would use 16 grey levels.
    let mut spec = TiffSpec::new(64, 48, 1, 16, 1).tiles(16, 16);
    spec.sample_format = 1;
    let path = dir.path().join("12bit.tif");
    let mut f = std::fs::File::create(&path).expect("create");
    let sample = |x: u32, y: u32, _c: u32| 80.0 + f64::from((x * 61 + y * 17) % 3921);
    write_tiff_data(&mut f, &spec, &sample, None).expect("write");
    drop(f);
    let out = dir.path().join("auto.png");
    let (code, err) = render_cli(&path, "0,0,64,48", &out, &["--stats"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("window channel 0:"), "{err}");
    let png = image::open(&out).expect("png").to_rgba8();
    let mut levels = std::collections::HashSet::new();
    for p in png.pixels() {
        levels.insert(p.0[0]);
    }
    assert!(
        levels.len() > 200,
        "auto contrast uses {} grey levels",
        levels.len()
    );
    // Explicit window, transfer and colormap: each pixel is the colormap at its value.
    let (code, err) = render_cli(
        &path,
        "0,0,64,48",
        &out,
        &[
            "--window",
            "80,4000",
            "--transfer",
            "sqrt",
            "--colormap",
            "viridis",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let png = image::open(&out).expect("png").to_rgba8();
    for (x, y, p) in png.enumerate_pixels() {
        let v = sample(x, y, 0);
        let t = ((v - 80.0) / 3920.0).clamp(0.0, 1.0).sqrt();
        let want = tessera::display::Colormap::Viridis.eval(t);
        for k in 0..3 {
            assert!(p.0[k].abs_diff(want[k]) <= 2, "({x},{y}) {p:?} vs {want:?}");
        }
    }
    // Options that only apply to data pages are refused on pictures, in one line.
    let rgb = dir.path().join("rgb.tif");
    let mut f = std::fs::File::create(&rgb).expect("create");
    write_tiff_data(&mut f, &TiffSpec::new(8, 8, 3, 8, 2), &|_, _, _| 1.0, None).expect("w");
    let (code, err) = render_cli(&rgb, "0,0,8,8", &out, &["--window", "0,10"]);
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn the_benchmark_kinds_agree_with_each_other() {
    use crate::support::synth::{Kind, elevation, write_file};
    let dir = tempdir();
    let (w, h) = (300, 200);
    let tif = dir.path().join("dem.tif");
    let fits = dir.path().join("dem.fits");
    let t12 = dir.path().join("t12.tif");
    write_file(Kind::DemTiff, w, h, &tif).expect("tiff");
    write_file(Kind::DemFits, w, h, &fits).expect("fits");
    write_file(Kind::Tiff12, w, h, &t12).expect("tiff12");
    let (_, _, _, a) = native(&tif, 0);
    let (_, _, _, b) = native(&fits, 0);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let want = f64::from(elevation(i as u32 % w, i as u32 / w, w, h));
        assert!(
            (x.is_nan() && y.is_nan() && want.is_nan()) || (x == y && *x == want),
            "sample {i}: tiff {x} fits {y} want {want}"
        );
    }
    let (_, _, _, c) = native(&t12, 0);
    assert!(c.iter().all(|v| (80.0..=4000.0).contains(v)));
}

#[test]
fn data_levels_are_float_means_that_skip_no_data() {
    let dir = tempdir();
    let store = dir.path().join("levels");
    let (w, h) = (1100u32, 700u32);
    let mut spec = TiffSpec::new(w, h, 1, 16, 1).tiles(128, 128);
    spec.sample_format = 2;
    spec.nodata = Some("-32768".into());
    let v = move |x: u32, y: u32| -> f64 {
        if (300..340).contains(&x) && (200..260).contains(&y) {
            -32768.0
        } else {
            f64::from((x * 13 + y * 7) % 2000) - 1000.0
        }
    };
    let path = dir.path().join("i16.tif");
    let mut f = std::fs::File::create(&path).expect("create");
    let z = |b: &[u8]| zlib(b, flate2::Compression::fast());
    write_tiff_data(&mut f, &spec, &move |x, y, _| v(x, y), Some((8, &z))).expect("write");
    drop(f);
    let s = store.to_str().expect("utf8");
    let image = build_levels(&path, &store);
    let built = image.built_levels().expect("built");
    assert!(built.plan.float);
    let level = &built.image.layout.pages[0];
    let info = level.data.clone().expect("a float level is a data page");
    assert_eq!(info.sample, tessera::data::SampleType::F32);
    let factor = built.factor(0);
    let (lw, lh, _, got) = native(built.image.path(), 0);
    assert_eq!((lw, lh), (w.div_ceil(factor), h.div_ceil(factor)));
    for ly in 0..lh {
        for lx in 0..lw {
            let (mut sum, mut n) = (0.0, 0);
            for y in ly * factor..((ly + 1) * factor).min(h) {
                for x in lx * factor..((lx + 1) * factor).min(w) {
                    if v(x, y) != -32768.0 {
                        sum += v(x, y);
                        n += 1;
                    }
                }
            }
            let g = got[(ly * lw + lx) as usize];
            if n == 0 {
                assert!(g.is_nan(), "({lx},{ly}) is no-data");
            } else {
                let want = f64::from((sum / f64::from(n)) as f32);
                assert!((g - want).abs() < 1e-3, "({lx},{ly}): {g} vs {want}");
            }
        }
    }
    // A scaled render reads the float level, and its no-data block is transparent.
    let out_png = dir.path().join("s.png");
    let (code, err) = render_cli(
        &path,
        &format!("0,0,{w},{h}"),
        &out_png,
        &[
            "--scale",
            "4",
            "--window",
            "-1000,1000",
            "--levels-dir",
            s,
            "--stats",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("level: 1/4 (built level"), "{err}");
    let png = image::open(&out_png).expect("png").to_rgba8();
    assert_eq!(png.get_pixel(80, 57).0[3], 0, "the no-data block");
    assert_eq!(png.get_pixel(10, 10).0[3], 255);
}

#[test]
fn lying_fits_headers_get_one_line_errors() {
    let dir = tempdir();
    let base = |w: &str, bitpix: &str| {
        vec![
            card("SIMPLE", "T"),
            card("BITPIX", bitpix),
            card("NAXIS", 2),
            card("NAXIS1", w),
            card("NAXIS2", 4),
        ]
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("huge", fits(&base("4000000000000", "16"), &[0; 32], &[])),
        ("past-eof", fits(&base("100000", "16"), &[0; 32], &[])),
        ("bitpix", fits(&base("4", "12"), &[0; 32], &[])),
        ("not-a-number", fits(&base("four", "16"), &[0; 32], &[])),
        (
            "no-end",
            b"SIMPLE  =                    T"
                .iter()
                .copied()
                .chain(std::iter::repeat_n(b' ', 2850))
                .collect(),
        ),
        (
            "no-image",
            fits(
                &[card("SIMPLE", "T"), card("BITPIX", 8), card("NAXIS", 0)],
                &[],
                &[],
            ),
        ),
    ];
    for (what, bytes) in cases {
        let p = support::write(dir.path(), &format!("{what}.fits"), &bytes);
        let (code, _, err) = run(&["info", p.to_str().expect("utf8")]);
        assert_eq!(code, 2, "{what}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
    }
}

#[test]
fn levels_of_many_channels() {
    let dir = tempdir();
    let store = dir.path().join("levels");
    let (w, h, n) = (900u32, 600u32, 6u16);
    let mut spec = TiffSpec::new(w, h, n, 16, 1).tiles(128, 128);
    spec.planar = true;
    spec.extra_samples = vec![0; usize::from(n) - 1];
    let v = |x: u32, y: u32, c: u32| f64::from((x * (3 + c) + y * 5 + c * 1000) % 4096);
    let path = dir.path().join("six.tif");
    let mut f = std::fs::File::create(&path).expect("create");
    let z = |b: &[u8]| zlib(b, flate2::Compression::fast());
    write_tiff_data(&mut f, &spec, &v, Some((8, &z))).expect("write");
    drop(f);
    let image = build_levels(&path, &store);
    let built = image.built_levels().expect("built");
    let f = built.factor(0);
    let (lw, lh, ch, got) = native(built.image.path(), 0);
    assert_eq!(ch, usize::from(n));
    for (lx, ly) in [(0, 0), (lw / 2, lh / 3), (lw - 1, lh - 1)] {
        for c in 0..u32::from(n) {
            let (mut sum, mut k) = (0.0, 0.0);
            for y in ly * f..((ly + 1) * f).min(h) {
                for x in lx * f..((lx + 1) * f).min(w) {
                    sum += v(x, y, c);
                    k += 1.0;
                }
            }
            let g = got[((ly * lw + lx) as usize) * ch + c as usize];
            assert!(
                (g - sum / k).abs() < 1e-2,
                "({lx},{ly}) channel {c}: {g} vs {}",
                sum / k
            );
        }
    }
}

/// `tessera levels FILE --levels-dir STORE`, then the file opened with its kept levels.
fn build_levels(path: &Path, store: &Path) -> std::sync::Arc<OpenImage> {
    let (p, s) = (path.to_str().expect("utf8"), store.to_str().expect("utf8"));
    let (code, out, err) = run(&["levels", p, "--levels-dir", s]);
    assert_eq!(code, 0, "{out}{err}");
    let image = OpenImage::open(path).expect("open");
    let cfg = tessera::levels::LevelsConfig {
        dir: Some(store.to_path_buf()),
        cap_bytes: 1 << 30,
        auto_pixels: 0,
    };
    assert!(
        tessera::levels::attach_existing(&image, &cfg),
        "levels kept"
    );
    image
}

/// Run a command-line tool that writes test fixtures (cfitsio's `fpack`/`funpack`).
fn tool(cmd: &str, args: &[&str]) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} (Debian: libcfitsio-bin): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tile_compressed_fits_decodes_like_funpack() {
    let dir = tempdir();
    let (w, h) = (203u32, 151u32);
    let v16 = |x: u32, y: u32| ((x * 37 + y * 11) % 2000) as i16 - 1000;
    let mut ints = Vec::new();
    for fy in 0..h {
        for x in 0..w {
            ints.extend_from_slice(&v16(x, h - 1 - fy).to_be_bytes());
        }
    }
    let int_cards = vec![
        card("SIMPLE", "T"),
        card("BITPIX", 16),
        card("NAXIS", 2),
        card("NAXIS1", w),
        card("NAXIS2", h),
    ];
    let mut floats = Vec::new();
    let vf = |x: u32, y: u32| -> f32 {
        if (x as i32 - 50).pow(2) + (y as i32 - 60).pow(2) < 100 {
            f32::NAN
        } else {
            (x as f32 * 0.05).sin() * 100.0 + y as f32 * 0.5
        }
    };
    for fy in 0..h {
        for x in 0..w {
            floats.extend_from_slice(&vf(x, h - 1 - fy).to_be_bytes());
        }
    }
    let float_cards = vec![
        card("SIMPLE", "T"),
        card("BITPIX", -32),
        card("NAXIS", 2),
        card("NAXIS1", w),
        card("NAXIS2", h),
    ];
    let cases: Vec<(&str, &[&str], bool)> = vec![
        ("i16", &["-r", "-t", "64,32"], false),
        ("i16", &["-g", "-t", "64,32"], false),
        ("i16", &["-r"], false),
        ("f32", &["-r", "-t", "64,32"], true),
        ("f32", &["-g2", "-t", "64,32"], true),
        ("f32", &["-g", "-q", "0", "-t", "64,32"], true),
    ];
    for (i, (kind, opts, float)) in cases.into_iter().enumerate() {
        let name = format!("c{i}_{kind}.fits");
        let bytes = if float {
            fits(&float_cards, &floats, &[])
        } else {
            fits(&int_cards, &ints, &[])
        };
        let plain = support::write(dir.path(), &name, &bytes);
        let p = plain.to_str().expect("utf8");
        let mut args: Vec<&str> = opts.to_vec();
        args.push(p);
        tool("fpack", &args);
        let fz = dir.path().join(format!("{name}.fz"));
        // funpack's decode is the reference (lossy for quantized floats).
        let back = dir.path().join(format!("back_{name}"));
        tool(
            "funpack",
            &[
                "-O",
                back.to_str().expect("utf8"),
                fz.to_str().expect("utf8"),
            ],
        );
        let (gw, gh, _, got) = native(&fz, 0);
        let (_, _, _, want) = native(&back, 0);
        let (_, _, _, orig) = native(&plain, 0);
        assert_eq!((gw, gh), (w, h), "{name} {opts:?}");
        if !float {
            assert_eq!(got, orig, "{name}: lossless");
        }
        let mut same_as_funpack = 0;
        for (k, ((a, b), o)) in got.iter().zip(&want).zip(&orig).enumerate() {
            let at = (k as u32 % w, k as u32 / w);
            // Quantized floats come back within a quantization step of the original (NaN
            // where it was NaN) ...
            assert!(
                (a - o).abs() <= 0.05 || (a.is_nan() && o.is_nan()),
                "{name} {opts:?}: sample {at:?}: {a} vs original {o}"
            );
            // ... and exactly as funpack undoes the dither. (Debian's cfitsio 4.2 restores
            // tiles that hold NaN wrongly: there funpack is not a reference.)
            if (b - o).abs() <= 0.05 {
                assert_eq!(a, b, "{name} {opts:?}: sample {at:?} vs funpack");
                same_as_funpack += 1;
            }
        }
        assert!(
            same_as_funpack > (w * h) as usize / 2,
            "{name}: {same_as_funpack} compared"
        );
    }
}

#[test]
fn damaged_tile_compressed_fits_fails_in_one_line() {
    let dir = tempdir();
    let (w, h) = (97u32, 61u32);
    let mut ints = Vec::new();
    for i in 0..w * h {
        ints.extend_from_slice(&((i * 7919 % 30000) as i16).to_be_bytes());
    }
    let cards = vec![
        card("SIMPLE", "T"),
        card("BITPIX", 16),
        card("NAXIS", 2),
        card("NAXIS1", w),
        card("NAXIS2", h),
    ];
    let plain = support::write(dir.path(), "d.fits", &fits(&cards, &ints, &[]));
    tool(
        "fpack",
        &["-r", "-t", "32,16", plain.to_str().expect("utf8")],
    );
    let bytes = std::fs::read(dir.path().join("d.fits.fz")).expect("fz");
    let out = dir.path().join("o.png");
    let region = format!("0,0,{w},{h}");
    let check = |b: &[u8], what: &str| {
        let p = support::write(dir.path(), "bad.fits.fz", b);
        let (code, err) = render_cli(&p, &region, &out, &["--window", "0,30000"]);
        assert!(code == 0 || code == 2, "{what}: exit {code}: {err}");
        if code != 0 {
            assert_eq!(err.trim().lines().count(), 1, "{what}: {err}");
        }
    };
    for keep in [100, 2880, 5760, 5800, bytes.len() / 2, bytes.len() - 10] {
        check(&bytes[..keep], &format!("cut at {keep}"));
    }
    for i in (2880..bytes.len()).step_by(53) {
        let mut b = bytes.clone();
        b[i] ^= 0x5A;
        check(&b, &format!("byte {i} flipped"));
    }
}
