#!/bin/sh
# fcgi-pm status against real pools: fcgi-pm running status_app (a libfcgi worker on
# this library), nginx in front (examples/deploy/nginx-front.sh), cgi-fcgi where a
# client must wait in the listen queue. Checks the counts against the requests sent,
# a slow request's URI and growing duration, states across HUP, TERM, crashes and
# respawns, no torn snapshot under a HUP storm, the listen queue (unix and TCP), JSON
# (python3), OpenMetrics (python3-prometheus-client's parser), --watch in a real
# terminal (tmux), access by another user and through the status socket, a worker
# that writes garbage into its slot, and the manager's title.
# Usage: test_status.sh FCGI_PM STATUS_APP STATUS_POLL
set -u
cli=$1 app=$2 poll=$3
here=$(cd "$(dirname "$0")" && pwd)
deploy=$here/../../examples/deploy
work=$(mktemp -d /tmp/fcgi-pm-status-XXXXXX)
chmod 755 "$work"
started=
trap 'for p in $started; do pkill -KILL -P $p; kill -KILL $p; done 2>/dev/null
      tmux -L fcgipm-status kill-server 2>/dev/null
      for d in "$work"/nginx*; do sh "$deploy/nginx-front.sh" stop "$d"; done
      rm -rf "$work"' EXIT
. "$here/../cli/lib.sh"

