<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;

/**
 * The loaded C library: include/pseudostream_ffi.h declared with FFI::cdef
 * over libpseudostream.so.
 *
 * The library comes from the argument, else the PSEUDOSTREAM_LIB
 * environment variable (a path, e.g. a build tree's
 * target/release/libpseudostream.so), else the installed library by its
 * SONAME through the dynamic loader (`make install`, or the
 * libpseudostream0 package). The header comes from the argument, else
 * PSEUDOSTREAM_HEADER, else beside the library given by path (a build
 * tree's include/), else the installed one (include/pseudostream/ under
 * /usr/local or /usr), else this repository's include/.
 *
 * FFI must be enabled for the SAPI: the default `ffi.enable=preload` allows
 * it only on the command line and in preloaded code, so the built-in web
 * server, PHP-FPM and mod_php need `ffi.enable=1` (php.ini, or
 * `php -d ffi.enable=1 -S …`).
 */
final class Library
{
    /** The installed library's name for the dynamic loader (ABI version 0). */
    public const SONAME = 'libpseudostream.so.0';

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
        $byPath = $libraryPath ?? self::env('PSEUDOSTREAM_LIB');
        $library = $byPath ?? self::SONAME;
        $header = $headerPath ?? self::env('PSEUDOSTREAM_HEADER') ?? self::findHeader($byPath, $repo);
        if (!extension_loaded('ffi')) {
            throw new \RuntimeException('the PHP FFI extension is not loaded (Debian: php-cli ships it)');
        }
        if ($byPath !== null && !is_file($byPath)) {
            throw new \RuntimeException("libpseudostream not found at $byPath (cargo build --release, or unset PSEUDOSTREAM_LIB to use the installed library)");
        }
        $declarations = @file_get_contents($header);
        if ($declarations === false) {
            throw new \RuntimeException("cannot read the FFI header $header (set PSEUDOSTREAM_HEADER)");
        }
        try {
            $ffi = FFI::cdef($declarations, $library);
        } catch (FFI\Exception $e) {
            throw new \RuntimeException(
                "cannot load $library: {$e->getMessage()} (install libpseudostream or set PSEUDOSTREAM_LIB; FFI must be enabled: ffi.enable=1 in php.ini or php -d ffi.enable=1)",
                0,
                $e,
            );
        }
        return new self($ffi, $library);
    }

    /**
     * The FFI header for a library: a build tree's include/ when the
     * library was given by path inside one, else the installed header,
     * else this repository's.
     */
    private static function findHeader(?string $libraryPath, string $repo): string
    {
        $candidates = [];
        if ($libraryPath !== null) {
            // .../target/release/libpseudostream.so -> .../include/
            $candidates[] = dirname($libraryPath, 3) . '/include/pseudostream_ffi.h';
        }
        foreach (['/usr/local/include', '/usr/include'] as $dir) {
            $candidates[] = $dir . '/pseudostream/pseudostream_ffi.h';
        }
        $candidates[] = $repo . '/include/pseudostream_ffi.h';
        foreach ($candidates as $candidate) {
            if (is_file($candidate)) {
                return $candidate;
            }
        }
        return $candidates[0];
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
     * Sets the largest MP4 moov box the library reads (mp4_max_moov_size:
     * bytes or a size such as "64m"); files with a larger one get 415.
     * Process-wide: it holds for every later request this PHP process serves
     * (an FPM worker keeps the library loaded), whichever script set it.
     */
    public function setMp4MaxMoovSize(int|string $bytes): void
    {
        $this->check($this->ffi->ps_options_set(null, 'mp4_max_moov_size', (string) $bytes), 'ps_options_set');
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
