//! The in-window file browser: File > Open falls back to it where no native dialog exists (a
//! plain X server without a desktop portal or `zenity`: `rfd` then returns nothing at once).
//! It lists folders and the files Tessera reads, and shows the size, format and dimensions of
//! the selected file, read by a background thread (the UI thread never reads files).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};

/// File name endings Tessera reads (the formats are still told by their magic bytes).
pub const EXTENSIONS: &[&str] = &[
    "tif", "tiff", "btf", "tf8", "svs", "ome.tif", "png", "jpg", "jpeg", "jpe", "bmp", "dib",
    "pbm", "pgm", "ppm", "pnm", "pam", "pfm", "fits", "fit", "fts", "fz", "webp", "jp2", "j2k",
    "j2c", "jpx", "jpf", "jxl",
];

/// Whether `name` ends in one of [`EXTENSIONS`] (any case).
pub fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .any(|e| lower.len() > e.len() + 1 && lower.ends_with(&format!(".{e}")))
}

/// One row of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub dir: bool,
    pub size: u64,
}

/// Folders first, then images (or every file with `all`), each sorted by name; hidden ones
/// (a leading dot) left out.
pub fn list(dir: &Path, all: bool) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let Ok(e) = e else { continue };
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        // Follow links: a link to a folder is a folder.
        let Ok(meta) = std::fs::metadata(e.path()) else {
            continue;
        };
        let dir = meta.is_dir();
        if dir || all || is_image_name(&name) {
            out.push(Entry {
                name,
                dir,
                size: if dir { 0 } else { meta.len() },
            });
        }
    }
    out.sort_by(|a, b| {
        b.dir
            .cmp(&a.dir)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    Ok(out)
}

/// "12.3 MB".
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} KB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// What the header says of a file: "TIFF 24000x24000 RGB, 3 pages", or the error.
fn describe(path: &Path) -> String {
    let source = match crate::source::Source::open(path) {
        Ok(s) => s,
        Err(e) => return e.to_string(),
    };
    match crate::format::parse(&source) {
        Ok(layout) => {
            let p = &layout.pages[0];
            let pages = layout.pages.len();
            format!(
                "{} {}x{} {}{}",
                layout.format.name(),
                p.width,
                p.height,
                p.mode,
                if pages > 1 {
                    format!(", {pages} pages")
                } else {
                    String::new()
                }
            )
        }
        Err(e) => e.to_string(),
    }
}

/// The browser's state while it is shown.
pub struct FileBrowser {
    pub dir: PathBuf,
    dir_text: String,
    entries: Vec<Entry>,
    error: Option<String>,
    pub selected: Option<String>,
    /// The selected file's description, once the background thread has it.
    info: Option<(String, String)>,
    pending: Option<Receiver<(String, String)>>,
    pub show_all: bool,
    /// The "Open URL" field: an `https://` or `s3://` object instead of a file.
    pub url_text: String,
}

/// What the browser asks of the app this frame.
pub enum Action {
    None,
    Open(PathBuf),
    Close,
}

impl FileBrowser {
    pub fn new(dir: PathBuf) -> Self {
        let mut b = Self {
            dir_text: dir.display().to_string(),
            url_text: String::new(),
            dir,
            entries: Vec::new(),
            error: None,
            selected: None,
            info: None,
            pending: None,
            show_all: false,
        };
        b.refresh();
        b
    }

    fn refresh(&mut self) {
        match list(&self.dir, self.show_all) {
            Ok(e) => {
                self.entries = e;
                self.error = None;
            }
            Err(e) => {
                self.entries.clear();
                self.error = Some(format!("{}: {e}", self.dir.display()));
            }
        }
        self.dir_text = self.dir.display().to_string();
    }

    fn enter(&mut self, dir: PathBuf) {
        self.dir = dir;
        self.selected = None;
        self.info = None;
        self.refresh();
    }

    fn select(&mut self, name: &str, ctx: &egui::Context) {
        self.selected = Some(name.to_string());
        self.info = None;
        let path = self.dir.join(name);
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let key = name.to_string();
        let spawned = std::thread::Builder::new()
            .name("tessera-browse".into())
            .spawn(move || {
                let _ = tx.send((key, describe(&path)));
                ctx.request_repaint();
            });
        if spawned.is_ok() {
            self.pending = Some(rx);
        }
    }

