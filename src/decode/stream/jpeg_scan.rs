//! Baseline JPEG without restart markers: checkpoints from one entropy-decoding pass, and
//! bands decoded from them.
//!
//! No crate exposes a JPEG decoder's state between MCUs (libjpeg, zune-jpeg and jpeg-decoder
//! all decode a scan from its start), so the pass is a small Huffman decoder of our own: it
//! reads every block's codes (no dequantising, no IDCT) and notes, at each MCU row, the bit
//! position and the DC predictors. A band is then decoded by libjpeg (mozjpeg) from a small
//! JPEG of its own: the file's header with the frame height patched, one synthetic MCU row
//! whose DC differences bring the predictors to the checkpoint's values (its pixels are
//! dropped), the band's bits copied from the checkpoint (re-stuffed), and an EOI. One real MCU
//! row above and below the band are decoded too, so chroma upsampling at the band's edges sees
//! the same neighbours as in a whole decode.

use super::bands::BandSink;
use super::jpeg::{BandJpeg, jpeg_bands_from_checkpoints};
use super::read_ahead::{Feed, Window};
use crate::error::FormatError;
use crate::format::{Page, ScanLayout};
use crate::index::{Checkpoint, JpegRowsCheckpoint, ScanPoint, StreamIndex};
use crate::source::Source;
use std::ops::RangeInclusive;

/// Largest header (APP segments, tables) parsed and copied in front of every band.
const MAX_HEADER: u64 = 16 << 20;

/// A Huffman table: fast lookup of codes up to 12 bits, canonical search beyond, and the
/// code of every symbol for writing.
struct Huffman {
    /// `(length << 8) | symbol` for `FAST_BITS`-bit prefixes; 0 when the code is longer.
    fast: Vec<u16>,
    maxcode: [i32; 18],
    valptr: [i32; 17],
    mincode: [i32; 17],
    vals: Vec<u8>,
    /// (code, length) per symbol; length 0: not in the table.
    enc: [(u16, u8); 256],
    /// For skipping AC coefficients: by `SKIP_BITS`-bit prefix, `(advance << 8) | bits`
    /// when a code and its extra bits fit the prefix (advance: coefficients passed, 64 for
    /// an end-of-block); 0 otherwise.
    skip: Vec<u16>,
}

const SKIP_BITS: u32 = 12;

const FAST_BITS: u32 = 12;

impl Huffman {
    fn new(counts: &[u8; 16], vals: &[u8]) -> Result<Self, FormatError> {
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        if total > 256 || total > vals.len() {
            return Err(FormatError::invalid("JPEG Huffman table is malformed"));
        }
        let mut h = Huffman {
            fast: vec![0; 1 << FAST_BITS],
            maxcode: [-1; 18],
            valptr: [0; 17],
            mincode: [0; 17],
            vals: vals[..total].to_vec(),
            enc: [(0, 0); 256],
            skip: Vec::new(),
        };
        let mut code = 0u32;
        let mut k = 0usize;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            h.valptr[len] = k as i32;
            h.mincode[len] = code as i32;
            for _ in 0..n {
                if code >= 1 << len {
                    return Err(FormatError::invalid("JPEG Huffman table overflows"));
                }
                let sym = h.vals[k];
                h.enc[usize::from(sym)] = (code as u16, len as u8);
                if len as u32 <= FAST_BITS {
                    let shift = FAST_BITS - len as u32;
                    for fill in 0..(1u32 << shift) {
                        h.fast[((code << shift) | fill) as usize] =
                            ((len as u16) << 8) | u16::from(sym);
                    }
                }
                code += 1;
                k += 1;
            }
            h.maxcode[len] = if n > 0 { code as i32 - 1 } else { -1 };
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX;
        h.skip = vec![0; 1 << SKIP_BITS];
        for sym in 0..=255u8 {
            let (code, len) = h.enc[usize::from(sym)];
            let (r, s) = (u32::from(sym >> 4), u32::from(sym & 15));
            let total = u32::from(len) + s;
            if len == 0 || total > SKIP_BITS {
                continue;
            }
            let advance = match (r, s) {
                (15, 0) => 16,
                (_, 0) => 64,
                _ => r + 1,
            };
            let shift = SKIP_BITS - u32::from(len);
            for fill in 0..(1u32 << shift) {
                h.skip[((u32::from(code) << shift) | fill) as usize] =
                    ((advance << 8) | total) as u16;
            }
        }
        Ok(h)
    }
}

