<?php
// Loads the preprocessor-free header with PHP FFI::cdef and makes a few
// calls, proving the header is usable from PHP as generated.
// Usage: php -d ffi.enable=1 tests/php/load_header.php LIB SAMPLE
[$self, $lib, $sample] = $argv;
$ffi = FFI::cdef(file_get_contents(__DIR__ . '/../../include/pseudostream_ffi.h'), $lib);
$failed = 0;
$check = function (bool $ok, string $what) use (&$failed) {
    if (!$ok) {
        fwrite(STDERR, "FAILED: $what\n");
        $failed++;
    }
};
$media = $ffi->new('ps_media*');
$check($ffi->ps_media_open($sample, FFI::addr($media)) === $ffi->PS_OK, 'open');
$info = $ffi->new('ps_media_info');
$check($ffi->ps_media_get_info($media, FFI::addr($info)) === 0, 'info');
$check($info->keyframe_count > 0, 'keyframes');
$query = 'start=abc';
$request = $ffi->new('ps_request*');
$status = $ffi->ps_request_parse(null, $query, strlen($query), FFI::addr($request));
$check($status === $ffi->PS_ERR_BAD_REQUEST, 'bad request status');
$check($ffi->ps_status_http($status) === 400, 'http 400');
$ffi->ps_media_free($media);
echo "php-ffi header: " . ($failed ? 0 : 1) . " passed, $failed failed\n";
exit($failed ? 1 : 0);
