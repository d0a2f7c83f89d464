# Long media for the benchmarks, made once from ffmpeg's synthetic sources
# and kept (they take a minute or two). Source this file; each function
# makes its file unless it is there already.

# bench_long_mp4 OUT: a 2-hour 160x90 H.264 + AAC MP4 (~170 MB, moov first,
# ~4 MB moov: 180000 video and ~337700 audio samples), a keyframe every 2 s.
# A ten-minute piece twelve times: raw H.264 and ADTS AAC streams joined byte
# for byte (concat: protocol) and muxed with -c copy. Joining raw streams
# keeps the timeline clean (video from 0, no edit lists); joining MP4 pieces
# would give the video a 21 ms empty edit (the AAC priming), which our cut
# honours and nginx's mp4 module ignores.
bench_long_mp4() {
    local out=$1 tmp
    [[ -s $out ]] && return
    echo "bench_media: making $out (2 hours; once)" >&2
    tmp=$(mktemp -d "$(dirname "$out")/.long-mp4.XXXXXX")
    bench_encode 600 "$tmp/piece"
    local vlist="concat:" alist="concat:"
    for _ in $(seq 12); do
        vlist+="$tmp/piece.h264|"; alist+="$tmp/piece.aac|"
    done
    ffmpeg -nostdin -v error -y -framerate 25 -i "${vlist%|}" -i "${alist%|}" \
        -map 0:v -map 1:a -c copy -movflags +faststart "$tmp/long.mp4"
    mv "$tmp/long.mp4" "$out"
    rm -rf "$tmp"
}

# bench_encode SECONDS OUT.mp4 | OUT (OUT.h264 + OUT.aac): 160x90 at
# ultrafast, a keyframe every 2 s, mono AAC at 24 kb/s.
bench_encode() {
    local src=(-f lavfi -t "$1" -i "testsrc2=size=160x90:rate=25"
               -f lavfi -t "$1" -i "sine=frequency=440:beep_factor=4:sample_rate=48000")
    local v=(-map 0:v -map_metadata -1 -c:v libx264 -preset ultrafast -crf 32 -pix_fmt yuv420p
             -x264-params keyint=50:min-keyint=50:scenecut=0)
    local a=(-map 1:a -c:a aac -ac 1 -b:a 24k)
    if [[ $2 == *.mp4 ]]; then
        ffmpeg -nostdin -v error -y "${src[@]}" "${v[@]}" "${a[@]}" -movflags +faststart "$2"
    else
        ffmpeg -nostdin -v error -y "${src[@]}" "${v[@]}" -f h264 "$2.h264" "${a[@]}" -f adts "$2.aac"
    fi
}

# bench_long_flv OUT: a ~7-hour, ~1.5 GB H.264/AAC FLV without keyframe
# metadata: a 10-minute 320x180 FLV looped 42 times (stream copy).
bench_long_flv() {
    local out=$1 ten
    [[ -s $out ]] && return
    ten=$(dirname "$out")/ten-minutes.flv
    if [[ ! -s $ten ]]; then
        echo "bench_media: making $ten (once)" >&2
        ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=320x180:rate=25" \
            -f lavfi -i "sine=frequency=440:sample_rate=44100" -t 600 \
            -c:v libx264 -preset ultrafast -b:v 420k -g 50 -c:a aac -b:a 48k "$ten.tmp.flv"
        mv "$ten.tmp.flv" "$ten"
    fi
    echo "bench_media: making $out (once)" >&2
    ffmpeg -nostdin -v error -y -stream_loop 41 -i "$ten" -c copy "$out.tmp.flv"
    mv "$out.tmp.flv" "$out"
}
