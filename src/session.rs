//! One image open in the viewer: loader, CPU cache, GPU textures and the live state of every
//! descriptor the view has touched. The UI asks for pieces and paints what is ready; it never
//! reads the file or decodes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::{LEVELS_PAGE, PieceCache, PieceKey};
use crate::decode::{Piece, piece_extent};
use crate::format::{COLUMN_CHUNK, Extent, Page};
use crate::image::OpenImage;
use crate::levels::{BuildJob, BuildState, BuildSummary};
use crate::loader::Loader;
use crate::textures::TextureCache;
use crate::viewport::Viewport;

/// Largest coarsest level kept whole for the navigator and fill-in.
const THUMBNAIL_BYTES: u64 = 16 << 20;

/// What the viewer is doing with a descriptor.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitState {
    Loading,
    Cached,
    Failed(String),
    Evicted,
}

impl UnitState {
    pub fn name(&self) -> &'static str {
        match self {
            UnitState::Loading => "loading",
            UnitState::Cached => "cached",
            UnitState::Failed(_) => "failed",
            UnitState::Evicted => "evicted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct UnitInfo {
    pub state: UnitState,
    pub decode_time: Option<Duration>,
}

/// Where a resolution level's pixels come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelSource {
    /// A page of the file (the image itself at factor 1, or a reduced page).
    Page(u32),
    /// A page of the built levels' sidecar.
    Built(u32),
    /// Every k-th row and pixel of a raw page, read on demand.
    Preview,
}

/// One resolution level the view can draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewLevel {
    /// Full-resolution pixels per level pixel.
    pub factor: u32,
    pub source: LevelSource,
    /// A subsampled preview can stand in where a built level is not written yet.
    pub preview: bool,
}

/// Why the view shows placeholders instead of pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewMode {
    /// Pieces are requested and drawn.
    Sharp,
    /// So zoomed out that the visible pieces would not fit the cache: placeholders only
    /// (resolution levels arrive with a later issue).
    TooFarOut,
}

pub struct Session {
    pub image: Arc<OpenImage>,
    pub page: u32,
    pub loader: Loader,
    pub cache: Arc<Mutex<PieceCache>>,
    pub textures: TextureCache,
    uploads: VecDeque<(PieceKey, Arc<Piece>)>,
    /// Live state of every (page, unit) the view has touched.
    pub units: HashMap<(u32, u64), UnitInfo>,
    /// Resolution levels of the page, finest (the page itself) first.
    pub levels: Vec<ViewLevel>,
    /// The level build running in the background, if any.
    builder: Option<std::thread::JoinHandle<Result<BuildSummary, crate::Error>>>,
    /// Pieces the current view paints, coarse fill-in first, then the sharp level nearest the
    /// centre first.
    pub wanted: Vec<PieceKey>,
    /// The pieces of the level that makes the view sharp.
    sharp: Vec<PieceKey>,
    /// Index into `levels` of the level the view is drawn from.
    pub level: usize,
    /// Index into `levels` of the level whose descriptors the panel lists.
    pub panel_level: usize,
    /// Part of the view (full-resolution pixels) whose level is still being built and has
    /// nothing to stand in for it: painted as a placeholder, and the view is not sharp.
    pub unbuilt: Option<Extent>,
    /// Set once the view has asked for its first pieces: a level build waits for that, so
    /// the first picture does not queue behind the build's reads.
    asked: Arc<std::sync::atomic::AtomicBool>,
    pub mode: ViewMode,
    /// New errors for the banner (drained by the app).
    pub new_errors: Vec<String>,
    pub opened_at: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    pub fn new(image: Arc<OpenImage>, cache_budget: usize, texture_budget: usize) -> Self {
        let mut cache = PieceCache::new(cache_budget);
        cache.track_evictions();
        let cache = Arc::new(Mutex::new(cache));
        // Leave a core to the UI and the renderer: on a software renderer they share the CPU
        // with the decoders, and a busy core shows as frame-time spikes.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = cores.saturating_sub(1).clamp(1, 8);
        let loader = Loader::new(image.clone(), cache.clone(), workers, 4096);
        let levels = view_levels(&image);
        Self {
            builder: None,
            panel_level: 0,
            unbuilt: None,
            asked: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            image,
            page: 0,
            levels,
            sharp: Vec::new(),
            level: 0,
            loader,
            cache,
            textures: TextureCache::new(texture_budget),
            uploads: VecDeque::new(),
            units: HashMap::new(),
            wanted: Vec::new(),
            mode: ViewMode::Sharp,
            new_errors: Vec::new(),
            opened_at: Instant::now(),
        }
    }

