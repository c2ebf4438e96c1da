//! The on-disk cache of fetched ranges: per remote object (keyed by URL, version and size, so
//! a changed object is fetched again) a sparse file of its bytes and a bitmap of the blocks
//! present, in `$TESSERA_CACHE_DIR` or the user's cache folder (`~/.cache/tessera/ranges`).
//! The folder is capped (`TESSERA_RANGE_CACHE_MB`, default 2048): opening an object removes
//! the least recently used objects beyond the cap. Failures only cost a fetch: the cache is
//! never required.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::remote::BLOCK;

/// A folder chosen by the program (tests, embedding) over the environment's.
static ROOT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Keep this process's range cache in `dir` (instead of `$TESSERA_CACHE_DIR` or the user's
/// cache folder).
pub fn set_root(dir: PathBuf) {
    if let Ok(mut r) = ROOT.lock() {
        *r = Some(dir);
    }
}

/// The folder of all cached objects.
pub fn root() -> Option<PathBuf> {
    if let Some(d) = ROOT.lock().ok().and_then(|r| r.clone()) {
        return Some(d);
    }
    if let Some(d) = std::env::var_os("TESSERA_CACHE_DIR") {
        return Some(PathBuf::from(d).join("ranges"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("tessera").join("ranges"))
}

fn cap_bytes() -> u64 {
    std::env::var("TESSERA_RANGE_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(2048)
        .saturating_mul(1 << 20)
}

/// Largest object kept (64 TB): its bitmap is 512 MB.
const MAX_OBJECT: u64 = 1 << 46;

pub struct RangeCache {
    data: File,
    /// The bitmap file and its contents (a bit per block).
    have: Mutex<(File, Vec<u8>)>,
}

/// Bytes a cached object's folder holds on disk (its sparse data file counts what is there).
fn used(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

/// Remove the least recently used objects until the folder fits `cap` (keeping `keep`).
fn trim(root: &Path, keep: &Path, cap: u64) {
    let mut dirs: Vec<(std::time::SystemTime, PathBuf, u64)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p != keep)
        .map(|p| {
            let t = std::fs::metadata(p.join("have"))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            let n = used(&p);
            (t, p, n)
        })
        .collect();
    let mut total: u64 = dirs.iter().map(|d| d.2).sum::<u64>() + used(keep);
    dirs.sort();
    for (_, p, n) in dirs {
        if total <= cap {
            break;
        }
        if std::fs::remove_dir_all(&p).is_ok() {
            total = total.saturating_sub(n);
        }
    }
}

/// Open (or create) a file to read and write in place.
fn open_rw(path: &Path) -> Option<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ok()
}

impl RangeCache {
    /// The cache of object `url` at `version` (`len` bytes); `None` where it cannot be kept.
    pub fn open(url: &str, version: &str, len: u64) -> Option<Self> {
        // The size comes from the server: a bitmap for an absurd one is not allocated.
        if len == 0 || len > MAX_OBJECT {
            return None;
        }
        let root = root()?;
        let mut h = std::hash::DefaultHasher::new();
        (url, version, len).hash(&mut h);
        let dir = root.join(format!("{:016x}", h.finish()));
        std::fs::create_dir_all(&dir).ok()?;
        trim(&root, &dir, cap_bytes());
        let data = open_rw(&dir.join("data"))?;
        if data.metadata().ok()?.len() != len {
            data.set_len(len).ok()?;
        }
        let blocks = len.div_ceil(BLOCK);
        let have_file = open_rw(&dir.join("have"))?;
        let mut bits = Vec::new();
        let _ = std::io::Read::read_to_end(&mut &have_file, &mut bits);
        bits.resize(blocks.div_ceil(8) as usize, 0);
        // Which object this is, for a person looking at the folder.
        let _ = std::fs::write(dir.join("object"), format!("{url}\n{version}\n{len}\n"));
        Some(Self {
            data,
            have: Mutex::new((have_file, bits)),
        })
    }

    /// Block `b` (`len` bytes), if it is here.
    pub fn get(&self, b: u64, len: usize) -> Option<Vec<u8>> {
        let present = {
            let have = self.have.lock().ok()?;
            have.1
                .get((b / 8) as usize)
                .is_some_and(|byte| byte & (1 << (b % 8)) != 0)
        };
        if !present {
            return None;
        }
        let mut buf = vec![0u8; len];
        self.data.read_exact_at(&mut buf, b * BLOCK).ok()?;
        Some(buf)
    }

    /// Keep block `b`: the bytes first, then its bit.
    pub fn put(&self, b: u64, data: &[u8]) {
        if self.data.write_all_at(data, b * BLOCK).is_err() {
            return;
        }
        if let Ok(mut have) = self.have.lock() {
            let i = (b / 8) as usize;
            if let Some(byte) = have.1.get_mut(i) {
                *byte |= 1 << (b % 8);
                let v = [*byte];
                let _ = have.0.write_all_at(&v, i as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_a_new_version_starts_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        set_root(dir.path().to_path_buf());
        let len = 3 * BLOCK + 100;
        let c = RangeCache::open("https://h/a.tif", "v1", len).expect("cache");
        let last = vec![7u8; 100];
        c.put(3, &last);
        assert_eq!(c.get(3, 100), Some(last.clone()));
        assert_eq!(c.get(0, BLOCK as usize), None);
        drop(c);
        // Kept between opens of the same version; a new version is another object.
        let again = RangeCache::open("https://h/a.tif", "v1", len).expect("cache");
        assert_eq!(again.get(3, 100), Some(last));
        let changed = RangeCache::open("https://h/a.tif", "v2", len).expect("cache");
        assert_eq!(changed.get(3, 100), None);
        assert!(RangeCache::open("https://h/a.tif", "v1", u64::MAX).is_none());
    }
}
