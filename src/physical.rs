//! How big a pixel is: read from the file's own metadata (OME-XML, Aperio's MPP, GeoTIFF's
//! ModelPixelScale, FITS CDELT/CD, TIFF resolution tags), and turned into lengths people read
//! (a scale bar's round length, "12.5 µm"). Pure code: the parsers hand in strings and numbers.

/// What a pixel's size is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Lengths, kept in metres.
    Metre,
    /// Angles on the sky or the globe, kept in degrees.
    Degree,
}

/// The size of one pixel, and where it was read from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelSize {
    pub x: f64,
    pub y: f64,
    pub unit: Unit,
    /// The metadata it came from, for `info` ("OME-XML PhysicalSizeX/Y", "Aperio MPP", ...).
    pub source: &'static str,
}

impl PixelSize {
    /// A size, if both sides are positive and finite.
    pub fn new(x: f64, y: f64, unit: Unit, source: &'static str) -> Option<Self> {
        let ok = |v: f64| v.is_finite() && v > 0.0 && v < 1e12;
        (ok(x) && ok(y)).then_some(Self { x, y, unit, source })
    }

    /// "0.25 µm x 0.25 µm (Aperio MPP)".
    pub fn describe(&self) -> String {
        format!(
            "{} x {} ({})",
            format_length(self.x, self.unit),
            format_length(self.y, self.unit),
            self.source
        )
    }

    /// The length of a displacement of `dx`, `dy` pixels, in the size's unit.
    pub fn length(&self, dx: f64, dy: f64) -> f64 {
        ((dx * self.x).powi(2) + (dy * self.y).powi(2)).sqrt()
    }
}

/// A length in a readable unit with 3 significant digits: "12.5 µm", "3.20 km", "1.5″".
pub fn format_length(v: f64, unit: Unit) -> String {
    let (value, suffix) = match unit {
        Unit::Metre => {
            let a = v.abs();
            if a == 0.0 {
                (0.0, "m")
            } else if a < 1e-6 {
                (v * 1e9, "nm")
            } else if a < 1e-3 {
                (v * 1e6, "µm")
            } else if a < 1.0 {
                (v * 1e3, "mm")
            } else if a < 1e3 {
                (v, "m")
            } else {
                (v / 1e3, "km")
            }
        }
        Unit::Degree => {
            let a = v.abs();
            if a >= 1.0 || a == 0.0 {
                (v, "°")
            } else if a >= 1.0 / 60.0 {
                (v * 60.0, "′")
            } else {
                (v * 3600.0, "″")
            }
        }
    };
    let digits = if value.abs() >= 100.0 {
        0
    } else if value.abs() >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    // "12.50" → "12.5", "3.00" → "3": trailing zeros say nothing.
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    let sep = if matches!(unit, Unit::Degree) {
        ""
    } else {
        " "
    };
    format!("{text}{sep}{suffix}")
}

/// The longest round length (1, 2 or 5 times a power of ten) not over `max`: a scale bar's.
pub fn round_length(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 0.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&l| l <= max * (1.0 + 1e-9))
        .unwrap_or(p)
}

/// A scale bar for a view at `zoom` (screen pixels per image pixel) at most `max_px` long:
/// its round length (in the size's unit) and its length on screen, measured along x.
pub fn scale_bar(size: &PixelSize, zoom: f64, max_px: f64) -> Option<(f64, f64)> {
    if !(zoom > 0.0 && max_px > 0.0) {
        return None;
    }
    let per_screen_px = size.x / zoom;
    let len = round_length(max_px * per_screen_px);
    (len > 0.0).then(|| (len, len / per_screen_px))
}

/// Metres in one `unit` as OME writes units ("µm", "um", "nm", "mm", "cm", "m", "in").
fn metres_per(unit: &str) -> Option<f64> {
    Some(match unit.trim() {
        "" | "µm" | "μm" | "um" | "micron" | "microns" => 1e-6,
        "nm" => 1e-9,
        "mm" => 1e-3,
        "cm" => 1e-2,
        "m" => 1.0,
        "km" => 1e3,
        "in" | "inch" => 0.0254,
        "Å" | "angstrom" => 1e-10,
        _ => return None,
    })
}

/// The value of attribute `name` in the first element that has it.
fn attribute<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = xml.find(&key)? + key.len();
    let len = xml[start..].find('"')?;
    Some(&xml[start..start + len])
}

