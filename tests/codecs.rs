//! The codecs big images are stored in: JPEG 2000 (tiled and untiled codestreams, JP2, TIFF
//! tiles), JPEG XL and LERC. Their fixtures (tests/fixtures, written by `make.sh` with
//! OpenJPEG's, libvips', libjxl's and GDAL's encoders) hold pixels from formulas recomputed
//! here: lossless files must decode exactly, lossy ones within a PSNR bound. JPEG 2000
//! resolution levels and tiles are checked against a whole decode of the codestream.

use std::path::{Path, PathBuf};

use tessera::OpenImage;
use tessera::decode::{decode_piece, tiff::DecoderCache};
use tessera::format::{FileFormat, Mode, Storage};

use crate::support::{native, render_cli, tempdir, write};

const W: u32 = 300;
const H: u32 = 200;
const GW: u32 = 1100;
const GH: u32 = 1050;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn rgb_at(x: u32, y: u32) -> [u8; 3] {
    [
        (x * 255 / W) as u8,
        (y * 255 / H) as u8,
        ((x ^ y) * 7 % 256) as u8,
    ]
}

fn gray16_at(x: u32, y: u32) -> f64 {
    f64::from((x * 97 + y * 31) % 4096)
}

/// Every pixel of page `page`, decoded unit by unit, as RGBA.
fn decoded_rgba(path: &Path, page: u32) -> (u32, u32, Vec<u8>) {
    let image = OpenImage::open(path).expect("open");
    let p = image.page(page).expect("page").clone();
    let mut out = vec![0u8; p.width as usize * p.height as usize * 4];
    let mut cache = DecoderCache::default();
    cache.set_source(&image.source);
    for unit in 0..p.unit_count() {
        let e = p.grid.unit_extent(unit);
        let piece = decode_piece(&image.source, &p, unit, e, &mut cache)
            .unwrap_or_else(|err| panic!("{}: unit {unit}: {err}", path.display()));
        assert_eq!(piece.extent, e);
        for y in e.y0..e.y1 {
            for x in e.x0..e.x1 {
                let px = piece.rgba_at(x, y).expect("pixel");
                let o = (y as usize * p.width as usize + x as usize) * 4;
                out[o..o + 4].copy_from_slice(&px);
            }
        }
    }
    (p.width, p.height, out)
}

/// PSNR of the RGB of `rgba` against the formula.
fn psnr_rgb(rgba: &[u8]) -> f64 {
    let mut se = 0f64;
    for y in 0..H {
        for x in 0..W {
            let o = ((y * W + x) * 4) as usize;
            for (k, v) in rgb_at(x, y).iter().enumerate() {
                se += (f64::from(rgba[o + k]) - f64::from(*v)).powi(2);
            }
        }
    }
    let mse = se / f64::from(W * H * 3);
    10.0 * (255f64 * 255.0 / mse.max(1e-9)).log10()
}

fn assert_rgb_exact(path: &Path) {
    let (w, h, rgba) = decoded_rgba(path, 0);
    assert_eq!((w, h), (W, H));
    for y in 0..H {
        for x in 0..W {
            let o = ((y * W + x) * 4) as usize;
            assert_eq!(
                rgba[o..o + 3],
                rgb_at(x, y),
                "{} at {x},{y}",
                path.display()
            );
        }
    }
}

#[test]
fn tiled_jp2_lossless_is_exact_with_one_descriptor_per_tile() {
    let path = fixture("j2k_tiled_lossless.jp2");
    let image = OpenImage::open(&path).expect("open");
    assert_eq!(image.layout.format, FileFormat::Jpeg2000);
    let p = image.page(0).expect("page");
    assert_eq!((p.width, p.height, p.mode), (W, H, Mode::Rgb));
    // 128-pixel tiles: 3 x 2 of them, each a descriptor at its own SOT marker.
    assert_eq!(p.descriptor_count(), 6);
    let mut bytes = vec![0u8; 2];
    for i in 0..6 {
        let d = p.descriptor(i);
        assert!(d.args.contains(&format!("tile {i}")), "{}", d.args);
        image
            .source
            .read_exact_at(d.offset, &mut bytes)
            .expect("read");
        assert_eq!(bytes, [0xFF, 0x90], "descriptor {i} starts at its SOT");
    }
    assert_rgb_exact(&path);
}

