//! Every format and layout: generated at run time, rendered through the engine for several
//! regions (edges included) at scale 1 and 3, compared with the `image` crate's decode of the
//! same file, or with the generating pattern itself where `image` cannot read the variant.

use std::io::Cursor;

use crate::support::encode::*;
use crate::support::synth::{TiffSpec, write_tiff, write_tiff_pages};
use crate::support::*;

const W: u32 = 37;
const H: u32 = 23;

// ---------------------------------------------------------------- PNM

#[test]
fn pnm_binary_and_plain_match_image_crate() {
    let dir = tempdir();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("p4.pbm", pnm_binary(b'4', W, H, 1, 1)),
        ("p5.pgm", pnm_binary(b'5', W, H, 255, 1)),
        ("p5_16.pgm", pnm_binary(b'5', W, H, 65535, 1)),
        ("p6.ppm", pnm_binary(b'6', W, H, 255, 3)),
        ("p6_16.ppm", pnm_binary(b'6', W, H, 65535, 3)),
        ("p1.pbm", pnm_plain(b'1', W, H, 1, 1)),
        ("p2.pgm", pnm_plain(b'2', W, H, 255, 1)),
        ("p3.ppm", pnm_plain(b'3', W, H, 255, 3)),
    ];
    for (name, bytes) in cases {
        let p = write(dir.path(), name, &bytes);
        check_against_image_crate(&p, 0, 0.0);
    }
}

#[test]
fn pnm_odd_maxval_scales_with_rounding() {
    let dir = tempdir();
    for (name, magic, maxval, spp) in [
        ("m100.ppm", b'6', 100, 3),
        ("m1000.pgm", b'5', 1000, 1),
        ("m1000_plain.pgm", b'2', 1000, 1),
    ] {
        let bytes = if magic == b'2' {
            pnm_plain(magic, W, H, maxval, spp)
        } else {
            pnm_binary(magic, W, H, maxval, spp)
        };
        let p = write(dir.path(), name, &bytes);
        let expect = |x: u32, y: u32| {
            let s = |c: u32| {
                let v = u32::from(px(x, y, c)) * maxval / 255;
                ((f64::from(v) * 255.0 / f64::from(maxval)).round()) as u8
            };
            if spp == 3 {
                [s(0), s(1), s(2), 255]
            } else {
                [s(0), s(0), s(0), 255]
            }
        };
        check_against(&p, W, H, &expect, 0, 0.0);
    }
}

#[test]
fn pam_tuple_types() {
    let dir = tempdir();
    for (tupl, depth, maxval) in [
        ("RGB_ALPHA", 4, 255),
        ("GRAYSCALE_ALPHA", 2, 255),
        ("GRAYSCALE", 1, 65535),
        ("BLACKANDWHITE", 1, 1),
        ("RGB", 3, 255),
    ] {
        let mut f = format!(
            "P7\n# pam\nWIDTH {W}\nHEIGHT {H}\nDEPTH {depth}\nMAXVAL {maxval}\nTUPLTYPE {tupl}\nENDHDR\n"
        )
        .into_bytes();
        let sample = |x, y, c| -> u32 {
            if maxval == 1 {
                u32::from(px(x, y, c) & 1)
            } else {
                u32::from(px(x, y, c)) * maxval / 255
            }
        };
        for y in 0..H {
            for x in 0..W {
                for c in 0..depth {
                    let v = sample(x, y, c);
                    if maxval > 255 {
                        f.extend_from_slice(&(v as u16).to_be_bytes());
                    } else {
                        f.push(v as u8);
                    }
                }
            }
        }
        let p = write(dir.path(), &format!("{tupl}.pam"), &f);
        let expect = |x: u32, y: u32| {
            let s =
                |c: u32| ((f64::from(sample(x, y, c)) * 255.0 / f64::from(maxval)).round()) as u8;
            match depth {
                4 => [s(0), s(1), s(2), s(3)],
                3 => [s(0), s(1), s(2), 255],
                2 => [s(0), s(0), s(0), s(1)],
                _ => [s(0), s(0), s(0), 255],
            }
        };
        check_against(&p, W, H, &expect, 0, 0.0);
    }
}

