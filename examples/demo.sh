#!/bin/sh
# The main job, end to end: build fcgi-pm, run examples/hello under the manager,
# send it real FastCGI requests, reload it with HUP, stop it with TERM, show the log.
set -eu
cd "$(dirname "$0")/.."
sh .ci/install-deps
echo "== building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target hello >/dev/null

work=$(mktemp -d /tmp/fcgi-pm-demo-XXXXXX)
sock=$work/hello.sock log=$work/manager.log
manager=
trap '[ -z "$manager" ] || kill -KILL $manager 2>/dev/null || true; rm -rf "$work"' EXIT

request() {
  REQUEST_METHOD=GET SCRIPT_NAME=/hello QUERY_STRING= cgi-fcgi -bind -connect "$sock" | tail -n 1
}
wait_for_workers() {  # until n workers have logged "initialized" since line $1 of the log
  for _ in $(seq 200); do
    [ "$(tail -n +"$1" "$log" | grep -c 'server (pid [0-9]*): initialized')" -ge 3 ] && return 0
    sleep 0.02
  done
  echo "workers did not start"; cat "$log"; exit 1
}

echo "== starting build/examples/hello $sock 3"
build/examples/hello "$sock" 3 2>"$log" &
manager=$!
wait_for_workers 1
echo "manager pid $manager, workers: $(cat /proc/$manager/task/$manager/children)"
for i in 1 2 3 4; do echo "request $i: $(request)"; done

echo "== HUP: every worker is replaced"
mark=$(($(wc -l <"$log") + 1))
kill -HUP $manager
wait_for_workers "$mark"
echo "workers now: $(cat /proc/$manager/task/$manager/children)"
for i in 5 6; do echo "request $i: $(request)"; done

echo "== TERM: clean shutdown"
kill -TERM $manager
status=0; wait $manager || status=$?
manager=
echo "manager exit status: $status"
echo "== the manager's log"
cat "$log"
[ "$status" -eq 0 ]