/// The scan: components in scan order with their tables and blocks per MCU.
struct Scan {
    comps: Vec<(usize, usize, u32)>, // (dc table, ac table, blocks per MCU)
    dc: Vec<Option<Huffman>>,
    ac: Vec<Option<Huffman>>,
    header: Vec<u8>,
}

fn be16(b: &[u8], i: usize) -> Result<usize, FormatError> {
    b.get(i..i + 2)
        .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
        .ok_or_else(|| FormatError::truncated("JPEG header ends inside a segment"))
}

impl Scan {
    /// Parse the tables, frame and scan headers from the bytes before the entropy data.
    fn parse(source: &Source, layout: &ScanLayout) -> Result<Self, FormatError> {
        if layout.entropy > MAX_HEADER {
            return Err(FormatError::too_large("JPEG header"));
        }
        let mut header = vec![0u8; layout.entropy as usize];
        source.read_exact_at(0, &mut header)?;
        let mut dc: Vec<Option<Huffman>> = (0..4).map(|_| None).collect();
        let mut ac: Vec<Option<Huffman>> = (0..4).map(|_| None).collect();
        let mut frame: Vec<(u8, u32)> = Vec::new(); // (id, h*v)
        let mut comps = Vec::new();
        let mut pos = 2usize;
        while pos + 4 <= header.len() {
            if header[pos] != 0xFF {
                return Err(FormatError::invalid("JPEG header: expected a marker"));
            }
            let marker = header[pos + 1];
            if marker == 0xFF {
                pos += 1;
                continue;
            }
            let len = be16(&header, pos + 2)?;
            let seg = header
                .get(pos + 4..pos + 2 + len)
                .ok_or_else(|| FormatError::truncated("JPEG header ends inside a segment"))?;
            match marker {
                0xC4 => {
                    let mut p = 0;
                    while p + 17 <= seg.len() {
                        let (class, id) = (seg[p] >> 4, usize::from(seg[p] & 15));
                        let mut counts = [0u8; 16];
                        counts.copy_from_slice(&seg[p + 1..p + 17]);
                        let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                        let vals = seg
                            .get(p + 17..p + 17 + n)
                            .ok_or_else(|| FormatError::invalid("JPEG DHT is short"))?;
                        let table = Huffman::new(&counts, vals)?;
                        let slot = if class == 0 { &mut dc } else { &mut ac };
                        *slot
                            .get_mut(id)
                            .ok_or_else(|| FormatError::invalid("JPEG table id"))? = Some(table);
                        p += 17 + n;
                    }
                }
                0xC0 | 0xC1 => {
                    let n = usize::from(*seg.get(5).unwrap_or(&0));
                    for c in 0..n {
                        let b = seg
                            .get(6 + 3 * c..9 + 3 * c)
                            .ok_or_else(|| FormatError::invalid("JPEG frame header is short"))?;
                        let (h, v) = (u32::from(b[1] >> 4), u32::from(b[1] & 15));
                        frame.push((b[0], h.clamp(1, 4) * v.clamp(1, 4)));
                    }
                }
                0xDA => {
                    let n = usize::from(*seg.first().unwrap_or(&0));
                    for c in 0..n {
                        let b = seg
                            .get(1 + 2 * c..3 + 2 * c)
                            .ok_or_else(|| FormatError::invalid("JPEG scan header is short"))?;
                        let blocks = if n == 1 {
                            1
                        } else {
                            frame
                                .iter()
                                .find(|f| f.0 == b[0])
                                .map(|f| f.1)
                                .ok_or_else(|| FormatError::invalid("JPEG scan component"))?
                        };
                        comps.push((usize::from(b[1] >> 4), usize::from(b[1] & 15), blocks));
                    }
                    break;
                }
                _ => {}
            }
            pos += 2 + len;
        }
        if comps.is_empty() || comps.len() > 4 {
            return Err(FormatError::invalid("JPEG scan has no components"));
        }
        for &(d, a, _) in &comps {
            if dc.get(d).is_none_or(Option::is_none) || ac.get(a).is_none_or(Option::is_none) {
                return Err(FormatError::invalid(
                    "JPEG scan uses an undefined Huffman table",
                ));
            }
        }
        Ok(Scan {
            comps,
            dc,
            ac,
            header,
        })
    }

