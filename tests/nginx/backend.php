<?php
// A tiny application backend for the X-Accel-Redirect test: it decides what
// to serve and hands the streaming back to nginx, carrying the query along.
// Run with: php -S 127.0.0.1:PORT tests/nginx/backend.php
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if (!preg_match('#^/app/([A-Za-z0-9_.]+\.flv)$#', $path, $m)) {
    http_response_code(404);
    echo "no such video\n";
    return true;
}
$query = $_SERVER['QUERY_STRING'] ?? '';
header('X-Accel-Redirect: /internal/' . $m[1] . ($query === '' ? '' : '?' . $query));
header('Content-Type: text/plain');
return true;
