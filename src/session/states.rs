//! The live state of every descriptor the view has touched (loading, cached, failed,
//! evicted, and how long it took to decode), for the descriptor panel, the boundary overlay
//! and the failed crosses on the canvas. Keyed by source and unit, as pieces are; previews
//! are not descriptors and have no state.

use std::collections::HashMap;
use std::time::Duration;

use crate::pieces::{LevelSource, PieceKey};

/// What the viewer is doing with a descriptor.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitState {
    Loading,
    Cached,
    Failed(String),
    Evicted,
}

impl UnitState {
    pub fn name(&self) -> &'static str {
        match self {
            UnitState::Loading => "loading",
            UnitState::Cached => "cached",
            UnitState::Failed(_) => "failed",
            UnitState::Evicted => "evicted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnitInfo {
    pub state: UnitState,
    pub decode_time: Option<Duration>,
}

/// The state table.
#[derive(Debug, Default)]
pub struct DescriptorStates {
    units: HashMap<(LevelSource, u64), UnitInfo>,
}

impl DescriptorStates {
    pub fn get(&self, source: LevelSource, unit: u64) -> Option<&UnitInfo> {
        self.units.get(&(source, unit))
    }

    /// The units of `source` with a state, in no order.
    pub fn units_of_unsorted(
        &self,
        source: LevelSource,
    ) -> impl Iterator<Item = (u64, &UnitInfo)> + '_ {
        self.units
            .iter()
            .filter(move |((s, _), _)| *s == source)
            .map(|((_, u), i)| (*u, i))
    }

    /// Whether the key's unit failed to decode (it is not asked for again).
    pub fn is_failed(&self, key: &PieceKey) -> bool {
        matches!(
            self.get(key.source, key.unit).map(|i| &i.state),
            Some(UnitState::Failed(_))
        )
    }

    /// The key is asked of the loader: loading, unless one of its windows is cached already
    /// or it failed.
    pub fn asked(&mut self, key: &PieceKey) {
        if !key.source.has_descriptors() || self.is_failed(key) {
            return;
        }
        self.units
            .entry((key.source, key.unit))
            .and_modify(|i| {
                if i.state != UnitState::Cached {
                    i.state = UnitState::Loading;
                }
            })
            .or_insert(UnitInfo {
                state: UnitState::Loading,
                decode_time: None,
            });
    }

    /// The key's piece arrived; `decode_time` when it was decoded (not a cache hit).
    pub fn loaded(&mut self, key: &PieceKey, decode_time: Option<Duration>) {
        if !key.source.has_descriptors() {
            return;
        }
        let info = self
            .units
            .entry((key.source, key.unit))
            .or_insert(UnitInfo {
                state: UnitState::Cached,
                decode_time: None,
            });
        info.state = UnitState::Cached;
        if decode_time.is_some() {
            info.decode_time = decode_time;
        }
    }

    /// The key's unit failed; true when it had not failed before (the banner shows it once).
    pub fn failed(&mut self, key: &PieceKey, msg: String, elapsed: Duration) -> bool {
        if !key.source.has_descriptors() {
            return true;
        }
        let first = !self.is_failed(key);
        self.units.insert(
            (key.source, key.unit),
            UnitInfo {
                state: UnitState::Failed(msg),
                decode_time: Some(elapsed),
            },
        );
        first
    }

    /// The CPU cache dropped the key's piece.
    pub fn evicted(&mut self, key: &PieceKey) {
        if let Some(info) = self.units.get_mut(&(key.source, key.unit))
            && info.state == UnitState::Cached
        {
            info.state = UnitState::Evicted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_goes_from_loading_to_cached_to_evicted() {
        let mut s = DescriptorStates::default();
        let k = PieceKey::page(0, 3, 0, 512);
        s.asked(&k);
        assert_eq!(s.get(k.source, 3).map(|i| i.state.name()), Some("loading"));
        s.loaded(&k, Some(Duration::from_millis(5)));
        // Another window of the same unit asked: the unit stays cached.
        s.asked(&PieceKey {
            x0: 512,
            x1: 1024,
            ..k
        });
        assert_eq!(s.get(k.source, 3).map(|i| i.state.name()), Some("cached"));
        s.evicted(&k);
        let info = s.get(k.source, 3).cloned();
        assert_eq!(info.as_ref().map(|i| i.state.name()), Some("evicted"));
        assert_eq!(
            info.and_then(|i| i.decode_time),
            Some(Duration::from_millis(5))
        );
    }

    #[test]
    fn failures_are_reported_once_and_stay() {
        let mut s = DescriptorStates::default();
        let k = PieceKey::page(0, 1, 0, 1);
        assert!(s.failed(&k, "bad".into(), Duration::ZERO));
        assert!(!s.failed(&k, "bad".into(), Duration::ZERO), "not twice");
        s.asked(&k);
        assert!(s.is_failed(&k), "asking again does not clear a failure");
        // The same unit number of another source is another descriptor.
        assert!(!s.is_failed(&PieceKey {
            source: LevelSource::Built(0),
            ..k
        }));
    }

    #[test]
    fn previews_have_no_state() {
        let mut s = DescriptorStates::default();
        let k = PieceKey {
            source: LevelSource::Preview {
                page: 0,
                step_log2: 2,
            },
            unit: 0,
            x0: 0,
            x1: 1,
        };
        s.asked(&k);
        s.loaded(&k, None);
        assert!(s.get(k.source, 0).is_none());
    }
}
