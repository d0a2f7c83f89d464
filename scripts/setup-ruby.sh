#!/usr/bin/env bash
# Installs what the Ruby (ffi gem + Rack) host needs on Debian 12 (run as
# root): ruby, ruby-ffi, ruby-rack and puma. Idempotent: installs only the
# packages that are missing, then checks that Ruby loads ffi and rack and
# that puma runs.
set -euo pipefail

die() { echo "setup-ruby: error: $*" >&2; exit 1; }

# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
mapfile -t missing < <(apt_missing ruby ruby-ffi ruby-rack puma)
apt_install setup-ruby "${missing[@]}"

# Verify the result.
command -v ruby >/dev/null 2>&1 || die "'ruby' still missing after install"
command -v puma >/dev/null 2>&1 || die "'puma' still missing after install"
ruby -rffi -rrack -e 1 2>/dev/null \
  || die "Ruby cannot load ffi and rack (ruby -rffi -rrack -e 1 failed)"
versions=$(ruby -rffi -rrack -e 'print "ruby #{RUBY_VERSION}, ffi #{FFI::VERSION}, rack #{Rack.release}"') \
  || die "cannot read the Ruby, ffi and rack versions"
puma_version=$(puma --version 2>/dev/null) || die "'puma --version' failed"
echo "setup-ruby: ok ($versions, $puma_version)"
