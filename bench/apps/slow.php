<?php
// bench/pool.sh's slow request for php-fpm, as status_app's /slow?ms=N: sleeps N ms
// (from the query string; none: answers at once), then answers "pid <pid>".
// nginx sends every request here (SCRIPT_FILENAME), whatever its path.
$ms = isset($_GET['ms']) ? (int)$_GET['ms'] : 0;
if ($ms > 0)
    usleep($ms * 1000);
header('Content-Type: text/plain');
echo 'pid ', getmypid(), "\n";
