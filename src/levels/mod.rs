//! Resolution levels built by Tessera for files that have none: one sequential pass over the
//! image box-filters every level (2×, 4×, ... down to a few hundred pixels) into a sidecar
//! BigTIFF, kept in the user's cache folder for the next open (see [`sidecar`]).
//!
//! The sidecar is attached to the [`OpenImage`] it belongs to; while it is being built, the
//! strips already written are usable (each level reports how many of its rows are done), so
//! the viewer shows the levels filling in, top to bottom.

pub mod boxfilter;
pub mod build;
pub mod floatfilter;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Error;
use crate::format::{Mode, Page};
use crate::image::OpenImage;
pub use crate::image::{BuildState, BuiltLevels, LevelStatus};
pub use crate::sidecar::LevelPlan;
pub use build::{BuildJob, BuildSummary};

/// Free disk space left untouched by a build.
const DISK_MARGIN: u64 = 512 << 20;

/// Where and how built levels are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelsConfig {
    /// Folder for sidecars; `None`: levels are built into a temporary file and not kept.
    pub dir: Option<PathBuf>,
    /// Total size of the folder's sidecars; the least recently used go first. One image's
    /// levels start at the finest factor that fits.
    pub cap_bytes: u64,
    /// The viewer builds levels on its own for images of at least this many pixels.
    pub auto_pixels: u64,
}

impl Default for LevelsConfig {
    fn default() -> Self {
        Self {
            dir: crate::store::default_dir(),
            cap_bytes: 4 << 30,
            auto_pixels: 16 << 20,
        }
    }
}

