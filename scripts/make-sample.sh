#!/usr/bin/env bash
# Generate the small demo FLV shipped in samples/ (default samples/sample.flv)
# from ffmpeg's synthetic sources only: test pattern with a burnt-in clock and
# frame counter (so seeking is visible), 440 Hz sine with a beep each second.
# H.264 + AAC, 320x240, 25 fps, 60 s, keyframe every 2 s, onMetaData with a
# keyframes index (ffmpeg -flvflags add_keyframe_index).
set -euo pipefail

out=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/samples/sample.flv"}
duration=${SAMPLE_DURATION:-60}
fps=25
gop=$((fps * 2))

command -v ffmpeg >/dev/null || { echo "make-sample: ffmpeg not found (run scripts/setup-deps.sh)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"

# Burn in time + frame number with drawtext when a font is available;
# otherwise use testsrc, which draws its own seconds counter without fonts.
font=""
if command -v fc-match >/dev/null 2>&1; then
  font=$(fc-match -f '%{file}' 'DejaVu Sans Mono:style=Book' 2>/dev/null || true)
fi
if [[ -n $font && -r $font && $font != *[:\'\\]* ]]; then
  video="testsrc2=size=320x240:rate=$fps:duration=$duration,"
  video+="drawtext=fontfile='$font':fontsize=18:fontcolor=white:box=1:boxcolor=black@0.7:boxborderw=4:x=(w-tw)/2:y=h-th-10"
  video+=":text='%{pts\\:hms}  frame %{n}'"
else
  video="testsrc=size=320x240:rate=$fps:duration=$duration:decimals=2"
fi
audio="sine=frequency=440:beep_factor=4:sample_rate=44100:duration=$duration"

tmp="$out.tmp.$$.flv"
trap 'rm -f "$tmp"' EXIT

ffmpeg -nostdin -hide_banner -loglevel error -y \
  -f lavfi -i "$video" \
  -f lavfi -i "$audio" \
  -map 0:v -map 1:a -map_metadata -1 \
  -c:v libx264 -preset medium -profile:v main -pix_fmt yuv420p \
  -crf 30 -maxrate 130k -bufsize 260k \
  -g "$gop" -keyint_min "$gop" -sc_threshold 0 \
  -x264-params threads=1:lookahead-threads=1 -threads 1 \
  -c:a aac -b:a 48k -ac 1 \
  -fflags +bitexact -flags +bitexact \
  -flvflags add_keyframe_index \
  -f flv "$tmp"

mv -f "$tmp" "$out"
trap - EXIT
echo "make-sample: $out ($(stat -c %s "$out") bytes)"
