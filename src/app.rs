//! The `eframe::App`: drains loader results, uploads textures within a per-frame budget, draws
//! the menus, panels and canvas, and applies the [`Command`]s they return.
//!
//! Opening parses headers on a background thread; the UI thread never reads the file.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::bench_view::BenchView;
use crate::cache::default_budget;
use crate::error::Error;
use crate::format::Extent;
use crate::image::OpenImage;
use crate::levels::{self, BuildJob, LevelsConfig};
use crate::session::Session;
use crate::ui::Command;
use crate::ui::canvas::canvas_ui;
use crate::ui::descriptor_panel::{StateFilter, descriptor_panel_ui};
use crate::ui::display_panel::display_panel_ui;
use crate::ui::navigator::navigator_ui;
use crate::ui::status_bar::status_bar_ui;
use crate::view::viewport::Viewport;

/// Bytes of texture uploaded per frame at most, so panning never stutters.
pub const UPLOAD_BYTES_PER_FRAME: usize = 4 << 20;
/// A native dialog that returns nothing sooner than this was never shown (`rfd` with no
/// portal and no `zenity`).
const NO_DIALOG_WITHIN: Duration = Duration::from_millis(300);

/// GPU texture budget.
pub const TEXTURE_BUDGET: usize = 512 << 20;
const STORAGE_KEY: &str = "tessera-settings";
const MAX_RECENT: usize = 10;

/// Settings kept between runs (eframe storage; window geometry is kept by eframe itself).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub recent: Vec<PathBuf>,
    pub cache_mb: u64,
    pub show_panel: bool,
    /// The display panel of data pages (histogram, window, colormap).
    pub show_display: bool,
    pub show_overlay: bool,
    pub show_navigator: bool,
    pub filter: StateFilter,
    /// Build zoomed-out levels in the background for big files that have none.
    pub build_levels: bool,
    /// Keep built levels for the next open (in `levels_dir`, or the user's cache folder).
    pub keep_levels: bool,
    pub levels_dir: Option<PathBuf>,
    pub levels_cap_mb: u64,
    /// Bookmarks per image, by path.
    pub bookmarks: std::collections::BTreeMap<PathBuf, Vec<Bookmark>>,
    pub show_bookmarks: bool,
}

/// A named place in an image: page, centre and zoom.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bookmark {
    pub name: String,
    pub page: u32,
    pub x: f64,
    pub y: f64,
    pub zoom: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            recent: Vec::new(),
            cache_mb: (default_budget() >> 20) as u64,
            show_panel: true,
            show_display: true,
            show_overlay: false,
            show_navigator: true,
            filter: StateFilter::All,
            build_levels: true,
            keep_levels: true,
            levels_dir: None,
            levels_cap_mb: LevelsConfig::default().cap_bytes >> 20,
            bookmarks: Default::default(),
            show_bookmarks: false,
        }
    }
}

/// How the app starts.
#[derive(Debug, Default, Clone)]
pub struct StartOptions {
    pub file: Option<PathBuf>,
    pub cache_mb: Option<u64>,
    /// Run the scripted benchmark path and print its JSON line.
    pub bench: bool,
    /// With `bench`: stop once the fit-to-window view is sharp.
    pub bench_fit_only: bool,
    /// Level options from the command line (they override the settings for this run).
    pub levels: Option<LevelsConfig>,
    /// Show the opening spinner and its Cancel button once an open takes this long (default
    /// 100 ms: quick opens do not flash it).
    pub open_feedback_after: Option<Duration>,
    /// Show this page of the file once it is open (`--page`).
    pub page: Option<u32>,
    /// And centre on this place (`--at X,Y[,ZOOM]`, read with the page's pixel size).
    pub at: Option<String>,
    /// Start from these settings instead of the stored ones (tests, embedding).
    pub settings: Option<Settings>,
}

/// What the opening thread hands back: the image, and a level build to start (or why none
/// could be prepared).
type Opened = (Arc<OpenImage>, Option<BuildJob>, Option<String>);

struct Opening {
    path: PathBuf,
    started: Instant,
    rx: Receiver<Result<Opened, Error>>,
    progress: Arc<crate::progress::Progress>,
}

pub struct TesseraApp {
    pub settings: Settings,
    pub session: Option<Session>,
    pub view: Viewport,
    /// Fit to window until the user zooms, pans or jumps: the view refits when the canvas
    /// changes size (window resize, panel shown or resized).
    fit_mode: bool,
    /// `--page`/`--at` of the command line, applied once the file is open.
    pending_place: Option<(Option<u32>, Option<String>)>,
    /// The go-to field's text and its last error, while it is shown.
    goto: Option<(String, Option<String>)>,
    /// The Open URL field's text and its last error, while it is shown.
    pub open_url: Option<(String, Option<String>)>,
    /// The window title last sent.
    title: String,
    /// The measure tool and its line.
    pub measure: crate::ui::canvas::Measure,
    /// The export window, while it is shown.
    pub export: Option<crate::ui::export_window::ExportWindow>,
    /// The rectangle selected with Shift+drag (for export).
    pub selection: crate::ui::canvas::Selection,
    /// A place to go to once the canvas has its size (the first frame after an open).
    pending_goto: Option<crate::view::location::Location>,
    opening: Option<Opening>,
    /// The native dialog's answer, and how long it took to come.
    dialog: Option<Receiver<(Option<PathBuf>, Duration)>>,
    /// The in-window file browser, while it is shown.
    pub browser: Option<crate::ui::file_browser::FileBrowser>,
    /// No native dialog answered here (it returned nothing at once): File > Open goes
    /// straight to the in-window browser.
    no_native_dialog: bool,
    /// Errors for the banner, newest last.
    pub errors: Vec<String>,
    pub selected: Option<u64>,
    hover: Option<(u32, u32)>,
    last_center: (f64, f64),
    visible_units: HashSet<u64>,
    bench: Option<BenchView>,
    ctx: egui::Context,
    /// Where the canvas was drawn last frame (screen points); the view maps canvas-relative
    /// coordinates.
    pub canvas_rect: egui::Rect,
    levels_override: Option<LevelsConfig>,
    open_feedback_after: Duration,
    /// The levels folder as typed in the settings menu.
    levels_dir_text: String,
}

