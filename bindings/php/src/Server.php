<?php

declare(strict_types=1);

namespace Pseudostream;

/**
 * Answers requests for media files from PHP's SAPI (built-in server,
 * PHP-FPM, mod_php) as the library decides (ps_exchange): status and
 * exactly the library's headers with http_response_code() and header(),
 * the body through one reused buffer under the library's pacing. The host
 * only maps URLs to files and moves bytes.
 *
 *     $server = new Server($options);
 *     $server->handle(new MediaRoot('/srv/videos'));            // from $_SERVER
 *     $server->serve('/srv/videos/a.flv', 'start=12.5', ['Range' => 'bytes=0-99']);
 */
final class Server
{
    public function __construct(private readonly Options $options, private readonly int $bufferSize = 65536)
    {
    }

    /**
     * Serves the current request (REQUEST_METHOD, REQUEST_URI, QUERY_STRING
     * and headers from $_SERVER) from files under `$root`.
     */
    public function handle(MediaRoot $root): void
    {
        $uri = (string) ($_SERVER['REQUEST_URI'] ?? '/');
        $end = strcspn($uri, '?#');
        $query = (string) ($_SERVER['QUERY_STRING'] ?? substr($uri, $end + 1));
        try {
            $file = $root->resolve(substr($uri, 0, $end));
        } catch (PseudostreamException $e) {
            // A path that leaves the folder or cannot be one: the host's own refusal.
            $this->refuse($e->httpStatus, $e->detail);
            return;
        }
        $this->serve($file, $query, self::requestHeaders(), (string) ($_SERVER['REQUEST_METHOD'] ?? 'GET'));
    }

    /**
     * Every request header of the current request, from $_SERVER (HTTP_*,
     * CONTENT_TYPE, CONTENT_LENGTH), by lower-case name.
     *
     * @return array<string, string>
     */
    public static function requestHeaders(): array
    {
        $headers = [];
        foreach ($_SERVER as $key => $value) {
            if (str_starts_with((string) $key, 'HTTP_')) {
                $key = substr((string) $key, 5);
            } elseif ($key !== 'CONTENT_TYPE' && $key !== 'CONTENT_LENGTH') {
                continue;
            }
            $headers[strtolower(str_replace('_', '-', (string) $key))] = (string) $value;
        }
        return $headers;
    }

    /**
     * Answers one request for `$file`: the path of a file the caller may
     * serve, or the errno of its failed lookup (MediaRoot::ENOENT, EACCES).
     * `$query` raw without the '?', `$headers` every request header by name,
     * `$method` as received. Answers of 400 and above are logged with the
     * library's reason.
     */
    public function serve(string|int $file, string $query, array $headers = [], string $method = 'GET'): void
    {
        if (headers_sent($at, $line)) {
            throw new \LogicException("output started at $at:$line before Server::serve");
        }
        $exchange = new Exchange($method, $query, $headers, $this->options->library());
        try {
            if ($exchange->wantsFile()) {
                is_int($file) ? $exchange->openFailed($file) : $exchange->openPath($file);
            }
            $exchange->respond($this->options);
            $status = $exchange->status();
            if ($status >= 400) {
                error_log("pseudostream: $method " . ($_SERVER['REQUEST_URI'] ?? $query) . ": $status " . $exchange->detail());
            }
            $this->prepareOutput();
            http_response_code($status);
            foreach ($exchange->headers() as [$name, $value]) {
                header("$name: $value", false);
            }
            try {
                $exchange->pump(function (string $bytes): bool {
                    echo $bytes;
                    flush();
                    return !connection_aborted();
                }, $this->bufferSize);
            } catch (PseudostreamException $e) {
                // The status is out: all that is left is ending the body short.
                error_log("pseudostream: {$e->getMessage()}");
            }
        } finally {
            $exchange->free();
        }
    }

    /**
     * Raw output from here on: nothing but the library's headers (no default
     * Content-Type, no X-Powered-By), no output buffers, no compression, no
     * time limit, and the script keeps running when the client leaves so
     * that the exchange is freed.
     */
    private function prepareOutput(): void
    {
        ini_set('default_mimetype', '');
        ini_set('zlib.output_compression', '0');
        header_remove();
        while (ob_get_level() > 0 && @ob_end_clean()) {
        }
        ignore_user_abort(true);
        set_time_limit(0);
    }

    /** The host's own refusal: a status with a short text body. */
    private function refuse(int $status, string $text): void
    {
        $this->prepareOutput();
        $body = $text . "\n";
        http_response_code($status);
        header('Content-Type: text/plain; charset=utf-8');
        header('Content-Length: ' . strlen($body));
        if (($_SERVER['REQUEST_METHOD'] ?? 'GET') !== 'HEAD') {
            echo $body;
        }
    }
}
