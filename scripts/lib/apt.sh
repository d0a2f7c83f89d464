# Sourced by the setup scripts: finds and installs missing Debian packages.
# Quiet on success; on failure prints apt's last lines and returns non-zero.

# Prints each named package that is not installed, one per line.
apt_missing() {
  local pkg
  for pkg in "$@"; do
    [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true) == "install ok installed" ]] \
      || echo "$pkg"
  done
}

# apt_install TAG PKG...: installs the packages (none: does nothing). TAG
# names the calling script in messages. Waits for another apt run to finish.
apt_install() {
  local tag=$1
  shift
  (($#)) || return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$tag: error: need root and apt-get (Debian 12) to install: $*" >&2
    return 1
  fi
  echo "$tag: installing: $*"
  local log apt=(apt-get -o DPkg::Lock::Timeout=600)
  log=$(mktemp)
  if ! "${apt[@]}" update -qq >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "$tag: error: apt-get update failed" >&2
    return 1
  fi
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends \
    "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    echo "$tag: error: apt-get install failed for: $*" >&2
    return 1
  fi
  rm -f "$log"
}
