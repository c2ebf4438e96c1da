//! JPEG bands from restart intervals: one scan of the entropy-coded data for RST markers (no
//! decoding) finds where each band's intervals lie; a band is then decoded on its own by
//! handing libjpeg (mozjpeg) a small JPEG of its own: the file's header with the frame height
//! patched to the band's rows, the band's intervals with their markers renumbered from RST0,
//! and an EOI.

use super::bands::BandSink;
use super::jpeg::{BandJpeg, jpeg_bands_from_checkpoints};
use crate::error::FormatError;
use crate::format::{Page, Restart};
use crate::index::{Checkpoint, JpegCheckpoint, StreamIndex};
use crate::source::Source;
use std::ops::RangeInclusive;

const READ_BLOCK: usize = 4 << 20;
/// Largest header (APP segments, tables) copied in front of every band.
const MAX_HEADER: u64 = 16 << 20;

/// Find every band's intervals: bands start at every `intervals_per_band`-th interval; each
/// also gets the interval group above and below it. Checkpoints are recorded (and bands
/// marked reached) as the scan goes.
pub fn scan(
    source: &Source,
    page: &Page,
    r: &Restart,
    index: &StreamIndex,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let bands = page.grid.unit_rows();
    let total_intervals = (r.mcu_rows * r.mcus_per_row).div_ceil(u64::from(r.interval));
    let per_group = r.intervals_per_group.max(1);
    let groups_per_band = (r.intervals_per_band / per_group).max(1);
    let total_groups = total_intervals.div_ceil(per_group);
    // Start (after its marker) and end (its closing marker's 0xFF) of every group so far.
    let mut starts = vec![r.entropy];
    let mut ends: Vec<u64> = Vec::new();
    let mut next_band = 0u64;
    let mut finish_bands = |starts: &[u64], ends: &[u64]| {
        while next_band < bands {
            let first = next_band * groups_per_band;
            let last = ((next_band + 1) * groups_per_band).min(total_groups) - 1;
            let is_last = next_band + 1 == bands;
            // The group below the band must be complete too (none below the last band).
            let needed = if is_last { last } else { last + 1 };
            if ends.len() as u64 <= needed {
                break;
            }
            let offset = starts[first as usize];
            let end = ends[last as usize];
            index.record(
                next_band,
                Checkpoint::Jpeg(JpegCheckpoint {
                    offset,
                    length: end - offset,
                    lead: if first > 0 {
                        offset - starts[first as usize - 1]
                    } else {
                        0
                    },
                    tail: if is_last {
                        0
                    } else {
                        ends[needed as usize] - end
                    },
                }),
            );
            next_band += 1;
            index.mark_reached(next_band);
        }
    };
    let mut block = vec![0u8; READ_BLOCK];
    let mut pos = r.entropy;
    let mut interval = 0u64;
    let mut after_ff = false;
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
                    if interval.is_multiple_of(per_group) {
                        ends.push(at);
                        starts.push(at + 2);
                        finish_bands(&starts, &ends);
                    }
                }
                _ => {
                    // EOI, or another marker: the scan ends here.
                    interval += 1;
                    if interval != total_intervals {
                        return Err(FormatError::invalid(format!(
                            "JPEG has {interval} restart intervals where its header implies {total_intervals}"
                        )));
                    }
                    ends.push(at); // the last group ends at the EOI
                    finish_bands(&starts, &ends);
                    return if index.reached() >= bands {
                        Ok(())
                    } else {
                        Err(FormatError::invalid(
                            "JPEG restart bands do not match its size",
                        ))
                    };
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
) -> Result<(Vec<u8>, u32), FormatError> {
    let span = c.lead.saturating_add(c.length).saturating_add(c.tail);
    if r.entropy > MAX_HEADER || span > source.len() || c.lead > c.offset {
        return Err(FormatError::too_large("JPEG header or band"));
    }
    let e = page.grid.unit_extent(band);
    let above = if c.lead > 0 { r.group_rows } else { 0 };
    let below = if c.tail > 0 {
        r.group_rows.min(page.height - e.y1)
    } else {
        0
    };
    let rows = above + e.height() + below;
    let mut out = vec![0u8; r.entropy as usize];
    source.read_exact_at(0, &mut out)?;
    let h = r.sof as usize + 5;
    let field = out
        .get_mut(h..h + 2)
        .ok_or_else(|| FormatError::invalid("JPEG frame header out of place"))?;
    field.copy_from_slice(&(rows as u16).to_be_bytes());
    let head = out.len();
    out.resize(head + (c.lead + c.length + c.tail) as usize, 0);
    source.read_exact_at(c.offset - c.lead, &mut out[head..])?;
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
    Ok((out, rows))
}

/// Decode bands `first..=last`, each from its own restart intervals; the marker scan runs (or
/// is waited for) when it has not reached a band yet.
#[allow(clippy::too_many_arguments)]
pub fn decode_bands(
    source: &Source,
    page: &Page,
    r: &Restart,
    index: &StreamIndex,
    bands: RangeInclusive<u64>,
    sink: BandSink<'_>,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), FormatError> {
    let band_file = |band: u64, point: &Checkpoint| {
        let Checkpoint::Jpeg(c) = point else {
            return Err(FormatError::invalid("internal: not a restart checkpoint"));
        };
        let (bytes, rows) = band_jpeg(source, page, r, band, c)?;
        let above = if c.lead > 0 { r.group_rows } else { 0 };
        Ok(BandJpeg {
            bytes,
            skip: 0,
            y0: page.grid.unit_extent(band).y0 - above,
            rows,
        })
    };
    jpeg_bands_from_checkpoints(
        page,
        index,
        bands,
        &|| scan(source, page, r, index, cancelled),
        &band_file,
        sink,
        cancelled,
    )
}
