//! Objects in object storage (`https://`, `s3://`, and `http://` on loopback) read with HTTP
//! range requests through `object_store`, behind the same positioned reads as a local file.
//!
//! The object is cut into blocks of [`BLOCK`] bytes. A read takes the blocks it covers from
//! memory, else from the on-disk range cache, else fetches the missing ones; neighbouring
//! missing blocks (and ones separated by a small gap) go in one request. [`RemoteObject::prefetch`]
//! starts fetches without waiting, so the loader can put every piece of a view in flight at
//! once; a read that needs a block already on its way waits for it instead of asking again.
//! Every response is checked against the version (ETag, else Last-Modified) seen at open: an
//! object replaced while open is an error, never a mix of two files.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use object_store::{GetOptions, GetRange, ObjectStore};

use super::range_cache::RangeCache;
use crate::error::FormatError;

/// Cache and request granularity.
pub const BLOCK: u64 = 16 << 10;
/// The first request at open: enough for the header and IFDs of a cloud-optimised TIFF
/// (GDAL's COG of 24000x24000 in 512-pixel tiles has them in its first 27 KB).
pub const SPECULATIVE: u64 = 64 << 10;
/// A stream read (a header walked field by field, a sequential decoder) that misses fetches
/// this much from where it stands, so following IFDs or a stream costs few round trips.
const READ_AHEAD: u64 = 128 << 10;
/// Missing blocks this close together are fetched in one request (the gap costs less than a
/// round trip).
const GAP_BLOCKS: u64 = 2;
/// Blocks kept in memory (64 MB).
const MEMORY_BLOCKS: usize = 4096;

/// Whether `s` names a remote object Tessera opens by range requests.
pub fn is_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://") || s.starts_with("s3://")
}

/// A URL typed by the user, trimmed, or the one line that says what a URL looks like.
pub fn typed_url(text: &str) -> Result<std::path::PathBuf, String> {
    let url = text.trim();
    if is_url(url) {
        Ok(std::path::PathBuf::from(url))
    } else {
        Err("a URL starts with https://, s3:// or http:// (this machine)".into())
    }
}

/// Counters of what was fetched, for the status bar and the descriptor panel.
#[derive(Debug, Default)]
pub struct FetchStats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub in_flight: AtomicU64,
    /// Blocks found in the on-disk range cache.
    pub disk_blocks: AtomicU64,
}

/// Blocks in memory, blocks on their way, and fetches that failed (until read once).
struct Blocks {
    ready: lru::LruCache<u64, Arc<Vec<u8>>>,
    pending: HashSet<u64>,
    failed: HashMap<u64, String>,
}

pub struct RemoteObject {
    /// The URL as typed, without credentials (it is shown to the user).
    url: String,
    store: Arc<dyn ObjectStore>,
    location: object_store::path::Path,
    len: u64,
    /// ETag, else Last-Modified, at open.
    version: String,
    blocks: Mutex<Blocks>,
    arrived: Condvar,
    disk: Option<RangeCache>,
    pub stats: Arc<FetchStats>,
}

impl std::fmt::Debug for RemoteObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteObject")
            .field("url", &self.url)
            .field("len", &self.len)
            .finish()
    }
}

/// The runtime all remote requests run on (two threads: the work is waiting).
fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tessera-fetch")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the network runtime: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Retries of 5xx answers, timeouts and dropped connections, with exponential backoff.
fn retry() -> object_store::RetryConfig {
    let secs = |v: &str, d: u64| {
        std::env::var(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(4),
            base: 2.0,
        },
        max_retries: secs("TESSERA_HTTP_RETRIES", 4) as usize,
        retry_timeout: Duration::from_secs(secs("TESSERA_HTTP_RETRY_SECS", 30)),
    }
}

fn client() -> object_store::ClientOptions {
    object_store::ClientOptions::new()
        .with_timeout(Duration::from_secs(30))
        .with_connect_timeout(Duration::from_secs(10))
}

/// Whether `host` is this machine (plain `http://` is accepted there only).
fn loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `host[:port]` and path of `rest` (what follows the scheme).
fn split_host(rest: &str) -> (&str, &str) {
    match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    }
}

