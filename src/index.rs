//! Checkpoints into streams that otherwise decode only from their start (PNG's zlib stream,
//! a JPEG scan with restart markers), so that any band can be decoded on its own.
//!
//! The first pass over a stream (the viewer's loader, or the level build) records one
//! checkpoint per band as it goes; later requests resume from the nearest checkpoint at or
//! above the band. A complete index is kept next to the built levels (same folder, same
//! identity check), so the next open needs no pass at all.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::format::{Access, Page, TileDescriptor};

/// Where a PNG band's decoding can resume: a deflate block boundary at or before the band's
/// first row, with everything the inflater and the unfilter need to carry on from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PngCheckpoint {
    /// Bytes of the zlib stream consumed (the concatenated IDAT payloads).
    pub zpos: u64,
    /// File offset of the next payload byte, and payload bytes left in its IDAT chunk.
    pub file_pos: u64,
    pub chunk_left: u32,
    /// Decompressed (filtered) bytes produced before this point.
    pub out_pos: u64,
    /// Lengths of the previous row, the window and the inflater state held in `packed`.
    pub lens: [u32; 3],
    /// The unfiltered row above (empty on row 0), the last 32 KB (or less, near the start) of
    /// decompressed output (the inflate window), and the inflater's state (serialised by its
    /// own serde derive), deflated together: most of it is image data.
    pub packed: Vec<u8>,
}

/// What a PNG checkpoint holds besides positions.
pub struct PngState {
    pub prev: Vec<u8>,
    pub window: Vec<u8>,
    pub inflater: Box<miniz_oxide::inflate::core::DecompressorOxide>,
}

impl PngCheckpoint {
    pub fn pack(state: &PngState) -> ([u32; 3], Vec<u8>) {
        // Serialising a plain struct of numbers and arrays cannot fail.
        let inflater = serde_json::to_vec(&*state.inflater).unwrap_or_default();
        let mut raw = Vec::with_capacity(state.prev.len() + state.window.len() + inflater.len());
        for part in [&state.prev, &state.window, &inflater] {
            raw.extend_from_slice(part);
        }
        let lens = [
            state.prev.len() as u32,
            state.window.len() as u32,
            inflater.len() as u32,
        ];
        (lens, miniz_oxide::deflate::compress_to_vec(&raw, 1))
    }

    pub fn unpack(&self) -> Option<PngState> {
        let [p, w, q] = self.lens.map(|l| l as usize);
        let raw =
            miniz_oxide::inflate::decompress_to_vec_with_limit(&self.packed, p + w + q).ok()?;
        if raw.len() != p + w + q || w > 1 << 15 {
            return None;
        }
        Some(PngState {
            prev: raw[..p].to_vec(),
            window: raw[p..p + w].to_vec(),
            inflater: serde_json::from_slice(&raw[p + w..]).ok()?,
        })
    }
}

/// A JPEG band: its restart intervals, as they lie in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegCheckpoint {
    /// Offset of the band's first entropy-coded byte (just after an RST marker or the SOS).
    pub offset: u64,
    /// Bytes up to the RST marker that ends the band (or the EOI).
    pub length: u64,
    /// Bytes of the interval group just above the band (0 for the first band) and just below
    /// it (0 for the last): decoded too, for the upsampling's context rows.
    pub lead: u64,
    pub tail: u64,
}

/// A point in a JPEG scan's entropy-coded data: where an MCU row starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanPoint {
    /// File offset of the byte holding the next bit (the 0xFF of a stuffed 0xFF 0x00), and
    /// bits of it already used.
    pub offset: u64,
    pub bit: u8,
    /// Data bits (stuffing removed) from the scan's start.
    pub data_bits: u64,
    /// The DC predictors of the components at this point.
    pub preds: [i32; 4],
}