/// OME-XML `Pixels PhysicalSizeX/Y` (with `PhysicalSizeXUnit`, µm by default).
pub fn from_ome(xml: &str) -> Option<PixelSize> {
    let size = |axis: &str| -> Option<f64> {
        let v: f64 = attribute(xml, &format!("PhysicalSize{axis}"))?
            .parse()
            .ok()?;
        let unit = attribute(xml, &format!("PhysicalSize{axis}Unit")).unwrap_or("µm");
        Some(v * metres_per(unit)?)
    };
    let x = size("X")?;
    let y = size("Y").unwrap_or(x);
    PixelSize::new(x, y, Unit::Metre, "OME-XML PhysicalSizeX/Y")
}

/// Aperio's ImageDescription: `... |MPP = 0.2520|...` (microns per pixel).
pub fn from_aperio(description: &str) -> Option<PixelSize> {
    if !description.starts_with("Aperio") {
        return None;
    }
    let mpp = description.split('|').find_map(|field| {
        let (k, v) = field.split_once('=')?;
        (k.trim() == "MPP").then(|| v.trim().parse::<f64>().ok())?
    })?;
    PixelSize::new(mpp * 1e-6, mpp * 1e-6, Unit::Metre, "Aperio MPP")
}

/// GeoTIFF `ModelPixelScaleTag` (33550): degrees for a geographic model
/// (GTModelTypeGeoKey 2), else the projection's linear unit (metres, or feet when
/// ProjLinearUnitsGeoKey says 9002/9003).
pub fn from_geotiff(scale: &[f64], geo_keys: &[u16]) -> Option<PixelSize> {
    let (sx, sy) = (*scale.first()?, *scale.get(1)?);
    // GeoKeyDirectory: a header of 4 shorts, then (key, location, count, value) entries.
    let key = |k: u16| {
        geo_keys
            .get(4..)?
            .chunks_exact(4)
            .find(|e| e[0] == k && e[1] == 0)
            .map(|e| e[3])
    };
    if key(1024) == Some(2) {
        return PixelSize::new(sx, sy, Unit::Degree, "GeoTIFF ModelPixelScale");
    }
    let feet = match key(3076) {
        Some(9002) => 0.3048,
        Some(9003) => 1200.0 / 3937.0,
        _ => 1.0,
    };
    PixelSize::new(sx * feet, sy * feet, Unit::Metre, "GeoTIFF ModelPixelScale")
}

/// TIFF `XResolution`/`YResolution` (pixels per `ResolutionUnit`: 2 inch, 3 centimetre;
/// 1, no unit, gives no size). Writers' defaults say nothing about the pixels and give no size
/// either: 72 and 96 dpi, and libvips' 10 pixels per centimetre.
pub fn from_tiff_resolution(xres: f64, yres: f64, unit: u16) -> Option<PixelSize> {
    let per = match unit {
        2 => 0.0254,
        3 => 0.01,
        _ => return None,
    };
    let (x, y) = (per / xres, per / yres);
    let default = |v: f64| {
        [0.0254 / 72.0, 0.0254 / 96.0, 1e-3]
            .iter()
            .any(|d| (v - d).abs() < d * 1e-6)
    };
    if default(x) && default(y) {
        return None;
    }
    PixelSize::new(x, y, Unit::Metre, "TIFF resolution tags")
}