/// The store and object path a URL names.
fn store_for(url: &str) -> Result<(Arc<dyn ObjectStore>, object_store::path::Path), String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
    let (host, key) = split_host(rest);
    if host.contains('@') {
        return Err("credentials in the URL are not accepted: use the AWS_* variables".into());
    }
    let key = key.split(['?', '#']).next().unwrap_or_default();
    if key.is_empty() {
        return Err("the URL names no object".into());
    }
    let location = object_store::path::Path::from_url_path(key).map_err(|e| e.to_string())?;
    match scheme {
        "https" | "http" => {
            let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
            if scheme == "http" && !loopback(hostname) {
                return Err("plain http:// is only for this machine: use https://".into());
            }
            let store = object_store::http::HttpBuilder::new()
                .with_url(format!("{scheme}://{host}"))
                .with_client_options(client().with_allow_http(scheme == "http"))
                .with_retry(retry())
                .build()
                .map_err(|e| one_line(&e.to_string()))?;
            Ok((Arc::new(store), location))
        }
        "s3" => {
            use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
            // `from_env` reads the keys, the region (us-east-1 when unset) and
            // AWS_ENDPOINT_URL; a plain-http endpoint (MinIO, a local server) must also be
            // allowed in the client options given below.
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(host)
                .with_retry(retry());
            let plain_http = b
                .get_config_value(&AmazonS3ConfigKey::Endpoint)
                .is_some_and(|e| e.starts_with("http://"));
            let options = client().with_allow_http(plain_http);
            // No key: a public bucket, read unsigned.
            if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
                b = b.with_skip_signature(true);
            }
            let store = b
                .with_client_options(options)
                .build()
                .map_err(|e| one_line(&e.to_string()))?;
            Ok((Arc::new(store), location))
        }
        other => Err(format!("{other}:// is not supported (https://, s3://)")),
    }
}

/// An object_store error as one line a user can act on, without anything secret in it.
fn describe(e: &object_store::Error) -> String {
    use object_store::Error as E;
    let text = match e {
        E::NotFound { .. } => "not found (HTTP 404)".to_string(),
        E::PermissionDenied { .. } => "access denied (HTTP 403): check the key".to_string(),
        E::Unauthenticated { .. } => "not authenticated (HTTP 401): check the key".to_string(),
        E::Precondition { .. } => "the object changed since it was opened".to_string(),
        other => {
            // The chain's innermost error says what happened (object_store's own messages
            // repeat the request around it).
            let mut root: &dyn std::error::Error = other;
            while let Some(s) = root.source() {
                root = s;
            }
            let cause = root.to_string();
            let lower = cause.to_ascii_lowercase();
            if lower.contains("dns") || lower.contains("lookup address") {
                format!("cannot find the host (DNS): {cause}")
            } else if lower.contains("certificate") || lower.contains("tls") {
                format!("TLS failure: {cause}")
            } else if lower.contains("refused") {
                "connection refused: is the server running?".to_string()
            } else if lower.contains("timed out") || lower.contains("timeout") {
                "the server did not answer in time".to_string()
            } else {
                format!("request failed: {cause}")
            }
        }
    };
    one_line(&redact(&text))
}

/// The first line, trimmed, at most 300 characters.
fn one_line(s: &str) -> String {
    let line = s.lines().map(str::trim).collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}

/// Remove the values of the secret variables wherever they appear.
pub fn redact(s: &str) -> String {
    let mut out = s.to_string();
    for v in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
    ] {
        if let Ok(secret) = std::env::var(v)
            && secret.len() >= 4
        {
            out = out.replace(&secret, "[redacted]");
        }
    }
    out
}

/// The version string of an object: its ETag, else its Last-Modified time.
fn version_of(meta: &object_store::ObjectMeta) -> String {
    meta.e_tag
        .clone()
        .unwrap_or_else(|| meta.last_modified.to_rfc3339())
}

impl RemoteObject {
    /// Open `url`: one request reads its first [`SPECULATIVE`] bytes, its size and version.
    pub fn open(url: &str) -> Result<Self, String> {
        let (store, location) = store_for(url)?;
        let stats = Arc::new(FetchStats::default());
        let rt = runtime()?;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let first = rt.block_on(async {
            let r = store
                .get_opts(
                    &location,
                    GetOptions {
                        range: Some(GetRange::Bounded(0..SPECULATIVE)),
                        ..GetOptions::default()
                    },
                )
                .await?;
            let meta = r.meta.clone();
            let bytes = r.bytes().await?;
            Ok::<_, object_store::Error>((meta, bytes))
        });
        let (meta, bytes) = first.map_err(|e| describe(&e))?;
        stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if meta.size == 0 {
            return Err("the object is empty".into());
        }
        let version = version_of(&meta);
        let disk = RangeCache::open(url, &version, meta.size);
        let object = Self {
            url: url.to_string(),
            store,
            location,
            len: meta.size,
            version,
            blocks: Mutex::new(Blocks {
                ready: lru::LruCache::new(
                    NonZeroUsize::new(MEMORY_BLOCKS).unwrap_or(NonZeroUsize::MIN),
                ),
                pending: HashSet::new(),
                failed: HashMap::new(),
            }),
            arrived: Condvar::new(),
            disk,
            stats,
        };
        object.store_blocks(0, &bytes);
        Ok(object)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// ETag, else Last-Modified, when the object was opened.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn block_len(&self, b: u64) -> usize {
        (self.len - b * BLOCK).min(BLOCK) as usize
    }

