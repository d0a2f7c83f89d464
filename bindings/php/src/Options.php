<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;

/**
 * How the host serves (ps_options): prefix mode, start unit, query
 * parameter names, pacing. Build it once per process (in PHP's
 * share-nothing model: once per script run) with the chained setters, then
 * only read it.
 *
 *     $options = (new Options())->startUnit('seconds')->rateAuto(1.25);
 */
final class Options
{
    use OwnsHandle;

    private const FREE = 'ps_options_free';

    /** Prefix modes by name (ps_prefix_mode). */
    public const PREFIX_MODES = ['none' => 0, 'header' => 1, 'init' => 2, 'full' => 3];
    /** Units of the start/end parameters by name (ps_unit). */
    public const START_UNITS = ['bytes' => 0, 'seconds' => 1];
    /** Where MP4 cuts start to be presented, by name (ps_cut_mode). */
    public const CUT_MODES = ['exact' => 0, 'keyframe' => 1];
    /** Renamable query parameters by their default name (ps_param). */
    public const PARAMS = [
        'start' => 0, 'end' => 1, 'ib' => 2, 'fs' => 3,
        'bstart' => 4, 'bend' => 5, 'ri' => 6, 'rs' => 7,
    ];

    /** Defaults: prefix init, start in bytes, default names, pacing off, client pacing allowed. */
    public function __construct(?Library $library = null)
    {
        $this->library = $library ?? Library::get();
        $ffi = $this->library->ffi;
        $out = $ffi->new('ps_options*');
        $this->library->check($ffi->ps_options_new(FFI::addr($out)), 'ps_options_new');
        $this->handle = $out;
    }

    /**
     * Options from a configuration array; every key is optional:
     *
     *  - `prefix`: none|header|init|full
     *  - `start_unit`: bytes|seconds
     *  - `params`: renames, `['start' => 't']` or the string "start=t,end=e"
     *    (keys are the default names; an empty name turns a parameter off)
     *  - `burst_bytes` (int) or `burst_seconds` (float, seconds of media)
     *  - `rate`: bytes per second, "auto" or "auto:FACTOR" (average bitrate
     *    times FACTOR, default 1.25); empty or 0 turns pacing off
     *  - `client_pacing`: whether requests may set ri/rs (bool or "0"/"1")
     *  - `metadata`: off|missing|always, when files are served with their
     *    keyframes listed in a rewritten onMetaData (default missing)
     *  - `cut`: exact|keyframe, where MP4 cuts start to be presented
     *    (default exact)
     *  - `mp4_max_moov_size`: largest MP4 moov read, in bytes (default 64 MiB;
     *    0: the default); process-wide, see Library::setMp4MaxMoovSize()
     */
    public static function fromConfig(array $config, ?Library $library = null): self
    {
        $options = new self($library);
        $value = static fn (string $key) => isset($config[$key]) && $config[$key] !== '' ? $config[$key] : null;
        if (($prefix = $value('prefix')) !== null) {
            $options->prefixMode((string) $prefix);
        }
        if (($unit = $value('start_unit')) !== null) {
            $options->startUnit((string) $unit);
        }
        if (($params = $value('params')) !== null) {
            if (is_string($params)) {
                $pairs = [];
                foreach (explode(',', $params) as $pair) {
                    if (trim($pair) === '') {
                        continue;
                    }
                    if (!str_contains($pair, '=')) {
                        throw new \InvalidArgumentException("parameter rename '$pair' is not NAME=NEWNAME");
                    }
                    [$from, $to] = explode('=', $pair, 2);
                    $pairs[trim($from)] = trim($to);
                }
                $params = $pairs;
            }
            foreach ($params as $from => $to) {
                $options->paramName((string) $from, (string) $to);
            }
        }
        if (($burst = $value('burst_bytes')) !== null) {
            $options->burstBytes(self::integer($burst, 'burst_bytes'));
        }
        if (($burst = $value('burst_seconds')) !== null) {
            if (!is_numeric($burst)) {
                throw new \InvalidArgumentException("burst_seconds '$burst' is not a number");
            }
            $options->burstSeconds((float) $burst);
        }
        if (($rate = $value('rate')) !== null) {
            if (is_string($rate) && preg_match('/^auto(?::(.+))?$/', $rate, $m)) {
                $factor = $m[1] ?? '1.25';
                if (!is_numeric($factor)) {
                    throw new \InvalidArgumentException("rate factor '$factor' is not a number");
                }
                $options->rateAuto((float) $factor);
            } else {
                $options->rate(self::integer($rate, 'rate'));
            }
        }
        if (($allow = $value('client_pacing')) !== null) {
            $options->clientPacing(filter_var($allow, FILTER_VALIDATE_BOOL));
        }
        if (($metadata = $value('metadata')) !== null) {
            $options->metadata((string) $metadata);
        }
        if (($cut = $value('cut')) !== null) {
            $options->cut((string) $cut);
        }
        if (($moov = $value('mp4_max_moov_size')) !== null) {
            $options->library->setMp4MaxMoovSize(self::integer($moov, 'mp4_max_moov_size'));
        }
        return $options;
    }

