#!/usr/bin/env bash
# What checking keyframe flags (reading the first bytes of every flagged
# H.264/HEVC sample, docs/flv-index.md) costs the index build: `pseudostream
# info` on a 2-hour MP4, a 7-hour, 1.5 GB FLV without keyframe metadata
# (scripts/lib/bench_media.sh) and the same FLV after yamdi (its index comes
# from the metadata), this tree's build against BASE_REV's (a
# commit before the check; default 6dff3fd^), in fresh processes, A and B
# alternating, pinned to one core. Warm: the file in the page cache. Cold:
# dropped from it (posix_fadvise) before each run, which is what a first
# request after a restart on a busy machine sees.
#
#   scripts/bench-index-check.sh [BASE_REV] [ROUNDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base_rev=${1:-6dff3fd^}
rounds=${2:-9}
work=$(pwd)/target/bench-index-check
mkdir -p "$work" target/bench-media target/bench-nginx-mp4/media
# shellcheck source=lib/bench_media.sh
source scripts/lib/bench_media.sh
mp4=target/bench-nginx-mp4/media/long.mp4
flv=target/bench-media/seven-hours.flv
bench_long_mp4 "$mp4"
bench_long_flv "$flv"
flv_meta=target/bench-media/seven-hours.yamdi.flv
if [[ ! -s $flv_meta ]]; then
    yamdi -i "$flv" -o "$flv_meta.tmp" && mv "$flv_meta.tmp" "$flv_meta"
fi

cargo build -q --release --example pseudostream
ours=$(pwd)/target/release/examples/pseudostream
if [[ ! -d $work/base ]]; then
    git worktree add -q --detach "$work/base" "$base_rev"
else
    git -C "$work/base" checkout -q --detach "$base_rev"
fi
(cd "$work/base" && cargo build -q --release --example pseudostream)
base=$work/base/target/release/examples/pseudostream

drop_cache() {
    python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$1"
}
# ms of one `info` run: $1 exe, $2 file, $3 cold|warm
time_info() {
    [[ $3 == cold ]] && drop_cache "$2"
    local start
    start=$(date +%s%N)
    taskset -c 1 "$1" info "$2" >/dev/null
    echo $(( ($(date +%s%N) - start) / 1000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-20s %-5s %12s %12s %7s\n' file cache "base ms" "checked ms" ratio
for file in "$mp4" "$flv" "$flv_meta"; do
    facts=$("$ours" info "$file" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["keyframe_count"], d["keyframe_flags_overruled"], d["size"])')
    for cache in warm cold; do
        a=() b=()
        [[ $cache == warm ]] && "$ours" info "$file" >/dev/null
        for _ in $(seq "$rounds"); do
            a+=("$(time_info "$base" "$file" "$cache")")
            b+=("$(time_info "$ours" "$file" "$cache")")
        done
        ma=$(printf '%s\n' "${a[@]}" | median)
        mb=$(printf '%s\n' "${b[@]}" | median)
        awk -v f="$(basename "$file")" -v c="$cache" -v a="$ma" -v b="$mb" \
            'BEGIN { printf "%-20s %-5s %12.1f %12.1f %6.2fx\n", f, c, a / 1000, b / 1000, b / a }'
    done
    echo "  $(basename "$file"): keyframes, flags overruled, bytes: $facts"
done
