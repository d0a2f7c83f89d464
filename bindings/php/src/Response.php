<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI\CData;

/**
 * The answer to a request's Range and validators (ps_response): the HTTP
 * status (200, 206, 304, 412 or 416) and the window of the plan's response
 * to send.
 */
final class Response
{
    /** @internal */
    public function __construct(
        public readonly int $status,
        public readonly int $first,
        public readonly int $length,
        /** @internal the ps_response, for ps_plan_content_range */
        public readonly CData $raw,
    ) {
    }

    /** Whether a body follows (200 or 206). */
    public function hasBody(): bool
    {
        return $this->status === 200 || $this->status === 206;
    }
}
