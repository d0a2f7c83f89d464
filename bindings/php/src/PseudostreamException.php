<?php

declare(strict_types=1);

namespace Pseudostream;

/**
 * A failed library call (or a path the host refuses): the ps_status, its
 * HTTP status (ps_status_http) and the library's detail (ps_last_error),
 * which may name paths: log it. MediaRoot's refusals say nothing more
 * than their status.
 */
class PseudostreamException extends \RuntimeException
{
    /** ps_status numbers are fixed by the C ABI and never reused. */
    public const NOT_FOUND = 7;
    public const PERMISSION = 8;

    public function __construct(
        public readonly int $status,
        public readonly int $httpStatus,
        public readonly string $detail,
        string $message,
    ) {
        parent::__construct($message, $status);
    }

    /** The exception for `$status` returned by `$call`. */
    public static function fromStatus(Library $library, int $status, string $call): self
    {
        $ffi = $library->ffi;
        $detail = $ffi->ps_last_error();
        if ($detail === '') {
            $detail = $ffi->ps_strerror($status);
        }
        return new self($status, $ffi->ps_status_http($status), $detail, "$call: $detail");
    }

    /** 404 for a path that is missing, a directory or otherwise not served. */
    public static function notFound(string $detail): self
    {
        return new self(self::NOT_FOUND, 404, $detail, $detail);
    }

    /** 403 for a path that tries to leave the media root. */
    public static function forbidden(string $detail): self
    {
        return new self(self::PERMISSION, 403, $detail, $detail);
    }
}
