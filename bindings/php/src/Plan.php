<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;

/**
 * What to send for one request (ps_plan): prefix bytes and one file range,
 * with its ETag, Content-Type and pacing. Every decision about the seek is
 * the library's.
 */
final class Plan
{
    use OwnsHandle;

    private const FREE = 'ps_plan_free';

    private function __construct(Library $library)
    {
        $this->library = $library;
    }

    /**
     * Resolves `$request` against `$media`. Throws PseudostreamException:
     * 416 for a start past the end or a reversed start/end, 400 for values
     * out of limits.
     */
    public static function create(Media $media, Options $options, Request $request): self
    {
        $plan = new self($media->library());
        $ffi = $plan->library->ffi;
        $out = $ffi->new('ps_plan*');
        $status = $ffi->ps_plan_new($media->handle(), $options->handle(), $request->handle(), FFI::addr($out));
        $plan->library->check($status, 'ps_plan_new');
        $plan->handle = $out;
        return $plan;
    }

    /**
     * The fields of ps_plan_info: length, prefix_length, file_from, file_to,
     * start_ms, end_ms, burst_bytes, rate_bytes_per_s, whole_file, format.
     *
     * @return array<string, int>
     */
    public function info(): array
    {
        $ffi = $this->library->ffi;
        $info = $ffi->new('ps_plan_info');
        $this->library->check($ffi->ps_plan_get_info($this->handle(), FFI::addr($info)), 'ps_plan_get_info');
        $fields = [
            'length', 'prefix_length', 'file_from', 'file_to', 'start_ms', 'end_ms',
            'burst_bytes', 'rate_bytes_per_s', 'whole_file', 'format',
        ];
        $out = [];
        foreach ($fields as $field) {
            $out[$field] = $info->$field;
        }
        return $out;
    }

    /** The strong ETag, quoted. */
    public function etag(): string
    {
        return $this->borrowedString('ps_plan_etag');
    }

    /** The Content-Type ("video/x-flv", "video/mp4", "audio/mp4", "video/quicktime"). */
    public function contentType(): string
    {
        return $this->borrowedString('ps_plan_content_type');
    }

    /**
     * Evaluates the request headers Range, If-Match, If-None-Match and
     * If-Range (null when absent) in RFC 9110 order.
     */
    public function respond(
        ?string $range = null,
        ?string $ifMatch = null,
        ?string $ifNoneMatch = null,
        ?string $ifRange = null,
    ): Response {
        $ffi = $this->library->ffi;
        $out = $ffi->new('ps_response');
        $status = $ffi->ps_plan_respond($this->handle(), $range, $ifMatch, $ifNoneMatch, $ifRange, FFI::addr($out));
        $this->library->check($status, 'ps_plan_respond');
        return new Response($out->status, $out->first, $out->length, $out);
    }

    /** The Content-Range value for a 206 or 416 response ("" for others). */
    public function contentRange(Response $response): string
    {
        $ffi = $this->library->ffi;
        $written = $ffi->new('size_t');
        $cap = 96;
        for ($attempt = 0; $attempt < 2; $attempt++) {
            $buf = $ffi->new("char[$cap]");
            $status = $ffi->ps_plan_content_range($this->handle(), FFI::addr($response->raw), $buf, $cap, FFI::addr($written));
            if ($status === 0) {
                return FFI::string($buf, $written->cdata);
            }
            if ($status !== $ffi->PS_ERR_BUFFER_TOO_SMALL) {
                break;
            }
            $cap = $written->cdata;
        }
        throw PseudostreamException::fromStatus($this->library, $status, 'ps_plan_content_range');
    }

    private function borrowedString(string $function): string
    {
        $ffi = $this->library->ffi;
        $out = $ffi->new('const char*');
        $this->library->check($ffi->$function($this->handle(), FFI::addr($out)), $function);
        return FFI::string($out);
    }
}