/// Samples per pixel the levels of `page` keep: gray stays gray, alpha stays.
pub fn samples_for(page: &Page) -> u8 {
    match page.mode {
        Mode::Bilevel | Mode::L | Mode::I16 => 1,
        Mode::Data => page.data.as_ref().map_or(1, |d| d.channels.min(255) as u8),
        m if m.has_alpha() => 4,
        _ => 3,
    }
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Open {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Whether `image` (page 0) should get built levels: no levels of its own and big enough.
pub fn wanted(image: &OpenImage, min_pixels: u64) -> bool {
    let Some(page) = image.layout.pages.first() else {
        return false;
    };
    own_levels(image) == 1
        && !crate::sidecar::factors(page.width, page.height).is_empty()
        && u64::from(page.width) * u64::from(page.height) >= min_pixels
}

/// Levels of page 0 that are pages of the file (the page itself included), from its pyramid.
fn own_levels(image: &OpenImage) -> usize {
    crate::pyramid::Pyramid::of(image, 0).map_or(0, |p| p.file_levels().count())
}

/// What `tessera levels` (or a render that wants levels) finds for an image.
pub enum Need {
    /// The file has `n` reduced-resolution pages of its own: nothing to build.
    OwnLevels(usize),
    /// Small enough to show whole.
    TooSmall { width: u32, height: u32 },
    /// Built before and kept: attached now.
    Kept,
    /// A build, prepared and attached (run it).
    Build(BuildJob),
}

/// Decide whether `image` (page 0) needs levels built, attach kept ones (`rebuild`: delete
/// them first), and prepare the build when one is needed.
pub fn prepare(image: &Arc<OpenImage>, cfg: &LevelsConfig, rebuild: bool) -> Result<Need, Error> {
    let own = own_levels(image);
    if own > 1 {
        return Ok(Need::OwnLevels(own - 1));
    }
    let (width, height) = image
        .layout
        .pages
        .first()
        .map_or((0, 0), |p| (p.width, p.height));
    if crate::sidecar::factors(width, height).is_empty() {
        return Ok(Need::TooSmall { width, height });
    }
    if rebuild && let Some(dir) = &cfg.dir {
        let path = crate::store::file_for(dir, image.path(), 0);
        if let Err(e) = fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("cannot delete {}: {e}", path.display());
        }
    }
    if attach_existing(image, cfg) {
        return Ok(Need::Kept);
    }
    prepare_build(image, cfg).map(Need::Build)
}

/// Attach the kept levels of `image`, if a valid sidecar exists (stale ones are deleted), and
/// its kept stream index.
/// Returns whether levels are attached now.
pub fn attach_existing(image: &OpenImage, cfg: &LevelsConfig) -> bool {
    // A stream's checkpoint index is kept beside the levels (and loaded here when kept).
    if let Some(dir) = &cfg.dir {
        image.attach_index(dir);
    }
    if image.built_levels().is_some() {
        return true;
    }
    let Some(dir) = &cfg.dir else {
        return false;
    };
    let path = crate::store::file_for(dir, image.path(), 0);
    if !path.exists() {
        return false;
    }
    let Ok(identity) = image.identity() else {
        return false;
    };
    let valid = crate::sidecar::stored_identity(&path).is_some_and(|s| s == identity);
    let opened = valid.then(|| open_sidecar(image, &path)).flatten();
    let Some((levels_image, plan)) = opened else {
        // Built from another version of the file, or damaged: build again.
        if let Err(e) = fs::remove_file(&path) {
            log::warn!("cannot delete stale levels {}: {e}", path.display());
        }
        return false;
    };
    crate::store::touch(&path);
    let status = Arc::new(LevelStatus::new(&plan, true));
    image.set_built_levels(BuiltLevels {
        image: levels_image,
        plan,
        status,
        kept_at: Some(path),
        temp: None,
    })
}

/// Open a sidecar and check that its pages are exactly the plan for `image`.
fn open_sidecar(image: &OpenImage, path: &Path) -> Option<(Arc<OpenImage>, LevelPlan)> {
    let page = image.layout.pages.first()?;
    let sc = OpenImage::open(path).ok()?;
    let first = sc.layout.pages.first()?;
    let min_factor = page.width.div_ceil(first.width).next_power_of_two();
    let plan = LevelPlan::new_kind(
        page.width,
        page.height,
        samples_for(page),
        page.data.is_some(),
        min_factor,
    )?;
    let matches = sc.layout.pages.len() == plan.levels.len()
        && sc.source.len() == plan.file_len
        && sc
            .layout
            .pages
            .iter()
            .zip(&plan.levels)
            .all(|(p, l)| p.width == l.width && p.height == l.height);
    matches.then_some((sc, plan))
}

/// Create the sidecar for a build of `image`'s levels and attach it (rows appear as the
/// returned job writes them). Fails when there is no room for even the coarsest levels.
pub fn prepare_build(image: &Arc<OpenImage>, cfg: &LevelsConfig) -> Result<BuildJob, Error> {
    let path = image.path().to_path_buf();
    let request = |msg: String| Error::Request {
        path: path.clone(),
        msg,
    };
    let page = image
        .layout
        .pages
        .first()
        .ok_or_else(|| request("no page to build levels of".into()))?;
    let spp = samples_for(page);
    let (dir, keep) = match &cfg.dir {
        Some(d) => (d.clone(), true),
        None => (std::env::temp_dir(), false),
    };
    fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
    let free = crate::store::free_bytes(&dir)
        .unwrap_or(u64::MAX)
        .saturating_sub(DISK_MARGIN);
    let cap = if keep { cfg.cap_bytes.min(free) } else { free };
    let plan = LevelPlan::within_kind(page.width, page.height, spp, page.data.is_some(), cap)
        .ok_or_else(|| {
            request(format!(
                "no room for levels in {} (cap {} MB, {} MB free)",
                dir.display(),
                cfg.cap_bytes >> 20,
                free >> 20
            ))
        })?;
    let final_path = if keep {
        Some(crate::store::file_for(&dir, &path, 0))
    } else {
        None
    };
    let identity = image.identity().map_err(|e| io_error(&path, e))?;
    let work_path = match &final_path {
        Some(f) => {
            crate::store::make_room(&dir, plan.file_len, cfg.cap_bytes, f);
            crate::store::partial_for(f)
        }
        None => dir.join(format!(
            "tessera-levels-{}-{:x}.tif",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        )),
    };
    let file = fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&work_path)
        .map_err(|e| io_error(&work_path, e))?;
    let written = (|| {
        use std::os::unix::fs::FileExt;
        file.write_all_at(&plan.header(&identity), 0)?;
        // Sparse until written: room is checked above, blocks are taken as strips land.
        file.set_len(plan.file_len)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&work_path);
        return Err(io_error(&work_path, e));
    }
    let levels_image = match OpenImage::open(&work_path) {
        Ok(i) => i,
        Err(e) => {
            let _ = fs::remove_file(&work_path);
            return Err(e);
        }
    };
    let status = Arc::new(LevelStatus::new(&plan, false));
    let attached = image.set_built_levels(BuiltLevels {
        image: levels_image,
        plan: plan.clone(),
        status: status.clone(),
        kept_at: final_path.clone(),
        temp: (!keep).then(|| work_path.clone()),
    });
    if !attached {
        let _ = fs::remove_file(&work_path);
        return Err(request("levels are already attached".into()));
    }
    Ok(BuildJob {
        image: image.clone(),
        plan,
        status,
        file,
        work_path,
        final_path,
        memory_budget: crate::cache::default_budget(),
        background: false,
        low_priority: false,
    })
}
