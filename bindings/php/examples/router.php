<?php

// A media folder served by PHP's built-in web server through libpseudostream:
//
//   php -d ffi.enable=1 -S 127.0.0.1:8080 bindings/php/examples/router.php
//   curl -o seek.flv 'http://127.0.0.1:8080/sample.flv?start=12.5'
//
// Configuration from the environment (all optional):
//   PSEUDOSTREAM_MEDIA          folder to serve (default: samples/ of this repository)
//   PSEUDOSTREAM_LIB            a libpseudostream.so to use instead of the installed one
//   PSEUDOSTREAM_PREFIX         none | header | init (default) | full
//   PSEUDOSTREAM_START_UNIT     bytes (default) | seconds
//   PSEUDOSTREAM_PARAMS         renames, e.g. "start=t,end=e" (keys: start end ib fs bstart bend ri rs)
//   PSEUDOSTREAM_BURST          pacing burst in bytes
//   PSEUDOSTREAM_BURST_SECS     pacing burst in seconds of media
//   PSEUDOSTREAM_RATE           bytes per second, "auto" or "auto:1.5" (default: unpaced)
//   PSEUDOSTREAM_CLIENT_PACING  1 (default): requests may pace themselves with ri/rs; 0: not
//   PSEUDOSTREAM_METADATA       off | missing (default) | always: list keyframes in a rewritten onMetaData
//   PSEUDOSTREAM_CUT            exact (default) | keyframe: where MP4 cuts start to be presented
//   PSEUDOSTREAM_MP4_MAX_MOOV_SIZE  largest MP4 moov read, bytes (default 64 MiB); larger files get 415

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Pseudostream\MediaRoot;
use Pseudostream\Options;
use Pseudostream\Server;

// Warnings go to the server's log, never into a video stream.
ini_set('display_errors', 'stderr');

$env = static fn (string $name): string => (string) getenv($name);

try {
    $options = Options::fromConfig([
        'prefix' => $env('PSEUDOSTREAM_PREFIX'),
        'start_unit' => $env('PSEUDOSTREAM_START_UNIT'),
        'params' => $env('PSEUDOSTREAM_PARAMS'),
        'burst_bytes' => $env('PSEUDOSTREAM_BURST'),
        'burst_seconds' => $env('PSEUDOSTREAM_BURST_SECS'),
        'rate' => $env('PSEUDOSTREAM_RATE'),
        'client_pacing' => $env('PSEUDOSTREAM_CLIENT_PACING'),
        'metadata' => $env('PSEUDOSTREAM_METADATA'),
        'cut' => $env('PSEUDOSTREAM_CUT'),
        'mp4_max_moov_size' => $env('PSEUDOSTREAM_MP4_MAX_MOOV_SIZE'),
    ]);
    $root = new MediaRoot($env('PSEUDOSTREAM_MEDIA') ?: dirname(__DIR__, 3) . '/samples');
} catch (Throwable $e) {
    error_log('pseudostream router: ' . $e->getMessage());
    http_response_code(500);
    header('Content-Type: text/plain; charset=utf-8');
    echo "server misconfigured\n";
    return true;
}

(new Server($options))->handle($root);
return true;
