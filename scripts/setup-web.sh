#!/usr/bin/env bash
# Installs what the demo page and the browser tests need on Debian 12, run as
# root: Debian's chromium (apt) and web/node_modules from npm — mpegts.js,
# flv.js, playwright-core and mp4box (GPAC's mp4box.js, a reader the tests
# check MP4s with) at the exact versions of web/package-lock.json
# (npm ci). node_modules is never committed. Idempotent: does nothing, and
# prints one line, when everything is in place. Needs Node.js >= 20 with npm
# and access to the npm registry for the first install.
#
#   --packages-only   only web/node_modules (the demo page needs no Chromium)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "setup-web: error: $*" >&2; exit 1; }

browser=1
case ${1-} in
  "") ;;
  --packages-only) browser=0 ;;
  *) die "usage: $0 [--packages-only]" ;;
esac

if ((browser)); then
  # shellcheck source=lib/apt.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
  [[ -x /usr/bin/chromium ]] || apt_install setup-web chromium
  [[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium still missing after install"
fi

command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  || die "node and npm not found: install Node.js 20 or later"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || die "Node.js $(node --version) is too old: playwright-core needs 20 or later"

# What must exist after an install.
wanted=(web/node_modules/mpegts.js/dist/mpegts.js
        web/node_modules/flv.js/dist/flv.js
        web/node_modules/playwright-core/index.mjs
        web/node_modules/mp4box/dist/mp4box.all.js)
# npm writes node_modules/.package-lock.json after every install: when it is
# newer than the manifest and the lock, node_modules matches them.
installed=web/node_modules/.package-lock.json
current=1
for f in "${wanted[@]}" "$installed"; do [[ -e $f ]] || current=0; done
if ((current)); then
  for f in web/package.json web/package-lock.json; do
    [[ ! -e $f || $installed -nt $f ]] || current=0
  done
fi
if ((!current)); then
  echo "setup-web: installing web/node_modules from npm"
  log=$(mktemp)
  if [[ -f web/package-lock.json ]]; then
    npm_cmd=(npm ci)
  else
    npm_cmd=(npm install)
  fi
  if ! (cd web && "${npm_cmd[@]}" --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    die "'${npm_cmd[*]}' failed in web/"
  fi
  rm -f "$log"
fi
for f in "${wanted[@]}"; do
  [[ -e $f ]] || die "$f missing after npm install"
done
version() { node -p "require('./web/node_modules/$1/package.json').version"; }
packages="mpegts.js $(version mpegts.js), flv.js $(version flv.js), playwright-core $(version playwright-core), mp4box $(version mp4box)"
if ((browser)); then
  echo "setup-web: ok ($(/usr/bin/chromium --version 2>/dev/null | head -n1); $packages)"
else
  echo "setup-web: ok ($packages)"
fi
