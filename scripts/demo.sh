#!/usr/bin/env bash
# Serves the sample media on http://127.0.0.1:8080 (or $1) with the example
# host, so a person can seek in it with ffplay, VLC or mpv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
addr=${1:-127.0.0.1:8080}
command -v cargo >/dev/null || { echo "cargo not found: install stable Rust (rustup)" >&2; exit 1; }
[ -f samples/sample.flv ] || ./scripts/make-sample.sh samples/sample.flv
echo "open http://$addr/ for seek links; e.g. ffplay 'http://$addr/sample.flv?start=30' (start/end in seconds)"
exec cargo run --release --example pseudostream -- serve samples --addr "$addr" --unit seconds "${@:2}"
