//! `tessera bench-view FILE`: drive the real window along a scripted path and print one JSON
//! line of frame times, time to first frame, time until sharp after each jump, bytes read and
//! peak RSS.
//!
//! Path: open → fit → 1:1 at five places (jumps) → a long pan at 1:1 → (data pages) back to
//! the centre, then the white point dragged down and back up over 120 frames → jumps to the
//! four far corners. A jump is "sharp" when every piece the view wants is on the GPU. Frame
//! and work times of the pan and of the white-point drag are also reported on their own.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// When the process started (`main`'s first line): times are measured from here, so they
/// include creating the window, as a user double-clicking a file sees it.
static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Record the process start; call first thing in `main`.
pub fn mark_process_start() {
    let _ = PROCESS_START.set(Instant::now());
}

use crate::session::Session;
use crate::view::viewport::Viewport;

#[derive(Debug, Clone, Copy)]
enum Step {
    Jump {
        fx: f64,
        fy: f64,
        zoom: Option<f64>,
    },
    Pan {
        dx: f64,
        dy: f64,
        frames: u32,
    },
    /// Drag the white point of a data page down to 30 % of its window and back.
    Window {
        frames: u32,
    },
}

/// Which scripted motion the frame being timed belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Other,
    Pan,
    Window,
}

pub struct BenchView {
    started: Instant,
    /// When the app was created and asked to open the file (the window exists by then).
    opened: Instant,
    first_frame: Option<Duration>,
    last_frame: Option<Instant>,
    frame_times: Vec<f64>,
    /// Time spent in our own `ui()` each frame (the rest is rendering and waiting).
    pub ui_times: Vec<f64>,
    /// What each frame actually cost: our `ui()` plus egui's tessellation and painting, as
    /// eframe measures it (`Frame::info().cpu_usage`), without the wait for the swap.
    work_times: Vec<f64>,
    steps: Vec<Step>,
    current: usize,
    /// When the current jump was made, and its time to sharp once reached.
    jump_at: Option<Instant>,
    sharp_times: Vec<f64>,
    /// From start until the first fit-to-window view was sharp.
    fit_sharp: Option<Duration>,
    pan_left: u32,
    window_left: u32,
    /// The window when the drag started: (black, white).
    window_from: Option<(f64, f64)>,
    phase: Phase,
    /// Frame and work times (ms) of the pan and of the white-point drag.
    pan_frames: Vec<f64>,
    pan_work: Vec<f64>,
    window_frames: Vec<f64>,
    window_work: Vec<f64>,
    done: bool,
}

impl Default for BenchView {
    fn default() -> Self {
        Self::new()
    }
}

impl BenchView {
    pub fn new() -> Self {
        Self::with_path(false)
    }

