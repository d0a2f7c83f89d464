#!/usr/bin/env bash
# Installs libpseudostream the way a user or a packager does and uses it
# from outside the source tree:
#
# - `make install DESTDIR=… PREFIX=/usr`: the layout (versioned .so, its
#   SONAME and links, .a, headers under include/pseudostream/, .pc with
#   prefix=/usr), then `make uninstall` leaves nothing behind;
# - `make install PREFIX=<tmp>`: the SONAME and the exported symbols (ps_*
#   only, exactly the functions the header declares), then a C program in
#   a temporary directory built with `pkg-config --cflags --libs
#   pseudostream`, linked to the shared library and, with `--static`, to
#   the archive: both write the body of a seek, byte for byte the example
#   CLI's, which ffmpeg decodes;
# - the PHP, Ruby and ASP.NET host tests once more, against that installed
#   library, which the bindings load by its SONAME (tests/common/host.rs
#   checks the file mapped into each host process).
#
# Run by scripts/test.sh; needs what it has set up (cargo, cc, pkg-config,
# ffmpeg, the hosts' runtimes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib/build.sh
. scripts/lib/build.sh
need_packages pkg-config binutils

version=$(crate_version)
major=${version%%.*}
work=$(mktemp -d "$root/target/test-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
cargo build --release --quiet --example pseudostream

# ------------------------------------------------ DESTDIR, and uninstall --
stage=$work/stage
make --no-print-directory install DESTDIR="$stage" PREFIX=/usr >/dev/null
want_files=(
  "usr/include/pseudostream/pseudostream.h"
  "usr/include/pseudostream/pseudostream_ffi.h"
  "usr/lib/libpseudostream.a"
  "usr/lib/libpseudostream.so -> libpseudostream.so.$major"
  "usr/lib/libpseudostream.so.$major -> libpseudostream.so.$version"
  "usr/lib/libpseudostream.so.$version"
  "usr/lib/pkgconfig/pseudostream.pc"
)
got=$(cd "$stage" && find . \( -type f -printf '%P\n' \) -o \( -type l -printf '%P -> %l\n' \) | sort)
[[ $got == "$(printf '%s\n' "${want_files[@]}" | sort)" ]] \
  || die "DESTDIR layout differs:"$'\n'"$got"
grep -qx 'prefix=/usr' "$stage/usr/lib/pkgconfig/pseudostream.pc" \
  || die "the staged pseudostream.pc does not say prefix=/usr"
make --no-print-directory uninstall DESTDIR="$stage" PREFIX=/usr >/dev/null
left=$(cd "$stage" && find . \( -type f -o -type l \) -printf '%P\n')
[[ -z $left ]] || die "make uninstall left: $left"
note "DESTDIR install and uninstall: ok"

# ----------------------------------------- a prefix, SONAME and symbols --
prefix=$work/prefix
make --no-print-directory install PREFIX="$prefix" >/dev/null
so=$prefix/lib/libpseudostream.so.$version
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == "libpseudostream.so.$major" ]] || die "SONAME is '$soname'"
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sort)
declared=$(grep -oE '\bps_[a-z0-9_]+\(' include/pseudostream.h | tr -d '(' | sort -u)
[[ -n $exported && -z $(grep -v '^ps_' <<<"$exported") ]] \
  || die "exports besides ps_*: $(grep -v '^ps_' <<<"$exported" | tr '\n' ' ')"
[[ $exported == "$declared" ]] \
  || die "exported and declared functions differ: $(diff <(echo "$declared") <(echo "$exported") | tr '\n' ' ')"
note "SONAME $soname, $(wc -l <<<"$exported") symbols, all ps_*, as declared"

# ------------------------------------ a C program outside the tree ------
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[[ $(pkg-config --modversion pseudostream) == "$version" ]] || die "pkg-config version"
app=$work/app
mkdir -p "$app"
cp tests/install/seek.c "$app/"
read -ra cflags <<<"$(pkg-config --cflags pseudostream)"
read -ra libs <<<"$(pkg-config --libs pseudostream)"
# The archive rather than the .so beside it, with what it needs itself.
read -ra static_libs <<<"$(pkg-config --static --libs pseudostream | sed 's/-lpseudostream\b/-l:libpseudostream.a/')"
(cd "$app" && cc -std=c11 -Wall -Wextra -Werror -o seek-shared seek.c "${cflags[@]}" "${libs[@]}")
(cd "$app" && cc -std=c11 -Wall -Wextra -Werror -o seek-static seek.c "${cflags[@]}" "${static_libs[@]}")
LD_LIBRARY_PATH=$prefix/lib ldd "$app/seek-shared" | grep "libpseudostream.so.$major => $prefix/lib/" >/dev/null \
  || die "seek-shared does not load the installed libpseudostream.so.$major"
! ldd "$app/seek-static" | grep libpseudostream >/dev/null || die "seek-static links the .so"

target/release/examples/pseudostream cut samples/sample.flv start=40 --unit seconds \
  >"$work/want.flv" 2>/dev/null
LD_LIBRARY_PATH=$prefix/lib "$app/seek-shared" samples/sample.flv 40 >"$work/shared.flv" 2>/dev/null
"$app/seek-static" samples/sample.flv 40 >"$work/static.flv" 2>/dev/null
for kind in shared static; do
  cmp -s "$work/want.flv" "$work/$kind.flv" || die "$kind: body differs from the CLI's"
  ffmpeg -v error -i "$work/$kind.flv" -f null - 2>"$work/ffmpeg.log" && [[ ! -s $work/ffmpeg.log ]] \
    || die "$kind: ffmpeg: $(head -n 3 "$work/ffmpeg.log")"
done
note "C program via pkg-config, shared and static: $(stat -c %s "$work/want.flv") bytes, equal to the CLI's, decoded"

# ------------------------------------- the hosts on the installed library --
note "PHP, Ruby and ASP.NET host tests against $prefix/lib/libpseudostream.so.$major"
PSEUDOSTREAM_TEST_INSTALLED=$prefix cargo test --release \
  --test host_php --test host_ruby --test host_dotnet -- --include-ignored
note "ok"
