#!/usr/bin/env bash
# Benchmark: nginx's built-in `mp4` module against ngx_http_pseudostream_module
# on MP4 jump-to-time, side by side in one nginx (one worker, two locations on
# the same files), driven by wrk on loopback. Prints requests/s and throughput
# for each and their ratios (median of ROUNDS alternating runs), then the cost
# of building our index cold against nginx mp4's parse of the moov, which it
# repeats on every request. Not a test: it prints figures.
#
#   scripts/bench-nginx-mp4.sh [SECONDS_PER_RUN] [ROUNDS] [COLD_RUNS]
#
# defaults: 10 s runs, 3 rounds, 7 cold runs. Media (kept between runs, under
# target/bench-nginx-mp4/media): long.mp4, 2 hours, and short.mp4, 1 minute;
# both H.264 160x90 25 fps (keyframe every 2 s) + AAC mono 48 kHz, moov first.
#
# Figures:
#   cut    long.mp4?start=3600&end=3601   one second from the middle of 2 h:
#                                         the answer is mostly the cut moov
#   short  short.mp4?start=5              55 s of a small file: mostly media
#   cold   the cut's first request to each module after an nginx restart
#          (ours builds the index; nginx mp4 parses the moov, as on every
#          request), curl's time_total, median of COLD_RUNS restarts; the warm
#          latency of each (wrk, one connection, p50); how many nginx mp4
#          requests our index build costs; and the library building the index
#          on its own (`pseudostream info`, a whole process) against `ffprobe`
#          reading the same file's duration, paired runs.
# Before timing, each cut is fetched once from each module: both must answer
# 200 with a body ffmpeg decodes without a message; then a Range request on
# the cut (bytes=0-) from each shows both answer Range on their output.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/servers.sh
bench_args secs=10 rounds=3 cold_runs=7 -- "$@"

bench_tools