/// A band of a baseline JPEG without restart markers: MCU rows `first_row..end_row` (one
/// more above and below the band, for the upsampling's context rows), from `start` to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegRowsCheckpoint {
    pub first_row: u32,
    pub end_row: u32,
    pub start: ScanPoint,
    pub end: ScanPoint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    Png(PngCheckpoint),
    Jpeg(JpegCheckpoint),
    JpegRows(JpegRowsCheckpoint),
}

impl Checkpoint {
    /// Offset in the file where decoding from this checkpoint starts reading.
    pub fn file_offset(&self) -> u64 {
        match self {
            Checkpoint::Png(c) => c.file_pos,
            Checkpoint::Jpeg(c) => c.offset,
            Checkpoint::JpegRows(c) => c.start.offset,
        }
    }

    /// The descriptor args text for the band this checkpoint starts.
    pub fn describe(&self) -> String {
        match self {
            Checkpoint::Png(c) => format!("checkpoint zlib byte {}, out {}", c.zpos, c.out_pos),
            Checkpoint::Jpeg(c) => format!("restart interval @{} +{}", c.offset, c.length),
            Checkpoint::JpegRows(c) => format!(
                "MCU row {} @{} bit {}, DC {:?}",
                c.first_row, c.start.offset, c.start.bit, c.start.preds
            ),
        }
    }

