//! Progress and cancellation for long tasks (indexing a sequential file at open), shared
//! between the worker doing the task and the UI showing it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::FormatError;

#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    total: AtomicU64,
    cancelled: AtomicBool,
}

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `done` of `total` units are finished; fails once cancelled.
    pub fn update(&self, done: u64, total: u64) -> Result<(), FormatError> {
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        if self.cancelled.load(Ordering::Relaxed) {
            Err(FormatError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Fraction done, if a task with a known size is running.
    pub fn fraction(&self) -> Option<f32> {
        let total = self.total.load(Ordering::Relaxed);
        (total > 0).then(|| self.done.load(Ordering::Relaxed) as f32 / total as f32)
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_and_cancels() {
        let p = Progress::new();
        assert_eq!(p.fraction(), None);
        assert!(p.update(1, 4).is_ok());
        assert_eq!(p.fraction(), Some(0.25));
        p.cancel();
        assert!(matches!(p.update(2, 4), Err(FormatError::Cancelled)));
    }
}
