<?php

// Writes the response body for one seek to stdout, with no web server:
//
//   php -d ffi.enable=1 bindings/php/examples/cut.php samples/sample.flv 'start=12.5' seconds > seek.flv
//   php -d ffi.enable=1 bindings/php/examples/cut.php samples/sample.flv info
//
// Shows the wrappers a host uses: Options, Media, Request, Plan, Stream.

declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use Pseudostream\Media;
use Pseudostream\Options;
use Pseudostream\Plan;
use Pseudostream\PseudostreamException;
use Pseudostream\Request;
use Pseudostream\Stream;

[, $file, $query, $unit] = $argv + [null, null, '', 'bytes'];
if ($file === null) {
    fwrite(STDERR, "usage: cut.php FILE [QUERY|info] [bytes|seconds]\n");
    exit(2);
}

try {
    $options = (new Options())->startUnit($unit);
    $media = Media::open($file);
    if ($query === 'info') {
        echo $media->infoJson(), "\n";
        exit(0);
    }
    $plan = Plan::create($media, $options, Request::parse($options, $query));
    $info = $plan->info();
    fwrite(STDERR, sprintf(
        "%d bytes from %d ms to %d ms, ETag %s\n",
        $info['length'],
        $info['start_ms'],
        $info['end_ms'],
        $plan->etag(),
    ));
    $stream = Stream::create($media, $plan, 0, $info['length']);
    $stream->setPacing(0, 0);
    while ($stream->fill(intdiv(hrtime(true), 1000)) === Stream::DATA) {
        fwrite(STDOUT, $stream->chunk());
    }
} catch (PseudostreamException $e) {
    fwrite(STDERR, "HTTP {$e->httpStatus}: {$e->detail}\n");
    exit(1);
}
