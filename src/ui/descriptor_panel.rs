//! The tile-descriptor panel: every descriptor of the page with its live state, virtualised
//! (only visible rows are built) so a million rows scroll smoothly; filter by state; select a
//! row to outline it, "Go to" to centre the view on it.

use egui::RichText;

use super::{Command, state_color};
use crate::index::StreamIndex;
use crate::levels::BuildState;
use crate::pieces::LevelSource;
use crate::session::{Session, UnitState};

/// The image's levels: which one the panel lists, and how the build is going.
fn levels_ui(ui: &mut egui::Ui, session: &Session, commands: &mut Vec<Command>) {
    let levels = session.pyramid().levels();
    let name = |i: usize| -> String {
        let Some(l) = levels.get(i) else {
            return String::new();
        };
        match l.source {
            LevelSource::Page(_) if l.factor == 1 => "full resolution".into(),
            LevelSource::Page(p) => format!("1/{} (file page {p})", l.factor),
            LevelSource::Built(_) => format!("1/{} (built)", l.factor),
            LevelSource::Preview { .. } => format!("1/{} (preview)", l.factor),
        }
    };
    let listable: Vec<usize> = (0..levels.len())
        .filter(|&i| levels[i].source.has_descriptors())
        .collect();
    ui.horizontal(|ui| {
        if listable.len() > 1 {
            let mut chosen = session.panel_level;
            egui::ComboBox::from_label("level")
                .selected_text(name(chosen.min(levels.len().saturating_sub(1))))
                .show_ui(ui, |ui| {
                    for &i in &listable {
                        ui.selectable_value(&mut chosen, i, name(i));
                    }
                });
            if chosen != session.panel_level {
                commands.push(Command::PanelLevel(chosen));
            }
        }
        let built = session.image.built_levels();
        let text = match (session.build_state(), built) {
            (Some(BuildState::Building), _) => format!(
                "building levels: {:.0}%",
                session.build_progress().unwrap_or(0.0) * 100.0
            ),
            (Some(BuildState::Complete), Some(b)) => match &b.kept_at {
                Some(p) => format!("levels kept in {}", p.display()),
                None => "levels built (not kept)".into(),
            },
            (Some(BuildState::Cancelled), _) => "level build cancelled".into(),
            (Some(BuildState::Failed(e)), _) => format!("level build failed: {e}"),
            _ => String::new(),
        };
        if !text.is_empty() {
            ui.label(text);
        }
    });
}

/// Which descriptors the panel lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum StateFilter {
    #[default]
    All,
    Visible,
    Cached,
    Loading,
    Failed,
    Evicted,
}

impl StateFilter {
    const ALL: [StateFilter; 6] = [
        StateFilter::All,
        StateFilter::Visible,
        StateFilter::Cached,
        StateFilter::Loading,
        StateFilter::Failed,
        StateFilter::Evicted,
    ];
    fn name(self) -> &'static str {
        match self {
            StateFilter::All => "all",
            StateFilter::Visible => "visible",
            StateFilter::Cached => "cached",
            StateFilter::Loading => "loading",
            StateFilter::Failed => "failed",
            StateFilter::Evicted => "evicted",
        }
    }
}

/// What the listed page is (file page, file level or built level), its access method, and
/// the indexing pass of a stream.
fn page_summary_ui(ui: &mut egui::Ui, session: &Session, index: Option<&StreamIndex>) {
    let (source, page, factor) = session.panel_page();
    let access = match index {
        Some(ix) if ix.is_complete() => crate::format::Access::Checkpoint,
        _ => page.access(),
    };
    let file = if let LevelSource::Built(_) = source {
        format!("built level 1/{factor} (sidecar TIFF)")
    } else if factor > 1 {
        format!("{} level 1/{factor}", session.image.layout.format.name())
    } else {
        session.image.layout.format.name().to_string()
    };
    ui.add(egui::Label::new(format!(
        "{} {}x{} {}: {} descriptors, access {} ({})",
        file,
        page.width,
        page.height,
        page.mode,
        page.descriptor_count(),
        access.name(),
        access.reason()
    )));
    if let Some(f) = session.image.source.fetch_summary() {
        ui.label(format!("remote object, read by {f}"));
    }
    if let Some(ix) = index {
        let reached = ix.reached();
        let bytes = ix.memory() as f64;
        let text = format!(
            "indexing pass: {reached} of {} bands reached, {} checkpoints ({})",
            ix.bands(),
            ix.checkpoints(),
            if bytes < 1e6 {
                format!("{:.0} KB", bytes / 1e3)
            } else {
                format!("{:.1} MB", bytes / 1e6)
            }
        );
        ui.add(egui::ProgressBar::new(reached as f32 / ix.bands().max(1) as f32).text(text));
    }
}