    pub fn page(&self) -> &Page {
        &self.image.layout.pages[self.page as usize]
    }

    /// The page a key's `page` names: the file's, or (with [`LEVELS_PAGE`]) the sidecar's.
    pub fn key_page(&self, page: u32) -> Option<&Page> {
        if page & LEVELS_PAGE != 0 {
            self.image
                .levels()?
                .image
                .layout
                .pages
                .get((page & !LEVELS_PAGE) as usize)
        } else {
            self.image.layout.pages.get(page as usize)
        }
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
        let wait = move || !asked.load(std::sync::atomic::Ordering::Acquire) || busy();
        let spawned = std::thread::Builder::new()
            .name("tessera-levels".into())
            .spawn(move || job.run(&wait, &*notify));
        match spawned {
            Ok(h) => self.builder = Some(h),
            Err(e) => self
                .new_errors
                .push(format!("cannot start building levels: {e}")),
        }
    }

    /// The state of the built levels, if the image has any.
    pub fn build_state(&self) -> Option<BuildState> {
        self.image.levels().map(|l| l.status.state())
    }

    /// Fraction of the level build done, while one runs.
    pub fn build_progress(&self) -> Option<f32> {
        let l = self.image.levels()?;
        (l.status.state() == BuildState::Building)
            .then(|| l.status.progress.fraction().unwrap_or(0.0))
    }

    /// Stop the level build (what was written so far stays in use until the image closes).
    pub fn cancel_build(&self) {
        if let Some(l) = self.image.levels() {
            l.status.progress.cancel();
        }
    }

    /// Collect a finished build: its error goes to the banner.
    fn poll_build(&mut self) {
        if !self.builder.as_ref().is_some_and(|h| h.is_finished()) {
            return;
        }
        if let Some(h) = self.builder.take() {
            match h.join() {
                Ok(Ok(_)) | Ok(Err(_)) if self.build_state() == Some(BuildState::Cancelled) => {}
                Ok(Ok(_)) => {}
                Ok(Err(e)) => self.new_errors.push(format!("building levels: {e}")),
                Err(_) => self
                    .new_errors
                    .push("building levels: the builder crashed".into()),
            }
        }
    }

