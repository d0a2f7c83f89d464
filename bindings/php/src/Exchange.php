<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;
use FFI\CData;

/**
 * One request and the library's whole answer to it (ps_exchange): the
 * status, every response header and the body, paced as the library says.
 * Server uses it for web requests; it works without a web server too:
 *
 *     $x = new Exchange('GET', 'start=12.5', ['Range' => 'bytes=0-99']);
 *     if ($x->wantsFile()) { $x->openPath('/srv/videos/a.flv'); }
 *     $x->respond($options);
 *     [$status, $headers] = [$x->status(), $x->headers()];
 *     $x->pump(fn (string $bytes): bool => fwrite(STDOUT, $bytes) !== false);
 *     $x->free();
 */
final class Exchange
{
    use OwnsHandle;

    private const FREE = 'ps_exchange_free';

    private ?CData $info = null;

    /**
     * `$method` as received (case-sensitive), `$query` raw without the '?',
     * `$headers` the request's headers by name (the library reads those it
     * knows and ignores the rest).
     */
    public function __construct(string $method, string $query, array $headers = [], ?Library $library = null)
    {
        $this->library = $library ?? Library::get();
        $ffi = $this->library->ffi;
        $out = $ffi->new('ps_exchange*');
        $this->call('ps_exchange_new', $method, strlen($method), $query, strlen($query), FFI::addr($out));
        $this->handle = $out;
        try {
            foreach ($headers as $name => $value) {
                $name = (string) $name;
                $value = (string) $value;
                $this->call('ps_exchange_set_header', $out, $name, strlen($name), $value, strlen($value));
            }
        } catch (\Throwable $e) {
            // No destructor runs for a constructor that throws.
            $this->free();
            throw $e;
        }
    }

    /** Whether the answer depends on the file (GET, HEAD): open it before respond(). */
    public function wantsFile(): bool
    {
        $wants = $this->library->ffi->new('uint32_t');
        $this->call('ps_exchange_wants_file', $this->handle(), FFI::addr($wants));
        return $wants->cdata !== 0;
    }

    /** Opens and indexes the file; missing, forbidden or broken files become the answer. */
    public function openPath(string $path): void
    {
        if (str_contains($path, "\0")) {
            // C would read a shorter path: treat it as the missing file it is.
            $this->openFailed(MediaRoot::ENOENT);
            return;
        }
        $this->call('ps_exchange_open_path', $this->handle(), $path);
    }

    /** The host's own lookup failed with `$errno` (ENOENT, ENOTDIR: 404; EACCES, ELOOP: 403). */
    public function openFailed(int $errno): void
    {
        $this->call('ps_exchange_open_failed', $this->handle(), $errno, null);
    }

    /** Decides the answer (once). */
    public function respond(Options $options): void
    {
        $this->call('ps_exchange_respond', $this->handle(), $options->handle());
        $info = $this->library->ffi->new('ps_exchange_info');
        $this->call('ps_exchange_get_info', $this->handle(), FFI::addr($info));
        $this->info = $info;
    }

    public function status(): int
    {
        return $this->info()->status;
    }

    /** Body bytes to send: 0 for HEAD, 204 and 304. */
    public function bodyLength(): int
    {
        return $this->info()->body_length;
    }

    /**
     * The response headers to send, exactly these, in order.
     *
     * @return list<array{string, string}>
     */
    public function headers(): array
    {
        $ffi = $this->library->ffi;
        $name = $ffi->new('const char*');
        $value = $ffi->new('const char*');
        $nameLen = $ffi->new('size_t');
        $valueLen = $ffi->new('size_t');
        $out = [];
        for ($i = 0, $count = $this->info()->header_count; $i < $count; $i++) {
            $this->call(
                'ps_exchange_header',
                $this->handle(),
                $i,
                FFI::addr($name),
                FFI::addr($nameLen),
                FFI::addr($value),
                FFI::addr($valueLen),
            );
            $out[] = [FFI::string($name, $nameLen->cdata), FFI::string($value, $valueLen->cdata)];
        }
        return $out;
    }

    /** Why the answer is what it is, for the log only (it may name paths). */
    public function detail(): string
    {
        $text = $this->library->ffi->new('const char*');
        $this->call('ps_exchange_detail', $this->handle(), FFI::addr($text));
        return FFI::string($text);
    }

    /**
     * Sends the body through `$write` (false: the client is gone) from one
     * reused buffer of `$bufferSize` bytes, sleeping where pacing says so.
     * Throws PseudostreamException when the file fails mid-body (the
     * status is out by then: end the response short).
     */
    public function pump(callable $write, int $bufferSize = 65536): void
    {
        if ($this->bodyLength() === 0) {
            return;
        }
        $ffi = $this->library->ffi;
        $buffer = $ffi->new("uint8_t[$bufferSize]");
        $written = $ffi->new('size_t');
        $waitUs = $ffi->new('uint64_t');
        $state = $ffi->new('uint32_t');
        while (true) {
            $this->call(
                'ps_exchange_fill',
                $this->handle(),
                $buffer,
                $bufferSize,
                intdiv(hrtime(true), 1000),
                FFI::addr($written),
                FFI::addr($waitUs),
                FFI::addr($state),
            );
            if ($state->cdata === $ffi->PS_FILL_DONE) {
                return;
            }
            if ($state->cdata === $ffi->PS_FILL_WAIT) {
                usleep($waitUs->cdata);
            } elseif (!$write(FFI::string($buffer, $written->cdata))) {
                return;
            }
        }
    }

    private function info(): CData
    {
        return $this->info ?? throw new \LogicException('Exchange::respond() not called yet');
    }

    private function call(string $function, mixed ...$args): void
    {
        $this->library->check($this->library->ffi->$function(...$args), $function);
    }
}
