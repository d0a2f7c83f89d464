<?php

declare(strict_types=1);

namespace Pseudostream;

/**
 * A folder of media served by URL path, resolved safely: percent-decoded
 * once, `..` segments, NUL bytes and backslashes refused, symlinks followed
 * only while they stay inside the folder.
 */
final class MediaRoot
{
    /** errno values (Linux) for a lookup that failed inside the folder. */
    public const ENOENT = 2;
    public const EACCES = 13;

    private string $root;

    public function __construct(string $directory)
    {
        $real = realpath($directory);
        if ($real === false || !is_dir($real)) {
            throw new \InvalidArgumentException("media root '$directory' is not a directory");
        }
        $this->root = rtrim($real, '/');
    }

    public function path(): string
    {
        return $this->root === '' ? '/' : $this->root;
    }

    /**
     * The file for a URL path (still percent-encoded, without the query),
     * e.g. "/videos/movie.flv": its real path when it is a regular file
     * inside the folder, else the errno of the failed lookup (ENOENT for
     * missing files and folders, EACCES…), which the library answers.
     * Throws PseudostreamException for what the host refuses itself: 403
     * for a path that leaves the folder, 404 for a malformed one.
     */
    public function resolve(string $urlPath): string|int
    {
        $decoded = rawurldecode($urlPath);
        if (str_contains($decoded, "\0")) {
            throw PseudostreamException::notFound('not found: the path holds NUL');
        }
        $segments = [];
        foreach (explode('/', $decoded) as $segment) {
            if ($segment === '' || $segment === '.') {
                continue;
            }
            if ($segment === '..' || str_contains($segment, '\\')) {
                throw PseudostreamException::forbidden('forbidden: the path leaves the media folder');
            }
            $segments[] = $segment;
        }
        $path = $this->root . '/' . implode('/', $segments);
        $real = realpath($path);
        if ($real === false) {
            return self::errno($path);
        }
        if ($real !== $this->root && !str_starts_with($real, $this->root . '/')) {
            throw PseudostreamException::forbidden('forbidden: the path leaves the media folder');
        }
        // Only regular files: opening a FIFO would hang the worker.
        return is_file($real) ? $real : self::ENOENT;
    }

    /** Why `$path` cannot be resolved (posix tells EACCES from ENOENT). */
    private static function errno(string $path): int
    {
        if (function_exists('posix_access') && !posix_access($path, POSIX_F_OK)) {
            return posix_get_last_error() ?: self::ENOENT;
        }
        return self::ENOENT;
    }
}
