//! Tessera: a viewer for images larger than RAM.
//!
//! A file is parsed into tile descriptors in PIL's sense, `(decoder, extent, offset, args)`;
//! only the descriptors that intersect the view are read, through `mmap` where the stored
//! layout is what we keep in memory and `pread` otherwise; decoded pieces live in a byte-bounded
//! LRU cache.
//!
//! ```text
//! path ─▶ source::Source (pread | mmap, SIGBUS-safe; every unsafe block lives in `sys`)
//!            │
//!            ▼
//!        format::parse ─▶ Layout { pages: [Page { grid, storage, raw format }] }
//!            │
//!            ▼
//!        image::OpenImage (+ built levels, stream index) ─▶ pyramid::Pyramid
//!            │                                               (file pages, built levels,
//!            │                                                subsampled previews)
//! view ─▶ view::plan (pure) │ render region ─▶ Pyramid::for_scale
//!            ▼
//!        pieces (source, unit, column window) ─▶ cache hit? ─▶ compose / upload
//!                                                   │ miss
//!                                                   ▼
//!                      loader (named workers, newest first, stale requests dropped)
//!                      read bytes ─▶ decode (raw | TIFF chunk | indexed band | stream by
//!                      kind | subsampled preview) ─▶ cache ─▶ bounded result channel
//! ```
//!
//! PNG and JPEG streams get an `index::StreamIndex`: checkpoints recorded by the first pass,
//! so that later bands decode from the nearest one instead of from the start; how a stream's
//! bands are reached is its `format::StreamKind`.
//!
//! Zoomed out, views and scaled renders read the levels of the page's [`pyramid::Pyramid`]:
//! a TIFF's reduced pages, or levels `levels` builds in one box-filtering pass into a sidecar
//! BigTIFF (laid out by `sidecar`, kept in `store`) that is opened as an image of its own and
//! attached to the file's [`OpenImage`].
//!
//! Scientific pages (16-bit gray, signed, float, 32/64-bit, many channels, FITS) decode to
//! native samples (`data::SampleBuf`, described by the page's `data::DataInfo`) and are
//! coloured by a `display::Mapping` (window, transfer, colormap, channel colours) compiled into
//! lookup tables, in `render` and when the viewer uploads textures; auto contrast comes from
//! `data::stats`. A change of mapping re-maps cached pieces, never the file.
//!
//! The window (`app`) owns a `session::Session` per open image: each frame it plans the view
//! (`view::plan`), drains loader results, uploads at most a few MB of textures into
//! `textures::TextureCache` and paints (`ui::canvas`); the UI thread never reads the file or
//! decodes. Panels return `ui::Command`s that the app applies once a frame.

pub mod app;
pub mod bench_view;
pub mod cache;
pub mod convert;
pub mod data;
pub mod decode;
pub mod display;
pub mod error;
pub mod export;
pub mod format;
pub mod image;
pub mod index;
pub mod info;
pub mod levels;
pub mod loader;
pub mod logging;
pub mod orientation;
pub mod physical;
pub mod pieces;
pub mod progress;
pub mod pyramid;
pub mod render;
pub mod sample;
pub mod session;
pub mod sidecar;
pub mod source;
pub mod stats;
pub mod store;
#[allow(unsafe_code)] // reason: the one module that may: system calls, the file mapping, libjpeg
pub mod sys;
pub mod textures;
pub mod ui;
pub mod view;

pub use error::{Error, FormatError};
pub use image::OpenImage;
