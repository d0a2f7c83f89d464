#!/usr/bin/env bash
# Generates the long FLVs the browser tests seek in, into OUTDIR (e.g.
# target/test-media/browser). Files that exist are kept, so reruns are free.
#
#   long.plain.flv  5 min of H.264 (320x180, 25 fps, keyframe every 2 s) +
#                   AAC (mono, 32 kbit/s) straight from ffmpeg's lavfi test
#                   sources: onMetaData has a duration but no keyframes
#   long.yamdi.flv  yamdi on long.plain.flv: onMetaData lists the keyframes
#   long.gstreamer.flv
#                   the same length through the x264 CLI (an IDR picture every
#                   2 s, a non-IDR I picture at every odd second, forced by a
#                   qpfile) and GStreamer's h264parse + flvmux, which flag
#                   both kinds as keyframes
#
# Cheap on purpose: x264 ultrafast at a small size encodes 5 minutes in a
# few seconds. SECONDS_LONG overrides the duration (for experiments only).
set -euo pipefail

die() { echo "make-browser-media: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
out=$1
duration=${SECONDS_LONG:-300}
for c in ffmpeg yamdi x264 gst-launch-1.0; do
  command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run scripts/setup-deps.sh)"
done
mkdir -p "$out"

plain=$out/long.plain.flv
yamdi=$out/long.yamdi.flv
tmp=$out/.tmp.$$.flv
parts=
trap 'rm -f "$tmp"; [[ -z $parts ]] || rm -rf "$parts"' EXIT

if [[ ! -s $plain ]]; then
  ffmpeg -nostdin -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=320x180:rate=25:duration=$duration" \
    -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=44100:duration=$duration" \
    -map 0:v -map 1:a -map_metadata -1 \
    -c:v libx264 -preset ultrafast -profile:v baseline -pix_fmt yuv420p -crf 32 \
    -g 50 -keyint_min 50 -sc_threshold 0 \
    -c:a aac -b:a 32k -ac 1 \
    -f flv "$tmp" || die "ffmpeg failed"
  mv -f "$tmp" "$plain"
fi
if [[ ! -s $yamdi ]]; then
  yamdi -i "$plain" -o "$tmp" || die "yamdi failed"
  mv -f "$tmp" "$yamdi"
fi
gst=$out/long.gstreamer.flv
if [[ ! -s $gst ]]; then
  parts=$(mktemp -d "$out/.gst.XXXXXX")
  for frame in $(seq 25 50 $((duration * 25 - 1))); do echo "$frame i"; done >"$parts/qpfile"
  ffmpeg -nostdin -hide_banner -loglevel error \
    -f lavfi -i "testsrc2=size=320x180:rate=25:duration=$duration" -pix_fmt yuv420p \
    -f yuv4mpegpipe - \
    | x264 --demuxer y4m --quiet --preset ultrafast --profile baseline --crf 32 --keyint 50 --min-keyint 50 \
        --scenecut 0 --qpfile "$parts/qpfile" --fps 25 -o "$parts/video.flv" - 2>/dev/null \
    || die "x264 failed"
  ffmpeg -nostdin -hide_banner -loglevel error \
    -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=44100:duration=$duration" \
    -c:a aac -b:a 32k -ac 1 -f adts "$parts/audio.aac" || die "ffmpeg failed"
  gst-launch-1.0 -q filesrc location="$parts/video.flv" ! flvdemux ! h264parse ! queue ! m. \
    filesrc location="$parts/audio.aac" ! aacparse ! queue ! m. \
    flvmux name=m streamable=false ! filesink location="$tmp" >/dev/null \
    || die "gst-launch-1.0 failed"
  rm -rf "$parts"
  mv -f "$tmp" "$gst"
fi
