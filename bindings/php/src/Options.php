<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI;

/**
 * How the host serves (ps_options), set by the library's keys: the same
 * names as nginx's `pseudostream_<key>` (prefix, start_unit, rate, burst,
 * cors, cache_control, param_start…; Options::describe() lists them).
 * The library parses every value and holds every default. Build it once per
 * script run, then only read it.
 *
 *     $options = Options::fromConfig(['start_unit' => 'seconds', 'rate' => 'auto']);
 *     $options = Options::fromEnvironment();          // PSEUDOSTREAM_<KEY>
 *     $options = (new Options())->set('cors', '*');
 */
final class Options
{
    use OwnsHandle;

    private const FREE = 'ps_options_free';

    /** Older names of this binding that are not the library's. */
    private const RENAMED = ['burst_secs' => 'burst_seconds'];

    /** The library's defaults. */
    public function __construct(?Library $library = null)
    {
        $this->library = $library ?? Library::get();
        $ffi = $this->library->ffi;
        $out = $ffi->new('ps_options*');
        $this->library->check($ffi->ps_options_new(FFI::addr($out)), 'ps_options_new');
        $this->handle = $out;
    }

    /**
     * Sets one key (any spelling: start_unit, startUnit, start-unit) to a
     * value as the library reads it ("seconds", "auto:1.25", "3s"); bools
     * become on/off. Throws PseudostreamException naming key and value.
     * `mp4_max_moov_size` and `index_cache` are process-wide.
     */
    public function set(string $key, string|int|float|bool $value): self
    {
        $key = self::RENAMED[strtolower($key)] ?? $key;
        $value = is_bool($value) ? ($value ? 'on' : 'off') : (string) $value;
        if (str_contains($key . $value, "\0")) {
            throw new \InvalidArgumentException("option '$key' contains NUL");
        }
        $this->library->check($this->library->ffi->ps_options_set($this->handle(), $key, $value), 'ps_options_set');
        return $this;
    }

    /**
     * Options from an array of key => value (null and '' are skipped).
     * `params` (this binding's older name) also takes a list, "start=t,end=e"
     * or ['start' => 't'].
     */
    public static function fromConfig(array $config, ?Library $library = null): self
    {
        $options = new self($library);
        foreach ($config as $key => $value) {
            if ($value === null || $value === '') {
                continue;
            }
            if (strtolower((string) $key) === 'params') {
                $options->params($value);
            } else {
                $options->set((string) $key, $value);
            }
        }
        return $options;
    }

    /**
     * Options from the environment: PSEUDOSTREAM_<KEY> for every key and
     * alias the library lists (PSEUDOSTREAM_START_UNIT, PSEUDOSTREAM_RATE…),
     * and PSEUDOSTREAM_BURST_SECS for burst_seconds. Empty ones are skipped.
     */
    public static function fromEnvironment(?Library $library = null): self
    {
        $library ??= Library::get();
        $names = array_keys(self::RENAMED);
        foreach (self::keys($library) as $key => $aliases) {
            array_push($names, $key, ...$aliases);
        }
        $config = [];
        foreach ($names as $name) {
            $value = getenv('PSEUDOSTREAM_' . strtoupper($name));
            if ($value !== false) {
                $config[$name] = $value;
            }
        }
        return self::fromConfig($config, $library);
    }

    /**
     * Every key the library takes, with its aliases, from ps_options_describe.
     *
     * @return array<string, list<string>>
     */
    public static function keys(?Library $library = null): array
    {
        $keys = [];
        foreach (explode("\n", self::describe($library)) as $line) {
            $names = array_map('trim', explode('|', strstr($line, ':', true) ?: ''));
            if ($names[0] !== '') {
                $keys[$names[0]] = array_slice($names, 1);
            }
        }
        return $keys;
    }

    /** The library's list of keys, one a line: `name | alias: what it takes`. */
    public static function describe(?Library $library = null): string
    {
        $library ??= Library::get();
        $ffi = $library->ffi;
        $needed = $ffi->new('size_t');
        // Asked with no buffer, it answers the size it needs.
        $ffi->ps_options_describe(null, 0, FFI::addr($needed));
        $cap = max(1, $needed->cdata);
        $buf = $ffi->new("char[$cap]");
        $library->check($ffi->ps_options_describe($buf, $cap, FFI::addr($needed)), 'ps_options_describe');
        return rtrim(FFI::string($buf, $needed->cdata), "\0");
    }

    // Older setters, kept as aliases of set().

    /** prefix: none, header, init or full. */
    public function prefixMode(string $mode): self
    {
        return $this->set('prefix', $mode);
    }

    /** start_unit: bytes or seconds. */
    public function startUnit(string $unit): self
    {
        return $this->set('start_unit', $unit);
    }

    /** Renames a query parameter (start, end, ib, fs, bstart, bend, ri, rs); '' turns it off. */
    public function paramName(string $param, string $name): self
    {
        return $this->set('param_' . $param, $name);
    }

    /** burst_bytes. */
    public function burstBytes(int $bytes): self
    {
        return $this->set('burst_bytes', $bytes);
    }

    /** burst_seconds: seconds of media. */
    public function burstSeconds(float $seconds): self
    {
        return $this->set('burst_seconds', $seconds);
    }

    /** rate in bytes per second; 0 turns pacing off. */
    public function rate(int $bytesPerSecond): self
    {
        return $this->set('rate', $bytesPerSecond);
    }

    /** rate auto: the media's average bitrate times `$factor` (the library's factor when null). */
    public function rateAuto(?float $factor = null): self
    {
        return $this->set('rate', $factor === null ? 'auto' : "auto:$factor");
    }

    /** client_pacing: whether requests may pace themselves with ri/rs. */
    public function clientPacing(bool $allow): self
    {
        return $this->set('client_pacing', $allow);
    }

    /** metadata: off, missing or always. */
    public function metadata(string $mode): self
    {
        return $this->set('metadata', $mode);
    }

    /** cut: exact or keyframe. */
    public function cut(string $mode): self
    {
        return $this->set('cut', $mode);
    }

    /** Renames: "start=t,end=e" or ['start' => 't']. */
    private function params(string|array $renames): void
    {
        if (is_string($renames)) {
            $renames = array_filter(array_map('trim', explode(',', $renames)), 'strlen');
            foreach ($renames as $pair) {
                $this->set('param', $pair);
            }
            return;
        }
        foreach ($renames as $param => $name) {
            $this->paramName((string) $param, (string) $name);
        }
    }
}
