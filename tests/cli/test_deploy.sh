#!/bin/sh
# fcgi-pm deployed: nginx in front (examples/deploy/nginx-server.conf), reloads under
# load, systemd's notifications against a stand-in socket, the example unit files run
# through systemd-socket-activate, php-cgi (a program nobody here wrote) surviving HUP
# and TERM mid-request, and FCGI_WEB_SERVER_ADDRS on TCP.
# Usage: test_deploy.sh FCGI_PM HELLO NOTIFY_SINK
set -u
cli=$1 hello=$2 sink=$3
here=$(cd "$(dirname "$0")" && pwd)
deploy=$here/../../examples/deploy
work=$(mktemp -d /tmp/fcgi-pm-deploy-XXXXXX)
started=  # every manager and helper started, killed at the end whatever happened
trap 'for p in $started; do pkill -KILL -P $p; kill -KILL $p; done 2>/dev/null
      for d in "$work"/nginx*; do sh "$deploy/nginx-front.sh" stop "$d"; done
      rm -rf "$work"' EXIT
. "$here/lib.sh"
none_left() {  # pattern: no process whose command line matches
  for _ in $(seq 200); do pgrep -f "$1" >/dev/null || return 0; sleep 0.01; done
  pgrep -af "$1"; return 1
}
env_lacks() {  # pid variable...: none of the variables is in the process's environment
  pid=$1; shift
  for v in "$@"; do tr '\0' '\n' <"/proc/$pid/environ" | grep -q "^$v=" && { echo "  $pid has $v"; return 1; }; done
  return 0
}
wrk_clean() {  # wrk output file: requests were made, none failed
  total=$(awk '/requests in/ {print $1}' "$1")
  bad=$(awk '/Non-2xx/ {print $NF}' "$1")
  errors=$(awk '/Socket errors/ {for (i = 3; i <= NF; i++) n += $i} END {print n + 0}' "$1")
  echo "  wrk: ${total:-0} requests, ${bad:-0} non-2xx, $errors socket errors"
  [ "${total:-0}" -gt 0 ] && [ "${bad:-0}" -eq 0 ] && [ "$errors" -eq 0 ]
}

# -- 1. nginx in front of fcgi-pm + examples/hello; two HUPs under load, none failed
sock=$work/hello.sock log=$work/hello.log
"$cli" -s "$sock" -F 3 -- "$hello" 2>"$log" &
manager=$!; started="$started $manager"
check "hello: three exec'd workers initialized (library workers in place)" \
  wait_for 3 'server (pid [0-9]*): initialized' "$log"
check "hello: workers are the manager's children" test "$(children $manager | wc -w)" -eq 3
check "hello: adopted, not managers of their own (one manager pid in the log)" \
  test "$(grep -o 'manager (pid [0-9]*)' "$log" | sort -u | wc -l)" -eq 1
for w in $(children $manager); do
  check "hello: worker $w has no children of its own" test -z "$(children $w)"
done
port=$(sh "$deploy/nginx-front.sh" start "$work/nginx1" "$sock")
check "nginx started with the example server block" test -n "$port"
check "answer through nginx" sh -c "curl -sS http://127.0.0.1:$port/ | grep -q 'Hello from worker'"
wrk -t 2 -c 8 -d 3s "http://127.0.0.1:$port/" >"$work/wrk1.out" 2>&1 &
load=$!; started="$started $load"
sleep 0.8; kill -HUP $manager; sleep 1.2; kill -HUP $manager
wait $load
check "two HUPs under load through nginx: no request failed" wrk_clean "$work/wrk1.out"
check "hello: six replacements initialized" wait_for 9 'server (pid [0-9]*): initialized' "$log"
workers=$(children $manager)
kill -TERM $manager
check "hello: TERM ends the manager" gone $manager
wait $manager; check "hello: manager exit status 0" test $? -eq 0
check "hello: no worker left" all_gone $workers
sh "$deploy/nginx-front.sh" stop "$work/nginx1"

# -- 2. notifications to a stand-in NOTIFY_SOCKET: the sequence and the environment
notify=$work/notify.sock events=$work/notify.txt log=$work/notify.log
"$sink" "$notify" >"$events" &
started="$started $!"
for _ in $(seq 100); do [ -S "$notify" ] && break; sleep 0.01; done
NOTIFY_SOCKET=$notify "$cli" -s "$work/n.sock" -F 2 --start-delay 0.5 -- "$hello" 2>"$log" &
manager=$!; started="$started $manager"
check "notify: first worker started" wait_for 1 'server (pid [0-9]*) started' "$log"
check "notify: no READY=1 while a worker is still to start" test "$(grep -c '^READY=1' "$events")" -eq 0
check "notify: READY=1 once both workers run" wait_for 1 '^READY=1' "$events"
check "notify: both started by then" test "$(grep -c 'server (pid [0-9]*) started' "$log")" -eq 2
check "notify: STATUS shows the pool" wait_for 1 '^STATUS=2 of 2 workers running' "$events"
for w in $(children $manager); do
  check "notify: worker $w does not see NOTIFY_SOCKET" env_lacks "$w" NOTIFY_SOCKET
