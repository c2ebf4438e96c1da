//! The display panel of a data page: a histogram per channel (log counts) with draggable black
//! and white points, numeric fields, transfer and colormap pickers, channel rows (names from
//! the file), and auto / fit-to-view / reset. It edits a copy of the mapping and returns it as
//! a [`Command`]; the session re-maps cached pieces, never the file.

use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};

use super::Command;
use crate::data::format_value;
use crate::data::stats::ChannelStats;
use crate::display::{Colormap, Mapping, Transfer};
use crate::session::DisplayState;

/// Bins of the drawn histogram.
const BINS: usize = 200;

/// Which channel's histogram the panel shows (kept in egui's memory).
fn selected_id() -> egui::Id {
    egui::Id::unique("display-panel-channel")
}

pub fn display_panel_ui(ui: &mut egui::Ui, d: &DisplayState) -> Vec<Command> {
    let mut cmds = Vec::new();
    let mut m = d.mapping().clone();
    let info = &d.info;
    ui.heading("Display");
    ui.label(format!(
        "{}{}",
        info.describe(),
        info.unit
            .as_deref()
            .map(|u| format!(", in {u}"))
            .unwrap_or_default()
    ));
    ui.horizontal(|ui| {
        if ui
            .button("Auto")
            .on_hover_text("Percentiles of the whole image (C)")
            .clicked()
        {
            cmds.push(Command::AutoContrast);
        }
        if ui
            .button("Fit to view")
            .on_hover_text("Percentiles of what is on screen (Shift+C)")
            .clicked()
        {
            cmds.push(Command::FitContrast);
        }
        if ui
            .button("Reset")
            .on_hover_text("Full range of the values, linear")
            .clicked()
        {
            cmds.push(Command::ResetContrast);
        }
    });
    ui.horizontal(|ui| {
        let mut p = d.percentiles;
        ui.label("auto between");
        let lo = ui.add(
            egui::DragValue::new(&mut p.lo)
                .range(0.0..=49.0)
                .speed(0.05)
                .suffix(" %"),
        );
        ui.label("and");
        let hi = ui.add(
            egui::DragValue::new(&mut p.hi)
                .range(51.0..=100.0)
                .speed(0.05)
                .suffix(" %"),
        );
        if (lo.changed() || hi.changed()) && p != d.percentiles {
            cmds.push(Command::SetPercentiles(p));
        }
        if d.auto {
            ui.weak("(following the data)");
        }
    });
    ui.separator();

    let n = m.channels.len();
    if n > 1 {
        ui.horizontal(|ui| {
            let single = m.single.is_some();
            if ui.selectable_label(single, "One channel").clicked() && !single {
                let c = ui
                    .ctx()
                    .data(|mem| mem.get_temp::<usize>(selected_id()))
                    .unwrap_or(0);
                m.single = Some(c.min(n - 1));
            }
            if ui.selectable_label(!single, "Composite").clicked() && single {
                m.single = None;
            }
            if n >= 3
                && ui
                    .button("RGB")
                    .on_hover_text("Channels 0, 1, 2 as red, green, blue")
                    .clicked()
            {
                m.set_rgb([0, 1, 2]);
            }
        });
    }
    if let Some(c) = m.single {
        ui.horizontal(|ui| {
            if n > 1 {
                egui::ComboBox::from_label("channel")
                    .selected_text(info.names[c].clone())
                    .show_ui(ui, |ui| {
                        for (i, name) in info.names.iter().enumerate() {
                            ui.selectable_value(&mut m.single, Some(i), name);
                        }
                    });
            }
            egui::ComboBox::from_label("colormap")
                .selected_text(m.colormap.name())
                .show_ui(ui, |ui| {
                    for cm in Colormap::ALL {
                        ui.selectable_value(&mut m.colormap, cm, cm.name());
                    }
                });
        });
        ui.ctx().data_mut(|mem| mem.insert_temp(selected_id(), c));
    }

    let selected = match m.single {
        Some(c) => c,
        None => ui
            .ctx()
            .data(|mem| mem.get_temp::<usize>(selected_id()))
            .unwrap_or(0)
            .min(n.saturating_sub(1)),
    };
    egui::ScrollArea::vertical()
        .auto_shrink([false, true])
        .show(ui, |ui| {
            let rows: Vec<usize> = match m.single {
                Some(c) => vec![c],
                None => (0..n).collect(),
            };
            let composite = m.single.is_none();
            for c in rows {
                channel_row(
                    ui,
                    &mut m,
                    (c, &info.names[c]),
                    d.stats.channels.get(c),
                    selected,
                    composite,
                );
                ui.separator();
            }
        });
    if m != *d.mapping() {
        cmds.push(Command::SetMapping(m));
    }
    cmds
}

