#!/usr/bin/env python3
"""Resolution-level benchmark (issue #4): tessera vs `vipsthumbnail --size 1920x1080` and
`gdal_translate -outsize` on generated 24000x24000 images, cold page cache.

For each image (files evicted with posix_fadvise(DONTNEED) before every run):
  dd        `dd bs=4M` reading the whole file: the disk-speed yardstick
  vips      `vipsthumbnail FILE --size 1920x1080` (wall, peak RSS)
  gdal      `gdal_translate -outsize` to the same fit (nearest neighbour, its default)
  preview   first open in the real window (`tessera bench-view --fit-only`, no levels kept):
            time from the process start (window creation included) to the first sharp
            fit-to-window picture (fit ms; "wall s" is the whole process, window closing too)
  levels    `tessera levels FILE` (all box-filtered levels written to the sidecar)
  2nd open  `bench-view --fit-only` again with the levels kept (sidecar evicted too): time
            from the open request (the window exists) to the fit-to-window picture, and in
            brackets from the process start

    python3 benches/levels_bench.py [--dir bench-data] [--runs 3] [--only PPM]
    python3 benches/levels_bench.py --big [--big-side 100000]   # the ~30 GB file

Targets: preview <= 0.25x the faster peer; levels <= 1.3x dd and <= 1.0x vipsthumbnail;
second open's fit-to-window picture < 100 ms. Big file: preview within 1 s of opening, peak RSS
within the cache budget + 200 MB, bench-view frame times as in issue #3.
Needs Xvfb for the window runs (started here on :95).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from render_bench import ROOT, evict, generate, measure, synth_bin, tessera_bin  # noqa: E402

FIT_W, FIT_H = 1920, 1080


def dd_seconds(path):
    evict(path)
    t0 = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=4M"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def evict_dir(d):
    for name in os.listdir(d):
        evict(os.path.join(d, name))


def bench_view(tessera, path, levels_dir, cache_mb, fit_only=True):
    """Run the real window; return (wall s, peak RSS bytes, parsed JSON line)."""
    cmd = [tessera, "bench-view", path, "--levels-dir", levels_dir, "--cache-mb", str(cache_mb)]
    if fit_only:
        cmd.append("--fit-only")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("{")), None)
    if proc.returncode != 0 or line is None:
        print(f"    ! bench-view failed: {proc.stderr.strip()[:300]}", file=sys.stderr)
        return wall, 0, {}
    return wall, 0, json.loads(line)


def fit_size(w, h):
    s = min(FIT_W / w, FIT_H / h)
    return max(1, round(w * s)), max(1, round(h * s))


def start_xvfb():
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp()
    os.chmod(os.environ["XDG_RUNTIME_DIR"], 0o700)
    # A display nobody holds (a server just killed may still hold its lock for a moment).
    n = next(n for n in range(95, 200) if not os.path.exists(f"/tmp/.X{n}-lock"))
    xvfb = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", "1600x1000x24"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["DISPLAY"] = f":{n}"
    time.sleep(1)
    return xvfb


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def one_image(tessera, label, path, side, runs, cache_mb, have_vips, have_gdal):
    out = os.path.join(os.path.dirname(path), "levels-out.png")
    fw, fh = fit_size(side, side)
    r = {k: [] for k in ("dd", "vips", "vips_rss", "gdal", "prev", "prev_fit", "lev",
                         "lev_rss", "second", "second_fit", "second_open", "second_read")}
    for _ in range(runs):
        r["dd"].append(dd_seconds(path))
        if have_vips:
            evict(path)
            s, rss, _, ok = measure(["vipsthumbnail", path, "--size", f"{FIT_W}x{FIT_H}",
                                     "-o", out])
            r["vips"].append(s if ok else None)
            r["vips_rss"].append(rss / 1e6 if ok else None)
        if have_gdal:
            evict(path)
            s, _, _, ok = measure(["gdal_translate", "-q", "-of", "PNG", "-co", "ZLEVEL=1",
                                   "-outsize", str(fw), str(fh), path, out])
            r["gdal"].append(s if ok else None)
        with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as d:
            evict(path)
            wall, _, js = bench_view(tessera, path, d, cache_mb)
            r["prev"].append(wall)
            r["prev_fit"].append(js.get("fit_sharp_ms"))
            evict(path)
            # --rebuild: the window may have finished a build of its own meanwhile.
            s, rss, _, ok = measure([tessera, "levels", path, "--levels-dir", d, "--rebuild"])
            r["lev"].append(s if ok else None)
            r["lev_rss"].append(rss / 1e6)
            evict(path)
            evict_dir(d)
            wall, _, js = bench_view(tessera, path, d, cache_mb)
            r["second"].append(wall)
            r["second_fit"].append(js.get("fit_sharp_ms"))
            r["second_open"].append(js.get("open_fit_ms"))
            r["second_read"].append(js.get("bytes_read"))
    m = {k: median(v) for k, v in r.items()}
    peers = [x for x in (m["vips"], m["gdal"]) if x]
    best = min(peers) if peers else None
    prev_ratio = m["prev_fit"] / 1000 / best if best and m["prev_fit"] else None
    lev_dd = m["lev"] / m["dd"] if m["lev"] and m["dd"] else None
    lev_vips = m["lev"] / m["vips"] if m["lev"] and m["vips"] else None
    print(f"{label:<19} {fmt(m['dd']):>6} {fmt(m['vips']):>6} {fmt(m['gdal']):>6} "
          f"{fmt(m['prev']):>7} {fmt(m['prev_fit'], 0):>6} {fmt(prev_ratio):>6} "
          f"{fmt(m['lev']):>6} {fmt(lev_dd):>5} {fmt(lev_vips):>6} {fmt(m['lev_rss'], 0):>6} "
          f"{fmt(m['second_open'], 0):>7} ({fmt(m['second_fit'], 0):>4}) "
          f"{fmt(m['vips_rss'], 0):>7}", flush=True)
    return {"preview_ratio": prev_ratio, "levels_vs_dd": lev_dd, "levels_vs_vips": lev_vips,
            "second_fit_ms": m["second_open"], "second_read": m["second_read"]}


def big_file(tessera, args):
    path = os.path.join(args.dir, "huge.ppm")
    side = args.big_side
    need = side * side * 3
    if not os.path.exists(path):
        free = shutil.disk_usage(args.dir).free
        if free < need + (8 << 30):
            print(f"not enough disk for a {need / 1e9:.0f} GB file ({free / 1e9:.0f} GB free)")
            return 1
        t0 = time.perf_counter()
        subprocess.run([synth_bin(), "ppm", str(side), str(side), path], check=True)
        print(f"generated {path} ({os.path.getsize(path) / 1e9:.1f} GB, not sparse: "
              f"{os.stat(path).st_blocks * 512 / 1e9:.1f} GB allocated) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    size = os.path.getsize(path)
    print(f"file {size / 1e9:.1f} GB, RAM {ram / 1e9:.1f} GB, cache budget {args.cache_mb} MB")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        evict(path)
        wall, _, js = bench_view(tessera, path, d, args.cache_mb, fit_only=True)
        print(f"first open, fit-to-window preview: {js.get('fit_sharp_ms')} ms in-app "
              f"(process {wall:.2f} s), peak RSS {js.get('peak_rss_mb')} MB")
        evict(path)
        wall, _, js = bench_view(tessera, path, d, args.cache_mb, fit_only=False)
        print(f"first open, full bench-view path (levels building meanwhile): {json.dumps(js)}")
        evict(path)
        t0 = time.perf_counter()
        s, rss, _, ok = measure([tessera, "levels", path, "--levels-dir", d])
        print(f"tessera levels: {s:.1f} s, peak RSS {rss / 1e6:.0f} MB, ok {ok}; "
              f"sidecar {sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)) / 1e9:.2f} GB")
        print(f"dd cold: {dd_seconds(path):.1f} s", flush=True)
        if not args.skip_big_vips and shutil.which("vipsthumbnail"):
            evict(path)
            s, rss, _, ok = measure(["vipsthumbnail", path, "--size", f"{FIT_W}x{FIT_H}",
                                     "-o", os.path.join(args.dir, "levels-out.png")])
            print(f"vipsthumbnail: {s:.1f} s, peak RSS {rss / 1e6:.0f} MB, ok {ok}")
        if shutil.which("gdal_translate"):
            evict(path)
            fw, fh = fit_size(side, side)
            s, rss, _, ok = measure(["gdal_translate", "-q", "-of", "PNG", "-co", "ZLEVEL=1",
                                     "-outsize", str(fw), str(fh), path,
                                     os.path.join(args.dir, "levels-out.png")])
            print(f"gdal_translate -outsize: {s:.1f} s, peak RSS {rss / 1e6:.0f} MB, ok {ok}")
        evict(path)
        evict_dir(d)
        wall, _, js = bench_view(tessera, path, d, args.cache_mb, fit_only=False)
        print(f"second open, full bench-view path: {json.dumps(js)}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "bench-data"))
    ap.add_argument("--size", type=int, default=24000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cache-mb", type=int, default=512)
    ap.add_argument("--only")
    ap.add_argument("--big", action="store_true", help="the ~30 GB file instead")
    ap.add_argument("--big-side", type=int, default=100000)
    ap.add_argument("--skip-big-vips", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    tessera = tessera_bin()
    xvfb = start_xvfb()
    try:
        if args.big:
            return big_file(tessera, args)
        images = [
            ("PPM", "rgb.ppm", "ppm"),
            ("PGM", "gray.pgm", "pgm"),
            ("BMP", "rgb.bmp", "bmp"),
            ("TIFF strip", "strip.tif", "tiff-strip"),
            ("TIFF tiled RGBA", "tiled-rgba.tif", "tiff-tiled-rgba"),
            ("TIFF deflate tiles", "deflate.tif", "tiff-deflate"),
        ]
        for _, name, kind in images:
            generate(kind, args.size, os.path.join(args.dir, name), tessera)
        have_vips = shutil.which("vipsthumbnail") is not None
        have_gdal = shutil.which("gdal_translate") is not None
        print(f"\n{'image':<19} {'dd s':>6} {'vips s':>6} {'gdal s':>6} {'wall s':>7} "
              f"{'fit ms':>6} {'ratio':>6} {'lev s':>6} {'/dd':>5} {'/vips':>6} {'RSS MB':>6} "
              f"{'2nd ms (start)':>14} {'vipsRSS':>7}")
        results = {}
        for label, name, _ in images:
            if args.only and args.only not in label:
                continue
            results[label] = one_image(tessera, label, os.path.join(args.dir, name),
                                       args.size, args.runs, args.cache_mb, have_vips,
                                       have_gdal)
        print("\ntargets: preview ratio <= 0.25, levels /dd <= 1.3 and /vips <= 1.0, "
              "2nd open < 100 ms")
        for label, r in results.items():
            misses = []
            if r["preview_ratio"] is None or r["preview_ratio"] > 0.25:
                misses.append(f"preview {fmt(r['preview_ratio'])}")
            if r["levels_vs_dd"] is None or r["levels_vs_dd"] > 1.3:
                misses.append(f"levels/dd {fmt(r['levels_vs_dd'])}")
            if r["levels_vs_vips"] is not None and r["levels_vs_vips"] > 1.0:
                misses.append(f"levels/vips {fmt(r['levels_vs_vips'])}")
            if r["second_fit_ms"] is None or r["second_fit_ms"] >= 100:
                misses.append(f"2nd open {fmt(r['second_fit_ms'], 0)} ms")
            print(f"  {label:<19} {'met' if not misses else 'MISSED: ' + ', '.join(misses)}"
                  f"  (2nd open read {r['second_read']} bytes of the file)")
    finally:
        xvfb.kill()
        xvfb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
