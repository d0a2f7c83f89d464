<?php

// A media folder served by PHP's built-in web server through libpseudostream:
//
//   php -d ffi.enable=1 -S 127.0.0.1:8080 bindings/php/examples/router.php
//   curl -o seek.flv 'http://127.0.0.1:8080/sample.flv?start=12.5'
//
// Configuration from the environment (all optional):
//   PSEUDOSTREAM_MEDIA   folder to serve (default: samples/ of this repository)
//   PSEUDOSTREAM_LIB     a libpseudostream.so to use instead of the installed one
//   PSEUDOSTREAM_<KEY>   every library key: PSEUDOSTREAM_START_UNIT=seconds,
//                        PSEUDOSTREAM_RATE=auto:1.25, PSEUDOSTREAM_CORS='*'…
//                        (the list: Pseudostream\Options::describe())

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Pseudostream\MediaRoot;
use Pseudostream\Options;
use Pseudostream\Server;

// Warnings go to the server's log, never into a video stream.
ini_set('display_errors', 'stderr');

try {
    $options = Options::fromEnvironment();
    $root = new MediaRoot(getenv('PSEUDOSTREAM_MEDIA') ?: dirname(__DIR__, 3) . '/samples');
} catch (Throwable $e) {
    error_log('pseudostream router: ' . $e->getMessage());
    http_response_code(500);
    header('Content-Type: text/plain; charset=utf-8');
    echo "server misconfigured\n";
    return true;
}

(new Server($options))->handle($root);
return true;
