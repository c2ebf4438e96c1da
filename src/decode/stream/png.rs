//! PNG rows from any checkpoint: our own IDAT walk, inflate and unfilter.
//!
//! Why not the `png` crate here: it decodes only from the first IDAT and hides its inflater.
//! `miniz_oxide` (already under `png`) exposes its whole inflater state (`Clone`, and
//! serialisable with its `serde` feature), so the pass stops the inflater exactly where a
//! band's first row begins and snapshots it: the state (bit buffer, Huffman tables of the
//! current block), the 32 KB window and the unfiltered row above. That works mid-block, so
//! streams written as one huge deflate block (`fdeflate`, the `image` crate's default) get
//! checkpoints too. `fdeflate` inflates faster but exposes no state; `zlib-rs` has it only
//! through its unsafe C API.
//!
//! Two threads: one inflates (the bottleneck: deflate is strictly sequential), one unfilters,
//! records checkpoints and unpacks the wanted bands.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

use super::bands::{BandSink, Bands};
use super::read_ahead::{Blocks, Feed, READ_BLOCK, Window, read_ahead};
use crate::decode::Piece;
use crate::error::FormatError;
use crate::format::{Page, Storage};
use crate::index::{Checkpoint, PngCheckpoint, PngState, StreamIndex};
use crate::source::Source;
use std::ops::RangeInclusive;

const WINDOW: usize = 32 << 10;
/// Decompressed bytes handed from the inflater to the unfilter at a time.
const OUT_CHUNK: usize = 1 << 20;

/// Reads the concatenated IDAT payloads, walking the chunks in the blocks `read_ahead` sends.
struct Idat<'a> {
    window: Window<'a>,
    /// File offset of the next payload byte (or of the CRC when `chunk_left` is 0).
    file_pos: u64,
    chunk_left: u64,
    zpos: u64,
    ended: bool,
    /// Why the payload ended early (a read error, a cut file): reported once the bytes
    /// before it are decoded.
    error: Option<FormatError>,
    /// CRC-32 of the chunk being read, when it was read from its start (a walk resumed from a
    /// checkpoint checks the chunks after the one it starts in), and where that chunk starts.
    crc: Option<crc32fast::Hasher>,
    chunk_start: u64,
}

impl<'a> Idat<'a> {
    /// `blocks` must start at `file_pos`; `whole`: `file_pos` is the start of an IDAT payload.
    fn new(blocks: Blocks, file_pos: u64, chunk_left: u64, zpos: u64, whole: bool) -> Self {
        Self {
            window: Window::new(Feed::Thread(blocks), file_pos),
            file_pos,
            chunk_left,
            zpos,
            ended: false,
            error: None,
            crc: whole.then(idat_hasher),
            chunk_start: file_pos.saturating_sub(8),
        }
    }

    fn bytes_at(&mut self, pos: u64, want: usize) -> Result<&[u8], FormatError> {
        self.window.bytes(pos, want)
    }

    /// Append up to `max` payload bytes to `out`, noting each piece in `segs` as
    /// (stream position, file position, end of its chunk's payload).
    fn fill(&mut self, out: &mut Vec<u8>, segs: &mut Vec<(u64, u64, u64)>, max: usize) {
        if let Err(e) = self.fill_inner(out, segs, max) {
            self.error = Some(e);
            self.ended = true;
        }
    }

