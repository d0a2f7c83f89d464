#!/usr/bin/env bash
# Generate the MP4 (ISO BMFF) integration-test media into OUTDIR (e.g.
# target/test-media/mp4). Files that already exist are kept, so reruns are
# fast. Everything comes from ffmpeg's synthetic sources: 12 s of testsrc2
# at 320x180, 25 fps, a keyframe every 2 s (-g 50), x264 with its default
# B-frames, mono AAC from a beeping sine, unless stated otherwise.
#
#   h264_aac.moov_end.mp4   x264 + AAC, moov after mdat (ffmpeg's default)
#   h264_aac.faststart.mp4  the same streams remuxed with +faststart (moov first)
#   negative_cts.mp4        the same streams, +negative_cts_offsets (ctts v1)
#   all_intra.mp4           x264 -g 1 (every sample is sync: no stss) + AAC
#   hevc.mp4                libx265 tagged hvc1 + AAC
#   two_audio.mp4           the video + two AAC tracks (440 Hz and 880 Hz)
#   delayed_audio.mp4       the video + AAC delayed 1.5 s with -itsoffset: the
#                           audio elst starts with an empty edit (media_time -1)
#   audio_only.m4a          the AAC track alone
#   pcm.mov                 the video + pcm_s16le in QuickTime (uniform stsz)
#   fragmented.mp4          remuxed with frag_keyframe+empty_moov+default_base_moof
#   co64.mp4                mp4craft to-co64 on the moov_end file
#   two_mdat.mp4            mp4craft split-mdat: two mdat boxes, then moov
#   moov_between.mp4        mp4craft moov-between: mdat, moov, mdat
#   stz2.mp4                mp4craft to-stz2: the audio stsz as a 16-bit stz2
#   split_edit.mp4          mp4craft split-edit: the video's edit as two that
#                           follow on (4 s, then the rest), as editors write
#   skip_edit.mp4           mp4craft skip-edit: the video shows 0-4 s, then
#                           6 s on; not in the manifest (its cuts are refused)
#
# Every new file must decode without a word from `ffmpeg -v error`, carry the
# structure it is named for (checked with mp4craft facts), and the remuxed or
# crafted copies must hold packet for packet what the moov_end file holds.
# OUTDIR/manifest.txt lists: file has_audio has_video audio_tracks notes
set -euo pipefail

die() { echo "make-mp4-media: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
outdir=$1
for c in ffmpeg ffprobe python3; do
  command -v "$c" >/dev/null 2>&1 || die "'$c' not found (run scripts/setup-deps.sh)"
done
encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null)
for e in libx264 libx265 aac pcm_s16le; do
  grep -qw "$e" <<<"$encoders" || die "ffmpeg lacks the '$e' encoder (run scripts/setup-deps.sh)"
done
mkdir -p "$outdir"

# Resolve the real interpreter once (pyenv-style shims are slow to start).
py=$(python3 -c 'import sys; print(sys.executable)')
craft=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/mp4craft.py
[[ -f $craft ]] || die "$craft is missing"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
mp4craft() { "$py" "$craft" "$@"; }

# Common deterministic output options.
bitexact=(-fflags +bitexact -flags +bitexact -threads 1 -map_metadata -1)

# ------------------------------------------------------------------ checks --

# Fails unless ffmpeg decodes every stream of FILE without a message.
check_decodes() {
  local errs
  errs=$(ffmpeg -nostdin -hide_banner -v error -i "$1" -map 0 -f null - 2>&1) \
    || errs="ffmpeg exited non-zero${errs:+: $errs}"
  [[ -z $errs ]] || { echo "$1 does not decode cleanly: $errs" >&2; return 1; }
}

# want FILE TOKEN...: every TOKEN (or, as !TOKEN, none) among mp4craft facts.
want() {
  local file=$1 facts t; shift
  facts=" $(mp4craft facts "$file") " || return 1
  for t in "$@"; do
    if [[ $t == !* ]]; then
      [[ $facts != *" ${t#!} "* ]] && continue
    else
      [[ $facts == *" $t "* ]] && continue
    fi
    echo "$file: expected '$t' in facts:$facts" >&2
    return 1
  done
}

# same_packets A B: the two files hold the same packets (stream by stream:
# timestamps, sizes and MD5s), whatever their box layout.
same_packets() {
  local a b
  a=$(ffmpeg -nostdin -v error -i "$1" -map 0 -c copy -f framemd5 - 2>&1) || return 1
  b=$(ffmpeg -nostdin -v error -i "$2" -map 0 -c copy -f framemd5 - 2>&1) || return 1
  [[ $a == "$b" ]] || { echo "$2 does not hold the packets of $1" >&2; return 1; }
}

