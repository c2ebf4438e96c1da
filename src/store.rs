//! Where built levels and stream indexes are kept between runs: one file per image in the
//! user's cache folder,
//! named by a hash of the image's path and checked against the image's size and modification
//! time, with a total size cap (least recently used files go first).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What identifies the image a sidecar was built from. Written into the sidecar; a sidecar
/// whose identity differs (the file was replaced or modified) is stale.
pub fn identity(path: &Path, page: u32) -> std::io::Result<String> {
    let canon = fs::canonicalize(path)?;
    let meta = fs::metadata(&canon)?;
    let mtime = meta
        .modified()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Ok(format!(
        "tessera levels v1\nsource: {}\nsize: {}\nmtime: {}\npage: {}\n",
        canon.display(),
        meta.len(),
        mtime,
        page
    ))
}

/// FNV-1a: a stable, dependency-free name for a path (not a security boundary: the identity
/// inside the file is what is checked).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The sidecar file for `path` (page `page`) inside `dir`.
pub fn file_for(dir: &Path, path: &Path, page: u32) -> PathBuf {
    let canon = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let key = fnv1a(canon.as_os_str().as_encoded_bytes()) ^ u64::from(page);
    dir.join(format!("{key:016x}.tif"))
}

/// A partial file name for a build in progress by this process.
pub fn partial_for(final_path: &Path) -> PathBuf {
    final_path.with_extension(format!("{}.partial", std::process::id()))
}

/// The default folder: `$TESSERA_LEVELS_DIR`, else `$XDG_CACHE_HOME/tessera/levels`, else
/// `~/.cache/tessera/levels`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("TESSERA_LEVELS_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("tessera").join("levels"))
}

/// Bytes free for an unprivileged user on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    crate::sys::free_bytes(dir)
}

/// One kept sidecar, for eviction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub len: u64,
    pub used: SystemTime,
}

/// Which entries to delete so that `need` more bytes fit under `cap`: least recently used
/// first, never `keep`. Pure, so the policy is tested apart from the file system.
pub fn victims(entries: &[Entry], need: u64, cap: u64, keep: &Path) -> Vec<PathBuf> {
    let mut sorted: Vec<&Entry> = entries.iter().filter(|e| e.path != keep).collect();
    sorted.sort_by_key(|e| e.used);
    let mut total: u64 = entries.iter().map(|e| e.len).sum();
    let mut out = Vec::new();
    for e in sorted {
        if total.saturating_add(need) <= cap {
            break;
        }
        total -= e.len;
        out.push(e.path.clone());
    }
    out
}

/// Sidecars and partial builds in `dir`. Partial files of processes that are gone are
/// removed on the way (a build that was killed leaves nothing behind for long).
pub fn entries(dir: &Path) -> Vec<Entry> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in read.flatten() {
        let path = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".partial") {
            let pid = stem.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        if !name.ends_with(".tif") && !name.ends_with(".idx") {
            continue;
        }
        if let Ok(meta) = e.metadata() {
            out.push(Entry {
                path,
                len: meta.len(),
                used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
    }
    out
}

/// Delete least recently used sidecars until `need` more bytes fit under `cap`.
pub fn make_room(dir: &Path, need: u64, cap: u64, keep: &Path) {
    for path in victims(&entries(dir), need, cap, keep) {
        let _ = fs::remove_file(path);
    }
}

/// Mark a sidecar as just used (its modification time orders eviction).
pub fn touch(path: &Path) {
    if let Ok(f) = fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn e(name: &str, len: u64, age: u64) -> Entry {
        Entry {
            path: PathBuf::from(name),
            len,
            used: SystemTime::UNIX_EPOCH + Duration::from_secs(1000 - age),
        }
    }

    #[test]
    fn evicts_least_recently_used_until_it_fits() {
        let all = [e("a", 40, 1), e("b", 40, 3), e("c", 40, 2)];
        assert!(victims(&all, 0, 120, Path::new("x")).is_empty());
        assert_eq!(
            victims(&all, 30, 120, Path::new("x")),
            vec![PathBuf::from("b")]
        );
        assert_eq!(
            victims(&all, 50, 100, Path::new("b")),
            vec![PathBuf::from("c"), PathBuf::from("a")],
            "never the one kept"
        );
    }

    #[test]
    fn names_are_stable_and_differ_by_page() {
        let d = Path::new("/tmp");
        let p = Path::new("/nonexistent/image.ppm");
        assert_eq!(file_for(d, p, 0), file_for(d, p, 0));
        assert_ne!(file_for(d, p, 0), file_for(d, p, 1));
    }
}
