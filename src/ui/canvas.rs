//! The image canvas: paints pieces (or placeholders), the descriptor overlay, selection and
//! hover, and turns pointer input into view changes.

use egui::{Color32, Pos2, Rect, Sense, Stroke, StrokeKind, Vec2};

use super::{Command, state_color};
use crate::format::Extent;
use crate::session::Session;
use crate::view::plan::ViewMode;
use crate::view::viewport::Viewport;

/// The measure tool: while `active`, a left drag draws a line (image coordinates) instead of
/// panning; the line stays until the next one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Measure {
    pub active: bool,
    pub line: Option<((f64, f64), (f64, f64))>,
}

impl Measure {
    /// The line's length in pixels, and in the page's units when it has a pixel size.
    pub fn describe(&self, size: Option<&crate::physical::PixelSize>) -> Option<String> {
        let ((x0, y0), (x1, y1)) = self.line?;
        let (dx, dy) = (x1 - x0, y1 - y0);
        let px = dx.hypot(dy);
        Some(match size {
            Some(s) => format!(
                "{px:.1} px ({})",
                crate::physical::format_length(s.length(dx, dy), s.unit)
            ),
            None => format!("{px:.1} px"),
        })
    }
}

/// A rectangle of the image selected with Shift+drag (for export); it stays until the next
/// one or `Esc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Selection {
    pub rect: Option<Extent>,
}

impl Selection {
    /// The whole pixels between two image points, clipped to a `w` x `h` image.
    pub fn between(a: (f64, f64), b: (f64, f64), (w, h): (u32, u32)) -> Option<Extent> {
        let clip = |v: f64, max: u32| v.clamp(0.0, f64::from(max)) as u32;
        let e = Extent::new(
            clip(a.0.min(b.0).floor(), w),
            clip(a.1.min(b.1).floor(), h),
            clip(a.0.max(b.0).ceil(), w),
            clip(a.1.max(b.1).ceil(), h),
        );
        (!e.is_empty()).then_some(e)
    }
}

/// What the canvas reports back.
#[derive(Default)]
pub struct CanvasOutput {
    pub commands: Vec<Command>,
    /// Image pixel under the pointer.
    pub hover_pixel: Option<(u32, u32)>,
}

fn to_rect(view: &Viewport, origin: Pos2, e: &Extent) -> Rect {
    let (x0, y0) = view.screen_from_image(f64::from(e.x0), f64::from(e.y0));
    let (x1, y1) = view.screen_from_image(f64::from(e.x1), f64::from(e.y1));
    // Turned or flipped, the corners swap places: take them in either order.
    Rect::from_two_pos(
        origin + Vec2::new(x0 as f32, y0 as f32),
        origin + Vec2::new(x1 as f32, y1 as f32),
    )
}

