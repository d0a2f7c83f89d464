#!/usr/bin/env bash
# Installs what the PHP FFI host (bindings/php) needs on Debian 12, run as
# root: php-cli, whose php8.2-common ships the FFI extension. Idempotent:
# installs nothing when PHP with FFI is already there. Then checks that FFI
# calls into C (and, once `cargo build --release` has run, that the binding
# loads libpseudostream).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "setup-php: error: $*" >&2; exit 1; }

has_php_ffi() {
  command -v php >/dev/null 2>&1 && php -r 'exit(extension_loaded("ffi") ? 0 : 1);' 2>/dev/null
}

# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
has_php_ffi || apt_install setup-php php-cli

# Verify: PHP >= 8.1, FFI loaded, and FFI able to call C when enabled.
command -v php >/dev/null 2>&1 || die "'php' still missing after install"
php -r 'exit(PHP_VERSION_ID >= 80100 ? 0 : 1);' || die "PHP $(php -r 'echo PHP_VERSION;') is older than 8.1"
has_php_ffi || die "the PHP FFI extension is not loaded (check /etc/php/*/cli/conf.d/20-ffi.ini)"
php -d ffi.enable=1 -r 'exit(FFI::cdef("int abs(int);", "libc.so.6")->abs(-7) === 7 ? 0 : 1);' 2>/dev/null \
  || die "PHP FFI cannot call into libc (php -d ffi.enable=1)"
lib=target/release/libpseudostream.so
binding="not checked: $lib not built yet"
if [[ -f $lib ]]; then
  version=$(PSEUDOSTREAM_LIB=$lib php -d ffi.enable=1 -r \
    'require "bindings/php/autoload.php"; echo Pseudostream\Library::get()->version();') \
    || die "the PHP binding cannot load $lib"
  binding="libpseudostream $version"
fi
echo "setup-php: ok (PHP $(php -r 'echo PHP_VERSION;') with FFI; $binding)"
