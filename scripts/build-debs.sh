#!/usr/bin/env bash
# Builds Debian packages of libpseudostream for the machine's Debian release
# (`make deb`), into target/debian/:
#
#   libpseudostream0                 the shared library (SONAME libpseudostream.so.0)
#   libpseudostream-dev              headers, libpseudostream.so, .a, pseudostream.pc
#   libnginx-mod-http-pseudostream   the nginx module, built against Debian's nginx
#                                    ABI, with its load_module snippet in
#                                    /usr/share/nginx/modules-available/ enabled
#                                    through /etc/nginx/modules-enabled/ on install
#   lighttpd-mod-pseudostream        the lighttpd module, built against Debian's
#                                    lighttpd source, with a snippet in
#                                    /etc/lighttpd/conf-available/ for
#                                    lighty-enable-mod
#
# Packages are assembled with dpkg-deb (dpkg-dev's dpkg-shlibdeps works out
# the library dependencies); binaries are stripped. The version is
# Cargo.toml's with Debian revision 1. The module package depends on the
# nginx ABI its nginx provides (nginx-abi-1.22.1-7 on Debian 12), as Debian's
# own libnginx-mod-* packages do, so apt refuses it with another nginx; the
# lighttpd module depends on the exact lighttpd it was built for (lighttpd
# refuses a module of another version), as Debian's lighttpd-mod-* do.
#
# Maintainer: DEBFULLNAME and DEBEMAIL, as dch and debmake take them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib/build.sh
. scripts/lib/build.sh
need_packages dpkg-dev binutils fakeroot

make --no-print-directory nginx-module >/dev/null
make --no-print-directory lighttpd-module >/dev/null
cargo build --release --quiet

version=$(crate_version)
major=${version%%.*}
debversion=$version-1
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
# Debian's tools take the packager from DEBFULLNAME and DEBEMAIL; without
# them the packages name a placeholder (lintian: bogus-mail-host).
maintainer="${DEBFULLNAME:-libpseudostream maintainers} <${DEBEMAIL:-pseudostream@localhost}>"
homepage="https://github.com/pseudostream/libpseudostream"
nginx_abi=$(apt-cache show nginx 2>/dev/null | sed -n 's/^Provides:.*\(nginx-abi-[^, ]*\).*/\1/p' | head -n 1)
[[ -n $nginx_abi ]] || die "cannot tell which nginx-abi-* Debian's nginx provides"
lighttpd_version=$(dpkg-query -W -f='${Version}' lighttpd)

