//! The real app under egui_kittest (no GPU): open without the dialog, drag, wheel, keys, the
//! descriptor panel, go-to, and the error banner.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::synth::{TiffSpec, write_tiff};
use egui::{Event, Modifiers, PointerButton, Pos2, Vec2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tessera::app::{StartOptions, TesseraApp};

/// The real app opening `path`, before the open has finished.
fn build(path: &Path) -> Harness<'static, TesseraApp> {
    build_with(
        path,
        // Hermetic: nothing kept, nothing built unless a test asks.
        tessera::levels::LevelsConfig {
            dir: None,
            cap_bytes: 1 << 30,
            auto_pixels: u64::MAX,
        },
    )
}

/// [`build`] with level options of the test's choosing.
fn build_with(path: &Path, levels: tessera::levels::LevelsConfig) -> Harness<'static, TesseraApp> {
    build_from(StartOptions {
        file: Some(path.to_path_buf()),
        cache_mb: Some(64),
        levels: Some(levels),
        ..StartOptions::default()
    })
}

/// The real app started with `start`.
fn build_from(start: StartOptions) -> Harness<'static, TesseraApp> {
    Harness::builder()
        .with_size(Vec2::new(1400.0, 900.0))
        .build_eframe(move |cc| TesseraApp::new(cc, start.clone()))
}

/// The real app with `path` opened.
fn harness(path: &Path) -> Harness<'static, TesseraApp> {
    let mut h = build(path);
    settle(&mut h, |app| !app.is_opening());
    h
}