impl TesseraApp {
    pub fn new(cc: &eframe::CreationContext<'_>, start: StartOptions) -> Self {
        let mut settings: Settings = start
            .settings
            .clone()
            .or_else(|| cc.storage.and_then(|s| eframe::get_value(s, STORAGE_KEY)))
            .unwrap_or_default();
        if let Some(mb) = start.cache_mb {
            settings.cache_mb = mb;
        }
        let mut app = Self {
            settings,
            session: None,
            view: Viewport::new(800.0, 600.0),
            fit_mode: false,
            pending_place: (start.page.is_some() || start.at.is_some())
                .then_some((start.page, start.at)),
            goto: None,
            open_url: None,
            measure: Default::default(),
            export: None,
            selection: Default::default(),
            title: String::new(),
            pending_goto: None,
            opening: None,
            dialog: None,
            browser: None,
            no_native_dialog: false,
            errors: Vec::new(),
            selected: None,
            hover: None,
            last_center: (0.0, 0.0),
            visible_units: HashSet::new(),
            bench: start
                .bench
                .then(|| BenchView::with_path(start.bench_fit_only)),
            ctx: cc.egui_ctx.clone(),
            canvas_rect: egui::Rect::NOTHING,
            levels_override: start.levels,
            open_feedback_after: start
                .open_feedback_after
                .unwrap_or(Duration::from_millis(100)),
            levels_dir_text: String::new(),
        };
        app.levels_dir_text = app
            .settings
            .levels_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if let Some(path) = start.file {
            app.open(path);
        }
        app
    }

    /// Start opening `path` on a background thread.
    pub fn open(&mut self, path: PathBuf) {
        if let Some(o) = &self.opening {
            o.progress.cancel();
        }
        let (tx, rx) = channel();
        let ctx = self.ctx.clone();
        let p = path.clone();
        let progress = Arc::new(crate::progress::Progress::new());
        let worker_progress = progress.clone();
        let cfg = self.levels_config();
        let build = self.settings.build_levels;
        let spawned = std::thread::Builder::new()
            .name("tessera-open".into())
            .spawn(move || {
                let opened = OpenImage::open_with_progress(&p, &worker_progress)
                    .map(|image| prepare_levels(image, &cfg, build));
                let _ = tx.send(opened);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.opening = Some(Opening {
                    path,
                    started: Instant::now(),
                    rx,
                    progress,
                })
            }
            Err(e) => self.errors.push(format!("cannot start opening: {e}")),
        }
    }

    /// Where and how levels are kept: the command line's options, else the settings.
    pub fn levels_config(&self) -> LevelsConfig {
        if let Some(cfg) = &self.levels_override {
            return cfg.clone();
        }
        let mut cfg = LevelsConfig::default();
        if let Some(d) = &self.settings.levels_dir {
            cfg.dir = Some(d.clone());
        }
        if !self.settings.keep_levels {
            cfg.dir = None;
        }
        cfg.cap_bytes = self.settings.levels_cap_mb.saturating_mul(1 << 20);
        cfg
    }

    /// Build levels for the open image now (the Settings menu's button).
    fn build_levels_now(&mut self) {
        let cfg = self.levels_config();
        let Some(s) = &mut self.session else {
            return;
        };
        if s.image.built_levels().is_some() || !levels::wanted(&s.image, 0) {
            return;
        }
        match levels::prepare_build(&s.image, &cfg) {
            Ok(job) => {
                let ctx = self.ctx.clone();
                s.start_build(job, Arc::new(move || ctx.request_repaint()));
            }
            Err(e) => self.errors.push(format!("building levels: {e}")),
        }
    }

    /// The place on screen: page, centre and zoom.
    pub fn location(&self) -> Option<(u32, crate::view::location::Location)> {
        let s = self.session.as_ref()?;
        Some((
            s.page,
            crate::view::location::Location {
                x: self.view.center_x,
                y: self.view.center_y,
                zoom: Some(self.view.zoom),
            },
        ))
    }

    /// Open the export window on the selection, or else the region in view.
    fn show_export(&mut self) {
        let Some(s) = &self.session else {
            return;
        };
        let p = s.page();
        let e = self
            .selection
            .rect
            .and_then(|r| r.intersect(&p.extent()))
            .or_else(|| self.view.visible_extent(p.width, p.height, 0.0))
            .unwrap_or(p.extent());
        self.export = Some(crate::ui::export_window::ExportWindow::new(s, e));
    }

    /// The export window, and what it asks for.
    fn export_ui(&mut self, ctx: &egui::Context) {
        use crate::ui::export_window::ExportAction;
        let Some(ex) = &mut self.export else {
            return;
        };
        let data = self
            .session
            .as_ref()
            .is_some_and(|s| s.page().data.is_some());
        match ex.ui(ctx, data, self.view.orient) {
            ExportAction::Start => {
                if let Some(s) = &self.session {
                    ex.start(s, self.view.orient, ctx);
                }
            }
            ExportAction::Close => self.export = None,
            ExportAction::None => {}
        }
    }

    /// The open image's bookmarks.
    pub fn bookmarks(&self) -> &[Bookmark] {
        self.session
            .as_ref()
            .and_then(|s| self.settings.bookmarks.get(s.image.path()))
            .map_or(&[], Vec::as_slice)
    }