out=$root/target/debian
work=$out/build
rm -rf "$work" "$out"/*.deb
mkdir -p "$work"

# Everything `make install` lays out, under /usr with the multiarch libdir.
stage=$work/stage
make --no-print-directory install DESTDIR="$stage" PREFIX=/usr LIBDIR="/usr/lib/$multiarch" >/dev/null
strip --strip-unneeded "$stage/usr/lib/$multiarch/libpseudostream.so.$version"
strip --strip-debug "$stage/usr/lib/$multiarch/libpseudostream.a"

# -------------------------------------------------------------- helpers --
copyright() { # the machine-readable copyright file of a package
  cat <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: libpseudostream
Source: $homepage

Files: *
Copyright: 2026 the libpseudostream authors
License: MIT or Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
 .
 Permission is hereby granted, free of charge, to any person obtaining a copy
 of this software and associated documentation files (the "Software"), to
 deal in the Software without restriction, including without limitation the
 rights to use, copy, modify, merge, publish, distribute, sublicense, and/or
 sell copies of the Software, and to permit persons to whom the Software is
 furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in
 all copies or substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
 FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS
 IN THE SOFTWARE.
EOF
}

# start_package NAME: a fresh tree with its doc directory; prints its path
start_package() {
  local dir=$work/$1
  mkdir -p "$dir/DEBIAN" "$dir/usr/share/doc/$1"
  copyright >"$dir/usr/share/doc/$1/copyright"
  printf '%s\n\n  * Built from the libpseudostream source tree (make deb).\n\n -- %s  %s\n' \
    "libpseudostream ($debversion) unstable; urgency=medium" "$maintainer" \
    "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")" \
    | gzip -9n >"$dir/usr/share/doc/$1/changelog.Debian.gz"
  echo "$dir"
}

# finish_package DIR: md5sums, sizes, permissions, then dpkg-deb
finish_package() {
  local dir=$1 name
  name=$(basename "$dir")
  (cd "$dir" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' \
    | sort -z | xargs -0r md5sum) >"$dir/DEBIAN/md5sums"
  find "$dir" -type d -exec chmod 0755 {} +
  find "$dir" -type f -path "$dir/DEBIAN/*" -exec chmod 0644 {} +
  for script in postinst prerm postrm; do
    [[ -f $dir/DEBIAN/$script ]] && chmod 0755 "$dir/DEBIAN/$script"
  done
  fakeroot dpkg-deb -Zxz --build "$dir" "$out/${name}_${debversion}_${arch}.deb" >/dev/null
  note "built target/debian/${name}_${debversion}_${arch}.deb"
}

# shlib_depends FILE...: the Depends dpkg-shlibdeps works out for binaries
shlib_depends() {
  local scratch=$work/shlibdeps
  mkdir -p "$scratch/debian"
  printf 'Source: libpseudostream\n\nPackage: libpseudostream0\nArchitecture: any\n' \
    >"$scratch/debian/control"
  (cd "$scratch" && dpkg-shlibdeps -O "$@" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}

installed_size() { du -sk --exclude=DEBIAN "$1" | cut -f1; }

# ------------------------------------------------------ libpseudostream0 --
lib=$(start_package "libpseudostream$major")
mkdir -p "$lib/usr/lib/$multiarch"
cp -a "$stage/usr/lib/$multiarch/libpseudostream.so.$version" \
  "$stage/usr/lib/$multiarch/libpseudostream.so.$major" "$lib/usr/lib/$multiarch/"
chmod 0644 "$lib/usr/lib/$multiarch/libpseudostream.so.$version"
echo "libpseudostream $major libpseudostream$major (>= $version)" >"$lib/DEBIAN/shlibs"
echo "activate-noawait ldconfig" >"$lib/DEBIAN/triggers"
cat >"$lib/DEBIAN/control" <<EOF
Package: libpseudostream$major
Source: libpseudostream
Version: $debversion
Architecture: $arch
Multi-Arch: same
Maintainer: $maintainer
Installed-Size: $(installed_size "$lib")
Depends: $(shlib_depends "$lib/usr/lib/$multiarch/libpseudostream.so.$version")
Section: libs
Priority: optional
Homepage: $homepage
Description: HTTP pseudostreaming of FLV and MP4 video (shared library)
 libpseudostream answers "movie.flv?start=..." and "movie.mp4?start=12.5"
 for web servers: it finds the keyframe to start at, builds the prefix the
 player needs (FLV header and codec configuration, a rewritten MP4 moov) and
 hands the server a plan of prefix bytes and one file range, or fills its
 buffers under a pacing clock.
 .
 This package holds the shared library.
EOF
finish_package "$lib"

# --------------------------------------------------- libpseudostream-dev --
dev=$(start_package libpseudostream-dev)
mkdir -p "$dev/usr/lib/$multiarch" "$dev/usr/include"
cp -a "$stage/usr/include/pseudostream" "$dev/usr/include/"
cp -a "$stage/usr/lib/$multiarch/libpseudostream.so" "$stage/usr/lib/$multiarch/libpseudostream.a" \
  "$stage/usr/lib/$multiarch/pkgconfig" "$dev/usr/lib/$multiarch/"
cat >"$dev/DEBIAN/control" <<EOF
Package: libpseudostream-dev
Source: libpseudostream
Version: $debversion
Architecture: $arch
Multi-Arch: same
Maintainer: $maintainer
Installed-Size: $(installed_size "$dev")
Depends: libpseudostream$major (= $debversion)
Section: libdevel
Priority: optional
Homepage: $homepage
Description: HTTP pseudostreaming of FLV and MP4 video (development files)
 libpseudostream answers "movie.flv?start=..." and "movie.mp4?start=12.5"
 for web servers behind a C ABI.
 .
 This package holds the C headers (pseudostream/pseudostream.h, and
 pseudostream_ffi.h for PHP FFI), the static library and the pkg-config
 file: pkg-config --cflags --libs pseudostream.
EOF
finish_package "$dev"

# ---------------------------------------- libnginx-mod-http-pseudostream --
name=libnginx-mod-http-pseudostream
conf=mod-http-pseudostream.conf
link=50-$conf
mod=$(start_package $name)
mkdir -p "$mod/usr/lib/nginx/modules" "$mod/usr/share/nginx/modules-available"
install -m 0644 target/nginx-build/objs/ngx_http_pseudostream_module.so "$mod/usr/lib/nginx/modules/"
strip --strip-unneeded "$mod/usr/lib/nginx/modules/ngx_http_pseudostream_module.so"
echo "load_module modules/ngx_http_pseudostream_module.so;" \
  >"$mod/usr/share/nginx/modules-available/$conf"
# Enabled on a fresh install (and on a reinstall after a remove that had
# set it aside), left as the administrator had it otherwise; set aside as
# $link.removed on remove, gone on purge: what Debian's module packages do.
cat >"$mod/DEBIAN/postinst" <<EOF
#!/bin/sh
set -e
enabled=/etc/nginx/modules-enabled/$link
if [ "\$1" = configure ]; then
    if [ -z "\$2" ] || [ -L "\$enabled.removed" ]; then
        rm -f "\$enabled.removed"
        mkdir -p /etc/nginx/modules-enabled
        ln -sf /usr/share/nginx/modules-available/$conf "\$enabled"
    fi
    dpkg-trigger --no-await nginx-reload 2>/dev/null || true
fi
EOF
cat >"$mod/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
enabled=/etc/nginx/modules-enabled/$link
if [ "\$1" = remove ] || [ "\$1" = deconfigure ]; then
    if [ -L "\$enabled" ]; then
        mv "\$enabled" "\$enabled.removed"
    fi
fi
EOF
cat >"$mod/DEBIAN/postrm" <<EOF
#!/bin/sh
set -e
enabled=/etc/nginx/modules-enabled/$link
if [ "\$1" = purge ]; then
    rm -f "\$enabled" "\$enabled.removed"
fi
if [ "\$1" = remove ]; then
    dpkg-trigger --no-await nginx-reload 2>/dev/null || true
fi
EOF
cat >"$mod/DEBIAN/control" <<EOF
Package: $name
Source: libpseudostream
Version: $debversion
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(installed_size "$mod")
Depends: $nginx_abi, $(shlib_depends "$mod/usr/lib/nginx/modules/ngx_http_pseudostream_module.so")
Recommends: nginx
Section: httpd
Priority: optional
Homepage: $homepage
Description: HTTP pseudostreaming of FLV and MP4 for nginx
 The pseudostream directive serves "movie.flv?start=..." (a byte offset or
 seconds) and "movie.mp4?start=12.5&end=30" from keyframes, with the codec
 headers or a rewritten moov the player needs, Range and validators, and
 pacing; libpseudostream is linked into the module.
EOF
finish_package "$mod"

# --------------------------------------------- lighttpd-mod-pseudostream --
name=lighttpd-mod-pseudostream
conf=20-pseudostream.conf
lt=$(start_package $name)
mkdir -p "$lt/usr/lib/lighttpd" "$lt/etc/lighttpd/conf-available"
install -m 0644 target/lighttpd-build/mod_pseudostream.so "$lt/usr/lib/lighttpd/"
strip --strip-unneeded "$lt/usr/lib/lighttpd/mod_pseudostream.so"
cat >"$lt/etc/lighttpd/conf-available/$conf" <<'EOF'
# HTTP pseudostreaming of FLV and MP4 (libpseudostream): movie.flv?start=...
# and movie.mp4?start=12.5&end=30. Enable with: lighty-enable-mod pseudostream
# Settings (pseudostream.start-unit, .rate, ...): /usr/share/doc/lighttpd-mod-pseudostream/README.md
server.modules += ( "mod_pseudostream" )
pseudostream.extensions = ( ".flv", ".mp4", ".m4v", ".m4a", ".mov" )
EOF
cp bindings/lighttpd/README.md "$lt/usr/share/doc/$name/README.md"
echo "/etc/lighttpd/conf-available/$conf" >"$lt/DEBIAN/conffiles"
# Removing the module disables it, so that lighttpd still starts.
cat >"$lt/DEBIAN/prerm" <<EOF
#!/bin/sh
set -e
if [ "\$1" = remove ] && [ -L /etc/lighttpd/conf-enabled/$conf ]; then
    rm -f /etc/lighttpd/conf-enabled/$conf
fi
EOF
cat >"$lt/DEBIAN/control" <<EOF
Package: $name
Source: libpseudostream
Version: $debversion
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(installed_size "$lt")
Depends: lighttpd (= $lighttpd_version), $(shlib_depends "$lt/usr/lib/lighttpd/mod_pseudostream.so")
Section: httpd
Priority: optional
Homepage: $homepage
Description: HTTP pseudostreaming of FLV and MP4 for lighttpd
 mod_pseudostream serves "movie.flv?start=..." (a byte offset or seconds)
 and "movie.mp4?start=12.5&end=30" from keyframes, with the codec headers or
 a rewritten moov the player needs, Range and validators, and pacing over
 HTTP/1.1 and HTTP/2; libpseudostream is linked into the module.
EOF
finish_package "$lt"
