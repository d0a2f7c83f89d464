<?php

declare(strict_types=1);

// PSR-4 autoloading of the Pseudostream namespace for use without Composer
// (Composer's vendor/autoload.php does the same from composer.json).
spl_autoload_register(static function (string $class): void {
    $prefix = 'Pseudostream\\';
    if (!str_starts_with($class, $prefix)) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
