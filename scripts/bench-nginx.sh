#!/usr/bin/env bash
# Benchmark: nginx's built-in `flv` module against ngx_http_pseudostream_module,
# side by side in one nginx (one worker, same file, same request mix), driven
# by wrk on loopback. Prints requests/s and throughput for each and their
# ratios (median of ROUNDS alternating runs), with the index cache warm.
#
#   scripts/bench-nginx.sh [SECONDS_PER_RUN] [ROUNDS]
#
# Mixes: byte seeks to keyframes with small tails (the last seconds of the
# file) and large tails (from the first seconds), and time seeks (ours, in
# seconds) against flv byte seeks to the same keyframes (nginx flv has no
# time seeks). Not a test: it prints figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/servers.sh
bench_args secs=10 rounds=3 -- "$@"

make --no-print-directory nginx-module >/dev/null
need_wrk
cargo build -q --release --example pseudostream

work=$(pwd)/target/bench-nginx
rm -rf "$work/tmp" "$work"/*.lua "$work"/*.txt "$work"/*.log
mkdir -p "$work/media" "$work/tmp"
# A longer file than the sample: 10 minutes, keyframe every 2 s (kept between runs).
media=$work/media/bench.flv
bench_flv "$media"

PYTHONPATH=scripts/lib python3 - "$media" "$work" <<'PY'
import sys
from bench_mixes import keyframe_tails, write_wrk_script
media, work = sys.argv[1], sys.argv[2]
small, large = keyframe_tails(media)
def paths(prefix, points, time=False):
    out = []
    for k in points:
        start = "%d.%03d" % divmod(k["time_ms"], 1000) if time else str(k["offset"])
        out.append("/%s/bench.flv?start=%s" % (prefix, start))
    return out
mixes = {
    "small_flv": paths("flv", small), "small_ps": paths("ps", small),
    "large_flv": paths("flv", large), "large_ps": paths("ps", large),
    "time_flv": paths("flv", small + large), "time_ps": paths("ps-sec", small + large, True),
}
for name, ps in mixes.items():
    write_wrk_script("%s/%s.lua" % (work, name), ps, 'wrk.format("GET", v)')
PY

# With two or more cores, nginx's worker and wrk get a core each, so they do
# not steal each other's time slices.
bench_pinning
reserve_port port
nginx_bench_conf "$work" "$port" "video/x-flv flv;" \
    "location /flv/ { alias $work/media/; flv; }" \
    "location /ps/ { alias $work/media/; pseudostream; }" \
    "location /ps-sec/ { alias $work/media/; pseudostream; pseudostream_start_unit seconds; }"
nginx_start "$work" "$work/nginx.conf" "$port"
trap 'nginx_stop "$work" "$work/nginx.conf"' EXIT

run() { # mix location -> "req/s bytes/s", from the mix's wrk script for the location
    wrk_rate "http://127.0.0.1:$port" "$work/$1_$2.lua"
}

# Warm the index cache and the page cache.
for m in small_ps large_ps time_ps small_flv; do
    "${pin_client[@]}" wrk -t1 -c2 -d1s -s "$work/$m.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
done

paired_table flv small large time