done
kill -HUP $manager
check "notify: RELOADING=1 on HUP" wait_for 1 '^RELOADING=1' "$events"
usec=$(sed -n 's/^RELOADING=1 | MONOTONIC_USEC=\([0-9]*\).*/\1/p' "$events")
received=$(sed -n 's/^RELOADING=1 .*RECEIVED_USEC=\([0-9]*\).*/\1/p' "$events")
check "notify: MONOTONIC_USEC is CLOCK_MONOTONIC when sent ($usec us, received at $received)" \
  awk -v u="${usec:-0}" -v r="${received:-0}" 'BEGIN { exit !(u > 0 && r >= u && r - u < 5000000) }'
check "notify: READY=1 again once the pool is replaced" wait_for 2 '^READY=1' "$events"
check "notify: by then both replacements started" test "$(grep -c 'server (pid [0-9]*) started' "$log")" -eq 4
kill -TERM $manager
if gone $manager; then
  check "notify: TERM ends the manager" true
else  # seen once under ASan: say what was still running
  check "notify: TERM ends the manager" false
  ps -o pid,ppid,stat,wchan:20,args --ppid $manager; tail -n 8 "$log"
fi
check "notify: STOPPING=1 on TERM" wait_for 1 '^STOPPING=1' "$events"
grep -v '^STATUS=' "$events" | cut -d' ' -f1 | tr '\n' ' ' >"$work/sequence"
check "notify: sequence READY RELOADING READY STOPPING (got: $(cat "$work/sequence"))" \
  test "$(cat "$work/sequence")" = "READY=1 RELOADING=1 READY=1 STOPPING=1 "

# -- 3. the example units: verified by systemd, then run as systemd would run them
units=$work/units; mkdir -p "$units"
sed -e "s#/usr/local/bin/fcgi-pm#$cli#" -e "s#/usr/local/bin/hello#$hello#" \
  "$deploy/fcgi-pm-hello.service" >"$units/fcgi-pm-hello.service"
sed -e "s#/run/fcgi-pm-hello.sock#$work/unit.sock#" "$deploy/fcgi-pm-hello.socket" >"$units/fcgi-pm-hello.socket"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no "$units/fcgi-pm-hello.socket" "$units/fcgi-pm-hello.service" >"$work/verify.out" 2>&1
  check "units: systemd-analyze verify is silent ($(cat "$work/verify.out"))" \
    test $? -eq 0 -a ! -s "$work/verify.out"
fi
exec_start=$(sed -n 's/^ExecStart=//p' "$units/fcgi-pm-hello.service")
listen=$(sed -n 's/^ListenStream=//p' "$units/fcgi-pm-hello.socket")
notify=$work/notify-unit.sock events=$work/notify-unit.txt log=$work/unit.log
"$sink" "$notify" >"$events" &
started="$started $!"
for _ in $(seq 100); do [ -S "$notify" ] && break; sleep 0.01; done
# systemd-socket-activate listens as the .socket would, and execs ExecStart (in
# place) when the first connection arrives: that first request must be answered.
# shellcheck disable=SC2086
systemd-socket-activate -l "$listen" -E NOTIFY_SOCKET="$notify" $exec_start 2>"$log" &
manager=$!; started="$started $manager"
for _ in $(seq 200); do [ -S "$listen" ] && break; sleep 0.01; done
port=$(sh "$deploy/nginx-front.sh" start "$work/nginx3" "$listen")
check "units: the first request (it starts fcgi-pm) is answered through nginx" \
  sh -c "curl -sS -m 10 http://127.0.0.1:$port/ | grep -q 'Hello from worker'"
check "units: READY=1 from the activated manager" wait_for 1 '^READY=1' "$events"
check "units: STATUS shows 4 workers" wait_for 1 '^STATUS=4 of 4 workers running' "$events"
for w in $(children $manager); do
  check "units: worker $w sees no LISTEN_PID, LISTEN_FDS or NOTIFY_SOCKET" \
    env_lacks "$w" LISTEN_PID LISTEN_FDS NOTIFY_SOCKET
