//! Geometry and on-disk layout of built levels, kept free of I/O so it can be tested.
//!
//! Built levels are stored as an ordinary BigTIFF: one uncompressed, strip-organised page per
//! level (NewSubfileType = reduced), samples L, RGBX (RGB padded to four bytes, ExtraSamples
//! unspecified) or RGBA. Any TIFF reader can open it, and Tessera reads it back through its
//! own TIFF path: per-level descriptors, column windows of raw strips, and `mmap`, since L,
//! RGBX and RGBA are layouts PIL maps as they are stored. Every offset is fixed before the first
//! pixel is written, so the builder fills strips in place as rows arrive and a reader can use
//! the strips already written while the rest is still being built.

/// Bytes reserved at offset 16 for the identity text (what the levels were built from).
pub const IDENTITY_LEN: usize = 4096 - 16;

/// The identity stored in a sidecar's header, if it has one.
pub fn stored_identity(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; IDENTITY_LEN];
    f.read_exact_at(&mut buf, 16).ok()?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..end].to_vec()).ok()
}
/// Levels stop at the first one whose longer side is at most this many pixels.
pub const SMALLEST_SIDE: u32 = 512;
/// Target bytes per strip: big enough for few descriptors, small enough to appear often.
const STRIP_BYTES: u64 = 1 << 20;
const ALIGN: u64 = 4096;

/// One level: the source reduced by `factor` (box filter), stored at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelGeom {
    pub factor: u32,
    pub width: u32,
    pub height: u32,
    pub rows_per_strip: u32,
    /// First byte of the level's pixel rows (rows are contiguous, `stride` bytes apart).
    pub offset: u64,
    pub stride: u64,
}

impl LevelGeom {
    pub fn strips(&self) -> u32 {
        self.height.div_ceil(self.rows_per_strip)
    }
    pub fn bytes(&self) -> u64 {
        self.stride * u64::from(self.height)
    }
}

/// The levels of one image and where each lives in the sidecar file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelPlan {
    pub src_width: u32,
    pub src_height: u32,
    /// Samples per pixel filtered: 1 (gray), 3 (RGB, stored as RGBX) or 4 (RGBA); for data
    /// pages (`float`), any number of channels.
    pub spp: u8,
    /// Samples are 32-bit floats (levels of a data page: the mean of the valid samples, NaN
    /// where a block has none), stored as they are (no padding).
    pub float: bool,
    pub levels: Vec<LevelGeom>,
    /// Length of the whole sidecar file.
    pub file_len: u64,
}

/// Every factor worth a level for a `w`×`h` image: 2, 4, ... down to the first level whose
/// longer side is at most [`SMALLEST_SIDE`]. Empty for images already that small.
pub fn factors(w: u32, h: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut f = 2u64;
    let side = u64::from(w.max(h));
    if side <= u64::from(SMALLEST_SIDE) {
        return out;
    }
    while f <= 1 << 31 {
        out.push(f as u32);
        if side.div_ceil(f) <= u64::from(SMALLEST_SIDE) {
            break;
        }
        f *= 2;
    }
    out
}

impl LevelPlan {
    /// Levels from factor `min_factor` (a power of two ≥ 2) down; `None` when there are none.
    pub fn new(w: u32, h: u32, spp: u8, min_factor: u32) -> Option<Self> {
        Self::new_kind(w, h, spp, false, min_factor)
    }

    /// [`LevelPlan::new`] for 8-bit (`float` false) or 32-bit float samples.
    pub fn new_kind(w: u32, h: u32, spp: u8, float: bool, min_factor: u32) -> Option<Self> {
        let fs: Vec<u32> = factors(w, h)
            .into_iter()
            .filter(|&f| f >= min_factor)
            .collect();
        let ok = if float {
            spp >= 1
        } else {
            matches!(spp, 1 | 3 | 4)
        };
        if fs.is_empty() || !ok {
            return None;
        }
        let disk_samples = stored_samples(spp, float);
        let sample_bytes = if float { 4 } else { 1 };
        let mut levels: Vec<LevelGeom> = fs
            .iter()
            .map(|&f| {
                let (lw, lh) = (w.div_ceil(f), h.div_ceil(f));
                let stride = u64::from(lw) * u64::from(disk_samples) * sample_bytes;
                let rows_per_strip = (STRIP_BYTES / stride).clamp(8, 1024) as u32;
                LevelGeom {
                    factor: f,
                    width: lw,
                    height: lh,
                    rows_per_strip: rows_per_strip.min(lh),
                    offset: 0,
                    stride,
                }
            })
            .collect();
        // Header, identity, then each IFD with its arrays; pixel data page-aligned after.
        let mut pos = 16 + IDENTITY_LEN as u64;
        for l in &levels {
            pos += ifd_len(l, spp, float);
        }
        for l in &mut levels {
            pos = pos.next_multiple_of(ALIGN);
            l.offset = pos;
            pos += l.bytes();
        }
        Some(Self {
            src_width: w,
            src_height: h,
            spp,
            float,
            levels,
            file_len: pos,
        })
    }

