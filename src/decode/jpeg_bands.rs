//! JPEG bands from restart intervals: one scan of the entropy-coded data for RST markers (no
//! decoding) finds where each band's intervals lie; a band is then decoded on its own by
//! handing libjpeg (mozjpeg) a small JPEG of its own: the file's header with the frame height
//! patched to the band's rows, the band's intervals with their markers renumbered from RST0,
//! and an EOI.

use super::Piece;
use super::stream::jpeg_decode;
use crate::error::FormatError;
use crate::format::{Page, Restart};
use crate::index::{Checkpoint, JpegCheckpoint, StreamIndex};
use crate::source::Source;

const READ_BLOCK: usize = 4 << 20;
/// Largest header (APP segments, tables) copied in front of every band.
const MAX_HEADER: u64 = 16 << 20;

/// Find every band's intervals: bands start at every `intervals_per_band`-th interval.
/// Checkpoints are recorded (and bands marked reached) as the scan goes.
pub fn scan(
    source: &Source,
    page: &Page,
    r: &Restart,
    index: &StreamIndex,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let bands = page.grid.unit_rows();
    let total_intervals = (r.mcu_rows * r.mcus_per_row).div_ceil(u64::from(r.interval));
    let mut block = vec![0u8; READ_BLOCK];
    let mut pos = r.entropy;
    let mut band_start = r.entropy;
    let mut band = 0u64;
    let mut interval = 0u64;
    let mut after_ff = false;
    let finish = |band: u64, start: u64, end: u64| {
        index.record(
            band,
            Checkpoint::Jpeg(JpegCheckpoint {
                offset: start,
                length: end - start,
            }),
        );
        index.mark_reached(band + 1);
    };
    loop {
        if cancelled() {
            return Err(FormatError::Cancelled);
        }
        let n = source.read_some(pos, &mut block)?;
        if n == 0 {
            return Err(FormatError::truncated(format!(
                "JPEG scan ends without an EOI after {interval} of {total_intervals} restart intervals"
            )));
        }
        source.prefetch(pos + n as u64, 2 * READ_BLOCK as u64);
        for (i, &b) in block[..n].iter().enumerate() {
            if !after_ff {
                after_ff = b == 0xFF;
                continue;
            }
            let at = pos + i as u64 - 1; // the marker's 0xFF
            match b {
                0x00 => after_ff = false,
                0xFF => {} // fill byte
                0xD0..=0xD7 => {
                    after_ff = false;
                    interval += 1;
                    if interval.is_multiple_of(r.intervals_per_band) {
                        finish(band, band_start, at);
                        band += 1;
                        band_start = at + 2;
                    }
                }
                _ => {
                    // EOI, or another marker: the scan ends here.
                    interval += 1;
                    if interval != total_intervals || band + 1 != bands {
                        return Err(FormatError::invalid(format!(
                            "JPEG has {interval} restart intervals where its header implies {total_intervals}"
                        )));
                    }
                    finish(band, band_start, at);
                    return Ok(());
                }
            }
        }
        pos += n as u64;
    }
}

/// The band's own JPEG: header (height patched), intervals (markers renumbered), EOI.
fn band_jpeg(
    source: &Source,
    page: &Page,
    r: &Restart,
    band: u64,
    c: &JpegCheckpoint,
) -> Result<Vec<u8>, FormatError> {
    if r.entropy > MAX_HEADER || c.length > source.len() {
        return Err(FormatError::too_large("JPEG header or band"));
    }
    let rows = page.grid.unit_extent(band).height();
    let mut out = vec![0u8; r.entropy as usize];
    source.read_exact_at(0, &mut out)?;
    let h = r.sof as usize + 5;
    let field = out
        .get_mut(h..h + 2)
        .ok_or_else(|| FormatError::invalid("JPEG frame header out of place"))?;
    field.copy_from_slice(&(rows as u16).to_be_bytes());
    let head = out.len();
    out.resize(head + c.length as usize, 0);
    source.read_exact_at(c.offset, &mut out[head..])?;
    let mut k = 0u8;
    let mut i = head;
    while i + 1 < out.len() {
        if out[i] == 0xFF {
            let mut j = i + 1;
            while j < out.len() && out[j] == 0xFF {
                j += 1;
            }
            if j < out.len() && (0xD0..=0xD7).contains(&out[j]) {
                out[j] = 0xD0 + k % 8;
                k = k.wrapping_add(1);
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Ok(out)
}

/// Decode bands `first..=last`: scan for the restart markers first if no pass has yet, then
/// each band from its own intervals. Falls back to decoding from the scan's start (the caller
/// does) when the markers do not match the header.
#[allow(clippy::too_many_arguments)]
pub fn decode_bands(
    source: &Source,
    page: &Page,
    r: &Restart,
    index: &StreamIndex,
    first: u64,
    last: u64,
    wanted: &mut dyn FnMut(u64) -> bool,
    emit: &mut dyn FnMut(u64, Piece),
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    if index.reached() <= last {
        let _one = index.scan_lock();
        if index.reached() <= last {
            scan(source, page, r, index, cancelled)?;
        }
    }
    for band in first..=last.min(page.grid.unit_rows().saturating_sub(1)) {
        if !wanted(band) {
            continue;
        }
        let Some(point) = index.checkpoint(band) else {
            return Err(FormatError::invalid(format!(
                "JPEG band {band} has no restart interval"
            )));
        };
        let Checkpoint::Jpeg(c) = &*point else {
            return Err(FormatError::invalid("internal: PNG checkpoint on a JPEG"));
        };
        let bytes = band_jpeg(source, page, r, band, c)?;
        let e = page.grid.unit_extent(band);
        let mut keep = |b: u64| b == band;
        jpeg_decode(
            &bytes[..],
            page,
            (e.y0, e.height()),
            e.y1,
            &mut keep,
            emit,
            cancelled,
        )?;
    }
    Ok(())
}
