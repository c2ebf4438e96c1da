//! A seeded mutation test over fixtures of every format: flipped bytes, cut files, extreme
//! values written over header fields, spliced ranges. Whatever the bytes, opening and rendering
//! must end in a result or a clean error, never a panic (in the parser, the render, or a loader
//! worker, which reports one as an "internal error"), a hang or a crash.
//!
//! A failure prints the seed of the mutation; `TESSERA_MUTATION_SEED=N cargo test mutation`
//! replays a run (the default seed is fixed, so every run tests the same mutations).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::encode::{encode_jpeg_rst, encode_png, jpeg_bytes, tiff_bytes};
use crate::support::synth::TiffSpec;
use crate::support::{render_region, tempdir, write};

/// Mutations per fixture: with the 28 fixtures below, about a minute of a debug `cargo test`.
const MUTATIONS: u64 = 300;
/// Longer than any honest open and render of these small files.
const TIMEOUT: Duration = Duration::from_secs(20);

fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// One mutation of `bytes`, chosen and placed by `seed` (headers are hit more often).
fn mutate(bytes: &[u8], seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut b = bytes.to_vec();
    let n = b.len().max(1);
    let pos = |s: &mut u64| -> usize {
        if next(s).is_multiple_of(3) {
            (next(s) as usize) % n
        } else {
            (next(s) as usize) % n.min(600)
        }
    };
    match next(&mut s) % 5 {
        0 => {
            for _ in 0..1 + next(&mut s) % 8 {
                let i = pos(&mut s);
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << (next(&mut s) % 8);
                }
            }
        }
        1 => b.truncate(pos(&mut s)),
        2 => {
            let values = [0u32, u32::MAX, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF, 1];
            let v = values[(next(&mut s) % values.len() as u64) as usize].to_be_bytes();
            let i = pos(&mut s);
            let flip = next(&mut s).is_multiple_of(2);
            for k in 0..4 {
                if let Some(x) = b.get_mut(i + k) {
                    *x = if flip { v[3 - k] } else { v[k] };
                }
            }
        }
        3 => {
            // Splice: a copy of one range over another.
            let (a, c) = (pos(&mut s), pos(&mut s));
            let len = (next(&mut s) % 64) as usize;
            let src: Vec<u8> = b.iter().skip(a).take(len).copied().collect();
            for (k, x) in src.into_iter().enumerate() {
                if let Some(y) = b.get_mut(c + k) {
                    *y = x;
                }
            }
        }
        _ => {
            let i = pos(&mut s).min(b.len());
            let junk: Vec<u8> = (0..1 + next(&mut s) % 32)
                .map(|_| next(&mut s) as u8)
                .collect();
            b.splice(i..i, junk);
        }
    }
    b
}

/// Open `path` and render a corner of every page (and a scaled view), off this thread.
/// `Err` says what went wrong: a panic, an internal error or a hang.
fn exercise(path: &Path) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| -> Result<(), String> {
            let Ok(image) = tessera::OpenImage::open(&p) else {
                return Ok(());
            };
            let pages = image.layout.pages.len().min(3);
            for page in 0..pages as u32 {
                let pg = &image.layout.pages[page as usize];
                let (w, h) = (pg.width.min(64), pg.height.min(64));
                for (region, scale) in [
                    ((0, 0, w, h), 1),
                    ((0, 0, pg.width.min(512), pg.height.min(512)), 4),
                ] {
                    if let Err(e) = crate::support::render_page(&p, page, region, scale)
                        && e.contains("internal error")
                    {
                        return Err(e);
                    }
                }
            }
            Ok(())
        });
        let _ = tx.send(match r {
            Ok(r) => r,
            Err(payload) => Err(format!(
                "panic: {}",
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            )),
        });
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(r) => r,
        Err(_) => Err(format!("no result in {TIMEOUT:?} (a hang)")),
    }
}

/// Fixtures of every format and codec, small.
fn fixtures(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = crate::malformed::fixtures(dir);
    out.push((
        "g16.png".into(),
        encode_png(
            png::ColorType::Grayscale,
            png::BitDepth::Sixteen,
            false,
            (41, 37),
            png::Compression::Fast,
            300,
        ),
    ));
    out.push((
        "pal.png".into(),
        encode_png(
            png::ColorType::Indexed,
            png::BitDepth::Four,
            true,
            (41, 37),
            png::Compression::Fast,
            300,
        ),
    ));
    out.push(("prog.jpg".into(), jpeg_bytes(3, true, true, 61, 43)));
    out.push(("rst.jpg".into(), encode_jpeg_rst(3, (2, 2), 2, 61, 43)));
    let mut spec = TiffSpec::new(61, 43, 1, 8, 3).tiles(16, 16);
    spec.colormap = (0..768).map(|i| (i * 257 % 65536) as u16).collect();
    out.push((
        "pal-lzw.tif".into(),
        tiff_bytes(&spec, &|x, y, _| ((x + y) % 256) as u16, Some(5)),
    ));
    let zstd = |b: &[u8]| zstd::bulk::compress(b, 3).expect("zstd");
    let mut cur = std::io::Cursor::new(Vec::new());
    crate::support::synth::write_tiff(
        &mut cur,
        &TiffSpec::new(61, 43, 3, 8, 2).tiles(16, 16),
        &|x, y, c| ((x * 3 + y + c) % 256) as u16,
        Some((50000, &zstd)),
    )
    .expect("zstd tiff");
    out.push(("zstd.tif".into(), cur.into_inner()));
    let rgba: Vec<u8> = (0..61 * 43 * 4).map(|i| (i * 7 % 251) as u8).collect();
    let mut webp = Vec::new();
    image_webp::WebPEncoder::new(&mut webp)
        .encode(&rgba, 61, 43, image_webp::ColorType::Rgba8)
        .expect("webp");
    out.push(("a.webp".into(), webp));
    // The codecs written by other encoders (tests/fixtures/make.sh).
    for name in [
        "j2k_tiled_lossy.jp2",
        "j2k_untiled_gray16.j2k",
        "j2k_tiles.tif",
        "jxl_lossy.jxl",
        "lerc_f32_deflate.tif",
        "lerc_i16_zstd.tif",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        out.push((name.into(), std::fs::read(path).expect("fixture")));
    }
    out
}

#[test]
fn seeded_mutations_never_panic_or_hang() {
    let dir = tempdir();
    let base: u64 = std::env::var("TESSERA_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7E55_E4A5_EED5);
    let fixtures = fixtures(dir.path());
    // The honest files render.
    for (name, bytes) in &fixtures {
        let p = write(dir.path(), name, bytes);
        assert!(
            render_region(&p, (0, 0, 8, 8), 1).is_ok(),
            "{name} itself fails"
        );
    }
    for (f, (name, bytes)) in fixtures.iter().enumerate() {
        for i in 0..MUTATIONS {
            let seed = base
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add((f as u64) << 32 | i);
            let p = write(dir.path(), &format!("m-{name}"), &mutate(bytes, seed));
            if let Err(what) = exercise(&p) {
                panic!(
                    "{name}, mutation {i} (seed {seed:#x}; TESSERA_MUTATION_SEED={base} replays the run): {what}"
                );
            }
        }
    }
}