    /// Drain loader results: update states, queue successful pieces for upload.
    pub fn poll(&mut self) {
        self.poll_build();
        while let Ok(loaded) = self.loader.results().try_recv() {
            let unit = (loaded.key.page, loaded.key.unit);
            // Preview pieces are not descriptors: they carry no descriptor state.
            let preview = loaded.key.subsample > 0;
            match loaded.result {
                Ok(piece) if preview => {
                    if self.wanted.contains(&loaded.key) {
                        self.uploads.push_back((loaded.key, piece));
                    }
                }
                Err(e) if preview => self.new_errors.push(e.to_string()),
                Ok(piece) => {
                    let info = self.units.entry(unit).or_insert(UnitInfo {
                        state: UnitState::Cached,
                        decode_time: None,
                    });
                    info.state = UnitState::Cached;
                    if !loaded.cached {
                        info.decode_time = Some(loaded.elapsed);
                    }
                    if self.wanted.contains(&loaded.key) {
                        self.uploads.push_back((loaded.key, piece));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    let first = !matches!(
                        self.units.get(&unit).map(|i| &i.state),
                        Some(UnitState::Failed(_))
                    );
                    self.units.insert(
                        unit,
                        UnitInfo {
                            state: UnitState::Failed(msg.clone()),
                            decode_time: Some(loaded.elapsed),
                        },
                    );
                    if first {
                        self.new_errors.push(msg);
                    }
                }
            }
        }
        let evicted = lock(&self.cache).take_evicted();
        for key in evicted.into_iter().filter(|k| k.subsample == 0) {
            if let Some(info) = self.units.get_mut(&(key.page, key.unit))
                && info.state == UnitState::Cached
            {
                info.state = UnitState::Evicted;
            }
        }
    }

    /// Piece keys covering `region` of the current page.
    pub fn keys_for(&self, region: &Extent) -> Vec<PieceKey> {
        self.keys_for_page(self.page, 0, region)
    }

    /// Piece keys covering `region` (in that page's pixels) of page `page_index`.
    fn keys_for_page(&self, page_index: u32, level: u8, region: &Extent) -> Vec<PieceKey> {
        let Some(page) = self.key_page(page_index) else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for unit in page.grid.units_in(region) {
            let full = page.grid.unit_extent(unit);
            if let Some(chunk) = page.column_chunk() {
                // Column windows on a fixed grid, so panning reuses cached pieces.
                let c0 = region.x0.max(full.x0) / chunk;
                let c1 = (region.x1.min(full.x1) - 1) / chunk;
                for c in c0..=c1 {
                    let want = Extent::new(c * chunk, full.y0, (c + 1) * chunk, full.y1);
                    let e = piece_extent(page, unit, &want);
                    keys.push(PieceKey {
                        page: page_index,
                        level,
                        unit,
                        x0: e.x0,
                        x1: e.x1,
                        subsample: 0,
                    });
                }
            } else {
                keys.push(PieceKey {
                    page: page_index,
                    level,
                    unit,
                    x0: full.x0,
                    x1: full.x1,
                    subsample: 0,
                });
            }
        }
        keys
    }

    /// A key's extent in its own page's (or preview's) pixels.
    pub fn key_extent(&self, key: &PieceKey) -> Extent {
        let Some(page) = self.key_page(key.page) else {
            return Extent::new(0, 0, 0, 0);
        };
        let full = if key.subsample > 0 {
            crate::decode::subsample::grid(page, 1 << key.subsample).unit_extent(key.unit)
        } else {
            page.grid.unit_extent(key.unit)
        };
        Extent::new(key.x0, full.y0, key.x1, full.y1)
    }

    /// Full-resolution pixels per pixel of the key's level.
    pub fn key_factor(&self, key: &PieceKey) -> u32 {
        self.levels
            .get(usize::from(key.level))
            .map_or(1, |l| l.factor)
    }

    /// An extent of the key's page scaled to full-resolution pixels (clipped to the image).
    pub fn to_image_extent(&self, key: &PieceKey, e: &Extent) -> Extent {
        self.scale_up(e, self.key_factor(key))
    }

    /// An extent of a level with factor `f`, in full-resolution pixels (clipped to the image).
    fn scale_up(&self, e: &Extent, f: u32) -> Extent {
        let (w, h) = (self.page().width, self.page().height);
        Extent::new(
            (e.x0 * f).min(w),
            (e.y0 * f).min(h),
            (e.x1 * f).min(w),
            (e.y1 * f).min(h),
        )
    }

    /// Keys of level `index` covering `region` (full-resolution pixels). A built level
    /// still being written gives the strips that are done, and a preview (where one can be
    /// read) for the rest.
    fn level_keys(&self, index: usize, region: &Extent) -> Vec<PieceKey> {
        let Some(level) = self.levels.get(index).copied() else {
            return Vec::new();
        };
        let f = level.factor;
        let (w, h) = (self.page().width, self.page().height);
        let r = Extent::new(
            region.x0 / f,
            region.y0 / f,
            region.x1.div_ceil(f).min(w.div_ceil(f)),
            region.y1.div_ceil(f).min(h.div_ceil(f)),
        );
        if r.is_empty() {
            return Vec::new();
        }
        match level.source {
            LevelSource::Page(p) => self.keys_for_page(p, index as u8, &r),
            LevelSource::Preview => self.preview_keys(index, f, &r),
            LevelSource::Built(i) => {
                let Some(built) = self.image.levels() else {
                    return Vec::new();
                };
                let mut keys = self.keys_for_page(LEVELS_PAGE | i, index as u8, &r);
                let done = built.status.rows_done(i as usize);
                let first_missing = keys
                    .iter()
                    .map(|k| self.key_extent(k))
                    .filter(|e| e.y1 > done)
                    .map(|e| e.y0)
                    .min();
                if let Some(y0) = first_missing {
                    keys.retain(|k| self.key_extent(k).y1 <= done);
                    if level.preview {
                        let rest = Extent::new(r.x0, y0.max(r.y0), r.x1, r.y1);
                        keys.extend(self.preview_keys(index, f, &rest));
                    }
                }
                keys
            }
        }
    }

    /// Whether level `index` is a built level still being written with no preview to stand
    /// in for its missing rows.
    fn has_holes(&self, index: usize) -> bool {
        let Some(l) = self.levels.get(index) else {
            return false;
        };
        match (l.source, self.image.levels()) {
            (LevelSource::Built(i), Some(b)) if !l.preview => {
                let height = b.plan.levels.get(i as usize).map_or(0, |g| g.height);
                b.status.rows_done(i as usize) < height
            }
            _ => false,
        }
    }

    /// The part of `region` (full-resolution pixels) that level `index` cannot show yet.
    fn unbuilt_part(&self, index: usize, region: &Extent) -> Option<Extent> {
        if !self.has_holes(index) {
            return None;
        }
        let l = self.levels.get(index)?;
        let LevelSource::Built(i) = l.source else {
            return None;
        };
        let built = self.image.levels()?;
        let page = built.image.layout.pages.get(i as usize)?;
        let done = built.status.rows_done(i as usize).min(page.height - 1);
        // Strips land whole: the first unfinished one starts where the view's holes start.
        let (y0, _) = page.grid.unit_row_span(page.grid.unit_row_of(done));
        let y = (y0 * l.factor).min(self.page().height);
        let e = Extent::new(region.x0, region.y0.max(y), region.x1, region.y1);
        (e.y0 < e.y1 && e.x0 < e.x1).then_some(e)
    }

    /// Preview keys (every `f`-th row and pixel of the page) covering `r` (preview pixels).
    fn preview_keys(&self, index: usize, f: u32, r: &Extent) -> Vec<PieceKey> {
        let page = self.page();
        let grid = crate::decode::subsample::grid(page, f);
        let subsample = f.trailing_zeros() as u8;
        let r = Extent::new(r.x0, r.y0, r.x1.min(grid.width), r.y1.min(grid.height));
        let mut keys = Vec::new();
        if r.is_empty() {
            return keys;
        }
        for unit in grid.units_in(&r) {
            let full = grid.unit_extent(unit);
            for c in r.x0 / COLUMN_CHUNK..=(r.x1 - 1) / COLUMN_CHUNK {
                let x0 = (c * COLUMN_CHUNK).max(full.x0);
                let x1 = ((c + 1) * COLUMN_CHUNK).min(full.x1);
                if x0 < x1 {
                    keys.push(PieceKey {
                        page: self.page,
                        level: index as u8,
                        unit,
                        x0,
                        x1,
                        subsample,
                    });
                }
            }
        }
        keys
    }

    fn bytes_of(&self, keys: &[PieceKey]) -> u64 {
        keys.iter().map(|k| self.key_extent(k).pixels() * 4).sum()
    }

    /// Decide what the view wants and ask the loader for what is missing: the finest level
    /// whose pixels are no smaller than a screen pixel (and whose visible pieces fit half the
    /// cache), with the coarsest level underneath as a fill-in while it loads.
    pub fn update_wanted(&mut self, view: &Viewport, motion: (f64, f64)) {
        let (w, h) = (self.page().width, self.page().height);
        let Some(region) = view.prefetch_extent(w, h, motion) else {
            self.want_nothing();
            return;
        };
        let budget = lock(&self.cache).budget() as u64;
        let ideal = self
            .levels
            .iter()
            .rposition(|l| f64::from(l.factor) <= 1.0 / view.zoom)
            .unwrap_or(0);
        let mut chosen = None;
        // A level still being built (with nothing to stand in for it) gives way to a finer
        // level that fits, when there is one.
        let finer: Vec<usize> = if self.has_holes(ideal) {
            (0..ideal).rev().collect()
        } else {
            Vec::new()
        };
        for index in finer.into_iter().chain(ideal..self.levels.len()) {
            let keys = self.level_keys(index, &region);
            if self.bytes_of(&keys) <= budget / 2 {
                chosen = Some((index, keys));
                break;
            }
        }
        let Some((level, mut keys)) = chosen else {
            self.mode = ViewMode::TooFarOut;
            self.want_nothing();
            return;
        };
        self.mode = ViewMode::Sharp;
        self.level = level;
        self.unbuilt = self.unbuilt_part(level, &region);
        // Nearest the centre first.
        let (cx, cy) = (view.center_x, view.center_y);
        let dist = |s: &Self, k: &PieceKey| {
            let e = s.to_image_extent(k, &s.key_extent(k));
            let mx = (f64::from(e.x0) + f64::from(e.x1)) / 2.0 - cx;
            let my = (f64::from(e.y0) + f64::from(e.y1)) / 2.0 - cy;
            mx * mx + my * my
        };
        keys.sort_by(|a, b| dist(self, a).total_cmp(&dist(self, b)));
        let coarsest = self.levels.len() - 1;
        // The coarsest level under everything: the whole image when it is small (the
        // navigator's thumbnail, and instant fill-in wherever the view goes), else the view.
        let whole = self.level_keys(coarsest, &Extent::new(0, 0, w, h));
        let fill = if self.bytes_of(&whole) <= (budget / 8).min(THUMBNAIL_BYTES) {
            whole
        } else if coarsest != level {
            let k = self.level_keys(coarsest, &region);
            if self.bytes_of(&k) <= budget / 8 {
                k
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        // The view's own keys are already in the list when it is drawn from the coarsest level.
        // Fill-in under the view loads first, the rest of the thumbnail after the view.
        let (fill, rest): (Vec<PieceKey>, Vec<PieceKey>) = fill
            .into_iter()
            .filter(|k| !keys.contains(k))
            .partition(|k| {
                self.to_image_extent(k, &self.key_extent(k))
                    .intersect(&region)
                    .is_some()
            });
        self.sharp = keys.clone();
        let keys: Vec<PieceKey> = fill.into_iter().chain(keys).chain(rest).collect();
        let mut missing = Vec::new();
        {
            let mut cache = lock(&self.cache);
            for key in &keys {
                if self.textures.contains(key) {
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
        for key in missing.iter().filter(|k| k.subsample == 0) {
            if let Some(info) = self.units.get(&(key.page, key.unit))
                && matches!(info.state, UnitState::Failed(_))
            {
                continue;
            }
            self.units
                .entry((key.page, key.unit))
                .and_modify(|i| {
                    if i.state != UnitState::Cached {
                        i.state = UnitState::Loading
                    }
                })
                .or_insert(UnitInfo {
                    state: UnitState::Loading,
                    decode_time: None,
                });
        }
        let failed = |k: &PieceKey| {
            k.subsample == 0
                && matches!(
                    self.units.get(&(k.page, k.unit)).map(|i| &i.state),
                    Some(UnitState::Failed(_))
                )
        };
        missing.retain(|k| !failed(k));
        self.loader.replace(&missing);
        self.asked.store(true, std::sync::atomic::Ordering::Release);
        self.wanted = keys;
        // Drop queued uploads nobody wants any more.
        let wanted = &self.wanted;
        self.uploads.retain(|(k, _)| wanted.contains(k));
    }

    /// Nothing to show: drop every request (the view has still "asked", for a level build
    /// waiting on it).
    fn want_nothing(&mut self) {
        self.wanted.clear();
        self.sharp.clear();
        self.unbuilt = None;
        self.loader.replace(&[]);
        self.asked.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Upload queued pieces, at most `budget_bytes` (but at least one piece) this frame.
    pub fn upload(&mut self, ctx: &egui::Context, budget_bytes: usize) -> usize {
        let max_side = ctx.input(|i| i.max_texture_side);
        let opaque = !self.page().mode.has_alpha();
        let mut done = 0;
        while let Some((key, piece)) = self.uploads.pop_front() {
            done += self.textures.upload(ctx, key, &piece, max_side, opaque);
            if done >= budget_bytes {
                break;
            }
        }
        done
    }

    /// Textures of the coarsest level on the GPU, with their extents in image pixels (the
    /// navigator's thumbnail).
    pub fn thumbnail(&self) -> Vec<(egui::TextureId, Extent)> {
        let coarsest = self.levels.len().saturating_sub(1);
        let mut out = Vec::new();
        for key in self
            .wanted
            .iter()
            .filter(|k| usize::from(k.level) == coarsest)
        {
            if let Some(t) = self.textures.peek(key) {
                for (handle, part) in &t.parts {
                    out.push((handle.id(), self.to_image_extent(key, part)));
                }
            }
        }
        out
    }

    /// Every piece of the view's level is on the GPU.
    pub fn is_sharp(&self) -> bool {
        self.mode == ViewMode::Sharp
            && self.unbuilt.is_none()
            && self.sharp.iter().all(|k| self.textures.contains(k))
    }

    pub fn pending_uploads(&self) -> usize {
        self.uploads.len()
    }

    /// State of descriptor `index` as the panel shows it.
    pub fn descriptor_state(&self, index: u64) -> Option<&UnitInfo> {
        let (id, page, _) = self.panel_page();
        self.units.get(&(id, page.descriptor_unit(index)))
    }

    /// The page the descriptor panel lists: its key id, the page, and its factor. Levels that
    /// are pages (of the file or of the built levels) have descriptors; previews do not.
    pub fn panel_page(&self) -> (u32, &Page, u32) {
        let level = self.levels.get(self.panel_level);
        let id = match level.map(|l| l.source) {
            Some(LevelSource::Page(p)) => p,
            Some(LevelSource::Built(i)) => LEVELS_PAGE | i,
            _ => self.page,
        };
        match self.key_page(id) {
            Some(p) => (id, p, level.map_or(1, |l| l.factor)),
            None => (self.page, self.page(), 1),
        }
    }

    /// Extent of descriptor `index` of the panel's page, in full-resolution pixels.
    pub fn panel_extent(&self, index: u64) -> Option<Extent> {
        let (_, page, f) = self.panel_page();
        (index < page.descriptor_count()).then(|| self.scale_up(&page.descriptor(index).extent, f))
    }

    /// State of a unit of the current page.
    pub fn unit_state(&self, unit: u64) -> Option<&UnitState> {
        self.units.get(&(self.page, unit)).map(|i| &i.state)
    }

    /// Native values at image pixel (x, y), if its piece is in the CPU cache.
    pub fn native_at(&self, x: u32, y: u32) -> Option<Vec<u32>> {
        if self.page & LEVELS_PAGE != 0 {
            return None;
        }
        let page = self.page();
        let keys = self.keys_for(&Extent::new(x, y, x + 1, y + 1));
        let mut cache = lock(&self.cache);
        keys.iter()
            .find_map(|k| cache.get(k))
            .and_then(|p| p.native_at(x, y, page.mode))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A build belongs to the open image: closing it cancels the build (a kept sidecar is
        // only ever the finished one).
        self.cancel_build();
        if let Some(h) = self.builder.take() {
            let _ = h.join();
        }
    }
}

/// The levels the view can draw from, finest first: the file's own levels, then levels built
/// by Tessera, then subsampled previews of a raw page (every k-th row and pixel, down to a
/// few hundred pixels) where neither exists.
pub fn view_levels(image: &OpenImage) -> Vec<ViewLevel> {
    let mut levels: Vec<ViewLevel> = image
        .layout
        .levels(0)
        .iter()
        .map(|l| ViewLevel {
            factor: l.factor,
            source: LevelSource::Page(l.page as u32),
            preview: false,
        })
        .collect();
    let page0 = &image.layout.pages[0];
    let previews = levels.len() == 1 && crate::decode::subsample::supported(page0);
    if let Some(built) = image.levels() {
        for (i, l) in built.plan.levels.iter().enumerate() {
            if !levels.iter().any(|v| v.factor == l.factor) {
                levels.push(ViewLevel {
                    factor: l.factor,
                    source: LevelSource::Built(i as u32),
                    preview: previews,
                });
            }
        }
    }
    if previews {
        // With built levels, previews only stand in below the coarsest of them (the coarse
        // fill-in then comes from the levels, not from the file).
        let limit = image
            .levels()
            .and_then(|b| b.plan.levels.last())
            .map_or(1 << 20, |l| l.factor);
        let mut k = 2u32;
        while page0.width.max(page0.height) / k >= 128 && k <= limit {
            if !levels.iter().any(|v| v.factor == k) {
                levels.push(ViewLevel {
                    factor: k,
                    source: LevelSource::Preview,
                    preview: true,
                });
            }
            k *= 2;
        }
    }
    levels.sort_by_key(|l| l.factor);
    levels
}
