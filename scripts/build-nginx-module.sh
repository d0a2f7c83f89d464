#!/usr/bin/env bash
# Build the nginx dynamic module bindings/nginx (ngx_http_pseudostream_module)
# against Debian's nginx, leaving
#   target/nginx-build/objs/ngx_http_pseudostream_module.so
# for `load_module` in the distribution's nginx (Debian 12: nginx 1.22).
#
# Idempotent: installs nginx, nginx-dev (the nginx source tree Debian ships
# for third-party modules) and the build tools with apt-get only when they
# are missing (needs root then), builds libpseudostream (cargo build
# --release), copies the nginx tree into target/nginx-build/ and configures
# it once with the flags nginx was built with (its conf_flags file), then
# runs `make -f objs/Makefile modules`. Reruns only rebuild what changed.
set -euo pipefail
# shellcheck source=lib/build.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/build.sh"

build=$root/target/nginx-build
module=ngx_http_pseudostream_module

# ------------------------------------------------------------ packages --
need_packages nginx nginx-dev gcc make libc6-dev libpcre2-dev libssl-dev zlib1g-dev

# The tree nginx-dev installs (headers, auto/, configure, conf_flags).
flags_file=$(dpkg -L nginx-dev | grep '/conf_flags$' | head -n 1) \
  || die "nginx-dev installs no conf_flags file"
src=$(dirname "$flags_file")
[[ -x $src/configure ]] || die "$src/configure missing (nginx-dev incomplete?)"
nginx_version=$(dpkg-query -W -f='${Version}' nginx-dev)

# ------------------------------------------------------------- library --
build_library

# -------------------------------------------------------- nginx source --
# A new nginx-dev version, or a changed module config, means a fresh tree.
# shellcheck disable=SC1090
source "$flags_file"   # defines the NGX_CONF_FLAGS array
declare -p NGX_CONF_FLAGS >/dev/null 2>&1 || die "$flags_file defines no NGX_CONF_FLAGS"

conf_args=(
  "${NGX_CONF_FLAGS[@]}"
  --with-compat
  # Debian's own compiler and linker flags (see `nginx -V`); -fPIC for the .so.
  --with-cc-opt="-g -O2 -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2"
  --with-ld-opt="-Wl,-z,relro -Wl,-z,now -fPIC"
  --add-dynamic-module="$root/bindings/nginx"
)
stamp_text=$(printf '%s\n' "nginx-dev $nginx_version" "${conf_args[@]}"; cat "$root/bindings/nginx/config")

if [[ ! -f $build/objs/Makefile || ! -f $build/.pseudostream-stamp ]] \
  || [[ $(cat "$build/.pseudostream-stamp") != "$stamp_text" ]]; then
  note "copying $src to $build"
  rm -rf "$build"
  mkdir -p "$build"
  cp -a "$src/." "$build/"
  note "configuring nginx $nginx_version with --add-dynamic-module=bindings/nginx"
  (cd "$build" && ./configure "${conf_args[@]}") >"$root/target/nginx-configure.log" 2>&1 \
    || { tail -n 30 "$root/target/nginx-configure.log" >&2; die "configure failed (target/nginx-configure.log)"; }
  printf '%s' "$stamp_text" >"$build/.pseudostream-stamp"
fi

# objs/Makefile does not know the library: relink when it changed.
so=$build/objs/$module.so
if [[ -f $so && $lib -nt $so ]]; then
  rm -f "$so"
fi

note "make -f objs/Makefile modules"
(cd "$build" && make -f objs/Makefile modules) >"$root/target/nginx-make.log" 2>&1 \
  || { tail -n 40 "$root/target/nginx-make.log" >&2; die "make failed (target/nginx-make.log)"; }

[[ -f $so ]] || die "$so was not produced"
note "ok: ${so#"$root"/}"
note "use it with: load_module $so;"
