#!/usr/bin/env bash
# The Debian packages' round trip on this machine (root, Debian 12):
#
# 1. `make deb`; lintian finds no error or warning in the packages (but the
#    placeholder maintainer address, unless DEBEMAIL is set, and the Debian
#    archive's bug-closing rule for first uploads); then
#    `apt-get install ./target/debian/*.deb`: apt resolves their dependencies
#    (the nginx ABI for the module);
# 2. the library is in ld.so's cache, pkg-config finds it on its default
#    path, a C program built in a temporary directory against it writes a
#    seek byte for byte as the CLI does; PHP and Ruby load it by its SONAME
#    (PHP with the installed header); the module is enabled through
#    /etc/nginx/modules-enabled/;
# 3. Debian's nginx, with a configuration that includes modules-enabled/
#    like /etc/nginx/nginx.conf does and a site with `pseudostream;`, serves
#    a seek equal to the library's and ffmpeg decodes it; Debian's lighttpd,
#    with the module enabled by lighty-enable-mod, does the same;
# 4. removing the nginx module sets its link aside (nginx still starts), a
#    reinstall enables it again; removing the lighttpd module disables it;
#    a purge of the four leaves none of their files, no link, nothing in
#    ld.so's cache.
#
# Installs and removes the packages for real: run it on a test machine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/servers.sh
root=$(pwd)

die() { echo "test-debs: error: $*" >&2; exit 1; }
note() { echo "test-debs: $*"; }

[[ $(id -u) -eq 0 ]] || die "needs root (it installs and purges packages)"
packages=(libnginx-mod-http-pseudostream lighttpd-mod-pseudostream libpseudostream-dev libpseudostream0)
lighttpd_conf=/etc/lighttpd/conf-enabled/20-pseudostream.conf
link=/etc/nginx/modules-enabled/50-mod-http-pseudostream.conf
apt=(apt-get -o DPkg::Lock::Timeout=600 -y -qq)

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]; }
purge_all() { DEBIAN_FRONTEND=noninteractive "${apt[@]}" purge "${packages[@]}" >/dev/null 2>&1 || true; }

