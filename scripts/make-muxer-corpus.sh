#!/usr/bin/env bash
# Make a corpus of files written by other muxers than ffmpeg into OUTDIR (e.g.
# target/muxer-corpus), for tests/muxer_corpus.rs. Nothing here is committed.
#
# One H.264 stream underlies them all: 12 s of ffmpeg's testsrc2 at 320x180,
# 25 fps, encoded by the x264 CLI with an IDR picture every 2 s and, forced
# by a qpfile, a non-IDR I picture halfway through every GOP (at 1 s, 3 s,
# ... 11 s). A decoder cannot start at those: they reference nothing, but
# the B-frames after them reference pictures before them. GStreamer's
# h264parse flags every I picture as a keyframe, so its muxers list those
# six as seek points. Audio: 12 s of AAC from a beeping sine.
#
#   x264.flv          the x264 CLI's own FLV writer (video only; flags only
#                     its IDR pictures)
#   x264.intra-refresh.flv
#                     the x264 CLI with --intra-refresh: no IDR after the
#                     first picture; it flags its recovery points (SEI
#                     recovery_frame_cnt 21), the stream's only random
#                     access points
#   ffmpeg.intra-refresh.mp4
#                     ffmpeg's remux of it: the flags become its stss
#   gst.flv           GStreamer flvmux (its keyframe index points at audio)
#   gst.yamdi.flv     yamdi on gst.flv: onMetaData keyframes list all twelve
#   gst.flvmeta.flv   flvmeta --update on gst.flv: the same, as flvmeta does it
#   gst.mov           GStreamer qtmux: QuickTime, moov after mdat
#   gst.mp4           GStreamer mp4mux faststart=true: moov first
#   gst.frag.mp4      GStreamer mp4mux fragment-duration=2000: a fragment
#                     starts at every flagged picture
#   gst.ap.mp4        AtomicParsley --title on gst.mp4
#   ffmpeg.mp4        ffmpeg's remux of x264.flv + the audio (ffmpeg flags
#                     only IDR pictures): the control
#   tail.mp4          ffmpeg: the video + 16 s of audio, which outlasts it
#   resolution-change.flv
#                     a recording whose resolution changes at 6 s: two
#                     ffmpeg FLVs (320x180, then 640x360) spliced tag by tag,
#                     the second's AVC and AAC sequence headers right before
#                     its first keyframe, as recorders write them
#   resolution-change.yamdi.flv
#                     yamdi on it: seeks come from metadata, which does not
#                     say where the configuration changes
#
# OUTDIR/manifest.txt lists: file muxer flagged_non_idr has_audio refresh
# (refresh: idr, or gradual for the intra-refresh files)
set -euo pipefail

die() { echo "make-muxer-corpus: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
outdir=$1
for c in ffmpeg ffprobe x264 gst-launch-1.0 yamdi flvmeta AtomicParsley; do
  command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run scripts/setup-deps.sh)"
