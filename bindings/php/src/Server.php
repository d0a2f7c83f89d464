<?php

declare(strict_types=1);

namespace Pseudostream;

/**
 * Answers requests for media files from PHP's SAPI (built-in server,
 * PHP-FPM, mod_php): status and headers with http_response_code() and
 * header(), the body streamed through one reused 64 KiB C buffer under the
 * library's pacing clock. Every decision (seek, Range, validators, pacing)
 * is the library's; every handle is freed before serve() returns.
 *
 *     $server = new Server($options);
 *     $server->handle(new MediaRoot('/srv/videos'));            // from $_SERVER
 *     $server->serve('/srv/videos/a.flv', 'start=12.5', ['Range' => 'bytes=0-99']);
 */
final class Server
{
    /** Request headers the library evaluates. */
    private const VALIDATORS = ['range', 'if-match', 'if-none-match', 'if-range'];

    public function __construct(private readonly Options $options, private readonly int $bufferSize = 65536)
    {
    }

    /**
     * Serves the current request (REQUEST_METHOD, REQUEST_URI, QUERY_STRING
     * and headers from $_SERVER) from files under `$root`.
     */
    public function handle(MediaRoot $root): void
    {
        $method = strtoupper((string) ($_SERVER['REQUEST_METHOD'] ?? 'GET'));
        if ($method !== 'GET' && $method !== 'HEAD') {
            $this->sendError(405, 'method not allowed', ['Allow' => 'GET, HEAD'], $method);
            return;
        }
        $uri = (string) ($_SERVER['REQUEST_URI'] ?? '/');
        $cut = strcspn($uri, '?#');
        $query = (string) ($_SERVER['QUERY_STRING'] ?? substr($uri, $cut + 1));
        try {
            $path = $root->resolve(substr($uri, 0, $cut));
        } catch (PseudostreamException $e) {
            $this->sendError($e->httpStatus, $e->detail, [], $method);
            return;
        }
        $this->serve($path, $query, self::requestHeaders(), $method);
    }

    /** Range and validator headers of the current request, from $_SERVER. */
    public static function requestHeaders(): array
    {
        $headers = [];
        foreach (self::VALIDATORS as $name) {
            $key = 'HTTP_' . strtoupper(str_replace('-', '_', $name));
            if (isset($_SERVER[$key])) {
                $headers[$name] = (string) $_SERVER[$key];
            }
        }
        return $headers;
    }

    /**
     * Answers one request for the file at `$path` (already checked to be
     * one the host may serve): `$query` without the '?', `$headers` by
     * name (any case; Range, If-Match, If-None-Match, If-Range are used),
     * `$method` GET or HEAD. Failures become their HTTP status with the
     * library's detail as a short text body.
     */
    public function serve(string $path, string $query, array $headers = [], string $method = 'GET'): void
    {
        if (headers_sent($file, $line)) {
            throw new \LogicException("output started at $file:$line before Server::serve");
        }
        $method = strtoupper($method);
        $header = array_change_key_case($headers, CASE_LOWER);
        $value = static fn (string $name): ?string => isset($header[$name]) ? (string) $header[$name] : null;
        $media = $request = $plan = $stream = null;
        try {
            $extra = [];
            try {
                $media = Media::open($path, $this->options->library());
                $request = Request::parse($this->options, $query);
                try {
                    $plan = Plan::create($media, $this->options, $request);
                } catch (PseudostreamException $e) {
                    if ($e->status === PseudostreamException::RANGE_NOT_SATISFIABLE) {
                        $extra['Content-Range'] = 'bytes */' . $media->size();
                    }
                    throw $e;
                }
                $response = $plan->respond($value('range'), $value('if-match'), $value('if-none-match'), $value('if-range'));
            } catch (PseudostreamException $e) {
                $this->sendError($e->httpStatus, $e->detail, $extra, $method);
                return;
            }

            $this->prepareOutput();
            http_response_code($response->status);
            header('ETag: ' . $plan->etag());
            header('Accept-Ranges: bytes');
            if ($response->status === 206 || $response->status === 416) {
                header('Content-Range: ' . $plan->contentRange($response));
            }
            if ($response->status === 304) {
                return;
            }
            if (!$response->hasBody()) {
                header('Content-Type: text/plain; charset=utf-8');
                header('Content-Length: 0');
                return;
            }
            $info = $plan->info();
            header('Content-Type: ' . $plan->contentType());
            header('Content-Length: ' . $response->length);
            header('X-Pseudostream-Start-Ms: ' . $info['start_ms']);
            header('X-Pseudostream-End-Ms: ' . $info['end_ms']);
            // Behind nginx (PHP-FPM): pass the paced body through unbuffered.
            header('X-Accel-Buffering: no');
            if ($method === 'HEAD' || $response->length === 0) {
                return;
            }

            // Paced as the library's policy says (the plan's pacing, Range included).
            $stream = Stream::create($media, $plan, $response->first, $response->length, $this->bufferSize);
            // The stream holds its own reference to the bytes.
            $plan->free();
            $request->free();
            $media->free();
            $this->pump($stream, $path);
        } finally {
            $stream?->free();
            $plan?->free();
            $request?->free();
            $media?->free();
        }
    }

    /** Sends the body: DATA → echo + flush, WAIT → sleep, DONE or a gone client → stop. */
    private function pump(Stream $stream, string $path): void
    {
        try {
            while (!connection_aborted()) {
                $state = $stream->fill(intdiv(hrtime(true), 1000));
                if ($state === Stream::DONE) {
                    return;
                }
                if ($state === Stream::WAIT) {
                    usleep($stream->waitUs());
                    continue;
                }
                echo $stream->chunk();
                flush();
            }
        } catch (PseudostreamException $e) {
            // Headers are out: all that can be done is ending the body early.
            error_log("pseudostream: $path: {$e->getMessage()}");
        }
    }

    /**
     * Raw output from here on: no output buffers, no compression, no time
     * limit, and the script keeps running when the client leaves so that
     * the handles are freed.
     */
    private function prepareOutput(): void
    {
        ini_set('zlib.output_compression', '0');
        while (ob_get_level() > 0 && @ob_end_clean()) {
        }
        ignore_user_abort(true);
        set_time_limit(0);
        header_remove('X-Powered-By');
    }

    /** An error status with a short text body. */
    private function sendError(int $status, string $text, array $headers, string $method): void
    {
        if (headers_sent()) {
            error_log("pseudostream: cannot send $status ($text): output already started");
            return;
        }
        $this->prepareOutput();
        $body = $text . "\n";
        http_response_code($status);
        header('Content-Type: text/plain; charset=utf-8');
        header('Content-Length: ' . strlen($body));
        foreach ($headers as $name => $value) {
            header("$name: $value");
        }
        if ($method !== 'HEAD') {
            echo $body;
        }
    }
}
