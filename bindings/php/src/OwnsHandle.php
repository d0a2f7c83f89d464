<?php

declare(strict_types=1);

namespace Pseudostream;

use FFI\CData;

/**
 * An owned C handle released exactly once: by free() (call it in a
 * `finally` to release at a known point) or, at the latest, by the
 * destructor. The using class names its release function in `FREE`.
 *
 * @internal
 */
trait OwnsHandle
{
    private ?CData $handle = null;
    private Library $library;

    /** The C handle, for calls this wrapper does not cover. */
    public function handle(): CData
    {
        if ($this->handle === null) {
            throw new \LogicException(static::class . ' used after free()');
        }
        return $this->handle;
    }

    public function library(): Library
    {
        return $this->library;
    }

    /** Releases the handle now; later calls do nothing. */
    public function free(): void
    {
        if ($this->handle !== null) {
            $handle = $this->handle;
            $this->handle = null;
            $this->library->ffi->{static::FREE}($handle);
        }
    }

    public function __destruct()
    {
        $this->free();
    }
}
