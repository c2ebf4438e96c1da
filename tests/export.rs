//! Region export: the PNG a streamed export writes equals `render` of the same region, read
//! back by the `image` crate (turned by the `image` crate's own rotations when the view is
//! turned); TIFF exports keep a data page's native samples, read back by the `tiff` crate; a
//! cancelled export leaves no file; a region far bigger than the cache exports within it.

use std::sync::Arc;

use tessera::OpenImage;
use tessera::export::{ExportRequest, export_png, part_path};
use tessera::format::Extent;
use tessera::orientation::Orientation;
use tessera::progress::Progress;

use crate::support::synth::{TiffSpec, pattern_tiff};
use crate::support::{render_region, tempdir};

fn tiled(dir: &std::path::Path) -> std::path::PathBuf {
    pattern_tiff(
        &dir.join("big.tif"),
        &TiffSpec::new(3000, 2200, 3, 8, 2).tiles(256, 256),
    )
}

#[test]
fn exported_regions_equal_render_and_cancel_leaves_nothing() {
    let dir = tempdir();
    let path = tiled(dir.path());
    let image = OpenImage::open(&path).expect("open");
    for (region, scale) in [
        ((0u32, 0u32, 3000u32, 2200u32), 1u32),
        ((333, 101, 2001, 1500), 3),
    ] {
        let out = dir.path().join(format!("out-{scale}.png"));
        let (x, y, w, h) = region;
        let req = ExportRequest {
            page: 0,
            region: Extent::new(x, y, x + w, y + h),
            scale,
            out: out.clone(),
            // Far less than the 26 MB of the whole image as RGBA: the export streams.
            cache_bytes: 16 << 20,
            orient: Orientation::IDENTITY,
        };
        export_png(image.clone(), &req, None, &Progress::new()).expect("export");
        let got = image::open(&out).expect("read back").to_rgba8();
        let want = render_region(&path, region, scale).expect("render");
        assert_eq!((got.width(), got.height()), (want.width, want.height));
        assert!(
            got.as_raw() == &want.data,
            "export differs from render at scale {scale}"
        );
        assert!(!part_path(&out).exists());
    }
    let out = dir.path().join("cancelled.png");
    let progress = Progress::new();
    progress.cancel();
    let req = ExportRequest {
        page: 0,
        region: Extent::new(0, 0, 3000, 2200),
        scale: 1,
        out: out.clone(),
        cache_bytes: 16 << 20,
        orient: Orientation::IDENTITY,
    };
    let err = export_png(Arc::clone(&image), &req, None, &progress).expect_err("cancelled");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(
        !out.exists() && !part_path(&out).exists(),
        "no file, partial or final"
    );
}

/// `img` shown with EXIF orientation `v`, by the `image` crate's own operations.
pub fn turned(img: &image::RgbaImage, v: u16) -> image::RgbaImage {
    use image::imageops::{flip_horizontal, flip_vertical, rotate90, rotate180, rotate270};
    match v {
        2 => flip_horizontal(img),
        3 => rotate180(img),
        4 => flip_vertical(img),
        5 => flip_horizontal(&rotate90(img)),
        6 => rotate90(img),
        7 => flip_horizontal(&rotate270(img)),
        8 => rotate270(img),
        _ => img.clone(),
    }
}

#[test]
fn turned_exports_equal_the_turned_render() {
    let dir = tempdir();
    let path = tiled(dir.path());
    let image = OpenImage::open(&path).expect("open");
    for (v, scale) in [
        (2u16, 1u32),
        (3, 1),
        (4, 2),
        (5, 1),
        (6, 1),
        (6, 3),
        (7, 1),
        (8, 2),
    ] {
        let (x, y, w, h) = (333u32, 101u32, 701u32, 523u32);
        let out = dir.path().join(format!("turned-{v}-{scale}.png"));
        let req = ExportRequest {
            page: 0,
            region: Extent::new(x, y, x + w, y + h),
            scale,
            out: out.clone(),
            cache_bytes: 16 << 20,
            orient: Orientation::from_exif(v),
        };
        export_png(image.clone(), &req, None, &Progress::new()).expect("export");
        let got = image::open(&out).expect("read back").to_rgba8();
        let r = render_region(&path, (x, y, w, h), scale).expect("render");
        let plain = image::RgbaImage::from_raw(r.width, r.height, r.data).expect("image");
        let want = turned(&plain, v);
        assert_eq!(got.dimensions(), want.dimensions(), "orientation {v}");
        assert!(got == want, "orientation {v} at scale {scale}");
    }
}

/// A 16-bit signed, two-channel data TIFF with a no-data value.
fn data_tiff(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("data.tif");
    let mut spec = TiffSpec::new(517, 389, 2, 16, 1).tiles(128, 128);
    spec.sample_format = 2;
    spec.nodata = Some("-999".into());
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    crate::support::synth::write_tiff_data(
        &mut f,
        &spec,
        &|x, y, c| {
            if (x / 50 + y / 50) % 7 == 3 {
                -999.0
            } else {
                f64::from((x * 37 + y * 11 + c * 1000) % 20000) - 9000.0
            }
        },
        None,
    )
    .expect("tiff");
    p
}

