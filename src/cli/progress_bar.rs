//! A progress bar on stderr for the long commands (`levels`, `index`, a render that builds
//! levels): redrawn in place on a terminal, a line every 10 % otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tessera::progress::Progress;

/// Run `work` while a bar labelled `label` follows `progress` (`total` bytes, for the rate).
pub fn with_bar<T>(label: &str, progress: &Progress, total: u64, work: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| draw(label, progress, &done, start, total));
        let r = work();
        done.store(true, Ordering::Release);
        r
    })
}

fn draw(label: &str, progress: &Progress, done: &AtomicBool, start: Instant, total: u64) {
    let tty = std::io::stderr().is_terminal();
    let mut last_decile = 0;
    let mut ticks = 0u32;
    let rate = |f: f32| f64::from(f) * total as f64 / 1e6 / start.elapsed().as_secs_f64().max(1e-9);
    while !done.load(Ordering::Acquire) {
        // Wake often (the command should not wait on the bar), draw every 100 ms.
        std::thread::sleep(Duration::from_millis(10));
        ticks += 1;
        if !ticks.is_multiple_of(10) {
            continue;
        }
        let f = progress.fraction().unwrap_or(0.0).clamp(0.0, 1.0);
        if tty {
            let filled = (f * 30.0) as usize;
            eprint!(
                "\r{label} [{}{}] {:3.0}% {:6.0} MB/s",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                f * 100.0,
                rate(f)
            );
        } else if (f * 10.0) as u32 > last_decile {
            last_decile = (f * 10.0) as u32;
            eprintln!("{label} {:3.0}% {:.0} MB/s", f * 100.0, rate(f));
        }
    }
    // The final state, whatever the timing: 100% for a finished pass.
    let f = progress.fraction().unwrap_or(0.0).clamp(0.0, 1.0);
    eprintln!(
        "{}{label} {:3.0}% {:.0} MB/s",
        if tty { "\r" } else { "" },
        f * 100.0,
        rate(f)
    );
}