/// FITS `CDELT1/2` or the `CD1_1/CD2_2` matrix (angles in `CUNIT1`, degrees by default).
pub fn from_fits(get: &dyn Fn(&str) -> Option<String>) -> Option<PixelSize> {
    let num = |k: &str| get(k)?.trim().parse::<f64>().ok();
    let (x, y, source) = if let (Some(a), Some(b)) = (num("CDELT1"), num("CDELT2")) {
        (a.abs(), b.abs(), "FITS CDELT1/2")
    } else {
        let (a, b, c, d) = (
            num("CD1_1").unwrap_or(0.0),
            num("CD1_2").unwrap_or(0.0),
            num("CD2_1").unwrap_or(0.0),
            num("CD2_2").unwrap_or(0.0),
        );
        (a.hypot(c), b.hypot(d), "FITS CD matrix")
    };
    let unit = get("CUNIT1").unwrap_or_else(|| "deg".into());
    let (factor, unit) = match unit.trim() {
        "" | "deg" => (1.0, Unit::Degree),
        "arcmin" => (1.0 / 60.0, Unit::Degree),
        "arcsec" => (1.0 / 3600.0, Unit::Degree),
        u => (metres_per(u)?, Unit::Metre),
    };
    PixelSize::new(x * factor, y * factor, unit, source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_lengths_and_round_scale_bars() {
        assert_eq!(format_length(12.5e-6, Unit::Metre), "12.5 µm");
        assert_eq!(format_length(0.25e-6, Unit::Metre), "250 nm");
        assert_eq!(format_length(3200.0, Unit::Metre), "3.2 km");
        assert_eq!(format_length(30.0, Unit::Metre), "30 m");
        assert_eq!(format_length(1.0 / 3600.0, Unit::Degree), "1″");
        assert_eq!(format_length(0.5, Unit::Degree), "30′");
        assert_eq!(round_length(0.00073), 0.0005);
        assert_eq!(round_length(237.0), 200.0);
        assert_eq!(round_length(1.0), 1.0);
        assert_eq!(round_length(0.0), 0.0);
        // 0.5 µm pixels at 25% zoom: 2 µm a screen pixel, 150 px hold 300 µm: a 200 µm bar
        // of 100 px.
        let p = PixelSize::new(0.5e-6, 0.5e-6, Unit::Metre, "test").expect("size");
        let (len, px) = scale_bar(&p, 0.25, 150.0).expect("bar");
        assert!((len - 200e-6).abs() < 1e-12 && (px - 100.0).abs() < 1e-6);
        assert!(scale_bar(&p, 0.0, 150.0).is_none());
    }

    #[test]
    fn sizes_from_each_source() {
        let ome = r#"<OME><Image><Pixels PhysicalSizeX="0.325" PhysicalSizeY="0.5" PhysicalSizeYUnit="nm" SizeX="10"/></Image></OME>"#;
        let p = from_ome(ome).expect("ome");
        assert!((p.x - 0.325e-6).abs() < 1e-15 && (p.y - 0.5e-9).abs() < 1e-18);
        let aperio = "Aperio Image Library v11.2.1\r\n46000x32914 [0,100 46000x32814] (256x256) JPEG/RGB Q=30|AppMag = 20|MPP = 0.4990|Filename = CMU-1";
        let p = from_aperio(aperio).expect("aperio");
        assert!((p.x - 0.499e-6).abs() < 1e-15);
        assert_eq!(p.describe(), "499 nm x 499 nm (Aperio MPP)");
        assert!(
            from_aperio("MPP = 0.5").is_none(),
            "not an Aperio description"
        );
        let keys = [1, 1, 0, 2, 1024, 0, 1, 2, 3076, 0, 1, 9001];
        let p = from_geotiff(&[0.001, 0.001, 0.0], &keys).expect("geo");
        assert_eq!(p.unit, Unit::Degree);
        let p = from_geotiff(&[30.0, 30.0, 0.0], &[1, 1, 0, 1, 3076, 0, 1, 9002]).expect("ft");
        assert!((p.x - 9.144).abs() < 1e-9);
        let p = from_tiff_resolution(300.0, 300.0, 2).expect("dpi");
        assert!((p.x - 0.0254 / 300.0).abs() < 1e-12);
        assert!(from_tiff_resolution(72.0, 72.0, 1).is_none());
        assert!(
            from_tiff_resolution(72.0, 72.0, 2).is_none(),
            "72 dpi: a default"
        );
        assert!(
            from_tiff_resolution(10.0, 10.0, 3).is_none(),
            "libvips' default"
        );
        assert!(
            from_tiff_resolution(0.0, 72.0, 2).is_none(),
            "zero resolution"
        );
        let fits = |k: &str| match k {
            "CDELT1" => Some("-2.777777777778E-04".to_string()),
            "CDELT2" => Some("2.777777777778E-04".to_string()),
            _ => None,
        };
        let p = from_fits(&fits).expect("fits");
        assert_eq!(format_length(p.x, p.unit), "1″");
        let cd = |k: &str| match k {
            "CD1_1" => Some("0".to_string()),
            "CD1_2" => Some("1e-4".to_string()),
            "CD2_1" => Some("-1e-4".to_string()),
            "CD2_2" => Some("0".to_string()),
            _ => None,
        };
        let p = from_fits(&cd).expect("cd");
        assert!((p.x - 1e-4).abs() < 1e-12 && (p.y - 1e-4).abs() < 1e-12);
    }
}
