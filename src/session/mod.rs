//! One image open in the viewer: its pyramid, loader, CPU cache, GPU textures, the state of
//! every descriptor the view has touched and the level build running for it. The UI asks
//! for pieces (through the pure [`crate::view::plan`]) and paints what is ready; it never
//! reads the file or decodes.

pub mod build;
pub mod display;
pub mod states;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cache::PieceCache;
use crate::decode::Piece;
use crate::format::{Extent, Page};
use crate::image::OpenImage;
use crate::levels::{BuildJob, BuildState};
use crate::loader::Loader;
use crate::pieces::{Geometry, LevelSource, PieceKey, scale_up};
use crate::pyramid::Pyramid;
use crate::textures::TextureCache;
use crate::view::plan::{self, Levels, Plan, ViewMode};
use crate::view::viewport::Viewport;
pub use build::LevelBuild;
pub use display::DisplayState;
pub use states::{DescriptorStates, UnitInfo, UnitState};

pub struct Session {
    pub image: Arc<OpenImage>,
    pub page: u32,
    pub loader: Loader,
    pub cache: Arc<Mutex<PieceCache>>,
    pub textures: TextureCache,
    uploads: VecDeque<(PieceKey, Arc<Piece>)>,
    /// Live state of every descriptor the view has touched.
    pub states: DescriptorStates,
    pyramid: Pyramid,
    /// Rows written of each pyramid level (built levels fill in while the build runs).
    ready: Vec<u32>,
    build: Option<LevelBuild>,
    plan: Plan,
    /// Index into the pyramid of the level whose descriptors the panel lists.
    pub panel_level: usize,
    /// Set once the view has asked for its first pieces: a level build waits for that, so
    /// the first picture does not queue behind the build's reads.
    asked: Arc<AtomicBool>,
    /// New errors for the banner (drained by the app).
    pub new_errors: Vec<String>,
    /// The display mapping of a data page (none for pictures).
    pub display: Option<DisplayState>,
    pub opened_at: Instant,
    /// The pages a user can show (see [`shown_pages`]), found once.
    pages: Vec<u32>,
}