/// Paint texture `id` over image extent `e`, turned and flipped with the view: a quad whose
/// corners carry the texture's corners wherever the orientation puts them.
fn paint_texture(
    painter: &egui::Painter,
    id: egui::TextureId,
    view: &Viewport,
    origin: Pos2,
    e: &Extent,
) {
    if view.orient.is_identity() {
        painter.image(
            id,
            to_rect(view, origin, e),
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
        return;
    }
    let corner = |x: u32, y: u32| {
        let (sx, sy) = view.screen_from_image(f64::from(x), f64::from(y));
        origin + Vec2::new(sx as f32, sy as f32)
    };
    painter.add(quad(
        id,
        [
            corner(e.x0, e.y0),
            corner(e.x1, e.y0),
            corner(e.x1, e.y1),
            corner(e.x0, e.y1),
        ],
    ));
}

/// A textured quad: `corners` are where the texture's top-left, top-right, bottom-right and
/// bottom-left corners go.
pub fn quad(id: egui::TextureId, corners: [Pos2; 4]) -> egui::Mesh {
    let mut mesh = egui::Mesh::with_texture(id);
    let uvs = [
        Pos2::new(0.0, 0.0),
        Pos2::new(1.0, 0.0),
        Pos2::new(1.0, 1.0),
        Pos2::new(0.0, 1.0),
    ];
    for (pos, uv) in corners.into_iter().zip(uvs) {
        mesh.vertices.push(egui::epaint::Vertex {
            pos,
            uv,
            color: Color32::WHITE,
        });
    }
    mesh.add_triangle(0, 1, 2);
    mesh.add_triangle(0, 2, 3);
    mesh
}

/// Zoom factor for one wheel event: 1.25 per line (or per 50 points of smooth scrolling).
pub fn wheel_factor(unit: egui::MouseWheelUnit, delta_y: f32) -> f64 {
    let lines = match unit {
        egui::MouseWheelUnit::Line => f64::from(delta_y),
        egui::MouseWheelUnit::Page => f64::from(delta_y) * 10.0,
        egui::MouseWheelUnit::Point => f64::from(delta_y) / 50.0,
    };
    1.25f64.powf(lines)
}

pub fn canvas_ui(
    ui: &mut egui::Ui,
    session: Option<&mut Session>,
    view: &mut Viewport,
    overlay: bool,
    selected: Option<u64>,
    measure: &mut Measure,
    selection: &mut Selection,
) -> CanvasOutput {
    let mut out = CanvasOutput::default();
    let rect = ui.available_rect_before_wrap();
    let response = ui.allocate_rect(rect, Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    // No full-canvas fill: the clear colour is the background, and on a software renderer
    // every layer drawn over the whole window costs a full-screen fill.
    view.resize(f64::from(rect.width()), f64::from(rect.height()));
    let Some(session) = session else {
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "Open an image: File > Open (Ctrl+O), or drop a file here",
            egui::FontId::proportional(18.0),
            Color32::from_gray(180),
        );
        return out;
    };
    let page = session.page().clone();
    let (iw, ih) = (page.width, page.height);
    let origin = rect.min;

    let selecting = ui.input(|i| i.modifiers.shift);
    if selecting && response.dragged_by(egui::PointerButton::Primary) {
        // Shift+drag selects a rectangle (from where the button went down).
        if let (Some(pos), Some(press)) = (
            response.interact_pointer_pos(),
            ui.input(|i| i.pointer.press_origin()),
        ) {
            let at = |p: Pos2| {
                view.image_from_screen(f64::from(p.x - origin.x), f64::from(p.y - origin.y))
            };
            selection.rect = Selection::between(at(press), at(pos), (iw, ih));
        }
    } else if measure.active && response.dragged_by(egui::PointerButton::Primary) {
        // The measure tool takes left drags; the middle button still pans.
        if let Some(pos) = response.interact_pointer_pos() {
            let p =
                view.image_from_screen(f64::from(pos.x - origin.x), f64::from(pos.y - origin.y));
            // The line starts where the button went down (a drag begins a few pixels later).
            let press = ui.input(|i| i.pointer.press_origin()).unwrap_or(pos);
            let start = if response.drag_started() {
                view.image_from_screen(f64::from(press.x - origin.x), f64::from(press.y - origin.y))
            } else {
                measure.line.map_or(p, |l| l.0)
            };
            measure.line = Some((start, p));
        }
    }
    out.hover_pixel = handle_input(
        ui,
        &response,
        view,
        origin,
        (iw, ih),
        !measure.active && !selecting,
    );
    view.clamp_center(iw, ih);

    let visible = view.visible_extent(iw, ih, 0.0);

    if visible.is_some()
        && session
            .display
            .as_ref()
            .is_some_and(|d| d.info.may_have_holes())
    {
        // No-data pixels are transparent: a checkerboard shows through them (under the
        // placeholders too).
        let area = to_rect(view, origin, &page.extent()).intersect(rect);
        checkerboard(ui.ctx(), &painter, area);
    }
    if session.mode() == ViewMode::TooFarOut {
        // Nothing is loaded at this scale: the image area is a neutral placeholder.
        let text = if session.image.source.is_remote() {
            format!(
                "Zoomed too far out to load full-resolution pieces.\nThis remote file has no resolution levels: zoom in to see pixels,\nor build them (Settings > Build levels now downloads {:.0} MB).",
                session.image.source.len() as f64 / 1e6
            )
        } else {
            "Zoomed too far out to load full-resolution pieces.\nThis file has no resolution levels yet: zoom in to see pixels,\nor build them (Settings > Build levels now).".to_string()
        };
        placeholder(&painter, to_rect(view, origin, &page.extent()), rect, &text);
    }
    if let Some(e) = session.unbuilt() {
        // Levels are being built and have not reached this part yet.
        let text = format!(
            "building zoomed-out levels: {:.0}%",
            session.build_progress().unwrap_or(1.0) * 100.0
        );
        let area = to_rect(view, origin, &e);
        placeholder(&painter, area, area.intersect(rect), &text);
    }
    if let Some(visible) = visible {
        paint_pieces(&painter, session, view, origin, &visible);
        // Descriptor boundaries, coloured by state.
        if overlay {
            let units: Vec<u64> = page.grid.units_in(&visible).take(20_000).collect();
            for unit in units {
                let r = to_rect(view, origin, &page.grid.unit_extent(unit));
                let state = session.unit_state(unit);
                painter.rect_stroke(
                    r,
                    0.0,
                    Stroke::new(1.0, state_color(state)),
                    StrokeKind::Inside,
                );
            }
        }
    }
    // Selected descriptor and the one under the pointer.
    if let Some(e) = selected.and_then(|index| session.panel_extent(index)) {
        painter.rect_stroke(
            to_rect(view, origin, &e),
            0.0,
            Stroke::new(3.0, Color32::from_rgb(0, 220, 255)),
            StrokeKind::Outside,
        );
    }
    if let Some((x, y)) = out.hover_pixel {
        let unit = page.grid.unit_row_of(y) * u64::from(page.grid.across())
            + u64::from(x / page.grid.chunk_w);
        let e = page.grid.unit_extent(unit);
        painter.rect_stroke(
            to_rect(view, origin, &e),
            0.0,
            Stroke::new(1.5, Color32::from_white_alpha(160)),
            StrokeKind::Inside,
        );
    }
    if let Some(e) = selection.rect {
        let r = to_rect(view, origin, &e);
        painter.rect_filled(r, 0.0, Color32::from_rgba_unmultiplied(0, 160, 255, 40));
        painter.rect_stroke(
            r,
            0.0,
            Stroke::new(2.0, Color32::from_rgb(0, 180, 255)),
            StrokeKind::Outside,
        );
        let text = format!("{} x {}  (Ctrl+E exports)", e.width(), e.height());
        label(&painter, r.left_top() + egui::vec2(4.0, -6.0), text);
    }
    if let Some(size) = &page.physical {
        scale_bar(&painter, rect, size, view.zoom);
    }
    if let Some(((x0, y0), (x1, y1))) = measure.line {
        let at = |x: f64, y: f64| {
            let (sx, sy) = view.screen_from_image(x, y);
            origin + egui::vec2(sx as f32, sy as f32)
        };
        let (a, b) = (at(x0, y0), at(x1, y1));
        painter.line_segment([a, b], Stroke::new(4.0, Color32::from_black_alpha(160)));
        painter.line_segment([a, b], Stroke::new(2.0, Color32::from_rgb(255, 210, 0)));
        for p in [a, b] {
            painter.circle_filled(p, 3.5, Color32::from_rgb(255, 210, 0));
        }
        if let Some(text) = measure.describe(page.physical.as_ref()) {
            label(&painter, a + (b - a) * 0.5 + egui::vec2(8.0, -6.0), text);
        }
    }
    if response.double_clicked() {
        out.commands.push(Command::Fit);
    }
    out
}

/// White text on a dark box whose bottom left is at `at`.
fn label(painter: &egui::Painter, at: Pos2, text: String) {
    let galley = painter.layout_no_wrap(text, egui::FontId::proportional(14.0), Color32::WHITE);
    let pos = at - egui::vec2(0.0, galley.size().y);
    painter.rect_filled(
        Rect::from_min_size(
            pos - egui::vec2(4.0, 2.0),
            galley.size() + egui::vec2(8.0, 4.0),
        ),
        3.0,
        Color32::from_black_alpha(170),
    );
    painter.galley(pos, galley, Color32::WHITE);
}

/// A scale bar at the canvas's bottom left: a round length (see `physical::scale_bar`) of at
/// most 160 screen pixels, labelled.
fn scale_bar(painter: &egui::Painter, rect: Rect, size: &crate::physical::PixelSize, zoom: f64) {
    let Some((len, px)) = crate::physical::scale_bar(size, zoom, 160.0) else {
        return;
    };
    let label = crate::physical::format_length(len, size.unit);
    let left = rect.left_bottom() + egui::vec2(16.0, -18.0);
    let right = left + egui::vec2(px as f32, 0.0);
    let font = egui::FontId::proportional(13.0);
    let text = painter.layout_no_wrap(label, font, Color32::WHITE);
    let back = Rect::from_min_max(
        left + egui::vec2(-8.0, -text.size().y - 10.0),
        egui::pos2(right.x.max(left.x + text.size().x) + 8.0, left.y + 8.0),
    );
    painter.rect_filled(back, 4.0, Color32::from_black_alpha(150));
    let stroke = Stroke::new(2.0, Color32::WHITE);
    painter.line_segment([left, right], stroke);
    for x in [left, right] {
        painter.line_segment(
            [x + egui::vec2(0.0, -5.0), x + egui::vec2(0.0, 3.0)],
            stroke,
        );
    }
    painter.galley(
        left + egui::vec2(0.0, -text.size().y - 6.0),
        text,
        Color32::WHITE,
    );
}

/// Drag pans, wheel and pinch zoom about the pointer; returns the image pixel under it.
fn handle_input(
    ui: &egui::Ui,
    response: &egui::Response,
    view: &mut Viewport,
    origin: Pos2,
    (iw, ih): (u32, u32),
    left_pans: bool,
) -> Option<(u32, u32)> {
    let mut hover = None;
    // Input: drag pans, wheel / pinch zoom about the pointer.
    if (left_pans && response.dragged_by(egui::PointerButton::Primary))
        || response.dragged_by(egui::PointerButton::Middle)
    {
        let d = response.drag_delta();
        view.pan_by_screen(f64::from(d.x), f64::from(d.y));
    }
    let min_zoom = view.min_zoom(iw, ih);
    if let Some(pos) = response.hover_pos() {
        let (sx, sy) = (f64::from(pos.x - origin.x), f64::from(pos.y - origin.y));
        let mut factor = ui.input(|i| {
            i.events
                .iter()
                .filter_map(|e| match e {
                    egui::Event::MouseWheel { unit, delta, .. } => {
                        Some(wheel_factor(*unit, delta.y))
                    }
                    _ => None,
                })
                .product::<f64>()
        });
        if let Some(touch) = ui.input(|i| i.multi_touch()) {
            factor *= f64::from(touch.zoom_delta);
        }
        if (factor - 1.0).abs() > 1e-9 {
            view.zoom_about(sx, sy, factor, min_zoom);
        }
        let (ix, iy) = view.image_from_screen(sx, sy);
        if ix >= 0.0 && iy >= 0.0 && ix < f64::from(iw) && iy < f64::from(ih) {
            hover = Some((ix as u32, iy as u32));
        }
    }
    hover
}

/// The view's pieces (the coarse fill-in only under sharp pieces still missing), placeholders
/// for those not loaded yet, and a red cross over failed ones.
fn paint_pieces(
    painter: &egui::Painter,
    session: &mut Session,
    view: &Viewport,
    origin: Pos2,
    visible: &Extent,
) {
    let (iw, ih) = (session.page().width, session.page().height);
    let fill_level = session.pyramid().coarsest();
    let level = session.level();
    let wanted = session.wanted().to_vec();
    // Sharp pieces still missing: the coarse fill-in is only painted under those (on a
    // software renderer every extra layer costs a full fill).
    let holes: Vec<Extent> = wanted
        .iter()
        .filter(|k| session.level_of(k) == Some(level) && !session.textures.contains(k))
        .map(|k| session.image_extent(k))
        .collect();
    for key in wanted {
        let e = session.image_extent(&key);
        if e.intersect(visible).is_none() {
            continue;
        }
        let is_fill = session.level_of(&key) == Some(fill_level) && level != fill_level;
        if is_fill && !holes.iter().any(|h| h.intersect(&e).is_some()) {
            continue;
        }
        let f = session.pyramid().factor_of(key.source);
        let parts: Option<Vec<(egui::TextureId, Extent)>> = session
            .textures
            .get(&key)
            .map(|t| t.parts.iter().map(|(h, e)| (h.id(), *e)).collect());
        match parts {
            Some(parts) => {
                for (id, part) in parts {
                    let part = crate::pieces::scale_up(&part, f, iw, ih);
                    paint_texture(painter, id, view, origin, &part);
                }
            }
            // The coarse fill-in paints nothing until it arrives; the sharp level shows a
            // placeholder (or the fill-in under it).
            None if is_fill => {}
            None => {
                let r = to_rect(view, origin, &e);
                let failed = session.states.is_failed(&key);
                if failed {
                    painter.rect_filled(r, 0.0, Color32::from_rgba_unmultiplied(150, 30, 30, 160));
                    painter.line_segment(
                        [r.left_top(), r.right_bottom()],
                        Stroke::new(2.0, Color32::RED),
                    );
                    painter.line_segment(
                        [r.right_top(), r.left_bottom()],
                        Stroke::new(2.0, Color32::RED),
                    );
                } else if fill_level == level {
                    painter.rect_filled(r, 0.0, Color32::from_gray(60));
                }
            }
        }
    }
}

/// A neutral placeholder over `area` with `text` centred in `text_in` (when there is room).
fn placeholder(painter: &egui::Painter, area: Rect, text_in: Rect, text: &str) {
    painter.rect_filled(area, 0.0, Color32::from_gray(44));
    if text_in.height() > 40.0 {
        painter.text(
            text_in.center(),
            egui::Align2::CENTER_CENTER,
            text,
            egui::FontId::proportional(16.0),
            Color32::from_gray(200),
        );
    }
}

/// A 16-pixel grey checkerboard over `area` (one 2x2 texture, repeated).
fn checkerboard(ctx: &egui::Context, painter: &egui::Painter, area: Rect) {
    let id = egui::Id::unique("no-data-checkerboard");
    let handle = match ctx.data(|d| d.get_temp::<egui::TextureHandle>(id)) {
        Some(h) => h,
        None => {
            let (a, b) = (Color32::from_gray(70), Color32::from_gray(100));
            let image = egui::ColorImage::new([2, 2], vec![a, b, b, a]);
            let options = egui::TextureOptions {
                magnification: egui::TextureFilter::Nearest,
                minification: egui::TextureFilter::Nearest,
                wrap_mode: egui::TextureWrapMode::Repeat,
                mipmap_mode: None,
            };
            let h = ctx.load_texture("checkerboard", image, options);
            ctx.data_mut(|d| d.insert_temp(id, h.clone()));
            h
        }
    };
    let uv = Rect::from_min_max(
        Pos2::ZERO,
        Pos2::new(area.width() / 32.0, area.height() / 32.0),
    );
    painter.image(handle.id(), area, uv, Color32::WHITE);
}
