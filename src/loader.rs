//! Background loading: named worker threads read and decode pieces; the UI (or `render`) asks
//! and receives results over a bounded channel, never touching the file itself.
//!
//! Requests are served newest first (what the user looks at now), and [`Loader::replace`]
//! drops requests that are no longer wanted. Streamed formats (PNG, JPEG) decode from their
//! start, so one worker at a time streams a file, up to the furthest band anybody asked for,
//! answering every pending request it passes on the way.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cache::{PieceCache, PieceKey};
use crate::decode::{self, Piece, tiff::DecoderCache};
use crate::error::{Error, FormatError};
use crate::format::{Extent, Storage};
use crate::image::OpenImage;

/// A finished request.
#[derive(Debug)]
pub struct Loaded {
    pub key: PieceKey,
    pub result: Result<Arc<Piece>, Arc<Error>>,
    pub elapsed: Duration,
    /// Answered from the cache without reading the file.
    pub cached: bool,
}

struct Queue {
    /// Pending requests; the newest is last and is served first.
    pending: Vec<PieceKey>,
    in_flight: HashSet<PieceKey>,
}

struct Shared {
    image: Arc<OpenImage>,
    cache: Arc<Mutex<PieceCache>>,
    queue: Mutex<Queue>,
    wake: Condvar,
    shutdown: AtomicBool,
    /// Bumped by [`Loader::cancel_all`]: streams in progress stop.
    epoch: AtomicU64,
    /// One streamed decode at a time per file.
    stream_lock: Mutex<()>,
    results: SyncSender<Loaded>,
    capacity: usize,
    pub decoded: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker that panicked mid-update leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Workers and queues for one open image.
pub struct Loader {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    results: Receiver<Loaded>,
}

impl Loader {
    /// Start `workers` threads. At most `capacity` requests wait; older ones are dropped.
    pub fn new(
        image: Arc<OpenImage>,
        cache: Arc<Mutex<PieceCache>>,
        workers: usize,
        capacity: usize,
    ) -> Self {
        let (tx, rx) = sync_channel(capacity.max(16));
        let shared = Arc::new(Shared {
            image,
            cache,
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                in_flight: HashSet::new(),
            }),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            stream_lock: Mutex::new(()),
            results: tx,
            capacity: capacity.max(1),
            decoded: AtomicU64::new(0),
        });
        let workers = (0..workers.max(1))
            .filter_map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("tessera-loader-{i}"))
                    .spawn(move || worker(&shared))
                    .ok()
            })
            .collect();
        Self {
            shared,
            workers,
            results: rx,
        }
    }

    /// A sensible worker count for this machine.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8)
    }

    pub fn image(&self) -> &Arc<OpenImage> {
        &self.shared.image
    }

    pub fn cache(&self) -> &Arc<Mutex<PieceCache>> {
        &self.shared.cache
    }

    /// Ask for pieces; later calls are served before earlier ones. Keys already pending move
    /// to the front; keys being decoded are not asked twice.
    pub fn request(&self, keys: impl IntoIterator<Item = PieceKey>) {
        let mut q = lock(&self.shared.queue);
        for key in keys {
            if q.in_flight.contains(&key) {
                continue;
            }
            q.pending.retain(|k| *k != key);
            q.pending.push(key);
        }
        let cap = self.shared.capacity;
        if q.pending.len() > cap {
            let excess = q.pending.len() - cap;
            q.pending.drain(..excess);
        }
        drop(q);
        self.shared.wake.notify_all();
    }

    /// Make `keys` the whole wanted set: pending requests not in it are dropped.
    pub fn replace(&self, keys: &[PieceKey]) {
        {
            let wanted: HashSet<&PieceKey> = keys.iter().collect();
            let mut q = lock(&self.shared.queue);
            q.pending.retain(|k| wanted.contains(k));
        }
        self.request(keys.iter().rev().copied());
    }

    /// Drop every pending request and stop streams in progress.
    pub fn cancel_all(&self) {
        lock(&self.shared.queue).pending.clear();
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Requests waiting or being decoded.
    pub fn pending(&self) -> usize {
        let q = lock(&self.shared.queue);
        q.pending.len() + q.in_flight.len()
    }

    pub fn is_pending(&self, key: &PieceKey) -> bool {
        let q = lock(&self.shared.queue);
        q.in_flight.contains(key) || q.pending.contains(key)
    }

    /// Units decoded from the file so far (not counting cache hits).
    pub fn decoded(&self) -> u64 {
        self.shared.decoded.load(Ordering::Relaxed)
    }

    pub fn results(&self) -> &Receiver<Loaded> {
        &self.results
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.cancel_all();
        self.shared.wake.notify_all();
        // Unblock workers waiting on a full result channel.
        while self.results.try_recv().is_ok() {}
        for w in self.workers.drain(..) {
            while !w.is_finished() {
                while self.results.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = w.join();
        }
    }
}

fn worker(shared: &Shared) {
    let mut tiff_cache = DecoderCache::default();
    tiff_cache.set_source(&shared.image.source);
    loop {
        let key = {
            let mut q = lock(&shared.queue);
            loop {
                if shared.shutdown.load(Ordering::Acquire) {
                    return;
                }
                if let Some(k) = q.pending.pop() {
                    q.in_flight.insert(k);
                    break k;
                }
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let start = Instant::now();
        let cached = lock(&shared.cache).get(&key);
        let (result, was_cached) = match cached {
            Some(p) => (Ok(p), true),
            None => (load(shared, key, &mut tiff_cache), false),
        };
        lock(&shared.queue).in_flight.remove(&key);
        let loaded = Loaded {
            key,
            result,
            elapsed: start.elapsed(),
            cached: was_cached,
        };
        if shared.results.send(loaded).is_err() {
            return;
        }
    }
}

fn load(
    shared: &Shared,
    key: PieceKey,
    tiff_cache: &mut DecoderCache,
) -> Result<Arc<Piece>, Arc<Error>> {
    let image = &shared.image;
    let page = image.page(key.page).map_err(Arc::new)?;
    if let Storage::Stream { .. } = page.storage {
        return load_stream(shared, key);
    }
    let extent = Extent::new(
        key.x0,
        page.grid.unit_extent(key.unit).y0,
        key.x1,
        page.grid.unit_extent(key.unit).y1,
    );
    let piece = decode::decode_piece(&image.source, page, key.unit, extent, tiff_cache)
        .map_err(|e| Arc::new(image.descriptor_error(key.unit, e)))?;
    shared.decoded.fetch_add(1, Ordering::Relaxed);
    let piece = Arc::new(piece);
    lock(&shared.cache).insert(key, piece.clone());
    Ok(piece)
}

/// Stream from the start to the furthest band pending for this page, caching every band and
/// answering pending requests on the way.
fn load_stream(shared: &Shared, key: PieceKey) -> Result<Arc<Piece>, Arc<Error>> {
    let _streaming = lock(&shared.stream_lock);
    if let Some(p) = lock(&shared.cache).get(&key) {
        return Ok(p);
    }
    let image = &shared.image;
    let page = image.page(key.page).map_err(Arc::new)?;
    let interlaced = matches!(
        page.storage,
        Storage::Stream {
            interlaced: true,
            ..
        }
    );
    let same_page = |k: &PieceKey| k.page == key.page && k.level == key.level;
    let last = lock(&shared.queue)
        .pending
        .iter()
        .filter(|k| same_page(k))
        .map(|k| k.unit)
        .chain([key.unit])
        .max()
        .unwrap_or(key.unit);
    let epoch = shared.epoch.load(Ordering::Acquire);
    let cancelled =
        || shared.shutdown.load(Ordering::Acquire) || shared.epoch.load(Ordering::Acquire) != epoch;
    let band_key = |unit: u64| {
        let e = page.grid.unit_extent(unit);
        PieceKey {
            unit,
            x0: e.x0,
            x1: e.x1,
            ..key
        }
    };
    let mut target = None;
    // Interlaced streams hold every kept band until the end: keep only what was asked for.
    let mut wanted = |unit: u64| {
        !interlaced || unit == key.unit || lock(&shared.queue).pending.contains(&band_key(unit))
    };
    let mut emit = |unit: u64, piece: Piece| {
        let piece = Arc::new(piece);
        shared.decoded.fetch_add(1, Ordering::Relaxed);
        let k = band_key(unit);
        lock(&shared.cache).insert(k, piece.clone());
        if unit == key.unit {
            target = Some(piece);
            return;
        }
        let was_pending = {
            let mut q = lock(&shared.queue);
            let before = q.pending.len();
            q.pending.retain(|p| *p != k);
            q.pending.len() != before
        };
        if was_pending {
            let _ = shared.results.send(Loaded {
                key: k,
                result: Ok(piece),
                elapsed: Duration::ZERO,
                cached: false,
            });
        }
    };
    decode::stream::decode_bands(
        &image.source,
        page,
        last,
        &mut wanted,
        &mut emit,
        &cancelled,
    )
    .map_err(|e| Arc::new(image.descriptor_error(key.unit, e)))?;
    target.ok_or_else(|| {
        Arc::new(image.descriptor_error(
            key.unit,
            FormatError::invalid("stream ended before the band"),
        ))
    })
}