#[test]
fn tiff_export_of_a_data_page_keeps_its_native_samples_turned_with_mean_levels() {
    use tiff::decoder::{Decoder, DecodingResult};
    use tiff::tags::Tag;
    let dir = tempdir();
    let path = data_tiff(dir.path());
    let image = OpenImage::open(&path).expect("open");
    let (w, h, ch, native) = crate::support::native(&path, 0);
    assert_eq!(ch, 2);
    let out = dir.path().join("native.tif");
    let (x0, y0, rw, rh) = (11u32, 7u32, 400u32, 300u32);
    let req = tessera::convert::ConvertRequest {
        page: 0,
        region: Extent::new(x0, y0, x0 + rw, y0 + rh),
        scale: 1,
        orient: Orientation::CW,
        tile: 64,
        compression: tessera::convert::Compression::Zstd,
        pyramid: true,
        native: true,
        out: out.clone(),
        cache_bytes: 16 << 20,
    };
    tessera::convert::convert(image, &req, None, &Progress::new()).expect("convert");
    // Turned clockwise: output (ox, oy) is region pixel (oy, rh - 1 - ox).
    let want: Vec<i16> = (0..rw)
        .flat_map(|oy| {
            let native = &native;
            (0..rh).flat_map(move |ox| {
                let (sx, sy) = (x0 + oy, y0 + rh - 1 - ox);
                (0..2).map(move |c| native[((sy * w + sx) as usize) * 2 + c] as i16)
            })
        })
        .collect();
    assert_eq!(h, 389);
    let mut d = Decoder::new(std::fs::File::open(&out).expect("open")).expect("decoder");
    assert_eq!(d.dimensions().expect("dims"), (rh, rw));
    assert_eq!(
        d.get_tag_u16_vec(Tag::SampleFormat).expect("format"),
        vec![2, 2]
    );
    assert_eq!(
        d.get_tag_ascii_string(Tag::GdalNodata).expect("nodata"),
        "-999"
    );
    let DecodingResult::I16(got) = d.read_image().expect("decode") else {
        panic!("not int16");
    };
    assert!(
        got == want,
        "full resolution differs from the turned samples"
    );
    // Level 1: the mean of the valid samples of each 2x2 block, rounded.
    d.next_image().expect("level 1");
    let (lw, lh) = d.dimensions().expect("dims");
    assert_eq!((lw, lh), (rh.div_ceil(2), rw.div_ceil(2)));
    let DecodingResult::I16(level) = d.read_image().expect("decode") else {
        panic!("not int16");
    };
    let (fw, fh) = (rh as usize, rw as usize);
    for (i, &v) in level.iter().enumerate() {
        let (x, y, c) = ((i / 2) % lw as usize, i / 2 / lw as usize, i % 2);
        let mut vals = Vec::new();
        for yy in 2 * y..(2 * y + 2).min(fh) {
            for xx in 2 * x..(2 * x + 2).min(fw) {
                let s = want[(yy * fw + xx) * 2 + c];
                if s != -999 {
                    vals.push(f64::from(s));
                }
            }
        }
        let mean = if vals.is_empty() {
            -999.0
        } else {
            (vals.iter().sum::<f64>() / vals.len() as f64).round()
        };
        assert_eq!(f64::from(v), mean, "level 1 sample {i}");
    }
}

#[test]
fn a_region_far_bigger_than_the_cache_exports_within_it() {
    // A 9000x8000 RGB PPM (216 MB; sparse, so it costs no disk) rendered whole (72 Mpx, over
    // the 64 Mpx at which `render` streams through the export path) with a 32 MB cache.
    let dir = tempdir();
    let path = dir.path().join("big.ppm");
    let header = b"P6\n9000 8000\n255\n";
    let mut f = std::fs::File::create(&path).expect("create");
    std::io::Write::write_all(&mut f, header).expect("header");
    f.set_len(header.len() as u64 + 9000 * 8000 * 3)
        .expect("size");
    drop(f);
    let out = dir.path().join("big.png");
    let (code, err) = crate::support::render_cli(
        &path,
        "0,0,9000,8000",
        &out,
        &["--cache-mb", "32", "--stats"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("streamed 9000x8000"), "{err}");
    let peak: f64 = err
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|v| v.trim_end_matches(" MB").parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {err}"));
    assert!(peak < 32.0 + 100.0, "peak {peak} MB with a 32 MB cache");
    let img = image::ImageReader::open(&out)
        .expect("open")
        .with_guessed_format()
        .expect("format")
        .into_dimensions()
        .expect("dims");
    assert_eq!(img, (9000, 8000));
}
