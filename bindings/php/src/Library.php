<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;

/**
 * The loaded C library: include/pseudostream_ffi.h declared with FFI::cdef
 * over libpseudostream.so.
 *
 * The library path comes from the argument, else the PSEUDOSTREAM_LIB
 * environment variable, else target/release/libpseudostream.so of the
 * repository this binding lives in; the header likewise from
 * PSEUDOSTREAM_HEADER or include/pseudostream_ffi.h.
 *
 * FFI must be enabled for the SAPI: the default `ffi.enable=preload` allows
 * it only on the command line and in preloaded code, so the built-in web
 * server, PHP-FPM and mod_php need `ffi.enable=1` (php.ini, or
 * `php -d ffi.enable=1 -S …`).
 */
final class Library
{
    private static ?Library $default = null;

    private function __construct(
        /** The FFI instance: every ps_* function and PS_* constant. */
        public readonly FFI $ffi,
        /** The shared library that was loaded. */
        public readonly string $path,
    ) {
    }

    /** Loads the library (a new FFI instance each call). */
    public static function load(?string $libraryPath = null, ?string $headerPath = null): self
    {
        $repo = dirname(__DIR__, 3);
        $library = $libraryPath ?? self::env('PSEUDOSTREAM_LIB') ?? $repo . '/target/release/libpseudostream.so';
        $header = $headerPath ?? self::env('PSEUDOSTREAM_HEADER') ?? $repo . '/include/pseudostream_ffi.h';
        if (!extension_loaded('ffi')) {
            throw new \RuntimeException('the PHP FFI extension is not loaded (Debian: php-cli ships it)');
        }
        if (!is_file($library)) {
            throw new \RuntimeException("libpseudostream not found at $library (cargo build --release, or set PSEUDOSTREAM_LIB)");
        }
        $declarations = @file_get_contents($header);
        if ($declarations === false) {
            throw new \RuntimeException("cannot read the FFI header $header (set PSEUDOSTREAM_HEADER)");
        }
        try {
            $ffi = FFI::cdef($declarations, $library);
        } catch (FFI\Exception $e) {
            throw new \RuntimeException(
                "cannot load $library: {$e->getMessage()} (FFI must be enabled: ffi.enable=1 in php.ini or php -d ffi.enable=1)",
                0,
                $e,
            );
        }
        return new self($ffi, $library);
    }

    /** The library every wrapper uses unless given another: loaded on first use. */
    public static function get(): self
    {
        return self::$default ??= self::load();
    }

    /** Makes `$library` the one get() returns. */
    public static function setDefault(self $library): void
    {
        self::$default = $library;
    }

    /** The library version, e.g. "0.1.0". */
    public function version(): string
    {
        return $this->ffi->ps_version();
    }

    /**
     * Sets the largest MP4 moov box the library reads (default 64 MiB; 0
     * restores it); files with a larger one get 415. Process-wide: it holds
     * for every later request this PHP process serves (an FPM worker keeps
     * the library loaded), whichever script set it.
     */
    public function setMp4MaxMoovSize(int $bytes): void
    {
        if ($bytes < 0) {
            throw new \InvalidArgumentException("mp4_max_moov_size $bytes is negative");
        }
        $this->check($this->ffi->ps_mp4_set_moov_limit($bytes), 'ps_mp4_set_moov_limit');
    }

    /**
     * Throws a PseudostreamException for a failed call; `$call` names it in
     * the message. Returns quietly for PS_OK.
     */
    public function check(int $status, string $call): void
    {
        if ($status !== 0) {
            throw PseudostreamException::fromStatus($this, $status, $call);
        }
    }

    private static function env(string $name): ?string
    {
        $value = getenv($name);
        return $value === false || $value === '' ? null : $value;
    }
}