done
kill -HUP $manager  # ExecReload
check "units: reload notified" wait_for 1 '^RELOADING=1' "$events"
check "units: ready again after the reload" wait_for 2 '^READY=1' "$events"
check "units: answers after the reload" sh -c "curl -sS -m 10 http://127.0.0.1:$port/ | grep -q 'Hello from worker'"
workers=$(children $manager)
kill -TERM $manager  # KillMode=mixed: TERM to the manager alone
check "units: STOPPING=1" wait_for 1 '^STOPPING=1' "$events"
check "units: manager gone" gone $manager
wait $manager; check "units: exit status 0" test $? -eq 0
check "units: no worker left" all_gone $workers
sh "$deploy/nginx-front.sh" stop "$work/nginx3"

# -- 4. php-cgi from Debian, unmodified, behind nginx: HUP and TERM mid-request
if command -v php-cgi >/dev/null; then
  sock=$work/php.sock log=$work/php.log
  sed "s#ROOT#$here#" "$here/nginx-php.conf" >"$work/nginx-php.conf"
  "$cli" -s "$sock" -F 2 -- php-cgi 2>"$log" &
  manager=$!; started="$started $manager"
  check "php: two workers" wait_for 2 'server (pid [0-9]*) started' "$log"
  port=$(sh "$deploy/nginx-front.sh" start "$work/nginx4" "$sock" "$work/nginx-php.conf")
  url=http://127.0.0.1:$port/slow.php
  check "php: answers through nginx" sh -c "curl -sS -m 10 '$url' | grep -q 'done'"
  before=$(children $manager)
  curl -sS -m 20 "$url?ms=1500" >"$work/php-hup.out" 2>&1 &
  slow=$!
  sleep 0.5; kill -HUP $manager
  check "php: replacements answer during the slow request" \
    sh -c "sleep 0.3; curl -sS -m 10 '$url' | grep -q done"
  wait $slow; rc=$?
  check "php: the request in progress during HUP completed (rc $rc: $(cat "$work/php-hup.out"))" \
    sh -c "[ $rc -eq 0 ] && grep -q '^php [0-9]* done' '$work/php-hup.out'"
  served=$(awk '{print $2}' "$work/php-hup.out")
  check "php: ...served by a worker from before the HUP" sh -c "echo ' $before ' | grep -q ' $served '"
  check "php: every worker replaced" sh -c "for p in $before; do ! kill -0 \$p 2>/dev/null || exit 1; done"
  curl -sS -m 20 "$url?ms=1500" >"$work/php-term.out" 2>&1 &
  slow=$!
  sleep 0.5; kill -TERM $manager
  wait $slow; rc=$?
  check "php: the request in progress during TERM completed (rc $rc: $(cat "$work/php-term.out"))" \
    sh -c "[ $rc -eq 0 ] && grep -q '^php [0-9]* done' '$work/php-term.out'"
  check "php: manager gone" gone $manager
  wait $manager; check "php: exit status 0" test $? -eq 0
  check "php: no php-cgi left" none_left "^php-cgi"
  check "php: the manager logged a clean shutdown" grep -q 'dying: safe exit from signal TERM' "$log"
  sh "$deploy/nginx-front.sh" stop "$work/nginx4"
else
  echo "FAIL: php-cgi is not installed (.ci/test installs it)"; failed=$((failed + 1))
fi

# -- 5. TCP with FCGI_WEB_SERVER_ADDRS: only the listed web servers are served
tcp_get() {  # port: the body of one request from 127.0.0.1
  REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect "127.0.0.1:$1" 2>/dev/null | tail -n 1
}
for allowed in 127.0.0.2 127.0.0.1; do
  log=$work/tcp-$allowed.log
  for try in 1 2 3 4 5 6 7 8 9 10; do
    tport=$((20000 + ($$ + try * 97) % 20000))
    FCGI_WEB_SERVER_ADDRS=$allowed "$cli" -a 127.0.0.1 -p $tport -F 1 -- "$hello" 2>"$log" &
    manager=$!; started="$started $manager"
    up=no
    wait_for 1 'initialized' "$log" && { up=yes; break; }
    kill -KILL $manager 2>/dev/null; wait $manager 2>/dev/null
  done
  check "tcp: a manager listening on a free port (FCGI_WEB_SERVER_ADDRS=$allowed)" test $up = yes
  body=$(tcp_get $tport)
  if [ $allowed = 127.0.0.1 ]; then
    check "tcp: served when 127.0.0.1 is in FCGI_WEB_SERVER_ADDRS ($body)" sh -c "echo '$body' | grep -q 'Hello from worker'"
  else
    check "tcp: refused when only 127.0.0.2 is listed (got '$body')" test -z "$body"
  fi
  kill -TERM $manager; gone $manager; wait $manager 2>/dev/null
