#!/usr/bin/env bash
# Installs what the Ruby (ffi gem + Rack) host needs on Debian 12 (run as
# root): ruby, ruby-ffi, ruby-rack and puma. Idempotent: installs only the
# packages that are missing, then checks that Ruby loads ffi and rack and
# that puma runs.
set -euo pipefail

die() { echo "setup-ruby: error: $*" >&2; exit 1; }

missing=()
for pkg in ruby ruby-ffi ruby-rack puma; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "need root to install: ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found (Debian 12 expected); install manually: ${missing[*]}"
  echo "setup-ruby: installing: ${missing[*]}"
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  # Wait for another apt/dpkg run to finish rather than failing at once.
  apt=(apt-get -o DPkg::Lock::Timeout=600)
  "${apt[@]}" update -qq >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends \
    "${missing[@]}" >"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; die "apt-get install failed for: ${missing[*]}"; }
fi

# Verify the result.
command -v ruby >/dev/null 2>&1 || die "'ruby' still missing after install"
command -v puma >/dev/null 2>&1 || die "'puma' still missing after install"
ruby -rffi -rrack -e 1 2>/dev/null \
  || die "Ruby cannot load ffi and rack (ruby -rffi -rrack -e 1 failed)"
versions=$(ruby -rffi -rrack -e 'print "ruby #{RUBY_VERSION}, ffi #{FFI::VERSION}, rack #{Rack.release}"') \
  || die "cannot read the Ruby, ffi and rack versions"
puma_version=$(puma --version 2>/dev/null) || die "'puma --version' failed"
echo "setup-ruby: ok ($versions, $puma_version)"
