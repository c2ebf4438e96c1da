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

use crate::cache::PieceCache;
use crate::decode::{self, Piece, tiff::DecoderCache};
use crate::error::{Error, FormatError};
use crate::format::{Extent, Page, Storage};
use crate::image::OpenImage;
use crate::pieces::{Geometry, LevelSource, PieceKey};

/// A finished request.
#[derive(Debug)]
pub struct Loaded {
    pub key: PieceKey,
    pub result: Result<Arc<Piece>, Arc<Error>>,
    pub elapsed: Duration,
    /// Answered from the cache without reading the file.
    pub cached: bool,
}

/// The request policy, kept apart from threads so it can be tested: newest first, a bounded
/// number waiting (the oldest dropped), keys being decoded never asked twice.
#[derive(Debug, Default)]
pub struct Queue {
    /// Pending requests; the newest is last and is served first.
    pending: Vec<PieceKey>,
    in_flight: HashSet<PieceKey>,
}

impl Queue {
    /// Add requests, later ones served first; re-asked keys move to the front.
    pub fn request(&mut self, keys: impl IntoIterator<Item = PieceKey>, capacity: usize) {
        for key in keys {
            if self.in_flight.contains(&key) {
                continue;
            }
            self.pending.retain(|k| *k != key);
            self.pending.push(key);
        }
        if self.pending.len() > capacity {
            let excess = self.pending.len() - capacity;
            self.pending.drain(..excess);
        }
    }

    /// Keep only pending requests in `wanted`, then ask for `wanted` (first = served first).
    pub fn replace(&mut self, wanted: &[PieceKey], capacity: usize) {
        let set: HashSet<&PieceKey> = wanted.iter().collect();
        self.pending.retain(|k| set.contains(k));
        self.request(wanted.iter().rev().copied(), capacity);
    }

    /// The next request to serve, marked in flight.
    pub fn pop(&mut self) -> Option<PieceKey> {
        self.pop_avoiding(|_| false)
    }

    /// The newest request `busy` does not hold back (another window of a stream band being
    /// decoded: that decode answers it), else the newest; marked in flight.
    pub fn pop_avoiding(&mut self, busy: impl Fn(&PieceKey) -> bool) -> Option<PieceKey> {
        let i = self
            .pending
            .iter()
            .rposition(|k| !busy(k))
            .or_else(|| self.pending.len().checked_sub(1))?;
        let k = self.pending.remove(i);
        self.in_flight.insert(k);
        Some(k)
    }

    pub fn done(&mut self, key: &PieceKey) {
        self.in_flight.remove(key);
    }

    /// Remove a pending request (answered by a stream on its way); true if it was pending.
    pub fn take(&mut self, key: &PieceKey) -> bool {
        let before = self.pending.len();
        self.pending.retain(|p| p != key);
        before != self.pending.len()
    }

    pub fn contains(&self, key: &PieceKey) -> bool {
        self.in_flight.contains(key) || self.pending.contains(key)
    }

    pub fn len(&self) -> usize {
        self.pending.len() + self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }
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
    /// Stream bands being decoded from a checkpoint: a second request for another column
    /// window of the same band waits for that decode instead of repeating it.
    stream_bands: Mutex<std::collections::HashSet<(LevelSource, u64)>>,
    stream_done: Condvar,
    results: SyncSender<Loaded>,
    capacity: usize,
    pub decoded: AtomicU64,
    /// Called after each result is sent (the UI's request_repaint), with no lock held.
    notify: Mutex<Option<Notify>>,
}