work=$(mktemp -d)
chmod 755 "$work"
nginx_pid=
lighttpd_pid=
cleanup() {
  [[ -n $nginx_pid ]] && kill "$nginx_pid" 2>/dev/null
  [[ -n $lighttpd_pid ]] && kill "$lighttpd_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

make --no-print-directory deb
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
debs=("$root"/target/debian/*_"$version"-1_*.deb)
[[ ${#debs[@]} -eq 4 ]] || die "expected 4 packages, found: ${debs[*]}"

# --------------------------------------------------------------- lintian --
# shellcheck source=lib/apt.sh
. scripts/lib/apt.sh
mapfile -t missing < <(apt_missing lintian)
apt_install test-debs "${missing[@]}"
suppressed=initial-upload-closes-no-bugs
[[ -n ${DEBEMAIL:-} ]] || suppressed+=,bogus-mail-host,bogus-mail-host-in-debian-changelog
lintian --fail-on error,warning --suppress-tags "$suppressed" --tag-display-limit 0 \
  "${debs[@]}" >"$work/lintian.log" 2>&1 \
  || { grep -v 'running with root privileges' "$work/lintian.log" >&2; die "lintian"; }
note "lintian: no error or warning (suppressed: $suppressed)"

# ------------------------------------------------------------- install --
purge_all
note "apt-get install ${debs[*]##*/}"
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${debs[@]}" >"$work/apt.log" 2>&1 \
  || { tail -n 20 "$work/apt.log"; die "apt-get install failed"; }
for p in "${packages[@]}"; do installed "$p" || die "$p not installed"; done
for p in "${packages[@]}"; do dpkg -L "$p"; done | sort -u >"$work/files"

ldconfig -p | grep -E "libpseudostream.so.0 .*=> (/usr)?/lib/.*/libpseudostream.so.0$" >/dev/null \
  || die "libpseudostream.so.0 is not in ld.so's cache"
[[ $(pkg-config --modversion pseudostream) == "$version" ]] || die "pkg-config does not find pseudostream $version"
[[ $(readlink "$link") == /usr/share/nginx/modules-available/mod-http-pseudostream.conf ]] \
  || die "$link does not point at the module's snippet"

# -------------------------------------------------- used from outside --
cp tests/install/seek.c "$work/"
(cd "$work" && cc -std=c11 -Wall -Werror -o seek seek.c $(pkg-config --cflags --libs pseudostream))
ldd "$work/seek" | grep -E 'libpseudostream.so.0 => (/usr)?/lib/' >/dev/null || die "seek does not load the packaged library"
cp samples/sample.flv "$work/"
chmod 644 "$work/sample.flv"
target/release/examples/pseudostream cut "$work/sample.flv" start=40 --unit seconds >"$work/want.flv" 2>/dev/null
"$work/seek" "$work/sample.flv" 40 >"$work/got.flv" 2>/dev/null
cmp -s "$work/want.flv" "$work/got.flv" || die "the packaged library's seek differs from the CLI's"

php_version=$(env -u PSEUDOSTREAM_LIB -u PSEUDOSTREAM_HEADER php -d ffi.enable=1 -r \
  'require "bindings/php/autoload.php"; $l = Pseudostream\Library::get(); echo $l->version(), " ", $l->path;')
[[ $php_version == "$version libpseudostream.so.0" ]] || die "PHP loaded: '$php_version'"
if command -v ruby >/dev/null && ruby -e 'require "ffi"' 2>/dev/null; then
  ruby_version=$(env -u PSEUDOSTREAM_LIB ruby -Ibindings/ruby/lib -rpseudostream -e 'print Pseudostream.library_version')
  [[ $ruby_version == "$version" ]] || die "Ruby loaded: '$ruby_version'"
fi
note "C (pkg-config), PHP and Ruby use the packaged libpseudostream.so.0"

# ------------------------------------------------------ Debian's nginx --
reserve_port port
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
include /etc/nginx/modules-enabled/*.conf;
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        location /video/ {
            alias $work/;
            pseudostream;
            pseudostream_start_unit seconds;
        }
    }
}
EOF
nginx -t -q -c "$work/nginx/nginx.conf" || die "nginx -t refused the site"
nginx -c "$work/nginx/nginx.conf" &
nginx_pid=$!
wait_listening "$port" nginx "$nginx_pid" || die "$(tail -n 3 "$work/nginx/error.log")"
status=$(curl -s -o "$work/served.flv" -w '%{http_code}' "http://127.0.0.1:$port/video/sample.flv?start=40")
[[ $status == 200 ]] || die "nginx answered $status: $(tail -n 3 "$work/nginx/error.log")"
cmp -s "$work/want.flv" "$work/served.flv" || die "nginx's seek differs from the library's"
ffmpeg -v error -i "$work/served.flv" -f null - 2>"$work/ffmpeg.log" && [[ ! -s $work/ffmpeg.log ]] \
  || die "ffmpeg: $(head -n 3 "$work/ffmpeg.log")"
kill -QUIT "$nginx_pid"
wait "$nginx_pid" 2>/dev/null || true
nginx_pid=
note "Debian's nginx with the packaged module: seek of $(stat -c %s "$work/served.flv") bytes, equal, decoded"

# ---------------------------------------------------- Debian's lighttpd --
lighty-enable-mod pseudostream >/dev/null
[[ $(readlink -f "$lighttpd_conf") == /etc/lighttpd/conf-available/20-pseudostream.conf ]] \
  || die "lighty-enable-mod did not enable the module"
reserve_port port
mkdir -p "$work/lighttpd"
cat >"$work/lighttpd/lighttpd.conf" <<EOF
server.document-root = "$work"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$work/lighttpd/error.log"
include "$lighttpd_conf"
pseudostream.start-unit = "seconds"
EOF
lighttpd -tt -f "$work/lighttpd/lighttpd.conf" || die "lighttpd -tt refused the packaged module"
lighttpd -D -f "$work/lighttpd/lighttpd.conf" &
lighttpd_pid=$!
wait_listening "$port" lighttpd "$lighttpd_pid" || die "$(tail -n 3 "$work/lighttpd/error.log")"
status=$(curl -s -o "$work/lighttpd.flv" -w '%{http_code}' "http://127.0.0.1:$port/sample.flv?start=40")
[[ $status == 200 ]] || die "lighttpd answered $status: $(tail -n 3 "$work/lighttpd/error.log")"
cmp -s "$work/want.flv" "$work/lighttpd.flv" || die "lighttpd's seek differs from the library's"
kill "$lighttpd_pid"
wait "$lighttpd_pid" 2>/dev/null || true
lighttpd_pid=
DEBIAN_FRONTEND=noninteractive "${apt[@]}" remove lighttpd-mod-pseudostream >/dev/null
[[ ! -e $lighttpd_conf && ! -L $lighttpd_conf ]] || die "removing the lighttpd module left it enabled"
note "Debian's lighttpd with the packaged module (lighty-enable-mod): the same seek; removed, it is disabled"

# ---------------------------------------------------- remove and purge --
DEBIAN_FRONTEND=noninteractive "${apt[@]}" remove libnginx-mod-http-pseudostream >/dev/null
[[ ! -e $link && -L $link.removed ]] || die "remove did not set $link aside"
sed -i '/location \/video\//,/}/d' "$work/nginx/nginx.conf"
nginx -t -q -c "$work/nginx/nginx.conf" || die "nginx -t fails after the module's removal"
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${debs[0]%/*}"/libnginx-mod-http-pseudostream_"$version"-1_*.deb >/dev/null
[[ -L $link && ! -e $link.removed ]] || die "a reinstall did not enable the module again"

purge_all
for p in "${packages[@]}"; do
  ! installed "$p" || die "$p still installed"
  [[ -z $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -v 'not-installed') ]] \
    || die "$p left in dpkg: $(dpkg-query -W -f='${Status}' "$p")"
done
while read -r f; do
  [[ -d $f || ! -e $f && ! -L $f ]] || die "purge left $f"
done <"$work/files"
[[ ! -e $link && ! -L $link && ! -L $link.removed ]] || die "purge left the modules-enabled link"
! ldconfig -p | grep libpseudostream >/dev/null || die "libpseudostream is still in ld.so's cache"
note "remove sets the link aside, reinstall enables it, purge leaves nothing: ok"
