#!/usr/bin/env bash
# Serves the sample media on http://127.0.0.1:8080 (or $1) with the example
# host: open it in a browser to play and seek in every FLV (mpegts.js from npm:
# scripts/setup-web.sh) and MP4 (the browser's own player, cut by ?start=) on
# the demo page (web/), or seek with ffplay,
# VLC or mpv. Responses are paced (--rate auto:1.25, the media's bitrate
# × 1.25 after a 3 s burst), so seeks usually land past the download.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
addr=${1:-127.0.0.1:8080}
command -v cargo >/dev/null || { echo "cargo not found: install stable Rust (rustup)" >&2; exit 1; }
[ -f samples/sample.flv ] || ./scripts/make-sample.sh samples/sample.flv
# The same content as an MP4 with its moov at the end (cuts put it first).
[ -f samples/sample.mp4 ] || ffmpeg -nostdin -v error -y -i samples/sample.flv -c copy samples/sample.mp4
web=(--web web)
if ! ./scripts/setup-web.sh --packages-only; then
  echo "demo: no web/node_modules (npm or the registry unavailable): seek links only" >&2
  web=()
fi
if ((${#web[@]})); then
  echo "open http://$addr/ in a browser to play and seek; seek links for players at http://$addr/?links"
else
  echo "open http://$addr/ for seek links"
fi
echo "e.g. ffplay 'http://$addr/sample.flv?start=30' or 'http://$addr/sample.mp4?start=30&end=45' (seconds)"
exec cargo run --release --example pseudostream -- serve samples --addr "$addr" --unit seconds \
  --rate auto:1.25 "${web[@]}" "${@:2}"
