# Sourced by the test and benchmark scripts that run servers: a port for a
# server, waiting for it, nginx started and stopped under a prefix, wrk,
# CPU pinning and medians, and what the benchmarks share (their arguments,
# nginx.conf, wrk runs and the table of a peer module against ours). Needs
# `set -euo pipefail` in the caller.

# die MESSAGE: MESSAGE on stderr, after the script's name; exits 1.
die() { echo "$(basename "$0" .sh): $*" >&2; exit 1; }

# bench_args NAME=DEFAULT... -- ARG...: sets each NAME to the ARG in its
# place, or to DEFAULT when that ARG is missing or empty. More ARGs than
# NAMEs is a usage error (the script's head tells its arguments).
bench_args() {
  # Locals carry a prefix, so that no NAME is one of them.
  local _ba_names=() _ba_defaults=() _ba_i _ba_value
  while [[ $1 != -- ]]; do
    _ba_names+=("${1%%=*}")
    _ba_defaults+=("${1#*=}")
    shift
  done
  shift
  (($# <= ${#_ba_names[@]})) || die "at most ${#_ba_names[@]} arguments (${_ba_names[*]}), not $#"
  for _ba_i in "${!_ba_names[@]}"; do
    _ba_value=${*:_ba_i+1:1}
    printf -v "${_ba_names[_ba_i]}" '%s' "${_ba_value:-${_ba_defaults[_ba_i]}}"
  done
}

# reserve_port VAR: sets VAR to a TCP port for a server, from just below the
# kernel's ephemeral range (no client socket is ever given one of them as
# its own port, so a readiness probe cannot connect to itself), reserved by
# a lock on $TMPDIR/pseudostream-test-ports/PORT held while this shell runs
# (the same locks the Rust tests take, so nothing run at the same time
# shares the port).
reserve_port() {
  # Locals carry a prefix: the caller's variable (a name reference) is
  # often called `port`.
  local -n _rp_out=$1
  local _rp_low _rp_high _rp_start _rp_span=10000 _rp_dir _rp_port _rp_i _rp_fd
  read -r _rp_low _rp_high </proc/sys/net/ipv4/ip_local_port_range
  if ((_rp_low >= 11024)); then
    _rp_start=$((_rp_low - _rp_span))
  elif ((_rp_high <= 55535)); then
    _rp_start=$((_rp_high + 1))
  else
    echo "reserve_port: the ephemeral range $_rp_low-$_rp_high leaves no room" >&2
    return 1
  fi
  _rp_dir=${TMPDIR:-/tmp}/pseudostream-test-ports
  mkdir -p "$_rp_dir"
  for ((_rp_i = 0; _rp_i < _rp_span; _rp_i++)); do
    _rp_port=$((_rp_start + ($$ * 7919 + _rp_i) % _rp_span))
    exec {_rp_fd}>>"$_rp_dir/$_rp_port" || continue
    if flock -n "$_rp_fd" && port_is_free "$_rp_port"; then
      _rp_out=$_rp_port
      return 0
    fi
    exec {_rp_fd}>&-
  done
  echo "reserve_port: no free port from $_rp_start" >&2
  return 1
}

# port_is_free PORT: nothing listens on PORT (on any address).
port_is_free() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
PY
}

# wait_listening PORT WHAT [PID]: waits up to 30 s until 127.0.0.1:PORT
# accepts a connection; fails at once when PID (if given) has exited.
wait_listening() {
  local port=$1 what=$2 pid=${3:-} i
  for ((i = 0; i < 600; i++)); do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      echo "$what exited before listening on port $port" >&2
      return 1
    fi
    (: >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$what did not listen on port $port within 30 s" >&2
  return 1
}

# nginx_temp_paths DIR: the http-level temp path directives, all under DIR.
nginx_temp_paths() {
  local t=$1
  echo "client_body_temp_path $t/body; proxy_temp_path $t/proxy;"
  echo "fastcgi_temp_path $t/fastcgi; uwsgi_temp_path $t/uwsgi; scgi_temp_path $t/scgi;"
}

# nginx_start PREFIX CONF PORT: starts nginx (daemonised) with CONF under
# PREFIX and waits for PORT; nginx_stop PREFIX CONF stops it and waits for
# its pid file to go.
nginx_start() {
  nginx -p "$1" -c "$2"
  wait_listening "$3" nginx || { tail -n 5 "$1/error.log" >&2 || true; return 1; }
}
nginx_stop() {
  [[ -s $1/nginx.pid ]] || return 0
  nginx -p "$1" -c "$2" -s stop 2>/dev/null || true
  local i
  for ((i = 0; i < 200; i++)); do
    [[ -e $1/nginx.pid ]] || return 0
    sleep 0.05
  done
  echo "nginx did not stop" >&2
  return 1
}

# need_wrk: installs wrk when it is missing.
need_wrk() {
  command -v wrk >/dev/null && return 0
  # shellcheck source=scripts/lib/apt.sh
  source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
  apt_install bench wrk
}

# bench_pinning: with two or more cores, the server gets core 1 and the
# load generator core 0, so they do not steal each other's time slices.
# Sets nginx_affinity (a directive, or empty), pin_server and pin_client
# (command prefixes, or empty arrays).
bench_pinning() {
  nginx_affinity="" pin_server=() pin_client=()
  if (($(nproc) >= 2)); then
    nginx_affinity="worker_cpu_affinity 10;"
    pin_server=(taskset -c 1)
    pin_client=(taskset -c 0)
  fi
}

# bench_tools: what the MP4 benchmarks run: the nginx module, wrk, ffmpeg,
# ffprobe, curl, python3 and the example CLI (its path in $cli).
bench_tools() {
  make --no-print-directory nginx-module >/dev/null
  need_wrk
  local tool
  for tool in ffmpeg ffprobe curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/setup-deps.sh)"
  done
  cargo build -q --release --example pseudostream
  cli=$(pwd)/target/release/examples/pseudostream
}

# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# round_medians PEER_FILE OURS_FILE: both files hold "req/s bytes/s" lines,
# one a round; prints the four medians: peer req/s, ours req/s, peer
# bytes/s, ours bytes/s.
round_medians() {
  echo "$(cut -d' ' -f1 "$1" | median) $(cut -d' ' -f1 "$2" | median)" \
    "$(cut -d' ' -f2 "$1" | median) $(cut -d' ' -f2 "$2" | median)"
}

# nginx_conf_head PREFIX: the first lines of a benchmark's nginx.conf: the
# module, one worker (pinned when bench_pinning pinned), pid and error log
# under PREFIX.
nginx_conf_head() {
  echo "load_module $(pwd)/target/nginx-build/objs/ngx_http_pseudostream_module.so;"
  echo "worker_processes 1;"
  echo "${nginx_affinity:-}"
  echo "pid $1/nginx.pid;"
  echo "error_log $1/error.log warn;"
}

# nginx_http_head PREFIX: the first lines of a benchmark's http block: no
# access log, the temp paths under PREFIX/tmp, sendfile and an open-file
# cache.
nginx_http_head() {
  echo "access_log off;"
  nginx_temp_paths "$1/tmp"
  echo "sendfile on;"
  echo "open_file_cache max=100 inactive=60s;"
}

# nginx_bench_conf PREFIX PORT TYPES LOCATION...: writes PREFIX/nginx.conf
# for a peer module against ours: nginx_conf_head's lines, nginx_http_head's,
# the `types` block's TYPES ("video/x-flv flv;") and one server on
# 127.0.0.1:PORT with the LOCATION blocks.
nginx_bench_conf() {
  local prefix=$1 port=$2 types=$3
  shift 3
  cat >"$prefix/nginx.conf" <<EOF
$(nginx_conf_head "$prefix")
events { worker_connections 1024; }
http {
    $(nginx_http_head "$prefix")
    types { $types }
    server {
        listen 127.0.0.1:$port backlog=1024;
$(printf '        %s\n' "$@")
    }
}
EOF
}

# wrk_rate URL [LUA]: a run of wrk -t2 -c16 (or $wrk_load's threads,
# connections and timeout) for $secs s at URL (through the LUA script, if
# given) on pin_client's core; prints "req/s bytes/s". Fails with wrk's
# output on a script error, a timeout or a non-2xx answer.
wrk_rate() {
  local out script=() load
  [[ -z ${2:-} ]] || script=(-s "$2")
  read -r -a load <<<"${wrk_load:--t2 -c16}"
  out=$("${pin_client[@]}" wrk "${load[@]}" -d"${secs}s" "${script[@]}" "$1" 2>&1) || true
  if ! grep -q 'Requests/sec' <<<"$out" || grep -qiE 'non-2xx|error' <<<"$out"; then
    echo "$(basename "$0" .sh): wrk run of $1${2:+ with $2} failed:" >&2
    echo "$out" >&2
    return 1
  fi
  awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2; u=t; sub(/[0-9.]+/,"",u); v=t+0;
       if (u=="KB") v*=1024; else if (u=="MB") v*=1048576; else if (u=="GB") v*=1073741824}
       END {printf "%s %.0f\n", r, v}' <<<"$out"
}

