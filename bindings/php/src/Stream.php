<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;
use FFI\CData;

/**
 * Produces a window of a plan's response (ps_stream) into one C buffer
 * that is reused for every chunk, under the library's pacing clock:
 *
 *     while (($state = $stream->fill(intdiv(hrtime(true), 1000))) !== Stream::DONE) {
 *         if ($state === Stream::WAIT) { usleep($stream->waitUs()); continue; }
 *         echo $stream->chunk();
 *     }
 *
 * The stream keeps its own reference to the bytes: the Media and Plan it
 * was made from may be freed first.
 */
final class Stream
{
    use OwnsHandle;

    private const FREE = 'ps_stream_free';

    /** ps_fill_state values. */
    public const DATA = 0;
    public const WAIT = 1;
    public const DONE = 2;

    private CData $buffer;
    private int $capacity;
    private CData $written;
    private CData $waitUs;
    private CData $state;

    private function __construct(Library $library, int $capacity)
    {
        $this->library = $library;
        $ffi = $library->ffi;
        $this->capacity = $capacity;
        $this->buffer = $ffi->new("uint8_t[$capacity]");
        $this->written = $ffi->new('size_t');
        $this->waitUs = $ffi->new('uint64_t');
        $this->state = $ffi->new('uint32_t');
    }

    /**
     * A stream of `$length` bytes from `$first` of the plan's response (the
     * window from Plan::respond), paced as the plan says.
     */
    public static function create(Media $media, Plan $plan, int $first, int $length, int $bufferSize = 65536): self
    {
        if ($bufferSize <= 0) {
            throw new \InvalidArgumentException('the buffer size must be positive');
        }
        $stream = new self($media->library(), $bufferSize);
        $ffi = $stream->library->ffi;
        $out = $ffi->new('ps_stream*');
        $status = $ffi->ps_stream_new($media->handle(), $plan->handle(), $first, $length, FFI::addr($out));
        $stream->library->check($status, 'ps_stream_new');
        $stream->handle = $out;
        return $stream;
    }

    /** Replaces the pacing: burst bytes, then bytes per second (0, 0 = unpaced). */
    public function setPacing(int $burstBytes, int $rateBytesPerSecond): void
    {
        $status = $this->library->ffi->ps_stream_set_pacing($this->handle(), $burstBytes, $rateBytesPerSecond);
        $this->library->check($status, 'ps_stream_set_pacing');
    }

    /**
     * Fills the buffer as far as pacing allows at `$nowUs` (a monotonic
     * clock in microseconds) and returns DATA (read it with chunk()), WAIT
     * (sleep waitUs()) or DONE. Throws PseudostreamException on a failure,
     * e.g. the file shrank while served: end the response then.
     */
    public function fill(int $nowUs): int
    {
        $status = $this->library->ffi->ps_stream_fill(
            $this->handle(),
            $this->buffer,
            $this->capacity,
            $nowUs,
            FFI::addr($this->written),
            FFI::addr($this->waitUs),
            FFI::addr($this->state),
        );
        $this->library->check($status, 'ps_stream_fill');
        return $this->state->cdata;
    }

    /** The bytes of the last DATA fill, copied out of the buffer. */
    public function chunk(): string
    {
        return FFI::string($this->buffer, $this->written->cdata);
    }

    /** Microseconds to wait after a WAIT fill. */
    public function waitUs(): int
    {
        return $this->waitUs->cdata;
    }

    /** Bytes the stream has still to deliver. */
    public function remaining(): int
    {
        $ffi = $this->library->ffi;
        $out = $ffi->new('uint64_t');
        $this->library->check($ffi->ps_stream_remaining($this->handle(), FFI::addr($out)), 'ps_stream_remaining');
        return $out->cdata;
    }
}