work=$(pwd)/target/bench-nginx-mp4
rm -rf "$work/tmp" "$work/body" "$work"/*.txt "$work"/*.log
mkdir -p "$work/media" "$work/tmp" "$work/body"
long=$work/media/long.mp4
short=$work/media/short.mp4

# ---------------------------------------------------------------- media --
# shellcheck source=lib/bench_media.sh
source scripts/lib/bench_media.sh
bench_long_mp4 "$long"
if [[ ! -s $short ]]; then
    bench_encode 60 "$work/tmp/short.mp4"
    mv "$work/tmp/short.mp4" "$short"
fi

# Top-level boxes, the index's own account of itself (info JSON), ffprobe's duration.
python3 - "$cli" "$long" "$short" <<'PY'
import json, os, struct, subprocess, sys
cli, files = sys.argv[1], sys.argv[2:]
for path in files:
    boxes = []
    with open(path, "rb") as f:
        off, size = 0, os.path.getsize(path)
        while off + 8 <= size:
            f.seek(off)
            n, kind = struct.unpack(">I4s", f.read(8))
            if n == 1:
                n = struct.unpack(">Q", f.read(8))[0]
            elif n == 0:
                n = size - off
            boxes.append((kind.decode("latin-1"), off, n))
            off += n
    moov = [b for b in boxes if b[0] == "moov"]
    mdat = [b for b in boxes if b[0] == "mdat"]
    info = json.loads(subprocess.check_output([cli, "info", path]))
    mp4 = info.get("mp4") or {}
    dur = subprocess.check_output(["ffprobe", "-v", "error", "-show_entries",
                                   "format=duration", "-of", "csv=p=0", path]).decode().strip()
    print("%-10s %6.1f MB  %8.1f s (ffprobe %s)  moov %d bytes (%.2f MB, %s)  "
          "samples %s  keyframes %s" % (
              os.path.basename(path), os.path.getsize(path) / 1e6, info["duration_ms"] / 1000,
              dur, moov[0][2], moov[0][2] / 1e6,
              "first" if mdat and moov[0][1] < mdat[0][1] else "last",
              mp4.get("samples", "?"), info.get("keyframe_count", "?")))
    if "index_bytes" in mp4:
        print("%-10s our index: %d bytes (%.2f MB), %s bytes/sample, %.0f%% of the moov" % (
            "", mp4["index_bytes"], mp4["index_bytes"] / 1e6,
            mp4.get("index_bytes_per_sample", "?"), 100.0 * mp4["index_bytes"] / moov[0][2]))
    else:
        print("%-10s our index size: not in the info JSON" % "")
PY

# ---------------------------------------------------------------- nginx --
# With two or more cores, nginx's worker and wrk get a core each.
bench_pinning
reserve_port port
base=http://127.0.0.1:$port
# mp4_start_key_frame on: nginx starts from the keyframe before `start` and
# hides the frames up to it with an edit list, as our default (exact) cut does.
nginx_bench_conf "$work" "$port" "video/mp4 mp4;" \
    "location /mp4/ { alias $work/media/; mp4; mp4_max_buffer_size 64m; mp4_start_key_frame on; }" \
    "location /ps/ { alias $work/media/; pseudostream; }"
nginx_up() { nginx_start "$work" "$work/nginx.conf" "$port" || die "nginx did not come up"; }
nginx_down() { nginx_stop "$work" "$work/nginx.conf" || die "nginx did not stop"; }
nginx_up
trap 'nginx_down' EXIT

cut_q="long.mp4?start=3600&end=3601"
short_q="short.mp4?start=5"

# ---------------------------------------------------------------- check --
echo
printf '%-34s %6s %10s  %s\n' request status bytes "ffmpeg -v error (nothing = valid)"
bad=0
for q in "$cut_q" "$short_q"; do
    for loc in mp4 ps; do
        body=$work/body/$loc-${q%%\?*}
        read -r code size < <(curl -s -o "$body" -w '%{http_code} %{size_download}\n' "$base/$loc/$q")
        msg=$(ffmpeg -nostdin -v error -i "$body" -f null - 2>&1 | head -n 3 || true)
        printf '%-34s %6s %10s  %s\n' "/$loc/$q" "$code" "$size" "${msg:-(nothing)}"
        if [[ $code != 200 || -n $msg ]]; then bad=1; fi
    done
done
echo
printf '%-34s %6s %10s  %s\n' "Range: bytes=0- on" status bytes Content-Range
for loc in mp4 ps; do
    hdr=$(curl -s -D - -o "$work/body/$loc-range" -H 'Range: bytes=0-' "$base/$loc/$cut_q" | tr -d '\r')
    code=$(awk 'NR==1 {print $2}' <<<"$hdr")
    cr=$(awk -F': ' 'tolower($1)=="content-range" {print $2}' <<<"$hdr")
    same="differs from its 200 body"
    cmp -s "$work/body/$loc-range" "$work/body/$loc-long.mp4" && same="same bytes as its 200 body"
    printf '%-34s %6s %10s  %s\n' "/$loc/$cut_q" "$code" "$(stat -c %s "$work/body/$loc-range")" "${cr:-(none)}; $same"
done
((bad == 0)) || die "a check failed (bodies in $work/body, log in $work/error.log)"

# ------------------------------------------------------------ throughput --
run() { # mix location -> "req/s bytes/s" of the mix's request (cut_q, short_q) to the location
    local q=${1}_q
    wrk_rate "$base/$2/${!q}"
}

# Warm the index cache and the page cache.
for q in "$cut_q" "$short_q"; do
    for loc in ps mp4; do
        "${pin_client[@]}" wrk -t1 -c2 -d1s "$base/$loc/$q" >/dev/null 2>&1
    done
done

echo
paired_table mp4 cut short
echo "(cut = /LOC/$cut_q, short = /LOC/$short_q)"

# ----------------------------------------------------------------- cold --
# COLD_RUNS restarts of nginx (an empty index cache); after each, one request
# to each module, the one that goes first alternating: ours builds the index
# (opens the file, reads and indexes the moov, cuts), nginx mp4 parses the
# moov as it does every time. curl's time_total, median over the restarts.
# Then the warm latency of each: wrk, one connection, median (p50) latency
# of a run of ~2 s, ROUNDS alternating runs, median of those.
ms() { curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "$1" |
       awk -v u="$1" '$1 != 200 {print "bench-nginx-mp4: " u " answered " $1 > "/dev/stderr"; exit 1}
                      {printf "%.3f\n", $2 * 1000}'; }
p50() { # path -> median latency in ms of one connection's requests for ~2 s
    "${pin_client[@]}" wrk -t1 -c1 -d2s --latency "$base$1" 2>&1 |
        awk '/^ +50%/ {v=$2+0; u=$2; sub(/^[0-9.]+/,"",u); if (u=="us") v/=1000; else if (u=="s") v*=1000;
                       printf "%.3f\n", v; found=1} END {exit !found}'
}
: >"$work/cold.ps.txt"; : >"$work/cold.mp4.txt"; : >"$work/warm.ps.txt"; : >"$work/warm.mp4.txt"
for i in $(seq "$cold_runs"); do
    nginx_down
    nginx_up
    if ((i % 2)); then
        ms "$base/ps/$cut_q" >>"$work/cold.ps.txt"
        ms "$base/mp4/$cut_q" >>"$work/cold.mp4.txt"
    else
        ms "$base/mp4/$cut_q" >>"$work/cold.mp4.txt"
        ms "$base/ps/$cut_q" >>"$work/cold.ps.txt"
    fi
done
for _ in $(seq "$rounds"); do
    p50 "/mp4/$cut_q" >>"$work/warm.mp4.txt"
    p50 "/ps/$cut_q" >>"$work/warm.ps.txt"
done
cold=$(median <"$work/cold.ps.txt")
mfirst=$(median <"$work/cold.mp4.txt")
warm=$(median <"$work/warm.ps.txt")
each=$(median <"$work/warm.mp4.txt")
echo
echo "one request /LOC/$cut_q:"
awk -v c="$cold" -v f="$mfirst" -v w="$warm" -v e="$each" -v n="$cold_runs" -v r="$rounds" 'BEGIN {
    printf "  first after a restart (curl, median of %d restarts):\n", n
    printf "    ours (index built)        %9.2f ms  (%.2fx nginx mp4 first, %.2fx nginx mp4 warm)\n", c, c / f, c / e
    printf "    nginx mp4 (moov parsed)   %9.2f ms\n", f
    printf "  warm (wrk -c1 p50 latency, median of %d runs):\n", r
    printf "    ours (index cached)       %9.3f ms\n", w
    printf "    nginx mp4 (moov parsed)   %9.3f ms  (%.1fx ours)\n", e, e / w
    if (e > w) printf "  the index build costs as much as %.1f nginx mp4 requests save: (%.2f - %.3f) / (%.3f - %.3f)\n",
        (c - w) / (e - w), c, w, e, w }'

# The index build on its own, as a whole process (start-up included), paired
# with ffprobe reading the same moov for the duration.
python3 - "$cli" "$long" "$cold_runs" <<'PY'
import statistics, subprocess, sys, time
cli, path, n = sys.argv[1], sys.argv[2], max(3, int(sys.argv[3]))
a_cmd = [cli, "info", path]
b_cmd = ["ffprobe", "-v", "error", "-show_entries", "format=duration", path]
def once(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t) * 1000
once(a_cmd); once(b_cmd)
a, b = [], []
for _ in range(n):
    a.append(once(a_cmd)); b.append(once(b_cmd))
ratio = statistics.median(x / y for x, y in zip(a, b))
print()
print("whole process on long.mp4, median of %d paired runs (min-max):" % n)
print("  pseudostream info      %8.1f ms  (%.1f-%.1f)" % (statistics.median(a), min(a), max(a)))
print("  ffprobe format=duration %7.1f ms  (%.1f-%.1f)" % (statistics.median(b), min(b), max(b)))
print("  ratio ours/ffprobe      %7.2fx (median of pair ratios)" % ratio)
PY