    /// Keep the blocks of `data`, which starts at block `first` (a short last block only at
    /// the end of the object).
    fn store_blocks(&self, first: u64, data: &[u8]) {
        let whole: Vec<(u64, &[u8])> = data
            .chunks(BLOCK as usize)
            .enumerate()
            .map(|(i, chunk)| (first + i as u64, chunk))
            .take_while(|&(b, chunk)| chunk.len() == self.block_len(b))
            .collect();
        // To disk first, without holding the lock readers wait on.
        if let Some(d) = &self.disk {
            for &(b, chunk) in &whole {
                d.put(b, chunk);
            }
        }
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        for (b, chunk) in whole {
            blocks.pending.remove(&b);
            blocks.ready.put(b, Arc::new(chunk.to_vec()));
        }
        drop(blocks);
        self.arrived.notify_all();
    }

    /// Start fetching the blocks of `ranges` that are neither here nor on their way; returns
    /// at once.
    pub fn prefetch(self: &Arc<Self>, ranges: &[(u64, u64)]) {
        let mut wanted: Vec<u64> = Vec::new();
        for &(offset, len) in ranges {
            if len == 0 || offset >= self.len {
                continue;
            }
            let end = offset.saturating_add(len).min(self.len);
            wanted.extend(offset / BLOCK..end.div_ceil(BLOCK));
        }
        wanted.sort_unstable();
        wanted.dedup();
        let runs = self.claim(&wanted);
        for run in runs {
            let me = self.clone();
            if let Ok(rt) = runtime() {
                rt.spawn(async move { me.fetch(run).await });
            }
        }
    }

    /// Of `wanted` (sorted blocks), mark those neither in memory, on disk, nor pending as
    /// pending, and group them into runs to fetch (gaps of up to [`GAP_BLOCKS`] joined).
    fn claim(&self, wanted: &[u64]) -> Vec<Range<u64>> {
        let mut missing = Vec::new();
        {
            let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            for &b in wanted {
                let here = blocks.ready.contains(&b);
                if here || blocks.pending.contains(&b) {
                    continue;
                }
                if let Some(data) = self.disk.as_ref().and_then(|d| d.get(b, self.block_len(b))) {
                    self.stats.disk_blocks.fetch_add(1, Ordering::Relaxed);
                    blocks.ready.put(b, Arc::new(data));
                    continue;
                }
                blocks.pending.insert(b);
                blocks.failed.remove(&b);
                missing.push(b);
            }
        }
        let mut runs: Vec<Range<u64>> = Vec::new();
        for b in missing {
            match runs.last_mut() {
                Some(r) if b <= r.end + GAP_BLOCKS => {
                    // The gap's blocks come along (they are not marked pending: a read that
                    // wants one claims it itself).
                    r.end = b + 1;
                }
                _ => runs.push(b..b + 1),
            }
        }
        runs
    }

    /// Fetch blocks `run` in one range request; wake the readers waiting for them.
    async fn fetch(self: Arc<Self>, run: Range<u64>) {
        let start = run.start * BLOCK;
        let end = (run.end * BLOCK).min(self.len);
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = async {
            let r = self
                .store
                .get_opts(
                    &self.location,
                    GetOptions {
                        range: Some(GetRange::Bounded(start..end)),
                        ..GetOptions::default()
                    },
                )
                .await?;
            let changed = version_of(&r.meta) != self.version || r.meta.size != self.len;
            let bytes = r.bytes().await?;
            Ok::<_, object_store::Error>((changed, bytes))
        }
        .await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        let failure = match result {
            Ok((false, bytes)) if bytes.len() as u64 == end - start => {
                self.stats
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                self.store_blocks(run.start, &bytes);
                return;
            }
            Ok((true, _)) => {
                "the object changed since it was opened (its ETag or date differs)".to_string()
            }
            Ok((false, bytes)) => format!(
                "the server sent {} bytes for a range of {}",
                bytes.len(),
                end - start
            ),
            Err(e) => describe(&e),
        };
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        for b in run {
            if blocks.pending.remove(&b) {
                blocks.failed.insert(b, failure.clone());
            }
        }
        drop(blocks);
        self.arrived.notify_all();
    }

