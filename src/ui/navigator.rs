//! The navigator: a small map of the whole image (a thumbnail from the coarsest level) with
//! the viewport drawn on it; click or drag to move there.

use egui::{Color32, Pos2, Rect, Sense, Stroke, StrokeKind, Vec2};

use super::Command;
use crate::view::viewport::Viewport;

const SIZE: f32 = 180.0;

/// Draw the navigator in the bottom-right corner of `canvas`.
pub fn navigator_ui(
    ui: &mut egui::Ui,
    canvas: Rect,
    view: &Viewport,
    image_w: u32,
    image_h: u32,
    thumbnail: &[(egui::TextureId, crate::format::Extent)],
) -> Option<Command> {
    // The map shows the image turned and flipped as the view is.
    let orient = view.orient;
    let (dw, dh) = orient.display_size(image_w, image_h);
    let aspect = dw as f32 / dh.max(1) as f32;
    let size = if aspect >= 1.0 {
        Vec2::new(SIZE, SIZE / aspect)
    } else {
        Vec2::new(SIZE * aspect, SIZE)
    };
    let rect = Rect::from_min_size(canvas.max - size - Vec2::splat(12.0), size);
    let response = ui.interact(
        rect,
        ui.scope_id().with("navigator"),
        Sense::click_and_drag(),
    );
    let painter = ui.painter_at(canvas);
    painter.rect_filled(rect.expand(2.0), 3.0, Color32::from_black_alpha(180));
    painter.rect_filled(rect, 0.0, Color32::from_gray(70));
    let scale = f64::from(rect.width()) / f64::from(dw.max(1));
    let (half_w, half_h) = (f64::from(image_w) / 2.0, f64::from(image_h) / 2.0);
    let nav_from_image = |x: f64, y: f64| {
        let (dx, dy) = orient.apply(x - half_w, y - half_h);
        rect.center() + Vec2::new((dx * scale) as f32, (dy * scale) as f32)
    };
    // The whole image, from the coarsest level, where it is loaded.
    for (id, e) in thumbnail {
        let (x0, y0, x1, y1) = (
            f64::from(e.x0),
            f64::from(e.y0),
            f64::from(e.x1),
            f64::from(e.y1),
        );
        painter.add(super::canvas::quad(
            *id,
            [
                nav_from_image(x0, y0),
                nav_from_image(x1, y0),
                nav_from_image(x1, y1),
                nav_from_image(x0, y1),
            ],
        ));
    }
    let (x0, y0) = view.image_from_screen(0.0, 0.0);
    let (x1, y1) = view.image_from_screen(view.screen_w, view.screen_h);
    let vr = Rect::from_two_pos(nav_from_image(x0, y0), nav_from_image(x1, y1)).intersect(rect);
    painter.rect_stroke(
        vr,
        0.0,
        Stroke::new(1.5, Color32::from_rgb(0, 220, 255)),
        StrokeKind::Inside,
    );
    response.on_hover_text("Navigator: click or drag to move the view");
    let pointer = ui.input(|i| i.pointer.interact_pos());
    let active =
        ui.input(|i| i.pointer.primary_down()) && pointer.is_some_and(|p| rect.contains(p));
    match pointer {
        Some(p) if active => {
            let p: Pos2 = p;
            let d = p - rect.center();
            let (vx, vy) = orient
                .inverse()
                .apply(f64::from(d.x) / scale, f64::from(d.y) / scale);
            Some(Command::CenterOn(vx + half_w, vy + half_h))
        }
        _ => None,
    }
}
