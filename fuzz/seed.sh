#!/usr/bin/env bash
# Seeds fuzz/corpus/{amf0,media_open,plan}/ with small inputs: the first
# 64 KiB of samples/sample.flv, tiny FLVs and AMF0 values built here with
# printf, and (when present) the small audio-only files that
# scripts/make-test-media.sh leaves in target/test-media. Safe to re-run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
corpus=$here/corpus
mkdir -p "$corpus"/amf0 "$corpus"/media_open "$corpus"/plan "$corpus"/virtual_file

# --- bytes from hex ------------------------------------------------------
# Writes a hex string (whitespace ignored) as bytes.
unhex() {
  local h=${1//[[:space:]]/} esc=
  while [[ -n $h ]]; do esc+="\\x${h:0:2}"; h=${h:2}; done
  printf '%b' "$esc"
}
# Hex of a string's bytes.
shex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
# Little-endian u64.
le64() {
  local v=$1 i out=
  for i in 0 1 2 3 4 5 6 7; do out+=$(printf '%02x' $(((v >> (8 * i)) & 255))); done
  printf '%s' "$out"
}
# IEEE 754 double of a non-negative integer below 2^52, big-endian hex.
f64() {
  local n=$1 e=0
  if ((n == 0)); then printf '%016x' 0; return; fi
  while (((n >> e) > 1)); do ((e += 1)); done
  printf '%016x' $((((1023 + e) << 52) | ((n - (1 << e)) << (52 - e))))
}

# --- AMF0 ------------------------------------------------------------------
amf_num() { printf '00%s' "$(f64 "$1")"; }
amf_str() { printf '02%04x%s' "${#1}" "$(shex "$1")"; }
amf_key() { printf '%04x%s' "${#1}" "$(shex "$1")"; }
amf_end() { printf '000009'; }
# Strict array of integers.
amf_nums() {
  local out n
  out=$(printf '0a%08x' $#)
  for n in "$@"; do out+=$(amf_num "$n"); done
  printf '%s' "$out"
}

# --- FLV -------------------------------------------------------------------
flv_header() { printf '464c5601%02x0000000900000000' "$1"; }
# tag TYPE TIMESTAMP BODY_HEX: header, body, PreviousTagSize.
tag() {
  local size=$((${#3} / 2))
  printf '%02x%06x%06x%02x000000%s%08x' "$1" "$size" $(($2 & 0xffffff)) $(($2 >> 24)) "$3" $((size + 11))
}
AVC_SEQ=1700000000014d401effe10004674d401e01000468ee3c80
AVC_KEY=170100000000000005658884001f
AVC_INTER=27010000000000000441e2001f
AAC_SEQ=af001210
AAC_RAW=af0121100460
MP3=2ffffb9064000000
H263_KEY=1200008400
H263_INTER=2200008400
HVC_SEQ=9068766331010160000000
HVC_KEY=9168766331000000650000
HVC_INTER=a168766331000000410000

# An H.264/AAC body: configs, then a keyframe every second with audio and
# inter frames between. Prints "hex offsets..." (keyframe offsets relative
# to the body's first byte).
avc_body() {
  local body= offs=() t
  body+=$(tag 9 0 $AVC_SEQ)$(tag 8 0 $AAC_SEQ)
  for t in 0 1000 2000; do
    offs+=($((${#body} / 2)))
    body+=$(tag 9 $t $AVC_KEY)$(tag 8 $t $AAC_RAW)
    body+=$(tag 9 $((t + 40)) $AVC_INTER)$(tag 8 $((t + 23)) $AAC_RAW)
    body+=$(tag 9 $((t + 80)) $AVC_INTER)
  done
  printf '%s %s\n' "$body" "${offs[*]}"
}

onmetadata() { # extra properties hex, then the array's end
  printf '%s08%08x%s%s' "$(amf_str onMetaData)" 4 "$1" "$(amf_end)"
}
common_props() {
  printf '%s%s%s%s%s%s%s%s' "$(amf_key duration)" "$(amf_num 3)" \
    "$(amf_key width)" "$(amf_num 320)" "$(amf_key height)" "$(amf_num 240)" \
    "$(amf_key encoder)" "$(amf_str fuzz-seed)"
}

declare -A flv
read -r body k0 k1 k2 < <(avc_body)

# 1. H.264 + AAC with an onMetaData that has no keyframe index (scanned).
meta=$(onmetadata "$(common_props)")
flv[avc_aac_scanned]=$(flv_header 5)$(tag 18 0 "$meta")$body

# 2. The same with a keyframe index that matches the file (metadata path).
#    The script tag's size does not depend on the numbers: size it with
#    zeros, then write the real positions.
kf_meta() { # base filesize
  local b=$1 props
  props=$(common_props)$(amf_key filesize)$(amf_num "$2")
  props+=$(amf_key keyframes)03$(amf_key times)$(amf_nums 0 1 2)
  props+=$(amf_key filepositions)$(amf_nums $((b + k0)) $((b + k1)) $((b + k2)))$(amf_end)
  onmetadata "$props"
}
sized=$(tag 18 0 "$(kf_meta 0 0)")
base=$((13 + ${#sized} / 2))
total=$((base + ${#body} / 2))
meta_kf=$(kf_meta $base $total)
flv[avc_aac_indexed]=$(flv_header 5)$(tag 18 0 "$meta_kf")$body

# 3. Audio only, MP3, a frame every 250 ms: seek points come from audio.
b=
for ((t = 0; t <= 3000; t += 250)); do b+=$(tag 8 $t $MP3); done
flv[mp3_only]=$(flv_header 4)$b

# 4. Sorenson H.263 video only, no metadata.
b=
for t in 0 500 1000 1500; do
  if ((t % 1000 == 0)); then b+=$(tag 9 $t $H263_KEY); else b+=$(tag 9 $t $H263_INTER); fi
done
flv[h263_only]=$(flv_header 1)$b

# 5. Enhanced FLV (HEVC FourCC) video.
flv[hevc_enhanced]=$(flv_header 1)$(tag 9 0 $HVC_SEQ)$(tag 9 0 $HVC_KEY)$(tag 9 40 $HVC_INTER)$(tag 9 1000 $HVC_KEY)

# 6. One picture late in the timeline with a metadata duration (stills).
flv[single_frame]=$(flv_header 1)$(tag 18 0 "$(onmetadata "$(amf_key duration)$(amf_num 10)")")$(tag 9 0 $AVC_SEQ)$(tag 9 5000 $AVC_KEY)

# 7. Header only.
flv[header_only]=$(flv_header 5)

media=()
for name in "${!flv[@]}"; do
  unhex "${flv[$name]}" >"$corpus/media_open/$name.flv"
  media+=("$corpus/media_open/$name.flv")
done
if [[ -f $root/samples/sample.flv ]]; then
  head -c 65536 "$root/samples/sample.flv" >"$corpus/media_open/sample_head64k.flv"
  media+=("$corpus/media_open/sample_head64k.flv")
fi
for f in "$root"/target/test-media/audio_only*.flv; do
  [[ -f $f ]] || continue
  if (($(stat -c %s "$f") <= 131072)); then
    cp "$f" "$corpus/media_open/"
    media+=("$corpus/media_open/$(basename "$f")")
  fi
done

# --- amf0 ------------------------------------------------------------------
i=0
amf() { unhex "$1" >"$corpus/amf0/seed$((i += 1))"; }
amf "$meta"
amf "$meta_kf"
amf "$(amf_num 1)01 01$(amf_str hello)0506"
amf "0c00000003abc"                                       # long string
amf "03$(amf_key a)$(amf_num 2)$(amf_key b)0101$(amf_end)" # object
amf "08000000ff$(amf_key x)$(amf_num 7)"                  # ECMA array, no end marker
amf "$(amf_nums 1 2 3)"
amf "0b$(f64 1700000000000)ffc4"                          # date, tz -60
amf "070003 0d 0f00000004$(shex '<a/>')"                  # reference, unsupported, XML
amf "10$(amf_key T)$(amf_key k)$(amf_str v)$(amf_end)"    # typed object
amf "0a00000001 0a00000001 03$(amf_key z)0a00000000$(amf_end)" # nesting
amf "02000 2ffc3"                                         # invalid UTF-8

# --- plan: control block + query + Range + media ---------------------------
# ctrl FLAGS OPT_PREFIX START_KIND START ENDKIND END REQ_PREFIX QUERY RANGE
ctrl() {
  printf '%02x%02x' "$1" "$2"
  printf '00%08x00%08x' 0 0                 # host burst, host rate (off)
  printf '%02x%s%02x%s' "$3" "$(le64 "$4")" "$5" "$(le64 "$6")"
  printf '%02x' "$7"                        # request prefix (4+ = host's)
  printf '00%08x00%08x00%08x' 0 0 0         # initial bytes, burst, rate
  printf 'efbeadde%02x%02x%s%s' "${#8}" "${#9}" "$(shex "$8")" "$(shex "$9")"
}
controls=(
  "$(ctrl 0 2 0 0 0 0 4 '' '')"
  "$(ctrl 4 2 0 0 0 0 4 'start=600' '')"
  "$(ctrl 5 3 0 0 0 0 4 'start=1.2&end=2.5' '')"
  "$(ctrl 4 1 0 0 0 0 4 'ib=13&fs=400' '')"
  "$(ctrl 4 2 0 0 0 0 4 'bstart=13&bend=300' 'bytes=10-200')"
  "$(ctrl 6 2 0 0 0 0 4 'start=300&ri=2000&rs=64' '')"
  "$(ctrl 16 3 3 1 4 2 4 '' 'bytes=-100')"
  "$(ctrl 0 0 1 777 1 5000 4 '' '')"
)
for f in "${media[@]}"; do
  n=0
  for c in "${controls[@]}"; do
    { unhex "$c"; cat "$f"; } >"$corpus/plan/$(basename "$f" .flv).c$((n += 1))"
  done
done

# virtual_file: 8 control bytes (modes, two positions, request families, ib)
# before each FLV.
vcontrols=(0000000000000f0000 01f401e8031f0d00 0264006400ff4000 03ff03000001ff10 06320090011f0000)
for f in "${media[@]}"; do
  n=0
  for c in "${vcontrols[@]}"; do
    { unhex "${c:0:16}"; cat "$f"; } >"$corpus/virtual_file/$(basename "$f" .flv).v$((n += 1))"
  done
done

# --- mp4: ffmpeg-made MP4s, each followed by an 8-byte control trailer ------
# Trailer (see fuzz_targets/mp4.rs): two times per 60000 of the duration, a
# keyframe pick, query-form flags, a byte offset per 60000 of the size.
# Needs ffmpeg (libx264, aac); scripts/mp4craft.py, when present, adds co64,
# stz2, split-mdat and moov-between variants of the faststart file.
mkdir -p "$corpus/mp4"
le16() { printf '%02x%02x' $(($1 & 255)) $((($1 >> 8) & 255)); }
# mp4_ctrl A B K FLAGS X
mp4_ctrl() { printf '%s%s%02x%02x%s' "$(le16 "$1")" "$(le16 "$2")" "$3" "$4" "$(le16 "$5")"; }
mp4_controls=(
  "$(mp4_ctrl 30000 45000 1 15 16384)"  # inside, every query form
  "$(mp4_ctrl 0 60000 0 1 0)"           # 0 to the end
  "$(mp4_ctrl 12000 6000 2 6 59999)"    # end before start
  "$(mp4_ctrl 65535 65535 255 8 65535)" # past the end
)
if command -v ffmpeg >/dev/null; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
  video=(-f lavfi -i "testsrc=size=64x36:rate=10:duration=1.5")
  audio=(-f lavfi -i "sine=frequency=440:sample_rate=8000:duration=1.5")
  x264=(-c:v libx264 -preset veryfast -g 5 -bf 2 -pix_fmt yuv420p)
  aac=(-c:a aac -b:a 16k -ac 1)
  ff "${video[@]}" "${audio[@]}" "${x264[@]}" "${aac[@]}" -movflags +faststart "$work/avc_aac_faststart.mp4"
  ff "${video[@]}" "${audio[@]}" "${x264[@]}" "${aac[@]}" "$work/avc_aac_moov_end.mp4"
  ff "${video[@]}" "${audio[@]}" "${x264[@]}" "${aac[@]}" \
    -movflags frag_keyframe+empty_moov "$work/avc_aac_frag.mp4"
  # Fragments addressed from their moof (cuttable; the above is refused).
  ff "${video[@]}" "${audio[@]}" "${x264[@]}" "${aac[@]}" \
    -movflags frag_keyframe+empty_moov+default_base_moof "$work/avc_aac_frag_moof_based.mp4"
  ff "${audio[@]}" "${aac[@]}" "$work/aac_only.m4a"
  # Every frame a keyframe (no stss), no edit list, no audio.
  ff "${video[@]}" -c:v libx264 -preset veryfast -g 1 -pix_fmt yuv420p -use_editlist 0 \
    "$work/avc_intra_only.mp4"
  ff -f lavfi -i "testsrc=size=64x36:rate=10:duration=1" \
    -f lavfi -i "sine=frequency=440:sample_rate=4000:duration=1" \
    "${x264[@]}" -c:a pcm_s16le "$work/avc_pcm.mov"
  craft=$root/scripts/mp4craft.py
  if [[ -f $craft ]] && command -v python3 >/dev/null; then
    for v in to-co64 to-stz2 split-mdat moov-between; do
      python3 "$craft" "$v" "$work/avc_aac_faststart.mp4" "$work/faststart_$v.mp4" >/dev/null ||
        echo "mp4: mp4craft $v failed" >&2
    done
  fi
  for f in "$work"/*.mp4 "$work"/*.m4a "$work"/*.mov; do
    [[ -f $f ]] || continue
    n=0
    for c in "${mp4_controls[@]}"; do
      { cat "$f"; unhex "$c"; } >"$corpus/mp4/$(basename "$f").c$((n += 1))"
    done
  done
else
  echo "mp4: ffmpeg missing, no MP4 seeds" >&2
fi

for t in amf0 media_open plan virtual_file mp4; do
  echo "$t: $(find "$corpus/$t" -type f | wc -l) seeds"
done