    /// Read up to `buf.len()` bytes at `offset` for a stream reader: the first block is
    /// fetched if it must be, the rest only as far as it is already here. A decoder's buffered
    /// read-ahead past its chunk then costs no request of its own.
    pub fn read_some(self: &Arc<Self>, offset: u64, buf: &mut [u8]) -> Result<usize, FormatError> {
        let want = (self.len.saturating_sub(offset)).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let b = offset / BLOCK;
        let here = {
            let blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
            blocks.ready.contains(&b) || blocks.pending.contains(&b)
        };
        if !here {
            self.prefetch(&[(b * BLOCK, READ_AHEAD)]);
        }
        let first_end = ((b + 1) * BLOCK).min(offset + want as u64);
        let mut n = (first_end - offset) as usize;
        self.read_exact_at(offset, &mut buf[..n])?;
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        while n < want {
            let at = offset + n as u64;
            let b = at / BLOCK;
            let Some(data) = blocks.ready.get(&b).cloned() else {
                break;
            };
            let from = (at - b * BLOCK) as usize;
            let k = (data.len() - from).min(want - n);
            buf[n..n + k].copy_from_slice(&data[from..from + k]);
            n += k;
        }
        Ok(n)
    }

    /// Fill `buf` from `offset` (inside the object), fetching what is missing and waiting for
    /// what is on its way.
    pub fn read_exact_at(self: &Arc<Self>, offset: u64, buf: &mut [u8]) -> Result<(), FormatError> {
        if buf.is_empty() {
            return Ok(());
        }
        let end = offset + buf.len() as u64;
        let wanted: Vec<u64> = (offset / BLOCK..end.div_ceil(BLOCK)).collect();
        let runs = self.claim(&wanted);
        // Fetch our own runs here (the caller is a worker thread: it may block), the others'
        // are awaited below.
        if !runs.is_empty() {
            let rt = runtime().map_err(|e| FormatError::Io {
                offset,
                source: std::io::Error::other(e),
            })?;
            // All at once: several requests in flight.
            let tasks: Vec<_> = runs
                .into_iter()
                .map(|r| rt.spawn(self.clone().fetch(r)))
                .collect();
            rt.block_on(async move {
                for t in tasks {
                    let _ = t.await;
                }
            });
        }
        let mut got: Vec<Arc<Vec<u8>>> = Vec::with_capacity(wanted.len());
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        for &b in &wanted {
            loop {
                if let Some(msg) = blocks.failed.remove(&b) {
                    return Err(FormatError::Io {
                        offset: b * BLOCK,
                        source: std::io::Error::other(msg),
                    });
                }
                if let Some(data) = blocks.ready.get(&b).cloned() {
                    got.push(data);
                    break;
                }
                if !blocks.pending.contains(&b) {
                    // Evicted or never asked for (a gap block): fetch it now.
                    drop(blocks);
                    let runs = self.claim(&[b]);
                    if let (Some(run), Ok(rt)) = (runs.into_iter().next(), runtime()) {
                        rt.block_on(self.clone().fetch(run));
                    }
                    blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                let (guard, _) = self
                    .arrived
                    .wait_timeout(blocks, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner());
                blocks = guard;
            }
        }
        drop(blocks);
        let mut done = 0usize;
        for (i, data) in got.iter().enumerate() {
            let b = wanted[i];
            let from = if i == 0 {
                (offset - b * BLOCK) as usize
            } else {
                0
            };
            let n = (data.len() - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&data[from..from + n]);
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_and_checked() {
        assert!(is_url("https://example.org/a.tif"));
        assert!(is_url("s3://bucket/key.tif"));
        assert!(!is_url("/data/a.tif"));
        assert!(loopback("127.0.0.1") && loopback("localhost") && loopback("[::1]"));
        assert!(!loopback("example.org"));
        let err = |u: &str| store_for(u).err().unwrap_or_default();
        assert!(err("http://example.org/a.tif").contains("https://"));
        assert!(err("https://user:pw@example.org/a.tif").contains("credentials"));
        assert!(err("https://example.org/").contains("no object"));
        assert!(err("ftp://example.org/a").contains("not supported"));
        assert!(store_for("http://127.0.0.1:9/a.tif").is_ok());
        assert_eq!(one_line("a\n  b\n"), "a b");
    }
}
