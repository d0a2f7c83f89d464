# Sourced by the scripts that build or install libpseudostream (the module
# builds, build-debs.sh, test-install.sh): messages that name the script, the
# Debian packages it needs, the library built. Sets root to the repository.
# Needs `set -euo pipefail` in the caller.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script_name=$(basename "$0" .sh)

die() { echo "$script_name: error: $*" >&2; exit 1; }
note() { echo "$script_name: $*"; }

# shellcheck source=scripts/lib/apt.sh
source "$root/scripts/lib/apt.sh"

# need_packages PKG...: installs those of the Debian packages that are
# missing (root is needed then).
need_packages() {
  local missing=()
  mapfile -t missing < <(apt_missing "$@")
  apt_install "$script_name" "${missing[@]}"
}

# crate_version: the version in Cargo.toml.
crate_version() {
  sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1
}

# build_library: libpseudostream built (cargo build --release); sets lib to
# the static library the server modules link in.
build_library() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found (install stable Rust)"
  note "cargo build --release"
  (cd "$root" && cargo build --release --quiet)
  lib=$root/target/release/libpseudostream.a
  [[ -f $lib ]] || die "$lib was not built"
}
