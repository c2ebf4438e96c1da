//! Orientation: the eight ways to rotate by quarter turns and flip an image (the TIFF/EXIF
//! `Orientation` values), as a 2x2 signed permutation matrix acting on offsets. Pure logic.
//!
//! Image coordinates stay the coordinates of every location (centre, cursor readout, go-to,
//! bookmarks, measure): an orientation only changes how image offsets land on screen and in
//! exported pixels. A display vector is `d = M · v` for an image vector `v` (y pointing down).

use crate::format::Extent;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Orientation {
    /// Row-major `[a, b, c, d]`: `dx = a·vx + b·vy`, `dy = c·vx + d·vy`.
    m: [i8; 4],
}

impl Default for Orientation {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Orientation {
    pub const IDENTITY: Self = Self { m: [1, 0, 0, 1] };
    /// A quarter turn clockwise on screen: right becomes down.
    pub const CW: Self = Self { m: [0, -1, 1, 0] };
    /// Mirror left-right.
    pub const FLIP_H: Self = Self { m: [-1, 0, 0, 1] };
    /// Mirror top-bottom.
    pub const FLIP_V: Self = Self { m: [1, 0, 0, -1] };

    /// The TIFF/EXIF `Orientation` tag (274): how the stored rows are to be shown. Values
    /// outside 1..=8 are treated as 1, as libtiff and browsers do.
    pub fn from_exif(v: u16) -> Self {
        let m = match v {
            2 => [-1, 0, 0, 1],
            3 => [-1, 0, 0, -1],
            4 => [1, 0, 0, -1],
            5 => [0, 1, 1, 0],
            6 => [0, -1, 1, 0],
            7 => [0, -1, -1, 0],
            8 => [0, 1, -1, 0],
            _ => [1, 0, 0, 1],
        };
        Self { m }
    }

    /// The `Orientation` tag value of this orientation.
    pub fn exif(self) -> u16 {
        (1..=8).find(|&v| Self::from_exif(v) == self).unwrap_or(1)
    }

    pub fn is_identity(self) -> bool {
        self == Self::IDENTITY
    }

    /// `self` then `then`: the matrix product `then · self`.
    pub fn then(self, then: Self) -> Self {
        let [a, b, c, d] = then.m;
        let [e, f, g, h] = self.m;
        Self {
            m: [a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h],
        }
    }

    /// The inverse (the transpose: the matrix is orthogonal).
    pub fn inverse(self) -> Self {
        let [a, b, c, d] = self.m;
        Self { m: [a, c, b, d] }
    }

    /// Whether image columns become display rows (a quarter turn, possibly flipped).
    pub fn swaps_axes(self) -> bool {
        self.m[0] == 0
    }

    /// Display vector of image vector (x, y).
    pub fn apply(self, x: f64, y: f64) -> (f64, f64) {
        let [a, b, c, d] = self.m.map(f64::from);
        (a * x + b * y, c * x + d * y)
    }

    /// Size shown for an image of `w` x `h`.
    pub fn display_size(self, w: u32, h: u32) -> (u32, u32) {
        if self.swaps_axes() { (h, w) } else { (w, h) }
    }

    /// A short name for menus and the status bar: "rotated 90° clockwise", "mirrored", ...
    pub fn describe(self) -> &'static str {
        match self.exif() {
            2 => "mirrored",
            3 => "rotated 180°",
            4 => "flipped",
            5 => "rotated 90° counter-clockwise, mirrored",
            6 => "rotated 90° clockwise",
            7 => "rotated 90° clockwise, mirrored",
            8 => "rotated 90° counter-clockwise",
            _ => "as stored",
        }
    }

    /// The pixel of a `w` x `h` image shown at display pixel (ox, oy) of its oriented copy
    /// (pixel centres map onto pixel centres; exact integer arithmetic).
    pub fn source_pixel(self, (w, h): (u32, u32), ox: u32, oy: u32) -> (u32, u32) {
        let (dw, dh) = self.display_size(w, h);
        // Twice the offset of the display pixel's centre from the display centre.
        let dx = 2 * i64::from(ox) + 1 - i64::from(dw);
        let dy = 2 * i64::from(oy) + 1 - i64::from(dh);
        let [a, b, c, d] = self.inverse().m.map(i64::from);
        let (vx, vy) = (a * dx + b * dy, c * dx + d * dy);
        (
            ((vx + i64::from(w) - 1) / 2) as u32,
            ((vy + i64::from(h) - 1) / 2) as u32,
        )
    }

