//! Writes the benchmark images with the tests' fixture writers:
//! `cargo run --release --example synth -- KIND WIDTH HEIGHT OUT`
//! (KIND: ppm pgm bmp tiff-strip tiff-tiled-rgba dem-tiff tiff12 dem-fits). Row by row, so multi-gigabyte files need
//! no memory.

#[allow(dead_code)] // reason: the tests use the rest of the fixture writers
#[path = "../tests/support/synth.rs"]
mod synth;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: synth KIND WIDTH HEIGHT OUT (KIND: ppm pgm bmp tiff-strip tiff-tiled-rgba dem-tiff tiff12 dem-fits)";
    let [kind, w, h, out] = args.as_slice() else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    let kind = match kind.as_str() {
        "ppm" => Some(synth::Kind::Ppm),
        "pgm" => Some(synth::Kind::Pgm),
        "bmp" => Some(synth::Kind::Bmp),
        "tiff-strip" => Some(synth::Kind::TiffStrip),
        "tiff-tiled-rgba" => Some(synth::Kind::TiffTiledRgba),
        "dem-tiff" => Some(synth::Kind::DemTiff),
        "tiff12" => Some(synth::Kind::Tiff12),
        "dem-fits" => Some(synth::Kind::DemFits),
        _ => None,
    };
    let (Some(kind), Ok(w), Ok(h)) = (kind, w.parse(), h.parse()) else {
        eprintln!("{usage}");
        return ExitCode::from(2);
    };
    match synth::write_file(kind, w, h, Path::new(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synth: writing {out}: {e}");
            ExitCode::from(2)
        }
    }
}
