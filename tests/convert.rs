//! `tessera convert`: a tiled TIFF with a pyramid that the `tiff` crate reads back with the
//! expected tiles, compression and levels, whose full-resolution page equals the source and
//! whose levels equal a 2x2 box filter computed here.

use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::Tag;

use crate::support::synth::{TiffSpec, pattern, pattern_tiff, write_tiff};
use crate::support::{run, tempdir};

const W: u32 = 300;
const H: u32 = 203;

fn source(x: u32, y: u32, c: u32) -> u8 {
    pattern(x, y, c)
}

/// The 2x2 box filter (an odd last row or column averaged with itself), rounded half up.
fn reduce(img: &[u8], w: u32, h: u32) -> (Vec<u8>, u32, u32) {
    let (ow, oh) = (w.div_ceil(2), h.div_ceil(2));
    let mut out = vec![0u8; (ow * oh * 3) as usize];
    for y in 0..oh {
        for x in 0..ow {
            for c in 0..3 {
                let px = |xx: u32, yy: u32| {
                    u32::from(img[((yy.min(h - 1) * w + xx.min(w - 1)) * 3 + c) as usize])
                };
                let s = px(2 * x, 2 * y)
                    + px(2 * x + 1, 2 * y)
                    + px(2 * x, 2 * y + 1)
                    + px(2 * x + 1, 2 * y + 1);
                out[((y * ow + x) * 3 + c) as usize] = ((s + 2) / 4) as u8;
            }
        }
    }
    (out, ow, oh)
}

#[test]
fn convert_writes_a_tiled_pyramid_tiff_others_read() {
    let dir = tempdir();
    // `source` is `pattern`.
    let input = pattern_tiff(
        &dir.path().join("in.tif"),
        &TiffSpec::new(W, H, 3, 8, 2).strips(16),
    );
    let out = dir.path().join("out.tif");
    let (code, _, err) = run(&[
        "convert",
        input.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--tile",
        "64",
        "--compression",
        "zstd",
        "--pyramid",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut want: Vec<u8> = (0..H)
        .flat_map(|y| (0..W).flat_map(move |x| (0..3).map(move |c| source(x, y, c))))
        .collect();
    let (mut w, mut h) = (W, H);
    let mut d = Decoder::new(std::fs::File::open(&out).expect("open")).expect("tiff decoder");
    let mut level = 0;
    loop {
        assert_eq!(d.dimensions().expect("dims"), (w, h), "level {level}");
        assert_eq!(d.get_tag_u32(Tag::TileWidth).expect("tiled"), 64);
        assert_eq!(d.get_tag_u32(Tag::Compression).expect("compression"), 50000);
        let sub = d
            .find_tag_unsigned::<u32>(Tag::NewSubfileType)
            .expect("tag")
            .unwrap_or(0);
        assert_eq!(sub, u32::from(level > 0), "level {level} is marked reduced");
        let DecodingResult::U8(got) = d.read_image().expect("decode") else {
            panic!("not 8-bit");
        };
        assert!(got == want, "level {level} differs from the box filter");
        if !d.more_images() {
            break;
        }
        d.next_image().expect("next");
        (want, w, h) = reduce(&want, w, h);
        level += 1;
    }
    // 300x203 → 150x102 → 75x51 → 38x26 (the first that fits one 64-pixel tile).
    assert_eq!((level, w, h), (3, 38, 26));
    // Tessera reads it back as a pyramid.
    let image = tessera::OpenImage::open(&out).expect("reopen");
    assert_eq!(image.layout.reductions(0).len(), 4);
}

#[test]
fn convert_refuses_to_overwrite_its_input() {
    let dir = tempdir();
    let input = pattern_tiff(&dir.path().join("in.tif"), &TiffSpec::new(8, 8, 3, 8, 2));
    let p = input.to_str().expect("utf-8");
    let (code, _, err) = run(&["convert", p, p]);
    assert_ne!(code, 0);
    assert!(err.contains("refusing"), "{err}");
}

#[test]
fn convert_writes_jpeg_tiles_that_others_decode() {
    let dir = tempdir();
    let input = dir.path().join("in.tif");
    let mut f = std::fs::File::create(&input).expect("create");
    // A smooth picture: JPEG keeps it within a few levels.
    let smooth = |x: u32, y: u32, c: u32| ((x + 2 * y + 40 * c) % 256) as u8 / 2 + 60;
    write_tiff(
        &mut f,
        &TiffSpec::new(W, H, 4, 8, 2).strips(32),
        &|x, y, c| {
            if c == 3 {
                255
            } else {
                u16::from(smooth(x, y, c))
            }
        },
        None,
    )
    .expect("tiff");
    drop(f);
    let out = dir.path().join("jpeg.tif");
    let (code, _, err) = run(&[
        "convert",
        input.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--tile",
        "64",
        "--compression",
        "jpeg:92",
        "--pyramid",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut d = Decoder::new(std::fs::File::open(&out).expect("open")).expect("tiff decoder");
    assert_eq!(d.get_tag_u32(Tag::Compression).expect("compression"), 7);
    // YCbCr 4:2:0 colour, and the alpha dropped (JPEG has none).
    assert_eq!(
        d.get_tag_u32(Tag::PhotometricInterpretation).expect("ph"),
        6
    );
    assert_eq!(d.get_tag_u32(Tag::SamplesPerPixel).expect("spp"), 3);
    // Each tile is a complete JPEG: decode them with the `image` crate's decoder (the `tiff`
    // crate hands back JPEG YCbCr unconverted) and compare with the source.
    let offsets = d.get_tag_u64_vec(Tag::TileOffsets).expect("offsets");
    let counts = d.get_tag_u64_vec(Tag::TileByteCounts).expect("counts");
    let file = std::fs::read(&out).expect("read");
    let across = W.div_ceil(64);
    let (mut total, mut n) = (0u64, 0u64);
    for (i, (&o, &c)) in offsets.iter().zip(&counts).enumerate() {
        let bytes = &file[o as usize..(o + c) as usize];
        let tile = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
            .expect("a JPEG tile")
            .to_rgb8();
        assert_eq!(tile.dimensions(), (64, 64));
        let (tx, ty) = (i as u32 % across * 64, i as u32 / across * 64);
        for y in ty..(ty + 64).min(H) {
            for x in tx..(tx + 64).min(W) {
                let p = tile.get_pixel(x - tx, y - ty);
                for ch in 0..3 {
                    total += u64::from(p[ch as usize].abs_diff(smooth(x, y, ch)));
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, u64::from(W * H * 3), "the tiles cover the image");
    let mean = total as f64 / n as f64;
    assert!(mean < 3.0, "mean error {mean}");
    assert!(d.more_images(), "a pyramid");
    // Quality out of range is refused on the command line.
    let (code, _, err) = run(&[
        "convert",
        input.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--compression",
        "jpeg:0",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("jpeg:Q"), "{err}");
}