    fn tables(&self, c: usize) -> (&Huffman, &Huffman) {
        let (d, a, _) = self.comps[c];
        // Checked in `parse`.
        match (&self.dc[d], &self.ac[a]) {
            (Some(d), Some(a)) => (d, a),
            _ => unreachable!("tables checked when parsed"),
        }
    }
}

/// Entropy-coded bits from a file position, byte stuffing removed; stops at a marker.
struct Bits<'a> {
    window: Window<'a>,
    next: u64,
    acc: u64,
    nbits: u32,
    /// Which of the last 64 data bytes loaded came from a stuffed 0xFF 0x00 (bit 0: the most
    /// recent), to find a bit's file offset for a checkpoint.
    stuffed: u64,
    loaded: u64,
    /// Data bytes before the marker that ended the data, once one was seen.
    end: Option<u64>,
}

impl<'a> Bits<'a> {
    /// Bits from `offset` (where a `Feed::Thread` reader starts), the first `skip` dropped.
    fn new(feed: Feed<'a>, offset: u64, skip: u8) -> Result<Self, FormatError> {
        let mut b = Bits {
            window: Window::new(feed, offset),
            next: offset,
            acc: 0,
            nbits: 0,
            stuffed: 0,
            loaded: 0,
            end: None,
        };
        b.refill()?;
        b.consume(u32::from(skip));
        Ok(b)
    }

    fn byte_at(&mut self, pos: u64) -> Result<Option<u8>, FormatError> {
        Ok(self.window.bytes(pos, 1)?.first().copied())
    }

    #[inline]
    fn refill(&mut self) -> Result<(), FormatError> {
        // Fast path: bytes in the read block, no 0xFF among them.
        if self.end.is_none() {
            let i = self.next.wrapping_sub(self.window.at) as usize;
            let take = (64 - self.nbits) / 8;
            if let Some(bytes) = self.window.block.get(i..i + 8) {
                let w = u64::from_be_bytes(bytes.try_into().unwrap_or([0xFF; 8]));
                // The bytes to take, as the top of `w`; any 0xFF among them takes the slow path.
                let top = w & (u64::MAX << (64 - 8 * take));
                let inv = !top | !(u64::MAX << (64 - 8 * take));
                let has_ff = inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080;
                if has_ff == 0 {
                    self.stuffed <<= take;
                    self.acc |= top >> self.nbits;
                    self.nbits += 8 * take;
                    self.loaded += u64::from(take);
                    self.next += u64::from(take);
                    return Ok(());
                }
            }
        }
        self.refill_slow()
    }

    #[inline(never)]
    fn refill_slow(&mut self) -> Result<(), FormatError> {
        while self.nbits <= 56 {
            let mut data = 0u8;
            if self.end.is_none() {
                let at = self.next;
                match self.byte_at(at)? {
                    None => self.end = Some(self.loaded),
                    Some(0xFF) => match self.byte_at(at + 1)? {
                        Some(0x00) => {
                            data = 0xFF;
                            self.next += 2;
                        }
                        _ => self.end = Some(self.loaded),
                    },
                    Some(b) => {
                        data = b;
                        self.next += 1;
                    }
                }
                self.stuffed = (self.stuffed << 1) | u64::from(self.next == at + 2);
            }
            // Past the data: zeros, as libjpeg does; `overrun` notices.
            self.acc |= u64::from(data) << (56 - self.nbits);
            self.nbits += 8;
            self.loaded += 1;
        }
        Ok(())
    }