# json FILE EXPR: prints a Python expression over the status JSON in FILE (as j)
py=/usr/bin/python3  # Debian's, with Debian's prometheus_client (not a pyenv shim's)
json() { "$py" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
status_json() {  # manager out: fcgi-pm status --json, exit 0
  "$cli" status --json "$1" >"$2"
}
until_json() {  # manager expr: within 5 s a status whose JSON makes expr true
  for _ in $(seq 250); do
    "$cli" status --json "$1" >"$work/until.json" 2>/dev/null &&
      [ "$(json "$work/until.json" "$2")" = True ] && return 0
    sleep 0.02
  done
  echo "  never: $2"; cat "$work/until.json"; return 1
}
get() {  # url: the body through nginx
  curl -sS --max-time 10 "http://127.0.0.1:$port$1"
}

# -- 1. counts through nginx: exact, per worker and in total
sock=$work/app.sock log=$work/app.log
"$cli" -s "$sock" -F 3 -P "$work/app.pid" -- "$app" 2>"$log" &
manager=$!; started="$started $manager"
check "pool: three workers initialized" wait_for 3 'server (pid [0-9]*): initialized' "$log"
port=$(sh "$deploy/nginx-front.sh" start "$work/nginx1" "$sock")
check "nginx started" test -n "$port"
seq 300 | xargs -P 4 -I{} curl -sS --max-time 10 "http://127.0.0.1:$port/r{}" >"$work/bodies.txt"
check "300 requests answered" test "$(grep -c '^pid ' "$work/bodies.txt")" -eq 300
status_json "$work/app.pid" "$work/s1.json"
check "status --json by pid file: exit 0" test $? -eq 0
check "JSON: pool.requests is the 300 sent" test "$(json "$work/s1.json" "j['pool']['requests']")" -eq 300
check "JSON: the workers' requests add up to 300" \
  test "$(json "$work/s1.json" "sum(w['requests'] for w in j['workers'])")" -eq 300
for w in $(json "$work/s1.json" "' '.join(str(w['pid']) for w in j['workers'])"); do
  sent=$(grep -c "^pid $w\$" "$work/bodies.txt")
  counted=$(json "$work/s1.json" "[x['requests'] for x in j['workers'] if x['pid'] == $w][0]")
  check "JSON: worker $w counted $counted, answered $sent" test "$counted" -eq "$sent"
done
check "JSON: 3 of 3 workers, all idle, target 3" \
  test "$(json "$work/s1.json" "(j['pool']['workers'], j['pool']['idle'], j['pool']['target'])")" = "(3, 3, 3)"
check "JSON: the last request's URI, method and client per worker" \
  test "$(json "$work/s1.json" "all(w['uri'].startswith('/r') and w['method'] == 'GET' and w['remote'] == '127.0.0.1' for w in j['workers'])")" = True
check "JSON: CPU and memory of each worker from /proc" \
  test "$(json "$work/s1.json" "all(w['rss_bytes'] > 0 and w['cpu_seconds'] >= 0 for w in j['workers'])")" = True
# CPU and memory: current at once after a request (read from /proc: the manager's
# figures are from before it), then from the manager's look (--no-proc has them).
burner=$(get "/burn?ms=400" | sed -n 's/^pid //p')
status_json "$work/app.pid" "$work/burn.json"
check "CPU: worker $burner's 400 ms of CPU shows at once" \
  test "$(json "$work/burn.json" "[w['cpu_seconds'] >= 0.35 for w in j['workers'] if w['pid'] == ${burner:-0}]")" = "[True]"
until_json_no_proc() {  # manager expr: as until_json, with --no-proc
  for _ in $(seq 250); do
    "$cli" status --json --no-proc "$1" >"$work/until.json" 2>/dev/null &&
      [ "$(json "$work/until.json" "$2")" = True ] && return 0
    sleep 0.02
  done
  echo "  never: $2"; cat "$work/until.json"; return 1
}
check "CPU: then from the scoreboard (--no-proc), the same, for every idle worker" until_json_no_proc "$work/app.pid" \
  "all(w['rss_bytes'] > 0 and w['cpu_seconds'] >= (0.35 if w['pid'] == ${burner:-0} else 0) for w in j['workers'])"
check "JSON: the manager's pid and title" \
  test "$(json "$work/s1.json" "(j['pool']['manager_pid'], j['pool']['title'])")" = "($manager, 'fcgi-pm: manager (status_app on $sock)')"
for target in "$manager" "$sock" "unix:$sock"; do
  check "status by $target: the same pool" sh -c "'$cli' status --json '$target' | grep -q '\"manager_pid\":$manager'"
done

# -- 2. the title: ps names the pool; the exec'd workers keep their own name
check "ps: the manager's title names program and socket" \
  test "$(ps -o args= -p $manager)" = "fcgi-pm: manager (status_app on $sock)"
for w in $(children $manager); do
  check "ps: worker $w keeps its own name" test "$(ps -o args= -p $w)" = "$app"
done

# -- 3. a slow request: busy, its URI, a duration that grows; the table shows it
get "/slow?ms=2500" >/dev/null &
slow=$!
check "a worker busy on /slow?ms=2500" until_json "$work/app.pid" \
  "any(w['state'] == 'busy' and w['uri'] == '/slow?ms=2500' and w['method'] == 'GET' and w['remote'] == '127.0.0.1' for w in j['workers'])"
status_json "$work/app.pid" "$work/b1.json"; sleep 0.4; status_json "$work/app.pid" "$work/b2.json"
d1=$(json "$work/b1.json" "[w['request_seconds'] for w in j['workers'] if w['busy']][0]")
d2=$(json "$work/b2.json" "[w['request_seconds'] for w in j['workers'] if w['busy']][0]")
check "its duration grows: $d1 s, then $d2 s" "$py" -c "import sys; sys.exit(not (0 < $d1 < $d2 - 0.3 < 3))"
"$cli" status --json --no-proc "$work/app.pid" >"$work/b3.json"
check "--no-proc: no CPU or memory for the busy worker (the manager's are not current)" \
  test "$(json "$work/b3.json" "[(w['cpu_seconds'], w['rss_bytes']) for w in j['workers'] if w['busy']]")" = "[(None, None)]"
"$cli" status "$work/app.pid" >"$work/table.txt"
sed 's/^/  | /' "$work/table.txt"
check "table: the busy row shows the request" grep -q 'busy .*\* GET /slow?ms=2500 (127.0.0.1)' "$work/table.txt"
check "table: the summary says 1 busy" grep -q '^workers: *3 of 3 (static): 1 busy, 2 idle' "$work/table.txt"

# -- 4. HUP with the slow request in flight: it finishes, the others are replaced
before=$(children $manager)
kill -HUP $manager
check "HUP: the busy worker shows stopping, still on its request" until_json "$work/app.pid" \
  "any(w['state'] == 'stopping' and w['busy'] and w['uri'] == '/slow?ms=2500' for w in j['workers'])"
check "HUP: a reload counted" until_json "$work/app.pid" "j['pool']['reloads'] == 1"
wait $slow
check "HUP: then 3 new workers, all idle, 3 respawns" until_json "$work/app.pid" \
  "j['pool']['idle'] == 3 and j['pool']['workers'] == 3 and j['pool']['respawns'] == 3 and j['pool']['phase'] == 'running' and not set(w['pid'] for w in j['workers']) & set(map(int, '$before'.split()))"
check "HUP: requests served survive the workers (302: the 300, the burn, the slow one)" until_json "$work/app.pid" "j['pool']['requests'] == 302"

# -- 5. a crash mid-request: counted as an exit and a respawn, the pool whole again
get /crash >/dev/null 2>&1
check "crash: the worker is replaced (4 exits, 4 respawns, 3 idle)" until_json "$work/app.pid" \
  "j['pool']['exits'] == 4 and j['pool']['respawns'] == 4 and j['pool']['idle'] == 3"

# -- 6. OpenMetrics: parsed by prometheus_client, the same figures as the JSON
"$cli" status --openmetrics "$sock" >"$work/metrics.txt"
check "openmetrics: exit 0" test $? -eq 0
status_json "$sock" "$work/s2.json"
cat >"$work/om.py" <<'PY'
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
j = json.load(open(sys.argv[2]))
fams = {f.name: f for f in text_string_to_metric_families(text)}
def value(name, **labels):
    for f in fams.values():
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise SystemExit("no sample " + name + str(labels))
assert fams["fcgipm_requests"].type == "counter", fams["fcgipm_requests"].type
assert fams["fcgipm_manager_start_time_seconds"].unit == "seconds"
assert all(f.documentation for f in fams.values()), "a family without HELP"
p = j["pool"]
assert value("fcgipm_requests_total") == p["requests"], (value("fcgipm_requests_total"), p["requests"])
assert value("fcgipm_workers", state="idle") == p["idle"]
assert p["mode"] == "static" and value("fcgipm_manager_info", mode="static") == 1
assert value("fcgipm_workers_target") == p["target"]
assert value("fcgipm_reloads_total") == p["reloads"] == 1
assert value("fcgipm_worker_respawns_total") == p["respawns"]
assert value("fcgipm_listen_backlog") == p["listen_backlog"] == 1024
for w in j["workers"]:
    assert value("fcgipm_worker_requests_total", pid=str(w["pid"])) == w["requests"]
    assert value("fcgipm_worker_resident_memory_bytes", pid=str(w["pid"])) == w["rss_bytes"]
print("openmetrics: %d families, %d samples" % (len(fams), sum(len(f.samples) for f in fams.values())))
PY
check "openmetrics: parsed, HELP and TYPE, values equal the JSON's" "$py" "$work/om.py" "$work/metrics.txt" "$work/s2.json"

# -- 7. --watch in a real terminal: the table, refreshed, until Ctrl-C
tmux -L fcgipm-status new-session -d -s watch -x 160 -y 40 \
  "'$cli' status --watch=0.2 '$work/app.pid'; echo watch-exit=\$? >'$work/watch.rc'; sleep 30"
screen() { tmux -L fcgipm-status capture-pane -p -t watch; }
until_screen() {  # pattern: on the screen within 5 s
  for _ in $(seq 100); do screen | grep -q -- "$1" && return 0; sleep 0.05; done
  screen; return 1
}
check "watch: the table on the terminal" until_screen '^workers: *3 of 3 (static): 0 busy, 3 idle'
served=$(json "$work/s2.json" "j['pool']['requests']")
get /w1 >/dev/null; get /w2 >/dev/null
check "watch: refreshed with the new requests ($((served + 2)) served)" until_screen "^requests: *$((served + 2)) served"
tmux -L fcgipm-status send-keys -t watch C-c
for _ in $(seq 100); do [ -s "$work/watch.rc" ] && break; sleep 0.05; done
check "watch: Ctrl-C ends it with status 0" grep -q 'watch-exit=0' "$work/watch.rc"
check "watch: the terminal's screen is given back" sh -c "! tmux -L fcgipm-status capture-pane -p -t watch | grep -q '^workers:'"
tmux -L fcgipm-status kill-server 2>/dev/null
# ... and into a pipe: one plain table after another, no terminal escapes
"$cli" status --watch=0.1 "$work/app.pid" >"$work/watch.txt" 2>&1 &
watcher=$!
sleep 0.5; kill -INT $watcher; wait $watcher; rc=$?
check "watch into a file: ends with status 0 on INT (rc $rc)" test $rc = 0
check "watch into a file: several tables" test "$(grep -c '^workers: *3 of 3' "$work/watch.txt")" -ge 2
check "watch into a file: no escape sequence" sh -c "! grep -q \"\$(printf '\\033')\" '$work/watch.txt'"

# -- 8. a worker that writes garbage into its slot: readers and the manager carry on
status_json "$work/app.pid" "$work/before.json"
body=$(get /corrupt)
victim=$(echo "$body" | sed -n 's/^pid //p')
check "corrupt: worker $victim overwrote its slot" sh -c "echo '$body' | grep -q 'corrupted 1'"
"$cli" status --json "$work/app.pid" >"$work/c.json" 2>"$work/c.err"; rc=$?
check "corrupt: status answers, exit 0 (rc $rc)" test $rc -eq 0
check "corrupt: the JSON parses" "$py" -m json.tool "$work/c.json" >/dev/null
cat >"$work/bounded.py" <<'PY'
import json, string, sys
j = json.load(open(sys.argv[1])); victim = int(sys.argv[2])
p = j["pool"]; w = [x for x in j["workers"] if x["pid"] == victim]
assert len(w) == 1, "the worker is still listed"
w = w[0]
printable = set(string.printable) - set("\t\n\r\x0b\x0c")
for f in ("method", "uri", "remote"):
    assert len(w[f]) <= {"method": 15, "uri": 191, "remote": 47}[f], (f, len(w[f]))
    assert set(w[f]) <= printable, (f, w[f])
assert w["state"] in ("starting", "idle", "busy", "stopping", "running"), w["state"]
assert 0 <= w["requests"] <= 1 << 40, w["requests"]
if w["request_seconds"] is not None:
    assert 0 <= w["request_seconds"] <= p["uptime_seconds"] + 1, (w["request_seconds"], p["uptime_seconds"])
assert 0 <= p["requests"] < 1 << 42, p["requests"]
print("  garbage bounded: uri %r..., %d requests, request_seconds %s" % (w["uri"][:16], w["requests"], w["request_seconds"]))
PY
check "corrupt: every field of the worker bounded, printable" "$py" "$work/bounded.py" "$work/c.json" "$victim"
"$cli" status "$work/app.pid" >"$work/c.txt" 2>&1; rc=$?
check "corrupt: the table too (rc $rc)" test $rc -eq 0
"$cli" status --openmetrics "$work/app.pid" >"$work/c.om" 2>/dev/null
check "corrupt: OpenMetrics still parses" "$py" -c "
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
list(text_string_to_metric_families(open(sys.argv[1]).read()))" "$work/c.om"
started_before=$(json "$work/before.json" "[w['start_time'] for w in j['workers'] if w['pid'] == $victim][0]")
check "corrupt: within 2 s the manager's view of it is its own again" until_json "$work/app.pid" \
  "[w['start_time'] for w in j['workers'] if w['pid'] == $victim] == [$started_before]"
check "corrupt: the manager lives" kill -0 $manager
seq 20 | xargs -P 4 -I{} curl -sS --max-time 10 "http://127.0.0.1:$port/after{}" >"$work/after.txt"
check "corrupt: the pool still answers" test "$(grep -c '^pid ' "$work/after.txt")" -eq 20
kill -HUP $manager
check "corrupt: a HUP still replaces every worker" until_json "$work/app.pid" \
  "j['pool']['reloads'] == 2 and j['pool']['idle'] == 3 and j['pool']['stopping'] == 0"

# -- 9. no torn snapshot: a reader in a tight loop through a HUP storm under load
wrk -t 2 -c 4 -d 4s "http://127.0.0.1:$port/named?k=12345678" >"$work/wrk.out" 2>&1 &
load=$!; started="$started $load"
"$poll" "$work/app.pid" 4 >"$work/poll.txt" 2>&1 &
poller=$!
for _ in $(seq 20); do sleep 0.15; kill -HUP $manager; done
wait $load; wait $poller; rc=$?
echo "  $(cat "$work/poll.txt" | tail -1)"
check "HUP storm: no torn view, no count going down, states adding up" test $rc -eq 0
check "HUP storm: the reader saw named requests" sh -c "awk '{exit !(\$4 > 0)}' '$work/poll.txt'"
cat >"$work/mixed.sh" <<SH
for k in \$(seq 1000 1400); do curl -s -o /dev/null "http://127.0.0.1:$port/named?k=\$k\$k"; done
SH
sh "$work/mixed.sh" & mixed=$!
"$poll" "$work/app.pid" 3 >"$work/poll2.txt" 2>&1 & poller=$!
for _ in $(seq 10); do sleep 0.2; kill -HUP $manager; done
wait $poller; rc=$?; wait $mixed
echo "  $(tail -1 "$work/poll2.txt")"
check "HUP storm, a new name each request: no torn view" test $rc -eq 0

# -- 10. another user: refused with one line, exit 1
setpriv --reuid=nobody --regid=nogroup --clear-groups "$cli" status "$manager" >/dev/null 2>"$work/other.err"; rc=$?
check "another user: exit 1" test $rc -eq 1
check "another user: one line saying so" sh -c "[ \$(wc -l <'$work/other.err') -eq 1 ] && grep -q 'another user' '$work/other.err'"
cat "$work/other.err" | sed 's/^/  /'

# -- 11. TERM: stopping while a request runs, then gone
get "/slow?ms=1500" >/dev/null & slow=$!
check "TERM: a worker busy first" until_json "$work/app.pid" "j['pool']['busy'] == 1"
kill -TERM $manager
check "TERM: phase stopping, the busy worker finishing" until_json "$work/app.pid" \
  "j['pool']['phase'] == 'stopping' and any(w['state'] == 'stopping' and w['busy'] for w in j['workers'])"
wait $slow
check "TERM: the manager ends" gone $manager
"$cli" status "$manager" >/dev/null 2>"$work/gone.err"; rc=$?
check "gone: exit 1 with one line" sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$work/gone.err') -eq 1 ]"
cat "$work/gone.err" | sed 's/^/  /'
"$cli" status "$sock" >/dev/null 2>"$work/gone2.err"; rc=$?
check "gone, by socket: exit 1 with one line" sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$work/gone2.err') -eq 1 ]"
"$cli" status /etc/passwd >/dev/null 2>"$work/bad.err"; rc=$?
check "not a pid file: exit 1 with one line" sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$work/bad.err') -eq 1 ]"
"$cli" status --bogus x >/dev/null 2>&1; rc=$?
check "bad usage: exit 2" test $rc -eq 2
"$cli" status $$ >/dev/null 2>"$work/notpm.err"; rc=$?
check "not fcgi-pm: exit 1 naming it" sh -c "[ $rc -eq 1 ] && grep -q 'not an fcgi-pm manager' '$work/notpm.err'"
sh "$deploy/nginx-front.sh" stop "$work/nginx1"

# -- 12. the listen queue: unix and TCP, one worker busy and clients waiting
for kind in unix tcp; do
  log=$work/q-$kind.log
  if [ $kind = unix ]; then
    addr=$work/q.sock; "$cli" -s "$addr" -b 7 -F 1 -- "$app" 2>"$log" &
  else
    tport=$("$py" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
    addr=127.0.0.1:$tport; "$cli" -a 127.0.0.1 -p "$tport" -b 7 -F 1 -- "$app" 2>"$log" &
  fi
  qm=$!; started="$started $qm"
  wait_for 1 'server (pid [0-9]*): initialized' "$log"
  clients=
  for k in 1 2 3 4; do
    REQUEST_METHOD=GET REQUEST_URI="/slow?ms=1500" SCRIPT_FILENAME=/s \
      cgi-fcgi -bind -connect "$addr" >/dev/null 2>&1 &
    clients="$clients $!"
    sleep 0.05
  done
  check "$kind: 3 connections waiting behind the busy worker, backlog 7" until_json "$addr" \
    "j['pool']['busy'] == 1 and j['pool']['listen_queue'] == 3 and j['pool']['listen_backlog'] == 7"
  check "$kind: the pool was sampled full, the queue's maximum kept" until_json "$qm" \
    "j['pool']['pool_full'] >= 1 and j['pool']['listen_queue_max'] >= 3"
  kill -TERM $qm
  wait $clients 2>/dev/null
  gone $qm
done

# -- 13. a crash loop: the failures counted, the backoff shown
log=$work/crash.log
STATUS_APP_FAIL=1 "$cli" -s "$work/crash.sock" -F 2 --crash-budget 2 --backoff-min 0.05 -- "$app" 2>"$log" &
cm=$!; started="$started $cm"
check "crash loop: the backoff on, the early failures counted" until_json "$cm" \
  "j['pool']['crash_backoff'] and j['pool']['crashes'] >= 2 and j['pool']['exits'] >= 2"
"$cli" status "$cm" >"$work/crash.txt"
check "crash loop: the table says so" grep -q 'CRASH BACKOFF, next respawn in' "$work/crash.txt"
"$cli" status --openmetrics "$cm" >"$work/crash.om"
check "crash loop: fcgipm_crash_backoff 1" grep -q '^fcgipm_crash_backoff 1$' "$work/crash.om"
kill -TERM $cm; gone $cm

# -- 14. the status socket: another user in the group reads it, no one else
groupadd -f fcgipm-status-test 2>/dev/null
gid=$(getent group fcgipm-status-test | cut -d: -f3)
log=$work/g.log ssock=$work/status.sock
"$cli" -s "$work/g.sock" -F 2 --status-socket "$ssock" --status-group fcgipm-status-test -- "$app" 2>"$log" &
gm=$!; started="$started $gm"
wait_for 2 'server (pid [0-9]*): initialized' "$log"
check "status socket: mode 0660, the group's" test "$(stat -c '%a %G' "$ssock")" = "660 fcgipm-status-test"
setpriv --reuid=nobody --regid=nogroup --groups="$gid" "$cli" status --json "$ssock" >"$work/g.json" 2>"$work/g.err"
check "status socket: a member of the group reads the pool" \
  test "$(json "$work/g.json" "(j['pool']['manager_pid'], j['pool']['workers'])")" = "($gm, 2)"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$cli" status "$ssock" >/dev/null 2>"$work/g2.err"; rc=$?
check "status socket: refused to one outside the group, exit 1, one line" \
  sh -c "[ $rc -eq 1 ] && [ \$(wc -l <'$work/g2.err') -eq 1 ] && grep -q 'permission denied' '$work/g2.err'"
check "status socket: the memfd is not readable by others through /proc" sh -c \
  "! setpriv --reuid=nobody --regid=nogroup --groups=$gid '$cli' status $gm >/dev/null 2>&1"
check "status socket: not taken for a listener (the backlog is the FastCGI socket's)" \
  test "$(json "$work/g.json" "j['pool']['listen_backlog']")" -eq 1024
"$cli" -s "$work/g2.sock" -F 1 --status-socket "$ssock" -- "$app" 2>"$work/g2.log"; rc=$?
check "status socket: a second manager refuses a live one's path (exit $rc)" test $rc -eq 1
check "status socket: ...saying it is in use" grep -q "status_socket: $ssock: in use" "$work/g2.log"
REQUEST_METHOD=GET REQUEST_URI="/slow?ms=1500" SCRIPT_FILENAME=/s cgi-fcgi -bind -connect "$work/g.sock" >/dev/null 2>&1 &
slow=$!
check "status socket: a worker busy" until_json "$ssock" "j['pool']['busy'] == 1"
kill -TERM $gm
check "status socket: read by the group while the pool stops" sh -c \
  "for _ in \$(seq 100); do setpriv --reuid=nobody --regid=nogroup --groups=$gid '$cli' status --json '$ssock' 2>/dev/null |
     grep -q '\"phase\":\"stopping\"' && exit 0; sleep 0.02; done; exit 1"
check "status socket: the stopping manager does not spin (CPU under 20%)" sh -c \
  "t0=\$(awk '{print \$14 + \$15}' /proc/$gm/stat); sleep 0.5; t1=\$(awk '{print \$14 + \$15}' /proc/$gm/stat);
   [ \$((t1 - t0)) -lt \$(( \$(getconf CLK_TCK) / 10 )) ]"
wait $slow
gone $gm
check "status socket: removed at the stop" test ! -e "$ssock"
groupdel fcgipm-status-test 2>/dev/null

echo "status: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
