#!/usr/bin/env bash
# Generate the FLV integration-test media matrix into OUTDIR (e.g.
# target/test-media). Files that already exist are kept, so reruns are fast.
#
#   KIND.plain.flv    ffmpeg output, onMetaData without keyframe index
#   KIND.yamdi.flv    yamdi -i KIND.plain.flv -o ...
#   KIND.flvmeta.flv  flvmeta --update KIND.plain.flv ... (keyframes object)
#   KIND.ffidx.flv    ffmpeg -c copy -flvflags add_keyframe_index
#   stale.flv         h264_aac.yamdi.flv + an extra onCuePoint tag inserted
#                     after onMetaData: every keyframes.filepositions entry
#                     (and filesize) is off by the inserted tag's size
#   long_ts.flv       h264 + aac, -output_ts_offset 5 with keyframe index:
#                     media tags start at ~5 s (AVC/AAC sequence headers stay
#                     at 0) but ffmpeg writes keyframes.times WITHOUT the offset
#   long_ts.yamdi.flv yamdi on long_ts.flv (times match tag timestamps)
#
# KINDs: h264_aac flv1_mp3 audio_only audio_only_mp3 video_only bframes
# OUTDIR/manifest.txt lists: file kind variant has_audio has_video meta_keyframes
set -euo pipefail

die() { echo "make-test-media: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
outdir=$1
for c in ffmpeg ffprobe yamdi flvmeta python3; do
  command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run scripts/setup-deps.sh)"
done
mkdir -p "$outdir"

# Resolve the real interpreter once (pyenv-style shims are slow to start).
py=$(python3 -c 'import sys; print(sys.executable)')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tool=$work/flvtool.py

# ---------------------------------------------------------------- helpers --
cat >"$tool" <<'PY'
import os, struct, sys

def read_tags(data):
    if data[:3] != b"FLV":
        raise SystemExit("not an FLV file")
    pos = struct.unpack(">I", data[5:9])[0] + 4
    tags = []
    while pos + 11 <= len(data):
        ttype = data[pos] & 0x1F
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | (data[pos + 7] << 24)
        end = pos + 11 + size
        if end + 4 > len(data):
            raise SystemExit("truncated tag at %d" % pos)
        prev = struct.unpack(">I", data[end:end + 4])[0]
        if prev != size + 11:
            raise SystemExit("bad PreviousTagSize after tag at %d" % pos)
        tags.append((pos, ttype, ts, data[pos + 11:end]))
        pos = end + 4
    return tags

def amf_value(b, i):
    t = b[i]
    i += 1
    if t == 0:
        return struct.unpack(">d", b[i:i + 8])[0], i + 8
    if t == 1:
        return b[i] != 0, i + 1
    if t == 2:
        n = struct.unpack(">H", b[i:i + 2])[0]
        return b[i + 2:i + 2 + n].decode("utf-8", "replace"), i + 2 + n
    if t in (3, 8):
        if t == 8:
            i += 4
        obj = {}
        while True:
            n = struct.unpack(">H", b[i:i + 2])[0]
            i += 2
            if n == 0 and b[i] == 9:
                return obj, i + 1
            key = b[i:i + n].decode("utf-8", "replace")
            obj[key], i = amf_value(b, i + n)
    if t == 10:
        n = struct.unpack(">I", b[i:i + 4])[0]
        i += 4
        arr = []
        for _ in range(n):
            v, i = amf_value(b, i)
            arr.append(v)
        return arr, i
    if t == 11:
        return struct.unpack(">d", b[i:i + 8])[0], i + 10
    if t in (5, 6):
        return None, i
    raise ValueError("unsupported AMF0 type %d" % t)

def amf_string(s):
    raw = s.encode()
    return b"\x02" + struct.pack(">H", len(raw)) + raw

def amf_key(s):
    raw = s.encode()
    return struct.pack(">H", len(raw)) + raw

