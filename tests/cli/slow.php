<?php
// Answers after ?ms= milliseconds, naming the php-cgi process that served it.
usleep(((int)($_GET['ms'] ?? 0)) * 1000);
echo "php ", getmypid(), " done\n";
