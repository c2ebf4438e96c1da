#!/usr/bin/env python3
"""Remote benchmark (issue #14): a 24000x24000 cloud-optimised GeoTIFF (gdal_translate -of COG,
JPEG and deflate) served on loopback by benches/serve.rs with 50 ms added to every answer,
read by Tessera (https/http range requests) and by GDAL through /vsicurl/ (with
GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR, the usual COG setting). Cold: Tessera's range cache is
a fresh folder each run, and each GDAL run is a new process. Median of --runs.

  overview:  tessera render URL --region 0,0,24000,24000 --scale 23   (1044x1044, fit to 1080)
             gdal_translate -outsize 1044 1044 /vsicurl/URL
  viewport:  tessera render URL --region 11000,11000,1920,1080
             gdal_translate -srcwin 11000 11000 1920 1080 /vsicurl/URL

Targets: Tessera at most 0.5x GDAL's time; bytes fetched at most 1.5x the bytes of the
descriptors needed; a second open from the range cache fetches no pixel data.

    python3 benches/remote_bench.py [--dir bench-data] [--runs 3] [--delay-ms 50]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from render_bench import tessera_bin  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def serve_bin():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "serve"],
                   cwd=ROOT, check=True)
    return os.path.join(ROOT, "target", "release", "examples", "serve")


def served(stats):
    try:
        q, b = open(stats).read().split()
        return int(q), int(b)
    except (OSError, ValueError):
        return 0, 0


def timed(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        print(f"    ! {' '.join(cmd[:3])}: {p.stderr.strip()[:300]}", file=sys.stderr)
    return dt, p.stderr


def stat_line(err, prefix):
    for line in err.splitlines():
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, "bench-data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--delay-ms", type=int, default=50)
    args = ap.parse_args()
    ppm = os.path.join(args.dir, "24000-rgb.ppm")
    cogs = {}
    for name, co in [("jpeg", ["COMPRESS=JPEG", "QUALITY=85"]), ("deflate", ["COMPRESS=DEFLATE"])]:
        path = os.path.join(args.dir, f"cog-{name}.tif")
        if not os.path.exists(path):
            cmd = ["gdal_translate", "-q", "-of", "COG"]
            for c in co:
                cmd += ["-co", c]
            subprocess.run(cmd + [ppm, path], check=True)
        cogs[name] = path
    work = tempfile.mkdtemp(dir=args.dir)
    stats = os.path.join(work, "served")
    server = subprocess.Popen([serve_bin(), args.dir, "--delay-ms", str(args.delay_ms),
                               "--stats", stats], stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    tessera = tessera_bin()
    out = os.path.join(work, "out.png")
    gdal_env = dict(os.environ, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR")
    cases = {
        "overview": (["--region", "0,0,24000,24000", "--scale", "23"],
                     ["-outsize", "1044", "1044"]),
        "viewport": (["--region", "11000,11000,1920,1080"],
                     ["-srcwin", "11000", "11000", "1920", "1080"]),
    }
    print(f"{'cog':<8} {'case':<9} {'tool':<8} {'s':>6} {'requests':>9} {'MB':>7}  notes")
    try:
        for cog, path in cogs.items():
            url = f"http://127.0.0.1:{port}/{os.path.basename(path)}"
            for case, (targs, gargs) in cases.items():
                rows = {}
                for tool in ("tessera", "gdal"):
                    times, reqs, mbs, notes = [], [], [], ""
                    for _ in range(args.runs):
                        cache = tempfile.mkdtemp(dir=work)
                        q0, b0 = served(stats)
                        if tool == "tessera":
                            env = dict(os.environ, TESSERA_CACHE_DIR=cache)
                            dt, err = timed([tessera, "render", url, *targs, "--stats",
                                             "-o", out], env)
                            need = int(stat_line(err, "descriptor bytes:") or 0)
                        else:
                            dt, err = timed(["gdal_translate", "-q", "-of", "PNG", *gargs,
                                             "/vsicurl/" + url, out], gdal_env)
                        q1, b1 = served(stats)
                        times.append(dt)
                        reqs.append(q1 - q0)
                        mbs.append((b1 - b0) / 1e6)
                        if tool == "tessera":
                            fetched = b1 - b0
                            notes = f"fetched/needed {fetched / max(need, 1):.2f}x"
                            # Again from the same range cache: what reaches the server?
                            q2, b2 = served(stats)
                            timed([tessera, "render", url, *targs, "-o", out], env)
                            q3, b3 = served(stats)
                            notes += f"; reopen: {q3 - q2} requests, {(b3 - b2) / 1e3:.0f} KB"
                        shutil.rmtree(cache, ignore_errors=True)
                    rows[tool] = statistics.median(times)
                    ratio = f"  {rows['tessera'] / rows['gdal']:.2f}x" if tool == "gdal" else ""
                    print(f"{cog:<8} {case:<9} {tool:<8} {statistics.median(times):>6.2f} "
                          f"{statistics.median(reqs):>9.0f} {statistics.median(mbs):>7.2f}  "
                          f"{notes}{ratio}", flush=True)
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