def info(path):
    data = open(path, "rb").read()
    tags = read_tags(data)
    starts = {t[0]: t for t in tags}
    vkeys = 0
    cts_nonzero = False
    for _, ttype, _, body in tags:
        if ttype == 9 and body:
            frame_type, codec = body[0] >> 4, body[0] & 0x0F
            if codec == 7 and len(body) >= 5:
                if body[1] != 1:
                    continue  # AVC sequence header / end of sequence
                if int.from_bytes(body[2:5], "big") != 0:
                    cts_nonzero = True
            if frame_type == 1:
                vkeys += 1

    def is_config(ttype, body):  # AVC/AAC sequence header or AVC end of sequence
        if ttype == 9 and body and body[0] & 0x0F == 7:
            return len(body) < 2 or body[1] != 1
        if ttype == 8 and body and body[0] >> 4 == 10:
            return len(body) < 2 or body[1] == 0
        return False
    media = [t[2] for t in tags if t[1] in (8, 9) and not is_config(t[1], t[3])]
    meta_kf = "none"
    kf_at_tags = "-"
    for _, ttype, _, body in tags:
        if ttype != 18:
            continue
        name, j = amf_value(body, 0)
        if name != "onMetaData":
            continue
        meta, _ = amf_value(body, j)
        kf = meta.get("keyframes") if isinstance(meta, dict) else None
        if isinstance(kf, dict) and isinstance(kf.get("filepositions"), list):
            fps = kf["filepositions"]
            meta_kf = str(len(fps))
            hit = sum(1 for p in fps if int(p) in starts and starts[int(p)][1] == 9)
            kf_at_tags = "%d/%d" % (hit, len(fps))
        break
    return {
        "size": len(data),
        "audio": int(any(t[1] == 8 for t in tags)),
        "video": int(any(t[1] == 9 for t in tags)),
        "tags": len(tags),
        "vkeys": vkeys,
        "meta_kf": meta_kf,
        "kf_at_tags": kf_at_tags,
        "first": min(media) if media else "-",
        "last": max(media) if media else "-",
        "cts": int(cts_nonzero),
    }

def summary(outdir, manifest, entries):
    rows = ["# file kind variant has_audio has_video meta_keyframes"]
    for entry in entries:
        fname, kind, variant = entry.split(":")
        i = info(outdir + "/" + fname)
        print("%-26s %7d B a=%d v=%d tags=%-4d ts=%s..%s ms video_keyframes=%-2d "
              "meta_keyframes=%-4s meta_pos_at_video_tag=%-5s cts_nonzero=%d"
              % (fname, i["size"], i["audio"], i["video"], i["tags"], i["first"],
                 i["last"], i["vkeys"], i["meta_kf"], i["kf_at_tags"], i["cts"]))
        rows.append("%s %s %s %d %d %s" % (fname, kind, variant, i["audio"],
                                           i["video"], i["meta_kf"]))
    tmp = "%s.tmp.%d" % (manifest, os.getpid())
    with open(tmp, "w") as f:
        f.write("\n".join(rows) + "\n")
    os.replace(tmp, manifest)

def stale(src, dst, pad):
    data = open(src, "rb").read()
    tags = read_tags(data)
    first = tags[0]
    name, _ = amf_value(first[3], 0)
    if first[1] != 18 or name != "onMetaData":
        raise SystemExit("first tag of %s is not onMetaData" % src)
    # A cue point event at t=0 with a padding parameter; players ignore it.
    body = amf_string("onCuePoint") + b"\x03"
    body += amf_key("name") + amf_string("stale-index-padding")
    body += amf_key("time") + b"\x00" + struct.pack(">d", 0.0)
    body += amf_key("type") + amf_string("event")
    body += amf_key("parameters") + b"\x03"
    body += amf_key("padding") + amf_string("x" * pad)
    body += b"\x00\x00\x09" + b"\x00\x00\x09"
    header = bytes([18]) + len(body).to_bytes(3, "big") + b"\x00" * 7
    tag = header + body + struct.pack(">I", len(body) + 11)
    cut = first[0] + 11 + len(first[3]) + 4
    out = data[:cut] + tag + data[cut:]
    # Entry 0 (the tag right after onMetaData) now points at the inserted
    # script tag; no entry may still point at a video tag.
    video_starts = {t[0] for t in read_tags(out) if t[1] == 9}
    meta, _ = amf_value(first[3], len(amf_string("onMetaData")))
    for p in meta["keyframes"]["filepositions"]:
        if int(p) in video_starts:
            raise SystemExit("stale position %d still hits a video tag" % p)
    open(dst, "wb").write(out)
    print(len(tag))

