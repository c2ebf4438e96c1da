#!/usr/bin/env python3
"""PNG/JPEG random access benchmark (issue #5): tessera vs `vips crop` and `gdal_translate -srcwin`.

On generated 24000x24000 files (PNG from vips at its default compression; baseline JPEG Q90 from
vips, without and with restart markers), all with a cold page cache (the file evicted):

  first open   the 1920x1080 view at the bottom-right with no index kept yet (tessera records
               the checkpoints on the way and keeps them);
  later views  bottom-right, centre and top-left again, the index kept (the file still cold);
  peers        the same bottom-right crop by vips and gdal (they have no index: every crop
               decodes from the start of the stream).

Per process: wall time, peak RSS (wait4) and, for tessera, the scratch disk it leaves (the index).

    python3 benches/stream_bench.py [--size 24000] [--dir bench-data] [--runs 3] [--only PNG]

Targets: first open <= 0.5x the faster peer, every later view < 0.3 s, peak RSS within the
render cache budget (128 MB) + 100 MB, scratch disk < 1% of the decoded image.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from render_bench import ROOT, VIEW_W, VIEW_H, evict, measure, synth_bin, tessera_bin  # noqa: E402

CACHE_MB = 128


def generate(kind, size, path, tessera):
    if os.path.exists(path):
        return
    src = os.path.join(os.path.dirname(path), "rgb.ppm")
    if not os.path.exists(src):
        subprocess.run([synth_bin(), "ppm", str(size), str(size), src + ".tmp"], check=True)
        os.rename(src + ".tmp", src)
    tmp = path + ".tmp" + os.path.splitext(path)[1]
    t0 = time.perf_counter()
    if kind == "png":
        subprocess.run(["vips", "copy", src, tmp], check=True)
    elif kind == "jpeg":
        subprocess.run(["vips", "jpegsave", src, tmp, "--Q", "90"], check=True)
    else:  # restart markers every MCU row (8x8 MCUs at Q90: vips does not subsample)
        subprocess.run(["vips", "jpegsave", src, tmp, "--Q", "90",
                        "--restart-interval", str(size // 8)], check=True)
    os.rename(tmp, path)
    print(f"  generated {os.path.basename(path)} ({os.path.getsize(path) / 1e9:.2f} GB) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)


def median(results):
    results = sorted(results, key=lambda r: r[0])
    return results[len(results) // 2]


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=24000)
    ap.add_argument("--dir", default=os.path.join(ROOT, "bench-data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", help="run only the image whose label contains this text")
    ap.add_argument("--tessera", help="the tessera binary to time (default: this checkout's)")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    tessera = args.tessera or tessera_bin()
    size = args.size
    images = [
        ("PNG", "rgb.png", "png"),
        ("JPEG baseline", "rgb.jpg", "jpeg"),
        ("JPEG restart", "rgb-rst.jpg", "jpeg-rst"),
    ]
    decoded = size * size * 3
    views = {
        "bottom-right": (size - VIEW_W, size - VIEW_H),
        "centre": ((size - VIEW_W) // 2, (size - VIEW_H) // 2),
        "top-left": (0, 0),
    }
    out_png = os.path.join(tempfile.gettempdir(), "tessera-stream-bench.png")
    failures = []
    print(f"\n{'image':<15} {'what':<24} {'tessera s':>9} {'vips s':>8} {'gdal s':>8} {'ratio':>6} "
          f"{'RSS MB':>7} {'scratch MB':>10}")
    for label, name, kind in images:
        if args.only and args.only not in label:
            continue
        path = os.path.join(args.dir, name)
        generate(kind, size, path, tessera)

        def render(levels, xy):
            x, y = xy
            return [tessera, "render", path, "--region", f"{x},{y},{VIEW_W},{VIEW_H}",
                    "--cache-mb", str(CACHE_MB), "--levels-dir", levels, "-o", out_png]

        # First open: a fresh index folder per run.
        firsts, scratch = [], 0
        for _ in range(args.runs):
            levels = tempfile.mkdtemp(prefix="tessera-idx-")
            evict(path)
            firsts.append(measure(render(levels, views["bottom-right"])))
            scratch = dir_bytes(levels)
            shutil.rmtree(levels)
        first = median(firsts)
        x, y = views["bottom-right"]
        peers = {}
        for peer, cmd in (
            ("vips", ["vips", "crop", path, out_png + "[compression=1]", str(x), str(y),
                      str(VIEW_W), str(VIEW_H)]),
            ("gdal", ["gdal_translate", "-q", "-of", "PNG", "-co", "ZLEVEL=1", "-srcwin",
                      str(x), str(y), str(VIEW_W), str(VIEW_H), path, out_png]),
        ):
            if shutil.which(cmd[0]) is None:
                continue
            runs = []
            for _ in range(args.runs):
                evict(path)
                runs.append(measure(cmd))
            peers[peer] = median(runs)
        ok_peers = [r[0] for r in peers.values() if r[3]]
        best = min(ok_peers) if ok_peers else float("nan")
        ratio = first[0] / best
        rss_limit = (CACHE_MB + 100) * 1e6
        ok = first[3] and ratio <= 0.5 and first[1] <= rss_limit and scratch < decoded / 100
        if not ok:
            failures.append(f"{label} first open")
        fmt = lambda p: f"{peers[p][0]:8.3f}" if p in peers and peers[p][3] else "     n/a"
        print(f"{label:<15} {'first open, bottom-right':<24} {first[0]:9.3f} {fmt('vips')} "
              f"{fmt('gdal')} {ratio:6.2f} {first[1] / 1e6:7.1f} {scratch / 1e6:10.2f}"
              f"{'' if ok else '  MISSED'}", flush=True)

        # Later views: the index kept from one first open.
        levels = tempfile.mkdtemp(prefix="tessera-idx-")
        evict(path)
        measure(render(levels, views["bottom-right"]))
        for view, xy in views.items():
            runs = []
            for _ in range(args.runs):
                evict(path)
                runs.append(measure(render(levels, xy)))
            r = median(runs)
            ok = r[3] and r[0] < 0.3 and r[1] <= rss_limit
            if not ok:
                failures.append(f"{label} later {view}")
            print(f"{label:<15} {'later, ' + view:<24} {r[0]:9.3f} {'':>8} {'':>8} {'':>6} "
                  f"{r[1] / 1e6:7.1f} {dir_bytes(levels) / 1e6:10.2f}"
                  f"{'' if ok else '  MISSED'}", flush=True)
        shutil.rmtree(levels)
    print()
    if failures:
        print(f"missed targets: {len(failures)}: " + "; ".join(failures))
    else:
        print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
