//! Remote images: files served by real servers on loopback (an HTTP file server that honours
//! `Range`, and an S3 server checking signatures) open by URL, render the local file's pixels,
//! reopen from the range cache without fetching pixel data, and fail with one line (404, 403,
//! a server gone mid-read, an object replaced while open), never showing a secret.

use std::path::Path;

use crate::support::server::Server;
use crate::support::synth::{TiffSpec, pattern, pattern_tiff};
use crate::support::{render_region, run_env, tempdir};

/// A 1500x1100 RGB TIFF in 128-pixel tiles.
fn tiled(dir: &Path, name: &str) -> std::path::PathBuf {
    pattern_tiff(
        &dir.join(name),
        &TiffSpec::new(1500, 1100, 3, 8, 2).tiles(128, 128),
    )
}

/// In-process opens keep their range cache in a folder of the test run, not the user's.
pub fn private_range_cache() {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let d = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    tessera::source::range_cache::set_root(d.path().to_path_buf());
}

fn png_pixels(p: &Path) -> Vec<u8> {
    image::open(p).expect("png").to_rgba8().into_raw()
}

#[test]
fn a_remote_tiff_renders_the_local_pixels_and_reopens_from_the_range_cache() {
    let dir = tempdir();
    let local = tiled(dir.path(), "t.tif");
    let server = Server::http(dir.path());
    let url = server.url("t.tif");
    let cache = dir.path().join("cache");
    let env = [("TESSERA_CACHE_DIR", cache.to_str().expect("utf-8"))];
    let (code, text, err) = run_env(&["info", &url], &env);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("1500x1100"), "{text}");
    let out = dir.path().join("remote.png");
    let region = (300, 200, 700, 500);
    let args = [
        "render",
        url.as_str(),
        "--region",
        "300,200,700,500",
        "--stats",
        "-o",
        out.to_str().expect("utf-8"),
    ];
    let (code, _, err) = run_env(&args, &env);
    assert_eq!(code, 0, "{err}");
    let want = render_region(&local, region, 1).expect("local render");
    assert!(png_pixels(&out) == want.data, "remote pixels differ");
    assert!(err.contains("range GET"), "{err}");
    // `convert` takes a URL too (over an existing output).
    let tif = dir.path().join("copy.tif");
    std::fs::write(&tif, b"old").expect("old output");
    let (code, _, err) = run_env(&["convert", &url, tif.to_str().expect("utf-8")], &env);
    assert_eq!(code, 0, "{err}");
    let copy = image::open(&tif).expect("converted").to_rgba8();
    let whole = render_region(&local, (0, 0, 1500, 1100), 1).expect("local");
    assert!(copy.as_raw() == &whole.data, "converted from the URL");
    // Again, from the range cache: only the opening request reaches the server.
    let before = server.requests();
    let (code, _, err) = run_env(&args, &env);
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.requests() - before, 1, "{err}");
    assert!(png_pixels(&out) == want.data);
}

