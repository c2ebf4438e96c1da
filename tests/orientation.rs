//! The `Orientation` a file asks for: the TIFF tag and JPEG EXIF are read when opening (and a
//! broken EXIF block is ignored, not an error); `info` says how the image is shown; `convert
//! --orientation auto` writes it turned, equal to the `image` crate's own rotation.

use tessera::OpenImage;
use tessera::orientation::Orientation;

use crate::support::synth::{TiffSpec, pattern_tiff};
use crate::support::{render_region, run, tempdir};

/// A JPEG (the `image` crate's encoder) with an APP1 EXIF block spliced in after SOI.
fn jpeg_with_exif(exif_tiff: &[u8]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&img)
        .expect("encode");
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(exif_tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An EXIF TIFF structure whose IFD0 holds Orientation = `v` (and one other tag first).
fn exif(v: u16, big: bool) -> Vec<u8> {
    let w16 = |x: u16| {
        if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    let w32 = |x: u32| {
        if big {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    };
    let mut t = if big { b"MM".to_vec() } else { b"II".to_vec() };
    t.extend_from_slice(&w16(42));
    t.extend_from_slice(&w32(8));
    t.extend_from_slice(&w16(2));
    // Make (0x010F), ASCII, 4 bytes inline: "abc\0".
    t.extend_from_slice(&w16(0x010F));
    t.extend_from_slice(&w16(2));
    t.extend_from_slice(&w32(4));
    t.extend_from_slice(b"abc\0");
    t.extend_from_slice(&w16(0x0112));
    t.extend_from_slice(&w16(3));
    t.extend_from_slice(&w32(1));
    t.extend_from_slice(&w16(v));
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(&w32(0));
    t
}

#[test]
fn the_tiff_tag_and_jpeg_exif_say_how_to_show_the_image() {
    let dir = tempdir();
    let tif = dir.path().join("turned.tif");
    let mut spec = TiffSpec::new(120, 80, 3, 8, 2);
    spec.orientation = 8;
    pattern_tiff(&tif, &spec);
    let image = OpenImage::open(&tif).expect("open");
    assert_eq!(
        image.page(0).expect("page").orientation,
        Orientation::from_exif(8)
    );
    let (code, text, err) = run(&["info", tif.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("orient:  rotated 90° counter-clockwise (Orientation tag 8"),
        "{text}"
    );

    for (v, big) in [(6u16, true), (3, false)] {
        let p = crate::support::write(
            dir.path(),
            &format!("exif-{v}.jpg"),
            &jpeg_with_exif(&exif(v, big)),
        );
        let image = OpenImage::open(&p).expect("open");
        assert_eq!(
            image.page(0).expect("page").orientation,
            Orientation::from_exif(v)
        );
    }
    // A cut EXIF block, or one with a value out of range: shown as stored, no error.
    let mut cut = exif(6, false);
    cut.truncate(20);
    for (name, block) in [("cut", cut), ("odd", exif(42, false))] {
        let p = crate::support::write(dir.path(), &format!("{name}.jpg"), &jpeg_with_exif(&block));
        let image = OpenImage::open(&p).expect("a broken EXIF block is not an error");
        assert!(
            image.page(0).expect("page").orientation.is_identity(),
            "{name}"
        );
    }
}

#[test]
fn convert_can_write_the_image_as_its_tag_says() {
    let dir = tempdir();
    let tif = dir.path().join("turned.tif");
    let mut spec = TiffSpec::new(150, 70, 3, 8, 2).strips(16);
    spec.orientation = 6;
    pattern_tiff(&tif, &spec);
    let out = dir.path().join("upright.tif");
    let (code, _, err) = run(&[
        "convert",
        tif.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--orientation",
        "auto",
        "--compression",
        "deflate",
    ]);
    assert_eq!(code, 0, "{err}");
    let got = image::open(&out).expect("read back").to_rgb8();
    let r = render_region(&tif, (0, 0, 150, 70), 1).expect("render");
    let plain = image::RgbaImage::from_raw(r.width, r.height, r.data).expect("image");
    let want = image::DynamicImage::ImageRgba8(crate::export::turned(&plain, 6)).to_rgb8();
    assert_eq!(got.dimensions(), (70, 150));
    assert!(got == want, "written turned as the tag says");
    let (code, _, err) = run(&[
        "convert",
        tif.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
        "--orientation",
        "9",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--orientation"), "{err}");
}
