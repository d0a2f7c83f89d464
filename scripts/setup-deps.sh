#!/usr/bin/env bash
# Install the external tools used by libpseudostream's sample/test-media
# scripts and header checks on a Debian 12 machine (run as root), and the
# other muxers the corpus of scripts/make-muxer-corpus.sh comes from
# (GStreamer, the x264 CLI, AtomicParsley), and MediaInfo, one of the
# independent readers the MP4s made from FLVs are checked with.
# Idempotent: does nothing when everything is already present.
# Only the stable Rust toolchain is needed; this script never installs Rust.
set -euo pipefail

die() { echo "setup-deps: error: $*" >&2; exit 1; }

# command -> Debian package providing it
declare -A pkg_for=(
  [ffmpeg]=ffmpeg
  [ffprobe]=ffmpeg
  [yamdi]=yamdi
  [flvmeta]=flvmeta
  [cc]=gcc
  [php]=php-cli
  [make]=make
  [curl]=curl
  [gst-launch-1.0]=gstreamer1.0-tools
  [gst-inspect-1.0]=gstreamer1.0-tools
  [x264]=x264
  [AtomicParsley]=atomicparsley
  [mediainfo]=mediainfo
)
tools=(ffmpeg ffprobe yamdi flvmeta cc php make curl gst-launch-1.0 gst-inspect-1.0 x264 AtomicParsley
       mediainfo)
# GStreamer elements the corpus uses -> the plugin package holding them.
declare -A gst_pkg_for=(
  [flvmux]=gstreamer1.0-plugins-good
  [flvdemux]=gstreamer1.0-plugins-good
  [qtmux]=gstreamer1.0-plugins-good
  [mp4mux]=gstreamer1.0-plugins-good
  [aacparse]=gstreamer1.0-plugins-good
  [h264parse]=gstreamer1.0-plugins-bad
)

missing=()
add_pkg() {
  local p
  for p in "$@"; do
    [[ " ${missing[*]-} " == *" $p "* ]] || missing+=("$p")
  done
}

for cmd in "${tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || add_pkg "${pkg_for[$cmd]}"
done
gst_elements() {
  local e
  for e in "${!gst_pkg_for[@]}"; do
    command -v gst-inspect-1.0 >/dev/null 2>&1 && gst-inspect-1.0 --exists "$e" || echo "$e"
  done
}
for e in $(gst_elements); do
  add_pkg "${gst_pkg_for[$e]}"
done
# A C compiler without libc headers cannot build the header check.
if [[ ! -e /usr/include/stdio.h ]]; then
  add_pkg libc6-dev
fi
# PHP FFI extension (part of php-cli on Debian 12) must be loadable.
if command -v php >/dev/null 2>&1 && ! php -r 'exit(extension_loaded("ffi") ? 0 : 1);' 2>/dev/null; then
  add_pkg php-cli
fi

# gcc alone does not pull libc6-dev with --no-install-recommends.
[[ " ${missing[*]-} " == *" gcc "* ]] && add_pkg libc6-dev
# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install setup-deps "${missing[@]}"

# Verify the result.
for cmd in "${tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' still missing after install"
done
missing_elements=$(gst_elements)
[[ -z $missing_elements ]] || die "GStreamer elements still missing after install: $missing_elements"
encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null) || die "ffmpeg -encoders failed"
for enc in libx264 aac libmp3lame flv; do
  grep -qE "^ [A-Z.]{6} $enc " <<<"$encoders" \
    || die "ffmpeg lacks encoder '$enc' (need Debian's full ffmpeg build)"
done
php -r 'exit(extension_loaded("ffi") ? 0 : 1);' \
  || die "PHP FFI extension not loaded (php-cli on Debian 12 ships it; check ffi.enable / php.ini)"

# Rust: stable is sufficient. Warn (do not install) if cargo is absent, and
# refuse a toolchain file that pins nightly.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for f in "$root/rust-toolchain" "$root/rust-toolchain.toml"; do
  if [[ -f $f ]] && grep -qi nightly "$f"; then
    die "$f pins a nightly toolchain; this project must build on stable"
  fi
done
if command -v cargo >/dev/null 2>&1; then
  echo "setup-deps: ok ($(cargo --version 2>/dev/null || echo cargo))"
else
  echo "setup-deps: ok (note: cargo not found; install stable Rust, e.g. via rustup, nightly is not needed)"
fi
