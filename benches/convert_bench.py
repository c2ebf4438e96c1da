#!/usr/bin/env python3
"""Convert benchmark (issue #13): a tiled pyramid TIFF with deflate tiles from a 24000x24000
PPM and from a 24000x24000 deflate-tiled TIFF, cold (input evicted from the page cache),
median of --runs:

  tessera convert IN out.tif --pyramid --compression deflate
  vips tiffsave IN out.tif --tile --pyramid --compression deflate
  gdal_translate -q -of COG -co COMPRESS=DEFLATE IN out.tif

Target: at most 1.0x the faster peer; peak RSS under 300 MB.

    python3 benches/convert_bench.py [--dir bench-data] [--runs 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from render_bench import evict, measure, synth_bin, tessera_bin  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "bench-data"))
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    ppm = os.path.join(args.dir, "24000-rgb.ppm")
    if not os.path.exists(ppm):
        subprocess.run([synth_bin(), "ppm", "24000", "24000", ppm], check=True)
    tif = os.path.join(args.dir, "24000-deflate.tif")
    if not os.path.exists(tif):
        subprocess.run(["vips", "tiffsave", ppm, tif, "--tile", "--tile-width", "256",
                        "--tile-height", "256", "--compression", "deflate"], check=True)
    out = os.path.join(tempfile.mkdtemp(dir=args.dir), "out.tif")
    print(f"{'input':<12} {'tool':<8} {'cold s':>8} {'peak MB':>8} {'out MB':>8}  ratio")
    for name, path in (("ppm", ppm), ("deflate-tif", tif)):
        tools = {
            "tessera": [tessera_bin(), "convert", path, out, "--pyramid", "--compression",
                        "deflate"],
            "vips": ["vips", "tiffsave", path, out, "--tile", "--pyramid", "--compression",
                     "deflate"],
            "gdal": ["gdal_translate", "-q", "-of", "COG", "-co", "COMPRESS=DEFLATE", path, out],
        }
        results = {}
        for tool, cmd in tools.items():
            times, peaks, size = [], [], 0
            for _ in range(args.runs):
                if os.path.exists(out):
                    os.remove(out)
                evict(path)
                t, rss, _, ok = measure(cmd)[:4]
                times.append(t)
                peaks.append(rss)
                size = os.path.getsize(out) if os.path.exists(out) else 0
                if not ok:
                    print(f"  {tool} failed on {name}", file=sys.stderr)
            results[tool] = (statistics.median(times), max(peaks), size)
        peer = min(results["vips"][0], results["gdal"][0])
        for tool, (t, p, size) in results.items():
            ratio = f"  {t / peer:.2f}x" if tool == "tessera" else ""
            print(f"{name:<12} {tool:<8} {t:>8.2f} {p / 1e6:>8.1f} {size / 1e6:>8.1f}{ratio}",
                  flush=True)
        if os.path.exists(out):
            os.remove(out)


if __name__ == "__main__":
    main()