#[test]
fn wide_raw_image_spans_several_bands_and_column_windows() {
    let dir = tempdir();
    let (w, h) = (40_000, 230);
    let p = write(dir.path(), "wide.pgm", &pnm_binary(b'5', w, h, 255, 1));
    let image = tessera::OpenImage::open(&p).expect("open");
    assert!(
        image.layout.pages[0].descriptor_count() >= 2,
        "split into bands"
    );
    let expect = |x: u32, y: u32| {
        let v = px(x, y, 0);
        [v, v, v, 255]
    };
    for region in [
        (39_000, 100, 999, 130),
        (511, 0, 1030, 230),
        (20_000, 7, 3, 200),
    ] {
        let got = render_region(&p, region, 1).expect("render");
        assert_eq!(
            diff(&got.data, &crop_scaled(&expect, region, 1)).0,
            0,
            "{region:?}"
        );
    }
}

// ---------------------------------------------------------------- BMP

#[test]
fn bmp_variants_match_image_crate() {
    let dir = tempdir();
    let index = |x: u32, y: u32, bits: u32| u32::from(px(x, y, 0)) % (1 << bits);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for bits in [1u16, 4, 8] {
        let spec = Bmp {
            bpp: bits,
            compression: 0,
            top_down: false,
            masks: None,
            v5: false,
            palette: palette(1 << bits),
        };
        let rows = file_rows(H, false)
            .into_iter()
            .map(|y| {
                let mut row = vec![0u8; (W * u32::from(bits)).div_ceil(8) as usize];
                for x in 0..W {
                    let v = index(x, y, u32::from(bits)) as u8;
                    let bit = x * u32::from(bits);
                    row[(bit / 8) as usize] |= v << (8 - bits as u32 - bit % 8);
                }
                pad4(row)
            })
            .collect::<Vec<_>>();
        cases.push((format!("pal{bits}.bmp"), bmp_file(&spec, W, H, &rows)));
    }
    for top_down in [false, true] {
        let spec = Bmp {
            bpp: 24,
            compression: 0,
            top_down,
            masks: None,
            v5: false,
            palette: vec![],
        };
        let rows = file_rows(H, top_down)
            .into_iter()
            .map(|y| {
                pad4(
                    (0..W)
                        .flat_map(|x| [px(x, y, 2), px(x, y, 1), px(x, y, 0)])
                        .collect(),
                )
            })
            .collect::<Vec<_>>();
        cases.push((
            format!("rgb24_{top_down}.bmp"),
            bmp_file(&spec, W, H, &rows),
        ));
    }
    // 16-bit 565 bitfields and 555 default.
    for (name, compression, masks) in [
        ("rgb565.bmp", 3, Some([0xF800, 0x07E0, 0x001F, 0])),
        ("rgb555.bmp", 0, None),
    ] {
        let spec = Bmp {
            bpp: 16,
            compression,
            top_down: false,
            masks,
            v5: false,
            palette: vec![],
        };
        let rows = file_rows(H, false)
            .into_iter()
            .map(|y| {
                pad4(
                    (0..W)
                        .flat_map(|x| {
                            (u16::from(px(x, y, 0)) << 8 | u16::from(px(x, y, 1))).to_le_bytes()
                        })
                        .collect(),
                )
            })
            .collect::<Vec<_>>();
        cases.push((name.to_string(), bmp_file(&spec, W, H, &rows)));
    }
    // 32-bit with alpha in a V5 header.
    let spec = Bmp {
        bpp: 32,
        compression: 3,
        top_down: false,
        masks: Some([0x00FF_0000, 0x0000_FF00, 0x0000_00FF, 0xFF00_0000]),
        v5: true,
        palette: vec![],
    };
    let rows = file_rows(H, false)
        .into_iter()
        .map(|y| {
            (0..W)
                .flat_map(|x| [px(x, y, 2), px(x, y, 1), px(x, y, 0), px(x, y, 3)])
                .collect()
        })
        .collect::<Vec<_>>();
    cases.push(("argb_v5.bmp".into(), bmp_file(&spec, W, H, &rows)));

    for (name, bytes) in cases {
        let p = write(dir.path(), &name, &bytes);
        check_against_image_crate(&p, 0, 0.0);
    }
}