    #[inline]
    fn peek16(&mut self) -> Result<u32, FormatError> {
        if self.nbits < 16 {
            self.refill()?;
        }
        Ok((self.acc >> 48) as u32)
    }

    #[inline]
    fn consume(&mut self, n: u32) {
        self.acc <<= n;
        self.nbits -= n;
    }

    #[inline]
    fn take(&mut self, n: u32) -> Result<u32, FormatError> {
        if n == 0 {
            return Ok(0);
        }
        if self.nbits < n {
            self.refill()?;
        }
        let v = (self.acc >> (64 - n)) as u32;
        self.consume(n);
        Ok(v)
    }

    #[inline(always)]
    fn decode(&mut self, h: &Huffman) -> Result<u8, FormatError> {
        let peek = self.peek16()?;
        let f = h.fast[(peek >> (16 - FAST_BITS)) as usize];
        if f != 0 {
            self.consume(u32::from(f >> 8));
            return Ok(f as u8);
        }
        for len in FAST_BITS as usize + 1..=16 {
            let code = (peek >> (16 - len)) as i32;
            if code <= h.maxcode[len] {
                self.consume(len as u32);
                let i = h.valptr[len] + code - h.mincode[len];
                return h
                    .vals
                    .get(i as usize)
                    .copied()
                    .ok_or_else(|| FormatError::invalid("JPEG Huffman code out of range"));
            }
        }
        Err(FormatError::invalid(
            "JPEG data has an invalid Huffman code",
        ))
    }

    /// Data bits consumed so far.
    fn consumed(&self) -> u64 {
        self.loaded * 8 - u64::from(self.nbits)
    }

    fn point(&self, preds: [i32; 4]) -> ScanPoint {
        let bits = self.consumed();
        // Bytes from the one holding the next bit to the most recent (at most 8), each one
        // file byte or two (stuffed).
        let back = self.loaded - bits / 8;
        let stuffed = u64::from((self.stuffed & ((1u64 << back) - 1)).count_ones());
        ScanPoint {
            offset: self.next - back - stuffed,
            bit: (bits % 8) as u8,
            data_bits: bits,
            preds,
        }
    }

    /// Whether decoding has run past the end of the data.
    fn overrun(&self) -> bool {
        self.end.is_some_and(|end| self.consumed() > end * 8)
    }
}

/// Skip one block; returns its DC difference. The bit buffer is kept in locals (the hot
/// loop of the pass), written back around refills.
#[inline(always)]
fn skip_block(bits: &mut Bits, dc: &Huffman, ac: &Huffman) -> Result<i32, FormatError> {
    let (mut acc, mut n) = (bits.acc, bits.nbits);
    macro_rules! ensure32 {
        () => {
            if n < 32 {
                bits.acc = acc;
                bits.nbits = n;
                bits.refill()?;
                acc = bits.acc;
                n = bits.nbits;
            }
        };
    }
    macro_rules! decode {
        ($h:expr) => {{
            let f = $h.fast[(acc >> (64 - FAST_BITS)) as usize];
            if f != 0 {
                let len = u32::from(f >> 8);
                acc <<= len;
                n -= len;
                f as u8
            } else {
                bits.acc = acc;
                bits.nbits = n;
                let sym = bits.decode($h)?;
                acc = bits.acc;
                n = bits.nbits;
                sym
            }
        }};
    }
    ensure32!();
    let s = u32::from(decode!(dc));
    if s > 11 {
        return Err(FormatError::invalid("JPEG DC difference out of range"));
    }
    let diff = if s == 0 {
        0
    } else {
        let v = (acc >> (64 - s)) as u32;
        acc <<= s;
        n -= s;
        if v < 1 << (s - 1) {
            v as i32 - (1 << s) + 1
        } else {
            v as i32
        }
    };
    let mut k = 1;
    while k < 64 {
        ensure32!();
        let e = ac.skip[(acc >> (64 - SKIP_BITS)) as usize];
        if e != 0 {
            let len = u32::from(e & 0xFF);
            acc <<= len;
            n -= len;
            k += u32::from(e >> 8);
            continue;
        }
        let rs = decode!(ac);
        let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
        if s == 0 {
            if r != 15 {
                break;
            }
            k += 16;
        } else {
            acc <<= s;
            n -= s;
            k += r + 1;
        }
    }
    bits.acc = acc;
    bits.nbits = n;
    Ok(diff)
}

