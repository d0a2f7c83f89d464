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
secs=${1:-10}
rounds=${2:-3}

make --no-print-directory nginx-module >/dev/null
need_wrk
cargo build -q --release --example pseudostream

work=$(pwd)/target/bench-nginx
rm -rf "$work/tmp" "$work"/*.lua "$work"/*.txt "$work"/*.log
mkdir -p "$work/media" "$work/tmp"
# A longer file than the sample: 10 minutes, keyframe every 2 s (kept between runs).
media=$work/media/bench.flv
bench_flv "$media"

python3 - "$media" "$work" <<'PY'
import json, subprocess, sys
media, work = sys.argv[1], sys.argv[2]
info = json.loads(subprocess.check_output(
    ["target/release/examples/pseudostream", "info", media]))
kf = info["keyframes"]
n = len(kf)
small = kf[n - 10:n - 1]          # the last ~20 s: small tails
large = kf[1:10]                  # the first ~20 s: large tails
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
    with open("%s/%s.lua" % (work, name), "w") as f:
        f.write("local paths = {%s}\n" % ", ".join('"%s"' % p for p in ps))
        f.write("local i = 0\n")
        f.write("request = function()\n  i = i + 1\n"
                "  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n")
PY

# With two or more cores, nginx's worker and wrk get a core each, so they do
# not steal each other's time slices.
bench_pinning
reserve_port port
cat >"$work/nginx.conf" <<EOF
$(nginx_conf_head "$work")
events { worker_connections 1024; }
http {
    access_log off;
    $(nginx_temp_paths "$work/tmp")
    types { video/x-flv flv; }
    sendfile on;
    open_file_cache max=100 inactive=60s;
    server {
        listen 127.0.0.1:$port backlog=1024;
        location /flv/ { alias $work/media/; flv; }
        location /ps/ { alias $work/media/; pseudostream; }
        location /ps-sec/ { alias $work/media/; pseudostream; pseudostream_start_unit seconds; }
    }
}
EOF
nginx_start "$work" "$work/nginx.conf" "$port"
trap 'nginx_stop "$work" "$work/nginx.conf"' EXIT

run() { # mix -> "req/s bytes/s"; stops on script errors and non-2xx answers
    local out
    out=$("${pin_client[@]}" wrk -t2 -c16 -d"${secs}s" -s "$work/$1.lua" "http://127.0.0.1:$port" 2>&1)
    if ! grep -q 'Requests/sec' <<<"$out" || grep -qiE 'non-2xx|error' <<<"$out"; then
        echo "bench-nginx: wrk run of $1 failed:" >&2
        echo "$out" >&2
        exit 1
    fi
    awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2; u=t; sub(/[0-9.]+/,"",u); v=t+0;
         if (u=="KB") v*=1024; else if (u=="MB") v*=1048576; else if (u=="GB") v*=1073741824}
         END {printf "%s %.0f\n", r, v}' <<<"$out"
}

# Warm the index cache and the page cache.
for m in small_ps large_ps time_ps small_flv; do
    "${pin_client[@]}" wrk -t1 -c2 -d1s -s "$work/$m.lua" "http://127.0.0.1:$port" >/dev/null 2>&1
done

printf '%-12s %12s %12s %8s %14s %14s %8s\n' mix "flv req/s" "ours req/s" ratio "flv MB/s" "ours MB/s" ratio
for mix in small large time; do
    : >"$work/$mix.flv.txt"
    : >"$work/$mix.ps.txt"
    for _ in $(seq "$rounds"); do
        run "${mix}_flv" >>"$work/$mix.flv.txt"
        run "${mix}_ps" >>"$work/$mix.ps.txt"
    done
    read -r fr pr ft pt < <(round_medians "$work/$mix.flv.txt" "$work/$mix.ps.txt")
    awk -v m="$mix" -v fr="$fr" -v pr="$pr" -v ft="$ft" -v pt="$pt" 'BEGIN {
        printf "%-12s %12.0f %12.0f %7.2fx %14.1f %14.1f %7.2fx\n",
            m, fr, pr, pr / fr, ft / 1048576, pt / 1048576, pt / ft }'
done
echo "(median of $rounds runs of ${secs}s each; wrk -t2 -c16${pin_client[*]:+ on core 0}; one nginx worker${nginx_affinity:+ on core 1}; $(nproc) cores)"
