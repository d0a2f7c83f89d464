<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;

/**
 * An opened media file and its keyframe index (ps_media). The index comes
 * from the library's process-wide cache when the file is unchanged.
 */
final class Media
{
    use OwnsHandle;

    private const FREE = 'ps_media_free';

    private function __construct(Library $library)
    {
        $this->library = $library;
    }

    /**
     * Opens and indexes `$path`. Throws PseudostreamException: 404 missing
     * or not a regular file, 403 unreadable, 415 not FLV or broken.
     */
    public static function open(string $path, ?Library $library = null): self
    {
        $media = new self($library ?? Library::get());
        if (str_contains($path, "\0")) {
            throw PseudostreamException::notFound('not found: the path contains NUL');
        }
        $ffi = $media->library->ffi;
        $out = $ffi->new('ps_media*');
        $media->library->check($ffi->ps_media_open($path, FFI::addr($out)), 'ps_media_open');
        $media->handle = $out;
        return $media;
    }

    /**
     * The fields of ps_media_info: format, index_origin, size, start_ms,
     * duration_ms, bitrate_bps, keyframe_count, has_audio, has_video,
     * video_codec, audio_codec, width, height, seek_points_from_audio,
     * keyframe_flags_overruled.
     *
     * @return array<string, int>
     */
    public function info(): array
    {
        $ffi = $this->library->ffi;
        $info = $ffi->new('ps_media_info');
        $this->library->check($ffi->ps_media_get_info($this->handle(), FFI::addr($info)), 'ps_media_get_info');
        $fields = [
            'format', 'index_origin', 'size', 'start_ms', 'duration_ms', 'bitrate_bps',
            'keyframe_count', 'has_audio', 'has_video', 'video_codec', 'audio_codec',
            'width', 'height', 'seek_points_from_audio', 'keyframe_flags_overruled',
        ];
        $out = [];
        foreach ($fields as $field) {
            $out[$field] = $info->$field;
        }
        return $out;
    }

    /** The file size in bytes. */
    public function size(): int
    {
        return $this->info()['size'];
    }

    /**
     * The seek points: a list of [time_ms, file offset].
     *
     * @return list<array{int, int}>
     */
    public function keyframes(): array
    {
        $ffi = $this->library->ffi;
        $time = $ffi->new('uint64_t');
        $offset = $ffi->new('uint64_t');
        $out = [];
        $count = $this->info()['keyframe_count'];
        for ($i = 0; $i < $count; $i++) {
            $status = $ffi->ps_media_keyframe($this->handle(), $i, FFI::addr($time), FFI::addr($offset));
            $this->library->check($status, 'ps_media_keyframe');
            $out[] = [$time->cdata, $offset->cdata];
        }
        return $out;
    }

    /** Media information and the keyframe list as JSON. */
    public function infoJson(): string
    {
        $ffi = $this->library->ffi;
        $needed = $ffi->new('size_t');
        $ffi->ps_media_info_json($this->handle(), null, 0, FFI::addr($needed));
        $cap = max(1, $needed->cdata);
        $buf = $ffi->new("char[$cap]");
        $written = $ffi->new('size_t');
        $status = $ffi->ps_media_info_json($this->handle(), $buf, $cap, FFI::addr($written));
        $this->library->check($status, 'ps_media_info_json');
        return FFI::string($buf, $written->cdata);
    }
}
