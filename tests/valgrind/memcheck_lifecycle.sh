#!/bin/sh
# Runs a whole life cycle of a managed pool under valgrind --trace-children: start,
# requests, a worker SIGKILLed and respawned, HUP, a request during TERM, shutdown.
# Every process (manager and each worker) must end with no memcheck error and nothing
# definitely or indirectly lost.
# Usage: memcheck_lifecycle.sh WORKER_APP
set -eu
app=$1
work=$(mktemp -d /tmp/fcgi-pm-valgrind-XXXXXX)
manager=
trap '[ -z "$manager" ] || kill -KILL $manager 2>/dev/null || true; rm -rf "$work"' EXIT
sock=$work/s.sock log=$work/app.log

wait_log() {  # count pattern seconds
  for _ in $(seq $(($3 * 20))); do
    [ "$(grep -c -- "$2" "$log" 2>/dev/null)" -ge "$1" ] && return 0
    sleep 0.05
  done
  echo "timed out waiting for $1 x '$2'"; cat "$log"; exit 1
}
request() {
  REQUEST_METHOD=GET SCRIPT_NAME=/ QUERY_STRING="$1" cgi-fcgi -bind -connect "$sock"
}

valgrind --quiet --trace-children=yes --child-silent-after-fork=no --error-exitcode=99 \
  --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
  --log-file="$work/vg.%p" "$app" "$sock" n_processes=2 die_timeout=20 >"$log" 2>&1 &
manager=$!
wait_log 2 'server (pid [0-9]*): initialized' 60
request "" | grep -q "Hello from worker"
worker=$(sed -n 's/.*server (pid \([0-9]*\)) started/\1/p' "$log" | head -n 1)
kill -KILL "$worker"
wait_log 3 'server (pid [0-9]*): initialized' 60
kill -HUP $manager
wait_log 5 'server (pid [0-9]*): initialized' 60
request "" | grep -q "Hello from worker"
request "sleep_ms=1500" >"$work/slow" &
slow=$!
sleep 1
kill -TERM $manager
wait $slow
grep -q "Hello from worker" "$work/slow"
status=0
wait $manager || status=$?
manager=
[ "$status" -eq 0 ] || { echo "manager exit status $status"; cat "$log"; cat "$work"/vg.*; exit 1; }
grep -q 'dying: safe exit from signal TERM' "$log"

# One valgrind log per process; the SIGKILLed worker's is cut short, skip it.
checked=0
for f in "$work"/vg.*; do
  pid=${f##*.}
  [ "$pid" = "$worker" ] && continue
  if grep -q -E 'ERROR SUMMARY: [1-9]|definitely lost: [1-9]|indirectly lost: [1-9]|Invalid|uninitialised' "$f"; then
    echo "memcheck report in process $pid:"; cat "$f"; exit 1
  fi
  checked=$((checked + 1))
done
[ "$checked" -ge 5 ] || { echo "only $checked valgrind logs"; ls "$work"; exit 1; }
echo "valgrind: $checked processes (manager and workers), 0 errors, 0 bytes lost"