#[test]
fn jp2_resolution_levels_match_a_whole_decode_at_that_reduce_factor() {
    let path = fixture("j2k_tiled_lossless.jp2");
    let image = OpenImage::open(&path).expect("open");
    // The codestream's own levels are the pyramid (libvips wrote one decomposition level).
    let sizes: Vec<(u32, u32)> = image
        .layout
        .pages
        .iter()
        .map(|p| (p.width, p.height))
        .collect();
    assert_eq!(sizes, [(300, 200), (150, 100)]);
    assert_eq!(
        image.layout.reductions(0),
        vec![(0, 1), (1, 2)],
        "levels are the file's pyramid"
    );
    let file = std::fs::read(&path).expect("read");
    let soc = file
        .windows(4)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .expect("codestream");
    let cs = &file[soc..];
    for r in [0, 1u32] {
        let mut read = |pos: u64, buf: &mut [u8]| {
            let from = (pos as usize).min(cs.len());
            let n = buf.len().min(cs.len() - from);
            buf[..n].copy_from_slice(&cs[from..from + n]);
            n
        };
        let whole = tessera::sys::openjpeg::decode(
            cs.len() as u64,
            &mut read,
            &tessera::sys::openjpeg::Request {
                reduce: r,
                area: None,
                max_bytes: 1 << 30,
            },
        )
        .expect("whole decode");
        let (w, h, rgba) = decoded_rgba(&path, r);
        assert_eq!(
            (w, h),
            (whole.components[0].width, whole.components[0].height)
        );
        for y in 0..h {
            for x in 0..w {
                let o = ((y * w + x) * 4) as usize;
                for k in 0..3 {
                    let v = whole.components[k].data[(y * w + x) as usize];
                    assert_eq!(
                        i32::from(rgba[o + k]),
                        v,
                        "level {r} at {x},{y} channel {k}"
                    );
                }
            }
        }
    }
}

#[test]
fn untiled_16_bit_codestream_decodes_areas_exactly() {
    let path = fixture("j2k_untiled_gray16.j2k");
    let image = OpenImage::open(&path).expect("open");
    let p = image.page(0).expect("page");
    assert_eq!((p.width, p.height, p.mode), (GW, GH, Mode::Data));
    // One codestream tile, decoded as 1024-pixel areas: four units, one descriptor each, all
    // pointing at the same tile.
    assert_eq!(p.unit_count(), 4);
    assert_eq!(p.descriptor(0).offset, p.descriptor(3).offset);
    let (w, h, c, values) = native(&path, 0);
    assert_eq!((w, h, c), (GW, GH, 1));
    for y in 0..GH {
        for x in 0..GW {
            assert_eq!(values[(y * GW + x) as usize], gray16_at(x, y), "{x},{y}");
        }
    }
    // Reduced levels (3 decompositions: 1/2 .. 1/8) of a data page keep its sample type.
    assert_eq!(image.layout.pages.len(), 4);
    assert_eq!(image.page(2).expect("page").mode, Mode::Data);
}

#[test]
fn tiff_jpeg2000_tiles_match_within_the_writers_ycc_rounding() {
    let path = fixture("j2k_tiles.tif");
    let image = OpenImage::open(&path).expect("open");
    let p = image.page(0).expect("page");
    assert_eq!(p.descriptor(0).decoder, "jpeg2k");
    // libvips stores these tiles as 8-bit YCbCr (compression 33004), losslessly: its own
    // RGB->YCbCr rounding is the only loss (its decoder is off by up to 3 as well).
    let (_, _, rgba) = decoded_rgba(&path, 0);
    let (mut max, mut sum) = (0i32, 0i64);
    for y in 0..H {
        for x in 0..W {
            let o = ((y * W + x) * 4) as usize;
            for (k, v) in rgb_at(x, y).iter().enumerate() {
                let d = (i32::from(rgba[o + k]) - i32::from(*v)).abs();
                max = max.max(d);
                sum += i64::from(d);
            }
        }
    }
    let mean = sum as f64 / f64::from(W * H * 3);
    assert!(max <= 3 && mean < 1.0, "max {max}, mean {mean:.2}");
}

/// PSNR of the RGB of `rgba` against the reference decoder's output.
fn psnr_against(rgba: &[u8], reference: &Path) -> f64 {
    let r = crate::support::reference(reference);
    let mut se = 0f64;
    for (a, b) in rgba.chunks_exact(4).zip(r.as_raw().chunks_exact(4)) {
        for k in 0..3 {
            se += (f64::from(a[k]) - f64::from(b[k])).powi(2);
        }
    }
    let mse = se / (rgba.len() / 4 * 3) as f64;
    10.0 * (255f64 * 255.0 / mse.max(1e-9)).log10()
}

