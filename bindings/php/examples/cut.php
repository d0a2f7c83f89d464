<?php

// Writes the body the library answers for one request to stdout (status and
// headers to stderr), with no web server:
//
//   php -d ffi.enable=1 bindings/php/examples/cut.php samples/sample.flv 'start=12.5' start_unit=seconds > seek.flv
//   php -d ffi.enable=1 bindings/php/examples/cut.php samples/sample.flv info
//
// Arguments after the query are library options as KEY=VALUE (a bare
// `seconds` or `bytes` is the start unit).

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Pseudostream\Exchange;
use Pseudostream\Media;
use Pseudostream\Options;
use Pseudostream\PseudostreamException;

[, $file, $query] = $argv + [null, null, ''];
if ($file === null) {
    fwrite(STDERR, "usage: cut.php FILE [QUERY|info] [KEY=VALUE...]\n");
    exit(2);
}

try {
    if ($query === 'info') {
        echo Media::open($file)->infoJson(), "\n";
        exit(0);
    }
    $options = new Options();
    foreach (array_slice($argv, 3) as $setting) {
        // A bare word is the older third argument, the start unit.
        [$key, $value] = str_contains($setting, '=') ? explode('=', $setting, 2) : ['start_unit', $setting];
        $options->set($key, $value);
    }
    $exchange = new Exchange('GET', $query);
    $exchange->openPath($file);
    $exchange->respond($options);
    fwrite(STDERR, "HTTP {$exchange->status()} {$exchange->detail()}\n");
    foreach ($exchange->headers() as [$name, $value]) {
        fwrite(STDERR, "$name: $value\n");
    }
    $exchange->pump(static fn (string $bytes): bool => fwrite(STDOUT, $bytes) !== false);
    exit($exchange->status() < 400 ? 0 : 1);
} catch (PseudostreamException $e) {
    fwrite(STDERR, "{$e->getMessage()}\n");
    exit(1);
}
