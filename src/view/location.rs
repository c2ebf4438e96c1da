//! A place in an image as text: what the go-to field reads, what "copy location" writes and what
//! `tessera FILE --page P --at X,Y[,ZOOM]` reopens. Pure code, tested here.

use crate::physical::{PixelSize, Unit};

/// A centre (full-resolution pixels) and, optionally, a zoom (screen pixels per image pixel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub x: f64,
    pub y: f64,
    pub zoom: Option<f64>,
}

/// One coordinate: a number of pixels, or a length with its unit when the image has a pixel
/// size ("1.5 mm", "250µm", "0.01 deg").
fn coordinate(text: &str, per_pixel: Option<(f64, Unit)>) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let v: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{t}' is not a number"))?;
    let unit = unit.trim();
    let scale = match unit {
        "" | "px" => return Ok(v),
        "nm" => (1e-9, Unit::Metre),
        "µm" | "um" | "μm" => (1e-6, Unit::Metre),
        "mm" => (1e-3, Unit::Metre),
        "cm" => (1e-2, Unit::Metre),
        "m" => (1.0, Unit::Metre),
        "km" => (1e3, Unit::Metre),
        "deg" | "°" => (1.0, Unit::Degree),
        "arcmin" | "′" => (1.0 / 60.0, Unit::Degree),
        "arcsec" | "″" => (1.0 / 3600.0, Unit::Degree),
        u => return Err(format!("unknown unit '{u}'")),
    };
    match per_pixel {
        Some((size, u)) if u == scale.1 => Ok(v * scale.0 / size),
        Some(_) => Err(format!("'{t}': the pixel size is not in such units")),
        None => Err(format!("'{t}': this image has no pixel size")),
    }
}

/// Parse `X,Y[,ZOOM]`: X and Y in pixels or physical units (see [`coordinate`]), ZOOM a factor
/// (`2`) or a percentage (`200%`).
pub fn parse(text: &str, size: Option<&PixelSize>) -> Result<Location, String> {
    let parts: Vec<&str> = text.split(',').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(format!("'{text}': expected X,Y or X,Y,ZOOM"));
    }
    let x = coordinate(parts[0], size.map(|s| (s.x, s.unit)))?;
    let y = coordinate(parts[1], size.map(|s| (s.y, s.unit)))?;
    let zoom = match parts.get(2).map(|z| z.trim()) {
        None | Some("") => None,
        Some(z) => {
            let (num, div) = match z.strip_suffix('%') {
                Some(n) => (n, 100.0),
                None => (z, 1.0),
            };
            let v: f64 = num
                .trim()
                .parse()
                .map_err(|_| format!("zoom '{z}' is not a number"))?;
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("zoom '{z}' must be positive"));
            }
            Some(v / div)
        }
    };
    if !(x.is_finite() && y.is_finite()) {
        return Err(format!("'{text}': not a place"));
    }
    Ok(Location { x, y, zoom })
}

/// `X,Y,ZOOM` as [`parse`] reads it back (pixels, zoom as a factor).
pub fn format(l: &Location) -> String {
    match l.zoom {
        Some(z) => format!("{:.0},{:.0},{}", l.x, l.y, round_zoom(z)),
        None => format!("{:.0},{:.0}", l.x, l.y),
    }
}

fn round_zoom(z: f64) -> String {
    let s = format!("{z:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The command line that reopens `path` at this place.
pub fn command_line(path: &std::path::Path, page: u32, l: &Location) -> String {
    let quoted = shell_quote(&path.display().to_string());
    let page = if page > 0 {
        format!(" --page {page}")
    } else {
        String::new()
    };
    format!("tessera {quoted}{page} --at {}", format(l))
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_parse_in_pixels_units_and_zooms() {
        let l = parse("1200, 340", None).expect("pixels");
        assert_eq!((l.x, l.y, l.zoom), (1200.0, 340.0, None));
        assert_eq!(parse("10,20,200%", None).expect("percent").zoom, Some(2.0));
        assert_eq!(parse("10,20,0.25", None).expect("factor").zoom, Some(0.25));
        let um = PixelSize::new(0.5e-6, 0.25e-6, Unit::Metre, "test").expect("size");
        let l = parse("1 mm, 250µm", Some(&um)).expect("units");
        assert!((l.x - 2000.0).abs() < 1e-6 && (l.y - 1000.0).abs() < 1e-6);
        assert!(parse("1mm,2mm", None).is_err(), "no pixel size");
        assert!(parse("1deg,2deg", Some(&um)).is_err(), "wrong kind of unit");
        assert!(parse("1,2,0", None).is_err());
        assert!(parse("1", None).is_err());
        assert!(parse("a,b", None).is_err());
        assert!(parse("1,2,3,4", None).is_err());
    }

    #[test]
    fn formatted_places_read_back() {
        let l = Location {
            x: 1234.4,
            y: 99.6,
            zoom: Some(0.0625),
        };
        assert_eq!(format(&l), "1234,100,0.0625");
        let back = parse(&format(&l), None).expect("parse");
        assert_eq!((back.x, back.y, back.zoom), (1234.0, 100.0, Some(0.0625)));
        assert_eq!(
            command_line(std::path::Path::new("/data/my slide.svs"), 2, &l),
            "tessera '/data/my slide.svs' --page 2 --at 1234,100,0.0625"
        );
    }
}