    fn memory(&self) -> usize {
        match self {
            Checkpoint::Png(c) => c.packed.len() + 64,
            Checkpoint::Jpeg(_) => 32,
            Checkpoint::JpegRows(_) => 96,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    points: Vec<Option<Arc<Checkpoint>>>,
    /// Bands whose first row a pass has gone past (their checkpoint, if any, is recorded).
    reached: u64,
    /// Bands reached that the kept file holds: a later save writes only when passes have gone
    /// further.
    saved: u64,
}

/// The checkpoints of one stream page, filled in while passes run.
#[derive(Debug)]
pub struct StreamIndex {
    bands: u64,
    inner: Mutex<Inner>,
    store: Mutex<Option<(PathBuf, String)>>,
    /// Held by a pass that finds checkpoints by scanning (JPEG markers): one at a time.
    scan: Mutex<()>,
}

impl StreamIndex {
    pub fn new(bands: u64) -> Self {
        Self {
            bands,
            inner: Mutex::new(Inner {
                points: vec![None; bands as usize],
                ..Inner::default()
            }),
            store: Mutex::new(None),
            scan: Mutex::new(()),
        }
    }

    /// Exclusive right to run a scanning pass (re-check `reached` once held).
    pub fn scan_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.scan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The checkpoint of `band`. When no pass has recorded it, run `pass` (one thread at a
    /// time); while another thread's pass runs, wait for it to get there, so bands are
    /// decoded top to bottom as the pass goes instead of after it.
    pub fn checkpoint_or_pass(
        &self,
        band: u64,
        pass: &dyn Fn() -> Result<(), crate::error::FormatError>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Arc<Checkpoint>>, crate::error::FormatError> {
        loop {
            if let Some(c) = self.checkpoint(band) {
                return Ok(Some(c));
            }
            if self.is_complete() {
                return Ok(None);
            }
            let held = match self.scan.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            if let Some(_one) = held {
                if self.checkpoint(band).is_none() && !self.is_complete() {
                    pass()?;
                }
                return Ok(self.checkpoint(band));
            }
            if cancelled() {
                return Err(crate::error::FormatError::Cancelled);
            }
            std::thread::sleep(std::time::Duration::from_millis(4));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn bands(&self) -> u64 {
        self.bands
    }

    /// Bands a pass has reached so far (all of them once the index is complete).
    pub fn reached(&self) -> u64 {
        self.lock().reached
    }

    pub fn is_complete(&self) -> bool {
        self.reached() >= self.bands
    }

    pub fn checkpoint(&self, band: u64) -> Option<Arc<Checkpoint>> {
        self.lock().points.get(band as usize).cloned().flatten()
    }

    /// Where to start decoding for `band`: the nearest band at or above it with a checkpoint
    /// (band 0 needs none: it starts the stream).
    pub fn resume_point(&self, band: u64) -> (u64, Option<Arc<Checkpoint>>) {
        let inner = self.lock();
        let top = band.min(self.bands.saturating_sub(1)) as usize;
        for b in (1..=top).rev() {
            if let Some(Some(c)) = inner.points.get(b) {
                return (b as u64, Some(c.clone()));
            }
        }
        (0, None)
    }

    pub fn record(&self, band: u64, point: Checkpoint) {
        let mut inner = self.lock();
        if let Some(slot) = inner.points.get_mut(band as usize)
            && slot.is_none()
        {
            *slot = Some(Arc::new(point));
        }
    }

    /// A pass has gone past the first row of every band below `bands`.
    pub fn mark_reached(&self, bands: u64) {
        let complete = {
            let mut inner = self.lock();
            let before = inner.reached;
            inner.reached = inner.reached.max(bands.min(self.bands));
            before < self.bands && inner.reached >= self.bands
        };
        if complete {
            self.save();
        }
    }

    /// Bytes the checkpoints take in memory.
    pub fn memory(&self) -> usize {
        self.lock()
            .points
            .iter()
            .flatten()
            .map(|c| c.memory())
            .sum()
    }

    pub fn checkpoints(&self) -> usize {
        self.lock().points.iter().flatten().count()
    }

    /// Keep the index at `path` (when complete, and what a partial pass found when asked:
    /// [`StreamIndex::keep_progress`]); load a kept copy now if it matches `identity`.
    /// Returns whether a complete index was loaded.
    pub fn attach_store(&self, path: PathBuf, identity: String) -> bool {
        let loaded = match std::fs::read(&path) {
            Ok(bytes) => match decode_file(&bytes, &identity, self.bands) {
                Some((reached, points)) => {
                    let mut inner = self.lock();
                    for (b, p) in points {
                        if let Some(slot) = inner.points.get_mut(b as usize)
                            && slot.is_none()
                        {
                            *slot = Some(Arc::new(p));
                        }
                    }
                    inner.reached = inner.reached.max(reached);
                    inner.saved = reached;
                    true
                }
                None => {
                    // Another version of the image, or damaged: built again by the next pass.
                    let _ = std::fs::remove_file(&path);
                    false
                }
            },
            Err(_) => false,
        };
        if loaded {
            crate::store::touch(&path);
        }
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = Some((path, identity));
        if self.is_complete() {
            self.save();
        }
        loaded && self.is_complete()
    }

    /// Keep what passes have found so far (a render or a view that stopped short of the end
    /// of the stream), so the next open resumes from it; a later, longer pass extends it.
    pub fn keep_progress(&self) {
        self.save();
    }

    /// Write the index to its store (temporary file, then renamed) when passes have gone
    /// further than the kept copy.
    fn save(&self) {
        let Some((path, identity)) = self.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
        else {
            return;
        };
        let (reached, points): (u64, Vec<(u64, Arc<Checkpoint>)>) = {
            let mut inner = self.lock();
            if inner.reached <= inner.saved {
                return;
            }
            inner.saved = inner.reached;
            let points = inner
                .points
                .iter()
                .enumerate()
                .filter_map(|(b, p)| p.clone().map(|p| (b as u64, p)))
                .collect();
            (inner.reached, points)
        };
        if points.is_empty() {
            // One band (a small image): nothing a later open could resume from.
            return;
        }
        let bytes = encode_file(&identity, self.bands, reached, &points);
        // Not the levels' partial name: a build of the same image may be running.
        let tmp = path.with_extension(format!("idx.{}.partial", std::process::id()));
        let written = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .and_then(|_| std::fs::File::create(&tmp))
            .and_then(|mut f| f.write_all(&bytes))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

const MAGIC: &[u8; 8] = b"TSIDX\x005\n";

fn put(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_blob(out: &mut Vec<u8>, b: &[u8]) {
    put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// File layout: magic, identity text, band count, then per checkpoint its band, kind and
/// fields; PNG windows and rows are deflated (they are image data, and most of the size).
fn encode_file(
    identity: &str,
    bands: u64,
    reached: u64,
    points: &[(u64, Arc<Checkpoint>)],
) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    put_blob(&mut out, identity.as_bytes());
    put(&mut out, bands);
    put(&mut out, reached);
    put(&mut out, points.len() as u64);
    for (band, p) in points {
        put(&mut out, *band);
        match &**p {
            Checkpoint::Png(c) => {
                out.push(0);
                for v in [c.zpos, c.file_pos, u64::from(c.chunk_left), c.out_pos] {
                    put(&mut out, v);
                }
                for l in c.lens {
                    put(&mut out, u64::from(l));
                }
                put_blob(&mut out, &c.packed);
            }
            Checkpoint::Jpeg(c) => {
                out.push(1);
                for v in [c.offset, c.length, c.lead, c.tail] {
                    put(&mut out, v);
                }
            }
            Checkpoint::JpegRows(c) => {
                out.push(2);
                put(&mut out, u64::from(c.first_row));
                put(&mut out, u64::from(c.end_row));
                for p in [c.start, c.end] {
                    put(&mut out, p.offset);
                    put(&mut out, u64::from(p.bit));
                    put(&mut out, p.data_bits);
                    for v in p.preds {
                        put(&mut out, v as u64);
                    }
                }
            }
        }
    }
    out
}

/// A reader over the index file that fails (None) instead of panicking on short data.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn len(&mut self, limit: u64) -> Option<usize> {
        let n = self.u64()?;
        (n <= limit).then_some(n as usize)
    }
}

/// The bands reached and the checkpoints of a kept index.
type Kept = (u64, Vec<(u64, Checkpoint)>);

fn decode_file(bytes: &[u8], identity: &str, bands: u64) -> Option<Kept> {
    let mut c = Cursor(bytes);
    if c.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let id_len = c.len(bytes.len() as u64)?;
    if c.take(id_len)? != identity.as_bytes() || c.u64()? != bands {
        return None;
    }
    let reached = c.u64()?.min(bands);
    let n = c.len(bands)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let band = c.u64()?;
        if band >= bands {
            return None;
        }
        let point = match c.u8()? {
            0 => {
                let (zpos, file_pos, chunk_left, out_pos) =
                    (c.u64()?, c.u64()?, c.u64()?, c.u64()?);
                // A row at most what a PNG row can hold; the window 32 KB; the state small.
                let lens = [c.len(1 << 31)?, c.len(1 << 15)?, c.len(1 << 24)?];
                let packed_len = c.len(bytes.len() as u64)?;
                Checkpoint::Png(PngCheckpoint {
                    zpos,
                    file_pos,
                    chunk_left: u32::try_from(chunk_left).ok()?,
                    out_pos,
                    lens: lens.map(|l| l as u32),
                    packed: c.take(packed_len)?.to_vec(),
                })
            }
            1 => Checkpoint::Jpeg(JpegCheckpoint {
                offset: c.u64()?,
                length: c.u64()?,
                lead: c.u64()?,
                tail: c.u64()?,
            }),
            2 => {
                let first_row = u32::try_from(c.u64()?).ok()?;
                let end_row = u32::try_from(c.u64()?).ok()?;
                let mut point = || -> Option<ScanPoint> {
                    let offset = c.u64()?;
                    let bit = u8::try_from(c.u64()?).ok().filter(|&b| b < 8)?;
                    let data_bits = c.u64()?;
                    let mut preds = [0i32; 4];
                    for p in &mut preds {
                        *p = i32::try_from(c.u64()? as i64).ok()?;
                    }
                    Some(ScanPoint {
                        offset,
                        bit,
                        data_bits,
                        preds,
                    })
                };
                let (start, end) = (point()?, point()?);
                if end.data_bits < start.data_bits || end_row <= first_row {
                    return None;
                }
                Checkpoint::JpegRows(JpegRowsCheckpoint {
                    first_row,
                    end_row,
                    start,
                    end,
                })
            }
            _ => return None,
        };
        out.push((band, point));
    }
    c.0.is_empty().then_some((reached, out))
}

/// The index file for `image_path` in `dir` (beside its levels sidecar).
pub fn file_for(dir: &Path, image_path: &Path) -> PathBuf {
    crate::store::file_for(dir, image_path, 0).with_extension("idx")
}

impl StreamIndex {
    /// Descriptor `index` of stream page `page` as this index knows it: once a pass has
    /// reached the band, where its decoding starts (its checkpoint, or the nearest above).
    pub fn descriptor(&self, page: &Page, index: u64) -> TileDescriptor {
        let ix = self;
        let mut d = page.descriptor(index);
        let unit = page.descriptor_unit(index);
        if unit >= ix.reached() {
            d.args.insert_str(d.args.len() - 1, ", not reached");
            return d;
        }
        d.access = Access::Checkpoint;
        let (from, point) = ix.resume_point(unit);
        let note = match &point {
            Some(c) if from == unit => c.describe(),
            Some(c) => format!("from band {from}'s {}", c.describe()),
            None if unit == 0 => "stream start".to_string(),
            None => "from the stream start".to_string(),
        };
        let end = d.offset + d.length;
        if let Some(c) = &point {
            d.offset = c.file_offset();
        }
        // The band's bytes run to the next checkpoint (the stream's end for the last).
        d.length = match (unit + 1 < ix.bands())
            .then(|| ix.checkpoint(unit + 1))
            .flatten()
        {
            Some(next) => next.file_offset().saturating_sub(d.offset),
            None => end.saturating_sub(d.offset),
        };
        d.args.insert_str(d.args.len() - 1, &format!(", {note}"));
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(z: u64) -> Checkpoint {
        let (lens, packed) = PngCheckpoint::pack(&PngState {
            prev: (0..50).collect(),
            window: vec![z as u8; 300],
            inflater: Box::default(),
        });
        Checkpoint::Png(PngCheckpoint {
            zpos: z,
            file_pos: z + 40,
            chunk_left: 7,
            out_pos: z * 3,
            lens,
            packed,
        })
    }

    #[test]
    fn resume_point_is_the_nearest_checkpoint_above() {
        let ix = StreamIndex::new(6);
        ix.record(2, png(100));
        ix.record(4, png(200));
        assert_eq!(ix.resume_point(1).0, 0);
        assert_eq!(ix.resume_point(3).0, 2);
        assert_eq!(ix.resume_point(4).0, 4);
        assert_eq!(ix.resume_point(99).0, 4);
        ix.record(4, png(999));
        assert_eq!(
            *ix.checkpoint(4).expect("recorded"),
            png(200),
            "the first record stays"
        );
    }

    #[test]
    fn file_round_trip_and_rejects() {
        let points = vec![
            (1, Arc::new(png(10))),
            (
                3,
                Arc::new(Checkpoint::Jpeg(JpegCheckpoint {
                    offset: 77,
                    length: 5,
                    lead: 3,
                    tail: 2,
                })),
            ),
        ];
        let bytes = encode_file("id", 5, 4, &points);
        let (reached, back) = decode_file(&bytes, "id", 5).expect("decodes");
        assert_eq!(reached, 4, "a partial pass is kept with how far it went");
        assert_eq!(back.len(), 2);
        assert_eq!(back[0], (1, png(10)));
        let Checkpoint::Png(c) = &back[0].1 else {
            panic!("not PNG")
        };
        let st = c.unpack().expect("unpacks");
        assert_eq!((st.prev.len(), st.window), (50, vec![10; 300]));
        assert_eq!(back[1].0, 3);
        assert!(
            decode_file(&bytes, "other", 5).is_none(),
            "identity differs"
        );
        assert!(decode_file(&bytes, "id", 6).is_none(), "band count differs");
        for cut in [0, 9, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                decode_file(&bytes[..cut], "id", 5).is_none(),
                "cut at {cut}"
            );
        }
    }
}