/// A callback that wakes the receiver.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

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
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            stream_lock: Mutex::new(()),
            stream_bands: Mutex::new(std::collections::HashSet::new()),
            stream_done: Condvar::new(),
            results: tx,
            capacity: capacity.max(1),
            decoded: AtomicU64::new(0),
            notify: Mutex::new(None),
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

    /// Call `f` whenever a result is ready (after it is sent and every lock released).
    pub fn set_notify(&self, f: Notify) {
        *lock(&self.shared.notify) = Some(f);
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
        let keys: Vec<PieceKey> = keys.into_iter().collect();
        prefetch_remote(&self.shared.image, &keys);
        lock(&self.shared.queue).request(keys, self.shared.capacity);
        self.shared.wake.notify_all();
    }

    /// Make `keys` the whole wanted set: pending requests not in it are dropped.
    pub fn replace(&self, keys: &[PieceKey]) {
        prefetch_remote(&self.shared.image, keys);
        lock(&self.shared.queue).replace(keys, self.shared.capacity);
        self.shared.wake.notify_all();
    }

    /// Drop every pending request and stop streams in progress.
    pub fn cancel_all(&self) {
        lock(&self.shared.queue).clear_pending();
        self.shared.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// A cheap check, for other threads, of whether requests are waiting or being decoded
    /// (a background task yields to them).
    pub fn busy_signal(&self) -> Arc<dyn Fn() -> bool + Send + Sync> {
        let shared = self.shared.clone();
        Arc::new(move || !lock(&shared.queue).is_empty())
    }

    /// Requests waiting or being decoded.
    pub fn pending(&self) -> usize {
        lock(&self.shared.queue).len()
    }

    pub fn is_pending(&self, key: &PieceKey) -> bool {
        lock(&self.shared.queue).contains(key)
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

/// For a remote file: put the stored bytes of every wanted piece in flight at once (near ones
/// in one request), instead of one round trip per piece per worker. Pieces read by rows (raw
/// layouts) and streams ask for their own bytes as they go.
fn prefetch_remote(image: &OpenImage, keys: &[PieceKey]) {
    if !image.source.is_remote() {
        return;
    }
    let mut ranges = Vec::new();
    for k in keys {
        if matches!(
            k.source,
            LevelSource::Preview { .. } | LevelSource::Built(_)
        ) {
            continue;
        }
        let Some(page) = image.source_page(k.source) else {
            continue;
        };
        if !matches!(
            page.storage,
            Storage::Chunks { .. } | Storage::Tiles(_) | Storage::J2k { .. }
        ) {
            continue;
        }
        for d in page.unit_descriptors(k.unit) {
            let d = page.descriptor(d);
            ranges.push((d.offset, d.length));
        }
    }
    image.source.prefetch_ranges(&ranges);
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
                let busy = lock(&shared.stream_bands);
                let next = q.pop_avoiding(|k| busy.contains(&(k.source, k.unit)));
                drop(busy);
                if let Some(k) = next {
                    break k;
                }
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let start = Instant::now();
        let cached = lock(&shared.cache).get(&key);
        let (result, was_cached) = match cached {
            Some(p) => (Ok(p), true),
            None => {
                // A decoder bug must not take the worker (and every later request) with it:
                // it becomes this piece's error, and the decoder state is started afresh.
                let run = std::panic::AssertUnwindSafe(|| load(shared, key, &mut tiff_cache));
                match std::panic::catch_unwind(run) {
                    Ok(r) => (r, false),
                    Err(payload) => {
                        tiff_cache = DecoderCache::default();
                        tiff_cache.set_source(&shared.image.source);
                        let what = payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        let e = Error::Request {
                            path: shared.image.path().to_path_buf(),
                            msg: format!(
                                "internal error (a bug) decoding unit {}: {what}",
                                key.unit
                            ),
                        };
                        (Err(Arc::new(e)), false)
                    }
                }
            }
        };
        lock(&shared.queue).done(&key);
        let loaded = Loaded {
            key,
            result,
            elapsed: start.elapsed(),
            cached: was_cached,
        };
        if shared.results.send(loaded).is_err() {
            return;
        }
        wake(shared);
    }
}

fn wake(shared: &Shared) {
    let notify = lock(&shared.notify).clone();
    if let Some(f) = notify {
        f();
    }
}

fn load(
    shared: &Shared,
    key: PieceKey,
    tiff_cache: &mut DecoderCache,
) -> Result<Arc<Piece>, Arc<Error>> {
    let missing = || {
        Arc::new(Error::Request {
            path: shared.image.path().to_path_buf(),
            msg: format!("no pixels for {:?}: no such page or level", key.source),
        })
    };
    // Pages of the built levels live in their own file (the sidecar).
    let image = shared.image.source_image(key.source).ok_or_else(missing)?;
    let page = shared.image.source_page(key.source).ok_or_else(missing)?;
    if let LevelSource::Preview { .. } = key.source {
        let k = key.source.preview_step();
        let piece = decode::subsample::decode(&image.source, page, k, key.unit, key.x0, key.x1)
            .map_err(|e| Arc::new(image.descriptor_error(key.unit, e)))?;
        let piece = Arc::new(piece);
        lock(&shared.cache).insert(key, piece.clone());
        return Ok(piece);
    }
    if let Storage::Stream { .. } = page.storage {
        return load_stream(shared, key, page);
    }
    let rows = page.grid.unit_extent(key.unit);
    let extent = Extent::new(key.x0, rows.y0, key.x1, rows.y1);
    let piece = decode::decode_piece(&image.source, page, key.unit, extent, tiff_cache)
        .map_err(|e| Arc::new(image.descriptor_error(key.unit, e)))?;
    shared.decoded.fetch_add(1, Ordering::Relaxed);
    let piece = Arc::new(piece);
    lock(&shared.cache).insert(key, piece.clone());
    Ok(piece)
}

/// The right to decode one stream band (other threads wanting it wait), released on drop.
struct BandClaim<'a> {
    shared: &'a Shared,
    band: (LevelSource, u64),
}