/// MCU rows a band decodes: one above and below it, for context.
fn band_rows(page: &Page, l: &ScanLayout, band: u64) -> (u32, u32) {
    let e = page.grid.unit_extent(band);
    let first = (e.y0 / l.mcu_h).saturating_sub(1);
    let end = (e.y1.div_ceil(l.mcu_h) + 1).min(l.mcu_rows);
    (first, end)
}

/// The entropy-decoding pass: walks every MCU, records each band's checkpoint as soon as the
/// MCU row below the band is reached.
pub fn index_pass(
    source: &Source,
    page: &Page,
    l: &ScanLayout,
    index: &StreamIndex,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let scan = Scan::parse(source, l)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    std::thread::scope(|scope| {
        scope.spawn(|| super::read_ahead::read_ahead(source, l.entropy, tx));
        let bits = Bits::new(Feed::Thread(rx), l.entropy, 0)?;
        pass(page, l, index, &scan, bits, cancelled)
    })
}

/// The body of [`index_pass`], reading through `bits`.
fn pass(
    page: &Page,
    l: &ScanLayout,
    index: &StreamIndex,
    scan: &Scan,
    mut bits: Bits,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let bands = page.grid.unit_rows();
    let mut preds = [0i32; 4];
    // Start point of every MCU row so far (small: a few bytes per MCU row).
    let mut rows: Vec<ScanPoint> = Vec::with_capacity(l.mcu_rows as usize + 1);
    let mut next_band = 0u64;
    let mut finish = |rows: &[ScanPoint]| {
        while next_band < bands {
            let (first, end) = band_rows(page, l, next_band);
            let Some(end_point) = rows.get(end as usize) else {
                break;
            };
            index.record(
                next_band,
                Checkpoint::JpegRows(JpegRowsCheckpoint {
                    first_row: first,
                    end_row: end,
                    start: rows[first as usize],
                    end: *end_point,
                }),
            );
            next_band += 1;
            index.mark_reached(next_band);
        }
    };
    let tables: Vec<(&Huffman, &Huffman, u32)> = (0..scan.comps.len())
        .map(|c| {
            let (d, a) = scan.tables(c);
            (d, a, scan.comps[c].2)
        })
        .collect();
    for row in 0..l.mcu_rows {
        rows.push(bits.point(preds));
        finish(&rows);
        if row % 8 == 0 && cancelled() {
            return Err(FormatError::Cancelled);
        }
        for _ in 0..l.mcus_per_row {
            for (c, &(dc, ac, blocks)) in tables.iter().enumerate() {
                for _ in 0..blocks {
                    preds[c] +=
                        skip_block(&mut bits, dc, ac).map_err(|e| at_row(e, row, l.mcu_h))?;
                }
            }
        }
        if bits.overrun() {
            return Err(FormatError::truncated(format!(
                "JPEG data ends in MCU row {row} (image row {})",
                row * l.mcu_h
            )));
        }
    }
    rows.push(bits.point(preds));
    finish(&rows);
    Ok(())
}

fn at_row(e: FormatError, row: u32, mcu_h: u32) -> FormatError {
    match e {
        FormatError::Invalid(msg) => FormatError::invalid(format!(
            "{msg} in MCU row {row} (image row {})",
            row * mcu_h
        )),
        other => other,
    }
}