/// Step frames until `done` holds (or 20 s pass).
fn settle(h: &mut Harness<'static, TesseraApp>, done: impl Fn(&TesseraApp) -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        h.step();
        if done(h.state()) {
            h.step();
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the app did not settle");
}

/// Press at `p0`, move to `p1` in ten steps (a frame each), release.
fn drag(h: &mut Harness<'static, TesseraApp>, p0: Pos2, p1: Pos2) {
    drag_with(h, p0, p1, Modifiers::NONE);
}

/// [`drag`] with `modifiers` held (Shift selects).
fn drag_with(h: &mut Harness<'static, TesseraApp>, p0: Pos2, p1: Pos2, modifiers: Modifiers) {
    h.event(Event::ModifiersChanged(modifiers));
    h.event(Event::PointerMoved(p0));
    h.event(Event::PointerButton {
        pos: p0,
        button: PointerButton::Primary,
        pressed: true,
        modifiers,
    });
    h.step();
    for i in 1..=10 {
        h.event(Event::PointerMoved(p0 + (p1 - p0) * (i as f32 / 10.0)));
        h.step();
    }
    h.event(Event::PointerButton {
        pos: p1,
        button: PointerButton::Primary,
        pressed: false,
        modifiers,
    });
    if modifiers != Modifiers::NONE {
        h.step();
        h.event(Event::ModifiersChanged(Modifiers::NONE));
    }
}

/// A 2000x1500 tiled TIFF with 256x256 tiles: 8x6 = 48 descriptors.
fn tiled(dir: &Path) -> std::path::PathBuf {
    crate::support::synth::pattern_tiff(
        &dir.join("t.tif"),
        &TiffSpec::new(2000, 1500, 3, 8, 2).tiles(256, 256),
    )
}

fn canvas_point(h: &Harness<'static, TesseraApp>) -> Pos2 {
    // A point well inside the canvas (left of the panel, below the menu).
    let _ = h;
    Pos2::new(300.0, 350.0)
}

#[test]
fn opens_a_file_fitted_and_loads_its_pieces() {
    let dir = crate::support::tempdir();
    let mut h = harness(&tiled(dir.path()));
    let app = h.state();
    let s = app.session.as_ref().expect("the file opened");
    assert_eq!(s.page().descriptor_count(), 48);
    let fit = app.view.fit_zoom(2000, 1500);
    assert!(
        (app.view.zoom - fit).abs() < 1e-9,
        "opened fitted to the window"
    );
    settle(&mut h, |a| a.session.as_ref().is_some_and(|s| s.is_sharp()));
    let s = h.state().session.as_ref().expect("session");
    assert!(s.textures.bytes() > 0, "pieces were uploaded as textures");
}

#[test]
fn drag_moves_the_view_by_the_dragged_distance() {
    let dir = crate::support::tempdir();
    let mut h = harness(&tiled(dir.path()));
    let p0 = canvas_point(&h);
    let before = {
        let v = &h.state().view;
        (v.center_x, v.center_y, v.zoom)
    };
    let p1 = p0 + Vec2::new(120.0, -70.0);
    drag(&mut h, p0, p1);
    h.step();
    let v = &h.state().view;
    let moved = (
        (before.0 - v.center_x) * before.2,
        (before.1 - v.center_y) * before.2,
    );
    assert!(
        (moved.0 - 120.0).abs() < 1.0 && (moved.1 + 70.0).abs() < 1.0,
        "moved {moved:?}"
    );
}

#[test]
fn wheel_zooms_about_the_cursor() {
    let dir = crate::support::tempdir();
    let mut h = harness(&tiled(dir.path()));
    let p = canvas_point(&h);
    h.event(Event::PointerMoved(p));
    h.step();
    let origin = h.state().canvas_rect.min;
    let (sx, sy) = (f64::from(p.x - origin.x), f64::from(p.y - origin.y));
    let (zoom0, under0) = {
        let v = &h.state().view;
        (v.zoom, v.image_from_screen(sx, sy))
    };
    h.event(Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: Vec2::new(0.0, 1.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: Modifiers::NONE,
    });
    h.step();
    h.step();
    let v = &h.state().view;
    assert!(
        (v.zoom / zoom0 - 1.25).abs() < 1e-6,
        "one wheel step zooms by 1.25: {} -> {}",
        zoom0,
        v.zoom
    );
    let under1 = v.image_from_screen(sx, sy);
    assert!(
        (under0.0 - under1.0).abs() < 0.01 && (under0.1 - under1.1).abs() < 0.01,
        "{under0:?} vs {under1:?}"
    );
}

#[test]
fn keys_fit_actual_size_and_pan() {
    let dir = crate::support::tempdir();
    let mut h = harness(&tiled(dir.path()));
    h.key_press(egui::Key::Num1);
    h.step();
    assert!((h.state().view.zoom - 1.0).abs() < 1e-9, "1 = 100 %");
    let x = h.state().view.center_x;
    h.key_press(egui::Key::ArrowRight);
    h.step();
    assert!(h.state().view.center_x > x, "arrow pans");
    h.key_press(egui::Key::Num0);
    h.step();
    let v = &h.state().view;
    assert!((v.zoom - v.fit_zoom(2000, 1500)).abs() < 1e-9, "0 fits");
}

#[test]
fn panel_lists_the_descriptors_and_go_to_centres_on_one() {
    let dir = crate::support::tempdir();
    let mut h = harness(&tiled(dir.path()));
    // Every row of a 48-descriptor file; the panel is virtualised, so scroll it by name.
    let rows = h
        .query_all_by_label_contains("raw                (")
        .count();
    assert!(rows >= 20, "the panel shows descriptor rows ({rows})");
    // Select descriptor 9: tile (1, 1) → extent (256,256,512,512).
    h.get_by_label_contains("      9 raw ").click();
    h.step();
    assert_eq!(h.state().selected, Some(9));
    h.step();
    h.get_by_label("Go to").click();
    h.step();
    h.step();
    let v = &h.state().view;
    assert!(
        (v.center_x - 384.0).abs() < 1e-9 && (v.center_y - 384.0).abs() < 1e-9,
        "centred on tile 9: {} {}",
        v.center_x,
        v.center_y
    );
}

#[test]
fn an_unreadable_file_shows_the_error_banner() {
    let dir = crate::support::tempdir();
    let bad = crate::support::write(dir.path(), "bad.tif", b"II*\0\xff\xff\xff\x7f");
    let mut h = harness(&bad);
    h.step();
    assert!(
        h.query_by_label("No image").is_some(),
        "the status bar says nothing is open"
    );
    assert!(
        h.query_by_label_contains("Error: ").is_some(),
        "the banner is shown"
    );
    assert!(
        h.query_by_label_contains("bad.tif").is_some(),
        "the banner names the file"
    );
    // The app keeps working: the banner is dismissed (the click is applied at the end of a
    // frame, the next frame draws without the banner).
    h.get_by_label("Dismiss").click();
    h.step();
    h.step();
    assert!(h.query_by_label_contains("Error: ").is_none());
}

#[test]
fn a_failing_descriptor_is_marked_and_reported() {
    let dir = crate::support::tempdir();
    let p = dir.path().join("z.tif");
    let spec = TiffSpec::new(600, 500, 3, 8, 2).tiles(256, 256);
    let deflate = |b: &[u8]| crate::support::encode::zlib(b, flate2::Compression::default());
    let mut f = std::fs::File::create(&p).expect("create");
    write_tiff(
        &mut f,
        &spec,
        &|x, y, c| ((x ^ y) + c) as u16 % 256,
        Some((8, &deflate)),
    )
    .expect("tiff");
    drop(f);
    // Overwrite tile 0's compressed bytes with garbage.
    let image = tessera::OpenImage::open(&p).expect("open");
    let d = image.layout.pages[0].descriptor(0);
    drop(image);
    let mut bytes = std::fs::read(&p).expect("read");
    for b in &mut bytes[d.offset as usize..(d.offset + d.length) as usize] {
        *b = 0xEE;
    }
    std::fs::write(&p, &bytes).expect("write");
    let mut h = harness(&p);
    settle(&mut h, |a| {
        a.session
            .as_ref()
            .is_some_and(|s| s.loader.pending() == 0 && (0..6).all(|u| s.unit_state(u).is_some()))
    });
    let app = h.state();
    let s = app.session.as_ref().expect("session");
    assert!(matches!(
        s.unit_state(0),
        Some(tessera::session::UnitState::Failed(_))
    ));
    assert!(
        (1..6).all(|u| s.unit_state(u) == Some(&tessera::session::UnitState::Cached)),
        "the other tiles load"
    );
    h.step();
    assert!(
        h.query_by_label_contains("descriptor 0").is_some(),
        "the banner names it"
    );
}

/// A slow open (indexing a large plain PGM) shows a Cancel button that stops it cleanly.
#[test]
fn a_slow_open_can_be_cancelled() {
    use std::io::Write;
    let dir = crate::support::tempdir();
    let p = dir.path().join("slow.pgm");
    let side = 3600;
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    write!(f, "P2\n{side} {side}\n255\n").expect("header");
    for y in 0..side {
        for x in 0..side {
            write!(f, "{} ", (x * y) % 256).expect("sample");
        }
    }
    drop(f);
    // The spinner and its Cancel button show from the first frame (not after 100 ms), so the
    // test does not depend on how fast this machine indexes the file.
    let mut h = build_from(StartOptions {
        file: Some(p.clone()),
        cache_mb: Some(64),
        levels: Some(tessera::levels::LevelsConfig {
            dir: None,
            cap_bytes: 1 << 30,
            auto_pixels: u64::MAX,
        }),
        open_feedback_after: Some(Duration::ZERO),
        ..StartOptions::default()
    });
    let start = Instant::now();
    loop {
        h.step();
        if h.query_by_label("Cancel").is_some() {
            break;
        }
        assert!(
            h.state().is_opening(),
            "the open finished before it could be cancelled"
        );
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The button moves as the progress text grows: click it until the open stops (a click
    // that lands where it was a frame ago misses).
    let start = Instant::now();
    while h.state().is_opening() {
        if let Some(b) = h.query_by_label("Cancel") {
            b.click();
        }
        h.step();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the open did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
    h.step();
    assert!(h.query_by_label("No image").is_some(), "nothing opened");
    assert!(
        h.query_by_label_contains("Error: ").is_none(),
        "a cancel is not an error"
    );
    assert!(h.query_by_label("Cancel").is_none(), "the spinner is gone");
}

/// A pyramidal TIFF opened fitted is drawn from a reduced level, sharp, without reading the
/// full-resolution page.
#[test]
fn zoomed_out_views_use_the_files_levels() {
    let dir = crate::support::tempdir();
    let (w, h) = (6000u32, 4000u32);
    let mut specs = vec![TiffSpec::new(w, h, 3, 8, 2).tiles(256, 256)];
    for f in [2u32, 4, 8] {
        let mut s = TiffSpec::new(w.div_ceil(f), h.div_ceil(f), 3, 8, 2).tiles(256, 256);
        s.subfile_type = 1;
        specs.push(s);
    }
    let flat = |_x: u32, _y: u32, c: u32| (c * 80) as u16;
    let samplers: [&dyn Fn(u32, u32, u32) -> u16; 4] = [&flat, &flat, &flat, &flat];
    let p = dir.path().join("pyr.tif");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    crate::support::synth::write_tiff_pages(&mut f, &specs, &samplers, None).expect("tiff");
    drop(f);
    let mut harness = harness(&p);
    settle(&mut harness, |a| {
        a.session.as_ref().is_some_and(|s| s.is_sharp())
    });
    let s = harness.state().session.as_ref().expect("session");
    assert_eq!(s.pyramid().len(), 4);
    assert!(
        s.level() >= 2,
        "fit to a ~1000-pixel canvas picks the 1/4 or 1/8 level, got {}",
        s.level()
    );
    let read = s.image.source.bytes_read();
    assert!(
        read < u64::from(w) * u64::from(h) * 3 / 8,
        "read {read} bytes"
    );
}

/// A raw file without levels opens fitted to a subsampled preview at once: sharp, reading a
/// fraction of the file.
#[test]
fn raw_files_preview_by_subsampling_when_zoomed_out() {
    let dir = crate::support::tempdir();
    let p = dir.path().join("big.ppm");
    let (w, h) = (9000u32, 7000u32);
    crate::support::synth::write_file(crate::support::synth::Kind::Ppm, w, h, &p).expect("ppm");
    let mut harness = harness(&p);
    settle(&mut harness, |a| {
        a.session.as_ref().is_some_and(|s| s.is_sharp())
    });
    let s = harness.state().session.as_ref().expect("session");
    assert!(s.level() > 0, "fitted view drawn from a preview level");
    assert!(
        matches!(s.mode(), tessera::view::plan::ViewMode::Sharp),
        "no placeholder-only view"
    );
    let read = s.image.source.bytes_read();
    let file = std::fs::metadata(&p).expect("meta").len();
    assert!(read * 4 < file, "read {read} of {file} bytes");
}

/// Levels kept in `store`, built for any image.
fn keep_in(store: &Path) -> tessera::levels::LevelsConfig {
    tessera::levels::LevelsConfig {
        dir: Some(store.to_path_buf()),
        cap_bytes: 1 << 30,
        auto_pixels: 0,
    }
}

/// A deflate-tiled TIFF with no levels of its own (and no subsampled preview: compressed).
fn compressed(dir: &Path, w: u32, h: u32) -> std::path::PathBuf {
    let p = dir.join("deflate.tif");
    let deflate = |b: &[u8]| crate::support::encode::zlib(b, flate2::Compression::fast());
    let spec = TiffSpec::new(w, h, 3, 8, 2).tiles(256, 256);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    write_tiff(
        &mut f,
        &spec,
        &|x, y, c| u16::from(crate::support::synth::pattern(x, y, c)),
        Some((8, &deflate)),
    )
    .expect("tiff");
    drop(f);
    p
}

/// A big file without levels: they are built in the background and the fitted view is drawn
/// from them; the panel lists the built levels' descriptors.
#[test]
fn levels_are_built_in_the_background_and_used() {
    use tessera::levels::BuildState;
    use tessera::pieces::LevelSource;
    let dir = crate::support::tempdir();
    let p = compressed(dir.path(), 4000, 3000);
    let store = dir.path().join("levels");
    let mut h = build_with(&p, keep_in(&store));
    settle(&mut h, |a| {
        a.session
            .as_ref()
            .is_some_and(|s| s.build_state() == Some(BuildState::Complete) && s.is_sharp())
    });
    let s = h.state().session.as_ref().expect("session");
    assert!(
        matches!(
            s.pyramid().levels()[s.level()].source,
            LevelSource::Built(_)
        ),
        "the fitted view is drawn from a built level: {:?}",
        s.pyramid().levels()[s.level()]
    );
    let kept: Vec<_> = std::fs::read_dir(&store)
        .expect("store")
        .flatten()
        .collect();
    assert_eq!(kept.len(), 1, "one sidecar kept");
    // The panel lists the built level's descriptors.
    h.get_by_label("level").click();
    h.step();
    h.step();
    h.get_by_label("1/4 (built)").click();
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains("built level 1/4 (sidecar TIFF) 1000x750")
            .is_some(),
        "panel shows the built level"
    );
    // Reopening uses the kept levels at once: no build.
    drop(h);
    let mut h = build_with(&p, keep_in(&store));
    settle(&mut h, |a| a.session.as_ref().is_some_and(|s| s.is_sharp()));
    let s = h.state().session.as_ref().expect("session");
    assert_eq!(s.build_state(), Some(BuildState::Complete));
    assert!(
        s.image.source.bytes_read() < 64 << 10,
        "second open read {} bytes of the file",
        s.image.source.bytes_read()
    );
}

/// The menu bar shows the build's progress and a button that cancels it.
#[test]
fn a_level_build_can_be_cancelled() {
    use tessera::levels::BuildState;
    let dir = crate::support::tempdir();
    // Sparse (no disk used) and big enough that the build is still running when the button
    // is clicked a few frames after the open, even on a fast machine.
    let p = dir.path().join("big.pgm");
    let header = b"P5\n20000 16000\n255\n";
    std::fs::write(&p, header).expect("header");
    std::fs::File::options()
        .write(true)
        .open(&p)
        .and_then(|f| f.set_len(header.len() as u64 + 20000 * 16000))
        .expect("size");
    let store = dir.path().join("levels");
    let mut h = build_with(&p, keep_in(&store));
    settle(&mut h, |a| a.session.is_some());
    h.step();
    h.get_by_label("Cancel levels").click();
    settle(&mut h, |a| {
        a.session
            .as_ref()
            .is_some_and(|s| s.build_state() == Some(BuildState::Cancelled))
    });
    assert!(
        h.query_by_label("Cancel levels").is_none(),
        "the button goes with the build"
    );
    let left: Vec<_> = std::fs::read_dir(&store)
        .expect("store")
        .flatten()
        .collect();
    assert!(left.is_empty(), "a cancelled build keeps nothing: {left:?}");
}

/// Larger than this machine's RAM (a sparse 27 GB PPM): open, fit, zoom to 1:1, pan. The view
/// reads a sliver of the file and the decoded pieces stay within the cache budget.
#[test]
fn an_image_larger_than_ram_opens_fits_zooms_and_pans() {
    use std::io::Write;
    let dir = crate::support::tempdir();
    let p = dir.path().join("huge.ppm");
    let (w, h) = (100_000u64, 90_000u64);
    let mut f = std::fs::File::create(&p).expect("create");
    let header = format!("P6\n{w} {h}\n255\n");
    f.write_all(header.as_bytes()).expect("header");
    // Sparse: the pixels read as zeros, no disk is used.
    f.set_len(header.len() as u64 + w * h * 3).expect("size");
    drop(f);
    let size = std::fs::metadata(&p).expect("meta").len();
    assert!(size > 24 << 30, "bigger than the machine's 24 GiB of RAM");
    let mut hn = harness(&p);
    settle(&mut hn, |a| {
        a.session.as_ref().is_some_and(|s| s.is_sharp())
    });
    let fit_level = hn.state().session.as_ref().map_or(0, |s| s.level());
    assert!(fit_level > 0, "the fitted view comes from a preview");
    hn.state_mut().apply(tessera::ui::Command::ActualSize);
    settle(&mut hn, |a| {
        a.session.as_ref().is_some_and(|s| s.is_sharp())
    });
    for _ in 0..3 {
        hn.state_mut()
            .apply(tessera::ui::Command::CenterOn(71_234.0, 55_555.0));
        settle(&mut hn, |a| {
            a.session.as_ref().is_some_and(|s| s.is_sharp())
        });
    }
    // The navigator shows the whole image (the coarsest level) wherever the view is.
    let area = |a: &tessera::app::TesseraApp| {
        a.session.as_ref().map_or(0, |s| {
            s.thumbnail().iter().map(|(_, e)| e.pixels()).sum::<u64>()
        })
    };
    settle(&mut hn, |a| area(a) == w * h);
    let s = hn.state().session.as_ref().expect("session");
    assert_eq!(s.level(), 0, "1:1 reads the file itself");
    let (cached, budget) = {
        let c = s.cache.lock().expect("cache");
        (c.bytes(), c.budget())
    };
    assert!(cached <= budget, "{cached} bytes cached, budget {budget}");
    let read = s.image.source.bytes_read();
    assert!(read < size / 20, "read {read} of {size} bytes");
}

/// A PNG's checkpoints are recorded by the first pass (the level build here) and shown in the
/// panel; the next open loads them, so a band near the bottom decodes from its own.
#[test]
fn png_checkpoints_are_recorded_shown_and_kept() {
    let dir = crate::support::tempdir();
    let p = dir.path().join("tall.png");
    // The `image` crate writes the whole stream as one deflate block (fdeflate).
    image::RgbImage::from_fn(1500, 5000, |x, y| {
        image::Rgb([
            crate::support::synth::pattern(x, y, 0),
            crate::support::synth::pattern(x, y, 1),
            (x ^ y) as u8,
        ])
    })
    .save(&p)
    .expect("png");
    let store = dir.path().join("levels");
    let mut h = build_with(&p, keep_in(&store));
    let indexed = |a: &TesseraApp| {
        a.session.as_ref().is_some_and(|s| {
            s.image.index.as_ref().is_some_and(|ix| ix.is_complete()) && s.is_sharp()
        })
    };
    settle(&mut h, indexed);
    assert!(
        h.query_by_label_contains("indexing pass: 5 of 5 bands reached")
            .is_some(),
        "the panel shows the indexing pass"
    );
    assert!(tessera::index::file_for(&store, &p).exists(), "index kept");
    drop(h);
    let mut h = build_with(&p, keep_in(&store));
    settle(&mut h, |a| !a.is_opening());
    let s = h.state().session.as_ref().expect("session");
    let ix = s.image.index.as_ref().expect("an index");
    assert!(ix.is_complete(), "the kept index was loaded at open");
    let last = s.page().descriptor_count() - 1;
    let d = ix.descriptor(s.page(), last);
    assert_eq!(d.access.name(), "checkpoint");
    assert!(d.args.contains("checkpoint zlib byte"), "{}", d.args);
}

/// Remembers the last pixels egui sent for every texture: what the window displays.
#[derive(Clone, Default)]
struct Recorder(
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<egui::TextureId, Vec<u8>>>>,
);

impl egui_kittest::TestRenderer for Recorder {
    fn handle_delta(&mut self, delta: &mut egui::TexturesDelta) {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (id, deltas) in &delta.set {
            for d in deltas {
                if let (egui::ImageData::Color(img), None) = (&d.image, d.pos) {
                    seen.insert(*id, img.pixels.iter().flat_map(|c| c.to_array()).collect());
                }
            }
        }
        for id in &delta.free {
            seen.remove(id);
        }
        delta.clear();
    }
}

impl Recorder {
    /// Mean of every displayed channel value over the piece textures.
    fn mean(&self, ids: &[egui::TextureId]) -> f64 {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (mut sum, mut n) = (0u64, 0u64);
        for id in ids {
            if let Some(px) = seen.get(id) {
                for p in px.chunks_exact(4) {
                    sum += u64::from(p[0]) + u64::from(p[1]) + u64::from(p[2]);
                    n += 3;
                }
            }
        }
        sum as f64 / n.max(1) as f64
    }
}

#[test]
fn dragging_the_white_point_remaps_without_reading_the_file() {
    let dir = crate::support::tempdir();
    let path = dir.path().join("12bit.tif");
    let mut spec = TiffSpec::new(600, 400, 1, 16, 1).tiles(128, 128);
    spec.sample_format = 1;
    let mut f = std::fs::File::create(&path).expect("create");
    crate::support::synth::write_tiff_data(
        &mut f,
        &spec,
        &|x, y, _| 80.0 + f64::from((x * 7 + y * 3) % 3921),
        None,
    )
    .expect("write");
    drop(f);
    let recorder = Recorder::default();
    let start = StartOptions {
        file: Some(path.clone()),
        cache_mb: Some(64),
        levels: Some(tessera::levels::LevelsConfig {
            dir: None,
            cap_bytes: 1 << 30,
            auto_pixels: u64::MAX,
        }),
        ..StartOptions::default()
    };
    let mut h = Harness::builder()
        .with_size(Vec2::new(1400.0, 900.0))
        .renderer(recorder.clone())
        .build_eframe(move |cc| TesseraApp::new(cc, start.clone()));
    let sharp = |app: &TesseraApp| {
        app.session
            .as_ref()
            .is_some_and(|s| s.is_sharp() && s.pending_uploads() == 0)
    };
    settle(&mut h, sharp);
    let ids = |h: &Harness<'static, TesseraApp>| -> Vec<egui::TextureId> {
        let s = h.state().session.as_ref().expect("session");
        s.wanted()
            .iter()
            .filter_map(|k| s.textures.peek(k))
            .flat_map(|t| t.parts.iter().map(|(t, _)| t.id()))
            .collect()
    };
    let (hi_before, read_before) = {
        let s = h.state().session.as_ref().expect("session");
        let d = s
            .display
            .as_ref()
            .expect("a 16-bit TIFF opens with the display mapping");
        assert!(d.auto, "non-8-bit data opens with auto contrast");
        (d.mapping().channels[0].hi, s.image.bytes_read())
    };
    assert!(
        hi_before > 3900.0 && hi_before <= 4000.0,
        "auto white point {hi_before}"
    );
    let mean_before = recorder.mean(&ids(&h));
    // Drag the white point from the histogram's right end to its middle.
    let r = h.get_by_label("histogram of channel 0").rect();
    let (p0, p1) = (
        Pos2::new(r.right() - 8.0, r.center().y),
        Pos2::new(r.center().x, r.center().y),
    );
    drag(&mut h, p0, p1);
    settle(&mut h, sharp);
    let s = h.state().session.as_ref().expect("session");
    let d = s.display.as_ref().expect("display");
    let hi_after = d.mapping().channels[0].hi;
    assert!(
        hi_after < 0.7 * hi_before,
        "white point {hi_before} → {hi_after}"
    );
    assert!(!d.auto, "a hand-set window stops auto contrast");
    assert_eq!(
        s.image.bytes_read(),
        read_before,
        "re-mapped from the cache"
    );
    let mean_after = recorder.mean(&ids(&h));
    assert!(
        mean_after > mean_before + 20.0,
        "displayed pixels got brighter: {mean_before:.1} → {mean_after:.1}"
    );
}

#[test]
fn page_up_and_down_show_the_pages_of_a_multi_image_tiff_but_not_its_levels() {
    let dir = crate::support::tempdir();
    let path = dir.path().join("pages.tif");
    // Page 0: 64x48 RGB; page 1: its 1/2 pyramid level (NewSubfileType 1); page 2: another
    // image, 40x30 gray.
    let mut level = TiffSpec::new(32, 24, 3, 8, 2);
    level.subfile_type = 1;
    let specs = [
        TiffSpec::new(64, 48, 3, 8, 2),
        level,
        TiffSpec::new(40, 30, 1, 8, 1),
    ];
    let rgb = |x: u32, y: u32, c: u32| u16::from(crate::support::synth::pattern(x, y, c));
    let gray = |x: u32, _: u32, _: u32| (x * 6) as u16;
    let mut f = std::fs::File::create(&path).expect("create");
    crate::support::synth::write_tiff_pages(&mut f, &specs, &[&rgb, &rgb, &gray], None)
        .expect("tiff");
    drop(f);
    let mut h = harness(&path);
    let page = |h: &Harness<'static, TesseraApp>| h.state().session.as_ref().map(|s| s.page);
    assert_eq!(page(&h), Some(0));
    assert!(h.query_by_label_contains("page 1 of 2").is_some());
    h.key_press(egui::Key::PageDown);
    h.step();
    assert_eq!(page(&h), Some(2), "the pyramid level is skipped");
    assert!(h.query_by_label_contains("page 2 of 2").is_some());
    let s = h.state().session.as_ref().expect("session");
    assert_eq!((s.page().width, s.page().height), (40, 30));
    // The descriptor panel lists the page shown.
    assert!(h.query_by_label_contains("TIFF 40x30 L").is_some());
    h.key_press(egui::Key::PageDown);
    h.step();
    assert_eq!(page(&h), Some(2), "no page after the last");
    h.key_press(egui::Key::PageUp);
    h.step();
    assert_eq!(page(&h), Some(0));
}

/// A two-page TIFF: 64x48 RGB, then 40x30 gray.
fn two_pages(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("two.tif");
    let specs = [
        TiffSpec::new(64, 48, 3, 8, 2),
        TiffSpec::new(40, 30, 1, 8, 1),
    ];
    let rgb = |x: u32, y: u32, c: u32| u16::from(crate::support::synth::pattern(x, y, c));
    let gray = |x: u32, _: u32, _: u32| (x * 6) as u16;
    let mut f = std::fs::File::create(&path).expect("create");
    crate::support::synth::write_tiff_pages(&mut f, &specs, &[&rgb, &gray], None).expect("tiff");
    path
}

#[test]
fn go_to_field_moves_the_view_and_copy_location_reopens_it() {
    let dir = crate::support::tempdir();
    let path = two_pages(dir.path());
    let mut h = harness(&path);
    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::G);
    h.step();
    h.get_by_label("Go").click();
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains("expected X,Y").is_some(),
        "an empty place is an error, shown in the field"
    );
    h.get_by_role(egui::accesskit::Role::TextInput)
        .type_text("12,34,400%");
    h.step();
    h.get_by_label("Go").click();
    h.step();
    h.step();
    let v = h.state().view;
    assert_eq!((v.center_x, v.center_y, v.zoom), (12.0, 34.0, 4.0));
    let text = h.state().location_text().expect("location");
    assert!(text.ends_with("two.tif --at 12,34,4"), "{text}");

    // What "copy location" gives reopens the same place (page and all) from the command line.
    h.key_press(egui::Key::PageDown);
    h.step();
    h.state_mut().apply(tessera::ui::Command::GoToLocation(
        tessera::view::location::Location {
            x: 20.0,
            y: 10.0,
            zoom: Some(2.0),
        },
    ));
    let text = h.state().location_text().expect("location");
    assert!(text.ends_with("two.tif --page 1 --at 20,10,2"), "{text}");
    let mut again = build_from(StartOptions {
        file: Some(path.clone()),
        cache_mb: Some(64),
        page: Some(1),
        at: Some("20,10,2".into()),
        ..StartOptions::default()
    });
    settle(&mut again, |app| !app.is_opening());
    again.step();
    let s = again.state();
    assert_eq!(s.session.as_ref().map(|s| s.page), Some(1));
    assert_eq!(
        (s.view.center_x, s.view.center_y, s.view.zoom),
        (20.0, 10.0, 2.0)
    );
}

