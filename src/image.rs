//! An open image: its source and parsed layout, shared by the loader's workers.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, FormatError};
use crate::format::{self, Access, Layout, Page};
use crate::pieces::LevelSource;
use crate::progress::Progress;
use crate::sidecar::LevelPlan;
use crate::source::Source;
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// A file opened for viewing.
#[derive(Debug)]
pub struct OpenImage {
    pub source: Arc<Source>,
    pub layout: Layout,
    /// Levels Tessera built for page 0, attached at most once (found kept from an earlier
    /// run, or created by a build that fills them in while the image is open).
    levels: OnceLock<BuiltLevels>,
    /// Checkpoints into page 0's stream (PNG, JPEG), filled in by the passes that run.
    pub index: Option<crate::index::StreamIndex>,
}

impl OpenImage {
    /// Open and parse the header. Reads only headers (and, for sequential encodings that can
    /// be indexed, one pass to find band offsets).
    pub fn open(path: &Path) -> Result<Arc<Self>, Error> {
        Self::open_with_progress(path, &crate::progress::Progress::new())
    }

    /// [`OpenImage::open`], reporting (and cancellable through) `progress`.
    pub fn open_with_progress(
        path: &Path,
        progress: &crate::progress::Progress,
    ) -> Result<Arc<Self>, Error> {
        let mut source = Source::open(path)?;
        let layout = format::parse_with_progress(&source, progress).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            source: e,
        })?;
        if layout.pages.iter().any(|p| p.access() == Access::Mmap) {
            source.enable_mmap();
        }
        let index = layout
            .pages
            .first()
            .filter(|p| {
                p.stream_kind()
                    .is_some_and(format::StreamKind::has_checkpoints)
            })
            .map(|p| crate::index::StreamIndex::new(p.grid.unit_rows()));
        Ok(Arc::new(Self {
            source: Arc::new(source),
            layout,
            levels: OnceLock::new(),
            index,
        }))
    }

    /// The built levels attached to this image, if any.
    pub fn built_levels(&self) -> Option<&BuiltLevels> {
        self.levels.get()
    }

    /// What identifies this image for the kept levels and indexes: path, size and mtime of a
    /// local file; URL, size and version (ETag or date) of a remote object.
    pub fn identity(&self) -> std::io::Result<String> {
        match self.source.remote() {
            Some(r) => Ok(format!(
                "tessera levels v1\nsource: {}\nsize: {}\nversion: {}\npage: 0\n",
                r.url(),
                r.len(),
                r.version()
            )),
            None => crate::store::identity(self.path(), 0),
        }
    }

    /// Attach built levels; false (and `levels` dropped) when some are attached already.
    pub fn set_built_levels(&self, levels: BuiltLevels) -> bool {
        self.levels.set(levels).is_ok()
    }

    /// Keep page 0's stream index in `dir` (and load a kept one now). Returns whether a
    /// complete index was loaded.
    pub fn attach_index(&self, dir: &Path) -> bool {
        let Some(index) = &self.index else {
            return false;
        };
        let Ok(identity) = self.identity() else {
            return false;
        };
        index.attach_store(crate::index::file_for(dir, self.path()), identity)
    }

    /// Descriptor `index` of page `page`, with its checkpoint when the page is an indexed
    /// stream.
    pub fn descriptor(&self, page: usize, index: u64) -> Option<format::TileDescriptor> {
        let p = self.layout.pages.get(page)?;
        Some(match (&self.index, page) {
            (Some(ix), 0) => ix.descriptor(p, index),
            _ => p.descriptor(index),
        })
    }

    /// The image a piece source reads from: this file, or the sidecar of its built levels.
    pub fn source_image(&self, source: LevelSource) -> Option<&OpenImage> {
        match source {
            LevelSource::Page(_) | LevelSource::Preview { .. } => Some(self),
            LevelSource::Built(_) => self.built_levels().map(|b| b.image.as_ref()),
        }
    }

    /// The page a piece source reads (a preview reads its page of the file).
    pub fn source_page(&self, source: LevelSource) -> Option<&Page> {
        let index = match source {
            LevelSource::Page(p) | LevelSource::Built(p) | LevelSource::Preview { page: p, .. } => {
                p
            }
        };
        self.source_image(source)?.layout.pages.get(index as usize)
    }

    /// Bytes read from the file and from its built levels.
    pub fn bytes_read(&self) -> u64 {
        self.source.bytes_read()
            + self
                .built_levels()
                .map_or(0, |b| b.image.source.bytes_read())
    }

    /// Read calls on the file and on its built levels.
    pub fn read_calls(&self) -> u64 {
        self.source.read_calls()
            + self
                .built_levels()
                .map_or(0, |b| b.image.source.read_calls())
    }

    pub fn path(&self) -> &Path {
        self.source.path()
    }

    pub fn page(&self, index: u32) -> Result<&Page, Error> {
        self.layout
            .pages
            .get(index as usize)
            .ok_or_else(|| Error::Request {
                path: self.path().to_path_buf(),
                msg: format!(
                    "page {index} does not exist (the file has {})",
                    self.layout.pages.len()
                ),
            })
    }

    /// Wrap a decoder error with the file name and the unit's first descriptor.
    pub fn descriptor_error(&self, unit: u64, source: FormatError) -> Error {
        Error::Descriptor {
            path: self.path().to_path_buf(),
            index: unit,
            source,
        }
    }
}