/// Bits written with JPEG byte stuffing.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, bits: u32, len: u32) {
        if len == 0 {
            return;
        }
        self.acc = (self.acc << len) | u64::from(bits & ((1u64 << len) - 1) as u32);
        self.n += len;
        while self.n >= 8 {
            let byte = (self.acc >> (self.n - 8)) as u8;
            self.out.push(byte);
            if byte == 0xFF {
                self.out.push(0);
            }
            self.n -= 8;
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    /// Pad the last byte with 1-bits, as encoders do.
    fn flush(&mut self) {
        if self.n > 0 {
            self.put((1 << (8 - self.n)) - 1, 8 - self.n);
        }
    }
}

/// Most flat MCU rows a band's JPEG starts with to set its DC predictors.
const MAX_SYNTHETIC_ROWS: u32 = 64;

/// DC differences, one per block of a component in the synthetic MCU rows, that add up to
/// `target` using only the categories `dc` can code.
fn dc_plan(target: i32, blocks: usize, dc: &Huffman) -> Option<Vec<i32>> {
    let mut out = Vec::with_capacity(blocks);
    let mut r = target;
    while r != 0 && out.len() < blocks {
        let need = category(r);
        let k = (1..=need.min(11))
            .rev()
            .find(|&k| dc.enc[k as usize].1 > 0)?;
        let d = if k == need {
            r
        } else {
            r.signum() * ((1 << k) - 1)
        };
        out.push(d);
        r -= d;
    }
    if r != 0 {
        return None;
    }
    // The rest adds up to nothing: zero differences, or (an optimised table may have no code
    // for zero) pairs of +v and -v, after one triple (v, v, -2v) when their count is odd.
    let coded = |k: u32| k <= 11 && dc.enc[k as usize].1 > 0;
    let mut left = blocks - out.len();
    if coded(0) {
        out.resize(blocks, 0);
        return Some(out);
    }
    if !left.is_multiple_of(2) {
        let k = (1..=10).find(|&k| coded(k) && coded(k + 1))?;
        let v = 1 << (k - 1);
        if left < 3 {
            return None;
        }
        out.extend([v, v, -2 * v]);
        left -= 3;
    }
    let k = (1..=11).find(|&k| coded(k))?;
    let v = 1 << (k - 1);
    out.extend((0..left).map(|i| if i % 2 == 0 { v } else { -v }));
    Some(out)
}

fn category(d: i32) -> u32 {
    32 - d.unsigned_abs().leading_zeros()
}