/// RLE8/RLE4 with runs, literals, end-of-line and a delta; tall enough for several bands.
#[test]
fn bmp_rle_matches_image_crate() {
    let dir = tempdir();
    let (w, h) = (1100u32, 1500u32);
    for (bits, compression) in [(8u16, 1u32), (4, 2)] {
        let max = if bits == 8 { 255 } else { 15 };
        let mut data = Vec::new();
        for fy in 0..h {
            let y = h - 1 - fy;
            let mut x = 0;
            while x < w {
                let n = (w - x).min(if (x / 50 + y) % 2 == 0 { 60 } else { 7 });
                let v = (px(x, y, 0) as u32 % (max + 1)) as u8;
                if (x / 50 + y) % 2 == 0 {
                    // run
                    let b = if bits == 4 { v << 4 | v } else { v };
                    data.extend_from_slice(&[n as u8, b]);
                } else if n >= 3 {
                    // literal
                    data.extend_from_slice(&[0, n as u8]);
                    let vals: Vec<u8> = (0..n)
                        .map(|i| (px(x + i, y, 1) as u32 % (max + 1)) as u8)
                        .collect();
                    let mut bytes: Vec<u8> = if bits == 4 {
                        vals.chunks(2)
                            .map(|c| c[0] << 4 | c.get(1).copied().unwrap_or(0))
                            .collect()
                    } else {
                        vals
                    };
                    if bytes.len() % 2 == 1 {
                        bytes.push(0);
                    }
                    data.extend_from_slice(&bytes);
                } else {
                    let b = if bits == 4 { v << 4 | v } else { v };
                    data.extend_from_slice(&[n as u8, b]);
                }
                x += n;
            }
            data.extend_from_slice(&[0, 0]);
        }
        data.extend_from_slice(&[0, 1]);
        let spec = Bmp {
            bpp: bits,
            compression,
            top_down: false,
            masks: None,
            v5: false,
            palette: palette(1 << bits),
        };
        let bytes = bmp_file(&spec, w, h, &[data]);
        let p = write(dir.path(), &format!("rle{bits}.bmp"), &bytes);
        let image = tessera::OpenImage::open(&p).expect("open");
        assert!(
            image.layout.pages[0].descriptor_count() > 1,
            "RLE indexed into bands"
        );
        let r = reference(&p);
        for region in [(0, 0, w, h), (1000, 1200, 100, 300), (3, 600, 7, 700)] {
            let got = render_region(&p, region, 1).expect("render");
            let want = crop_scaled(&|x, y| r.get_pixel(x, y).0, region, 1);
            assert_eq!(diff(&got.data, &want).0, 0, "rle{bits} {region:?}");
        }
    }
}

// ---------------------------------------------------------------- TIFF

fn s8(x: u32, y: u32, c: u32) -> u16 {
    u16::from(px(x, y, c))
}
fn s16(x: u32, y: u32, c: u32) -> u16 {
    (u16::from(px(x, y, c)) * 257).saturating_add((x % 7) as u16)
}
fn r16(v: u16) -> u8 {
    ((f64::from(v) * 255.0 / 65535.0).round()) as u8
}

