#!/usr/bin/env bash
# Size and build time of the virtual head (keyframes listed on the fly) for a
# long FLV without keyframe metadata: a 10-minute H.264/AAC FLV from ffmpeg's
# synthetic sources is looped (stream copy) into a ~7-hour, ~1.5 GB file
# under target/bench-media/, then `pseudostream info` opens it RUNS times in
# fresh processes (index scan + head; page cache warm after the first run).
#
#   scripts/bench-virtual-head.sh [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-5}
dir=target/bench-media
mkdir -p "$dir"
big=$dir/seven-hours.flv
# shellcheck source=lib/bench_media.sh
source scripts/lib/bench_media.sh
bench_long_flv "$big"
cargo build --release --example pseudostream >/dev/null 2>&1
exe=target/release/examples/pseudostream
info=$("$exe" info "$big")
field() { sed -n "s/.*\"$1\":\([0-9a-z_\"-]*\).*/\1/p" <<<"$info"; }
printf 'file: %s bytes, %s ms of media, %s keyframes, index %s\n' \
  "$(field size)" "$(field duration_ms)" "$(field keyframe_count)" "$(field index_origin)"
printf 'virtual head: %s bytes (%s keyframes listed), virtual file %s bytes\n' \
  "$(field virtual_head_bytes)" "$(field virtual_listed)" "$(field virtual_size)"
times=()
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  "$exe" info "$big" >/dev/null
  times+=($(( ($(date +%s%N) - start) / 1000000 )))
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
printf 'open + index + head, ms per process (sorted): %s\n' "$sorted"
