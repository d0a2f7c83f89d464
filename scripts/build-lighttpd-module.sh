#!/usr/bin/env bash
# Build the lighttpd module bindings/lighttpd (mod_pseudostream) against
# Debian's lighttpd, leaving
#   target/lighttpd-build/mod_pseudostream.so
# for `server.modules += ("mod_pseudostream")` in the distribution's
# lighttpd (Debian 12: lighttpd 1.4.69).
#
# Debian ships no lighttpd headers: the module builds against lighttpd's
# source package, fetched with apt-get source through a deb-src list kept
# under target/ (the system's apt sources are not touched), and configured
# with autotools as Debian's build is: lighttpd refuses a module whose
# LIGHTTPD_VERSION_ID differs (autotools encodes 1.4.69 as 0x10445), and
# config.h decides struct layouts (PCRE2, inotify, xattr).
#
# Idempotent: installs lighttpd and the build tools with apt-get only when
# they are missing (needs root then), builds libpseudostream (cargo build
# --release), fetches and configures the source once per lighttpd version,
# then compiles the module with the library linked in and its symbols
# hidden (lighttpd dlopens modules with RTLD_GLOBAL).
set -euo pipefail
# shellcheck source=lib/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/build.sh"

out=$root/target/lighttpd-build
module=mod_pseudostream

# ------------------------------------------------------------ packages --
need_packages lighttpd dpkg-dev xz-utils gcc make libc6-dev libpcre2-dev pkg-config

version=$(dpkg-query -W -f='${Version}' lighttpd)
upstream=${version%%-*}
upstream=${upstream#*:}

# ------------------------------------------------------------- library --
build_library

# ----------------------------------------------------- lighttpd source --
apt_dir=$out/apt
src=$out/lighttpd-$upstream
stamp_text="lighttpd $version"

if [[ ! -f $src/config.h || ! -f $out/.source-stamp ]] \
  || [[ $(cat "$out/.source-stamp") != "$stamp_text" ]]; then
  rm -rf "$out"
  mkdir -p "$apt_dir/lists/partial"
  # The suite Debian's lighttpd comes from, for the matching source.
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
    "http://deb.debian.org/debian" "$codename" >"$apt_dir/sources.list"
  apt_src=(apt-get -o Dir::Etc::SourceList="$apt_dir/sources.list"
    -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$apt_dir/lists"
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  note "fetching the source of lighttpd $version"
  "${apt_src[@]}" update -qq >"$out/apt.log" 2>&1 \
    || { tail -n 20 "$out/apt.log" >&2; die "apt-get update (deb-src) failed"; }
  (cd "$out" && "${apt_src[@]}" source --only-source "lighttpd=$version") >>"$out/apt.log" 2>&1 \
    || { tail -n 20 "$out/apt.log" >&2; die "apt-get source lighttpd=$version failed"; }
  [[ -d $src ]] || die "no $src after apt-get source"

  # Debian's configure options that change what a module sees (see
  # debian/rules); the others pick libraries for other modules.
  note "configuring lighttpd $upstream (autotools, as Debian builds it)"
  (cd "$src" && ./configure --disable-dependency-tracking \
    --libdir=/usr/lib/lighttpd --libexecdir=/usr/lib/lighttpd \
    --with-attr --with-pcre2) >"$out/configure.log" 2>&1 \
    || { tail -n 30 "$out/configure.log" >&2; die "configure failed (target/lighttpd-build/configure.log)"; }
  printf '%s' "$stamp_text" >"$out/.source-stamp"
fi

# The plugin version lighttpd checks, and config.h's choices, as Debian's.
want_id=$(printf '0x%x%02x%02x' $(tr '.' ' ' <<<"$upstream"))
grep -q "define LIGHTTPD_VERSION_ID $want_id\$" "$src/config.h" \
  || die "config.h has no LIGHTTPD_VERSION_ID $want_id"
for define in HAVE_PCRE2_H HAVE_SYS_INOTIFY_H HAVE_XATTR; do
  grep -q "define $define 1" "$src/config.h" || die "config.h lacks $define (Debian's build has it)"
done

# -------------------------------------------------------------- module --
so=$out/$module.so
c=$root/bindings/lighttpd/$module.c
if [[ ! -f $so || $c -nt $so || $lib -nt $so || $root/include/pseudostream.h -nt $so
  || ${BASH_SOURCE[0]} -nt $so ]]; then
  note "compiling $module.so"
  printf '{ global: %s_plugin_init; local: *; };\n' "$module" >"$out/$module.map"
  # Debian's hardening flags (dpkg-buildflags), as for its own modules.
  cc -std=gnu99 -O2 -g -fPIC -shared -Wall -Wextra -Werror -Wno-unused-parameter \
    -fstack-protector-strong -Wformat -Werror=format-security -D_FORTIFY_SOURCE=2 \
    -fmacro-prefix-map="$root/bindings/lighttpd/=" \
    -DHAVE_CONFIG_H -I"$src" -I"$src/src" -I"$root/include" \
    "$c" -o "$so.tmp" \
    -Wl,--version-script="$out/$module.map" -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack \
    "$lib" -lpthread -ldl -lm \
    2>"$out/compile.log" || { cat "$out/compile.log" >&2; die "compiling the module failed"; }
  [[ -s $out/compile.log ]] && cat "$out/compile.log" >&2
  mv "$so.tmp" "$so"
fi

exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}')
[[ $exported == "${module}_plugin_init" ]] \
  || die "$so exports more than ${module}_plugin_init: $(tr '\n' ' ' <<<"$exported")"

note "ok: ${so#"$root"/}"
note "load it: copy it to /usr/lib/lighttpd/ (or start lighttpd with -m DIR) and add"
note "  server.modules += (\"$module\")"
note "  pseudostream.extensions = (\".flv\", \".mp4\")"