#[test]
fn the_measure_tool_gives_a_dragged_line_in_pixels_and_units() {
    let dir = crate::support::tempdir();
    // 0.5 µm pixels (OME-XML), so the length has units too.
    let path = dir.path().join("ome.tif");
    let mut spec = TiffSpec::new(400, 300, 3, 8, 2);
    spec.description = Some(
        r#"<OME><Image><Pixels PhysicalSizeX="0.5" PhysicalSizeY="0.5" SizeX="400" SizeY="300"/></Image></OME>"#
            .into(),
    );
    let rgb = |x: u32, y: u32, c: u32| u16::from(crate::support::synth::pattern(x, y, c));
    let mut f = std::fs::File::create(&path).expect("create");
    write_tiff(&mut f, &spec, &rgb, None).expect("tiff");
    drop(f);
    let mut h = harness(&path);
    h.key_press(egui::Key::Num1); // 100 %: a screen pixel is an image pixel
    h.step();
    h.key_press(egui::Key::M);
    h.step();
    assert!(h.query_by_label_contains("measure: drag a line").is_some());
    let c = h.state().view;
    let r = h.state().canvas_rect;
    let p0 = r.center();
    // 300 screen pixels right and 400 down would leave the canvas: 30 and 40.
    let p1 = p0 + Vec2::new(30.0, 40.0);
    drag(&mut h, p0, p1);
    h.step();
    let ((x0, y0), (x1, y1)) = h.state().measure.line.expect("a line");
    let len = (x1 - x0).hypot(y1 - y0);
    assert!((len - 50.0).abs() < 1.0, "length {len} px");
    // The view did not pan: the drag measured.
    assert_eq!(
        (h.state().view.center_x, h.state().view.center_y),
        (c.center_x, c.center_y)
    );
    let text = h
        .state()
        .measure
        .describe(Some(
            &tessera::physical::PixelSize::new(0.5e-6, 0.5e-6, tessera::physical::Unit::Metre, "t")
                .expect("size"),
        ))
        .expect("text");
    assert!(
        h.query_by_label_contains(&format!("measured {text}"))
            .is_some(),
        "{text}"
    );
    assert!(text.contains("µm"), "{text}");
    h.key_press(egui::Key::M);
    h.step();
    assert!(
        h.state().measure.line.is_none(),
        "turning the tool off clears the line"
    );
}

