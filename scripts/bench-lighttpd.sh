#!/usr/bin/env bash
# Benchmark: mod_pseudostream against lighttpd's own static file serving
# (mod_staticfile answering Range requests), side by side in one lighttpd
# (one process, same file, same keyframes), driven by wrk on loopback.
# Prints requests/s and throughput for each and their ratios (median of
# ROUNDS rounds, each starting with the next variant, and median of the
# per-round paired ratios), with the index cache warm.
#
#   scripts/bench-lighttpd.sh [SECONDS_PER_RUN] [ROUNDS]
#
# Mixes: seeks to keyframes with small tails (the last seconds of the file)
# and large tails (from the first seconds). The module (prefix none, start
# in bytes, metadata off) answers "?start=N" with the file's bytes [N, end),
# the same body as static "Range: bytes=N-" (206), so the two do the same
# work but for the module's own: the aim is a ratio of 0.95x or better.
# The init rows (the default prefix, "init": FLV header and codec tags
# before the keyframe, what players get) are informative. Not a test: it
# prints figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/servers.sh
bench_args secs=10 rounds=3 -- "$@"

./scripts/build-lighttpd-module.sh >/dev/null
need_wrk
cargo build -q --release --example pseudostream

work=$(pwd)/target/bench-lighttpd
rm -rf "$work/modules" "$work/body" "$work"/*.lua "$work"/*.txt "$work"/*.log "$work"/*.out
mkdir -p "$work/media" "$work/modules" "$work/body"
# lighttpd loads modules only from its modules dir (-m): one holding ours.
ln -s "$(pwd)/target/lighttpd-build/mod_pseudostream.so" "$work/modules/mod_pseudostream.so"
# A longer file than the sample: 10 minutes, keyframe every 2 s (kept between runs).
media=$work/media/bench.flv
bench_flv "$media"

# One Lua script per mix and variant, and offsets.txt ("small N" and
# "large N" lines, the first of each) for the check below.
PYTHONPATH=scripts/lib python3 - "$media" "$work" <<'PY'
import sys
from bench_mixes import keyframe_tails, write_wrk_script
media, work = sys.argv[1], sys.argv[2]
requests = {
    "ps": 'wrk.format("GET", "/ps/bench.flv?start=" .. v)',
    "init": 'wrk.format("GET", "/ps-init/bench.flv?start=" .. v)',
    "static": 'wrk.format("GET", "/static/bench.flv", {["Range"] = "bytes=" .. v .. "-"})',
}
with open("%s/offsets.txt" % work, "w") as f:
    for mix, points in zip(("small", "large"), keyframe_tails(media)):
        offsets = [k["offset"] for k in points]
        f.write("%s %d\n" % (mix, offsets[0]))
        for variant, request in requests.items():
            write_wrk_script("%s/%s_%s.lua" % (work, mix, variant), offsets, request)
PY

# With two or more cores, lighttpd and wrk get a core each, so they do not
# steal each other's time slices.
bench_pinning
reserve_port port
cat >"$work/lighttpd.conf" <<EOF
server.document-root = "$work/media"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$work/error.log"
server.modules = ("mod_alias", "mod_pseudostream")
server.max-keep-alive-requests = 1000000
server.network-backend = "sendfile"
mimetype.assign = (".flv" => "video/x-flv")
alias.url = ("/ps/" => "$work/media/", "/ps-init/" => "$work/media/",
             "/static/" => "$work/media/")
\$HTTP["url"] =^ "/ps/" {
    pseudostream.extensions = (".flv")
    pseudostream.prefix = "none"
    pseudostream.start-unit = "bytes"
    pseudostream.metadata = "off"
}
\$HTTP["url"] =^ "/ps-init/" {
    pseudostream.extensions = (".flv")
}
EOF
lighttpd -tt -m "$work/modules" -f "$work/lighttpd.conf" >"$work/check.out" 2>&1 || {
    echo "bench-lighttpd: lighttpd -tt rejects $work/lighttpd.conf:" >&2
    cat "$work/check.out" >&2
    exit 1
}
"${pin_server[@]}" lighttpd -D -m "$work/modules" -f "$work/lighttpd.conf" >"$work/lighttpd.out" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true' EXIT
wait_listening "$port" lighttpd "$server" || {
    echo "bench-lighttpd: lighttpd did not start:" >&2
    cat "$work/lighttpd.out" "$work/error.log" >&2 2>/dev/null || true
    exit 1
}

# The module's body must be the static 206 body, byte for byte.
url=http://127.0.0.1:$port
while read -r mix offset; do
    ps=$(curl -sS -o "$work/body/$mix.ps" -w '%{http_code}' "$url/ps/bench.flv?start=$offset")
    st=$(curl -sS -o "$work/body/$mix.static" -w '%{http_code}' -H "Range: bytes=$offset-" \
        "$url/static/bench.flv")
    if [[ $ps != 200 || $st != 206 ]] || ! cmp -s "$work/body/$mix.ps" "$work/body/$mix.static"; then
        echo "bench-lighttpd: $mix tail from $offset: module ($ps, $(stat -c %s "$work/body/$mix.ps") bytes)" \
            "differs from static Range ($st, $(stat -c %s "$work/body/$mix.static") bytes)" >&2
        cmp "$work/body/$mix.ps" "$work/body/$mix.static" >&2 || true
        exit 1
    fi
    init=$(curl -sS -o "$work/body/$mix.init" -w '%{http_code}' "$url/ps-init/bench.flv?start=$offset")
    if [[ $init != 200 || $(head -c 3 "$work/body/$mix.init") != FLV ]]; then
        echo "bench-lighttpd: /ps-init/ $mix tail from $offset: $init, no FLV header" >&2
        exit 1
    fi
done <"$work/offsets.txt"
rm -rf "$work/body"

run() { # mix -> "req/s bytes/s"; stops on script errors and non-2xx answers
    wrk_rate "$url" "$work/$1.lua" && return
    kill -0 "$server" 2>/dev/null || {
        echo "bench-lighttpd: lighttpd (pid $server) is gone; its error.log ends:" >&2
        tail -n 5 "$work/error.log" >&2
    }
    exit 1
}
# per-round ratios of column $3 of file $1 over file $2, one a line
ratios() { paste -d' ' "$1" "$2" | awk -v c="$3" '{print $c / $(c + 2)}'; }

# Warm the index cache and the page cache.
for m in small_ps large_ps small_init large_init small_static; do
    "${pin_client[@]}" wrk -t1 -c2 -d1s -s "$work/$m.lua" "$url" >/dev/null 2>&1
done

for mix in small large; do
    for v in static ps init; do : >"$work/$mix.$v.txt"; done
    # Each round starts with the next variant, so none always runs first.
    order=(static ps init)
    for _ in $(seq "$rounds"); do
        for v in "${order[@]}"; do run "${mix}_$v" >>"$work/$mix.$v.txt"; done
        order=("${order[@]:1}" "${order[0]}")
    done
done

printf '%-12s %12s %12s %7s %7s %12s %12s %7s %7s\n' \
    mix "static req/s" "module req/s" ratio paired "static MB/s" "module MB/s" ratio paired
for mix in small large; do
    sr=$(cut -d' ' -f1 "$work/$mix.static.txt" | median)
    st=$(cut -d' ' -f2 "$work/$mix.static.txt" | median)
    for v in ps init; do
        f=$work/$mix.$v.txt
        mr=$(cut -d' ' -f1 "$f" | median)
        mt=$(cut -d' ' -f2 "$f" | median)
        pr=$(ratios "$f" "$work/$mix.static.txt" 1 | median)
        pt=$(ratios "$f" "$work/$mix.static.txt" 2 | median)
        name=$mix
        [[ $v == init ]] && name="$mix (init)"
        awk -v m="$name" -v sr="$sr" -v mr="$mr" -v st="$st" -v mt="$mt" -v pr="$pr" -v pt="$pt" 'BEGIN {
            printf "%-12s %12.0f %12.0f %6.2fx %6.2fx %12.1f %12.1f %6.2fx %6.2fx\n",
                m, sr, mr, mr / sr, pr, st / 1048576, mt / 1048576, mt / st, pt }'
    done
done
echo "(median of $rounds runs of ${secs}s each; ratio: of the medians, paired: median of the" \
    "per-round ratios; target 0.95x or better; init rows informative)"
echo "(wrk -t2 -c16${pin_client[*]:+ on core 0}; one lighttpd process${pin_server[*]:+ on core 1}; $(nproc) cores)"
if grep -vE 'server started|server stopped|[Gg]raceful' "$work/error.log" >"$work/errors.log" 2>/dev/null \
    && [[ -s $work/errors.log ]]; then
    echo "bench-lighttpd: lighttpd logged (see $work/error.log):" >&2
    head -n 20 "$work/errors.log" >&2
fi