/// Where a build stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildState {
    Building,
    Complete,
    Cancelled,
    Failed(String),
}

/// Live progress of a set of levels, shared by the builder and its readers.
#[derive(Debug)]
pub struct LevelStatus {
    rows: Vec<AtomicU32>,
    state: Mutex<BuildState>,
    /// Source rows consumed, and the cancel switch.
    pub progress: Progress,
}

impl LevelStatus {
    pub(crate) fn new(plan: &LevelPlan, complete: bool) -> Self {
        Self {
            rows: plan
                .levels
                .iter()
                .map(|l| AtomicU32::new(if complete { l.height } else { 0 }))
                .collect(),
            state: Mutex::new(if complete {
                BuildState::Complete
            } else {
                BuildState::Building
            }),
            progress: Progress::new(),
        }
    }

    /// Rows of level `index` (0: the finest built level) written so far.
    pub fn rows_done(&self, index: usize) -> u32 {
        self.rows
            .get(index)
            .map_or(0, |r| r.load(Ordering::Acquire))
    }

    pub(crate) fn set_rows(&self, index: usize, rows: u32) {
        if let Some(r) = self.rows.get(index) {
            r.store(rows, Ordering::Release);
        }
    }

    pub fn state(&self) -> BuildState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_state(&self, s: BuildState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

/// Built levels attached to an image: the sidecar, opened as an image of its own (one page
/// per level), and how far its build has come.
#[derive(Debug)]
pub struct BuiltLevels {
    pub image: Arc<OpenImage>,
    pub plan: LevelPlan,
    pub status: Arc<LevelStatus>,
    /// Where the levels are kept for next time (`None`: a temporary file, removed on drop).
    pub kept_at: Option<PathBuf>,
    pub(crate) temp: Option<PathBuf>,
}

impl BuiltLevels {
    /// Full-resolution pixels per pixel of sidecar page `index`.
    pub fn factor(&self, index: usize) -> u32 {
        self.plan.levels.get(index).map_or(1, |l| l.factor)
    }

    /// Whether rows `..y1` of sidecar page `index` are written.
    pub fn rows_ready(&self, index: usize, y1: u32) -> bool {
        self.status.rows_done(index) >= y1
    }
}

impl Drop for BuiltLevels {
    fn drop(&mut self) {
        if let Some(t) = &self.temp {
            let _ = fs::remove_file(t);
        }
    }
}