    fn fill_inner(
        &mut self,
        out: &mut Vec<u8>,
        segs: &mut Vec<(u64, u64, u64)>,
        max: usize,
    ) -> Result<(), FormatError> {
        let mut got = 0;
        while got < max && !self.ended {
            if self.chunk_left == 0 {
                // The CRC of the chunk just read, then the next chunk's length and type.
                let pos = self.file_pos;
                let head = self.bytes_at(pos, 12)?;
                if head.len() < 12 {
                    return Err(FormatError::truncated(format!(
                        "PNG ends inside the image data at byte {pos}"
                    )));
                }
                let stored = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
                let is_idat = &head[8..12] == b"IDAT";
                if let Some(h) = self.crc.take() {
                    let computed = h.finalize();
                    if computed != stored {
                        return Err(FormatError::invalid(format!(
                            "PNG chunk IDAT at offset {} has a bad CRC (stored {stored:08x}, computed {computed:08x})",
                            self.chunk_start
                        )));
                    }
                }
                if !is_idat {
                    self.check_trailing(pos + 4)?;
                    self.ended = true;
                    break;
                }
                self.chunk_start = pos + 4;
                self.crc = Some(idat_hasher());
                self.file_pos += 12;
                self.chunk_left = u64::from(len);
                continue;
            }
            let want = (self.chunk_left as usize).min(max - got).min(READ_BLOCK);
            let pos = self.file_pos;
            let chunk_end = pos + self.chunk_left;
            // The window alone is borrowed, so the chunk's CRC can take the bytes too.
            let piece = self.window.bytes(pos, want)?;
            if piece.is_empty() {
                return Err(FormatError::truncated(format!(
                    "PNG ends inside an IDAT chunk at byte {pos}"
                )));
            }
            let n = piece.len();
            if let Some(h) = &mut self.crc {
                h.update(piece);
            }
            out.extend_from_slice(piece);
            segs.push((self.zpos, pos, chunk_end));
            self.file_pos += n as u64;
            self.chunk_left -= n as u64;
            self.zpos += n as u64;
            got += n;
        }
        Ok(())
    }