#[test]
fn the_built_in_browser_lists_images_describes_the_selected_one_and_opens_it() {
    let dir = crate::support::tempdir();
    let first = tiled(dir.path());
    let second = two_pages(dir.path());
    std::fs::write(dir.path().join("notes.txt"), b"not an image").expect("write");
    std::fs::create_dir(dir.path().join("more")).expect("dir");
    let mut h = harness(&first);
    h.state_mut().apply(tessera::ui::Command::OpenBrowser);
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains("[more]").is_some(),
        "folders are listed"
    );
    assert!(
        h.query_by_label_contains("notes.txt").is_none(),
        "not an image"
    );
    h.get_by_label_contains("two.tif").click();
    // The header is read off the UI thread: wait for its description.
    settle(&mut h, |app| app.browser.is_some());
    let start = Instant::now();
    while h
        .query_by_label_contains("two.tif: TIFF 64x48 RGB, 2 pages")
        .is_none()
    {
        assert!(start.elapsed() < Duration::from_secs(10), "no description");
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.get_by_label("Open").click();
    h.step();
    settle(&mut h, |app| {
        !app.is_opening()
            && app
                .session
                .as_ref()
                .is_some_and(|s| s.image.path() == second)
    });
    assert!(h.state().browser.is_none(), "the browser closes on open");
}

