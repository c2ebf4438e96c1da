//! The display mapping of a data page in the viewer: the mapping the user steers, its
//! compiled tables, a generation that textures remember (a texture of an older generation is
//! re-mapped from the cached native piece, never re-read), and the statistics auto contrast
//! and the histogram come from.

use std::collections::HashSet;
use std::sync::Arc;

use crate::data::DataInfo;
use crate::data::stats::Stats;
use crate::decode::Piece;
use crate::display::{Compiled, Mapping, Percentiles};
use crate::pieces::PieceKey;

pub struct DisplayState {
    pub info: Arc<DataInfo>,
    mapping: Mapping,
    compiled: Compiled,
    /// Bumped at every change of the mapping.
    generation: u64,
    /// Auto contrast follows the statistics as finer data arrive, until the user sets a
    /// window by hand.
    pub auto: bool,
    pub percentiles: Percentiles,
    /// Statistics of every piece that arrived (coarsest level first, then the finer ones).
    pub stats: Stats,
    counted: HashSet<PieceKey>,
    /// Values counted when auto contrast was last applied: it is applied again when they
    /// have doubled, so the window settles after a few refinements.
    applied_at: u64,
}

impl DisplayState {
    /// A data page opens with auto contrast.
    pub fn new(info: Arc<DataInfo>) -> Self {
        let mapping = Mapping::for_data(&info);
        let compiled = mapping.compile(&info);
        Self {
            stats: Stats::new(info.channels),
            info,
            mapping,
            compiled,
            generation: 1,
            auto: true,
            percentiles: Percentiles::default(),
            counted: HashSet::new(),
            applied_at: 0,
        }
    }

    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Use `m` from now on; textures of the old mapping are re-mapped.
    pub fn set_mapping(&mut self, m: Mapping) {
        if m != self.mapping {
            self.compiled = m.compile(&self.info);
            self.mapping = m;
            self.generation += 1;
        }
    }

    /// A hand-made change of the mapping: windows stop following the statistics.
    pub fn edit(&mut self, m: Mapping) {
        if m.channels
            .iter()
            .zip(&self.mapping.channels)
            .any(|(a, b)| (a.lo, a.hi) != (b.lo, b.hi))
        {
            self.auto = false;
        }
        self.set_mapping(m);
    }

    /// Count a piece that arrived; returns whether auto contrast changed the mapping.
    pub fn add_piece(&mut self, key: &PieceKey, piece: &Piece) -> bool {
        let Some((buf, _)) = piece.samples() else {
            return false;
        };
        if !self.counted.insert(*key) {
            return false;
        }
        self.stats
            .add(&self.info, buf, piece.extent.pixels() as usize, false);
        let count = self.stats.count();
        if self.auto && count > 0 && (self.applied_at == 0 || count >= 2 * self.applied_at) {
            let before = self.generation;
            self.apply_auto();
            return self.generation != before;
        }
        false
    }

    fn apply_auto(&mut self) {
        let mut m = self.mapping.clone();
        if m.auto(&mut self.stats, self.percentiles, &self.info) {
            self.applied_at = self.stats.count();
            self.set_mapping(m);
        }
    }

    /// Auto contrast now (and follow finer data from here on).
    pub fn auto_now(&mut self) {
        self.auto = true;
        self.apply_auto();
    }

    /// Windows from the pieces on screen only (a fixed window afterwards).
    pub fn fit_to<'a>(&mut self, pieces: impl Iterator<Item = &'a Piece>) {
        let mut stats = Stats::new(self.info.channels);
        for p in pieces {
            if let Some((buf, _)) = p.samples() {
                stats.add(&self.info, buf, p.extent.pixels() as usize, false);
            }
        }
        let mut m = self.mapping.clone();
        if m.auto(&mut stats, self.percentiles, &self.info) {
            self.auto = false;
            self.set_mapping(m);
        }
    }

    /// Back to the mapping the page opened with: windows over the whole range of the values
    /// seen (the type's range for integers when nothing is known yet), linear, no invert.
    pub fn reset(&mut self) {
        let mut m = Mapping::for_data(&self.info);
        for (c, ch) in m.channels.iter_mut().enumerate() {
            if let Some(s) = self.stats.channels.get(c).filter(|s| s.count > 0) {
                ch.lo = s.min;
                ch.hi = if s.max > s.min { s.max } else { s.min + 1.0 };
            }
        }
        self.auto = false;
        self.set_mapping(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{SampleBuf, SampleType};
    use crate::decode::Native;
    use crate::format::Extent;

    fn piece(values: Vec<u16>) -> Piece {
        Piece {
            extent: Extent::new(0, 0, values.len() as u32, 1),
            rgba: Vec::new(),
            native: Native::Data {
                channels: 1,
                data: SampleBuf::U16(values),
            },
        }
    }

    #[test]
    fn auto_follows_arrivals_until_a_window_is_set_by_hand() {
        let mut d = DisplayState::new(Arc::new(DataInfo::new(SampleType::U16, 1)));
        let g0 = d.generation();
        let k = |u| PieceKey::page(0, u, 0, 1);
        assert!(d.add_piece(&k(0), &piece((80..=4000).collect())));
        assert!(d.generation() > g0);
        let ch = &d.mapping().channels[0];
        assert!(ch.lo < 90.0 && ch.hi > 3990.0 && ch.hi <= 4000.0, "{ch:?}");
        // The same piece twice counts once.
        assert!(!d.add_piece(&k(0), &piece((80..=4000).collect())));
        // A hand-set window stops auto contrast.
        let mut m = d.mapping().clone();
        m.channels[0].hi = 2000.0;
        d.edit(m);
        assert!(!d.auto);
        assert!(!d.add_piece(&k(1), &piece(vec![60000; 8000])));
        assert_eq!(d.mapping().channels[0].hi, 2000.0);
        d.auto_now();
        assert!(d.mapping().channels[0].hi > 4000.0);
    }
}