# produce OUT CHECK CMD...: runs CMD writing a temp file (the literal argument
# @OUT@ is its path), checks it with CHECK (a function given the temp path),
# then moves it to OUT. Skipped when OUT exists.
produce() {
  local out=$1 check=$2; shift 2
  [[ -s $out ]] && return 0
  local tmp="$outdir/.tmp.$$.$(basename "$out")" log="$work/$(basename "$out").log"
  local args=() a
  for a in "$@"; do
    [[ $a == @OUT@ ]] && args+=("$tmp") || args+=("$a")
  done
  if ! "${args[@]}" >"$log" 2>&1 || [[ ! -s $tmp ]] \
      || ! check_decodes "$tmp" 2>>"$log" || ! "$check" "$tmp" 2>>"$log"; then
    cat "$log" >&2
    rm -f "$tmp"
    die "failed to produce $out"
  fi
  mv -f "$tmp" "$out"
}

# ------------------------------------------------------------------ inputs --

dur=12
video_src="testsrc2=size=320x180:rate=25:duration=$dur"
sine() { # FREQUENCY [DURATION]
  echo "sine=frequency=$1:beep_factor=4:sample_rate=44100:duration=${2:-$dur}"
}
x264=(-c:v libx264 -preset veryfast -pix_fmt yuv420p -crf 30 -sc_threshold 0
      -x264-params threads=1:lookahead-threads=1)
aac=(-c:a aac -b:a 48k -ac 1)
base=$outdir/h264_aac.moov_end.mp4

# Streams copied from the base file, plus extra inputs/options.
remux() { # OUT OPTIONS...
  local out=$1; shift
  ff -i "$base" "$@" "${bitexact[@]}" "$out"
}

# -------------------------------------------------------------- the checks --

is_moov_end() { want "$1" top=ftyp,free,mdat,moov tracks=vide,soun sync=vide:stss,soun:none; }
is_faststart() {
  [[ $(mp4craft facts "$1") == "top=ftyp,moov,"* ]] || { echo "$1: moov is not first" >&2; return 1; }
  same_packets "$base" "$1"
}
is_negative_cts() { want "$1" ctts_v1=1 tracks=vide,soun; }
is_all_intra() { want "$1" sync=vide:none,soun:none; }
is_hevc() { want "$1" codecs=hvc1,mp4a; }
is_two_audio() { want "$1" tracks=vide,soun,soun; }
is_delayed() { want "$1" empty_edit=1 tracks=vide,soun; }
is_audio_only() { want "$1" tracks=soun codecs=mp4a; }
is_pcm() { want "$1" tracks=vide,soun uniform_stsz=1; }
is_fragmented() { want "$1" '!moof=0' tracks=vide,soun; }
is_co64() { want "$1" stco=0 co64=2 top=ftyp,free,mdat,moov && same_packets "$base" "$1"; }
is_two_mdat() { want "$1" top=ftyp,free,mdat,mdat,moov && same_packets "$base" "$1"; }
is_moov_between() { want "$1" top=ftyp,free,mdat,moov,mdat && same_packets "$base" "$1"; }
is_stz2() { want "$1" stsz=1 stz2=1 && same_packets "$base" "$1"; }
# ffmpeg's demuxer repeats the GOP before a media edit that starts between
# keyframes, so the packets differ from the base file's: check the edits.
is_edited() {
  local tree
  tree=$(mp4craft dump "$1") || return 1
  # One line per box: an elst with two entries (grep -q would close the pipe early).
  grep "elst .* entries=2 " <<<"$tree" >/dev/null || { echo "$1: the video has no two edits" >&2; return 1; }
}

# ------------------------------------------------------------- generation --

