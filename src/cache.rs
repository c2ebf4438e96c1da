//! CPU cache of decoded pieces: an LRU bounded in bytes, keyed by source, unit and column
//! window (see `pieces`). Memory in use never grows with the file's size, only with the
//! budget.

use std::sync::Arc;

use lru::LruCache;

use crate::decode::Piece;
pub use crate::pieces::PieceKey;

/// LRU of pieces with a byte budget.
pub struct PieceCache {
    lru: LruCache<PieceKey, Arc<Piece>>,
    bytes: usize,
    budget: usize,
    pub hits: u64,
    pub misses: u64,
    /// Keys evicted since the last [`PieceCache::take_evicted`], when tracking is on (the
    /// viewer shows evicted descriptors; headless renders don't track).
    evicted: Option<Vec<PieceKey>>,
}

impl PieceCache {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            lru: LruCache::unbounded(),
            bytes: 0,
            budget: budget_bytes,
            hits: 0,
            misses: 0,
            evicted: None,
        }
    }

    /// Record evicted keys for [`PieceCache::take_evicted`].
    pub fn track_evictions(&mut self) {
        self.evicted.get_or_insert_with(Vec::new);
    }

    pub fn take_evicted(&mut self) -> Vec<PieceKey> {
        self.evicted
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn note_evicted(&mut self, key: PieceKey) {
        if let Some(v) = &mut self.evicted {
            v.push(key);
        }
    }

    pub fn budget(&self) -> usize {
        self.budget
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn len(&self) -> usize {
        self.lru.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lru.is_empty()
    }
    pub fn contains(&self, key: &PieceKey) -> bool {
        self.lru.contains(key)
    }

    /// Look up and mark as recently used.
    pub fn get(&mut self, key: &PieceKey) -> Option<Arc<Piece>> {
        let hit = self.lru.get(key).cloned();
        if hit.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        hit
    }

    /// Insert, evicting least recently used pieces to stay within the budget. A piece larger
    /// than the whole budget is not kept.
    pub fn insert(&mut self, key: PieceKey, piece: Arc<Piece>) {
        let size = piece.byte_size();
        if let Some(old) = self.lru.pop(&key) {
            self.bytes -= old.byte_size();
        }
        if size > self.budget {
            return;
        }
        while self.bytes + size > self.budget {
            match self.lru.pop_lru() {
                Some((k, old)) => {
                    self.bytes -= old.byte_size();
                    self.note_evicted(k);
                }
                None => break,
            }
        }
        self.bytes += size;
        self.lru.put(key, piece);
    }

    /// Change the budget, evicting as needed.
    pub fn set_budget(&mut self, budget_bytes: usize) {
        self.budget = budget_bytes;
        while self.bytes > self.budget {
            match self.lru.pop_lru() {
                Some((k, old)) => {
                    self.bytes -= old.byte_size();
                    self.note_evicted(k);
                }
                None => break,
            }
        }
    }

    pub fn clear(&mut self) {
        self.lru.clear();
        self.bytes = 0;
    }
}

/// A default budget: an eighth of physical memory, between 64 MiB and 2 GiB.
pub fn default_budget() -> usize {
    (crate::stats::total_ram_bytes() / 8).clamp(64 << 20, 2 << 30) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Extent;
    use crate::sample::{PixelKind, RawFormat};

    fn piece(w: u32) -> Arc<Piece> {
        Arc::new(Piece::new(
            Extent::new(0, 0, w, 1),
            &RawFormat::new(PixelKind::Rgb, 8),
        ))
    }

    fn key(unit: u64) -> PieceKey {
        PieceKey::page(0, unit, 0, 1)
    }

    #[test]
    fn stays_within_budget_and_evicts_lru() {
        let one = piece(1000).byte_size();
        let mut c = PieceCache::new(one * 3);
        for u in 0..3 {
            c.insert(key(u), piece(1000));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get(&key(0)).is_some()); // 0 is now most recent
        c.insert(key(3), piece(1000));
        assert!(c.bytes() <= c.budget());
        assert!(c.contains(&key(0)));
        assert!(!c.contains(&key(1)), "least recently used goes first");
        c.insert(key(9), piece(100_000));
        assert!(!c.contains(&key(9)), "larger than the budget: not kept");
        c.set_budget(one);
        assert_eq!(c.len(), 1);
    }
}