    /// The scripted path, or with `fit_only` just the opening fit-to-window view.
    pub fn with_path(fit_only: bool) -> Self {
        let mut steps = vec![Step::Jump {
            fx: 0.5,
            fy: 0.5,
            zoom: None,
        }];
        for (fx, fy) in [(0.5, 0.5), (0.25, 0.3), (0.7, 0.6), (0.4, 0.8), (0.85, 0.2)] {
            steps.push(Step::Jump {
                fx,
                fy,
                zoom: Some(1.0),
            });
        }
        steps.push(Step::Pan {
            dx: 24.0,
            dy: 6.0,
            frames: 240,
        });
        steps.push(Step::Jump {
            fx: 0.5,
            fy: 0.5,
            zoom: Some(1.0),
        });
        steps.push(Step::Window { frames: 120 });
        for (fx, fy) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
            steps.push(Step::Jump {
                fx,
                fy,
                zoom: Some(1.0),
            });
        }
        if fit_only {
            steps.truncate(1);
        }
        Self {
            started: PROCESS_START.get().copied().unwrap_or_else(Instant::now),
            opened: Instant::now(),
            first_frame: None,
            last_frame: None,
            frame_times: Vec::new(),
            ui_times: Vec::new(),
            work_times: Vec::new(),
            steps,
            current: 0,
            jump_at: None,
            sharp_times: Vec::new(),
            fit_sharp: None,
            pan_left: 0,
            window_left: 0,
            window_from: None,
            phase: Phase::Other,
            pan_frames: Vec::new(),
            pan_work: Vec::new(),
            window_frames: Vec::new(),
            window_work: Vec::new(),
            done: false,
        }
    }

    /// The previous frame's cost as eframe measured it (seconds), once per frame.
    pub fn record_work(&mut self, cpu_seconds: Option<f32>) {
        if let Some(s) = cpu_seconds {
            let ms = f64::from(s) * 1000.0;
            self.work_times.push(ms);
            match self.phase {
                Phase::Pan => self.pan_work.push(ms),
                Phase::Window => self.window_work.push(ms),
                Phase::Other => {}
            }
        }
    }

    /// Called once per frame after the UI is drawn.
    pub fn step(
        &mut self,
        ctx: &egui::Context,
        session: Option<&mut Session>,
        view: &mut Viewport,
        opening: bool,
    ) {
        let now = Instant::now();
        if let Some(last) = self.last_frame {
            let ms = (now - last).as_secs_f64() * 1000.0;
            self.frame_times.push(ms);
            match self.phase {
                Phase::Pan => self.pan_frames.push(ms),
                Phase::Window => self.window_frames.push(ms),
                Phase::Other => {}
            }
        }
        self.phase = Phase::Other;
        self.last_frame = Some(now);
        if self.first_frame.is_none() {
            self.first_frame = Some(now - self.started);
        }
        ctx.request_repaint();
        if self.done {
            return;
        }
        let Some(s) = session else {
            if !opening && now - self.started > Duration::from_secs(30) {
                self.finish(ctx, None);
            }
            return;
        };
        let (w, h) = (f64::from(s.page().width), f64::from(s.page().height));
        // Wait for the current jump to become sharp (30 s at most).
        if let Some(at) = self.jump_at {
            let waited = now - at;
            // Too far out to load anything (no levels yet): nothing to wait for.
            let settled = s.is_sharp() || s.mode() == crate::view::plan::ViewMode::TooFarOut;
            if settled || waited > Duration::from_secs(30) {
                if self.current > 1 {
                    self.sharp_times.push(waited.as_secs_f64() * 1000.0);
                } else if s.is_sharp() {
                    self.fit_sharp = Some(now - self.started);
                }
                self.jump_at = None;
            } else {
                return;
            }
        }
        if self.pan_left > 0 {
            self.pan_left -= 1;
            if let Some(Step::Pan { dx, dy, .. }) = self.steps.get(self.current - 1) {
                view.pan_by_screen(-dx, -dy);
            }
            self.phase = Phase::Pan;
            return;
        }
        if self.window_left > 0 {
            self.window_left -= 1;
            if let (Some(Step::Window { frames }), Some((lo, hi)), Some(d)) = (
                self.steps.get(self.current - 1).copied(),
                self.window_from,
                s.display.as_ref(),
            ) {
                // Down to 30 % of the window and back, like a hand on the handle.
                let t = f64::from(frames - self.window_left) / f64::from(frames);
                let depth = 0.7 * (1.0 - (2.0 * t - 1.0).abs());
                let mut m = d.mapping().clone();
                for ch in &mut m.channels {
                    ch.hi = hi - (hi - lo) * depth;
                }
                s.edit_display(m);
            }
            self.phase = Phase::Window;
            return;
        }
        let Some(step) = self.steps.get(self.current).copied() else {
            self.finish(ctx, Some(s));
            return;
        };
        self.current += 1;
        match step {
            Step::Jump { fx, fy, zoom } => {
                match zoom {
                    None => view.fit(w as u32, h as u32),
                    Some(z) => {
                        view.zoom = z;
                        // Corners: put the corner of the image at the corner of the screen.
                        let half_w = view.screen_w / 2.0 / z;
                        let half_h = view.screen_h / 2.0 / z;
                        view.center_x =
                            (fx * w).clamp(half_w.min(w / 2.0), (w - half_w).max(w / 2.0));
                        view.center_y =
                            (fy * h).clamp(half_h.min(h / 2.0), (h - half_h).max(h / 2.0));
                    }
                }
                self.jump_at = Some(now);
            }
            Step::Pan { frames, .. } => {
                self.pan_left = frames;
                self.phase = Phase::Pan;
            }
            Step::Window { frames } => {
                if let Some(d) = s.display.as_ref() {
                    let ch = d.mapping().channels.first();
                    self.window_from = ch.map(|c| (c.lo, c.hi));
                    self.window_left = frames;
                    self.phase = Phase::Window;
                }
            }
        }
    }

    fn finish(&mut self, ctx: &egui::Context, session: Option<&Session>) {
        self.done = true;
        let mut t = self.frame_times.clone();
        t.sort_by(f64::total_cmp);
        let mut work = self.work_times.clone();
        work.sort_by(f64::total_cmp);
        let pct_of = |t: &[f64], p: f64| {
            if t.is_empty() {
                0.0
            } else {
                t[((t.len() - 1) as f64 * p).round() as usize]
            }
        };
        let pct = |p: f64| pct_of(&t, p);
        let mut u = self.ui_times.clone();
        u.sort_by(f64::total_cmp);
        let ui_p99 = u
            .get(((u.len().max(1) - 1) as f64 * 0.99) as usize)
            .copied()
            .unwrap_or(0.0);
        let mut sharp = self.sharp_times.clone();
        sharp.sort_by(f64::total_cmp);
        let median = sharp.get(sharp.len() / 2).copied().unwrap_or(0.0);
        let worst = sharp.last().copied().unwrap_or(0.0);
        let bytes = session.map_or(0, |s| s.image.source.bytes_read());
        let budget = session.map_or(0, |s| s.cache.lock().map(|c| c.budget()).unwrap_or(0));
        let p99 = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            pct_of(&v, 0.99)
        };
        let motions = format!(
            "\"pan_frame_ms_p99\":{:.2},\"pan_work_ms_p99\":{:.2},\"window_frames\":{},\"window_frame_ms_p99\":{:.2},\"window_work_ms_p99\":{:.2},",
            p99(&self.pan_frames),
            p99(&self.pan_work),
            self.window_frames.len(),
            p99(&self.window_frames),
            p99(&self.window_work)
        );
        println!(
            "{{{motions}\"frames\":{},\"ui_ms_p99\":{:.2},\"work_ms_p50\":{:.2},\"work_ms_p99\":{:.2},\"work_ms_max\":{:.2},\"frame_ms_p50\":{:.2},\"frame_ms_p99\":{:.2},\"frame_ms_max\":{:.2},\"first_frame_ms\":{:.1},\"fit_sharp_ms\":{:.1},\"open_fit_ms\":{:.1},\"sharp_ms_median\":{:.1},\"sharp_ms_worst\":{:.1},\"jumps\":{},\"bytes_read\":{},\"peak_rss_mb\":{:.1},\"cache_budget_mb\":{:.1}}}",
            t.len() + 1,
            ui_p99,
            pct_of(&work, 0.5),
            pct_of(&work, 0.99),
            work.last().copied().unwrap_or(0.0),
            pct(0.5),
            pct(0.99),
            t.last().copied().unwrap_or(0.0),
            self.first_frame.map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            self.fit_sharp.map_or(-1.0, |d| d.as_secs_f64() * 1000.0),
            self.fit_sharp
                .map_or(-1.0, |d| (d.saturating_sub(self.opened - self.started))
                    .as_secs_f64()
                    * 1000.0),
            median,
            worst,
            sharp.len(),
            bytes,
            crate::stats::peak_rss_bytes() as f64 / 1e6,
            budget as f64 / 1e6
        );
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}
