# Sourced by the test and benchmark scripts that run servers: a port for a
# server, waiting for it, nginx started and stopped under a prefix, wrk,
# CPU pinning and medians. Needs `set -euo pipefail` in the caller.

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

# bench_flv PATH: a 10-minute FLV with a keyframe every 2 s at PATH, made
# once and kept between runs.
bench_flv() {
  [[ -s $1 ]] || SAMPLE_DURATION=600 ./scripts/make-sample.sh "$1" >/dev/null
}