/// eframe's storage, in memory.
#[derive(Default)]
struct Memory(std::collections::HashMap<String, String>);

impl eframe::Storage for Memory {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

#[test]
fn bookmarks_keep_page_centre_and_zoom_and_survive_a_restart() {
    use eframe::App as _;
    let dir = crate::support::tempdir();
    let path = two_pages(dir.path());
    let mut h = harness(&path);
    h.key_press(egui::Key::PageDown);
    h.step();
    h.state_mut().apply(tessera::ui::Command::GoToLocation(
        tessera::view::location::Location {
            x: 25.0,
            y: 12.0,
            zoom: Some(3.0),
        },
    ));
    h.step();
    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::D);
    h.step();
    h.step();
    assert_eq!(h.state().bookmarks().len(), 1);
    assert!(h.query_by_label_contains("page 1, 25,12, 300.0%").is_some());
    // Elsewhere, then back through the panel's Go.
    h.key_press(egui::Key::PageUp);
    h.step();
    h.get_by_label("Go").click();
    h.step();
    h.step();
    let s = h.state();
    assert_eq!(s.session.as_ref().map(|s| s.page), Some(1));
    assert_eq!(
        (s.view.center_x, s.view.center_y, s.view.zoom),
        (25.0, 12.0, 3.0)
    );

