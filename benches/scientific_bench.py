#!/usr/bin/env python3
"""Scientific-sample render benchmark: tessera vs gdal_translate and vips (issue #11).

A 1920x1080 viewport at the centre of generated 24000x24000 images, rendered to an 8-bit PNG
through an explicit window (black and white points), cold (file evicted from the page cache)
and warm, median of --runs:

  * dem-tiff: float32, 256x256 tiles, deflate + floating-point predictor (3), NaN holes
  * tiff12:   12-bit values (80..4000) in uint16 samples, 256x256 tiles, deflate + predictor 2
  * dem-fits: float32 FITS (raw big-endian rows, bottom-up)

Commands compared (same window, same output):
  tessera render F --region X,Y,W,H --window LO,HI -o out.png
  gdal_translate -q -srcwin X Y W H -scale LO HI 0 255 -ot Byte -of PNG F out.png
  vips crop F t.v X Y W H && vips linear t.v u.v A B && vips cast u.v out.png uchar
(vips reads FITS rows top-down; its crop is taken at the same file rows.)

Targets: tessera <= 0.5x the faster peer, peak RSS < 100 MB.

    python3 benches/scientific_bench.py [--size 24000] [--dir bench-data] [--runs 3]
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
# Window per kind: (black, white) in the file's values.
WINDOWS = {"dem-tiff": (-200.0, 4400.0), "tiff12": (80.0, 4000.0), "dem-fits": (-200.0, 4400.0)}
FILES = {"dem-tiff": "dem.tif", "tiff12": "t12.tif", "dem-fits": "dem.fits"}


def generate(kind, size, path):
    if os.path.exists(path):
        return
    t0 = time.perf_counter()
    subprocess.run([synth_bin(), kind, str(size), str(size), path + ".tmp"], check=True)
    os.rename(path + ".tmp", path)
    print(f"  wrote {path} ({os.path.getsize(path) / 1e9:.2f} GB) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)


def commands(kind, path, size, out, tmp):
    x, y = (size - VIEW_W) // 2, (size - VIEW_H) // 2
    lo, hi = WINDOWS[kind]
    a = 255.0 / (hi - lo)
    b = -lo * a
    tess = [[tessera_bin(), "render", path, "--region", f"{x},{y},{VIEW_W},{VIEW_H}",
             "--window", f"{lo},{hi}", "-o", out]]
    gdal = [["gdal_translate", "-q", "-srcwin", str(x), str(y), str(VIEW_W), str(VIEW_H),
             "-scale", str(lo), str(hi), "0", "255", "-ot", "Byte", "-of", "PNG", path, out]]
    # FITS: tessera and GDAL show row 1 at the bottom; vips keeps file order, so its crop of
    # the same pixels starts at the mirrored row.
    vy = size - y - VIEW_H if kind == "dem-fits" else y
    tv, uv = os.path.join(tmp, "t.v"), os.path.join(tmp, "u.v")
    vips = [["vips", "crop", path, tv, str(x), str(vy), str(VIEW_W), str(VIEW_H)],
            ["vips", "linear", "--", tv, uv, str(a), str(b)],
            ["vips", "cast", uv, out + "[compression=1]", "uchar"]]
    return {"tessera": tess, "gdal": gdal, "vips": vips}


def run_chain(chain):
    total, peak, ok = 0.0, 0, True
    for cmd in chain:
        t, rss, _, good = measure(cmd)[:4]
        total += t
        peak = max(peak, rss)
        ok = ok and good
    return total, peak, ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=24000)
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "bench-data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", nargs="*", default=list(FILES))
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    tmp = tempfile.mkdtemp()
    print(f"{'file':<10} {'tool':<8} {'cold s':>8} {'warm s':>8} {'peak MB':>8}  ratio cold/warm")
    for kind in args.only:
        path = os.path.join(args.dir, f"{args.size}-{FILES[kind]}")
        generate(kind, args.size, path)
        results = {}
        for tool, chain in commands(kind, path, args.size, os.path.join(tmp, "out.png"),
                                    tmp).items():
            cold, warm, peaks = [], [], []
            for _ in range(args.runs):
                evict(path)
                t, rss, ok = run_chain(chain)
                cold.append(t)
                peaks.append(rss)
                t, rss, ok2 = run_chain(chain)
                warm.append(t)
                peaks.append(rss)
                if not (ok and ok2):
                    print(f"  {tool} failed on {kind}", file=sys.stderr)
            results[tool] = (statistics.median(cold), statistics.median(warm), max(peaks))
        for tool, (c, w, p) in results.items():
            ratio = ""
            if tool == "tessera":
                peer_c = min(results["gdal"][0], results["vips"][0])
                peer_w = min(results["gdal"][1], results["vips"][1])
                ratio = f"  {c / peer_c:.2f}x / {w / peer_w:.2f}x"
            print(f"{kind:<10} {tool:<8} {c:>8.3f} {w:>8.3f} {p / 1e6:>8.1f}{ratio}", flush=True)


if __name__ == "__main__":
    main()