    /// The image pixels (inside a `w` x `h` image) that display rectangle `out` of the
    /// oriented copy shows.
    pub fn source_extent(self, size: (u32, u32), out: &Extent) -> Extent {
        let a = self.source_pixel(size, out.x0, out.y0);
        let b = self.source_pixel(size, out.x1 - 1, out.y1 - 1);
        Extent::new(
            a.0.min(b.0),
            a.1.min(b.1),
            a.0.max(b.0) + 1,
            a.1.max(b.1) + 1,
        )
    }

    /// Copy `out` (a rectangle of the oriented copy of a `size` image) out of `src`, which
    /// holds the image pixels of `src_extent` (at least [`Orientation::source_extent`]), `bpp` bytes
    /// a pixel.
    pub fn remap(
        self,
        size: (u32, u32),
        src: &[u8],
        src_extent: &Extent,
        out: &Extent,
        bpp: usize,
    ) -> Vec<u8> {
        let mut dst = vec![0u8; out.width() as usize * out.height() as usize * bpp];
        let sw = src_extent.width() as usize;
        let mut i = 0;
        for oy in out.y0..out.y1 {
            for ox in out.x0..out.x1 {
                let (x, y) = self.source_pixel(size, ox, oy);
                let s = ((y - src_extent.y0) as usize * sw + (x - src_extent.x0) as usize) * bpp;
                if let Some(px) = src.get(s..s + bpp) {
                    dst[i..i + bpp].copy_from_slice(px);
                }
                i += bpp;
            }
        }
        dst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 image whose pixel values are their index, shown with every orientation, against
    /// the EXIF specification's pictures of where row 0 and column 0 go.
    #[test]
    fn the_eight_exif_orientations() {
        let size = (3, 2);
        let src: Vec<u8> = (0..6).collect();
        let all = Extent::new(0, 0, 3, 2);
        let show = |v: u16| {
            let o = Orientation::from_exif(v);
            let (w, h) = o.display_size(3, 2);
            o.remap(size, &src, &all, &Extent::new(0, 0, w, h), 1)
        };
        // Stored:  0 1 2
        //          3 4 5
        assert_eq!(show(1), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(show(2), vec![2, 1, 0, 5, 4, 3]);
        assert_eq!(show(3), vec![5, 4, 3, 2, 1, 0]);
        assert_eq!(show(4), vec![3, 4, 5, 0, 1, 2]);
        // 5: transposed (row 0 is the left column).
        assert_eq!(show(5), vec![0, 3, 1, 4, 2, 5]);
        // 6: row 0 is the right column, column 0 the top row (a quarter turn clockwise).
        assert_eq!(show(6), vec![3, 0, 4, 1, 5, 2]);
        // 7: row 0 is the right column, read bottom-up.
        assert_eq!(show(7), vec![5, 2, 4, 1, 3, 0]);
        // 8: row 0 is the left column, read bottom-up (a quarter turn counter-clockwise).
        assert_eq!(show(8), vec![2, 5, 1, 4, 0, 3]);
    }

    #[test]
    fn composition_and_inverse() {
        let cw = Orientation::CW;
        assert_eq!(cw.then(cw).then(cw).then(cw), Orientation::IDENTITY);
        assert_eq!(cw.then(cw), Orientation::from_exif(3));
        assert_eq!(cw.then(cw).then(cw), Orientation::from_exif(8));
        for v in 1..=8 {
            let o = Orientation::from_exif(v);
            assert_eq!(o.exif(), v);
            assert_eq!(o.then(o.inverse()), Orientation::IDENTITY);
            assert_eq!(
                o.then(Orientation::FLIP_H).then(Orientation::FLIP_H),
                o,
                "flipping twice"
            );
        }
        assert_eq!(Orientation::from_exif(0), Orientation::IDENTITY);
        assert_eq!(Orientation::from_exif(9), Orientation::IDENTITY);
    }

    #[test]
    fn a_display_band_reads_only_its_source_columns() {
        let o = Orientation::CW;
        // A 10x4 image shown 4 wide, 10 tall: display rows 2..5 are image columns 2..5.
        let e = o.source_extent((10, 4), &Extent::new(0, 2, 4, 5));
        assert_eq!(e, Extent::new(2, 0, 5, 4));
        let e = Orientation::from_exif(8).source_extent((10, 4), &Extent::new(0, 2, 4, 5));
        assert_eq!(e, Extent::new(5, 0, 8, 4));
    }
}
