#!/usr/bin/env bash
# Runs every test of libpseudostream. Installs what it needs on Debian 12
# (run as root the first time), then: formatting and lints, the generated
# header check, unit and integration tests (ffmpeg decodes every seek), the
# hosts run for real (nginx and lighttpd modules, PHP, ASP.NET on Mono, Ruby
# Rack; HTTP/2 through curl; one request matrix that every host must answer
# with the library's status and headers), `make install` used from outside the tree, the
# Debian packages installed, used and purged (this installs packages), the
# players in Chromium (mpegts.js, flv.js, native MP4 cuts), the C ABI test under sanitizers,
# and the PHP FFI header check. The host tests wait on real time (paced
# bodies), so they run in lanes side by side.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=lib/lanes.sh
. scripts/lib/lanes.sh
# Every test runs: one whose tools are missing fails instead of being skipped
# as in the quick loop (plain `cargo test`).
export PSEUDOSTREAM_TEST_ALL=1

# Each step's heading; the time the one before it took, so a slow step
# shows in the log (CI's budget is 20 minutes).
step_name="" step_start=$SECONDS
step() {
    [[ -z $step_name ]] || printf -- '-- %s: %d s\n' "$step_name" $((SECONDS - step_start))
    step_name=${1%%:*} step_start=$SECONDS
    printf '\n== %s\n' "$*"
}

step "dependencies"
./scripts/setup-deps.sh
command -v cargo >/dev/null || { echo "cargo not found: install stable Rust (rustup)" >&2; exit 1; }

step "format and lints"
if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all -- --check
else
    echo "rustfmt not installed: skipped"
fi
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --release --all-targets -- -D warnings
else
    echo "clippy not installed: skipped"
fi

step "build and generated header"
cargo build --release
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git diff --exit-code -- include/ || {
        echo "include/ differs from the generated headers: commit them" >&2
        exit 1
    }
fi

step "test media"
./scripts/make-test-media.sh target/test-media
./scripts/make-mp4-media.sh target/test-media/mp4

step "unit and integration tests"
cargo test --release

step "hosts and players, built and set up: nginx and lighttpd modules, PHP FFI, ASP.NET on Mono, Ruby Rack, mpegts.js and flv.js"
make --no-print-directory nginx-module
make --no-print-directory lighttpd-module
./scripts/setup-php.sh
./scripts/setup-dotnet.sh
./scripts/setup-ruby.sh
./scripts/setup-web.sh
cargo test --release --no-run --quiet

# The lanes below run side by side (scripts/lib/lanes.sh); each test binary
# takes its own ports and scratch directories.
lane_servers() {
    cargo test --release --test nginx --test lighttpd --test parity -- --include-ignored
    # make deb, apt-get install, Debian's nginx and lighttpd with the
    # packaged modules, purge.
    ./scripts/test-debs.sh
}
lane_apps() {
    cargo test --release --test host_dotnet --test host_php --test host_ruby -- --include-ignored
    # MediaInfo and mp4box.js read every MP4 made from an FLV.
    cargo test --release --test flv_as_mp4 -- --include-ignored
}
lane_installed() {
    # make install, pkg-config from outside the tree, the app hosts on it.
    ./scripts/test-install.sh
}
step "hosts run for real (every host answers as the library decides), installed like a C library, Debian packages"
run_lanes lane_servers lane_apps lane_installed

# One browser at a time: two Chromiums playing on two cores starved the
# hosts' pacing timers and a seek late in a GOP stalled.
step "players in Chromium: mpegts.js and flv.js seek, native MP4 cuts; example host, nginx and lighttpd modules, PHP and Ruby behind nginx"
cargo test --release --test browser_flv -- --include-ignored --nocapture
cargo test --release --test browser_mp4 -- --include-ignored --nocapture

step "C ABI under AddressSanitizer + UBSan"
make --no-print-directory c-test

step "PHP FFI loads the header"
php -d ffi.enable=1 tests/php/load_header.php target/release/libpseudostream.so samples/sample.flv

step "done"
printf '\nall tests passed in %d s\n' "$SECONDS"
