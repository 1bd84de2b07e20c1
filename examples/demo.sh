#!/bin/sh
# The main job, as it is deployed: nginx in front of the fcgi-pm program supervising
# examples/hello. Builds, starts both, sends requests through nginx, reloads the pool
# with HUP twice while a load generator runs (and counts the failed requests: there
# must be none), stops the manager with TERM, and shows its log.
set -eu
cd "$(dirname "$0")/.."
sh .ci/install-deps
echo "== building fcgi-pm and examples/hello"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target hello fcgi-pm-cli >/dev/null

work=$(mktemp -d /tmp/fcgi-pm-demo-XXXXXX)
sock=$work/hello.sock log=$work/manager.log
manager=
cleanup() {
  [ -z "$manager" ] || { pkill -KILL -P "$manager"; kill -KILL "$manager"; } 2>/dev/null || true
  sh examples/deploy/nginx-front.sh stop "$work/nginx"
  rm -rf "$work"
}
trap cleanup EXIT
workers() { cat "/proc/$manager/task/$manager/children"; }
wait_for_workers() {  # until 3 workers have logged "initialized" since line $1 of the log
  for _ in $(seq 300); do
    [ "$(tail -n +"$1" "$log" | grep -c 'server (pid [0-9]*): initialized')" -ge 3 ] && return 0
    sleep 0.02
  done
  echo "workers did not start"; cat "$log"; exit 1
}

echo "== fcgi-pm -s $sock -F 3 -- build/examples/hello"
build/src/fcgi-pm -s "$sock" -F 3 --die-timeout 10 -- build/examples/hello 2>"$log" &
manager=$!
wait_for_workers 1
echo "manager pid $manager, workers: $(workers)"

port=$(sh examples/deploy/nginx-front.sh start "$work/nginx" "$sock")
url=http://127.0.0.1:$port/hello
echo "== nginx (examples/deploy/nginx-server.conf) on 127.0.0.1:$port"
for i in 1 2 3; do echo "GET $url: $(curl -sS "$url")"; done

echo "== 4 s of load through nginx (wrk, 8 connections), HUP at 1 s and at 2.5 s"
wrk -t 2 -c 8 -d 4s "$url" >"$work/wrk.out" 2>&1 &
load=$!
sleep 1; echo "HUP (workers were: $(workers))"; kill -HUP "$manager"
sleep 1.5; echo "HUP (workers were: $(workers))"; kill -HUP "$manager"
wait "$load" || { cat "$work/wrk.out"; exit 1; }
sleep 0.2
echo "workers now: $(workers)"
total=$(awk '/requests in/ {print $1}' "$work/wrk.out")
bad=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
errors=$(awk '/Socket errors/ {for (i = 3; i <= NF; i++) n += $i} END {print n + 0}' "$work/wrk.out")
echo "requests: ${total:-0}, failed (non-2xx): ${bad:-0}, socket errors: ${errors:-0}"
[ "${total:-0}" -gt 0 ] && [ "${bad:-0}" -eq 0 ] && [ "${errors:-0}" -eq 0 ] || { cat "$work/wrk.out"; exit 1; }

echo "== TERM: the manager stops its workers and exits"
kill -TERM "$manager"
status=0; wait "$manager" || status=$?
manager=
echo "manager exit status: $status"
echo "== the manager's log (fcgi-pm, then each worker's lines)"
cat "$log"
[ "$status" -eq 0 ]