gen_base() { # the moov_end file and everything made from it
  produce "$base" is_moov_end ff -f lavfi -i "$video_src" -f lavfi -i "$(sine 440)" \
    -map 0:v -map 1:a "${x264[@]}" -g 50 -keyint_min 50 "${aac[@]}" "${bitexact[@]}" @OUT@
  produce "$outdir/h264_aac.faststart.mp4" is_faststart \
    remux @OUT@ -map 0 -c copy -movflags +faststart
  produce "$outdir/negative_cts.mp4" is_negative_cts \
    remux @OUT@ -map 0 -c copy -movflags +negative_cts_offsets
  produce "$outdir/two_audio.mp4" is_two_audio \
    remux @OUT@ -f lavfi -i "$(sine 880)" -map 0:v -map 0:a -map 1:a \
    -c:v copy -c:a:0 copy -c:a:1 aac -b:a:1 48k
  produce "$outdir/delayed_audio.mp4" is_delayed \
    remux @OUT@ -itsoffset 1.5 -f lavfi -i "$(sine 660 10.5)" -map 0:v -map 1:a \
    -c:v copy "${aac[@]}"
  produce "$outdir/audio_only.m4a" is_audio_only remux @OUT@ -map 0:a -c copy
  produce "$outdir/pcm.mov" is_pcm \
    remux @OUT@ -f lavfi -i "$(sine 440)" -map 0:v -map 1:a -c:v copy -c:a pcm_s16le
  produce "$outdir/fragmented.mp4" is_fragmented \
    remux @OUT@ -map 0 -c copy -movflags frag_keyframe+empty_moov+default_base_moof
  produce "$outdir/co64.mp4" is_co64 mp4craft to-co64 "$base" @OUT@
  produce "$outdir/two_mdat.mp4" is_two_mdat mp4craft split-mdat "$base" @OUT@
  produce "$outdir/moov_between.mp4" is_moov_between mp4craft moov-between "$base" @OUT@
  produce "$outdir/stz2.mp4" is_stz2 mp4craft to-stz2 "$base" @OUT@
  produce "$outdir/split_edit.mp4" is_edited mp4craft split-edit "$base" @OUT@
  produce "$outdir/skip_edit.mp4" is_edited mp4craft skip-edit "$base" @OUT@
}

gen_all_intra() {
  produce "$outdir/all_intra.mp4" is_all_intra ff -f lavfi -i "$video_src" \
    -f lavfi -i "$(sine 440)" -map 0:v -map 1:a "${x264[@]}" -g 1 -keyint_min 1 \
    "${aac[@]}" "${bitexact[@]}" @OUT@
}

gen_hevc() {
  produce "$outdir/hevc.mp4" is_hevc ff -f lavfi -i "$video_src" -f lavfi -i "$(sine 440)" \
    -map 0:v -map 1:a -c:v libx265 -preset ultrafast -pix_fmt yuv420p -crf 32 \
    -g 50 -keyint_min 50 -tag:v hvc1 \
    -x265-params log-level=error:pools=1:frame-threads=1 \
    "${aac[@]}" "${bitexact[@]}" @OUT@
}

start=$SECONDS
jobs_max=$(nproc 2>/dev/null || echo 2)
(( jobs_max <= 2 )) || jobs_max=2  # the encodes are tiny; leave the rest of the machine alone
run_bg() { # run "$@" in the background, at most $jobs_max at a time
  while (( $(jobs -rp | wc -l) >= jobs_max )); do wait -n || true; done
  { ( "$@" ) || : >"$work/failed"; } &  # produce() dies on any failure
}
run_bg gen_base
run_bg gen_hevc
run_bg gen_all_intra
wait
[[ ! -e $work/failed ]] || die "generation failed"

# ---------------------------------------------------------------- manifest --

files=(h264_aac.faststart.mp4:faststart h264_aac.moov_end.mp4:moov_end
       negative_cts.mp4:ctts_v1 all_intra.mp4:no_stss hevc.mp4:hevc_hvc1
       two_audio.mp4:two_audio delayed_audio.mp4:empty_edit
       audio_only.m4a:audio_only pcm.mov:pcm_uniform_stsz fragmented.mp4:fragmented
       co64.mp4:co64 two_mdat.mp4:two_mdat moov_between.mp4:moov_between
       stz2.mp4:stz2 split_edit.mp4:split_edit)
rows=("# file has_audio has_video audio_tracks notes")
for entry in "${files[@]}"; do
  f=${entry%%:*} notes=${entry#*:}
  [[ -s $outdir/$f ]] || die "$f is missing"
  types=$(ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "$outdir/$f") \
    || die "ffprobe failed on $f"
  na=$(grep -cx audio <<<"$types" || true)
  nv=$(grep -cx video <<<"$types" || true)
  rows+=("$f $(( na > 0 ? 1 : 0 )) $(( nv > 0 ? 1 : 0 )) $na $notes")
done
printf '%s\n' "${rows[@]}" >"$outdir/.manifest.$$" && mv -f "$outdir/.manifest.$$" "$outdir/manifest.txt"
echo "make-mp4-media: ${#files[@]} files + manifest.txt in $outdir ($((SECONDS - start)) s)"