/// One channel: visibility and colour (composite), name, window, transfer, invert, and its
/// histogram with the black and white points as handles.
fn channel_row(
    ui: &mut egui::Ui,
    m: &mut Mapping,
    (c, name): (usize, &str),
    stats: Option<&ChannelStats>,
    selected: usize,
    composite: bool,
) {
    let single = m.single.is_some();
    let Some(ch) = m.channels.get_mut(c) else {
        return;
    };
    ui.horizontal(|ui| {
        if composite {
            ui.add(egui::Checkbox::without_text(&mut ch.visible))
                .on_hover_text(format!("show {name}"))
                .widget_info(|| {
                    egui::WidgetInfo::selected(
                        egui::Role::CheckBox,
                        true,
                        ch.visible,
                        format!("show {name}"),
                    )
                });
            ui.color_edit_button_srgb(&mut ch.color);
            if ui.selectable_label(c == selected, name).clicked() {
                ui.ctx().data_mut(|mem| mem.insert_temp(selected_id(), c));
            }
        } else {
            ui.label(name);
        }
    });
    ui.horizontal(|ui| {
        let speed = ((ch.hi - ch.lo).abs() / 300.0).max(1e-9);
        ui.label("black");
        ui.add(
            egui::DragValue::new(&mut ch.lo)
                .speed(speed)
                .custom_formatter(|v, _| format_value(v)),
        )
        .on_hover_text(format!("black point of {name}"));
        ui.label("white");
        ui.add(
            egui::DragValue::new(&mut ch.hi)
                .speed(speed)
                .custom_formatter(|v, _| format_value(v)),
        )
        .on_hover_text(format!("white point of {name}"));
        // Named, for screen readers (and kittest's accessibility check).
        egui::ComboBox::new(("transfer", c), "curve")
            .selected_text(ch.transfer.name())
            .show_ui(ui, |ui| {
                for t in Transfer::ALL {
                    let now = std::mem::discriminant(&ch.transfer) == std::mem::discriminant(&t);
                    if ui.selectable_label(now, t.name()).clicked() && !now {
                        ch.transfer = t;
                    }
                }
            });
        if let Transfer::Gamma(g) = &mut ch.transfer {
            ui.add(
                egui::DragValue::new(g)
                    .range(0.05..=5.0)
                    .speed(0.01)
                    .prefix("γ "),
            );
        }
        ui.checkbox(&mut ch.invert, "invert");
    });
    if let Some(stats) = stats {
        ui.weak(format!(
            "{} values sampled{}",
            stats.count,
            if stats.nodata > 0 {
                format!(", {} no-data", stats.nodata)
            } else {
                String::new()
            }
        ));
        let color = if single {
            Color32::from_gray(200)
        } else {
            let [r, g, b] = ch.color;
            Color32::from_rgb(r.max(60), g.max(60), b.max(60))
        };
        let height = if single { 120.0 } else { 60.0 };
        let label = format!("histogram of {name}");
        histogram(ui, stats, (&mut ch.lo, &mut ch.hi), color, (&label, height));
    }
}

