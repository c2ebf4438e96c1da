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
    let aspect = image_w as f32 / image_h.max(1) as f32;
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
    let scale = rect.width() / image_w.max(1) as f32;
    // The whole image, from the coarsest level, where it is loaded.
    let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
    for (id, e) in thumbnail {
        let r = Rect::from_min_max(
            rect.min + Vec2::new(e.x0 as f32, e.y0 as f32) * scale,
            rect.min + Vec2::new(e.x1 as f32, e.y1 as f32) * scale,
        );
        painter.image(*id, r, uv, Color32::WHITE);
    }
    let (x0, y0) = view.image_from_screen(0.0, 0.0);
    let (x1, y1) = view.image_from_screen(view.screen_w, view.screen_h);
    let vr = Rect::from_min_max(
        rect.min + Vec2::new(x0 as f32, y0 as f32) * scale,
        rect.min + Vec2::new(x1 as f32, y1 as f32) * scale,
    )
    .intersect(rect);
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
            let ix = f64::from((p.x - rect.min.x) / scale);
            let iy = f64::from((p.y - rect.min.y) / scale);
            Some(Command::CenterOn(ix, iy))
        }
        _ => None,
    }
}
