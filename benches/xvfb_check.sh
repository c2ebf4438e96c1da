#!/usr/bin/env bash
# Real-window check under Xvfb: open a generated multi-gigabyte image, drive it with xdotool
# (drag, wheel), take a screenshot, and check the viewer is still alive.
#
#   [IMG=FILE] bash benches/xvfb_check.sh [OUT.png]     (default: the generated 24000x24000 PPM)
#
# Needs: xvfb xdotool imagemagick (see shared/PLATFORM.md for the GL/Vulkan runtime packages).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-screenshot.png}
data=${BENCH_DATA:-bench-data}
mkdir -p "$data"
img=${IMG:-$data/rgb.ppm}
[ -f "$img" ] || cargo run --release --quiet --example synth -- ppm 24000 24000 "$img"
cargo build --release --quiet
export XDG_RUNTIME_DIR=$(mktemp -d) && chmod 700 "$XDG_RUNTIME_DIR"
Xvfb :97 -screen 0 1600x1000x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true; kill $viewer 2>/dev/null || true' EXIT
export DISPLAY=:97
sleep 1
./target/release/tessera "$img" --cache-mb 512 &
viewer=$!
# Wait for the window.
for _ in $(seq 50); do
  win=$(xdotool search --name Tessera 2>/dev/null | head -1 || true)
  [ -n "$win" ] && break
  sleep 0.2
done
[ -n "${win:-}" ] || { echo "no window appeared"; exit 1; }
xdotool windowmove "$win" 0 0 windowsize "$win" 1600 1000
sleep 2
# Zoom in with the wheel over the canvas, then drag to pan.
xdotool mousemove 500 500
for _ in $(seq ${CLICKS:-5}); do xdotool click 4; sleep 0.05; done
sleep 1
xdotool mousedown 1 mousemove 600 560 mousemove 700 620 mouseup 1
sleep 1
# Show descriptor boundaries (B), select a row in the panel and go to it. Xvfb has no window
# manager, so give the window the keyboard focus first.
xdotool windowfocus --sync "$win" 2>/dev/null || xdotool windowfocus "$win"
xdotool mousemove 500 500 key b
xdotool mousemove 1250 240 click 1
sleep 0.5
xdotool mousemove 1007 79 click 1
sleep 3
import -window root "$out"
kill -0 $viewer || { echo "viewer died"; exit 1; }
echo "screenshot: $out"
