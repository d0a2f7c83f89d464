#!/usr/bin/env bash
# Benchmark: FLV served as MP4 (`?format=mp4`) against the offline way, a
# remux with `ffmpeg -c copy -movflags +faststart`, served by nginx. Prints
# figures and ratios (medians of alternating runs); not a test.
#
#   scripts/bench-flv-as-mp4.sh [SECONDS_PER_RUN] [ROUNDS] [COLD_RUNS]
#
# defaults: 10 s runs, 3 rounds, 3 cold runs. Media (kept, under
# target/bench-flv-as-mp4/media):
#   long.flv    2 hours, H.264 160x90 25 fps + AAC mono 48 kHz, remuxed
#               from the 2-hour MP4 of scripts/lib/bench_media.sh
#   remux.mp4   `ffmpeg -i long.flv -c copy -movflags +faststart`
#   big.flv     ~7 hours, ~1.5 GB, H.264 320x180 + AAC (bench_long_flv)
#
# Figures:
#   moov   our moov for long.flv against the one ffmpeg's remux writes
#   first  the first byte of big.flv?format=mp4 from a new process
#          (`pseudostream cut ... --range bytes=0-0`: the FLV index, the
#          sample walk and the moov) against ffmpeg's whole remux of
#          big.flv, paired runs, page cache warm for both
#   whole  nginx streaming long.flv?format=mp4 whole (ours) against nginx's
#          static serving of remux.mp4 (wrk, bytes/s)
#   cut    long.flv?format=mp4&start=3600&end=3601 (ours, warm) against
#          nginx's mp4 module on remux.mp4?start=3600&end=3601 (req/s)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/servers.sh
bench_args secs=10 rounds=3 cold_runs=3 -- "$@"

bench_tools

work=$(pwd)/target/bench-flv-as-mp4
rm -rf "$work/tmp" "$work/body" "$work"/*.txt "$work"/*.log
mkdir -p "$work/media" "$work/tmp" "$work/body"
chmod 755 "$work" "$work/media"
long=$work/media/long.flv
remux=$work/media/remux.mp4
big=$work/media/big.flv

# ---------------------------------------------------------------- media --
# shellcheck source=lib/bench_media.sh
source scripts/lib/bench_media.sh
bench_long_mp4 "$work/media/long-source.mp4"
bench_long_flv "$big"
if [[ ! -s $long ]]; then
    ffmpeg -nostdin -v error -y -i "$work/media/long-source.mp4" -c copy -f flv "$work/tmp/long.flv"
    mv "$work/tmp/long.flv" "$long"
fi
if [[ ! -s $remux ]]; then
    ffmpeg -nostdin -v error -y -i "$long" -c copy -movflags +faststart "$work/tmp/remux.mp4"
    mv "$work/tmp/remux.mp4" "$remux"
fi

# ----------------------------------------------------------------- moov --
"$cli" cut "$long" format=mp4 2>/dev/null | head -c 64000000 >"$work/body/head.mp4" || true
python3 - "$work/body/head.mp4" "$remux" <<'PY'
import struct, sys
def boxes(path):
    out = []
    with open(path, "rb") as f:
        data = f.read(64_000_000)
    off = 0
    while off + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[off:off + 8])
        if n == 1:
            n = struct.unpack(">Q", data[off + 8:off + 16])[0]
        out.append((kind.decode("latin-1"), n))
        if kind == b"mdat" or n < 8:
            break
        off += n
    return out
ours, theirs = dict(boxes(sys.argv[1])), dict(boxes(sys.argv[2]))
print("moov of long.flv?format=mp4: %d bytes; ffmpeg's remux: %d bytes; ratio %.2fx"
      % (ours["moov"], theirs["moov"], ours["moov"] / theirs["moov"]))
PY

# ---------------------------------------------------------------- first --
python3 - "$cli" "$big" "$work/tmp/big-remux.mp4" "$cold_runs" <<'PY'
import os, statistics, subprocess, sys, time
cli, big, out, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ours = [cli, "cut", big, "format=mp4", "--range", "bytes=0-0"]
theirs = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", big, "-c", "copy",
          "-movflags", "+faststart", out]
def once(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t
once(ours)  # the page cache holds the file for both from here on
a, b = [], []
for i in range(n):
    pair = [(ours, a), (theirs, b)] if i % 2 == 0 else [(theirs, b), (ours, a)]
    for cmd, into in pair:
        into.append(once(cmd))
os.unlink(out)
print()
print("first byte of big.flv?format=mp4 (%.2f GB), a new process each, median of %d paired runs:"
      % (os.path.getsize(big) / 1e9, n))
print("  ours (index + samples + moov)  %8.2f s  (%.2f-%.2f)" % (statistics.median(a), min(a), max(a)))
print("  ffmpeg remux, whole            %8.2f s  (%.2f-%.2f)" % (statistics.median(b), min(b), max(b)))
print("  ratio ours/ffmpeg              %8.3fx (median of pair ratios)"
      % statistics.median(x / y for x, y in zip(a, b)))
PY

# ---------------------------------------------------------------- nginx --
bench_pinning
reserve_port port
base=http://127.0.0.1:$port
nginx_bench_conf "$work" "$port" "video/mp4 mp4; video/x-flv flv;" \
    "location /static/ { alias $work/media/; }" \
    "location /mp4/ { alias $work/media/; mp4; mp4_max_buffer_size 64m; mp4_start_key_frame on; }" \
    "location /ps/ { alias $work/media/; pseudostream; }"
nginx_start "$work" "$work/nginx.conf" "$port" || die "nginx did not come up"
trap 'nginx_stop "$work" "$work/nginx.conf"' EXIT

whole_ps="long.flv?format=mp4"
whole_peer="remux.mp4"
cut_ps="long.flv?format=mp4&start=3600&end=3601"
cut_peer="remux.mp4?start=3600&end=3601"

# Each answer decodes (the cut), and the whole MP4 is the library's.
echo
for target in "ps/$cut_ps" "mp4/$cut_peer"; do
    body=$work/body/$(tr '/?&=' '____' <<<"$target")
    code=$(curl -s -o "$body" -w '%{http_code}' "$base/$target")
    msg=$(ffmpeg -nostdin -v error -i "$body" -f null - 2>&1 | head -n 3 || true)
    printf '%-50s %s %10s bytes  ffmpeg: %s\n' "/$target" "$code" "$(stat -c %s "$body")" "${msg:-(nothing)}"
    [[ $code == 200 && -z $msg ]] || die "/$target does not decode cleanly"
done
curl -s "$base/ps/$whole_ps" | cmp -s - <("$cli" cut "$long" format=mp4 2>/dev/null) \
    || die "nginx's /ps/$whole_ps is not the library's MP4"

run() { # mix location -> "req/s bytes/s"
    local q
    case $1/$2 in
        whole/ps) q=$whole_ps ;;
        whole/*) q=$whole_peer ;;
        cut/ps) q=$cut_ps ;;
        cut/*) q=$cut_peer ;;
    esac
    wrk_rate "$base/$2/$q"
}
for target in "ps/$whole_ps" "static/$whole_peer" "ps/$cut_ps" "mp4/$cut_peer"; do
    "${pin_client[@]}" wrk -t1 -c2 -d2s --timeout 60s "$base/$target" >/dev/null 2>&1
done
echo
# Whole files of ~170 MB: two connections, each download taking seconds.
wrk_load="-t1 -c2 --timeout 60s" paired_table static whole
echo "(whole = /static/$whole_peer against /ps/$whole_ps)"
echo
paired_table mp4 cut
echo "(cut = /mp4/$cut_peer against /ps/$cut_ps)"