done
mkdir -p "$outdir"
work=$(mktemp -d "$outdir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS

ffmpeg -nostdin -v error -f lavfi -i testsrc2=size=320x180:rate=25:duration=12 \
  -pix_fmt yuv420p -f yuv4mpegpipe "$work/video.y4m"
for frame in $(seq 25 50 299); do echo "$frame i"; done >"$work/qpfile"
x264 --quiet --keyint 50 --min-keyint 50 --scenecut 0 --qpfile "$work/qpfile" \
  --fps 25 -o "$work/x264.flv" "$work/video.y4m" 2>/dev/null
x264 --quiet --keyint 50 --intra-refresh --fps 25 -o "$work/x264.intra-refresh.flv" \
  "$work/video.y4m" 2>/dev/null
for secs in 12 16; do
  ffmpeg -nostdin -v error -f lavfi -i "sine=f=440:beep_factor=4:d=$secs" -ac 1 \
    -c:a aac -b:a 64k -f adts "$work/audio$secs.aac"
done

# Two FLVs of different sizes, joined tag by tag (no script tags); the
# second's timestamps follow the first's last.
for part in 320x180:440 640x360:660; do
  ffmpeg -nostdin -v error -f lavfi -i "testsrc2=size=${part%:*}:rate=25:duration=6" \
    -f lavfi -i "sine=f=${part#*:}:beep_factor=4:d=6" -c:v libx264 -preset veryfast -g 50 \
    -c:a aac -ac 1 -b:a 64k "$work/part-${part%:*}.flv"
done
python3 - "$work/part-320x180.flv" "$work/part-640x360.flv" "$work/resolution-change.flv" <<'PY'
import struct, sys

def media_tags(path):
    d = open(path, "rb").read()
    pos = struct.unpack(">I", d[5:9])[0] + 4
    while pos + 11 <= len(d):
        size = int.from_bytes(d[pos + 1:pos + 4], "big")
        ts = int.from_bytes(d[pos + 4:pos + 7], "big") | (d[pos + 7] << 24)
        if d[pos] & 0x1F in (8, 9):
            yield d[pos] & 0x1F, ts, d[pos + 11:pos + 11 + size]
        pos += 11 + size + 4

def tag(kind, ts, body):
    return (bytes([kind]) + len(body).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big")
            + bytes([ts >> 24]) + b"\0\0\0" + body + struct.pack(">I", len(body) + 11))

first, second, out = sys.argv[1:4]
data = bytearray(b"FLV\x01\x05" + struct.pack(">I", 9) + b"\0\0\0\0")
shift = 0
for kind, ts, body in media_tags(first):
    data += tag(kind, ts, body)
    shift = max(shift, ts + 40)
for kind, ts, body in media_tags(second):
    data += tag(kind, ts + shift, body)
open(out, "wb").write(bytes(data))
PY
yamdi -i "$work/resolution-change.flv" -o "$work/resolution-change.yamdi.flv"

# GStreamer: the video as the x264 CLI wrote it (flvdemux gives it its
# timestamps), parsed by h264parse, and the AAC, into MUXER.
gst_mux() {
  local muxer=$1 out=$2
  # shellcheck disable=SC2086 # the muxer and its properties are words
  gst-launch-1.0 -q \
    filesrc location="$work/x264.flv" ! flvdemux ! h264parse ! queue ! m. \
    filesrc location="$work/audio12.aac" ! aacparse ! queue ! m. \
    $muxer name=m ! filesink location="$work/$out" >/dev/null \
    || die "gst-launch-1.0 with $muxer failed"
}
gst_mux "flvmux streamable=false" gst.flv
gst_mux qtmux gst.mov
gst_mux "mp4mux faststart=true" gst.mp4
gst_mux "mp4mux fragment-duration=2000" gst.frag.mp4
yamdi -i "$work/gst.flv" -o "$work/gst.yamdi.flv"
flvmeta --update "$work/gst.flv" "$work/gst.flvmeta.flv" >/dev/null
AtomicParsley "$work/gst.mp4" --title "muxer corpus" -o "$work/gst.ap.mp4" >/dev/null
ffmpeg -nostdin -v error -i "$work/x264.flv" -i "$work/audio12.aac" -map 0:v -map 1:a \
  -c copy "$work/ffmpeg.mp4"
ffmpeg -nostdin -v error -i "$work/x264.flv" -i "$work/audio16.aac" -map 0:v -map 1:a \
  -c copy "$work/tail.mp4"
ffmpeg -nostdin -v error -i "$work/x264.intra-refresh.flv" -i "$work/audio12.aac" \
  -map 0:v -map 1:a -c copy "$work/ffmpeg.intra-refresh.mp4"

# file muxer flagged_non_idr has_audio refresh
manifest="x264.flv x264-cli 0 0 idr
x264.intra-refresh.flv x264-cli 0 0 gradual
ffmpeg.intra-refresh.mp4 ffmpeg 0 1 gradual
gst.flv gstreamer-flvmux 6 1 idr
gst.yamdi.flv gstreamer-flvmux+yamdi 6 1 idr
gst.flvmeta.flv gstreamer-flvmux+flvmeta 6 1 idr
gst.mov gstreamer-qtmux 6 1 idr
gst.mp4 gstreamer-mp4mux 6 1 idr
gst.frag.mp4 gstreamer-mp4mux-fragmented 6 1 idr
gst.ap.mp4 gstreamer-mp4mux+atomicparsley 6 1 idr
ffmpeg.mp4 ffmpeg 0 1 idr
tail.mp4 ffmpeg-audio-outlasts-video 0 1 idr
resolution-change.flv spliced-ffmpeg-flvs 0 1 idr
resolution-change.yamdi.flv spliced-ffmpeg-flvs+yamdi 0 1 idr"

# Every file must decode cleanly as a whole: a fault found later is ours.
while read -r file _; do
  err=$(ffmpeg -nostdin -v error -i "$work/$file" -f null - 2>&1) || die "$file does not decode: $err"
  [[ -z $err ]] || die "$file decodes with errors: $err"
done <<<"$manifest"

while read -r file _; do
  mv -f "$work/$file" "$outdir/$file"
done <<<"$manifest"
{
  echo "# file muxer flagged_non_idr has_audio refresh (scripts/make-muxer-corpus.sh)"
  echo "$manifest"
} >"$outdir/manifest.txt.tmp.$$"
mv -f "$outdir/manifest.txt.tmp.$$" "$outdir/manifest.txt"
echo "make-muxer-corpus: $(wc -l <<<"$manifest") files + manifest.txt in $outdir ($((SECONDS - started)) s)"