done

# -- 6. --max-requests reaches workers on libfcgi-pm as PM_MAX_REQUESTS
sock=$work/max.sock log=$work/max.log
"$cli" -s "$sock" -F 1 --max-requests 2 -- "$hello" 2>"$log" &
manager=$!; started="$started $manager"
wait_for 1 'initialized' "$log"
for _ in 1 2 3; do REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect "$sock" >/dev/null 2>&1; done
check "max-requests: the worker left after its 2nd request" wait_for 1 'safe exit after max_requests (2)' "$log"
check "max-requests: and was replaced" wait_for 2 'server (pid [0-9]*) started' "$log"
kill -TERM $manager; gone $manager; wait $manager 2>/dev/null

# A stale FCGI_PM_MANAGER_PID (not the parent's pid) leaves hello a manager of its own.
log=$work/stale-env.log
FCGI_PM_MANAGER_PID=1 "$hello" "$work/own.sock" 2 2>"$log" &
manager=$!; started="$started $manager"
check "stale FCGI_PM_MANAGER_PID: hello manages its own pool" \
  wait_for 2 'manager (pid [0-9]*): server (pid [0-9]*) started' "$log"
kill -TERM $manager; gone $manager; wait $manager 2>/dev/null

# -- 7. the remaining flags, each seen to take effect
sock=$work/flags.sock log=$work/flags.log
"$cli" -n -b 7 --pm-title flagged-manager -s "$sock" -F 1 -- "$hello" 2>"$log" &
manager=$!; started="$started $manager"
check "flags: -n -b --pm-title accepted, worker up" wait_for 1 'initialized' "$log"
check "flags: -b 7 is the socket's backlog" \
  test "$(ss -xlnH src "$sock" 2>/dev/null | awk '{print $4}')" = 7
check "flags: --pm-title names the manager" grep -q '^flagged-manager' "/proc/$manager/cmdline"
kill -TERM $manager; gone $manager; wait $manager 2>/dev/null

log=$work/size.log
"$cli" -s "$work/size.sock" -F 1 --max-size 1 --sizecheck-num-requests 1 -- "$hello" 2>"$log" &
manager=$!; started="$started $manager"
wait_for 1 'initialized' "$log"
REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect "$work/size.sock" >/dev/null 2>&1
check "flags: --max-size 1 --sizecheck-num-requests 1 end the worker after one request" \
  wait_for 1 'safe exit due to memory limits exceeded after 1 requests' "$log"
kill -TERM $manager; gone $manager; wait $manager 2>/dev/null

# A program that ignores TERM: --die-timeout 1 then SIGKILLs it, and says so.
log=$work/stubborn.log
"$cli" -s "$work/stubborn.sock" -F 1 --die-timeout 1 -- \
  sh -c 'trap "" TERM; exec sleep 60' 2>"$log" &
manager=$!; started="$started $manager"
wait_for 1 'server (pid [0-9]*) started' "$log"; sleep 0.3
worker=$(children $manager)
kill -TERM $manager
check "flags: --die-timeout 1: manager gone within 5 s" gone $manager
wait $manager; rc=$?
check "flags: --die-timeout 1: exit status 1 and 'wait timeout' (status $rc)" \
  sh -c "[ $rc -eq 1 ] && grep -q 'wait timeout' '$log'"
check "flags: --die-timeout 1: the stubborn worker was killed" sh -c "! kill -0 $worker 2>/dev/null"

# A program that fails at once: the backoff flags pace it, the crash budget names it.
log=$work/crash.log
"$cli" -s "$work/crash.sock" -F 1 --min-uptime 5 --backoff-min 1 --backoff-max 1 \
  --crash-budget 2 --crash-window 10 -- sh -c 'exit 3' 2>"$log" &
manager=$!; started="$started $manager"
sleep 2.5
starts=$(grep -c 'server (pid [0-9]*) started' "$log")
check "flags: --backoff-min/max 1: at most 3 starts in 2.5 s (got $starts; 5 with the defaults)" \
  test "$starts" -ge 2 -a "$starts" -le 3
check "flags: --crash-budget 2: crash loop logged" grep -q 'crash loop: 2 workers failed within 5 s' "$log"
kill -TERM $manager; gone $manager; wait $manager 2>/dev/null

echo "test_deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