#[test]
fn tiff_rgb_gray_alpha_16bit_all_compressions_match_pattern() {
    let dir = tempdir();
    let mut n = 0;
    for comp in [None, Some(32773), Some(5), Some(8)] {
        for tiled in [false, true] {
            for (samples, bits, photometric, extra) in [
                (3u16, 8u16, 2u16, None),
                (4, 8, 2, Some(2u16)),
                (1, 8, 1, None),
                (2, 8, 1, Some(2)),
                (3, 16, 2, None),
                (1, 16, 1, None),
            ] {
                for big_endian in [false, true] {
                    let (w, h) = (W + 20, H + 30);
                    let mut spec = TiffSpec::new(w, h, samples, bits, photometric);
                    spec = if tiled {
                        spec.tiles(16, 32)
                    } else {
                        spec.strips(7)
                    };
                    spec.big_endian = big_endian;
                    spec.bigtiff = n % 3 == 0;
                    spec.predictor = if comp.is_some() && n % 2 == 0 { 2 } else { 1 };
                    spec.extra_samples = extra.into_iter().collect();
                    let f: &dyn Fn(u32, u32, u32) -> u16 = if bits == 16 { &s16 } else { &s8 };
                    let bytes = tiff_bytes(&spec, f, comp);
                    let p = write(dir.path(), &format!("t{n}.tif"), &bytes);
                    let to8 = |v: u16| if bits == 16 { r16(v) } else { v as u8 };
                    let expect = |x: u32, y: u32| {
                        let s = |c| to8(f(x, y, c));
                        match samples {
                            4 => [s(0), s(1), s(2), s(3)],
                            3 => [s(0), s(1), s(2), 255],
                            2 => [s(0), s(0), s(0), s(1)],
                            _ => [s(0), s(0), s(0), 255],
                        }
                    };
                    if bits == 16 {
                        // 16-bit gray and RGB are data pages: shown through a window, here
                        // the full range, which is the linear 16 → 8-bit scaling.
                        let image = tessera::OpenImage::open(&p).expect("open");
                        assert!(image.page(0).expect("page").data.is_some());
                        let window = Some((0.0, 65535.0));
                        check_against_window(&p, (w, h), &expect, 1, 0.5, window);
                    } else {
                        check_against(&p, w, h, &expect, 0, 0.0);
                    }
                    n += 1;
                }
            }
        }
    }
}

#[test]
fn tiff_rgb_matches_image_crate_too() {
    let dir = tempdir();
    let spec = TiffSpec::new(W, H, 3, 8, 2).tiles(16, 16);
    let p = write(dir.path(), "rgb.tif", &tiff_bytes(&spec, &s8, Some(8)));
    check_against_image_crate(&p, 0, 0.0);
}

