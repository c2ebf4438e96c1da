#!/usr/bin/env python3
"""Render benchmark: tessera vs `vips crop` and `gdal_translate -srcwin`.

Renders a 1920x1080 viewport at the centre and at the bottom-right of generated 24000x24000
images (PPM, PGM, BMP, strip TIFF, 256x256-tiled RGBA TIFF, deflate-tiled TIFF), with a cold
page cache (file evicted with posix_fadvise(DONTNEED), checked with fincore) and warm. Every
tool writes a PNG at its fastest deflate setting. Per process we take wall time, peak RSS and
bytes read from storage from wait4's rusage.

    python3 benches/render_bench.py [--size 24000] [--dir bench-data] [--runs 3]

Targets (issue #2): tessera <= 0.5x the faster peer on raw layouts (cold and warm), <= 1.0x on
compressed TIFF, peak RSS < 64 MB, bytes read <= 2x the bytes the region needs.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIEW_W, VIEW_H = 1920, 1080


def tessera_bin():
    path = os.path.join(ROOT, "target", "release", "tessera")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    return path


def synth_bin():
    """The benchmark image writer (the tests' fixture writers, as an example binary)."""
    path = os.path.join(ROOT, "target", "release", "examples", "synth")
    if not os.path.exists(path):
        subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "synth"],
                       cwd=ROOT, check=True)
    return path


def evict(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages (a freshly written file) cannot be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                         capture_output=True, text=True)
    resident = int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.split() else -1
    return resident


def measure(cmd):
    """Run cmd; return (seconds, peak RSS bytes, storage bytes read, ok)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
    ok = os.waitstatus_to_exitcode(status) == 0
    if not ok:
        print(f"    ! {' '.join(cmd[:2])} failed: {err[:200]}", file=sys.stderr)
    return elapsed, usage.ru_maxrss * 1024, usage.ru_inblock * 512, ok


def generate(kind, size, path, tessera):
    if os.path.exists(path):
        return
    tmp = path + ".tmp"
    t0 = time.perf_counter()
    if kind == "tiff-deflate":
        src = os.path.join(os.path.dirname(path), "rgb.ppm")
        generate("ppm", size, src, tessera)
        subprocess.run(["vips", "tiffsave", src, tmp + ".tif", "--tile", "--tile-width", "256",
                        "--tile-height", "256", "--compression", "deflate"], check=True)
        os.rename(tmp + ".tif", path)
    else:
        subprocess.run([synth_bin(), kind, str(size), str(size), tmp], check=True)
        os.rename(tmp, path)
    print(f"  generated {os.path.basename(path)} ({os.path.getsize(path) / 1e9:.2f} GB) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=24000)
    ap.add_argument("--dir", default=os.path.join(ROOT, "bench-data"))
    ap.add_argument("--runs", type=int, default=3, help="runs per cell; the median is shown")
    ap.add_argument("--prepare-only", action="store_true", help="only generate the images")
    ap.add_argument("--only", help="run only the image whose label contains this text")
    ap.add_argument("--tessera", help="the tessera binary to time (default: this checkout's)")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    tessera = args.tessera or tessera_bin()
    have_vips = shutil.which("vips") is not None
    have_gdal = shutil.which("gdal_translate") is not None
    size = args.size
    # (label, file, bytes per pixel in the region, raw layout?)
    images = [
        ("PPM", "rgb.ppm", "ppm", 3, True),
        ("PGM", "gray.pgm", "pgm", 1, True),
        ("BMP", "rgb.bmp", "bmp", 3, True),
        ("TIFF strip", "strip.tif", "tiff-strip", 3, True),
        ("TIFF tiled RGBA", "tiled-rgba.tif", "tiff-tiled-rgba", 4, True),
        ("TIFF deflate tiles", "deflate.tif", "tiff-deflate", 3, False),
    ]
    for label, name, kind, _, _ in images:
        if args.only and args.only not in label:
            continue
        generate(kind, size, os.path.join(args.dir, name), tessera)
    if args.prepare_only:
        return 0
    views = {
        "centre": ((size - VIEW_W) // 2, (size - VIEW_H) // 2),
        "bottom-right": (size - VIEW_W, size - VIEW_H),
    }
    out_png = os.path.join(args.dir, "out.png")
    rows = []
    failures = []
    print(f"\n{'image':<20} {'view':<13} {'cache':<5} {'tessera s':>9} {'vips s':>8} {'gdal s':>8} "
          f"{'ratio':>6} {'target':>6} {'RSS MB':>7} {'read/need':>9}")
    for label, name, kind, bpp, raw in images:
        if args.only and args.only not in label:
            continue
        path = os.path.join(args.dir, name)
        need = VIEW_W * VIEW_H * bpp
        for view, (x, y) in views.items():
            for cache in ("cold", "warm"):
                def run(cmd):
                    results = []
                    for _ in range(args.runs):
                        if cache == "cold":
                            resident = evict(path)
                            if resident not in (0, -1):
                                print(f"    ! {name} still has {resident} bytes cached", file=sys.stderr)
                        else:
                            measure(cmd)  # warm it
                        results.append(measure(cmd))
                    results.sort(key=lambda r: r[0])
                    return results[len(results) // 2]
                t = run([tessera, "render", path, "--region", f"{x},{y},{VIEW_W},{VIEW_H}",
                         "-o", out_png])
                v = run(["vips", "crop", path, out_png + "[compression=1]", str(x), str(y),
                         str(VIEW_W), str(VIEW_H)]) if have_vips else None
                g = run(["gdal_translate", "-q", "-of", "PNG", "-co", "ZLEVEL=1", "-srcwin",
                         str(x), str(y), str(VIEW_W), str(VIEW_H), path, out_png]) if have_gdal else None
                peers = [p[0] for p in (v, g) if p and p[3]]
                best = min(peers) if peers else float("nan")
                ratio = t[0] / best if peers else float("nan")
                target = 0.5 if raw else 1.0
                read_ratio = t[2] / need
                ok = t[3] and ratio <= target and t[1] < 64e6 and (cache == "warm" or read_ratio <= 2.0)
                if not ok:
                    failures.append(f"{label} {view} {cache}")
                fmt = lambda r: f"{r[0]:8.3f}" if r and r[3] else "     n/a"
                print(f"{label:<20} {view:<13} {cache:<5} {t[0]:9.3f} {fmt(v)} {fmt(g)} "
                      f"{ratio:6.2f} {target:6.1f} {t[1] / 1e6:7.1f} {read_ratio:9.2f}"
                      f"{'' if ok else '  MISSED'}", flush=True)
                rows.append((label, view, cache, t, v, g, ratio))
    print()
    if failures:
        print(f"missed targets: {len(failures)}: " + "; ".join(failures))
    else:
        print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
