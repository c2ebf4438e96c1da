//! One image open in the viewer: loader, CPU cache, GPU textures and the live state of every
//! descriptor the view has touched. The UI asks for pieces and paints what is ready; it never
//! reads the file or decodes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cache::{PieceCache, PieceKey};
use crate::decode::{Piece, piece_extent};
use crate::format::{COLUMN_CHUNK, Extent, Page};
use crate::image::OpenImage;
use crate::loader::Loader;
use crate::textures::TextureCache;
use crate::viewport::Viewport;

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
    pub units: HashMap<u64, UnitInfo>,
    /// Pieces the current view wants, nearest the centre first.
    pub wanted: Vec<PieceKey>,
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
        Self {
            image,
            page: 0,
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

    /// Drain loader results: update states, queue successful pieces for upload.
    pub fn poll(&mut self) {
        while let Ok(loaded) = self.loader.results().try_recv() {
            let unit = loaded.key.unit;
            match loaded.result {
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
        for key in evicted {
            if let Some(info) = self.units.get_mut(&key.unit)
                && info.state == UnitState::Cached
            {
                info.state = UnitState::Evicted;
            }
        }
    }

    /// Piece keys covering `region` of the current page.
    pub fn keys_for(&self, region: &Extent) -> Vec<PieceKey> {
        let page = self.page();
        let mut keys = Vec::new();
        for unit in page.grid.units_in(region) {
            let full = page.grid.unit_extent(unit);
            if page.column_readable() {
                // Column windows on a fixed grid, so panning reuses cached pieces.
                let c0 = region.x0.max(full.x0) / COLUMN_CHUNK;
                let c1 = (region.x1.min(full.x1) - 1) / COLUMN_CHUNK;
                for c in c0..=c1 {
                    let want =
                        Extent::new(c * COLUMN_CHUNK, full.y0, (c + 1) * COLUMN_CHUNK, full.y1);
                    let e = piece_extent(page, unit, &want);
                    keys.push(PieceKey {
                        page: self.page,
                        level: 0,
                        unit,
                        x0: e.x0,
                        x1: e.x1,
                    });
                }
            } else {
                keys.push(PieceKey {
                    page: self.page,
                    level: 0,
                    unit,
                    x0: full.x0,
                    x1: full.x1,
                });
            }
        }
        keys
    }

    pub fn key_extent(&self, key: &PieceKey) -> Extent {
        let full = self.page().grid.unit_extent(key.unit);
        Extent::new(key.x0, full.y0, key.x1, full.y1)
    }

    /// Decide what the view wants and ask the loader for what is missing.
    pub fn update_wanted(&mut self, view: &Viewport, motion: (f64, f64)) {
        let (w, h) = (self.page().width, self.page().height);
        let Some(region) = view.prefetch_extent(w, h, motion) else {
            self.wanted.clear();
            self.loader.replace(&[]);
            return;
        };
        let mut keys = self.keys_for(&region);
        let bytes: u64 = keys.iter().map(|k| self.key_extent(k).pixels() * 4).sum();
        let budget = lock(&self.cache).budget() as u64;
        if bytes > budget / 2 {
            self.mode = ViewMode::TooFarOut;
            self.wanted.clear();
            self.loader.replace(&[]);
            return;
        }
        self.mode = ViewMode::Sharp;
        // Nearest the centre first.
        let (cx, cy) = (view.center_x, view.center_y);
        let dist = |e: Extent| {
            let mx = (f64::from(e.x0) + f64::from(e.x1)) / 2.0 - cx;
            let my = (f64::from(e.y0) + f64::from(e.y1)) / 2.0 - cy;
            mx * mx + my * my
        };
        keys.sort_by(|a, b| dist(self.key_extent(a)).total_cmp(&dist(self.key_extent(b))));
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
        for key in &missing {
            if let Some(info) = self.units.get(&key.unit)
                && matches!(info.state, UnitState::Failed(_))
            {
                continue;
            }
            self.units
                .entry(key.unit)
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
            matches!(
                self.units.get(&k.unit).map(|i| &i.state),
                Some(UnitState::Failed(_))
            )
        };
        missing.retain(|k| !failed(k));
        self.loader.replace(&missing);
        self.wanted = keys;
        // Drop queued uploads nobody wants any more.
        let wanted = &self.wanted;
        self.uploads.retain(|(k, _)| wanted.contains(k));
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

    /// Every wanted piece is on the GPU.
    pub fn is_sharp(&self) -> bool {
        self.mode == ViewMode::Sharp && self.wanted.iter().all(|k| self.textures.contains(k))
    }

    pub fn pending_uploads(&self) -> usize {
        self.uploads.len()
    }

    /// State of descriptor `index` as the panel shows it.
    pub fn descriptor_state(&self, index: u64) -> Option<&UnitInfo> {
        self.units.get(&self.page().descriptor_unit(index))
    }

    /// Native values at image pixel (x, y), if its piece is in the CPU cache.
    pub fn native_at(&self, x: u32, y: u32) -> Option<Vec<u32>> {
        let page = self.page();
        let keys = self.keys_for(&Extent::new(x, y, x + 1, y + 1));
        let mut cache = lock(&self.cache);
        keys.iter()
            .find_map(|k| cache.get(k))
            .and_then(|p| p.native_at(x, y, page.mode))
    }
}