#[test]
fn tiff_bilevel_palette_cmyk_planar() {
    let dir = tempdir();
    // Bilevel, both photometrics; 4-bit gray.
    for (photometric, bits) in [(0u16, 1u16), (1, 1), (1, 4)] {
        let spec = TiffSpec::new(W, H, 1, bits, photometric).strips(5);
        let max = (1u16 << bits) - 1;
        let f = |x, y, _c| u16::from(px(x, y, 0)) % (max + 1);
        let p = write(
            dir.path(),
            &format!("bits{photometric}{bits}.tif"),
            &tiff_bytes(&spec, &f, Some(32773)),
        );
        let expect = |x: u32, y: u32| {
            let v = f(x, y, 0);
            let v = if photometric == 0 { max - v } else { v };
            let l = (u32::from(v) * 255 / u32::from(max)) as u8;
            [l, l, l, 255]
        };
        check_against(&p, W, H, &expect, 0, 0.0);
    }
    // Palette, 8 and 4 bits, with every compression (8-bit LZW also with the predictor).
    for (bits, comp, predictor) in [
        (8u16, None, 1),
        (4, None, 1),
        (8, Some(5), 1),
        (8, Some(5), 2),
        (4, Some(5), 1),
        (8, Some(8), 2),
        (4, Some(32773), 1),
    ] {
        let n = 1usize << bits;
        let mut spec = TiffSpec::new(W, H, 1, bits, 3).tiles(16, 16);
        spec.predictor = predictor;
        let map = |i: usize, c: usize| ((i * 37 + c * 101) % 256) as u16 * 257;
        spec.colormap = (0..3)
            .flat_map(|c| (0..n).map(move |i| map(i, c)))
            .collect();
        let f = |x, y, _c| u16::from(px(x, y, 0)) % n as u16;
        let p = write(
            dir.path(),
            &format!("pal{bits}-{comp:?}-{predictor}.tif"),
            &tiff_bytes(&spec, &f, comp),
        );
        let expect = |x: u32, y: u32| {
            let i = f(x, y, 0) as usize;
            [
                (map(i, 0) >> 8) as u8,
                (map(i, 1) >> 8) as u8,
                (map(i, 2) >> 8) as u8,
                255,
            ]
        };
        check_against(&p, W, H, &expect, 0, 0.0);
    }
    // CMYK: R = 255·(1−C)(1−K).
    let spec = TiffSpec::new(W, H, 4, 8, 5).strips(4);
    let p = write(dir.path(), "cmyk.tif", &tiff_bytes(&spec, &s8, Some(5)));
    let expect = |x: u32, y: u32| {
        let k = f64::from(px(x, y, 3)) / 255.0;
        let ch = |c| (255.0 * (1.0 - f64::from(px(x, y, c)) / 255.0) * (1.0 - k)).round() as u8;
        [ch(0), ch(1), ch(2), 255]
    };
    check_against(&p, W, H, &expect, 1, 0.5);
    // Planar RGB, strips (raw) and tiles (deflate).
    for (tiled, comp) in [(false, None), (true, Some(8)), (false, Some(5))] {
        let mut spec = TiffSpec::new(W, H, 3, 8, 2);
        spec = if tiled {
            spec.tiles(16, 16)
        } else {
            spec.strips(6)
        };
        spec.planar = true;
        let p = write(
            dir.path(),
            &format!("planar{tiled}{comp:?}.tif"),
            &tiff_bytes(&spec, &s8, comp),
        );
        let image = tessera::OpenImage::open(&p).expect("open");
        let page = &image.layout.pages[0];
        assert_eq!(
            page.descriptor_count(),
            page.unit_count() * 3,
            "one descriptor per plane"
        );
        check_against(
            &p,
            W,
            H,
            &|x, y| [px(x, y, 0), px(x, y, 1), px(x, y, 2), 255],
            0,
            0.0,
        );
    }
}

#[test]
fn tiff_jpeg_tiles_decode_close_to_source() {
    let dir = tempdir();
    let (w, h) = (W + 40, H + 40);
    let spec = TiffSpec::new(w, h, 3, 8, 6).tiles(32, 32);
    let jpeg = |b: &[u8]| {
        let mut out = Vec::new();
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95);
        enc.encode(b, 32, 32, image::ExtendedColorType::Rgb8)
            .expect("jpeg");
        out
    };
    let mut cur = Cursor::new(Vec::new());
    write_tiff(
        &mut cur,
        &spec,
        &|x, y, c| u16::from(px(x, y, c) / 4 + 100),
        Some((7, &jpeg)),
    )
    .expect("tiff");
    let p = write(dir.path(), "jpeg.tif", &cur.into_inner());
    let expect = |x: u32, y: u32| {
        [
            px(x, y, 0) / 4 + 100,
            px(x, y, 1) / 4 + 100,
            px(x, y, 2) / 4 + 100,
            255,
        ]
    };
    check_against(&p, w, h, &expect, 48, 4.0);
}

#[test]
fn tiff_pages_are_listed_and_rendered() {
    let dir = tempdir();
    let mut small = TiffSpec::new(W / 2, H / 2, 3, 8, 2).strips(3);
    small.subfile_type = 1;
    let specs = [TiffSpec::new(W, H, 3, 8, 2).strips(5), small];
    let half = |x: u32, y: u32, c: u32| u16::from(px(x * 2, y * 2, c));
    let samplers: [&dyn Fn(u32, u32, u32) -> u16; 2] = [&s8, &half];
    let mut cur = Cursor::new(Vec::new());
    write_tiff_pages(&mut cur, &specs, &samplers, None).expect("tiff");
    let p = write(dir.path(), "pages.tif", &cur.into_inner());
    let image = tessera::OpenImage::open(&p).expect("open");
    assert_eq!(image.layout.pages.len(), 2);
    assert!(image.layout.pages[1].reduced);
    let got = render_page(&p, 1, (0, 0, W / 2, H / 2), 1).expect("page 1");
    let want = crop_scaled(
        &|x, y| {
            [
                px(x * 2, y * 2, 0),
                px(x * 2, y * 2, 1),
                px(x * 2, y * 2, 2),
                255,
            ]
        },
        (0, 0, W / 2, H / 2),
        1,
    );
    assert_eq!(diff(&got.data, &want).0, 0);
}