/// A histogram of the sampled values (log counts) over a range that holds the data and the
/// window, with the black and white points as handles: drag near one to move it.
fn histogram(
    ui: &mut egui::Ui,
    stats: &ChannelStats,
    (lo, hi): (&mut f64, &mut f64),
    color: Color32,
    (label, height): (&str, f32),
) {
    let width = ui.available_width().max(120.0);
    let (rect, response) =
        ui.allocate_exact_size(Vec2::new(width, height), Sense::click_and_drag());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Slider, true, label));
    let drag_id = response.id.with("drag");
    // The range stays fixed while a handle is dragged, so the handle follows the pointer.
    let dragging: Option<(bool, f64, f64)> = ui.ctx().data(|mem| mem.get_temp(drag_id));
    let (a, b) = match dragging {
        Some((_, a, b)) => (a, b),
        None => {
            let (mut a, mut b) = if stats.count > 0 {
                (stats.min.min(*lo), stats.max.max(*hi))
            } else {
                (*lo, *hi)
            };
            if b <= a {
                b = a + 1.0;
            }
            let pad = (b - a) * 0.02;
            a -= pad;
            b += pad;
            (a, b)
        }
    };
    let x_of = |v: f64| rect.left() + ((v - a) / (b - a)) as f32 * rect.width();
    let v_of = |x: f32| a + f64::from((x - rect.left()) / rect.width()) * (b - a);
    if response.drag_started()
        && let Some(p) = response.interact_pointer_pos()
    {
        let hi_handle = (p.x - x_of(*hi)).abs() <= (p.x - x_of(*lo)).abs();
        ui.ctx()
            .data_mut(|mem| mem.insert_temp(drag_id, (hi_handle, a, b)));
    }
    if response.dragged()
        && let Some(p) = response.interact_pointer_pos()
        && let Some((hi_handle, _, _)) = ui
            .ctx()
            .data(|mem| mem.get_temp::<(bool, f64, f64)>(drag_id))
    {
        let v = v_of(p.x.clamp(rect.left(), rect.right()));
        let gap = (b - a) * 1e-4;
        if hi_handle {
            *hi = v.max(*lo + gap);
        } else {
            *lo = v.min(*hi - gap);
        }
    }
    if response.drag_stopped() {
        ui.ctx()
            .data_mut(|mem| mem.remove::<(bool, f64, f64)>(drag_id));
    }

    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_gray(30));
    let counts = stats.histogram(a, b, BINS);
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    let log_top = f64::from(top).ln_1p();
    let bw = rect.width() / BINS as f32;
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let h = (f64::from(c).ln_1p() / log_top) as f32 * (rect.height() - 14.0);
        let x = rect.left() + i as f32 * bw;
        painter.rect_filled(
            Rect::from_min_max(
                Pos2::new(x, rect.bottom() - h),
                Pos2::new(x + bw.max(1.0), rect.bottom()),
            ),
            0.0,
            color,
        );
    }
    for (v, c) in [
        (*lo, Color32::from_rgb(80, 160, 255)),
        (*hi, Color32::WHITE),
    ] {
        let x = x_of(v);
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            Stroke::new(2.0, c),
        );
        painter.add(egui::Shape::convex_polygon(
            vec![
                Pos2::new(x - 6.0, rect.top()),
                Pos2::new(x + 6.0, rect.top()),
                Pos2::new(x, rect.top() + 9.0),
            ],
            c,
            Stroke::NONE,
        ));
    }
    painter.text(
        rect.left_bottom() + Vec2::new(3.0, -2.0),
        egui::Align2::LEFT_BOTTOM,
        format_value(a),
        egui::FontId::monospace(10.0),
        Color32::from_gray(170),
    );
    painter.text(
        rect.right_bottom() + Vec2::new(-3.0, -2.0),
        egui::Align2::RIGHT_BOTTOM,
        format_value(b),
        egui::FontId::monospace(10.0),
        Color32::from_gray(170),
    );
}
