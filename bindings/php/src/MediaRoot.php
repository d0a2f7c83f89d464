<?php

declare(strict_types=1);

namespace Pseudostream;

/**
 * A folder of media served by URL path, resolved safely: percent-decoded
 * once, `..` segments, NUL bytes and backslashes refused, symlinks followed
 * only while they stay inside the folder, only regular files served.
 */
final class MediaRoot
{
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
     * e.g. "/videos/movie.flv". Throws PseudostreamException: 403 for a path
     * that leaves the folder, 404 for anything else that is not a regular
     * file inside it.
     */
    public function resolve(string $urlPath): string
    {
        $decoded = rawurldecode($urlPath);
        if (str_contains($decoded, "\0")) {
            throw PseudostreamException::notFound('not found');
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
        if ($segments === []) {
            throw PseudostreamException::notFound('not found: a folder, not a file');
        }
        $real = realpath($this->root . '/' . implode('/', $segments));
        if ($real === false) {
            throw PseudostreamException::notFound('not found: ' . implode('/', $segments));
        }
        if (!str_starts_with($real, $this->root . '/')) {
            throw PseudostreamException::forbidden('forbidden: the path leaves the media folder');
        }
        if (!is_file($real)) {
            throw PseudostreamException::notFound('not found: a folder, not a file');
        }
        return $real;
    }
}
