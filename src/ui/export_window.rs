//! The export window (`Ctrl+E`): a region (the selection, or the view), a level, a format
//! (PNG as displayed; TIFF tiled with deflate, ZSTD or JPEG, optionally with a pyramid, and
//! for data pages the native samples), a file (typed, or picked in a native save dialog), and
//! the export running in the background with its progress and Cancel. The output is turned as
//! the view is.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use crate::convert::{Compression, ConvertRequest};
use crate::export::ExportRequest;
use crate::format::Extent;
use crate::orientation::Orientation;
use crate::progress::Progress;
use crate::session::Session;

/// An export under way: its progress (and Cancel), and where its result arrives.
pub type RunningExport = (Arc<Progress>, Receiver<Result<(), String>>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// 8-bit RGBA as displayed.
    Png,
    /// Tiled (Big)TIFF.
    Tiff,
}

/// What the window asks the app for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportAction {
    None,
    Start,
    Close,
}

pub struct ExportWindow {
    /// `X,Y,W,H` in full-resolution pixels of the page.
    pub region: String,
    /// Shrink factor (1 = full resolution).
    pub scale: u32,
    pub format: ExportFormat,
    /// TIFF tiles.
    pub compression: Compression,
    /// TIFF: reduced-resolution pages down to one tile.
    pub pyramid: bool,
    /// TIFF of a data page: the stored samples rather than the displayed colours.
    pub native: bool,
    pub path: String,
    pub running: Option<RunningExport>,
    /// What the last export came to.
    pub message: Option<String>,
    /// The native save dialog's answer, while it is open.
    save_dialog: Option<Receiver<Option<PathBuf>>>,
}

/// `stem-X-Y-WxH.ext` beside the image.
fn default_path(image: &Path, e: &Extent, ext: &str) -> String {
    let stem = image
        .file_stem()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "export".into());
    let dir = image.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = format!(
        "{stem}-{}-{}-{}x{}.{ext}",
        e.x0,
        e.y0,
        e.width(),
        e.height()
    );
    dir.join(name).display().to_string()
}

impl ExportWindow {
    /// The window for `region` of the session's page; data pages default to their native
    /// samples when written as TIFF.
    pub fn new(session: &Session, region: Extent) -> Self {
        Self {
            region: format!(
                "{},{},{},{}",
                region.x0,
                region.y0,
                region.width(),
                region.height()
            ),
            scale: 1,
            format: ExportFormat::Png,
            compression: Compression::Deflate,
            pyramid: false,
            native: session.page().data.is_some(),
            path: default_path(session.image.path(), &region, "png"),
            running: None,
            message: None,
            save_dialog: None,
        }
    }

    /// Switch the format, and the file name's extension with it.
    pub fn set_format(&mut self, format: ExportFormat) {
        self.format = format;
        let ext = match format {
            ExportFormat::Png => "png",
            ExportFormat::Tiff => "tif",
        };
        let p = PathBuf::from(self.path.trim());
        if !p.as_os_str().is_empty() {
            self.path = p.with_extension(ext).display().to_string();
        }
    }

    /// Start the export on a background thread: `orient` is the view's orientation.
    pub fn start(&mut self, session: &Session, orient: Orientation, ctx: &egui::Context) {
        let region = match crate::render::parse_extent(&self.region).filter(|e| !e.is_empty()) {
            Some(r) => r,
            None => {
                self.message = Some(format!("region '{}': expected X,Y,W,H", self.region));
                return;
            }
        };
        let out = PathBuf::from(self.path.trim());
        if out.as_os_str().is_empty() {
            self.message = Some("choose a file to write".into());
            return;
        }
        let image = session.image.clone();
        let mapping = session.display.as_ref().map(|d| d.compiled().clone());
        let progress = Arc::new(Progress::new());
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let p = progress.clone();
        let page = session.page;
        let (format, scale, compression, pyramid, native) = (
            self.format,
            self.scale.max(1),
            self.compression,
            self.pyramid,
            self.native,
        );
        let spawned = std::thread::Builder::new()
            .name("tessera-export".into())
            .spawn(move || {
                let cache_bytes = 64 << 20;
                let r = match format {
                    ExportFormat::Png => {
                        let req = ExportRequest {
                            page,
                            region,
                            scale,
                            out,
                            cache_bytes,
                            orient,
                        };
                        crate::export::export_png(image, &req, mapping.as_ref(), &p)
                    }
                    ExportFormat::Tiff => {
                        let req = ConvertRequest {
                            page,
                            region,
                            scale,
                            orient,
                            tile: 256,
                            compression,
                            pyramid,
                            native,
                            out,
                            cache_bytes,
                        };
                        crate::convert::convert(image, &req, mapping.as_ref(), &p)
                    }
                };
                let _ = tx.send(r.map_err(|e| e.to_string()));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.running = Some((progress, rx));
                self.message = None;
            }
            Err(e) => self.message = Some(format!("cannot start the export: {e}")),
        }
    }