    /// Show the browser window.
    pub fn ui(&mut self, ctx: &egui::Context) -> Action {
        if let Some(rx) = &self.pending
            && let Ok(info) = rx.try_recv()
        {
            self.pending = None;
            self.info = Some(info);
        }
        let mut action = Action::None;
        let mut open = true;
        let mut go: Option<PathBuf> = None;
        let mut pick: Option<String> = None;
        egui::Window::new("Open image")
            .open(&mut open)
            .collapsible(false)
            .default_size([560.0, 420.0])
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    if ui.button("Up").clicked()
                        && let Some(parent) = self.dir.parent()
                    {
                        go = Some(parent.to_path_buf());
                    }
                    let r =
                        ui.add(egui::TextEdit::singleline(&mut self.dir_text).desired_width(380.0));
                    if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                        go = Some(PathBuf::from(self.dir_text.trim()));
                    }
                    if ui.checkbox(&mut self.show_all, "all files").changed() {
                        go = Some(self.dir.clone());
                    }
                });
                ui.horizontal(|ui| {
                    ui.label("URL");
                    let r = ui.add(
                        egui::TextEdit::singleline(&mut self.url_text)
                            .hint_text("https://host/image.tif or s3://bucket/key.tif")
                            .desired_width(380.0),
                    );
                    let enter = r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    if (ui.button("Open URL").clicked() || enter) && !self.url_text.is_empty() {
                        match crate::source::remote::typed_url(&self.url_text) {
                            Ok(url) => action = Action::Open(url),
                            Err(e) => self.error = Some(e),
                        }
                    }
                });
                if let Some(e) = &self.error {
                    ui.colored_label(egui::Color32::from_rgb(230, 90, 90), e);
                }
                ui.separator();
                egui::ScrollArea::vertical()
                    .max_height(280.0)
                    .auto_shrink([false, false])
                    .show(ui, |ui| {
                        for e in &self.entries {
                            let label = if e.dir {
                                format!("[{}]", e.name)
                            } else {
                                format!("{}    {}", e.name, human_size(e.size))
                            };
                            let chosen = self.selected.as_deref() == Some(e.name.as_str());
                            let r = ui.selectable_label(chosen, label);
                            if r.double_clicked() {
                                if e.dir {
                                    go = Some(self.dir.join(&e.name));
                                } else {
                                    action = Action::Open(self.dir.join(&e.name));
                                }
                            } else if r.clicked() {
                                if e.dir {
                                    go = Some(self.dir.join(&e.name));
                                } else {
                                    pick = Some(e.name.clone());
                                }
                            }
                        }
                    });
                ui.separator();
                match (&self.selected, &self.info) {
                    (Some(name), Some((key, info))) if key == name => {
                        ui.label(format!("{name}: {info}"));
                    }
                    (Some(name), _) => {
                        ui.horizontal(|ui| {
                            ui.spinner();
                            ui.label(format!("{name}: reading its header"));
                        });
                    }
                    (None, _) => {
                        ui.label("Select an image");
                    }
                }
                ui.horizontal(|ui| {
                    let can_open = self.selected.is_some();
                    if ui
                        .add_enabled(can_open, egui::Button::new("Open"))
                        .clicked()
                        && let Some(name) = &self.selected
                    {
                        action = Action::Open(self.dir.join(name));
                    }
                    if ui.button("Cancel").clicked() {
                        action = Action::Close;
                    }
                });
            });
        if let Some(dir) = go {
            self.enter(dir);
        }
        if let Some(name) = pick {
            self.select(&name, ctx);
        }
        if !open {
            action = Action::Close;
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_shows_folders_then_images() {
        let dir = tempfile_dir();
        std::fs::create_dir(dir.join("sub")).expect("dir");
        for f in ["b.TIF", "a.png", "notes.txt", ".hidden.png", "x.ome.tif"] {
            std::fs::write(dir.join(f), b"12345").expect("write");
        }
        let names: Vec<String> = list(&dir, false)
            .expect("list")
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["sub", "a.png", "b.TIF", "x.ome.tif"]);
        assert_eq!(
            list(&dir, true).expect("list").len(),
            5,
            "all files but hidden"
        );
        assert!(!is_image_name(".png") && is_image_name("slide.SVS"));
        assert_eq!(human_size(1_500_000), "1.5 MB");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("tessera-browse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }
}