#[test]
fn missing_objects_and_servers_that_go_away_are_one_line_errors() {
    let dir = tempdir();
    tiled(dir.path(), "t.tif");
    let mut server = Server::http(dir.path());
    let cache = dir.path().join("cache");
    let env = [
        ("TESSERA_CACHE_DIR", cache.to_str().expect("utf-8")),
        ("TESSERA_HTTP_RETRIES", "1"),
    ];
    let (code, _, err) = run_env(&["info", &server.url("missing.tif")], &env);
    assert_ne!(code, 0);
    assert!(err.contains("not found (HTTP 404)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Opened; the server answers slowly, and goes away while the pixel requests are in
    // flight.
    private_range_cache();
    let image = tessera::OpenImage::open(Path::new(&server.url("t.tif"))).expect("open");
    server
        .delay_ms
        .store(1500, std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let reader =
        std::thread::spawn(move || crate::support::render_image(&image, (0, 0, 1500, 1100), 1));
    std::thread::sleep(std::time::Duration::from_millis(400));
    let in_flight = server.requests();
    server.stop();
    let e = reader
        .join()
        .expect("no panic")
        .expect_err("the server is gone");
    assert!(in_flight > 0, "requests were on their way when it stopped");
    assert!(started.elapsed().as_secs() < 60, "it gave up in time");
    assert_eq!(e.to_string().lines().count(), 1, "{e}");
    // A host that does not resolve (or no network at all): one line, soon.
    let (code, _, err) = run_env(
        &["info", "https://tessera-no-such-host.invalid/a.tif"],
        &[("TESSERA_HTTP_RETRIES", "0")],
    );
    assert_ne!(code, 0);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Plain http:// to another machine is refused before any request.
    let (code, _, err) = run_env(&["info", "http://example.org/a.tif"], &env);
    assert_ne!(code, 0);
    assert!(err.contains("https://"), "{err}");
}

#[test]
fn a_server_that_answers_503_is_retried_with_backoff() {
    let dir = tempdir();
    let local = tiled(dir.path(), "t.tif");
    let server = Server::http(dir.path());
    private_range_cache();
    let image = tessera::OpenImage::open(Path::new(&server.url("t.tif"))).expect("open");
    // The next three answers are 503: retried (4 retries by default), the pixels arrive.
    server
        .fail_next
        .store(3, std::sync::atomic::Ordering::SeqCst);
    let before = server.requests();
    let got = crate::support::render_image(&image, (0, 0, 1500, 1100), 1).expect("retried");
    let want = render_region(&local, (0, 0, 1500, 1100), 1).expect("local");
    assert!(got.data == want.data, "pixels after retries");
    assert_eq!(
        server.fail_next.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the failures were met"
    );
    assert!(server.requests() - before >= 4, "retried");
}

#[test]
fn an_object_replaced_while_open_is_an_error_not_a_mix() {
    let dir = tempdir();
    let path = tiled(dir.path(), "t.tif");
    let server = Server::http(dir.path());
    private_range_cache();
    let image = tessera::OpenImage::open(Path::new(&server.url("t.tif"))).expect("open");
    // Another image under the same name, a minute newer.
    let bytes = std::fs::read(&path).expect("read");
    let mut other = bytes.clone();
    let n = other.len();
    for b in &mut other[n - 200_000..] {
        *b ^= 0x55;
    }
    std::fs::write(&path, &other).expect("write");
    let f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .expect("mtime");
    drop(f);
    let e = crate::support::render_image(&image, (0, 0, 1500, 1100), 1)
        .expect_err("the object changed");
    assert!(e.to_string().contains("changed since it was opened"), "{e}");
}

#[test]
fn s3_objects_open_with_keys_from_the_environment_and_never_show_them() {
    let dir = tempdir();
    let bucket = dir.path().join("s3").join("images");
    std::fs::create_dir_all(&bucket).expect("bucket");
    let local = tiled(&bucket, "t.tif");
    let (key, secret) = ("TESSERAKEY1", "tessera-secret-0123456789");
    let server = Server::s3(&dir.path().join("s3"), key, secret);
    let cache = dir.path().join("cache");
    let endpoint = format!("http://{}", server.addr);
    let env = |secret: &'static str| {
        vec![
            (
                "TESSERA_CACHE_DIR",
                cache.to_str().expect("utf-8").to_string(),
            ),
            ("AWS_ACCESS_KEY_ID", key.to_string()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
            ("AWS_SESSION_TOKEN", String::new()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ENDPOINT_URL", endpoint.clone()),
            ("TESSERA_HTTP_RETRIES", "1".to_string()),
        ]
    };
    let pairs = |v: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> {
        v.iter()
            .filter(|(_, val)| !val.is_empty())
            .cloned()
            .collect()
    };
    let good = pairs(&env(secret));
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = dir.path().join("s3.png");
    let (code, text, err) = run_env(
        &[
            "render",
            "s3://images/t.tif",
            "--region",
            "100,100,600,400",
            "-o",
            out.to_str().expect("utf-8"),
        ],
        &good,
    );
    assert_eq!(code, 0, "{err}");
    let want = render_region(&local, (100, 100, 600, 400), 1).expect("local");
    assert!(png_pixels(&out) == want.data, "S3 pixels differ");
    for t in [&text, &err] {
        assert!(!t.contains(secret), "the secret shows: {t}");
    }
    // A wrong secret: the server refuses the signature.
    let bad = pairs(&env("not-the-secret-key-000"));
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, text, err) = run_env(&["info", "s3://images/t.tif"], &bad);
    assert_ne!(code, 0);
    assert!(err.contains("access denied (HTTP 403)"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    for t in [&text, &err] {
        assert!(
            !t.contains("not-the-secret-key-000") && !t.contains(secret),
            "{t}"
        );
    }
    // A public bucket (a server without authentication): no key, unsigned requests.
    let public = Server::s3_public(&dir.path().join("s3"));
    let anon_endpoint = format!("http://{}", public.addr);
    let (code, _, err) = run_env(
        &["info", "s3://images/t.tif"],
        &[
            ("TESSERA_CACHE_DIR", cache.to_str().expect("utf-8")),
            ("AWS_ENDPOINT_URL", anon_endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert_eq!(code, 0, "anonymous: {err}");
    // A missing key in the bucket.
    let (code, _, err) = run_env(&["info", "s3://images/none.tif"], &good);
    assert_ne!(code, 0);
    assert!(err.contains("not found (HTTP 404)"), "{err}");
}

#[test]
fn jpeg_2000_raw_png_jpeg_and_fits_files_read_by_range_equal_the_local_file() {
    let dir = tempdir();
    // A JPEG 2000 fixture (tiles by their SOT markers), a raw PPM (rows by ranges) and a PNG
    // (streamed once).
    let jp2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/j2k_tiled_lossless.jp2");
    std::fs::copy(&jp2, dir.path().join("a.jp2")).expect("copy");
    let (w, h) = (900u32, 700u32);
    let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                ppm.push(pattern(x, y, c));
            }
        }
    }
    crate::support::write(dir.path(), "b.ppm", &ppm);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([pattern(x, y, 0), pattern(x, y, 1), pattern(x, y, 2)])
    });
    img.save(dir.path().join("c.png")).expect("png");
    // A baseline JPEG (streamed once, with its checkpoint index) and a 16-bit FITS image (a
    // data page, shown with auto contrast).
    crate::support::write(
        dir.path(),
        "d.jpg",
        &crate::support::encode::jpeg_bytes(3, false, true, 640, 480),
    );
    let (fw, fh) = (300u32, 200u32);
    let mut data = Vec::new();
    for y in 0..fh {
        for x in 0..fw {
            data.extend_from_slice(&(((x * 37 + y * 91) % 30000) as i16).to_be_bytes());
        }
    }
    let cards = [
        ("SIMPLE", "T".to_string()),
        ("BITPIX", "16".to_string()),
        ("NAXIS", "2".to_string()),
        ("NAXIS1", fw.to_string()),
        ("NAXIS2", fh.to_string()),
    ];
    crate::support::write(
        dir.path(),
        "e.fits",
        &crate::scientific::fits(&cards, &data, &[]),
    );
    let server = Server::http(dir.path());
    let cache = dir.path().join("cache");
    let env = [("TESSERA_CACHE_DIR", cache.to_str().expect("utf-8"))];
    for name in ["a.jp2", "b.ppm", "c.png", "d.jpg", "e.fits"] {
        let local = dir.path().join(name);
        let image = tessera::OpenImage::open(&local).expect("open");
        let p = image.page(0).expect("page");
        let (rw, rh) = (p.width.min(400), p.height.min(300));
        let region = format!("{},{},{},{}", p.width - rw, p.height - rh, rw, rh);
        // The same command on the local file and on its URL.
        let render = |source: &str, out: &Path| {
            let (code, _, err) = run_env(
                &[
                    "render",
                    source,
                    "--region",
                    &region,
                    "-o",
                    out.to_str().expect("utf-8"),
                ],
                &env,
            );
            assert_eq!(code, 0, "{name}: {err}");
            png_pixels(out)
        };
        let remote = render(
            &server.url(name),
            &dir.path().join(format!("{name}.remote.png")),
        );
        let here = render(
            local.to_str().expect("utf-8"),
            &dir.path().join(format!("{name}.local.png")),
        );
        assert!(remote == here, "{name}: remote pixels differ");
    }
}