/// Time one frame may spend mapping and uploading pieces: a display change re-maps the
/// screen over a few frames, centre first, instead of stalling one.
pub const UPLOAD_TIME: std::time::Duration = std::time::Duration::from_millis(6);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    pub fn new(image: Arc<OpenImage>, cache_budget: usize, texture_budget: usize) -> Self {
        Self::with_page(image, 0, cache_budget, texture_budget)
    }

    /// A session showing page `page` of the file (page 0 if there is no such page).
    pub fn with_page(
        image: Arc<OpenImage>,
        page: u32,
        cache_budget: usize,
        texture_budget: usize,
    ) -> Self {
        let mut cache = PieceCache::new(cache_budget);
        cache.track_evictions();
        let cache = Arc::new(Mutex::new(cache));
        // Leave a core to the UI and the renderer: on a software renderer they share the CPU
        // with the decoders, and a busy core shows as frame-time spikes.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = cores.saturating_sub(1).clamp(1, 8);
        let loader = Loader::new(image.clone(), cache.clone(), workers, 4096);
        let page = if (page as usize) < image.layout.pages.len() {
            page
        } else {
            0
        };
        let pyramid = pyramid_of(&image, page);
        let ready = pyramid.ready_rows(&image);
        let display = image.layout.pages[page as usize]
            .data
            .clone()
            .map(DisplayState::new);
        Self {
            pages: shown_pages(&image),
            display,
            build: None,
            panel_level: 0,
            asked: Arc::new(AtomicBool::new(false)),
            image,
            page,
            pyramid,
            ready,
            plan: Plan::nothing(ViewMode::Sharp),
            loader,
            cache,
            textures: TextureCache::new(texture_budget),
            uploads: VecDeque::new(),
            states: DescriptorStates::default(),
            new_errors: Vec::new(),
            opened_at: Instant::now(),
        }
    }

    /// The pages a user can show: those that are not reduced copies of another page.
    pub fn pages(&self) -> &[u32] {
        &self.pages
    }

    /// The full-resolution page shown.
    pub fn page(&self) -> &Page {
        &self.image.layout.pages[self.page as usize]
    }

    pub fn pyramid(&self) -> &Pyramid {
        &self.pyramid
    }

    /// The pyramid with how far each level is written, for geometric questions.
    pub fn levels(&self) -> Levels<'_> {
        Levels {
            pyramid: &self.pyramid,
            ready: &self.ready,
        }
    }

    /// Index of the pyramid level the view is drawn from.
    pub fn level(&self) -> usize {
        self.plan.level
    }

    /// The pyramid level a piece belongs to.
    pub fn level_of(&self, key: &PieceKey) -> Option<usize> {
        self.pyramid.index_of(key.source)
    }

    pub fn mode(&self) -> ViewMode {
        self.plan.mode
    }

    /// Part of the view (full-resolution pixels) waiting for levels still being built.
    pub fn unbuilt(&self) -> Option<Extent> {
        self.plan.unbuilt
    }

    /// Pieces the current view paints, coarse fill-in first.
    pub fn wanted(&self) -> &[PieceKey] {
        &self.plan.wanted
    }

    /// Run `job` (levels being built for this image) in the background; the view uses each
    /// strip as it lands and the loader's requests go first.
    pub fn start_build(&mut self, mut job: BuildJob, notify: crate::loader::Notify) {
        job.memory_budget = lock(&self.cache).budget();
        job.background = true;
        // With previews standing in, the build can wait for idle CPU; without, the view is
        // waiting for it.
        job.low_priority = crate::decode::subsample::supported(self.page());
        let busy = self.loader.busy_signal();
        let asked = self.asked.clone();
        let wait = move || !asked.load(Ordering::Acquire) || busy();
        match LevelBuild::start(job, wait, notify) {
            Ok(b) => self.build = Some(b),
            Err(e) => self
                .new_errors
                .push(format!("cannot start building levels: {e}")),
        }
        // The new levels join the pyramid (they fill in as strips land).
        self.pyramid = pyramid_of(&self.image, self.page);
        self.ready = self.pyramid.ready_rows(&self.image);
    }

    /// The state of the built levels, if the image has any.
    pub fn build_state(&self) -> Option<BuildState> {
        self.image.built_levels().map(|l| l.status.state())
    }

    /// Fraction of the level build done, while one runs.
    pub fn build_progress(&self) -> Option<f32> {
        let l = self.image.built_levels()?;
        (l.status.state() == BuildState::Building)
            .then(|| l.status.progress.fraction().unwrap_or(0.0))
    }

    /// Stop the level build (what was written so far stays in use until the image closes).
    pub fn cancel_build(&self) {
        if let Some(b) = &self.build {
            b.cancel();
        }
    }

    /// Drain loader results: update states, queue wanted pieces for upload.
    pub fn poll(&mut self) {
        if let Some(Some(outcome)) = self.build.as_mut().map(LevelBuild::poll) {
            self.build = None;
            if let Err(e) = outcome {
                self.new_errors.push(e);
            }
        }
        while let Ok(loaded) = self.loader.results().try_recv() {
            let key = loaded.key;
            match loaded.result {
                Ok(piece) => {
                    let decoded = (!loaded.cached).then_some(loaded.elapsed);
                    self.states.loaded(&key, decoded);
                    if let Some(d) = &mut self.display {
                        d.add_piece(&key, &piece);
                    }
                    if self.plan.wanted.contains(&key) {
                        self.uploads.push_back((key, piece));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    if self.states.failed(&key, msg.clone(), loaded.elapsed) {
                        self.new_errors.push(msg);
                    }
                }
            }
        }
        let evicted = lock(&self.cache).take_evicted();
        for key in &evicted {
            self.states.evicted(key);
        }
    }

    /// A key's extent in full-resolution pixels.
    pub fn image_extent(&self, key: &PieceKey) -> Extent {
        self.levels().image_extent(key)
    }

    /// Plan the view and ask the loader for what is missing (see [`crate::view::plan`]).
    pub fn update_wanted(&mut self, view: &Viewport, motion: (f64, f64)) {
        self.ready = self.pyramid.ready_rows(&self.image);
        let budget = lock(&self.cache).budget() as u64;
        self.plan = plan::plan(self.levels(), view, motion, budget);
        let mut missing = Vec::new();
        let generation = self.generation();
        {
            let mut cache = lock(&self.cache);
            for key in &self.plan.wanted {
                // A texture of an older display mapping stays on screen until re-mapped.
                if self.textures.is_current(key, generation) {
                    continue;
                }
                match cache.get(key) {
                    Some(piece) => {
                        if !self.uploads.iter().any(|(k, _)| k == key) {
                            self.uploads.push_back((*key, piece));
                        }
                    }
                    None => missing.push(*key),
                }
            }
        }
        for key in &missing {
            self.states.asked(key);
        }
        missing.retain(|k| !self.states.is_failed(k));
        self.loader.replace(&missing);
        self.asked.store(true, Ordering::Release);
        // Drop queued uploads nobody wants any more.
        let wanted = &self.plan.wanted;
        self.uploads.retain(|(k, _)| wanted.contains(k));
    }

    /// The display mapping's generation (0 for pictures): textures remember it.
    pub fn generation(&self) -> u64 {
        self.display.as_ref().map_or(0, DisplayState::generation)
    }

    /// Upload queued pieces, at most `budget_bytes` and [`UPLOAD_TIME`] (but at least one
    /// piece) this frame. Data pieces are mapped to colours here, from their native samples.
    pub fn upload(&mut self, ctx: &egui::Context, budget_bytes: usize) -> usize {
        let max_side = ctx.input(|i| i.max_texture_side);
        let opaque = !self.page().mode.has_alpha();
        let started = Instant::now();
        let mut done = 0;
        // Re-maps of textures already on screen (a display change) get a quarter of the
        // budget: while a handle is dragged the centre follows every frame and the frame
        // costs what a pan frame costs; the rest catches up when the drag stops.
        let mut remapped = 0;
        while let Some((key, piece)) = self.uploads.pop_front() {
            if self.textures.contains(&key) {
                if remapped >= budget_bytes / 4 {
                    self.uploads.push_front((key, piece));
                    break;
                }
                remapped += piece.extent.pixels() as usize * 4;
            }
            match (&self.display, piece.samples()) {
                (Some(d), Some((buf, _))) => {
                    let rgba = d.compiled().map(buf, piece.extent.pixels() as usize);
                    done += self.textures.upload_rgba(
                        ctx,
                        key,
                        piece.extent,
                        &rgba,
                        max_side,
                        !d.info.may_have_holes(),
                        d.generation(),
                    );
                }
                _ => done += self.textures.upload(ctx, key, &piece, max_side, opaque),
            }
            if done >= budget_bytes || started.elapsed() >= UPLOAD_TIME {
                break;
            }
        }
        done
    }

    /// Change the display mapping by hand (the panel); textures are re-mapped from the cache.
    pub fn edit_display(&mut self, m: crate::display::Mapping) {
        if let Some(d) = &mut self.display {
            d.edit(m);
        }
    }

    /// Auto contrast from the statistics of what has arrived.
    pub fn auto_contrast(&mut self) {
        if let Some(d) = &mut self.display {
            d.auto_now();
        }
    }

    /// Windows from the pieces on screen now.
    pub fn fit_contrast_to_view(&mut self) {
        let level = self.plan.level;
        let pieces: Vec<Arc<Piece>> = {
            let mut cache = lock(&self.cache);
            self.plan
                .wanted
                .iter()
                .filter(|k| self.pyramid.index_of(k.source) == Some(level))
                .filter_map(|k| cache.get(k))
                .collect()
        };
        if let Some(d) = &mut self.display {
            d.fit_to(pieces.iter().map(|p| p.as_ref()));
        }
    }

    /// Textures of the coarsest level on the GPU, with their extents in image pixels (the
    /// navigator's thumbnail).
    pub fn thumbnail(&self) -> Vec<(egui::TextureId, Extent)> {
        let coarsest = self.pyramid.coarsest();
        let levels = self.levels();
        let mut out = Vec::new();
        for key in self
            .plan
            .wanted
            .iter()
            .filter(|k| self.level_of(k) == Some(coarsest))
        {
            if let Some(t) = self.textures.peek(key) {
                let f = self.pyramid.factor_of(key.source);
                for (handle, part) in &t.parts {
                    let e = scale_up(part, f, levels.pyramid.width, levels.pyramid.height);
                    out.push((handle.id(), e));
                }
            }
        }
        out
    }

    /// Every piece of the view's level is on the GPU.
    pub fn is_sharp(&self) -> bool {
        let generation = self.generation();
        self.plan.mode == ViewMode::Sharp
            && self.plan.unbuilt.is_none()
            && self
                .plan
                .sharp
                .iter()
                .all(|k| self.textures.is_current(k, generation))
    }

    pub fn pending_uploads(&self) -> usize {
        self.uploads.len()
    }

    /// State of descriptor `index` as the panel shows it.
    pub fn descriptor_state(&self, index: u64) -> Option<&UnitInfo> {
        let (source, page, _) = self.panel_page();
        self.states.get(source, page.descriptor_unit(index))
    }

    /// The page the descriptor panel lists: its source, the page, and its factor. Levels that
    /// are pages (of the file or of the built levels) have descriptors; previews do not.
    pub fn panel_page(&self) -> (LevelSource, &Page, u32) {
        let level = self
            .pyramid
            .get(self.panel_level)
            .filter(|l| l.source.has_descriptors());
        match level.and_then(|l| Some((l, self.image.source_page(l.source)?))) {
            Some((l, p)) => (l.source, p, l.factor),
            None => (LevelSource::Page(self.page), self.page(), 1),
        }
    }

    /// Extent of descriptor `index` of the panel's page, in full-resolution pixels.
    pub fn panel_extent(&self, index: u64) -> Option<Extent> {
        let (_, page, f) = self.panel_page();
        (index < page.descriptor_count()).then(|| {
            let base = self.page();
            scale_up(&page.descriptor(index).extent, f, base.width, base.height)
        })
    }

    /// State of a unit of the full-resolution page.
    pub fn unit_state(&self, unit: u64) -> Option<&UnitState> {
        self.states
            .get(LevelSource::Page(self.page), unit)
            .map(|i| &i.state)
    }

    /// Native values at image pixel (x, y) from the finest level whose piece is in the CPU
    /// cache (full resolution first), with that level's factor.
    pub fn native_at(&self, x: u32, y: u32) -> Option<(Vec<f64>, u32)> {
        let page = self.page();
        let keys = Geometry::of_page(page).keys_on_grid(
            LevelSource::Page(self.page),
            &Extent::new(x, y, x + 1, y + 1),
        );
        let mut cache = lock(&self.cache);
        if let Some(v) = keys
            .iter()
            .find_map(|k| cache.get(k))
            .and_then(|p| p.native_at(x, y, page.mode))
        {
            return Some((v, 1));
        }
        // Zoomed out: the level on screen (or a coarser one) has the value of its block.
        for level in self.pyramid.levels().iter().skip(1) {
            let f = level.factor.max(1);
            let (lx, ly) = (x / f, y / f);
            if lx >= level.width || ly >= level.height {
                continue;
            }
            let keys = level
                .geometry
                .keys_on_grid(level.source, &Extent::new(lx, ly, lx + 1, ly + 1));
            if let Some(v) = keys
                .iter()
                .filter_map(|k| cache.get(k))
                .find_map(|p| p.native_at(lx, ly, page.mode))
            {
                return Some((v, f));
            }
        }
        None
    }
}

impl Drop for Session {
    /// Closing an image keeps the checkpoints its views found (see
    /// [`crate::index::StreamIndex::keep_progress`]).
    fn drop(&mut self) {
        if let Some(ix) = &self.image.index {
            ix.keep_progress();
        }
    }
}

/// The pyramid of `page`; an image always has the page the session shows.
/// Pages of `image` that are images of their own (pyramid levels are not listed).
pub fn shown_pages(image: &OpenImage) -> Vec<u32> {
    let pages = &image.layout.pages;
    let levels: std::collections::HashSet<usize> = (0..pages.len())
        .flat_map(|i| {
            image
                .layout
                .reductions(i)
                .into_iter()
                .skip(1)
                .map(|(p, _)| p)
        })
        .collect();
    (0..pages.len())
        .filter(|i| !levels.contains(i) && !pages[*i].reduced)
        .map(|i| i as u32)
        .collect()
}

fn pyramid_of(image: &OpenImage, page: u32) -> Pyramid {
    Pyramid::of(image, page).unwrap_or_else(|| {
        let p = &image.layout.pages[page as usize];
        Pyramid::from_levels(page, p.width, p.height, Vec::new())
    })
}