// ---------------------------------------------------------------- PNG

#[test]
fn png_every_colour_type_and_depth_matches_image_crate() {
    use png::{BitDepth as D, ColorType as C};
    let dir = tempdir();
    let mut cases = vec![
        (C::Grayscale, D::One),
        (C::Grayscale, D::Two),
        (C::Grayscale, D::Four),
        (C::Grayscale, D::Eight),
        (C::Grayscale, D::Sixteen),
        (C::GrayscaleAlpha, D::Eight),
        (C::GrayscaleAlpha, D::Sixteen),
        (C::Rgb, D::Eight),
        (C::Rgb, D::Sixteen),
        (C::Rgba, D::Eight),
        (C::Rgba, D::Sixteen),
        (C::Indexed, D::One),
        (C::Indexed, D::Two),
        (C::Indexed, D::Four),
        (C::Indexed, D::Eight),
    ];
    cases.dedup();
    for (i, (color, depth)) in cases.into_iter().enumerate() {
        for (interlaced, trns) in [(false, false), (true, false), (false, true), (true, true)] {
            let bytes = png_bytes(color, depth, interlaced, trns, W, H);
            let p = write(dir.path(), &format!("p{i}_{interlaced}_{trns}.png"), &bytes);
            let bits = depth as u32;
            if trns && color == C::Grayscale && bits < 8 {
                // Colour from `image`; alpha checked independently against the spec's rule
                // (transparent where the stored gray sample equals the tRNS key).
                let r = reference(&p);
                let sample = |x: u32, y: u32| {
                    ((u16::from(px(x, y, 0)) * 257).saturating_add((x % 5) as u16) >> 8)
                        >> (8 - bits)
                };
                let key = sample(1, 1);
                let expect = |x: u32, y: u32| {
                    let mut v = r.get_pixel(x, y).0;
                    v[3] = if sample(x, y) == key { 0 } else { 255 };
                    v
                };
                check_against(&p, W, H, &expect, 0, 0.0);
            } else {
                check_against_image_crate(&p, 0, 0.0);
            }
        }
    }
}

#[test]
fn png_tall_image_streams_bands() {
    let dir = tempdir();
    let (w, h) = (1500, 1900);
    let p = write(
        dir.path(),
        "tall.png",
        &png_bytes(
            png::ColorType::Rgb,
            png::BitDepth::Eight,
            false,
            false,
            w,
            h,
        ),
    );
    let image = tessera::OpenImage::open(&p).expect("open");
    assert!(image.layout.pages[0].descriptor_count() > 1);
    let r = reference(&p);
    for region in [(1400, 1800, 100, 100), (0, 0, 10, 1900)] {
        let got = render_region(&p, region, 1).expect("render");
        assert_eq!(
            diff(
                &got.data,
                &crop_scaled(&|x, y| r.get_pixel(x, y).0, region, 1)
            )
            .0,
            0
        );
    }
}

// ---------------------------------------------------------------- JPEG

#[test]
fn jpeg_gray_ycbcr_progressive_cmyk_close_to_image_crate() {
    let dir = tempdir();
    for (i, (components, progressive, subsample)) in [
        (1u8, false, false),
        (3, false, true),
        (3, false, false),
        (3, true, true),
        (4, false, false),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = jpeg_bytes(components, progressive, subsample, W + 40, H + 50);
        let p = write(dir.path(), &format!("j{i}.jpg"), &bytes);
        // Two IDCT/upsampling implementations: close, not identical.
        check_against_image_crate(&p, 24, 1.5);
    }
}