/// The band's own JPEG, and (rows to drop at its top, image row of its first real row, rows).
fn band_jpeg(
    source: &Source,
    page: &Page,
    l: &ScanLayout,
    c: &JpegRowsCheckpoint,
) -> Result<(Vec<u8>, u32, u32, u32), FormatError> {
    let scan = Scan::parse(source, l)?;
    // Flat MCU rows whose DC differences sum to the checkpoint's predictors: as few as the DC
    // tables allow (optimised tables may only code small differences).
    let mut plans = Vec::new();
    let mut synthetic_rows = 0u32;
    if c.first_row > 0 {
        for (i, _) in scan.comps.iter().enumerate() {
            if scan.tables(i).1.enc[0].1 == 0 {
                return Err(FormatError::unsupported(
                    "JPEG AC table without an end-of-block",
                ));
            }
        }
        synthetic_rows = (1..=MAX_SYNTHETIC_ROWS)
            .find(|&rows| {
                plans = scan
                    .comps
                    .iter()
                    .enumerate()
                    .map_while(|(i, &(_, _, blocks))| {
                        let n = l.mcus_per_row as usize * blocks as usize * rows as usize;
                        dc_plan(c.start.preds[i], n, scan.tables(i).0)
                    })
                    .collect();
                plans.len() == scan.comps.len()
            })
            .ok_or_else(|| {
                let coded: Vec<usize> =
                    (0..12).filter(|&k| scan.tables(0).0.enc[k].1 > 0).collect();
                FormatError::unsupported(format!(
                    "JPEG DC table (categories {coded:?}) cannot code the band's predictors {:?}",
                    &c.start.preds[..scan.comps.len()]
                ))
            })?;
    }
    let drop = synthetic_rows * l.mcu_h;
    let y_start = c.first_row * l.mcu_h;
    let y_end = (c.end_row * l.mcu_h).min(page.height);
    let rows = drop + (y_end - y_start);
    let rows16 = u16::try_from(rows)
        .map_err(|_| FormatError::unsupported("JPEG band taller than 65535 rows"))?;
    let mut out = scan.header.clone();
    let h = l.sof as usize + 5;
    out.get_mut(h..h + 2)
        .ok_or_else(|| FormatError::invalid("JPEG frame header out of place"))?
        .copy_from_slice(&rows16.to_be_bytes());
    let span = c.end.data_bits.saturating_sub(c.start.data_bits);
    if span / 8 > source.len() {
        return Err(FormatError::invalid(
            "JPEG checkpoint does not fit the file",
        ));
    }
    let mut w = BitWriter { out, acc: 0, n: 0 };
    w.out.reserve(span as usize / 8 + 1024);
    let mcus = l.mcus_per_row as usize * synthetic_rows as usize;
    for m in 0..mcus {
        for (i, &(_, _, blocks)) in scan.comps.iter().enumerate() {
            let (dc, ac) = scan.tables(i);
            for b in 0..blocks as usize {
                let d = plans[i][m * blocks as usize + b];
                let k = category(d);
                let (code, len) = dc.enc[k as usize];
                w.put(u32::from(code), u32::from(len));
                let v = if d >= 0 { d } else { d + (1 << k) - 1 };
                w.put(v as u32, k);
                let (code, len) = ac.enc[0];
                w.put(u32::from(code), u32::from(len));
            }
        }
    }
    // The band's bits, as they are (stuffing removed by the reader, added by the writer).
    let mut bits = Bits::new(Feed::Direct(source), c.start.offset, c.start.bit)?;
    let mut left = span;
    while left > 0 {
        let n = left.min(24) as u32;
        let v = bits.take(n)?;
        w.put(v, n);
        left -= u64::from(n);
    }
    if bits.overrun() {
        return Err(FormatError::truncated("JPEG data ends inside the band"));
    }
    w.flush();
    w.out.extend_from_slice(&[0xFF, 0xD9]);
    Ok((w.out, drop, y_start, rows - drop))
}

/// Decode bands `first..=last`, each from its checkpoint; the entropy pass runs (or is waited
/// for) when it has not reached a band yet.
#[allow(clippy::too_many_arguments)]
pub fn decode_bands(
    source: &Source,
    page: &Page,
    l: &ScanLayout,
    index: &StreamIndex,
    bands: RangeInclusive<u64>,
    sink: BandSink<'_>,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let band_file = |_: u64, point: &Checkpoint| {
        let Checkpoint::JpegRows(c) = point else {
            return Err(FormatError::invalid("internal: not an MCU-row checkpoint"));
        };
        let (bytes, skip, y0, rows) = band_jpeg(source, page, l, c)?;
        Ok(BandJpeg {
            bytes,
            skip,
            y0,
            rows,
        })
    };
    jpeg_bands_from_checkpoints(
        page,
        index,
        bands,
        &|| index_pass(source, page, l, index, cancelled),
        &band_file,
        sink,
        cancelled,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huffman_round_trip_and_writer_stuffs() {
        // Standard luminance DC table (K.3).
        let counts = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
        let vals: Vec<u8> = (0..12).collect();
        let h = Huffman::new(&counts, &vals).expect("table");
        assert_eq!(h.enc[0], (0b00, 2));
        assert_eq!(h.enc[11], (0b1_1111_1110, 9));
        let plan = dc_plan(-700, 5, &h).expect("plan");
        assert_eq!(plan.iter().sum::<i32>(), -700);
        let mut w = BitWriter {
            out: Vec::new(),
            acc: 0,
            n: 0,
        };
        w.put(0xFF, 8);
        w.put(0b101, 3);
        w.flush();
        assert_eq!(w.out, vec![0xFF, 0x00, 0b1011_1111]);
    }
}
