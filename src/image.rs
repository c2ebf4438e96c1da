//! An open image: its source and parsed layout, shared by the loader's workers.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, FormatError};
use crate::format::{self, Access, Layout, Page};
use crate::pieces::LevelSource;
use crate::source::Source;

/// A file opened for viewing.
#[derive(Debug)]
pub struct OpenImage {
    pub source: Arc<Source>,
    pub layout: Layout,
    /// Levels Tessera built for page 0, attached at most once (found kept from an earlier
    /// run, or created by a build that fills them in while the image is open).
    levels: OnceLock<crate::levels::BuiltLevels>,
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
        let index = layout.pages.first().and_then(|p| match p.storage {
            format::Storage::Stream {
                codec: format::Codec::Zip,
                interlaced: false,
                ..
            }
            | format::Storage::Stream {
                restart: Some(_), ..
            }
            | format::Storage::Stream { scan: Some(_), .. } => {
                Some(crate::index::StreamIndex::new(p.grid.unit_rows()))
            }
            _ => None,
        });
        Ok(Arc::new(Self {
            source: Arc::new(source),
            layout,
            levels: OnceLock::new(),
            index,
        }))
    }

    /// The built levels attached to this image, if any.
    pub fn built_levels(&self) -> Option<&crate::levels::BuiltLevels> {
        self.levels.get()
    }

    /// Attach built levels; false (and `levels` dropped) when some are attached already.
    pub fn set_built_levels(&self, levels: crate::levels::BuiltLevels) -> bool {
        self.levels.set(levels).is_ok()
    }

    /// Keep page 0's stream index in `dir` (and load a kept one now). Returns whether a
    /// complete index was loaded.
    pub fn attach_index(&self, dir: &Path) -> bool {
        let Some(index) = &self.index else {
            return false;
        };
        let Ok(identity) = crate::levels::sidecar::identity(self.path(), 0) else {
            return false;
        };
        index.attach_store(crate::index::file_for(dir, self.path()), identity)
    }

    /// Descriptor `index` of page `page`, with its checkpoint when the page is an indexed
    /// stream.
    pub fn descriptor(&self, page: usize, index: u64) -> Option<format::TileDescriptor> {
        let p = self.layout.pages.get(page)?;
        Some(match (&self.index, page) {
            (Some(ix), 0) => p.stream_descriptor(index, ix),
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
