#!/usr/bin/env bash
# Benchmark: the cost of pacing many viewers in one nginx worker, nginx's own
# `limit_rate` against `pseudostream_rate` (the library's pacer driven by
# ngx_http_pseudostream_module's timers), on loopback.
#
#   scripts/bench-nginx-pacing.sh [SECONDS_PER_RUN] [ROUNDS] [CONNECTIONS] [RATE]
#
# Defaults: 12 s runs, 3 rounds, 8000 connections, 10k (10 KiB/s each, so
# 78.1 MiB/s in all). One nginx worker serves a file large enough that no
# connection finishes within a run (the whole file, no query: the static
# module under `limit_rate`, the module with `pseudostream_burst 0` under
# `pseudostream_rate`); wrk opens every connection at once and reads until
# the run ends. Runs alternate between the two locations. For each run the
# script records the worker's CPU time (utime + stime from /proc/PID/stat,
# from just before wrk starts to one second after it ends, connection
# set-up and tear-down included), wrk's aggregate throughput, and the
# worker's own output rate over the middle of the run (wchar from
# /proc/PID/io between 3 s in and 1 s before the end: the steady state,
# without the connection ramp). Prints medians and the ratios.
#
# Bounded: every wrk run is capped with timeout(1), nginx listens on
# 127.0.0.1 only and is stopped on exit. Not a test: it prints figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/servers.sh
bench_args secs=12 rounds=3 conns=8000 rate=10k -- "$@"

((secs >= 6)) || die "runs need at least 6 s (the steady window starts 3 s in)"

case $rate in
    *[kK]) rate_bytes=$((${rate%[kK]} * 1024)) ;;
    *[mM]) rate_bytes=$((${rate%[mM]} * 1048576)) ;;
    *) rate_bytes=$rate ;;
esac

make --no-print-directory nginx-module >/dev/null
need_wrk

# nginx starts closing idle connections (those still waiting for their
# request) when fewer than 1/16 of worker_connections are free: keep well
# clear of that. Descriptors: one per connection on each side, plus a margin;
# only the soft limit is raised (a container's root may not raise the hard).
worker_conns=$((conns + conns / 8 + 512))
need_fd=$((worker_conns + 1024))
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < need_fd)); then
    die "$conns connections need $need_fd descriptors; the hard limit is $hard"
fi
ulimit -Sn "$need_fd"