    // Saved the way eframe saves settings, and read back by a new app.
    let mut storage = Memory::default();
    h.state_mut().save(&mut storage);
    let settings: tessera::app::Settings =
        eframe::get_value(&storage, "tessera-settings").expect("stored settings");
    let mut again = build_from(StartOptions {
        file: Some(path.clone()),
        cache_mb: Some(64),
        settings: Some(settings),
        ..StartOptions::default()
    });
    settle(&mut again, |app| !app.is_opening());
    again.step();
    let marks = again.state().bookmarks().to_vec();
    assert_eq!(marks.len(), 1);
    assert_eq!(
        (marks[0].page, marks[0].x, marks[0].y, marks[0].zoom),
        (1, 25.0, 12.0, 3.0)
    );
}

/// Click Export and step until the window says the file is saved.
fn export_and_wait(h: &mut Harness<'static, TesseraApp>, out: &Path) {
    h.get_by_label("Export").click();
    h.step();
    let start = Instant::now();
    while h
        .query_by_label_contains(&format!("saved {}", out.display()))
        .is_none()
    {
        assert!(start.elapsed() < Duration::from_secs(20), "no export");
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_export_window_saves_the_view_as_png() {
    let dir = crate::support::tempdir();
    let path = tiled(dir.path());
    let mut h = harness(&path);
    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::E);
    h.step();
    h.step();
    let out = dir.path().join("view.png");
    {
        let ex = h.state_mut().export.as_mut().expect("export window");
        assert!(ex.region.starts_with("0,0,"), "the view: {}", ex.region);
        ex.region = "100,50,640,480".into();
        ex.scale = 2;
        ex.path = out.display().to_string();
    }
    h.step();
    export_and_wait(&mut h, &out);
    let img = image::open(&out).expect("png").to_rgba8();
    assert_eq!((img.width(), img.height()), (320, 240));
    let want = crate::support::render_region(&path, (100, 50, 640, 480), 2).expect("render");
    assert!(img.as_raw() == &want.data);
}

#[test]
fn a_file_turned_by_its_tag_opens_turned_and_the_cursor_reads_stored_pixels() {
    use tessera::orientation::Orientation;
    let dir = crate::support::tempdir();
    let path = dir.path().join("turned.tif");
    let mut spec = TiffSpec::new(400, 300, 3, 8, 2);
    spec.orientation = 6;
    crate::support::synth::pattern_tiff(&path, &spec);
    let mut h = harness(&path);
    h.step();
    assert_eq!(h.state().view.orient, Orientation::CW);
    assert!(h.query_by_label_contains("rotated 90° clockwise").is_some());
    // Fitted and turned, the image is 300 wide and 400 tall on screen; its top-left corner
    // shows stored pixel (0, 299), the bottom-left of the stored rows.
    let v = h.state().view;
    let centre = h.state().canvas_rect.center();
    let top_left = centre - Vec2::new(150.0 * v.zoom as f32, 200.0 * v.zoom as f32);
    h.hover_at(top_left + Vec2::splat(0.5));
    h.step();
    h.step();
    assert!(
        h.query_by_label_contains("x 0  y 299 ").is_some(),
        "the cursor reads the stored pixel under it"
    );
    // The screen's top-right corner is stored pixel (0, 0).
    h.hover_at(top_left + Vec2::new(300.0 * v.zoom as f32 - 0.5, 0.5));
    h.step();
    h.step();
    assert!(h.query_by_label_contains("x 0  y 0 ").is_some());
    // R turns a quarter more (180° in all), F mirrors, and the menu's reset goes back.
    h.key_press(egui::Key::R);
    h.step();
    assert_eq!(h.state().view.orient, Orientation::from_exif(3));
    h.key_press(egui::Key::F);
    h.step();
    assert_eq!(h.state().view.orient, Orientation::from_exif(4));
    h.state_mut().apply(tessera::ui::Command::ResetOrientation);
    assert_eq!(h.state().view.orient, Orientation::CW);
}

#[test]
fn a_shift_drag_selection_exports_as_a_tiled_tiff_turned_as_the_view() {
    use tessera::ui::export_window::ExportFormat;
    let dir = crate::support::tempdir();
    let path = tiled(dir.path());
    let mut h = harness(&path);
    h.key_press(egui::Key::R);
    h.step();
    h.key_press(egui::Key::Num1);
    h.step();
    let before = h.state().view;
    let r = h.state().canvas_rect;
    let (p0, p1) = (
        r.center() - Vec2::new(120.0, 90.0),
        r.center() + Vec2::new(80.0, 60.0),
    );
    drag_with(&mut h, p0, p1, Modifiers::SHIFT);
    h.step();
    // The drag selected; it did not pan.
    let v = h.state().view;
    assert_eq!((v.center_x, v.center_y), (before.center_x, before.center_y));
    let at = |p: Pos2| v.image_from_screen(f64::from(p.x - r.min.x), f64::from(p.y - r.min.y));
    let want =
        tessera::ui::canvas::Selection::between(at(p0), at(p1), (2000, 1500)).expect("a rectangle");
    let sel = h.state().selection.rect.expect("a selection");
    assert_eq!(sel, want);
    // Turned a quarter: the 200x150-point drag spans 150 columns and 200 rows of the image.
    assert_eq!((sel.width(), sel.height()), (150, 200));
    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::E);
    h.step();
    h.step();
    let out = dir.path().join("sel.tif");
    {
        let ex = h.state_mut().export.as_mut().expect("export window");
        assert_eq!(
            ex.region,
            format!("{},{},{},{}", sel.x0, sel.y0, sel.width(), sel.height()),
            "the export takes the selection"
        );
        ex.set_format(ExportFormat::Tiff);
        assert!(ex.path.ends_with(".tif"), "{}", ex.path);
        ex.path = out.display().to_string();
    }
    h.step();
    assert!(
        h.query_by_label_contains("Written rotated 90° clockwise")
            .is_some()
    );
    export_and_wait(&mut h, &out);
    let got = image::open(&out).expect("tiff").to_rgb8();
    let rendered =
        crate::support::render_region(&path, (sel.x0, sel.y0, sel.width(), sel.height()), 1)
            .expect("render");
    let plain =
        image::RgbaImage::from_raw(rendered.width, rendered.height, rendered.data).expect("img");
    let want = image::DynamicImage::ImageRgba8(image::imageops::rotate90(&plain)).to_rgb8();
    assert_eq!(got.dimensions(), (200, 150));
    assert!(
        got == want,
        "the TIFF holds the selection turned as on screen"
    );
    // Esc forgets the selection.
    h.key_press(egui::Key::Escape);
    h.step();
    assert!(h.state().selection.rect.is_none());
}