/// The descriptors the filter lists, `None` for all of them. Filtered lists come from the
/// (sparse) state table; "all" is the whole range.
fn filtered_rows(
    session: &Session,
    source: LevelSource,
    page: &crate::format::Page,
    filter: StateFilter,
    visible_units: &std::collections::HashSet<u64>,
) -> Option<Vec<u64>> {
    let units_per_plane = page.unit_count().max(1);
    let planes = page.descriptor_count() / units_per_plane;
    match filter {
        StateFilter::All => None,
        StateFilter::Visible => {
            let mut v: Vec<u64> = visible_units.iter().copied().collect();
            v.sort_unstable();
            Some(expand_planes(v, planes, units_per_plane))
        }
        f => {
            let mut v: Vec<u64> = session
                .states
                .units_of_unsorted(source)
                .filter(|(_, i)| {
                    matches!(
                        (f, &i.state),
                        (StateFilter::Cached, UnitState::Cached)
                            | (StateFilter::Loading, UnitState::Loading)
                            | (StateFilter::Failed, UnitState::Failed(_))
                            | (StateFilter::Evicted, UnitState::Evicted)
                    )
                })
                .map(|(u, _)| u)
                .collect();
            v.sort_unstable();
            Some(expand_planes(v, planes, units_per_plane))
        }
    }
}

pub fn descriptor_panel_ui(
    ui: &mut egui::Ui,
    session: &Session,
    filter: &mut StateFilter,
    selected: Option<u64>,
    visible_units: &std::collections::HashSet<u64>,
) -> Vec<Command> {
    let mut commands = Vec::new();
    let (source, page, _) = session.panel_page();
    // Page 0 of a PNG/JPEG: its checkpoint index, filled in as passes run.
    let index = session
        .image
        .index
        .as_ref()
        .filter(|_| source == LevelSource::Page(0));
    ui.heading("Tile descriptors");
    levels_ui(ui, session, &mut commands);
    page_summary_ui(ui, session, index);
    ui.horizontal(|ui| {
        egui::ComboBox::from_label("shown")
            .selected_text(filter.name())
            .show_ui(ui, |ui| {
                for f in StateFilter::ALL {
                    ui.selectable_value(filter, f, f.name());
                }
            });
        if let Some(index) = selected
            && ui
                .button("Go to")
                .on_hover_text("Centre the view on the selected descriptor")
                .clicked()
        {
            commands.push(Command::GoTo(index));
        }
    });
    ui.separator();
    let rows = filtered_rows(session, source, page, *filter, visible_units);
    let total = rows
        .as_ref()
        .map_or(page.descriptor_count(), |r| r.len() as u64);
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 4.0;
    let index_ = index;
    let header = format!(
        "{:>7} {:<18} {:<25} {:>12} {:>9} {:<6} {:<8} {:>7}  {}",
        "index", "decoder", "extent", "offset", "length", "access", "state", "ms", "args"
    );
    // A remote object's descriptors are all read by range requests.
    let remote = session.image.source.is_remote();
    egui::ScrollArea::both()
        .auto_shrink([false, false])
        .show_rows(ui, row_height, total as usize, |ui, range| {
            // One line a row: the virtualised list relies on a fixed row height.
            ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
            ui.label(RichText::new(&header).monospace().strong());
            for row in range {
                let index = rows.as_ref().map_or(row as u64, |r| r[row]);
                let d = match index_ {
                    Some(ix) => ix.descriptor(page, index),
                    None => page.descriptor(index),
                };
                let info = session.descriptor_state(index);
                let unit = page.descriptor_unit(index);
                let state_name = match info.map(|i| &i.state) {
                    Some(s) => s.name(),
                    None if visible_units.contains(&unit) => "visible",
                    None => "",
                };
                let ms = info
                    .and_then(|i| i.decode_time)
                    .map(|t| format!("{:.1}", t.as_secs_f64() * 1000.0))
                    .unwrap_or_default();
                let text = format!(
                    "{:>7} {:<18} {:<25} {:>12} {:>9} {:<6} {:<8} {:>7}  {}",
                    d.index,
                    d.decoder,
                    format!(
                        "({},{},{},{})",
                        d.extent.x0, d.extent.y0, d.extent.x1, d.extent.y1
                    ),
                    d.offset,
                    d.length,
                    if remote { "range GET" } else { d.access.name() },
                    state_name,
                    ms,
                    d.args
                );
                let color = state_color(info.map(|i| &i.state));
                let response = ui
                    .selectable_label(
                        selected == Some(index),
                        RichText::new(text).monospace().color(color),
                    )
                    .on_hover_text(match info.map(|i| &i.state) {
                        Some(UnitState::Failed(e)) => format!("error: {e}"),
                        _ => "click to select, double-click to go to".to_string(),
                    });
                if response.clicked() {
                    commands.push(Command::Select(Some(index)));
                }
                if response.double_clicked() {
                    commands.push(Command::GoTo(index));
                }
            }
        });
    commands
}

fn expand_planes(units: Vec<u64>, planes: u64, per_plane: u64) -> Vec<u64> {
    if planes <= 1 {
        return units;
    }
    let mut out: Vec<u64> = (0..planes)
        .flat_map(|p| units.iter().map(move |u| p * per_plane + u))
        .collect();
    out.sort_unstable();
    out
}
