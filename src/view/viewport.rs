//! Viewport maths: where the image sits on screen. Pure (no egui, no I/O) and unit-tested.
//!
//! The view is a centre point in image pixels and a zoom (screen points per image pixel).
//! Transforms are named `screen_from_image` / `image_from_screen`; screen coordinates are
//! relative to the canvas's top-left corner. An [`Orientation`] turns and flips the image
//! about the centre; the centre and every location stay in image pixels.

use crate::format::Extent;
use crate::orientation::Orientation;

/// Deepest zoom: 64 screen points per image pixel.
pub const MAX_ZOOM: f64 = 64.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    /// Image point at the centre of the canvas.
    pub center_x: f64,
    pub center_y: f64,
    /// Screen points per image pixel.
    pub zoom: f64,
    /// Canvas size in screen points.
    pub screen_w: f64,
    pub screen_h: f64,
    /// How the image is turned and flipped on screen.
    pub orient: Orientation,
}

impl Viewport {
    pub fn new(screen_w: f64, screen_h: f64) -> Self {
        Self {
            center_x: 0.0,
            center_y: 0.0,
            zoom: 1.0,
            screen_w,
            screen_h,
            orient: Orientation::IDENTITY,
        }
    }

    pub fn screen_from_image(&self, x: f64, y: f64) -> (f64, f64) {
        let (dx, dy) = self.orient.apply(x - self.center_x, y - self.center_y);
        (
            dx * self.zoom + self.screen_w / 2.0,
            dy * self.zoom + self.screen_h / 2.0,
        )
    }

    pub fn image_from_screen(&self, sx: f64, sy: f64) -> (f64, f64) {
        let (dx, dy) = self.image_vector(
            (sx - self.screen_w / 2.0) / self.zoom,
            (sy - self.screen_h / 2.0) / self.zoom,
        );
        (dx + self.center_x, dy + self.center_y)
    }

    /// The image vector shown as screen vector (dx, dy) (both in image pixels).
    fn image_vector(&self, dx: f64, dy: f64) -> (f64, f64) {
        self.orient.inverse().apply(dx, dy)
    }

    /// The zoom that shows the whole image (never above 1:1 for small images... unless tiny).
    pub fn fit_zoom(&self, image_w: u32, image_h: u32) -> f64 {
        let (image_w, image_h) = self.orient.display_size(image_w, image_h);
        let z = (self.screen_w / f64::from(image_w.max(1)))
            .min(self.screen_h / f64::from(image_h.max(1)));
        z.clamp(1e-6, MAX_ZOOM)
    }

    /// Smallest zoom allowed: fit to window, or 1:1 when that is smaller.
    pub fn min_zoom(&self, image_w: u32, image_h: u32) -> f64 {
        self.fit_zoom(image_w, image_h).min(1.0)
    }

    pub fn fit(&mut self, image_w: u32, image_h: u32) {
        self.zoom = self.fit_zoom(image_w, image_h);
        self.center_x = f64::from(image_w) / 2.0;
        self.center_y = f64::from(image_h) / 2.0;
    }

    /// Move by a screen-space drag: the image follows the pointer.
    pub fn pan_by_screen(&mut self, dx: f64, dy: f64) {
        let (vx, vy) = self.image_vector(dx / self.zoom, dy / self.zoom);
        self.center_x -= vx;
        self.center_y -= vy;
    }

    /// Multiply the zoom by `factor`, keeping the image point under screen point (sx, sy) put.
    pub fn zoom_about(&mut self, sx: f64, sy: f64, factor: f64, min_zoom: f64) {
        let (ix, iy) = self.image_from_screen(sx, sy);
        self.zoom = (self.zoom * factor).clamp(min_zoom, MAX_ZOOM);
        // Solve screen_from_image(ix, iy) == (sx, sy) for the centre.
        let (vx, vy) = self.image_vector(
            (sx - self.screen_w / 2.0) / self.zoom,
            (sy - self.screen_h / 2.0) / self.zoom,
        );
        self.center_x = ix - vx;
        self.center_y = iy - vy;
    }

    /// Keep the centre inside the image so the view can't be lost off the edge.
    pub fn clamp_center(&mut self, image_w: u32, image_h: u32) {
        self.center_x = self.center_x.clamp(0.0, f64::from(image_w));
        self.center_y = self.center_y.clamp(0.0, f64::from(image_h));
    }

    pub fn resize(&mut self, screen_w: f64, screen_h: f64) {
        self.screen_w = screen_w.max(1.0);
        self.screen_h = screen_h.max(1.0);
    }

    /// Image pixels visible, grown by `margin` screen points on each side, clipped to the
    /// image; `None` when the view shows none of it.
    pub fn visible_extent(&self, image_w: u32, image_h: u32, margin: f64) -> Option<Extent> {
        let (ax, ay) = self.image_from_screen(-margin, -margin);
        let (bx, by) = self.image_from_screen(self.screen_w + margin, self.screen_h + margin);
        // Opposite screen corners are opposite image corners under any orientation.
        let (x0, x1) = (ax.min(bx), ax.max(bx));
        let (y0, y1) = (ay.min(by), ay.max(by));
        let clip = |v: f64, max: u32| v.clamp(0.0, f64::from(max));
        let e = Extent::new(
            clip(x0.floor(), image_w) as u32,
            clip(y0.floor(), image_h) as u32,
            clip(x1.ceil(), image_w) as u32,
            clip(y1.ceil(), image_h) as u32,
        );
        (!e.is_empty()).then_some(e)
    }