# paired_table PEER MIX...: a peer module (PEER, its location) against ours
# (location ps) in one nginx. For each MIX, $rounds rounds of `run MIX PEER`
# then `run MIX ps` (the caller's run prints wrk_rate's "req/s bytes/s"),
# kept in $work/MIX.PEER.txt and $work/MIX.ps.txt; a row of the medians of
# each and the ratios ours / PEER; last, how the runs ran.
paired_table() {
  local peer=$1 mix fr pr ft pt
  shift
  printf '%-8s %12s %12s %8s %14s %14s %8s\n' \
    mix "$peer req/s" "ours req/s" ratio "$peer MB/s" "ours MB/s" ratio
  for mix in "$@"; do
    : >"$work/$mix.$peer.txt"
    : >"$work/$mix.ps.txt"
    for _ in $(seq "$rounds"); do
      run "$mix" "$peer" >>"$work/$mix.$peer.txt"
      run "$mix" ps >>"$work/$mix.ps.txt"
    done
    read -r fr pr ft pt < <(round_medians "$work/$mix.$peer.txt" "$work/$mix.ps.txt")
    awk -v m="$mix" -v fr="$fr" -v pr="$pr" -v ft="$ft" -v pt="$pt" 'BEGIN {
      printf "%-8s %12.0f %12.0f %7.2fx %14.1f %14.1f %7.2fx\n",
        m, fr, pr, pr / fr, ft / 1048576, pt / 1048576, pt / ft }'
  done
  echo "(median of $rounds runs of ${secs}s each; wrk ${wrk_load:--t2 -c16}${pin_client[*]:+ on core 0};" \
    "one nginx worker${nginx_affinity:+ on core 1}; $(nproc) cores)"
}

# bench_flv PATH: a 10-minute FLV with a keyframe every 2 s at PATH, made
# once and kept between runs.
bench_flv() {
  [[ -s $1 ]] || SAMPLE_DURATION=600 ./scripts/make-sample.sh "$1" >/dev/null
}