work=$(pwd)/target/bench-nginx-pacing
rm -rf "$work/tmp" "$work"/*.log "$work"/*.txt
mkdir -p "$work/media" "$work/tmp"

# A file no connection reaches the end of: bytes for the run plus a margin.
min_size=$((rate_bytes * (secs + 10)))
media=$work/media/bench.flv
shared=target/bench-nginx/media/bench.flv
# bench-nginx.sh's FLV, when that has made one.
[[ -s $media || ! -s $shared ]] || cp "$shared" "$media"
bench_flv "$media"
size=$(stat -c %s "$media")
((size > min_size)) || die "$media has $size bytes; a run needs more than $min_size"
cat "$media" >/dev/null   # into the page cache

bench_pinning
reserve_port port
cat >"$work/nginx.conf" <<EOF
$(nginx_conf_head "$work")
worker_rlimit_nofile $need_fd;
events { worker_connections $worker_conns; multi_accept on; }
http {
    $(nginx_http_head "$work")
    types { video/x-flv flv; }
    keepalive_timeout 0;
    send_timeout 60s;
    server {
        listen 127.0.0.1:$port backlog=$((conns + 512));
        location /limit/ { alias $work/media/; limit_rate $rate; }
        location /paced/ { alias $work/media/; pseudostream; pseudostream_rate $rate; pseudostream_burst 0; }
    }
}
EOF
nginx_start "$work" "$work/nginx.conf" "$port"
trap 'nginx_stop "$work" "$work/nginx.conf"' EXIT
master=$(cat "$work/nginx.pid")
worker=$(pgrep -P "$master" | head -n 1)
[[ -n $worker ]] || die "no nginx worker"

# A small Range request each: both locations serve the file.
for loc in limit paced; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -r 0-99 "http://127.0.0.1:$port/$loc/bench.flv")
    [[ $code == 206 ]] || die "/$loc/bench.flv answered $code to a Range request"
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$worker/stat"; }
wchar() { awk '/^wchar:/ {print $2}' "/proc/$worker/io"; }
ticks=$(getconf CLK_TCK)

run() { # location -> "cpu_s wrk_MiB/s steady_MiB/s"
    local loc=$1 out c0 c1 w0 w1 t0 t1 pid
    # No connection left over from the previous run.
    for _ in $(seq 100); do
        (($(ss -Htn state established "( sport = :$port )" | wc -l) == 0)) && break
        sleep 0.1
    done
    c0=$(cpu_ticks)
    timeout $((secs + 60)) "${pin_client[@]}" wrk -t2 -c"$conns" -d"${secs}s" --timeout 120s \
        "http://127.0.0.1:$port/$loc/bench.flv" >"$work/wrk.txt" 2>&1 &
    pid=$!
    sleep 3
    w0=$(wchar); t0=$(date +%s.%N)
    sleep $((secs - 4))
    w1=$(wchar); t1=$(date +%s.%N)
    wait "$pid" || true
    sleep 1
    c1=$(cpu_ticks)
    out=$(cat "$work/wrk.txt")
    grep -q 'Transfer/sec' <<<"$out" || { echo "$out" >&2; die "wrk run of /$loc/ failed"; }
    # Every connection opened once and kept: no connect errors, no server
    # closes (wrk counts a response cut short as a read error; the few at
    # the very end, while wrk stops, are allowed).
    if awk '/Socket errors/ {gsub(",",""); if ($4 > 0 || $6 > c / 100) bad=1} END {exit !bad}' \
        c="$conns" <<<"$out"; then
        echo "$out" >&2
        die "wrk lost connections in the run of /$loc/ (see $work/error.log)"
    fi
    awk -v c0="$c0" -v c1="$c1" -v hz="$ticks" -v w0="$w0" -v w1="$w1" -v t0="$t0" -v t1="$t1" '
        /Transfer\/sec/ {t=$2; u=t; sub(/[0-9.]+/,"",u); v=t+0;
            if (u=="KB") v/=1024; else if (u=="GB") v*=1024; else if (u=="B") v/=1048576}
        END {printf "%.2f %.2f %.2f\n", (c1-c0)/hz, v, (w1-w0)/(t1-t0)/1048576}' <<<"$out"
}

target=$(awk -v r="$rate_bytes" -v c="$conns" 'BEGIN {printf "%.2f", r*c/1048576}')
echo "pacing $conns connections at $rate ($rate_bytes B/s each, $target MiB/s in all), ${secs} s runs, $rounds rounds"
printf '%-6s %-13s %9s %12s %14s\n' round mode "CPU s" "wrk MiB/s" "steady MiB/s"
: >"$work/limit.txt"
: >"$work/paced.txt"
for round in $(seq "$rounds"); do
    for loc in limit paced; do
        r=$(run "$loc")
        echo "$r" >>"$work/$loc.txt"
        read -r cpu mib steady <<<"$r"
        printf '%-6s %-13s %9s %12s %14s\n' "$round" "$([[ $loc == limit ]] && echo limit_rate || echo pseudostream)" "$cpu" "$mib" "$steady"
    done
done

col() { cut -d' ' -f"$2" "$work/$1.txt" | median; }
lc=$(col limit 1); lm=$(col limit 2); ls_=$(col limit 3)
pc=$(col paced 1); pm=$(col paced 2); ps_=$(col paced 3)
echo
printf '%-13s %9s %12s %10s %14s %10s\n' median "CPU s" "wrk MiB/s" "of target" "steady MiB/s" "of target"
awk -v t="$target" -v lc="$lc" -v lm="$lm" -v ls="$ls_" -v pc="$pc" -v pm="$pm" -v ps="$ps_" 'BEGIN {
    printf "%-13s %9.2f %12.2f %9.1f%% %14.2f %9.1f%%\n", "limit_rate", lc, lm, 100*lm/t, ls, 100*ls/t
    printf "%-13s %9.2f %12.2f %9.1f%% %14.2f %9.1f%%\n", "pseudostream", pc, pm, 100*pm/t, ps, 100*ps/t
    printf "ratio pseudostream / limit_rate: CPU %.2fx, throughput %.3fx\n", pc/lc, pm/lm }'
echo "(one nginx worker${nginx_affinity:+ on core 1}, wrk -t2 -c$conns${pin_client[*]:+ on core 0}; $(nproc) cores; $(nginx -v 2>&1 | sed 's/.*\///'))"