#[test]
fn a_slow_remote_image_keeps_the_window_drawing_while_it_loads() {
    let dir = crate::support::tempdir();
    let path = tiled(dir.path());
    let server = crate::support::server::Server::http(dir.path());
    crate::remote::private_range_cache();
    let url = server.url(path.file_name().and_then(|n| n.to_str()).expect("name"));
    let mut h = build(Path::new(&url));
    settle(&mut h, |app| !app.is_opening());
    // From now on every answer takes 400 ms.
    server
        .delay_ms
        .store(400, std::sync::atomic::Ordering::SeqCst);
    h.key_press(egui::Key::Num1);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    loop {
        let t = Instant::now();
        h.step();
        slowest = slowest.max(t.elapsed());
        let s = h.state().session.as_ref().expect("open");
        if s.loader.pending() == 0 && s.pending_uploads() == 0 && start.elapsed().as_millis() > 500
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the pieces never came"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Frames kept coming while requests took 400 ms each.
    assert!(
        slowest < Duration::from_millis(300),
        "a frame took {slowest:?}"
    );
    assert!(
        h.query_by_label_contains(" requests, ").is_some(),
        "the status bar counts fetches"
    );
    assert!(
        h.query_by_label_contains("remote object, read by range GET")
            .is_some(),
        "the panel says range GET"
    );
}

#[test]
fn a_url_typed_in_the_open_dialog_opens_and_is_kept_in_recent_files() {
    let dir = crate::support::tempdir();
    let path = tiled(dir.path());
    let server = crate::support::server::Server::http(dir.path());
    crate::remote::private_range_cache();
    let url = server.url(path.file_name().and_then(|n| n.to_str()).expect("name"));
    let mut h = build_from(StartOptions {
        cache_mb: Some(64),
        settings: Some(tessera::app::Settings::default()),
        ..StartOptions::default()
    });
    h.step();
    h.state_mut().apply(tessera::ui::Command::OpenBrowser);
    h.step();
    h.state_mut()
        .browser
        .as_mut()
        .expect("the browser")
        .url_text = url.clone();
    h.step();
    h.get_by_label("Open URL").click();
    settle(&mut h, |app| app.session.is_some() && !app.is_opening());
    let s = h.state().session.as_ref().expect("opened");
    assert_eq!(s.image.path(), Path::new(&url));
    assert_eq!((s.page().width, s.page().height), (2000, 1500));
    assert_eq!(
        h.state().settings.recent.first(),
        Some(&std::path::PathBuf::from(&url))
    );
}