if __name__ == "__main__":
    if sys.argv[1] == "summary":
        summary(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1] == "stale":
        stale(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit("unknown command")
PY

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

# Common deterministic output options.
bitexact=(-fflags +bitexact -flags +bitexact -threads 1 -map_metadata -1)

# Run CMD... writing to a temp file, then move it to OUT (skip if OUT exists).
# The literal argument @OUT@ in CMD is replaced by the temp path.
produce() {
  local out=$1; shift
  [[ -s $out ]] && return 0
  local tmp="$out.tmp.$$.flv" args=() a
  for a in "$@"; do
    [[ $a == @OUT@ ]] && args+=("$tmp") || args+=("$a")
  done
  if ! "${args[@]}" >"$work/$(basename "$out").log" 2>&1 || [[ ! -s $tmp ]]; then
    cat "$work/$(basename "$out").log" >&2
    rm -f "$tmp"
    die "failed to produce $out"
  fi
  mv -f "$tmp" "$out"
}

video_src() { # SIZE DURATION
  echo "testsrc2=size=$1:rate=25:duration=$2"
}
audio_src() { # RATE DURATION
  echo "sine=frequency=440:beep_factor=4:sample_rate=$1:duration=$2"
}

# Encoder arguments per kind (inputs are added by encode_plain).
x264_common=(-c:v libx264 -preset veryfast -pix_fmt yuv420p -sc_threshold 0
             -x264-params threads=1:lookahead-threads=1)
kinds=(h264_aac flv1_mp3 audio_only audio_only_mp3 video_only bframes)

encode_plain() { # KIND OUT
  local kind=$1 out=$2 v a
  case $kind in
    h264_aac) # regular 1 s GOP, no B-frames (composition time 0)
      v=$(video_src 320x240 15); a=$(audio_src 44100 15)
      ff -f lavfi -i "$v" -f lavfi -i "$a" -map 0:v -map 1:a \
        "${x264_common[@]}" -profile:v main -bf 0 -g 25 -keyint_min 25 -crf 30 \
        -c:a aac -b:a 48k -ac 1 "${bitexact[@]}" -f flv "$out" ;;
    flv1_mp3) # Sorenson H.263 + MP3 22050 Hz, 2 s GOP
      v=$(video_src 160x120 12); a=$(audio_src 22050 12)
      ff -f lavfi -i "$v" -f lavfi -i "$a" -map 0:v -map 1:a \
        -c:v flv -q:v 8 -g 50 -c:a libmp3lame -b:a 32k -ac 1 -ar 22050 \
        "${bitexact[@]}" -f flv "$out" ;;
    audio_only)
      a=$(audio_src 44100 12)
      ff -f lavfi -i "$a" -c:a aac -b:a 48k -ac 2 "${bitexact[@]}" -f flv "$out" ;;
    audio_only_mp3)
      a=$(audio_src 44100 12)
      ff -f lavfi -i "$a" -c:a libmp3lame -b:a 64k -ac 2 "${bitexact[@]}" -f flv "$out" ;;
    video_only) # irregular keyframe spacing: 0 0.4 1.8 2.2 5 5.5 8.7 9 11.2 s
      v=$(video_src 160x120 13)
      ff -f lavfi -i "$v" "${x264_common[@]}" -profile:v baseline -bf 0 \
        -g 1000 -keyint_min 1 -force_key_frames 0,0.4,1.8,2.2,5,5.5,8.7,9,11.2 \
        -crf 30 -an "${bitexact[@]}" -f flv "$out" ;;
    bframes) # high profile, 3 B-frames => non-zero composition time offsets
      v=$(video_src 320x240 12); a=$(audio_src 44100 12)
      ff -f lavfi -i "$v" -f lavfi -i "$a" -map 0:v -map 1:a \
        "${x264_common[@]}" -profile:v high -bf 3 -b_strategy 0 -g 40 -keyint_min 40 -crf 30 \
        -c:a aac -b:a 48k -ac 1 "${bitexact[@]}" -f flv "$out" ;;
    *) die "unknown kind $kind" ;;
  esac
}

