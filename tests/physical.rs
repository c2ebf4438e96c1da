//! Pixel sizes read from each kind of metadata, as `info` reports them: OME-XML and Aperio
//! descriptions (written here with the `tiff` crate's encoder), a GeoTIFF written by GDAL
//! (tests/fixtures/geo_utm.tif) and FITS CDELT cards.

use std::path::Path;

use crate::scientific::fits;
use crate::support::synth::{TiffSpec, write_tiff_data};
use crate::support::{run, tempdir, write};

/// `(x, y, unit, source)` of `info --json`'s pixel size.
fn pixel_size(path: &Path) -> Option<(f64, f64, String, String)> {
    let (code, out, err) = run(&["info", "--json", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let p = v.get("pixel_size")?;
    Some((
        p["x"].as_f64().expect("x"),
        p["y"].as_f64().expect("y"),
        p["unit"].as_str().expect("unit").to_string(),
        p["source"].as_str().expect("source").to_string(),
    ))
}

fn tiff_with_description(dir: &Path, name: &str, description: &str) -> std::path::PathBuf {
    let mut spec = TiffSpec::new(16, 8, 1, 8, 1);
    spec.description = Some(description.to_string());
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    write_tiff_data(&mut f, &spec, &|x, y, _| f64::from(x + y), None).expect("tiff");
    path
}

#[test]
fn pixel_sizes_from_ome_aperio_geotiff_and_fits() {
    let dir = tempdir();
    let ome = tiff_with_description(
        dir.path(),
        "ome.tif",
        r#"<?xml version="1.0"?><OME><Image ID="Image:0"><Pixels PhysicalSizeX="0.325" PhysicalSizeY="0.325" PhysicalSizeXUnit="µm" SizeX="16" SizeY="8"/></Image></OME>"#,
    );
    let (x, y, unit, source) = pixel_size(&ome).expect("OME size");
    assert!(
        (x - 0.325e-6).abs() < 1e-12 && (y - 0.325e-6).abs() < 1e-12,
        "{x} {y}"
    );
    assert_eq!(
        (unit.as_str(), source.as_str()),
        ("m", "OME-XML PhysicalSizeX/Y")
    );

    let aperio = tiff_with_description(
        dir.path(),
        "svs.tif",
        "Aperio Image Library v12.0.5\r\n16x8 (256x256) J2K/YUV16 Q=70|AppMag = 40|MPP = 0.2480",
    );
    let (x, _, _, source) = pixel_size(&aperio).expect("Aperio size");
    assert!((x - 0.248e-6).abs() < 1e-12 && source == "Aperio MPP");

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geo_utm.tif");
    let (x, y, unit, source) = pixel_size(&fixture).expect("GeoTIFF size");
    assert_eq!((x, y, unit.as_str()), (750.0, 1200.0, "m"));
    assert_eq!(source, "GeoTIFF ModelPixelScale");
    let (code, text, _) = run(&["info", fixture.to_str().expect("utf-8")]);
    assert_eq!(code, 0);
    assert!(
        text.contains("pixel:   750 m x 1.2 km (GeoTIFF ModelPixelScale)"),
        "{text}"
    );

    let c = |k: &'static str, v: &str| (k, v.to_string());
    let bytes = fits(
        &[
            c("SIMPLE", "T"),
            c("BITPIX", "8"),
            c("NAXIS", "2"),
            c("NAXIS1", "4"),
            c("NAXIS2", "3"),
            c("CDELT1", "-2.777777777778E-04"),
            c("CDELT2", "2.777777777778E-04"),
        ],
        &[7u8; 12],
        &[],
    );
    let path = write(dir.path(), "sky.fits", &bytes);
    let (x, _, unit, source) = pixel_size(&path).expect("FITS size");
    assert!((x * 3600.0 - 1.0).abs() < 1e-9 && unit == "deg" && source == "FITS CDELT1/2");

    // No metadata, or a writer's default resolution: no size.
    let plain = tiff_with_description(dir.path(), "plain.tif", "just a picture");
    assert!(pixel_size(&plain).is_none());
}