    /// Walk to the end of the image data (and past it, see [`Idat::check_trailing`]) once the
    /// zlib stream has ended, for the CRCs. A file cut after its image data stays readable.
    fn finish(&mut self) -> Result<(), FormatError> {
        let (mut scratch, mut segs) = (Vec::new(), Vec::new());
        while !self.ended {
            scratch.clear();
            segs.clear();
            self.fill(&mut scratch, &mut segs, READ_BLOCK);
        }
        match self.error.take() {
            Some(FormatError::Truncated(_)) | None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// The CRCs of the chunks after the image data, up to IEND (a walk that reached the end
    /// of the image data). A file cut after its image data stays readable, as before.
    fn check_trailing(&mut self, mut at: u64) -> Result<(), FormatError> {
        for _ in 0..4096 {
            let head = self.window.bytes(at, 8)?;
            if head.len() < 8 {
                return Ok(());
            }
            let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
            let kind = [head[4], head[5], head[6], head[7]];
            let mut h = crc32fast::Hasher::new();
            h.update(&kind);
            let end = at + 8 + len;
            let mut p = at + 8;
            while p < end {
                let b = self.window.bytes(p, ((end - p) as usize).min(READ_BLOCK))?;
                if b.is_empty() {
                    return Ok(());
                }
                h.update(b);
                p += b.len() as u64;
            }
            let c = self.window.bytes(end, 4)?;
            if c.len() < 4 {
                return Ok(());
            }
            let stored = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let computed = h.finalize();
            if stored != computed {
                return Err(FormatError::invalid(format!(
                    "PNG chunk {} at offset {at} has a bad CRC (stored {stored:08x}, computed {computed:08x})",
                    String::from_utf8_lossy(&kind)
                )));
            }
            if &kind == b"IEND" {
                return Ok(());
            }
            at = end + 4;
        }
        Ok(())
    }
}

/// A CRC-32 that has seen an IDAT chunk's type (the CRC covers type and payload).
fn idat_hasher() -> crc32fast::Hasher {
    let mut h = crc32fast::Hasher::new();
    h.update(b"IDAT");
    h
}

/// The inflater stopped where a band's first row begins: its state there, for a checkpoint.
struct Snapshot {
    /// Position in the message's buffer.
    at: usize,
    total_out: u64,
    zpos: u64,
    file_pos: u64,
    chunk_left: u32,
    state: Box<DecompressorOxide>,
}

enum Msg {
    /// `buf[from..to]` is new output; `buf[..from]` is history (the window).
    Data {
        buf: Vec<u8>,
        from: usize,
        to: usize,
        snapshots: Vec<Snapshot>,
    },
    End,
    Fail(FormatError),
}

/// Inflate from `start` (or the stream's start), sending output until the receiver hangs up.
/// The inflater stops at each output position `stops` yields (increasing) and snapshots there.
#[allow(clippy::too_many_arguments)]
fn inflate(
    source: &Source,
    first_idat: u64,
    blocks: Blocks,
    start: Option<(&PngCheckpoint, &PngState)>,
    stops: &mut dyn FnMut(u64) -> Option<u64>,
    tx: &SyncSender<Msg>,
    spare: &Receiver<Vec<u8>>,
    cancelled: &dyn Fn() -> bool,
) {
    let result = (|| -> Result<(), FormatError> {
        let (mut r, mut idat, mut buf, mut total_out) = match start {
            None => {
                let mut head = [0u8; 4];
                source.read_exact_at(first_idat.saturating_sub(8), &mut head)?;
                let len = u64::from(u32::from_be_bytes(head));
                (
                    Box::new(DecompressorOxide::new()),
                    Idat::new(blocks, first_idat, len, 0, true),
                    Vec::with_capacity(WINDOW + OUT_CHUNK),
                    0u64,
                )
            }
            Some((c, state)) => {
                let mut buf = Vec::with_capacity(WINDOW + OUT_CHUNK);
                buf.extend_from_slice(&state.window);
                (
                    state.inflater.clone(),
                    Idat::new(blocks, c.file_pos, u64::from(c.chunk_left), c.zpos, false),
                    buf,
                    c.out_pos,
                )
            }
        };
        let base_flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
            | inflate_flags::TINFL_FLAG_IGNORE_ADLER32
            | inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER;
        let mut input: Vec<u8> = Vec::with_capacity(READ_BLOCK);
        let mut segs: Vec<(u64, u64, u64)> = Vec::new();
        let mut in_z0 = idat.zpos;
        let mut used = 0usize;
        let mut from = buf.len();
        let mut snapshots = Vec::new();
        buf.resize(WINDOW.max(buf.len()) + OUT_CHUNK, 0);
        let mut pos = from;
        let mut stop = stops(total_out);
        loop {
            if used == input.len() && !idat.ended {
                input.clear();
                segs.clear();
                used = 0;
                in_z0 = idat.zpos;
                idat.fill(&mut input, &mut segs, READ_BLOCK);
                if cancelled() {
                    return Err(FormatError::Cancelled);
                }
            }
            let more = if idat.ended {
                0
            } else {
                inflate_flags::TINFL_FLAG_HAS_MORE_INPUT
            };
            // Output up to the next stop at most: the inflater pauses exactly there.
            let limit = match stop {
                Some(s) => buf.len().min(pos + (s - total_out) as usize),
                None => buf.len(),
            };
            let (status, consumed, written) = decompress(
                &mut r,
                &input[used..],
                &mut buf[..limit],
                pos,
                base_flags | more,
            );
            used += consumed;
            pos += written;
            total_out += written as u64;
            if stop == Some(total_out) {
                let z = in_z0 + used as u64;
                let (file_pos, chunk_left) = if used == input.len() {
                    (idat.file_pos, idat.chunk_left)
                } else {
                    let s = segs.iter().rev().find(|s| s.0 <= z).copied();
                    let (sz, sf, end) = s.unwrap_or((in_z0, idat.file_pos, 0));
                    let f = sf + (z - sz);
                    (f, end.saturating_sub(f))
                };
                snapshots.push(Snapshot {
                    at: pos,
                    total_out,
                    zpos: z,
                    file_pos,
                    chunk_left: u32::try_from(chunk_left).unwrap_or(0),
                    state: r.clone(),
                });
                stop = stops(total_out);
            }
            match status {
                TINFLStatus::Done => {
                    send_data(tx, buf, from, pos, snapshots)?;
                    // The rest of the last IDAT chunk and the chunks after it: their CRCs (a
                    // bad CRC found while the stream was read is reported here too).
                    idat.finish()?;
                    let _ = tx.send(Msg::End);
                    return Ok(());
                }
                TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress
                    if idat.ended && used == input.len() =>
                {
                    // Rows decoded so far still reach the unfilter (earlier bands display).
                    send_data(tx, buf, from, pos, snapshots)?;
                    return Err(idat.error.take().unwrap_or_else(|| {
                        FormatError::truncated(format!(
                            "PNG image data ends early (after {total_out} decompressed bytes)"
                        ))
                    }));
                }
                TINFLStatus::NeedsMoreInput | TINFLStatus::HasMoreOutput => {}
                other => {
                    send_data(tx, buf, from, pos, snapshots)?;
                    return Err(FormatError::invalid(format!(
                        "PNG image data is corrupt near zlib byte {} ({other:?})",
                        in_z0 + used as u64
                    )));
                }
            }
            if buf.len() - pos < OUT_CHUNK / 4 {
                // Hand the filled part over; keep the window for back-references.
                let keep = pos.min(WINDOW);
                // A buffer the unfilter is done with (no zeroing: inflate overwrites it).
                let mut next = spare
                    .try_recv()
                    .unwrap_or_else(|_| vec![0u8; WINDOW + OUT_CHUNK]);
                next.resize(WINDOW + OUT_CHUNK, 0);
                next[..keep].copy_from_slice(&buf[pos - keep..pos]);
                send_data(tx, std::mem::replace(&mut buf, next), from, pos, snapshots)?;
                snapshots = Vec::new();
                from = keep;
                pos = keep;
            }
        }
    })();
    if let Err(e) = result {
        let _ = tx.send(Msg::Fail(e));
    }
}

fn send_data(
    tx: &SyncSender<Msg>,
    buf: Vec<u8>,
    from: usize,
    to: usize,
    snapshots: Vec<Snapshot>,
) -> Result<(), FormatError> {
    tx.send(Msg::Data {
        buf,
        from,
        to,
        snapshots,
    })
    // The unfilter hung up: it has every row it wanted.
    .map_err(|_| FormatError::Cancelled)
}

/// Rows being reassembled from the filtered stream.
struct Rows {
    stride: usize,
    bpp: usize,
    /// `bufs[cur]` collects the current row (filter byte first); the other holds the
    /// previous row, unfiltered (also with a leading byte, unused).
    bufs: [Vec<u8>; 2],
    cur: usize,
    fill: usize,
    y: u32,
}

impl Rows {
    fn prev(&self) -> &[u8] {
        &self.bufs[1 - self.cur][1..]
    }

    /// Feed filtered bytes; `on_row(y, row)` gets each completed row and returns false to
    /// stop (then `feed` returns false too).
    fn feed(
        &mut self,
        mut data: &[u8],
        on_row: &mut dyn FnMut(u32, &[u8]) -> bool,
    ) -> Result<bool, FormatError> {
        let full = self.stride + 1;
        while !data.is_empty() {
            let n = (full - self.fill).min(data.len());
            self.bufs[self.cur][self.fill..self.fill + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            if self.fill == full {
                let (a, b) = self.bufs.split_at_mut(1);
                let (row, prev) = if self.cur == 0 {
                    (&mut a[0], &b[0])
                } else {
                    (&mut b[0], &a[0])
                };
                unfilter(row[0], &mut row[1..], &prev[1..], self.bpp, self.y)?;
                let go = on_row(self.y, &row[1..]);
                self.cur = 1 - self.cur;
                self.fill = 0;
                self.y += 1;
                if !go {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

/// Undo one row's PNG filter in place (`prev` is the unfiltered row above, zeros on row 0).
fn unfilter(kind: u8, row: &mut [u8], prev: &[u8], bpp: usize, y: u32) -> Result<(), FormatError> {
    let n = row.len();
    match kind {
        0 => {}
        1 => {
            for i in bpp..n {
                row[i] = row[i].wrapping_add(row[i - bpp]);
            }
        }
        2 => {
            for (r, p) in row.iter_mut().zip(prev) {
                *r = r.wrapping_add(*p);
            }
        }
        3 => {
            for i in 0..bpp.min(n) {
                row[i] = row[i].wrapping_add(prev[i] >> 1);
            }
            for i in bpp..n {
                let avg = ((u16::from(row[i - bpp]) + u16::from(prev[i])) >> 1) as u8;
                row[i] = row[i].wrapping_add(avg);
            }
        }
        4 => {
            for i in 0..bpp.min(n) {
                row[i] = row[i].wrapping_add(prev[i]);
            }
            for i in bpp..n {
                let (a, b, c) = (
                    i16::from(row[i - bpp]),
                    i16::from(prev[i]),
                    i16::from(prev[i - bpp]),
                );
                let p = a + b - c;
                let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                let pred = if pa <= pb && pa <= pc {
                    a
                } else if pb <= pc {
                    b
                } else {
                    c
                };
                row[i] = row[i].wrapping_add(pred as u8);
            }
        }
        other => {
            return Err(FormatError::invalid(format!(
                "PNG row {y} has filter type {other}"
            )));
        }
    }
    Ok(())
}

/// Decode bands `first..=last` of a non-interlaced PNG page, resuming from the nearest
/// checkpoint and recording checkpoints for the bands the pass goes through.
#[allow(clippy::too_many_arguments)]
pub fn decode_bands(
    source: &Source,
    page: &Page,
    index: &StreamIndex,
    bands: RangeInclusive<u64>,
    sink: BandSink<'_>,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<(), FormatError> {
    let (first, last) = (*bands.start(), *bands.end());
    let BandSink {
        wants: wanted,
        emit,
    } = sink;
    let Storage::Stream { offset, .. } = page.storage else {
        return Err(FormatError::invalid("internal: not a stream page"));
    };
    let grid = &page.grid;
    let bands = grid.unit_rows();
    let last = last.min(bands.saturating_sub(1));
    let stride = page.raw.row_bytes(page.width) as usize;
    let full = stride as u64 + 1;
    let bpp = (page.raw.bits_per_pixel() as usize).div_ceil(8).max(1);
    let band_start = |b: u64| u64::from(grid.unit_extent(b).y0) * full;
    let (resume_band, point) = index.resume_point(first);
    let start = match point.as_deref() {
        Some(Checkpoint::Png(c)) => {
            let state = c
                .unpack()
                .filter(|st| {
                    (st.prev.len() == stride || c.out_pos < full) && c.out_pos.is_multiple_of(full)
                })
                .ok_or_else(|| FormatError::invalid("PNG checkpoint does not fit the image"))?;
            Some((c.clone(), state))
        }
        Some(Checkpoint::Jpeg(_) | Checkpoint::JpegRows(_)) => {
            return Err(FormatError::invalid("internal: JPEG checkpoint on a PNG"));
        }
        None => None,
    };
    // Where the inflater pauses for a snapshot: the start of each band after `total_out`
    // that has no checkpoint yet (a resumed pass over recorded bands copies nothing).
    let mut stops = |total_out: u64| {
        let row = (total_out / full).min(u64::from(u32::MAX)) as u32;
        (grid.unit_row_of(row.min(page.height.saturating_sub(1)))..bands)
            .map(|b| (b, band_start(b)))
            .find(|&(b, at)| at > total_out && index.checkpoint(b).is_none())
            .map(|(_, at)| at)
    };
    let end_row = grid.unit_extent(last).y1;
    let first_row = grid.unit_extent(first).y0;
    let (tx, rx) = sync_channel::<Msg>(2);
    let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(4);
    let read_from = start.as_ref().map_or(offset, |(c, _)| c.file_pos);
    let (block_tx, block_rx) = sync_channel(4);
    std::thread::scope(|scope| {
        let start_ref = start.as_ref().map(|(c, st)| (c, st));
        let stops = &mut stops;
        scope.spawn(move || read_ahead(source, read_from, block_tx));
        let inflater = scope.spawn(move || {
            inflate(
                source, offset, block_rx, start_ref, stops, &tx, &spare_rx, cancelled,
            );
        });
        let result = unfilter_side(
            &rx,
            &spare_tx,
            page,
            index,
            start.as_ref().map(|(c, st)| (c, st)),
            resume_band,
            (first_row, end_row),
            (stride, bpp),
            wanted,
            emit,
            cancelled,
        );
        drop(rx);
        let _ = inflater.join();
        result
    })
}

#[allow(clippy::too_many_arguments)]
fn unfilter_side(
    rx: &Receiver<Msg>,
    spare: &SyncSender<Vec<u8>>,
    page: &Page,
    index: &StreamIndex,
    start: Option<(&PngCheckpoint, &PngState)>,
    resume_band: u64,
    (first_row, end_row): (u32, u32),
    (stride, bpp): (usize, usize),
    wanted: &mut dyn FnMut(u64) -> bool,
    emit: &mut dyn FnMut(u64, Piece),
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let grid = &page.grid;
    let bands = grid.unit_rows();
    let full = stride as u64 + 1;
    let band_start = |b: u64| u64::from(grid.unit_extent(b).y0) * full;
    let mut rows = Rows {
        stride,
        bpp,
        bufs: [vec![0u8; stride + 1], vec![0u8; stride + 1]],
        cur: 0,
        fill: 0,
        y: 0,
    };
    if let Some((c, st)) = start {
        rows.y = (c.out_pos / full) as u32;
        if !st.prev.is_empty() {
            rows.bufs[1][1..].copy_from_slice(&st.prev);
        }
    }
    let mut assembler = Bands::new(page);
    // The next band whose start this pass has not gone past.
    let mut next = resume_band + 1;
    let done = std::cell::Cell::new(false);
    let mut on_row = |y: u32, data: &[u8]| -> bool {
        if y >= first_row {
            let mut keep = |b: u64| wanted(b);
            if let Some((band, piece)) = assembler.row(y, data, &mut keep) {
                emit(band, piece);
            }
        }
        if y + 1 >= end_row {
            done.set(true);
        }
        !done.get()
    };
    loop {
        let msg = rx
            .recv()
            .map_err(|_| FormatError::invalid("PNG inflater stopped"))?;
        match msg {
            Msg::Data {
                buf,
                from,
                to,
                snapshots,
            } => {
                let mut at = from;
                let mut failed = None;
                for snap in snapshots {
                    match rows.feed(&buf[at..snap.at], &mut on_row) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                    at = snap.at;
                    // The rows stand exactly at a band's first row: its checkpoint.
                    let band = grid.unit_row_of(rows.y.min(page.height.saturating_sub(1)));
                    if rows.fill == 0 && band_start(band) == snap.total_out {
                        let w = snap.at.min(WINDOW);
                        let state = PngState {
                            prev: if snap.total_out >= full {
                                rows.prev().to_vec()
                            } else {
                                Vec::new()
                            },
                            window: buf[snap.at - w..snap.at].to_vec(),
                            inflater: snap.state,
                        };
                        let (lens, packed) = PngCheckpoint::pack(&state);
                        index.record(
                            band,
                            Checkpoint::Png(PngCheckpoint {
                                zpos: snap.zpos,
                                file_pos: snap.file_pos,
                                chunk_left: snap.chunk_left,
                                out_pos: snap.total_out,
                                lens,
                                packed,
                            }),
                        );
                    }
                }
                if !done.get() && failed.is_none() {
                    failed = rows.feed(&buf[at..to], &mut on_row).err();
                }
                // Bands whose first row the pass has reached (also when the data is damaged
                // further down: the bands above stay usable).
                let here = u64::from(rows.y) * full + rows.fill as u64;
                while next < bands && band_start(next) <= here {
                    next += 1;
                    index.mark_reached(next);
                }
                if let Some(e) = failed {
                    return Err(e);
                }
                // Done with the wanted rows; a decode that includes the last row waits for the
                // walk to end, so a bad CRC at the end of the image data is reported.
                if done.get() && end_row < page.height {
                    return Ok(());
                }
                let _ = spare.try_send(buf);
                if cancelled() {
                    return Err(FormatError::Cancelled);
                }
            }
            Msg::End => {
                if rows.y < end_row {
                    return Err(FormatError::truncated(format!(
                        "PNG image data ends at row {} of {}",
                        rows.y, page.height
                    )));
                }
                index.mark_reached(bands);
                return Ok(());
            }
            Msg::Fail(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfilter_matches_the_definition() {
        // One row of 2-byte pixels under each filter, against a direct evaluation.
        let prev = [10u8, 200, 30, 40, 250, 60];
        let raw = [5u8, 7, 100, 3, 9, 255];
        for kind in 0..=4u8 {
            let mut row = raw;
            unfilter(kind, &mut row, &prev, 2, 1).expect("valid filter");
            let mut want = [0u8; 6];
            for i in 0..6 {
                let a = if i >= 2 { want[i - 2] } else { 0 };
                let b = prev[i];
                let c = if i >= 2 { prev[i - 2] } else { 0 };
                let pred = match kind {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                    _ => {
                        let p = i16::from(a) + i16::from(b) - i16::from(c);
                        let (pa, pb, pc) = (
                            (p - i16::from(a)).abs(),
                            (p - i16::from(b)).abs(),
                            (p - i16::from(c)).abs(),
                        );
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                };
                want[i] = raw[i].wrapping_add(pred);
            }
            assert_eq!(row, want, "filter {kind}");
        }
        assert!(unfilter(5, &mut [0u8; 4], &[0; 4], 1, 3).is_err());
    }
}