#[test]
fn tiff_zstd_and_webp_tiles() {
    use crate::support::synth::write_tiff_data;
    let dir = tempdir();
    let zstd = |b: &[u8]| zstd::bulk::compress(b, 3).expect("zstd");
    // 8-bit RGB with ZSTD (and the predictor), against the pattern.
    for predictor in [1u16, 2] {
        let mut spec = TiffSpec::new(W, H, 3, 8, 2).tiles(16, 16);
        spec.predictor = predictor;
        let mut cur = std::io::Cursor::new(Vec::new());
        write_tiff(&mut cur, &spec, &s8, Some((50000, &zstd))).expect("tiff");
        let p = write(
            dir.path(),
            &format!("zstd{predictor}.tif"),
            &cur.into_inner(),
        );
        let expect = |x: u32, y: u32| [px(x, y, 0), px(x, y, 1), px(x, y, 2), 255];
        check_against(&p, W, H, &expect, 0, 0.0);
    }
    // 16-bit gray with ZSTD: a data page, its samples exact.
    let mut spec = TiffSpec::new(W, H, 1, 16, 1).tiles(16, 16);
    spec.predictor = 2;
    let v = |x: u32, y: u32| f64::from((x * 977 + y * 131) % 65536);
    let mut cur = std::io::Cursor::new(Vec::new());
    write_tiff_data(&mut cur, &spec, &|x, y, _| v(x, y), Some((50000, &zstd))).expect("tiff");
    let p = write(dir.path(), "zstd16.tif", &cur.into_inner());
    let expect16 = |x: u32, y: u32| {
        let l = (v(x, y) / 65535.0 * 255.0).round() as u8;
        [l, l, l, 255]
    };
    check_against_window(&p, (W, H), &expect16, 1, 0.5, Some((0.0, 65535.0)));
    // Lossless WebP tiles, RGB and RGBA: exact.
    for (spp, extra) in [(3u16, None), (4, Some(2u16))] {
        let mut spec = TiffSpec::new(W, H, spp, 8, 2).tiles(16, 16);
        spec.extra_samples = extra.into_iter().collect();
        let webp = move |b: &[u8]| {
            let mut out = Vec::new();
            let color = if spp == 3 {
                image_webp::ColorType::Rgb8
            } else {
                image_webp::ColorType::Rgba8
            };
            image_webp::WebPEncoder::new(&mut out)
                .encode(b, 16, 16, color)
                .expect("webp");
            out
        };
        let alpha = |x: u32, y: u32| {
            if (x + y).is_multiple_of(5) {
                0
            } else {
                px(x, y, 3) | 1
            }
        };
        let f = move |x: u32, y: u32, c: u32| {
            if c == 3 {
                u16::from(alpha(x, y))
            } else {
                u16::from(px(x, y, c))
            }
        };
        let mut cur = std::io::Cursor::new(Vec::new());
        write_tiff(&mut cur, &spec, &f, Some((50001, &webp))).expect("tiff");
        let p = write(dir.path(), &format!("webp{spp}.tif"), &cur.into_inner());
        let expect = move |x: u32, y: u32| {
            let a = if spp == 4 { alpha(x, y) } else { 255 };
            [px(x, y, 0), px(x, y, 1), px(x, y, 2), a]
        };
        check_against(&p, W, H, &expect, 0, 0.0);
    }
}

