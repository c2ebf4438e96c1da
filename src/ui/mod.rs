//! Panels and widgets. Each returns [`Command`]s instead of mutating the app, so one place
//! (the app) applies them once per frame.

pub mod canvas;
pub mod descriptor_panel;
pub mod display_panel;
pub mod export_window;
pub mod file_browser;
pub mod navigator;
pub mod status_bar;

use std::path::PathBuf;

/// Something the user asked for, applied by the app after drawing.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Open(PathBuf),
    OpenDialog,
    Fit,
    ActualSize,
    ZoomBy(f64),
    /// Centre the view on descriptor `index` (and select it).
    GoTo(u64),
    Select(Option<u64>),
    /// Centre the view on an image point.
    CenterOn(f64, f64),
    /// List the descriptors of level `index` (of the session's levels) in the panel.
    PanelLevel(usize),
    /// Build zoomed-out levels for the open image now.
    BuildLevels,
    /// Stop the level build.
    CancelLevels,
    ToggleFullscreen,
    ToggleOverlay,
    TogglePanel,
    DismissError,
    Quit,
    /// Use this display mapping (a data page's panel).
    SetMapping(crate::display::Mapping),
    /// Auto contrast from the whole image's statistics.
    AutoContrast,
    /// Auto contrast from what is on screen.
    FitContrast,
    /// Windows over the full range of the values.
    ResetContrast,
    SetPercentiles(crate::display::Percentiles),
    ToggleDisplayPanel,
    /// Show page `n` of the file (a page of its own, not a reduced copy of another).
    ShowPage(u32),
    /// The next or previous such page (`PageDown`/`PageUp`).
    StepPage(i32),
    /// Centre on a place, at its zoom if it has one.
    GoToLocation(crate::view::location::Location),
    /// Show or hide the go-to field (`Ctrl+G`).
    ToggleGoTo,
    /// Put the command line that reopens this view on the clipboard.
    CopyLocation,
    /// Turn the measure tool on or off (`M`); off clears its line.
    ToggleMeasure,
    /// The in-window file browser (where no native dialog exists).
    OpenBrowser,
    /// Bookmark the view (`Ctrl+D`).
    AddBookmark,
    /// Show or hide the bookmarks panel (`K`).
    ToggleBookmarks,
    /// Go to bookmark `i` of the open image.
    GoToBookmark(usize),
    DeleteBookmark(usize),
    /// Show the export window (`Ctrl+E`), its region set to the view.
    ShowExport,
    /// Turn or flip the view by this much more (`R`, `Shift+R`, `F`, `V`).
    Turn(crate::orientation::Orientation),
    /// Show or hide the Open URL field (`Ctrl+U`).
    ToggleOpenUrl,
    /// Forget the Shift+drag selection (`Esc`).
    ClearSelection,
    /// Show the image as its file says (its `Orientation` tag), undoing turns.
    ResetOrientation,
}

/// Colours for descriptor states, shared by the overlay and the panel.
pub fn state_color(state: Option<&crate::session::UnitState>) -> egui::Color32 {
    use crate::session::UnitState;
    match state {
        Some(UnitState::Cached) => egui::Color32::from_rgb(80, 200, 120),
        Some(UnitState::Loading) => egui::Color32::from_rgb(240, 200, 60),
        Some(UnitState::Failed(_)) => egui::Color32::from_rgb(230, 70, 70),
        Some(UnitState::Evicted) => egui::Color32::from_rgb(140, 140, 160),
        None => egui::Color32::from_rgb(90, 130, 220),
    }
}
