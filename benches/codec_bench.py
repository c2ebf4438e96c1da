#!/usr/bin/env python3
"""Codec benchmark: tessera vs libvips and GDAL on 24000x24000 RGB files (issue #12).

Files, written by libvips from one synthetic RGB image (benches/synth.rs `ppm`):
  * tiff-zstd:  tiled TIFF, 256x256 tiles, ZSTD, with a pyramid (vips tiffsave --pyramid)
  * tiff-webp:  tiled TIFF, 256x256 tiles, WebP Q90, with a pyramid
  * tiff-jp2k:  tiled TIFF, 256x256 tiles, JPEG 2000 Q60 (compression 33004), with a pyramid
  * jp2:        standalone JP2, 512x512 codestream tiles, Q60 (vips jp2ksave; its codestream
                has 2 decomposition levels, the file's own pyramid)

Two tasks, each cold (file evicted from the page cache) and warm, median of --runs:
  viewport: the 1920x1080 region at the centre, to PNG
      tessera render F --region X,Y,1920,1080 -o out.png
      vips crop F out.png X Y 1920 1080
      gdal_translate -q -srcwin X Y 1920 1080 -of PNG F out.png
  overview: the whole image fitted into 1920x1080 (1044x1044), to PNG
      tessera render F --region 0,0,24000,24000 --scale 23 -o out.png
      vipsthumbnail F --size 1920x1080 -o out.png
      gdal_translate -q -outsize 1044 1044 -of PNG F out.png

Targets: viewport <= 0.5x the faster peer; JP2 overview <= 1.0x; peak RSS < 150 MB.

    python3 benches/codec_bench.py [--size 24000] [--dir bench-data] [--runs 3] [--only jp2 ...]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from render_bench import evict, measure, synth_bin, tessera_bin  # noqa: E402

VIEW_W, VIEW_H = 1920, 1080
KINDS = {
    "tiff-zstd": ("zstd.tif", ["tiffsave", "--tile", "--tile-width", "256", "--tile-height",
                               "256", "--pyramid", "--compression", "zstd"]),
    "tiff-webp": ("webp.tif", ["tiffsave", "--tile", "--tile-width", "256", "--tile-height",
                               "256", "--pyramid", "--compression", "webp", "--Q", "90"]),
    "tiff-jp2k": ("jp2k.tif", ["tiffsave", "--tile", "--tile-width", "256", "--tile-height",
                               "256", "--pyramid", "--compression", "jp2k", "--Q", "60"]),
    "jp2": ("tiled.jp2", ["jp2ksave", "--tile-width", "512", "--tile-height", "512",
                          "--Q", "60"]),
}


def generate(kind, size, path):
    if os.path.exists(path):
        return
    src = os.path.join(os.path.dirname(path), f"{size}-rgb.ppm")
    if not os.path.exists(src):
        subprocess.run([synth_bin(), "ppm", str(size), str(size), src + ".tmp"], check=True)
        os.rename(src + ".tmp", src)
    op, *args = KINDS[kind][1]
    t0 = time.perf_counter()
    tmp = path + ".tmp" + os.path.splitext(path)[1]
    subprocess.run(["vips", op, src, tmp, *args], check=True)
    os.rename(tmp, path)
    print(f"  wrote {path} ({os.path.getsize(path) / 1e9:.2f} GB) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)


def commands(task, path, size, out):
    if task == "viewport":
        x, y = (size - VIEW_W) // 2, (size - VIEW_H) // 2
        return {
            "tessera": [tessera_bin(), "render", path, "--region",
                        f"{x},{y},{VIEW_W},{VIEW_H}", "-o", out],
            "vips": ["vips", "crop", path, out, str(x), str(y), str(VIEW_W), str(VIEW_H)],
            "gdal": ["gdal_translate", "-q", "-srcwin", str(x), str(y), str(VIEW_W),
                     str(VIEW_H), "-of", "PNG", path, out],
        }
    scale = -(-size // VIEW_H)
    side = -(-size // scale)
    return {
        "tessera": [tessera_bin(), "render", path, "--region", f"0,0,{size},{size}",
                    "--scale", str(scale), "-o", out],
        "vips": ["vipsthumbnail", path, "--size", f"{VIEW_W}x{VIEW_H}", "-o", out],
        "gdal": ["gdal_translate", "-q", "-outsize", str(side), str(side), "-of", "PNG",
                 path, out],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=24000)
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "bench-data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=list(KINDS))
    ap.add_argument("--tasks", nargs="*", default=["viewport", "overview"])
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "out.png")
    print(f"{'file':<10} {'task':<9} {'tool':<8} {'cold s':>8} {'warm s':>8} {'peak MB':>8}"
          "  ratio cold/warm")
    for kind in args.only:
        path = os.path.join(args.dir, f"{args.size}-{KINDS[kind][0]}")
        generate(kind, args.size, path)
        for task in args.tasks:
            results = {}
            for tool, cmd in commands(task, path, args.size, out).items():
                cold, warm, peaks, failed = [], [], [], False
                for _ in range(args.runs):
                    evict(path)
                    t, rss, _, ok = measure(cmd)[:4]
                    cold.append(t)
                    peaks.append(rss)
                    t, rss, _, ok2 = measure(cmd)[:4]
                    warm.append(t)
                    peaks.append(rss)
                    failed = failed or not (ok and ok2)
                    if failed:
                        break
                results[tool] = (statistics.median(cold), statistics.median(warm), max(peaks),
                                 failed)
            # A peer that cannot read the file (GDAL has no JPEG 2000 codec for TIFF) does not
            # count as the faster peer.
            peers = [r for t, r in results.items() if t != "tessera" and not r[3]]
            peer_c = min(r[0] for r in peers) if peers else float("nan")
            peer_w = min(r[1] for r in peers) if peers else float("nan")
            for tool, (c, w, p, bad) in results.items():
                if bad:
                    print(f"{kind:<10} {task:<9} {tool:<8}   failed (cannot read the file)")
                    continue
                ratio = f"  {c / peer_c:.2f}x / {w / peer_w:.2f}x" if tool == "tessera" else ""
                print(f"{kind:<10} {task:<9} {tool:<8} {c:>8.3f} {w:>8.3f} {p / 1e6:>8.1f}"
                      f"{ratio}", flush=True)


if __name__ == "__main__":
    main()
