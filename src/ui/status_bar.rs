//! The status bar: pixel under the cursor with its native value, zoom, memory and I/O.

use crate::session::Session;
use crate::view::viewport::Viewport;

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn status_bar_ui(
    ui: &mut egui::Ui,
    session: Option<&Session>,
    view: &Viewport,
    hover: Option<(u32, u32)>,
    measure: &super::canvas::Measure,
) {
    ui.horizontal(|ui| {
        let Some(s) = session else {
            ui.label("No image");
            return;
        };
        let page = s.page();
        match hover {
            Some((x, y)) => {
                let value = match s.native_at(x, y) {
                    Some((values, 1)) => describe_values(page, &values),
                    Some((values, f)) => {
                        format!("{} (level 1/{f})", describe_values(page, &values))
                    }
                    None => "not loaded".to_string(),
                };
                let at = page.physical.map_or(String::new(), |p| {
                    let f = |v: f64| crate::physical::format_length(v, p.unit);
                    format!(" ({}, {})", f(f64::from(x) * p.x), f(f64::from(y) * p.y))
                });
                ui.label(format!("x {x}  y {y}{at}  {}: {value}", page.mode));
            }
            None => {
                let size = page
                    .physical
                    .map_or(String::new(), |p| format!(", pixel {}", p.describe()));
                ui.label(format!(
                    "{}x{} {}{size}",
                    page.width, page.height, page.mode
                ));
            }
        }
        let pages = s.pages();
        if pages.len() > 1 {
            let at = pages.iter().position(|&p| p == s.page).unwrap_or(0);
            ui.separator();
            ui.label(format!("page {} of {}", at + 1, pages.len()));
        }
        if !view.orient.is_identity() {
            ui.separator();
            ui.label(view.orient.describe());
        }
        if measure.active {
            ui.separator();
            match measure.describe(page.physical.as_ref()) {
                Some(text) => ui.label(format!("measured {text}")),
                None => ui.label("measure: drag a line"),
            };
        }
        ui.separator();
        ui.label(format!("zoom {:.1}%", view.zoom * 100.0));
        ui.separator();
        let (cache_bytes, budget) = {
            let c = s.cache.lock().unwrap_or_else(|e| e.into_inner());
            (c.bytes() as u64, c.budget() as u64)
        };
        ui.label(format!("cache {} / {}", mb(cache_bytes), mb(budget)));
        ui.separator();
        ui.label(format!("GPU {}", mb(s.textures.bytes() as u64)));
        ui.separator();
        match s.image.source.remote() {
            Some(r) => {
                use std::sync::atomic::Ordering;
                let st = &r.stats;
                ui.label(format!(
                    "fetched {} in {} requests, {} in flight",
                    mb(st.bytes.load(Ordering::Relaxed)),
                    st.requests.load(Ordering::Relaxed),
                    st.in_flight.load(Ordering::Relaxed)
                ));
            }
            None => {
                ui.label(format!("read {}", mb(s.image.source.bytes_read())));
            }
        }
        ui.separator();
        let pending = s.loader.pending() + s.pending_uploads();
        ui.label(format!("pending {pending}"));
        if pending > 0 {
            ui.spinner();
        }
    });
}

/// Native values under the cursor: `name value` per channel; a data page's floats with
/// sensible precision, its NaN and no-data values named, physical values where the file
/// scales them.
pub fn describe_values(page: &crate::format::Page, values: &[f64]) -> String {
    let names = page.channel_names();
    values
        .iter()
        .enumerate()
        .map(|(c, &v)| {
            let name = names.get(c).cloned().unwrap_or_else(|| format!("{c}"));
            let shown = match &page.data {
                Some(info) => match info.value(v) {
                    Some(x) => crate::data::format_value(x),
                    None if v.is_nan() => "NaN (no data)".to_string(),
                    None => format!("no data ({})", crate::data::format_value(v)),
                },
                None => crate::data::format_value(v),
            };
            format!("{name} {shown}")
        })
        .collect::<Vec<_>>()
        .join("  ")
}
