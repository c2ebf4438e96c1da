#!/usr/bin/env python3
"""Scaled-render benchmark: `tessera render --scale N` of whole images, beside the peers.

1. A 24000x24000 JPEG pyramid TIFF (`vips tiffsave --tile --pyramid --compression jpeg`, 256 px
   tiles, made from the render benchmark's PPM) at --scale 16, 23 and 40, beside
   `vipsthumbnail` on the same file; each output is compared with a box filter of the file's
   full-resolution page (`vips shrink`).
2. A 24000x24000 PPM (1.7 GB) and a 100000x80000 PPM (24 GB, sparse unless --real-big) at
   --scale 53, cold (page cache evicted), median of --runs: `dd`, tessera (a full-quality render
   builds and keeps the levels; a fresh levels folder each run), tessera again with the levels
   kept, `tessera --fast` (subsampled preview), and `gdal_translate -outsize`.

    python3 benches/scale_bench.py [--dir bench-data] [--runs 3] [--before OLD_TESSERA]

--before runs an older tessera binary on the same cases (it reads the levels it can and the
rest of the file), for before/after numbers.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from render_bench import ROOT, evict, measure, synth_bin, tessera_bin  # noqa: E402


def median_run(cmd, path, runs, cold=True, before_each=None):
    times = []
    for _ in range(runs):
        if before_each:
            before_each()
        if cold:
            evict(path)
        t, rss, _, ok = measure(cmd)
        if not ok:
            return None
        times.append((t, rss))
    times.sort()
    return times[len(times) // 2]


def vips_diff(a, b):
    """(mean, max) absolute difference of two images over their common area."""
    def size(p):
        w = int(subprocess.run(["vipsheader", "-f", "width", p], capture_output=True,
                               text=True).stdout)
        h = int(subprocess.run(["vipsheader", "-f", "height", p], capture_output=True,
                               text=True).stdout)
        return w, h
    (aw, ah), (bw, bh) = size(a), size(b)
    # The last row and column differ in how each tool clips the edge block: left out.
    w, h = min(aw, bw) - 1, min(ah, bh) - 1
    with tempfile.TemporaryDirectory() as d:
        ca, cb = os.path.join(d, "a.v"), os.path.join(d, "b.v")
        subprocess.run(["vips", "extract_area", a, ca, "0", "0", str(w), str(h)], check=True)
        subprocess.run(["vips", "extract_area", b, cb, "0", "0", str(w), str(h)], check=True)
        for p in (ca, cb):  # drop alpha, keep three bands
            subprocess.run(["vips", "extract_band", p, p + ".rgb.v", "0", "--n", "3"],
                           check=True)
        diff = os.path.join(d, "d.v")
        subprocess.run(["vips", "subtract", ca + ".rgb.v", cb + ".rgb.v", diff], check=True)
        absd = os.path.join(d, "abs.v")
        subprocess.run(["vips", "abs", diff, absd], check=True)
        mean = float(subprocess.run(["vips", "avg", absd], capture_output=True,
                                    text=True).stdout)
        mx = float(subprocess.run(["vips", "max", absd], capture_output=True, text=True).stdout)
    return mean, mx


def pyramid_case(args, tessera, out):
    src = os.path.join(args.dir, "rgb.ppm")
    pyr = os.path.join(args.dir, "pyr.tif")
    if not os.path.exists(src):
        subprocess.run([synth_bin(), "ppm", "24000", "24000", src], check=True)
    if not os.path.exists(pyr):
        subprocess.run(["vips", "tiffsave", src, pyr, "--tile", "--tile-width", "256",
                        "--tile-height", "256", "--pyramid", "--compression", "jpeg", "--Q",
                        "90"], check=True)
    print("\nJPEG pyramid TIFF 24000x24000, whole image, warm (median of runs)")
    print(f"{'scale':>5} {'tessera s':>9} {'before s':>9} {'vipsthumbnail s':>15} "
          f"{'ratio':>6} {'vs box filter mean/max':>23}")
    for n in (16, 23, 40):
        side = -(-24000 // n)
        t_out = os.path.join(out, f"t{n}.png")
        t = median_run([tessera, "render", pyr, "--region", "0,0,24000,24000", "--scale",
                        str(n), "--no-keep-levels", "-o", t_out], pyr, args.runs, cold=False)
        b = None
        if args.before:
            b = median_run([args.before, "render", pyr, "--region", "0,0,24000,24000",
                            "--scale", str(n), "--no-keep-levels", "-o",
                            os.path.join(out, "b.png")], pyr, 1, cold=False)
        v = median_run(["vipsthumbnail", pyr, "--size", f"{side}x{side}", "-o",
                        os.path.join(out, "v.png[compression=1]")], pyr, args.runs, cold=False)
        ref = os.path.join(out, f"ref{n}.v")
        if not os.path.exists(ref):
            subprocess.run(["vips", "shrink", pyr + "[page=0]", ref, str(n), str(n)],
                           check=True)
        mean, mx = vips_diff(t_out, ref)
        ratio = t[0] / v[0] if t and v else float("nan")
        fmt = lambda r: f"{r[0]:9.2f}" if r else "      n/a"
        print(f"{n:>5} {fmt(t)} {fmt(b)} {fmt(v):>15} {ratio:6.2f} "
              f"{mean:15.2f} / {mx:.0f}", flush=True)


def ppm_case(args, tessera, out, path, label, scale):
    w, h = (int(v) for v in open(path, "rb").read(64).split(b"\n")[1].split())
    region = f"0,0,{w},{h}"
    print(f"\n{label}: --scale {scale}, whole image, cold (median of {args.runs})")
    store = os.path.join(out, "levels")

    def fresh_store():
        shutil.rmtree(store, ignore_errors=True)

    rows = [
        ("dd", ["dd", f"if={path}", "of=/dev/null", "bs=4M"], True, None),
        ("tessera (builds levels)", [tessera, "render", path, "--region", region, "--scale",
                                     str(scale), "--levels-dir", store, "-o",
                                     os.path.join(out, "t.png")], True, fresh_store),
        ("tessera (levels kept)", [tessera, "render", path, "--region", region, "--scale",
                                   str(scale), "--levels-dir", store, "-o",
                                   os.path.join(out, "t.png")], True, None),
        ("tessera --fast", [tessera, "render", path, "--region", region, "--scale",
                            str(scale), "--fast", "--no-keep-levels", "-o",
                            os.path.join(out, "f.png")], True, None),
        ("tessera --fast (warm)", [tessera, "render", path, "--region", region, "--scale",
                                   str(scale), "--fast", "--no-keep-levels", "-o",
                                   os.path.join(out, "f.png")], False, None),
    ]
    if args.before:
        rows.append(("before (reads the file)", [args.before, "render", path, "--region",
                                                  region, "--scale", str(scale),
                                                  "--no-keep-levels", "-o",
                                                  os.path.join(out, "b.png")], True, None))
    ow, oh = -(-w // scale), -(-h // scale)
    gdal = ["gdal_translate", "-q", "-of", "PNG", "-co", "ZLEVEL=1", "-outsize", str(ow),
            str(oh), path, os.path.join(out, "g.png")]
    rows.append(("gdal_translate -outsize", gdal, True, None))
    rows.append(("gdal_translate (warm)", gdal, False, None))
    for name, cmd, cold, prep in rows:
        r = median_run(cmd, path, args.runs, cold=cold, before_each=prep)
        if r is None:
            print(f"  {name:<26} failed")
            continue
        print(f"  {name:<26} {r[0]:8.2f} s  {r[1] / 1e6:7.0f} MB peak RSS", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "bench-data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--before", help="an older tessera binary to compare")
    ap.add_argument("--real-big", action="store_true", help="write the 24 GB file for real")
    ap.add_argument("--skip", default="", help="comma list of: pyramid,ppm,big")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    tessera = tessera_bin()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(dir=args.dir) as out:
        if "pyramid" not in skip:
            pyramid_case(args, tessera, out)
        if "ppm" not in skip:
            ppm_case(args, tessera, out, os.path.join(args.dir, "rgb.ppm"),
                     "PPM 24000x24000 (1.7 GB)", 53)
        if "big" not in skip:
            big = os.path.join(args.dir, "big.ppm")
            if not os.path.exists(big):
                if args.real_big:
                    subprocess.run([synth_bin(), "ppm", "100000", "80000", big], check=True)
                else:
                    with open(big, "wb") as f:
                        f.write(b"P6\n100000 80000\n255\n")
                        f.truncate(f.tell() + 100000 * 80000 * 3)
            kind = "real" if args.real_big else "sparse: holes read as zeros, no disk"
            ppm_case(args, tessera, out, big, f"PPM 100000x80000 (24 GB, {kind})", 53)
    return 0


if __name__ == "__main__":
    sys.exit(main())