gen_kind() { # KIND
  local kind=$1 plain="$outdir/$1.plain.flv"
  produce "$plain" encode_plain "$kind" @OUT@
  produce "$outdir/$kind.yamdi.flv" yamdi -i "$plain" -o @OUT@
  # flvmeta -U computes the full onMetaData (incl. keyframes.times and
  # keyframes.filepositions for files with video) and adds onLastSecond.
  produce "$outdir/$kind.flvmeta.flv" flvmeta --update "$plain" @OUT@
  produce "$outdir/$kind.ffidx.flv" ff -i "$plain" -map 0 -c copy \
    "${bitexact[@]}" -flvflags add_keyframe_index -f flv @OUT@
}

make_stale() { # IN OUT
  "$py" "$tool" stale "$1" "$2" 333 >/dev/null
}

gen_extra() {
  gen_kind h264_aac
  produce "$outdir/stale.flv" make_stale "$outdir/h264_aac.yamdi.flv" @OUT@
  local v a
  v=$(video_src 160x120 12); a=$(audio_src 44100 12)
  produce "$outdir/long_ts.flv" ff -f lavfi -i "$v" -f lavfi -i "$a" -map 0:v -map 1:a \
    "${x264_common[@]}" -profile:v main -bf 0 -g 25 -keyint_min 25 -crf 30 \
    -c:a aac -b:a 48k -ac 1 -output_ts_offset 5 "${bitexact[@]}" \
    -flvflags add_keyframe_index -f flv @OUT@
  produce "$outdir/long_ts.yamdi.flv" yamdi -i "$outdir/long_ts.flv" -o @OUT@
}

# ------------------------------------------------------------- generation --
start=$SECONDS
jobs_max=$(nproc 2>/dev/null || echo 2)
run_bg() { # run "$@" in the background, at most $jobs_max at a time
  while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n || true; done
  { ( "$@" ) || : >"$work/failed"; } &  # produce() dies on any failure
}
run_bg gen_extra   # h264_aac + stale + long_ts (depend on h264_aac)
for k in "${kinds[@]}"; do
  [[ $k == h264_aac ]] || run_bg gen_kind "$k"
done
wait
[[ ! -e $work/failed ]] || die "generation failed"

# stale.flv must still decode cleanly.
errs=$(ffmpeg -nostdin -hide_banner -v error -i "$outdir/stale.flv" -f null - 2>&1 || echo "ffmpeg failed")
[[ -z $errs ]] || die "stale.flv does not decode cleanly: $errs"

# ---------------------------------------------------------------- summary --
entries=()
for k in "${kinds[@]}"; do
  for var in plain yamdi flvmeta ffidx; do entries+=("$k.$var.flv:$k:$var"); done
done
entries+=(stale.flv:h264_aac:stale long_ts.flv:h264_aac:long_ts
          long_ts.yamdi.flv:h264_aac:long_ts_yamdi)
"$py" "$tool" summary "$outdir" "$outdir/manifest.txt" "${entries[@]}" \
  || die "summary failed"
echo "make-test-media: ${#entries[@]} files + manifest.txt in $outdir ($((SECONDS - start)) s)"