    /// The bookmarks panel: each bookmark's name (editable), Go and Delete.
    fn bookmarks_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        ui.heading("Bookmarks");
        if ui.button("Add bookmark  (Ctrl+D)").clicked() {
            cmds.push(Command::AddBookmark);
        }
        ui.separator();
        let Some(path) = self.session.as_ref().map(|s| s.image.path().to_path_buf()) else {
            return;
        };
        let Some(marks) = self.settings.bookmarks.get_mut(&path) else {
            ui.label("No bookmarks for this image");
            return;
        };
        for (i, b) in marks.iter_mut().enumerate() {
            ui.horizontal(|ui| {
                ui.add(
                    egui::TextEdit::singleline(&mut b.name)
                        .hint_text("bookmark name")
                        .desired_width(150.0),
                );
                if ui.button("Go").clicked() {
                    cmds.push(Command::GoToBookmark(i));
                }
                if ui.button("Delete").clicked() {
                    cmds.push(Command::DeleteBookmark(i));
                }
            });
            ui.label(format!(
                "page {}, {:.0},{:.0}, {:.1}%",
                b.page,
                b.x,
                b.y,
                b.zoom * 100.0
            ));
        }
    }

    /// The command line that reopens the view ("copy location").
    pub fn location_text(&self) -> Option<String> {
        let (page, l) = self.location()?;
        let path = self.session.as_ref()?.image.path().to_path_buf();
        Some(crate::view::location::command_line(&path, page, &l))
    }

    /// The go-to field: `X,Y[,ZOOM]` in pixels or the image's units; Enter goes there.
    fn goto_ui(&mut self, ctx: &egui::Context, cmds: &mut Vec<Command>) {
        let Some((text, error)) = &mut self.goto else {
            return;
        };
        let size = self.session.as_ref().and_then(|s| s.page().physical);
        let mut open = true;
        let mut go = false;
        egui::Window::new("Go to")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_TOP, egui::vec2(0.0, 40.0))
            .show(ctx, |ui| {
                ui.label(match size {
                    Some(_) => "X,Y[,ZOOM] in pixels or units (1.5mm,2mm,200%)",
                    None => "X,Y[,ZOOM] in pixels (1200,800,0.5 or 200%)",
                });
                let r = ui.add(
                    egui::TextEdit::singleline(text)
                        .hint_text("x,y,zoom")
                        .desired_width(280.0),
                );
                r.request_focus();
                go = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if ui.button("Go").clicked() {
                    go = true;
                }
                if let Some(e) = error {
                    ui.colored_label(egui::Color32::from_rgb(230, 90, 90), e.as_str());
                }
            });
        if go {
            match crate::view::location::parse(text, size.as_ref()) {
                Ok(l) => {
                    cmds.push(Command::GoToLocation(l));
                    self.goto = None;
                    return;
                }
                Err(e) => *error = Some(e),
            }
        }
        if !open {
            self.goto = None;
        }
    }

    /// File > Open URL: `https://`, `s3://` (or `http://` on this machine), opened like a file.
    fn open_url_ui(&mut self, ctx: &egui::Context, cmds: &mut Vec<Command>) {
        let Some((text, error)) = &mut self.open_url else {
            return;
        };
        let mut open = true;
        let mut go = false;
        egui::Window::new("Open URL")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    let r = ui.add(
                        egui::TextEdit::singleline(text)
                            .hint_text("https://host/image.tif or s3://bucket/key.tif")
                            .desired_width(420.0),
                    );
                    r.request_focus();
                    go = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    go |= ui.button("Open").clicked();
                });
                ui.label("S3: keys from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL; none for a public bucket.");
                if let Some(e) = error {
                    ui.colored_label(egui::Color32::from_rgb(230, 90, 90), e.as_str());
                }
            });
        if go {
            match crate::source::remote::typed_url(text) {
                Ok(url) => {
                    cmds.push(Command::Open(url));
                    self.open_url = None;
                    return;
                }
                Err(e) => *error = Some(e),
            }
        }
        if !open {
            self.open_url = None;
        }
    }

    /// The window title: file, page, centre and zoom, sent when it changes.
    fn update_title(&mut self, ctx: &egui::Context) {
        let title = match (&self.session, self.location()) {
            (Some(s), Some((page, l))) => format!(
                "{} - page {page} - {} - {:.1}% - Tessera",
                s.image
                    .path()
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                crate::view::location::format(&crate::view::location::Location { zoom: None, ..l }),
                self.view.zoom * 100.0
            ),
            _ => "Tessera".to_string(),
        };
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }

    /// Show page `page` of the open file: a new session over the same image (its own pyramid,
    /// display mapping and descriptor states), fitted to the window.
    fn show_page(&mut self, page: u32) {
        let Some(old) = &self.session else {
            return;
        };
        if old.page == page || !old.pages().contains(&page) {
            return;
        }
        let image = old.image.clone();
        let budget = old.cache.lock().map_or(64 << 20, |c| c.budget());
        self.session = None;
        let session = Session::with_page(image, page, budget, TEXTURE_BUDGET);
        let ctx = self.ctx.clone();
        session
            .loader
            .set_notify(Arc::new(move || ctx.request_repaint()));
        self.view.orient = session.page().orientation;
        self.session = Some(session);
        self.selected = None;
        self.selection = Default::default();
        self.fit_mode = true;
    }

    /// Whether a file is being opened.
    pub fn is_opening(&self) -> bool {
        self.opening.is_some()
    }

    fn poll_opening(&mut self) {
        let Some(opening) = &self.opening else {
            return;
        };
        match opening.rx.try_recv() {
            Ok(Ok((image, job, level_error))) => {
                let path = opening.path.clone();
                self.opening = None;
                // Close the old image first: its build stops before the new one starts.
                self.session = None;
                let budget = (self.settings.cache_mb as usize)
                    .saturating_mul(1 << 20)
                    .max(16 << 20);
                let mut session = Session::new(image, budget, TEXTURE_BUDGET);
                let ctx = self.ctx.clone();
                let notify: crate::loader::Notify = Arc::new(move || ctx.request_repaint());
                session.loader.set_notify(notify.clone());
                if let Some(job) = job {
                    session.start_build(job, notify);
                }
                self.view.orient = session.page().orientation;
                self.session = Some(session);
                self.selected = None;
                self.selection = Default::default();
                self.fit_mode = true;
                self.errors.clear();
                if let Some((page, at)) = self.pending_place.take() {
                    if let Some(p) = page {
                        self.show_page(p);
                    }
                    let size = self.session.as_ref().and_then(|s| s.page().physical);
                    match at.map(|t| crate::view::location::parse(&t, size.as_ref())) {
                        Some(Ok(l)) => {
                            self.fit_mode = false;
                            self.pending_goto = Some(l);
                        }
                        Some(Err(e)) => self.errors.push(format!("--at: {e}")),
                        None => {}
                    }
                }
                self.errors.extend(level_error);
                self.settings.recent.retain(|p| *p != path);
                self.settings.recent.insert(0, path);
                self.settings.recent.truncate(MAX_RECENT);
            }
            Ok(Err(e)) => {
                let cancelled = opening.progress.is_cancelled();
                self.opening = None;
                if !cancelled {
                    self.errors.push(e.to_string());
                }
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.opening = None;
                self.errors.push("opening failed unexpectedly".into());
            }
        }
    }

    fn open_dialog(&mut self) {
        if self.dialog.is_some() {
            return;
        }
        if self.no_native_dialog {
            self.open_browser();
            return;
        }
        let (tx, rx) = channel();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("tessera-dialog".into())
            .spawn(move || {
                let asked = Instant::now();
                let picked = rfd::FileDialog::new().set_title("Open image").pick_file();
                let _ = tx.send((picked, asked.elapsed()));
                ctx.request_repaint();
            });
        if spawned.is_ok() {
            self.dialog = Some(rx);
        }
    }

    /// Carry out a command, as the UI does once a frame (tests drive the app with it too).
    pub fn apply(&mut self, cmd: Command) {
        // Commands that move the view leave fit-to-window mode.
        if !matches!(
            cmd,
            Command::Fit
                | Command::Select(_)
                | Command::PanelLevel(_)
                | Command::BuildLevels
                | Command::CancelLevels
                | Command::DismissError
                | Command::ToggleOverlay
                | Command::TogglePanel
                | Command::ToggleFullscreen
                | Command::Open(_)
                | Command::OpenDialog
                | Command::ToggleGoTo
                | Command::CopyLocation
                | Command::ToggleMeasure
                | Command::OpenBrowser
                | Command::AddBookmark
                | Command::ToggleBookmarks
                | Command::DeleteBookmark(_)
                | Command::ShowExport
                | Command::Turn(_)
                | Command::ToggleOpenUrl
                | Command::ResetOrientation
                | Command::ClearSelection
        ) {
            self.fit_mode = false;
        }
        let size = self
            .session
            .as_ref()
            .map(|s| (s.page().width, s.page().height));
        match cmd {
            Command::Open(p) => self.open(p),
            Command::OpenDialog => self.open_dialog(),
            Command::Fit => {
                if let Some((w, h)) = size {
                    self.view.fit(w, h);
                    self.fit_mode = true;
                }
            }
            Command::ActualSize => {
                if let Some((w, h)) = size {
                    let min = self.view.min_zoom(w, h);
                    let f = 1.0 / self.view.zoom;
                    self.view.zoom_about(
                        self.view.screen_w / 2.0,
                        self.view.screen_h / 2.0,
                        f,
                        min,
                    );
                }
            }
            Command::ZoomBy(f) => {
                if let Some((w, h)) = size {
                    let min = self.view.min_zoom(w, h);
                    self.view.zoom_about(
                        self.view.screen_w / 2.0,
                        self.view.screen_h / 2.0,
                        f,
                        min,
                    );
                }
            }
            Command::GoTo(index) => {
                if let Some(s) = &self.session
                    && let Some(e) = s.panel_extent(index)
                {
                    self.view.center_x = (f64::from(e.x0) + f64::from(e.x1)) / 2.0;
                    self.view.center_y = (f64::from(e.y0) + f64::from(e.y1)) / 2.0;
                    self.selected = Some(index);
                }
            }
            Command::Select(sel) => self.selected = sel,
            Command::PanelLevel(index) => {
                if let Some(s) = &mut self.session {
                    s.panel_level = index;
                    self.selected = None;
                }
            }
            Command::BuildLevels => self.build_levels_now(),
            Command::CancelLevels => {
                if let Some(s) = &self.session {
                    s.cancel_build();
                }
            }
            Command::CenterOn(x, y) => {
                self.view.center_x = x;
                self.view.center_y = y;
            }
            Command::ToggleFullscreen => {
                let full = self.ctx.input(|i| i.viewport().fullscreen.unwrap_or(false));
                self.ctx
                    .send_viewport_cmd(egui::ViewportCommand::Fullscreen(!full));
            }
            Command::ToggleOverlay => self.settings.show_overlay = !self.settings.show_overlay,
            Command::TogglePanel => self.settings.show_panel = !self.settings.show_panel,
            Command::ToggleDisplayPanel => {
                self.settings.show_display = !self.settings.show_display;
            }
            Command::SetMapping(m) => {
                if let Some(s) = &mut self.session {
                    s.edit_display(m);
                }
            }
            Command::AutoContrast => {
                if let Some(s) = &mut self.session {
                    s.auto_contrast();
                }
            }
            Command::FitContrast => {
                if let Some(s) = &mut self.session {
                    s.fit_contrast_to_view();
                }
            }
            Command::ResetContrast => {
                if let Some(d) = self.session.as_mut().and_then(|s| s.display.as_mut()) {
                    d.reset();
                }
            }
            Command::SetPercentiles(p) => {
                if let Some(d) = self.session.as_mut().and_then(|s| s.display.as_mut()) {
                    d.percentiles = p;
                    if d.auto {
                        d.auto_now();
                    }
                }
            }
            Command::DismissError => {
                self.errors.clear();
            }
            Command::Quit => self.ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            Command::ShowPage(n) => self.show_page(n),
            Command::GoToLocation(l) => {
                if let Some((w, h)) = size {
                    self.view.center_x = l.x.clamp(0.0, f64::from(w));
                    self.view.center_y = l.y.clamp(0.0, f64::from(h));
                    if let Some(z) = l.zoom {
                        let min = self.view.min_zoom(w, h);
                        self.view.zoom = z.clamp(min, crate::view::viewport::MAX_ZOOM);
                    }
                }
            }
            Command::ToggleGoTo => {
                self.goto = match self.goto.take() {
                    Some(_) => None,
                    None => Some((String::new(), None)),
                };
            }
            Command::OpenBrowser => self.open_browser(),
            Command::ShowExport => self.show_export(),
            Command::Turn(o) => self.view.orient = self.view.orient.then(o),
            Command::ClearSelection => self.selection = Default::default(),
            Command::ToggleOpenUrl => {
                self.open_url = match self.open_url.take() {
                    Some(_) => None,
                    None => Some((String::new(), None)),
                }
            }
            Command::ResetOrientation => {
                if let Some(s) = &self.session {
                    self.view.orient = s.page().orientation;
                }
            }
            Command::AddBookmark => {
                if let Some((page, l)) = self.location()
                    && let Some(s) = &self.session
                {
                    let path = s.image.path().to_path_buf();
                    let marks = self.settings.bookmarks.entry(path).or_default();
                    marks.push(Bookmark {
                        name: format!("page {page} at {:.0},{:.0}", l.x, l.y),
                        page,
                        x: l.x,
                        y: l.y,
                        zoom: self.view.zoom,
                    });
                    self.settings.show_bookmarks = true;
                }
            }
            Command::ToggleBookmarks => {
                self.settings.show_bookmarks = !self.settings.show_bookmarks;
            }
            Command::GoToBookmark(i) => {
                if let Some(b) = self.bookmarks().get(i).cloned() {
                    self.show_page(b.page);
                    self.fit_mode = false;
                    self.pending_goto = Some(crate::view::location::Location {
                        x: b.x,
                        y: b.y,
                        zoom: Some(b.zoom),
                    });
                }
            }
            Command::DeleteBookmark(i) => {
                if let Some(s) = &self.session
                    && let Some(marks) = self.settings.bookmarks.get_mut(s.image.path())
                    && i < marks.len()
                {
                    marks.remove(i);
                    if marks.is_empty() {
                        let path = s.image.path().to_path_buf();
                        self.settings.bookmarks.remove(&path);
                    }
                }
            }
            Command::ToggleMeasure => {
                self.measure.active = !self.measure.active;
                if !self.measure.active {
                    self.measure.line = None;
                }
            }
            Command::CopyLocation => {
                if let Some(text) = self.location_text() {
                    self.ctx.copy_text(text);
                }
            }
            Command::StepPage(d) => {
                if let Some(s) = &self.session {
                    let pages = s.pages().to_vec();
                    let at = pages.iter().position(|&p| p == s.page).unwrap_or(0) as i64;
                    let next = (at + i64::from(d)).clamp(0, pages.len() as i64 - 1);
                    if let Some(&p) = pages.get(next as usize) {
                        self.show_page(p);
                    }
                }
            }
        }
    }

    fn keyboard(&self, ctx: &egui::Context) -> Vec<Command> {
        if ctx.egui_wants_keyboard_input() {
            return Vec::new();
        }
        let mut cmds = Vec::new();
        ctx.input(|i| {
            let step = 80.0 / self.view.zoom;
            let mut pan = (0.0, 0.0);
            if i.key_pressed(egui::Key::ArrowLeft) || i.key_pressed(egui::Key::A) {
                pan.0 -= step;
            }
            if i.key_pressed(egui::Key::ArrowRight)
                || (i.key_pressed(egui::Key::D) && !i.modifiers.command)
            {
                pan.0 += step;
            }
            if i.key_pressed(egui::Key::ArrowUp) || i.key_pressed(egui::Key::W) {
                pan.1 -= step;
            }
            if i.key_pressed(egui::Key::ArrowDown) || i.key_pressed(egui::Key::S) {
                pan.1 += step;
            }
            if pan != (0.0, 0.0) {
                // The arrows move along the screen's axes, however the image is turned.
                let (dx, dy) = self.view.orient.inverse().apply(pan.0, pan.1);
                cmds.push(Command::CenterOn(
                    self.view.center_x + dx,
                    self.view.center_y + dy,
                ));
            }
            if i.key_pressed(egui::Key::Plus) || i.key_pressed(egui::Key::Equals) {
                cmds.push(Command::ZoomBy(1.25));
            }
            if i.key_pressed(egui::Key::Minus) {
                cmds.push(Command::ZoomBy(0.8));
            }
            if i.key_pressed(egui::Key::Num0) {
                cmds.push(Command::Fit);
            }
            if i.key_pressed(egui::Key::Num1) {
                cmds.push(Command::ActualSize);
            }
            if i.key_pressed(egui::Key::F11) {
                cmds.push(Command::ToggleFullscreen);
            }
            if i.key_pressed(egui::Key::B) {
                cmds.push(Command::ToggleOverlay);
            }
            if i.key_pressed(egui::Key::P) {
                cmds.push(Command::TogglePanel);
            }
            if i.key_pressed(egui::Key::H) {
                cmds.push(Command::ToggleDisplayPanel);
            }
            if i.key_pressed(egui::Key::C) && !i.modifiers.command {
                cmds.push(if i.modifiers.shift {
                    Command::FitContrast
                } else {
                    Command::AutoContrast
                });
            }
            if i.modifiers.command && i.key_pressed(egui::Key::O) {
                cmds.push(Command::OpenDialog);
            }
            if i.modifiers.command && i.key_pressed(egui::Key::U) {
                cmds.push(Command::ToggleOpenUrl);
            }
            if i.modifiers.command && i.key_pressed(egui::Key::G) {
                cmds.push(Command::ToggleGoTo);
            }
            if i.modifiers.command && i.modifiers.shift && i.key_pressed(egui::Key::C) {
                cmds.push(Command::CopyLocation);
            }
            if i.modifiers.command && i.key_pressed(egui::Key::E) {
                cmds.push(Command::ShowExport);
            }
            if i.modifiers.command && i.key_pressed(egui::Key::D) {
                cmds.push(Command::AddBookmark);
            }
            if i.key_pressed(egui::Key::K) && !i.modifiers.command {
                cmds.push(Command::ToggleBookmarks);
            }
            if i.key_pressed(egui::Key::M) && !i.modifiers.command {
                cmds.push(Command::ToggleMeasure);
            }
            if i.key_pressed(egui::Key::R) && !i.modifiers.command {
                let o = crate::orientation::Orientation::CW;
                cmds.push(Command::Turn(if i.modifiers.shift {
                    o.inverse()
                } else {
                    o
                }));
            }
            if i.key_pressed(egui::Key::F) && !i.modifiers.command {
                cmds.push(Command::Turn(crate::orientation::Orientation::FLIP_H));
            }
            if i.key_pressed(egui::Key::V) && !i.modifiers.command {
                cmds.push(Command::Turn(crate::orientation::Orientation::FLIP_V));
            }
            if i.key_pressed(egui::Key::Escape) {
                cmds.push(Command::ClearSelection);
            }
            if i.key_pressed(egui::Key::PageDown) {
                cmds.push(Command::StepPage(1));
            }
            if i.key_pressed(egui::Key::PageUp) {
                cmds.push(Command::StepPage(-1));
            }
        });
        cmds
    }

    fn menu_ui(&mut self, ui: &mut egui::Ui) -> Vec<Command> {
        let mut cmds = Vec::new();
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open...  (Ctrl+O)").clicked() {
                    cmds.push(Command::OpenDialog);
                }
                if ui.button("Open with the built-in browser...").clicked() {
                    cmds.push(Command::OpenBrowser);
                }
                if ui.button("Open URL...  (Ctrl+U)").clicked() {
                    cmds.push(Command::ToggleOpenUrl);
                }
                if ui.button("Export region...  (Ctrl+E)").clicked() {
                    cmds.push(Command::ShowExport);
                }
                ui.menu_button("Recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.label("No recent files");
                    }
                    for p in &self.settings.recent {
                        if ui.button(p.display().to_string()).clicked() {
                            cmds.push(Command::Open(p.clone()));
                        }
                    }
                });
                ui.separator();
                if ui.button("Quit").clicked() {
                    cmds.push(Command::Quit);
                }
            });
            ui.menu_button("View", |ui| {
                if let Some(s) = &self.session {
                    let pages = s.pages();
                    if pages.len() > 1 {
                        ui.menu_button("Page  (PageUp/PageDown)", |ui| {
                            for &p in pages {
                                let pg = &s.image.layout.pages[p as usize];
                                let text =
                                    format!("page {p}: {}x{} {}", pg.width, pg.height, pg.mode);
                                if ui.radio(s.page == p, text).clicked() {
                                    cmds.push(Command::ShowPage(p));
                                }
                            }
                        });
                        ui.separator();
                    }
                }
                if ui.button("Fit to window  (0)").clicked() {
                    cmds.push(Command::Fit);
                }
                ui.menu_button("Orientation", |ui| {
                    use crate::orientation::Orientation;
                    for (text, o) in [
                        ("Rotate clockwise  (R)", Orientation::CW),
                        (
                            "Rotate counter-clockwise  (Shift+R)",
                            Orientation::CW.inverse(),
                        ),
                        ("Mirror left-right  (F)", Orientation::FLIP_H),
                        ("Flip top-bottom  (V)", Orientation::FLIP_V),
                    ] {
                        if ui.button(text).clicked() {
                            cmds.push(Command::Turn(o));
                        }
                    }
                    if ui.button("As the file says").clicked() {
                        cmds.push(Command::ResetOrientation);
                    }
                });
                if ui.button("Go to...  (Ctrl+G)").clicked() {
                    cmds.push(Command::ToggleGoTo);
                }
                if ui.button("Copy location  (Ctrl+Shift+C)").clicked() {
                    cmds.push(Command::CopyLocation);
                }
                if ui
                    .checkbox(&mut self.measure.active.clone(), "Measure  (M)")
                    .clicked()
                {
                    cmds.push(Command::ToggleMeasure);
                }
                if ui
                    .checkbox(&mut self.settings.show_bookmarks.clone(), "Bookmarks  (K)")
                    .clicked()
                {
                    cmds.push(Command::ToggleBookmarks);
                }
                if ui.button("Add bookmark  (Ctrl+D)").clicked() {
                    cmds.push(Command::AddBookmark);
                }
                if ui.button("Actual size 100%  (1)").clicked() {
                    cmds.push(Command::ActualSize);
                }
                if ui.button("Full screen  (F11)").clicked() {
                    cmds.push(Command::ToggleFullscreen);
                }
                ui.separator();
                ui.checkbox(&mut self.settings.show_panel, "Descriptor panel  (P)");
                ui.checkbox(&mut self.settings.show_display, "Display panel  (H)");
                ui.checkbox(
                    &mut self.settings.show_overlay,
                    "Descriptor boundaries  (B)",
                );
                ui.checkbox(&mut self.settings.show_navigator, "Navigator");
            });
            ui.menu_button("Settings", |ui| {
                ui.label("Cache budget (MB), for the next file opened:");
                ui.add(egui::DragValue::new(&mut self.settings.cache_mb).range(16..=65536));
                ui.separator();
                ui.checkbox(
                    &mut self.settings.build_levels,
                    "Build zoomed-out levels for big files",
                );
                ui.checkbox(&mut self.settings.keep_levels, "Keep levels for next time");
                ui.horizontal(|ui| {
                    ui.label("Levels folder:");
                    let edit = ui.add(
                        egui::TextEdit::singleline(&mut self.levels_dir_text)
                            .hint_text("default cache folder")
                            .desired_width(220.0),
                    );
                    if edit.changed() {
                        let t = self.levels_dir_text.trim();
                        self.settings.levels_dir = (!t.is_empty()).then(|| PathBuf::from(t));
                    }
                });
                ui.horizontal(|ui| {
                    ui.label("Levels cap (MB):");
                    ui.add(
                        egui::DragValue::new(&mut self.settings.levels_cap_mb)
                            .range(64..=1_048_576),
                    );
                });
                let can_build = self.session.as_ref().is_some_and(|s| {
                    s.image.built_levels().is_none() && levels::wanted(&s.image, 0)
                });
                let label = match self.session.as_ref().filter(|s| s.image.source.is_remote()) {
                    Some(s) => format!(
                        "Build levels now (downloads {:.0} MB)",
                        s.image.source.len() as f64 / 1e6
                    ),
                    None => "Build levels now".to_string(),
                };
                if ui
                    .add_enabled(can_build, egui::Button::new(label))
                    .clicked()
                {
                    cmds.push(Command::BuildLevels);
                }
            });
            if let Some(s) = &self.session
                && let Some(f) = s.build_progress()
            {
                ui.add(
                    egui::ProgressBar::new(f)
                        .desired_width(160.0)
                        .text(format!("levels {:.0}%", f * 100.0)),
                );
                if ui
                    .button("Cancel levels")
                    .on_hover_text("Stop building zoomed-out levels")
                    .clicked()
                {
                    cmds.push(Command::CancelLevels);
                }
            }
            if let Some(o) = &self.opening
                && o.started.elapsed() >= self.open_feedback_after
            {
                ui.spinner();
                ui.label(format!("Opening {}...", o.path.display()));
                if let Some(f) = o.progress.fraction() {
                    ui.add(
                        egui::ProgressBar::new(f)
                            .desired_width(160.0)
                            .text(format!("indexing {:.0}%", f * 100.0)),
                    );
                }
                if ui.button("Cancel").clicked() {
                    o.progress.cancel();
                }
            }
        });
        cmds
    }
    /// The error banner: the newest error, how many more, and Dismiss.
    fn error_banner_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<Command>) {
        if !self.errors.is_empty() {
            egui::Panel::top("errors")
                .frame(
                    egui::Frame::new()
                        .fill(egui::Color32::from_rgb(120, 24, 24))
                        .inner_margin(6.0),
                )
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        let last = self.errors.last().cloned().unwrap_or_default();
                        let more = if self.errors.len() > 1 {
                            format!("  (+{} more)", self.errors.len() - 1)
                        } else {
                            String::new()
                        };
                        ui.label(
                            egui::RichText::new(format!("Error: {last}{more}"))
                                .color(egui::Color32::WHITE),
                        );
                        if ui.button("Dismiss").clicked() {
                            cmds.push(Command::DismissError);
                        }
                    });
                });
        }
    }

    /// Plan the view as it is now, ask for its pieces, upload what has arrived.
    fn update_session(&mut self, ctx: &egui::Context) {
        if let Some(s) = &mut self.session {
            let (w, h) = (s.page().width, s.page().height);
            self.view.clamp_center(w, h);
            let motion = (
                self.view.center_x - self.last_center.0,
                self.view.center_y - self.last_center.1,
            );
            self.last_center = (self.view.center_x, self.view.center_y);
            s.update_wanted(&self.view, motion);
            s.upload(ctx, UPLOAD_BYTES_PER_FRAME);
            let (_, panel, f) = s.panel_page();
            self.visible_units = self
                .view
                .visible_extent(w, h, 0.0)
                .map(|e| {
                    let e = Extent::new(e.x0 / f, e.y0 / f, e.x1.div_ceil(f), e.y1.div_ceil(f));
                    panel.grid.units_in(&e).take(100_000).collect()
                })
                .unwrap_or_default();
            if s.pending_uploads() > 0 {
                ctx.request_repaint();
            }
        }
    }

    /// Show the in-window file browser, in the open file's folder (or the home folder).
    fn open_browser(&mut self) {
        let dir = self
            .session
            .as_ref()
            .and_then(|s| s.image.path().parent().map(std::path::Path::to_path_buf))
            .filter(|d| d.is_dir())
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        self.browser = Some(crate::ui::file_browser::FileBrowser::new(dir));
    }

    /// The file dialog's answer, once it comes.
    fn poll_dialog(&mut self) {
        if let Some(rx) = &self.dialog {
            match rx.try_recv() {
                Ok((path, took)) => {
                    self.dialog = None;
                    match path {
                        Some(p) => self.open(p),
                        // Nothing, at once: no portal and no zenity answered (no person
                        // cancels a dialog this fast). Fall back to the in-window browser.
                        None if took < NO_DIALOG_WITHIN => {
                            self.no_native_dialog = true;
                            self.open_browser();
                        }
                        None => {}
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.dialog = None,
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
            }
        }
    }
}

impl eframe::App for TesseraApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let frame_start = Instant::now();
        if let Some(bench) = &mut self.bench {
            bench.record_work(frame.info().cpu_usage);
        }
        let ctx = ui.ctx().clone();
        self.poll_opening();
        self.poll_dialog();
        let mut cmds: Vec<Command> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .filter(|p| !p.as_os_str().is_empty())
                .map(Command::Open)
                .collect()
        });
        cmds.extend(self.keyboard(&ctx));
        if let Some(s) = &mut self.session {
            s.poll();
            self.errors.append(&mut s.new_errors);
        }

        egui::Panel::top("menu").show(ui, |ui| cmds.extend(self.menu_ui(ui)));
        self.error_banner_ui(ui, &mut cmds);
        self.goto_ui(&ctx, &mut cmds);
        self.open_url_ui(&ctx, &mut cmds);
        self.export_ui(&ctx);
        if let Some(b) = &mut self.browser {
            use crate::ui::file_browser::Action;
            match b.ui(&ctx) {
                Action::Open(p) => {
                    self.browser = None;
                    cmds.push(Command::Open(p));
                }
                Action::Close => self.browser = None,
                Action::None => {}
            }
        }
        egui::Panel::bottom("status").show(ui, |ui| {
            status_bar_ui(
                ui,
                self.session.as_ref(),
                &self.view,
                self.hover,
                &self.measure,
            );
        });
        if self.settings.show_panel
            && let Some(s) = &self.session
        {
            egui::Panel::right("descriptors")
                .resizable(true)
                .default_size(520.0)
                .show(ui, |ui| {
                    cmds.extend(descriptor_panel_ui(
                        ui,
                        s,
                        &mut self.settings.filter,
                        self.selected,
                        &self.visible_units,
                    ));
                });
        }
        if self.settings.show_bookmarks && self.session.is_some() {
            egui::Panel::left("bookmarks")
                .resizable(true)
                .default_size(260.0)
                .show(ui, |ui| self.bookmarks_ui(ui, &mut cmds));
        }
        if self.settings.show_display
            && let Some(d) = self.session.as_ref().and_then(|s| s.display.as_ref())
        {
            egui::Panel::left("display")
                .resizable(true)
                .default_size(340.0)
                .show(ui, |ui| cmds.extend(display_panel_ui(ui, d)));
        }
        egui::CentralPanel::no_frame().show(ui, |ui| {
            let canvas_rect = ui.available_rect_before_wrap();
            self.canvas_rect = canvas_rect;
            if self.fit_mode
                && let Some(s) = &self.session
            {
                self.view.resize(
                    f64::from(canvas_rect.width()),
                    f64::from(canvas_rect.height()),
                );
                self.view.fit(s.page().width, s.page().height);
            }
            if let Some(l) = self.pending_goto.take() {
                self.view.resize(
                    f64::from(canvas_rect.width()),
                    f64::from(canvas_rect.height()),
                );
                self.apply(Command::GoToLocation(l));
            }
            let fitted = self.view;
            let out = canvas_ui(
                ui,
                self.session.as_mut(),
                &mut self.view,
                self.settings.show_overlay,
                self.selected,
                &mut self.measure,
                &mut self.selection,
            );
            self.hover = out.hover_pixel;
            // A drag or a wheel step leaves fit mode.
            if self.view.zoom != fitted.zoom
                || self.view.center_x != fitted.center_x
                || self.view.center_y != fitted.center_y
            {
                self.fit_mode = false;
            }
            cmds.extend(out.commands);
            if self.settings.show_navigator
                && let Some(s) = &self.session
                && let Some(c) = navigator_ui(
                    ui,
                    canvas_rect,
                    &self.view,
                    s.page().width,
                    s.page().height,
                    &s.thumbnail(),
                )
            {
                cmds.push(c);
            }
        });
        for c in cmds {
            self.apply(c);
        }
        if let Some(bench) = &mut self.bench {
            let before = self.view;
            bench.step(
                &ctx,
                self.session.as_mut(),
                &mut self.view,
                self.opening.is_some(),
            );
            if self.view != before {
                self.fit_mode = false;
            }
        }
        self.update_session(&ctx);
        self.update_title(&ctx);
        if self.opening.is_some() {
            ctx.request_repaint_after(Duration::from_millis(50));
        }
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.build_progress().is_some())
        {
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        if let Some(bench) = &mut self.bench {
            bench
                .ui_times
                .push(frame_start.elapsed().as_secs_f64() * 1000.0);
        }
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        egui::Color32::from_gray(24).to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.settings);
    }
}

/// On the opening thread: attach kept levels, or prepare a build for a big file without any.
fn prepare_levels(image: Arc<OpenImage>, cfg: &LevelsConfig, build: bool) -> Opened {
    // A remote file is not downloaded whole on its own: Settings offers the build, with
    // the size it would fetch.
    if levels::attach_existing(&image, cfg)
        || !build
        || !levels::wanted(&image, cfg.auto_pixels)
        || image.source.is_remote()
    {
        return (image, None, None);
    }
    match levels::prepare_build(&image, cfg) {
        Ok(job) => (image, Some(job), None),
        Err(e) => (image, None, Some(format!("levels not built: {e}"))),
    }
}