    /// The visible extent stretched ahead in the direction of motion (prefetch).
    pub fn prefetch_extent(
        &self,
        image_w: u32,
        image_h: u32,
        motion: (f64, f64),
    ) -> Option<Extent> {
        let base = self.visible_extent(image_w, image_h, 0.0)?;
        let (ahead_x, ahead_y) = if self.orient.swaps_axes() {
            (
                self.screen_h * 0.25 / self.zoom,
                self.screen_w * 0.25 / self.zoom,
            )
        } else {
            (
                self.screen_w * 0.25 / self.zoom,
                self.screen_h * 0.25 / self.zoom,
            )
        };
        // Motion is the centre's movement in image pixels since the last frame.
        let grow = |lo: u32, hi: u32, m: f64, ahead: f64, max: u32| {
            let lo = if m < 0.0 {
                (f64::from(lo) - ahead).max(0.0) as u32
            } else {
                lo
            };
            let hi = if m > 0.0 {
                (f64::from(hi) + ahead).min(f64::from(max)) as u32
            } else {
                hi
            };
            (lo, hi)
        };
        let (x0, x1) = grow(base.x0, base.x1, motion.0, ahead_x, image_w);
        let (y0, y1) = grow(base.y0, base.y1, motion.1, ahead_y, image_h);
        Some(Extent::new(x0, y0, x1, y1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_round_trip() {
        let mut v = Viewport::new(800.0, 600.0);
        v.center_x = 1234.5;
        v.center_y = 77.0;
        v.zoom = 3.5;
        let (sx, sy) = v.screen_from_image(1000.0, 50.0);
        let (ix, iy) = v.image_from_screen(sx, sy);
        assert!((ix - 1000.0).abs() < 1e-9 && (iy - 50.0).abs() < 1e-9);
    }

    #[test]
    fn zoom_keeps_the_point_under_the_cursor() {
        let mut v = Viewport::new(800.0, 600.0);
        v.fit(5000, 3000);
        let before = v.image_from_screen(123.0, 456.0);
        v.zoom_about(123.0, 456.0, 1.7, 0.01);
        let after = v.image_from_screen(123.0, 456.0);
        assert!((before.0 - after.0).abs() < 1e-9 && (before.1 - after.1).abs() < 1e-9);
        v.zoom_about(0.0, 0.0, 1e9, 0.01);
        assert_eq!(v.zoom, MAX_ZOOM);
    }

    #[test]
    fn pan_follows_the_pointer() {
        let mut v = Viewport::new(800.0, 600.0);
        v.zoom = 2.0;
        let p = v.image_from_screen(100.0, 100.0);
        v.pan_by_screen(30.0, -10.0);
        let q = v.image_from_screen(130.0, 90.0);
        assert!((p.0 - q.0).abs() < 1e-9 && (p.1 - q.1).abs() < 1e-9);
    }

    #[test]
    fn fit_shows_the_whole_image_centred() {
        let mut v = Viewport::new(800.0, 600.0);
        v.fit(1600, 600);
        assert_eq!(v.zoom, 0.5);
        assert_eq!(
            v.visible_extent(1600, 600, 0.0),
            Some(Extent::new(0, 0, 1600, 600))
        );
        v.center_x = -1e6;
        assert_eq!(v.visible_extent(1600, 600, 0.0), None);
    }

    #[test]
    fn a_turned_view_maps_screen_and_image_both_ways() {
        let mut v = Viewport::new(800.0, 600.0);
        v.orient = Orientation::CW;
        v.fit(1000, 3000);
        // Turned, the 3000-pixel side lies across the 800-point-wide canvas.
        assert!((v.zoom - 800.0 / 3000.0).abs() < 1e-12);
        assert_eq!(
            v.visible_extent(1000, 3000, 0.0),
            Some(Extent::new(0, 0, 1000, 3000))
        );
        // The image's top-left corner is at the screen's top right after a clockwise turn.
        let (sx, sy) = v.screen_from_image(0.0, 0.0);
        assert!((sx - (400.0 + 1500.0 * v.zoom)).abs() < 1e-9, "{sx}");
        assert!((sy - (300.0 - 500.0 * v.zoom)).abs() < 1e-9, "{sy}");
        let (ix, iy) = v.image_from_screen(sx, sy);
        assert!(ix.abs() < 1e-9 && iy.abs() < 1e-9);
        // Dragging right moves the image right on screen.
        let p = v.image_from_screen(100.0, 100.0);
        v.pan_by_screen(30.0, 0.0);
        let q = v.image_from_screen(130.0, 100.0);
        assert!((p.0 - q.0).abs() < 1e-9 && (p.1 - q.1).abs() < 1e-9);
        let before = v.image_from_screen(10.0, 20.0);
        v.zoom_about(10.0, 20.0, 2.0, 0.01);
        let after = v.image_from_screen(10.0, 20.0);
        assert!((before.0 - after.0).abs() < 1e-9 && (before.1 - after.1).abs() < 1e-9);
    }

    #[test]
    fn prefetch_grows_only_ahead() {
        let mut v = Viewport::new(100.0, 100.0);
        v.center_x = 500.0;
        v.center_y = 500.0;
        let base = v.visible_extent(1000, 1000, 0.0).expect("visible");
        let ahead = v.prefetch_extent(1000, 1000, (1.0, 0.0)).expect("visible");
        assert_eq!((ahead.x0, ahead.y0, ahead.y1), (base.x0, base.y0, base.y1));
        assert!(ahead.x1 > base.x1);
    }
}
