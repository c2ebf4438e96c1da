//! Region export: the PNG a streamed export writes equals `render` of the same region, read
//! back by the `image` crate; a cancelled export leaves no file.

use std::sync::Arc;

use tessera::OpenImage;
use tessera::export::{ExportRequest, export_png, part_path};
use tessera::format::Extent;
use tessera::progress::Progress;

use crate::support::synth::{TiffSpec, pattern, write_tiff};
use crate::support::{render_region, tempdir};

fn tiled(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("big.tif");
    let spec = TiffSpec::new(3000, 2200, 3, 8, 2).tiles(256, 256);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).expect("create"));
    write_tiff(&mut f, &spec, &|x, y, c| u16::from(pattern(x, y, c)), None).expect("tiff");
    p
}

#[test]
fn exported_regions_equal_render_and_cancel_leaves_nothing() {
    let dir = tempdir();
    let path = tiled(dir.path());
    let image = OpenImage::open(&path).expect("open");
    for (region, scale) in [
        ((0u32, 0u32, 3000u32, 2200u32), 1u32),
        ((333, 101, 2001, 1500), 3),
    ] {
        let out = dir.path().join(format!("out-{scale}.png"));
        let (x, y, w, h) = region;
        let req = ExportRequest {
            page: 0,
            region: Extent::new(x, y, x + w, y + h),
            scale,
            out: out.clone(),
            // Far less than the 26 MB of the whole image as RGBA: the export streams.
            cache_bytes: 16 << 20,
        };
        export_png(image.clone(), &req, None, &Progress::new()).expect("export");
        let got = image::open(&out).expect("read back").to_rgba8();
        let want = render_region(&path, region, scale).expect("render");
        assert_eq!((got.width(), got.height()), (want.width, want.height));
        assert!(
            got.as_raw() == &want.data,
            "export differs from render at scale {scale}"
        );
        assert!(!part_path(&out).exists());
    }
    let out = dir.path().join("cancelled.png");
    let progress = Progress::new();
    progress.cancel();
    let req = ExportRequest {
        page: 0,
        region: Extent::new(0, 0, 3000, 2200),
        scale: 1,
        out: out.clone(),
        cache_bytes: 16 << 20,
    };
    let err = export_png(Arc::clone(&image), &req, None, &progress).expect_err("cancelled");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(
        !out.exists() && !part_path(&out).exists(),
        "no file, partial or final"
    );
}