#[test]
fn bmp_claiming_a_huge_palette_renders_with_a_warning() {
    let dir = tempdir();
    let spec = Bmp {
        bpp: 8,
        compression: 0,
        top_down: false,
        masks: None,
        v5: false,
        palette: palette(256),
    };
    let rows = file_rows(H, false)
        .into_iter()
        .map(|y| pad4((0..W).map(|x| px(x, y, 0)).collect()))
        .collect::<Vec<_>>();
    let mut bytes = bmp_file(&spec, W, H, &rows);
    let good = write(dir.path(), "good.bmp", &bytes);
    // biClrUsed (offset 46) = 2^31 − 1.
    bytes[46..50].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    let bad = write(dir.path(), "huge.bmp", &bytes);
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    let region = format!("0,0,{W},{H}");
    let (code, err) = render_cli(&good, &region, &a, &[]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = render_cli(&bad, &region, &b, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("claims 2147483647 palette entries"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one warning line: {err}");
    assert_eq!(
        image::open(&a).expect("a").to_rgba8(),
        image::open(&b).expect("b").to_rgba8(),
        "the same pixels as with an honest header"
    );
}

#[test]
fn png_chunk_crc_mismatch_is_an_error_naming_the_chunk() {
    let dir = tempdir();
    let png = encode_png(
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        false,
        (W, H),
        png::Compression::Fast,
        1000,
    );
    // Find the second IDAT chunk and break its CRC (the payload is intact).
    let mut pos = 8;
    let mut idats = Vec::new();
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes([png[pos], png[pos + 1], png[pos + 2], png[pos + 3]]) as usize;
        if &png[pos + 4..pos + 8] == b"IDAT" {
            idats.push((pos, len));
        }
        pos += 12 + len;
    }
    assert!(idats.len() >= 3, "the fixture has several IDAT chunks");
    let (at, len) = idats[1];
    let mut bad = png.clone();
    bad[at + 8 + len] ^= 0xFF;
    let p = write(dir.path(), "crc.png", &bad);
    let out = dir.path().join("o.png");
    let (code, err) = render_cli(&p, &format!("0,0,{W},{H}"), &out, &[]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("PNG chunk IDAT at offset {at} has a bad CRC")),
        "{err}"
    );
    // The last IDAT chunk's CRC, and IEND's (after the image data), are checked too.
    let (last_at, last_len) = *idats.last().expect("idat");
    let iend = last_at + 12 + last_len;
    for (what, at, byte) in [
        ("IDAT", last_at, last_at + 8 + last_len),
        ("IEND", iend, iend + 8),
    ] {
        let mut bad = png.clone();
        bad[byte] ^= 0xFF;
        let p = write(dir.path(), &format!("crc-{what}.png"), &bad);
        let (code, err) = render_cli(&p, &format!("0,0,{W},{H}"), &out, &[]);
        assert_eq!(code, 2, "{what}: {err}");
        assert!(
            err.contains(&format!("PNG chunk {what} at offset {at} has a bad CRC")),
            "{err}"
        );
    }
    // The intact file renders.
    let good = write(dir.path(), "good.png", &png);
    let (code, err) = render_cli(&good, &format!("0,0,{W},{H}"), &out, &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn standalone_webp_lossless_matches_its_pixels() {
    let dir = tempdir();
    let (w, h) = (301u32, 203u32);
    for alpha in [false, true] {
        let spp = if alpha { 4 } else { 3 };
        let a = |x: u32, y: u32| {
            if (x * y).is_multiple_of(7) {
                0
            } else {
                px(x, y, 3) | 1
            }
        };
        let data: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).flat_map(move |x| {
                    (0..spp).map(move |c| if c == 3 { a(x, y) } else { px(x, y, c) })
                })
            })
            .collect();
        let mut bytes = Vec::new();
        let color = if alpha {
            image_webp::ColorType::Rgba8
        } else {
            image_webp::ColorType::Rgb8
        };
        image_webp::WebPEncoder::new(&mut bytes)
            .encode(&data, w, h, color)
            .expect("webp");
        let p = write(dir.path(), &format!("a{alpha}.webp"), &bytes);
        let image = tessera::OpenImage::open(&p).expect("open");
        assert_eq!(image.layout.format, tessera::format::FileFormat::WebP);
        let expect = move |x: u32, y: u32| {
            let al = if alpha { a(x, y) } else { 255 };
            [px(x, y, 0), px(x, y, 1), px(x, y, 2), al]
        };
        check_against(&p, w, h, &expect, 0, 0.0);
    }
    // An animated or damaged WebP is one line.
    let p = write(
        dir.path(),
        "cut.webp",
        b"RIFF\x20\0\0\0WEBPVP8L\x10\0\0\0\x2f\0",
    );
    let (code, _, err) = run(&["info", p.to_str().expect("utf8")]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
