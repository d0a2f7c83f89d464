#!/usr/bin/env bash
# Generates the long FLVs the browser tests seek in, into OUTDIR (e.g.
# target/test-media/browser). Files that exist are kept, so reruns are free.
#
#   long.plain.flv  5 min of H.264 (320x180, 25 fps, keyframe every 2 s) +
#                   AAC (mono, 32 kbit/s) straight from ffmpeg's lavfi test
#                   sources: onMetaData has a duration but no keyframes
#   long.yamdi.flv  yamdi on long.plain.flv: onMetaData lists the keyframes
#
# Cheap on purpose: x264 ultrafast at a small size encodes 5 minutes in a
# few seconds. SECONDS_LONG overrides the duration (for experiments only).
set -euo pipefail

die() { echo "make-browser-media: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
out=$1
duration=${SECONDS_LONG:-300}
for c in ffmpeg yamdi; do
  command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run scripts/setup-deps.sh)"
done
mkdir -p "$out"

plain=$out/long.plain.flv
yamdi=$out/long.yamdi.flv
tmp=$out/.tmp.$$.flv
trap 'rm -f "$tmp"' EXIT

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