    /// Ask the desktop's save dialog for a file (in the background; the typed path stays
    /// usable where there is no dialog).
    fn save_as(&mut self, ctx: &egui::Context) {
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let current = PathBuf::from(self.path.trim());
        let spawned = std::thread::Builder::new()
            .name("tessera-save-dialog".into())
            .spawn(move || {
                let mut d = rfd::FileDialog::new().set_title("Export region");
                if let Some(dir) = current.parent().filter(|d| d.is_dir()) {
                    d = d.set_directory(dir);
                }
                if let Some(name) = current.file_name() {
                    d = d.set_file_name(name.to_string_lossy());
                }
                let _ = tx.send(d.save_file());
                ctx.request_repaint();
            });
        if spawned.is_ok() {
            self.save_dialog = Some(rx);
        }
    }

    /// Draw the window; `data` says the page holds data samples.
    pub fn ui(&mut self, ctx: &egui::Context, data: bool, orient: Orientation) -> ExportAction {
        if let Some((_, rx)) = &self.running
            && let Ok(r) = rx.try_recv()
        {
            self.running = None;
            self.message = Some(match r {
                Ok(()) => format!("saved {}", self.path.trim()),
                Err(e) => e,
            });
        }
        if let Some(rx) = &self.save_dialog
            && let Ok(picked) = rx.try_recv()
        {
            self.save_dialog = None;
            if let Some(p) = picked {
                self.path = p.display().to_string();
            }
        }
        let mut open = true;
        let mut action = ExportAction::None;
        egui::Window::new("Export region")
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("export").num_columns(2).show(ui, |ui| {
                    ui.label("Region X,Y,W,H");
                    ui.add(egui::TextEdit::singleline(&mut self.region).hint_text("x,y,w,h"));
                    ui.end_row();
                    ui.label("Level");
                    // Named, for screen readers (and kittest's accessibility check).
                    egui::ComboBox::new("export-scale", "of full resolution")
                        .selected_text(format!("1/{}", self.scale))
                        .show_ui(ui, |ui| {
                            for k in [1u32, 2, 4, 8, 16, 32, 64] {
                                ui.selectable_value(&mut self.scale, k, format!("1/{k}"));
                            }
                        });
                    ui.end_row();
                    ui.label("Format");
                    ui.horizontal(|ui| {
                        let mut f = self.format;
                        ui.radio_value(&mut f, ExportFormat::Png, "PNG");
                        ui.radio_value(&mut f, ExportFormat::Tiff, "TIFF (tiled)");
                        if f != self.format {
                            self.set_format(f);
                        }
                    });
                    ui.end_row();
                    if self.format == ExportFormat::Tiff {
                        ui.label("Compression");
                        ui.horizontal(|ui| {
                            let c = &mut self.compression;
                            ui.radio_value(c, Compression::Deflate, "deflate");
                            ui.radio_value(c, Compression::Zstd, "ZSTD");
                            ui.radio_value(c, Compression::Jpeg(85), "JPEG");
                            ui.radio_value(c, Compression::None, "none");
                        });
                        ui.end_row();
                        ui.label("");
                        ui.checkbox(&mut self.pyramid, "Pyramid (reduced levels)");
                        ui.end_row();
                        if data {
                            ui.label("Samples");
                            ui.horizontal(|ui| {
                                ui.radio_value(&mut self.native, true, "native");
                                ui.radio_value(&mut self.native, false, "as displayed");
                            });
                            ui.end_row();
                        }
                    }
                    ui.label("File");
                    ui.horizontal(|ui| {
                        ui.add(
                            egui::TextEdit::singleline(&mut self.path)
                                .hint_text("file.png or file.tif")
                                .desired_width(320.0),
                        );
                        if ui
                            .add_enabled(
                                self.save_dialog.is_none(),
                                egui::Button::new("Save as..."),
                            )
                            .clicked()
                        {
                            self.save_as(ctx);
                        }
                    });
                    ui.end_row();
                });
                if data && (self.format == ExportFormat::Png || !self.native) {
                    ui.label("Data is written as displayed (the current mapping).");
                }
                if !orient.is_identity() {
                    ui.label(format!("Written {} as on screen.", orient.describe()));
                }
                match &self.running {
                    Some((p, _)) => {
                        ui.horizontal(|ui| {
                            ui.add(
                                egui::ProgressBar::new(p.fraction().unwrap_or(0.0))
                                    .show_percentage(),
                            );
                            if ui.button("Cancel export").clicked() {
                                p.cancel();
                            }
                        });
                    }
                    None => {
                        if ui.button("Export").clicked() {
                            action = ExportAction::Start;
                        }
                    }
                }
                if let Some(m) = &self.message {
                    ui.label(m.as_str());
                }
            });
        if !open {
            if let Some((p, _)) = &self.running {
                p.cancel();
            }
            action = ExportAction::Close;
        }
        if self.running.is_some() || self.save_dialog.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        action
    }
}
