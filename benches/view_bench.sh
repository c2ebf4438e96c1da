#!/usr/bin/env bash
# Viewer benchmark under Xvfb: `tessera bench-view` on a 24000x24000 RGB PPM and a 256x256-tiled
# deflate TIFF, each with a cold page cache. Prints one JSON line per file.
#
#   bash benches/view_bench.sh [--cache-mb M]
#   TESSERA=path/to/tessera FILES="rgb.ppm" bash benches/view_bench.sh   # another binary, some files
#
# Targets (issue #3): p99 frame < 16.7 ms, no frame > 50 ms, sharp within 150 ms of each jump at
# 1:1, peak RSS within the cache budget + 200 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
cache_mb=${2:-512}
data=${BENCH_DATA:-bench-data}
bin=${TESSERA:-./target/release/tessera}
files=${FILES:-rgb.ppm deflate.tif}
[ -n "${TESSERA:-}" ] || cargo build --release --quiet
for f in $files; do
  [ -f "$data/$f" ] || python3 benches/render_bench.py --prepare-only --dir "$data" >/dev/null
done
export XDG_RUNTIME_DIR=$(mktemp -d) && chmod 700 "$XDG_RUNTIME_DIR"
Xvfb :98 -screen 0 1600x1000x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
export DISPLAY=:98
sleep 1
for f in $files; do
  python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$data/$f"
  printf '%s (cached after evict: %s) ' "$f" "$(fincore --bytes --noheadings --output RES "$data/$f")"
  "$bin" bench-view "$data/$f" --cache-mb "$cache_mb"
done