impl<'a> BandClaim<'a> {
    fn new(shared: &'a Shared, band: (LevelSource, u64)) -> Self {
        let mut set = lock(&shared.stream_bands);
        while !set.insert(band) {
            set = shared
                .stream_done
                .wait(set)
                .unwrap_or_else(|e| e.into_inner());
        }
        Self { shared, band }
    }
}

impl Drop for BandClaim<'_> {
    fn drop(&mut self) {
        lock(&self.shared.stream_bands).remove(&self.band);
        self.shared.stream_done.notify_all();
    }
}

/// Decode a stream band. With a checkpoint at or above it that an earlier pass recorded, only
/// that stretch is decoded (loader threads do this in parallel). Past what any pass has
/// reached, one pass at a time goes on from the furthest checkpoint to the furthest band
/// pending for this page, caching every band and answering pending requests on the way.
fn load_stream(shared: &Shared, key: PieceKey, page: &Page) -> Result<Arc<Piece>, Arc<Error>> {
    let image = &shared.image;
    let kind = page.stream_kind();
    // Kinds where every band needs the whole stream keep only the bands asked for.
    let interlaced = matches!(
        kind,
        Some(crate::format::StreamKind::PngInterlaced | crate::format::StreamKind::WebP)
    );
    let same_page = |k: &PieceKey| k.source == key.source;
    let alone = kind.is_some_and(crate::format::StreamKind::bands_decode_alone);
    let indexed = image
        .index
        .as_ref()
        .is_some_and(|ix| alone || key.unit < ix.reached());
    let _streaming = (!indexed).then(|| lock(&shared.stream_lock));
    let _band = indexed.then(|| BandClaim::new(shared, (key.source, key.unit)));
    if let Some(p) = lock(&shared.cache).get(&key) {
        return Ok(p);
    }
    let (first, last) = if indexed {
        (key.unit, key.unit)
    } else {
        let from = image
            .index
            .as_ref()
            .map_or(0, |ix| ix.resume_point(key.unit).0);
        let queue = lock(&shared.queue);
        let pending = queue
            .pending
            .iter()
            .filter(|k| same_page(k))
            .map(|k| k.unit);
        let last = pending.clone().chain([key.unit]).max().unwrap_or(key.unit);
        let first = pending
            .filter(|&u| u >= from)
            .chain([key.unit])
            .min()
            .unwrap_or(key.unit);
        (first, last)
    };
    let epoch = shared.epoch.load(Ordering::Acquire);
    let cancelled =
        || shared.shutdown.load(Ordering::Acquire) || shared.epoch.load(Ordering::Acquire) != epoch;
    // A decoded band is cached as its column windows.
    let geometry = Geometry::of_page(page);
    let windows = |unit: u64| {
        geometry
            .windows_of(unit)
            .into_iter()
            .map(move |(x0, x1)| PieceKey {
                unit,
                x0,
                x1,
                ..key
            })
    };
    let mut target = None;
    // Interlaced streams hold every kept band until the end: keep only what was asked for.
    let mut wanted = |unit: u64| {
        !interlaced || unit == key.unit || {
            let queue = lock(&shared.queue);
            windows(unit).any(|k| queue.contains(&k))
        }
    };
    let mut emit = |unit: u64, band: Piece| {
        shared.decoded.fetch_add(1, Ordering::Relaxed);
        let all: Vec<PieceKey> = windows(unit).collect();
        // The windows asked for, and one on each side of them (a pan's next step): the rest
        // of a wide band would only crowd the cache.
        let asked: Vec<bool> = {
            let queue = lock(&shared.queue);
            all.iter().map(|k| *k == key || queue.contains(k)).collect()
        };
        for (i, &k) in all.iter().enumerate() {
            let near = asked[i.saturating_sub(1)..(i + 2).min(all.len())]
                .iter()
                .any(|&a| a);
            if !near {
                continue;
            }
            let piece = Arc::new(band.crop_columns(k.x0, k.x1));
            lock(&shared.cache).insert(k, piece.clone());
            if k == key {
                target = Some(piece);
                continue;
            }
            let was_pending = lock(&shared.queue).take(&k);
            if was_pending {
                let _ = shared.results.send(Loaded {
                    key: k,
                    result: Ok(piece),
                    elapsed: Duration::ZERO,
                    cached: false,
                });
                wake(shared);
            }
        }
    };
    decode::stream::decode_bands(
        &image.source,
        page,
        image.index.as_ref(),
        first..=last,
        decode::stream::BandSink {
            wants: &mut wanted,
            emit: &mut emit,
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn k(unit: u64) -> PieceKey {
        PieceKey::page(0, unit, 0, 1)
    }

    #[test]
    fn newest_first_and_bounded() {
        let mut q = Queue::default();
        q.request([k(1), k(2), k(3)], 10);
        assert_eq!(q.pop(), Some(k(3)));
        q.request([k(1)], 10); // re-asked: moves to the front
        assert_eq!(q.pop(), Some(k(1)));
        q.request([k(3)], 10); // in flight: not asked twice
        assert_eq!(q.pop(), Some(k(2)));
        assert_eq!(q.pop(), None);
        q.request((10..20).map(k), 4);
        assert_eq!(q.pending.len(), 4, "the oldest are dropped");
        assert_eq!(q.pop(), Some(k(19)));
    }

    #[test]
    fn busy_bands_are_passed_over_while_others_wait() {
        let mut q = Queue::default();
        q.request([k(1), k(2), k(3)], 10);
        // Unit 3 is being decoded (another window of it): serve 2 first.
        assert_eq!(q.pop_avoiding(|key| key.unit == 3), Some(k(2)));
        assert_eq!(q.pop_avoiding(|key| key.unit == 3), Some(k(1)));
        // Only busy ones left: the newest still comes out (it waits for the decode).
        assert_eq!(q.pop_avoiding(|key| key.unit == 3), Some(k(3)));
        assert_eq!(q.pop_avoiding(|_| true), None);
    }

    #[test]
    fn replace_drops_what_is_no_longer_wanted() {
        let mut q = Queue::default();
        q.request([k(1), k(2), k(3)], 10);
        q.replace(&[k(7), k(2)], 10);
        assert_eq!(q.pop(), Some(k(7)), "first wanted is served first");
        assert_eq!(q.pop(), Some(k(2)));
        assert_eq!(q.pop(), None, "1 and 3 were dropped");
        assert!(q.contains(&k(7)), "in flight until done");
        q.done(&k(7));
        assert!(!q.contains(&k(7)));
    }
}