    /// The smallest plan (finest first level) whose file fits in `cap` bytes.
    pub fn within(w: u32, h: u32, spp: u8, cap: u64) -> Option<Self> {
        Self::within_kind(w, h, spp, false, cap)
    }

    /// [`LevelPlan::within`] for 8-bit or float samples.
    pub fn within_kind(w: u32, h: u32, spp: u8, float: bool, cap: u64) -> Option<Self> {
        factors(w, h)
            .into_iter()
            .filter_map(|f| Self::new_kind(w, h, spp, float, f))
            .find(|p| p.file_len <= cap)
    }

    /// Samples per pixel on disk.
    pub fn stored_samples(&self) -> u8 {
        stored_samples(self.spp, self.float)
    }

    /// The file's first 16 + [`IDENTITY_LEN`] bytes and every IFD: everything but the pixels.
    pub fn header(&self, identity: &str) -> Vec<u8> {
        let disk = self.stored_samples();
        let mut out = Vec::with_capacity(self.levels[0].offset as usize);
        out.extend_from_slice(b"II");
        out.extend_from_slice(&43u16.to_le_bytes());
        out.extend_from_slice(&8u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        let first_ifd = 16 + IDENTITY_LEN as u64;
        out.extend_from_slice(&first_ifd.to_le_bytes());
        let id = identity.as_bytes();
        let id_len = id.len().min(IDENTITY_LEN - 1);
        out.extend_from_slice(&id[..id_len]);
        out.resize(16 + IDENTITY_LEN, 0);
        let spp = self.spp;
        let mut pos = first_ifd;
        for (i, l) in self.levels.iter().enumerate() {
            let float = self.float;
            let next = if i + 1 < self.levels.len() {
                pos + ifd_len(l, spp, float)
            } else {
                0
            };
            let strips = u64::from(l.strips());
            let entries = entry_count(self.spp, float);
            let arrays = pos + 8 + 20 * entries + 8;
            let multi = strips > 1;
            let (off_at, len_at) = (arrays, arrays + 8 * strips);
            // Per-sample arrays of more than four SHORTs (float levels of 5+ channels) follow
            // the strip arrays.
            let shorts_at = arrays + if multi { 16 * strips } else { 0 };
            let n = u64::from(disk);
            let (bits_at, format_at, extras_at) = (shorts_at, shorts_at + 2 * n, shorts_at + 4 * n);
            let shorts = |v: u16, count: u64, at: u64| {
                if count > 4 {
                    at
                } else {
                    packed_shorts(&vec![v; count as usize])
                }
            };
            let mut e: Vec<(u16, u16, u64, u64)> = vec![
                (254, 4, 1, 1),
                (256, 4, 1, u64::from(l.width)),
                (257, 4, 1, u64::from(l.height)),
                (258, 3, n, shorts(if float { 32 } else { 8 }, n, bits_at)),
                (259, 3, 1, 1),
                (262, 3, 1, if self.spp == 1 || float { 1 } else { 2 }),
                (270, 2, id_len as u64 + 1, 16),
                (273, 16, strips, if multi { off_at } else { l.offset }),
                (277, 3, 1, u64::from(disk)),
                (278, 4, 1, u64::from(l.rows_per_strip)),
                (279, 16, strips, if multi { len_at } else { l.bytes() }),
                (284, 3, 1, 1),
            ];
            if float {
                // Channels beyond the first are extra channels (not alpha); IEEE floats.
                if disk > 1 {
                    e.push((338, 3, n - 1, shorts(0, n - 1, extras_at)));
                }
                e.push((339, 3, n, shorts(3, n, format_at)));
            } else if disk == 4 {
                // Unassociated alpha, or (RGBX) a pad byte with no meaning.
                e.push((338, 3, 1, if self.spp == 4 { 2 } else { 0 }));
            }
            debug_assert_eq!(e.len() as u64, entries);
            out.extend_from_slice(&entries.to_le_bytes());
            for (tag, typ, count, value) in e {
                out.extend_from_slice(&tag.to_le_bytes());
                out.extend_from_slice(&typ.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            out.extend_from_slice(&next.to_le_bytes());
            if multi {
                for s in 0..l.strips() {
                    let row = u64::from(s * l.rows_per_strip);
                    out.extend_from_slice(&(l.offset + row * l.stride).to_le_bytes());
                }
                for s in 0..l.strips() {
                    let rows = (l.height - s * l.rows_per_strip).min(l.rows_per_strip);
                    out.extend_from_slice(&(u64::from(rows) * l.stride).to_le_bytes());
                }
            }
            if float && n > 4 {
                for (v, count) in [(32u16, n), (3, n)] {
                    for _ in 0..count {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                }
                if n - 1 > 4 {
                    out.extend(std::iter::repeat_n(0u8, 2 * (n as usize - 1)));
                }
            }
            pos += ifd_len(l, spp, float);
            debug_assert_eq!(out.len() as u64, pos);
        }
        out
    }
}

/// Samples a pixel on disk: 8-bit RGB is padded to RGBX (four bytes a pixel is a layout that
/// can be memory-mapped); float levels are stored as they are.
fn stored_samples(spp: u8, float: bool) -> u8 {
    if spp == 3 && !float { 4 } else { spp }
}

fn entry_count(spp: u8, float: bool) -> u64 {
    if float {
        13 + u64::from(spp > 1)
    } else if stored_samples(spp, false) == 4 {
        13
    } else {
        12
    }
}

/// Bytes of a level's IFD plus its out-of-line strip arrays.
fn ifd_len(l: &LevelGeom, spp: u8, float: bool) -> u64 {
    let strips = u64::from(l.strips());
    let arrays = if strips > 1 { 16 * strips } else { 0 };
    let n = u64::from(spp);
    let shorts = if float && n > 4 {
        4 * n + if n - 1 > 4 { 2 * (n - 1) } else { 0 }
    } else {
        0
    };
    8 + 20 * entry_count(spp, float) + 8 + arrays + shorts
}

/// Up to four SHORTs packed into an inline 8-byte value.
fn packed_shorts(v: &[u16]) -> u64 {
    v.iter()
        .take(4)
        .enumerate()
        .fold(0, |acc, (i, &s)| acc | (u64::from(s) << (16 * i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_stop_at_a_few_hundred_pixels() {
        assert_eq!(factors(24000, 24000), vec![2, 4, 8, 16, 32, 64]);
        assert_eq!(factors(1024, 768), vec![2]);
        assert!(factors(512, 300).is_empty());
        assert_eq!(factors(513, 1), vec![2]);
    }

    #[test]
    fn cap_picks_the_finest_level_that_fits() {
        let all = LevelPlan::new(24000, 24000, 3, 2).expect("plan");
        assert_eq!(all.levels[0].factor, 2);
        let capped = LevelPlan::within(24000, 24000, 3, all.file_len - 1).expect("plan");
        assert_eq!(capped.levels[0].factor, 4);
        assert!(capped.file_len < all.file_len);
        assert!(LevelPlan::within(24000, 24000, 3, 1000).is_none());
    }

    #[test]
    fn levels_are_aligned_and_disjoint() {
        let p = LevelPlan::new(5001, 3001, 4, 2).expect("plan");
        let header = p.header("test");
        assert!(header.len() as u64 <= p.levels[0].offset);
        let mut end = header.len() as u64;
        for l in &p.levels {
            assert_eq!(l.offset % ALIGN, 0);
            assert!(l.offset >= end);
            end = l.offset + l.bytes();
        }
        assert_eq!(end, p.file_len);
    }
}
