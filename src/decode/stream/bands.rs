//! Band assembly (rows arriving top to bottom become bands) and the sink every kind of
//! stream feeds its bands to.

use crate::decode::Piece;
use crate::format::Page;
use crate::sample::RawFormat;

/// Where decoded bands go: `wants(band)` says which to keep, `emit` gets each kept band as
/// soon as it is complete.
pub struct BandSink<'a> {
    pub wants: &'a mut dyn FnMut(u64) -> bool,
    pub emit: &'a mut dyn FnMut(u64, Piece),
}

/// Band-by-band assembly of rows arriving top to bottom.
pub(super) struct Bands<'a> {
    page: &'a Page,
    raw: RawFormat,
    current: Option<(u64, Piece)>,
}

impl<'a> Bands<'a> {
    pub(super) fn new(page: &'a Page) -> Self {
        Self {
            page,
            raw: page.raw,
            current: None,
        }
    }

    /// Put stored row `y`; returns a finished band when `y` is its last row.
    pub(super) fn row(
        &mut self,
        y: u32,
        data: &[u8],
        wanted: &mut dyn FnMut(u64) -> bool,
    ) -> Option<(u64, Piece)> {
        let band = self.page.grid.unit_row_of(y);
        let extent = self.page.grid.unit_extent(band);
        if self.current.as_ref().is_none_or(|(b, _)| *b != band) {
            self.current = wanted(band).then(|| (band, Piece::new(extent, &self.raw)));
        }
        let (_, piece) = self.current.as_mut()?;
        let palette = self.page.palette.as_deref().map(Vec::as_slice);
        let (rgba, native) = piece.row_mut((y - extent.y0) as usize);
        self.raw
            .unpack_row(data, extent.width() as usize, palette, rgba, native);
        if y + 1 == extent.y1 {
            self.current.take()
        } else {
            None
        }
    }
}