#[test]
fn lossy_jpeg2000_matches_the_reference_decoder() {
    let path = fixture("j2k_tiled_lossy.jp2");
    let (_, _, rgba) = decoded_rgba(&path, 0);
    let psnr = psnr_against(&rgba, &fixture("j2k_tiled_lossy.ref.png"));
    assert!(psnr > 45.0, "PSNR against opj_decompress {psnr:.1} dB");
    let psnr = psnr_rgb(&rgba);
    assert!(psnr > 25.0, "PSNR against the original {psnr:.1} dB");
}

#[test]
fn jpeg_xl_lossless_lossy_and_16_bit() {
    let path = fixture("jxl_lossless.jxl");
    let image = OpenImage::open(&path).expect("open");
    assert_eq!(image.layout.format, FileFormat::JpegXl);
    assert_rgb_exact(&path);
    let (_, _, rgba) = decoded_rgba(&fixture("jxl_lossy.jxl"), 0);
    let psnr = psnr_against(&rgba, &fixture("jxl_lossy.ref.png"));
    assert!(psnr > 40.0, "PSNR against djxl {psnr:.1} dB");
    let psnr = psnr_rgb(&rgba);
    assert!(psnr > 22.0, "PSNR against the original {psnr:.1} dB");
    // 16-bit gray, lossless, over four cropped renders.
    let path = fixture("jxl_gray16.jxl");
    let image = OpenImage::open(&path).expect("open");
    assert_eq!(image.page(0).expect("page").unit_count(), 4);
    let (w, h, _, values) = native(&path, 0);
    assert_eq!((w, h), (GW, GH));
    for y in 0..GH {
        for x in 0..GW {
            assert_eq!(values[(y * GW + x) as usize], gray16_at(x, y), "{x},{y}");
        }
    }
}

#[test]
fn lerc_float_with_holes_int16_zstd_and_rgb_strips() {
    let (w, h, _, values) = native(&fixture("lerc_f32_deflate.tif"), 0);
    assert_eq!((w, h), (W, H));
    for y in 0..H {
        for x in 0..W {
            let v = values[(y * W + x) as usize];
            if (40..60).contains(&x) && (20..30).contains(&y) {
                assert!(v.is_nan(), "hole at {x},{y} is {v}");
            } else {
                assert_eq!(
                    v,
                    f64::from(x) * 0.5 + f64::from(y) * 0.25 - 100.0,
                    "{x},{y}"
                );
            }
        }
    }
    let (_, _, _, values) = native(&fixture("lerc_i16_zstd.tif"), 0);
    for y in 0..H {
        for x in 0..W {
            let want = f64::from(x as i32 * 3 - y as i32 * 7);
            assert_eq!(values[(y * W + x) as usize], want, "{x},{y}");
        }
    }
    assert_rgb_exact(&fixture("lerc_rgb_strips.tif"));
}

#[test]
fn new_codecs_render_on_the_command_line_and_fail_cleanly_when_cut() {
    let dir = tempdir();
    for name in [
        "j2k_tiled_lossless.jp2",
        "j2k_untiled_gray16.j2k",
        "j2k_tiles.tif",
        "jxl_lossless.jxl",
        "lerc_f32_deflate.tif",
    ] {
        let out = dir.path().join(format!("{name}.png"));
        let (code, err) = render_cli(&fixture(name), "0,0,200,150", &out, &[]);
        assert_eq!(code, 0, "{name}: {err}");
        // Cut in the middle of the data: a one-line error or a picture, never a crash.
        let bytes = std::fs::read(fixture(name)).expect("read");
        let cut = write(
            dir.path(),
            &format!("cut-{name}"),
            &bytes[..bytes.len() * 2 / 3],
        );
        let (code, err) = render_cli(&cut, "0,0,300,200", &out, &[]);
        if code != 0 {
            assert_eq!(err.trim().lines().count(), 1, "{name} cut: {err}");
        }
    }
}

#[test]
fn jpeg2000_storage_is_listed_per_level() {
    let image = OpenImage::open(&fixture("j2k_tiled_lossy.jp2")).expect("open");
    for (r, p) in image.layout.pages.iter().enumerate() {
        match &p.storage {
            Storage::J2k { reduce, .. } => assert_eq!(usize::from(*reduce), r),
            other => panic!("page {r}: {other:?}"),
        }
    }
}
