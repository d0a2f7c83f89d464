<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;

/** One parsed request (ps_request): what the query string asks for. */
final class Request
{
    use OwnsHandle;

    private const FREE = 'ps_request_free';

    private function __construct(Library $library)
    {
        $this->library = $library;
    }

    /**
     * Parses a query string (without the '?') under `$options`. An empty
     * query asks for the whole file. Throws PseudostreamException (400) for
     * garbage, negative, overflowing, repeated or mixed parameters.
     */
    public static function parse(Options $options, string $query): self
    {
        $request = new self($options->library());
        $ffi = $request->library->ffi;
        $out = $ffi->new('ps_request*');
        $status = $ffi->ps_request_parse($options->handle(), $query, strlen($query), FFI::addr($out));
        $request->library->check($status, 'ps_request_parse');
        $request->handle = $out;
        return $request;
    }
}
