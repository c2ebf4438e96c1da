//! A level build running in the background for an open image: started with the view's
//! "wait while the loader is busy" rule, polled for its outcome, cancelled and joined when
//! dropped (closing the image stops its build; a kept sidecar is only ever a finished one).

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::Error;
use crate::levels::{BuildJob, BuildState, BuildSummary, LevelStatus};

pub struct LevelBuild {
    handle: Option<JoinHandle<Result<BuildSummary, Error>>>,
    status: Arc<LevelStatus>,
}

impl LevelBuild {
    /// Run `job` on a thread of its own; it pauses while `wait` says so and calls `notify`
    /// as strips land.
    pub fn start(
        job: BuildJob,
        wait: impl Fn() -> bool + Send + Sync + 'static,
        notify: crate::loader::Notify,
    ) -> std::io::Result<Self> {
        let status = job.status.clone();
        let handle = std::thread::Builder::new()
            .name("tessera-levels".into())
            .spawn(move || job.run(&wait, &*notify))?;
        Ok(Self {
            handle: Some(handle),
            status,
        })
    }

    /// Stop the build (what was written so far stays in use until the image closes).
    pub fn cancel(&self) {
        self.status.progress.cancel();
    }

    /// Once the build has ended: `Some(Ok(()))` when it finished or was cancelled, the error
    /// otherwise. `None` while it runs (and after the outcome was taken).
    pub fn poll(&mut self) -> Option<Result<(), String>> {
        if !self.handle.as_ref().is_some_and(|h| h.is_finished()) {
            return None;
        }
        let outcome = self.handle.take()?.join();
        let cancelled = self.status.state() == BuildState::Cancelled;
        Some(match outcome {
            Ok(_) if cancelled => Ok(()),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("building levels: {e}")),
            Err(_) => Err("building levels: the builder crashed".into()),
        })
    }
}

impl Drop for LevelBuild {
    fn drop(&mut self) {
        self.cancel();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