    /** Prefix mode: none, header, init (default) or full. */
    public function prefixMode(string $mode): self
    {
        $value = self::PREFIX_MODES[$mode]
            ?? throw new \InvalidArgumentException("prefix mode '$mode' is not none, header, init or full");
        $this->call('ps_options_set_prefix_mode', $value);
        return $this;
    }

    /** Unit of start/end: bytes (default) or seconds. */
    public function startUnit(string $unit): self
    {
        $value = self::START_UNITS[$unit]
            ?? throw new \InvalidArgumentException("start unit '$unit' is not bytes or seconds");
        $this->call('ps_options_set_start_unit', $value);
        return $this;
    }

    /** Renames the parameter known by default as `$param` (start, end, ib, fs, bstart, bend, ri, rs). */
    public function paramName(string $param, string $name): self
    {
        $value = self::PARAMS[$param]
            ?? throw new \InvalidArgumentException("unknown query parameter '$param'");
        if (str_contains($name, "\0")) {
            throw new \InvalidArgumentException('a parameter name cannot contain NUL');
        }
        $this->call('ps_options_set_param_name', $value, $name);
        return $this;
    }

    /** Pacing burst in bytes. */
    public function burstBytes(int $bytes): self
    {
        $this->call('ps_options_set_burst_bytes', self::unsigned($bytes));
        return $this;
    }

    /** Pacing burst in seconds of media (through the average bitrate). */
    public function burstSeconds(float $seconds): self
    {
        $this->call('ps_options_set_burst_ms', self::unsigned((int) round($seconds * 1000)));
        return $this;
    }

    /** Fixed sustained rate in bytes per second; 0 turns pacing off. */
    public function rate(int $bytesPerSecond): self
    {
        $this->call('ps_options_set_rate', self::unsigned($bytesPerSecond));
        return $this;
    }

    /** Sustained rate = the media's average bitrate × `$factor` (1.25 is usual). */
    public function rateAuto(float $factor = 1.25): self
    {
        $this->call('ps_options_set_rate_auto', self::unsigned((int) round($factor * 1000)));
        return $this;
    }

    /** Whether requests may set their pacing with ri/rs (default true). */
    public function clientPacing(bool $allow): self
    {
        $this->call('ps_options_set_client_pacing', $allow ? 1 : 0);
        return $this;
    }

    /**
     * When files are served with their keyframes listed in a rewritten
     * onMetaData, so that flv.js and mpegts.js can seek: off, missing
     * (default: when the file's own metadata has none or stale ones) or always.
     */
    public function metadata(string $mode): self
    {
        $modes = ['off' => 0, 'missing' => 1, 'always' => 2];
        if (!isset($modes[$mode])) {
            throw new \InvalidArgumentException("metadata mode '$mode' is not off, missing or always");
        }
        $this->call('ps_options_set_metadata', $modes[$mode]);
        return $this;
    }

    /**
     * Where MP4 cuts start to be presented: exact (default: at the requested
     * time, the frames from the keyframe up to it hidden by edit lists) or
     * keyframe (at the keyframe, for players that ignore edit lists).
     */
    public function cut(string $mode): self
    {
        $value = self::CUT_MODES[$mode]
            ?? throw new \InvalidArgumentException("cut mode '$mode' is not exact or keyframe");
        $this->call('ps_options_set_cut_mode', $value);
        return $this;
    }

    private function call(string $function, int|string ...$args): void
    {
        $this->library->check($this->library->ffi->$function($this->handle(), ...$args), $function);
    }

    private static function unsigned(int $value): int
    {
        if ($value < 0) {
            throw new \InvalidArgumentException("$value is negative");
        }
        return $value;
    }

    private static function integer(mixed $value, string $what): int
    {
        if (is_int($value)) {
            return $value;
        }
        if (is_string($value) && ctype_digit($value)) {
            return (int) $value;
        }
        throw new \InvalidArgumentException("$what '$value' is not a non-negative integer");
    }
}
