#!/usr/bin/env bash
# Benchmark: does one cold index build stall the nginx worker? One nginx
# worker serves a 1.5 GB, 7-hour FLV without keyframe metadata, dropped from
# the page cache before each run, so its first `?start=` request walks the
# whole file from disk; meanwhile a client on a keep-alive connection asks
# the same worker for a 3-byte static file, one request after another.
#
#   scripts/bench-nginx-indexing.sh [ROUNDS]
#
# Two configurations, alternating (which goes first alternates too), nginx
# restarted for each run (the index cache lives in the worker): "before"
# indexes in the worker (no `aio`), "after" has `aio threads;` and indexes
# in nginx's thread pool. Prints per run and as medians: the seek request's
# time to its response header (the index build is in it) and to its last
# byte, and the small requests in flight while the seek waited for its
# header: count, p50, p99, max. Not a test: it prints figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/servers.sh
rounds=${1:-3}

make --no-print-directory nginx-module >/dev/null

work=$(pwd)/target/bench-nginx-indexing
rm -rf "$work/tmp" "$work"/*.log "$work"/*.txt
mkdir -p "$work/media" "$work/static" "$work/tmp"
printf 'ok\n' >"$work/static/tiny.txt"

# The media, kept between runs: one minute of 320x240 H.264 + AAC at about
# 480 kbit/s (ffmpeg writes onMetaData without a keyframe index), its tags
# repeated with shifted timestamps to 7 hours.
media=$work/media/long.flv
if [[ ! -s $media ]]; then
    clip=$work/media/clip.flv
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=320x240:rate=25:duration=60" \
        -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=60" \
        -map 0:v -map 1:a -map_metadata -1 \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p \
        -b:v 420k -minrate 420k -maxrate 420k -bufsize 840k \
        -x264-params nal-hrd=cbr -g 50 -keyint_min 50 -sc_threshold 0 \
        -c:a aac -b:a 64k -ac 1 \
        -f flv "$clip"
    python3 - "$clip" "$media.tmp" 420 <<'PY'
import struct, sys
clip, out, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = open(clip, "rb").read()
head_len = struct.unpack(">I", b[5:9])[0]
pos = head_len + 4
meta, config, media = None, [], []
while pos + 11 <= len(b):
    kind = b[pos]
    size = int.from_bytes(b[pos + 1:pos + 4], "big")
    ts = int.from_bytes(b[pos + 4:pos + 7], "big") | b[pos + 7] << 24
    tag = b[pos:pos + 11 + size + 4]
    body = b[pos + 11:pos + 11 + size]
    if kind == 18:
        meta = bytearray(tag)
    elif (kind == 9 and body[0] & 15 == 7 and body[1] == 0) or \
         (kind == 8 and body[0] >> 4 == 10 and body[1] == 0):
        config.append(tag)          # codec configuration: once, at the start
    else:
        media.append((tag, ts))
    pos += 11 + size + 4
period = 60000
block = bytearray(b"".join(t for t, _ in media))
offsets, at = [], 0
for tag, ts in media:
    offsets.append((at, ts))
    at += len(tag)
total = head_len + 4 + len(meta) + sum(map(len, config)) + len(block) * copies

def set_number(buf, key, value):
    at = buf.find(struct.pack(">H", len(key)) + key + b"\x00")
    if at >= 0:
        struct.pack_into(">d", buf, at + 2 + len(key) + 1, value)

set_number(meta, b"duration", period * copies / 1000.0)
set_number(meta, b"filesize", float(total))
with open(out, "wb") as f:
    f.write(b[:head_len + 4])
    f.write(meta)
    f.writelines(config)
    for k in range(copies):
        shift = k * period
        for at, ts in offsets:
            t = ts + shift
            block[at + 4:at + 8] = bytes(((t >> 16) & 255, (t >> 8) & 255, t & 255, (t >> 24) & 255))
        f.write(block)
PY
    mv "$media.tmp" "$media"
    rm -f "$clip"
fi
size=$(stat -c %s "$media")
echo "media: $media ($size bytes)"

reserve_port port
write_conf() { # name, extra directives of the media location
    cat >"$work/$1.conf" <<CONF
$(nginx_conf_head "$work")
events { worker_connections 1024; }
http {
    access_log off;
    $(nginx_temp_paths "$work/tmp")
    types { video/x-flv flv; text/plain txt; }
    sendfile on;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port;
        location /media/ { alias $work/media/; pseudostream; $2 }
        location /static/ { alias $work/static/; }
    }
}
CONF
}
write_conf before ""
write_conf after "aio threads;"

stop_nginx() {
    [[ -s $work/nginx.pid ]] || return 0
    local pid
    pid=$(cat "$work/nginx.pid")
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$work/nginx.pid"
}
trap stop_nginx EXIT

# One run: a fresh nginx (empty index cache), the media dropped from the page
# cache, then the seek and the small requests. Prints one JSON line.
run() { # config
    nginx -p "$work" -c "$work/$1.conf"
    wait_listening "$port" nginx
    python3 - "$media" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
PY
    python3 - "$port" "/media/long.flv?start=$((size - 2000000))" /static/tiny.txt <<'PY'
import json, selectors, socket, sys, time

port, seek_target, small_target = int(sys.argv[1]), sys.argv[2], sys.argv[3]
now = time.perf_counter

def request(target):
    return ("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % target).encode()

class Exchange:
    """One HTTP/1.1 exchange after another on a keep-alive connection."""
    def __init__(self, target):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.target = target
    def send(self):
        self.buf = b""
        self.head = None
        self.sent = now()
        self.sock.sendall(request(self.target))
    def receive(self):
        """Reads what is there; returns True when the response is complete."""
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("connection closed by nginx")
        self.buf += chunk
        if self.head is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return False
            self.head_at = now()
            self.head = self.buf[:end].decode("latin-1")
            self.status = int(self.head.split(" ")[1])
            self.length = next(int(l.split(":")[1]) for l in self.head.split("\r\n")
                               if l.lower().startswith("content-length:"))
            self.buf = self.buf[end + 4:]
        if len(self.buf) < self.length:
            return False
        self.done = now()
        return True

sel = selectors.DefaultSelector()
small = Exchange(small_target)
sel.register(small.sock, selectors.EVENT_READ, small)
small.send()
seek = None
latencies = []       # (sent, done) of each small request
start = now()
while True:
    for key, _ in sel.select(timeout=1):
        ex = key.data
        if not ex.receive():
            continue
        if ex is small:
            if small.status != 200:
                raise SystemExit("small request: status %d" % small.status)
            latencies.append((small.sent, small.done))
            small.send()
        else:
            sel.unregister(seek.sock)
    # the small requests run alone for a second, then the seek goes out
    if seek is None and now() - start > 1.0:
        seek = Exchange(seek_target)
        sel.register(seek.sock, selectors.EVENT_READ, seek)
        seek.send()
    if seek is not None and getattr(seek, "done", None):
        break
if seek.status != 200:
    raise SystemExit("seek: status %d" % seek.status)
# small requests in flight at any time while the seek waited for its header
during = sorted(done - sent for sent, done in latencies
                if sent < seek.head_at and done > seek.sent)
def rank(p):
    return during[max(0, -(-len(during) * p // 100) - 1)] * 1000
print(json.dumps({
    "seek_header_s": seek.head_at - seek.sent, "seek_total_s": seek.done - seek.sent,
    "seek_bytes": seek.length, "n": len(during),
    "p50_ms": rank(50), "p99_ms": rank(99), "max_ms": during[-1] * 1000,
}))
PY
    stop_nginx
}

: >"$work/runs.txt"
printf '%-6s %-7s %14s %13s %9s %10s %10s %10s\n' run config "seek header s" "seek total s" "small n" "p50 ms" "p99 ms" "max ms"
for round in $(seq "$rounds"); do
    # which goes first alternates: a file read again soon comes faster (the
    # disk's own caches), whatever the page cache says
    order=(before after)
    ((round % 2)) || order=(after before)
    for config in "${order[@]}"; do
        line=$(run "$config")
        echo "$config $line" >>"$work/runs.txt"
        python3 -c '
import json, sys
r = json.loads(sys.argv[3])
print("%-6s %-7s %14.3f %13.3f %9d %10.2f %10.2f %10.2f" % (sys.argv[1], sys.argv[2],
      r["seek_header_s"], r["seek_total_s"], r["n"], r["p50_ms"], r["p99_ms"], r["max_ms"]))
' "$round" "$config" "$line"
    done
done
python3 - "$work/runs.txt" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    config, data = line.split(" ", 1)
    runs.setdefault(config, []).append(json.loads(data))
for config in ("before", "after"):
    rs = runs[config]
    med = lambda k: statistics.median(r[k] for r in rs)
    print("%-6s %-7s %14.3f %13.3f %9d %10.2f %10.2f %10.2f" % ("median", config,
          med("seek_header_s"), med("seek_total_s"), med("n"), med("p50_ms"), med("p99_ms"), med("max_ms")))
PY
echo "(one nginx worker, $(nproc) cores; $size-byte FLV, no keyframe metadata, dropped from the page cache before each run;"
echo " seek: ?start=$((size - 2000000)), one request on its own connection; small: a 3-byte static file, one"
echo " keep-alive request after another, counted while in flight before the seek's header arrived)"
