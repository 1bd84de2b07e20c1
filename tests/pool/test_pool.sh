#!/bin/sh
# Adaptive pools against real traffic: fcgi-pm running status_app (a libfcgi worker on
# this library), nginx in front, curl as the clients. Checks that bad combinations of
# the pool's flags are refused (exit 2, one line), that an ondemand pool starts with
# no worker, serves its first request and goes back to none after its idle timeout,
# that a burst of slow requests gets a worker each at once (dynamic and ondemand) and
# that the pool shrinks back to its resting size after, never retiring a busy worker,
# that a dynamic pool keeps min_idle idle, and HUP, TERM and a crash on an adaptive
# pool. Time bounds are generous: the figures are bench/run's.
# Then resizing a running static pool: TTIN, TTOU, fcgi-pm resize, shown in the
# status and in systemd's STATUS (a stand-in NOTIFY_SOCKET), a busy worker left to
# finish, under HUP.
# Usage: test_pool.sh FCGI_PM STATUS_APP NOTIFY_SINK
# With PM_POOL_FORKED=1, the pools are status_app's own, its workers forked rather than
# exec'd by the fcgi-pm program (pool_lib.sh's start_pool).
set -u
cli=$1 app=$2 sink=$3
here=$(cd "$(dirname "$0")" && pwd)
pool_test=pool
. "$here/pool_lib.sh"

# -- 1. bad combinations: exit 2, one line naming the flags, nothing started
check "refused: dynamic without --max-workers" refused "needs --max-workers" --pool dynamic
check "refused: --min-idle above --max-idle" refused "min-idle (4) must not exceed --max-idle (2)" \
  --pool dynamic --max-workers 8 --min-idle 4 --max-idle 2
check "refused: -F above --max-workers" refused "F (9) must not exceed --max-workers (8)" \
  --pool dynamic --max-workers 8 -F 9
check "refused: --min-idle on a static pool" refused "min-idle applies to --pool dynamic only" --min-idle 2
check "refused: --max-workers on a static pool" refused "max-workers applies to --pool dynamic or ondemand" \
  --max-workers 4
check "refused: -F on an ondemand pool" refused "F applies to --pool static or dynamic only" \
  --pool ondemand --max-workers 4 -F 2
check "refused: --max-idle on an ondemand pool" refused "max-idle applies to --pool dynamic only" \
  --pool ondemand --max-workers 4 --max-idle 2
check "refused: an unknown mode" refused "must be one of static|dynamic|ondemand" --pool elastic
check "refused: a negative --idle-timeout" refused "must not be negative" \
  --pool ondemand --max-workers 4 --idle-timeout -1
check "refused: --spawn-rate 0" refused "spawn_rate" --pool ondemand --max-workers 4 --spawn-rate 0

# -- 2. ondemand: none at the start, one for the first request, none again after
start_pool od --pool ondemand --max-workers 64 --idle-timeout 1
check "ondemand: no worker at the start" until_field $manager 5 "j['pool']['workers'] == 0 and j['pool']['phase'] == 'running'"
check "ondemand: the first request answered (200)" test "$(get /first)" = 200
check "ondemand: one worker for it" test "$(field $manager "j['pool']['workers']")" = 1
check "ondemand: back to none after the idle timeout" until_field $manager 3 "j['pool']['workers'] == 0"
check "ondemand: the worker retired (logged with its idle time)" grep -q 'server (pid [0-9]*) retired: idle 1' "$log"

# -- 3. a burst of 64 slow requests from none: a worker each, all answered, then none
burst 64 2500
check "ondemand burst: 64 answered 200" answered 64
check "ondemand burst: none waited for another's worker" none_waited 2500
check "ondemand burst: a worker each (64 started in all, the first one's besides)" \
  test "$(field $manager "j['pool']['spawned']")" -eq 65
check "ondemand burst: back to none" until_field $manager 4 "j['pool']['workers'] == 0"
check "ondemand burst: no worker crashed" test "$(field $manager "j['pool']['crashes']")" = 0

# -- 4. a busy worker is never retired: a long request outlives the idle timeout of
# the others
burst 4 300 &
b=$!
get "/slow?ms=3000" >"$work/long.txt" &
long=$!
wait $b
check "ondemand: the others retire while one is busy" until_field $manager 3 \
  "j['pool']['workers'] == 1 and j['pool']['busy'] == 1"
wait $long
check "ondemand: the long request answered (200)" test "$(cat "$work/long.txt")" = 200
check "ondemand: then it retires too" until_field $manager 3 "j['pool']['workers'] == 0"
stop_pool

# -- 5. dynamic: start 2, keep 2 idle; grow for a burst, shrink to max idle after
start_pool dyn --pool dynamic -F 2 --min-idle 2 --max-idle 3 --max-workers 80 --idle-timeout 1
check "dynamic: 2 workers at the start, both idle" until_field $manager 5 \
  "j['pool']['workers'] == 2 and j['pool']['idle'] == 2 and j['pool']['target'] == 2"
"$cli" resize 2 $manager >/dev/null 2>"$work/err"; rc=$?
check "resize to a dynamic pool's own size: refused all the same (rc $rc)" \
  sh -c "test $rc -eq 1 && grep -q 'pool dynamic sizes itself' '$work/err'"
get "/slow?ms=1500" >/dev/null &
one=$!
check "dynamic: one busy, so one more to keep 2 idle" until_field $manager 3 \
  "j['pool']['workers'] == 3 and j['pool']['busy'] == 1 and j['pool']['idle'] == 2"
# An idle worker accepted the request before the manager's look: the connection's
# event never came, and the worker's going busy told it (not the sample a second later).
lag=$(field $manager "round(1000 * (max(w['start_time'] for w in j['workers']) - [w for w in j['workers'] if w['busy']][0]['request_start_time']))")
check "dynamic: the third worker forked within $((100 * time_scale)) ms of the request's start ($lag ms)" \
  test "$lag" -lt $((100 * time_scale))
wait $one
burst 64 2500
check "dynamic burst: 64 answered 200" answered 64
check "dynamic burst: none waited for another's worker" none_waited 2500
check "dynamic burst: back to max idle (3) after" until_field $manager 4 \
  "j['pool']['workers'] == 3 and j['pool']['idle'] == 3"

# -- 6. HUP, a crash and TERM on an adaptive pool
before=$(children $manager | tr '\n' ' ')
kill -HUP $manager
check "dynamic HUP: 3 new workers, none of the old" until_field $manager 5 \
  "j['pool']['workers'] == 3 and j['pool']['phase'] == 'running' and not set(w['pid'] for w in j['workers']) & set(map(int, '$before'.split()))"
check "dynamic HUP: still serving (200)" test "$(get /after-hup)" = 200
exits=$(field $manager "j['pool']['exits']")
get /crash >/dev/null 2>&1
check "dynamic crash: reaped, and min idle (2) still kept" until_field $manager 5 \
  "j['pool']['exits'] == $exits + 1 and j['pool']['idle'] >= 2"
burst 8 1000 &
b=$!
check "dynamic TERM: 8 in flight" until_field $manager 5 "j['pool']['busy'] == 8"
workers=$(children $manager)
kill -TERM $manager
wait $b
check "dynamic TERM: every request in flight answered (200)" answered 8
check "dynamic TERM: the manager exits" gone $manager
check "dynamic TERM: no worker left behind" all_gone $workers
sh "$deploy/nginx-front.sh" stop "$work/nginx-dyn"

# -- 7. TERM with a request in flight on a pool at max_workers, and on one that the
# traffic keeps settling: the manager waits without spinning (its listening socket,
# shut down, is out of its epoll set)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
for flags in "--max-workers 1" "--max-workers 8"; do
  start_pool term --pool ondemand $flags --die-timeout 10
  get "/slow?ms=2500" >"$work/term.txt" &
  r=$!
  until_field $manager 5 "j['pool']['busy'] == 1" >/dev/null
  kill -TERM $manager
  sleep 0.3
  t0=$(cpu_ticks $manager)
  sleep 1.5
  t1=$(cpu_ticks $manager)
  check "TERM ($flags): the manager idle while a request finishes ($((t1 - t0)) ticks in 1.5 s)" \
    test $((t1 - t0)) -le 15
  wait $r
  check "TERM ($flags): the request answered (200)" test "$(cat "$work/term.txt")" = 200
  check "TERM ($flags): the manager exits" gone $manager
  sh "$deploy/nginx-front.sh" stop "$work/nginx-term"
done

# -- 8. idle_timeout 0: idle workers go at once, and the manager does not spin while
# one is busy
start_pool zero --pool ondemand --max-workers 8 --idle-timeout 0
get "/slow?ms=2000" >/dev/null &
r=$!
until_field $manager 5 "j['pool']['busy'] == 1" >/dev/null
t0=$(cpu_ticks $manager); sleep 1; t1=$(cpu_ticks $manager)
check "idle_timeout 0: the manager idle beside a busy worker ($((t1 - t0)) ticks in 1 s)" test $((t1 - t0)) -le 10
wait $r
check "idle_timeout 0: back to none once it is done" until_field $manager 3 "j['pool']['workers'] == 0"
stop_pool

# -- 9. resizing a static pool at run time, with systemd's notifications
notify=$work/notify.sock events=$work/notify.txt
"$sink" "$notify" >"$events" &
started="$started $!"
for _ in $(seq 100); do [ -S "$notify" ] && break; sleep 0.01; done
NOTIFY_SOCKET=$notify start_pool rz -F 2
check "resize: 2 workers" until_field $manager 5 "j['pool']['workers'] == 2 and j['pool']['idle'] == 2"
kill -TTIN $manager
check "TTIN: 3 workers, target 3" until_field $manager 5 \
  "j['pool']['target'] == 3 and j['pool']['workers'] == 3 and j['pool']['idle'] == 3"
check "TTIN: logged" grep -q 'TTIN: pool size 2 -> 3' "$log"
check "TTIN: systemd's STATUS says 3" wait_for 1 '^STATUS=3 of 3 workers running' "$events"
get "/slow?ms=1500" >"$work/long.txt" &
long=$!
check "resize: one busy" until_field $manager 3 "j['pool']['busy'] == 1"
busy_pid=$(field $manager "[w['pid'] for w in j['workers'] if w['busy']][0]")
kill -TTOU $manager
sleep 0.2
kill -TTOU $manager
check "TTOU twice: 1 worker left, the busy one ($busy_pid)" until_field $manager 5 \
  "j['pool']['target'] == 1 and [w['pid'] for w in j['workers'] if w['state'] != 'stopping'] == [$busy_pid]"
wait $long
check "TTOU: the busy worker's request answered (200)" test "$(cat "$work/long.txt")" = 200
check "TTOU: back to 1 worker" until_field $manager 5 "j['pool']['workers'] == 1 and j['pool']['stopping'] == 0"
check "fcgi-pm resize 6: exit 0, said" sh -c "'$cli' resize 6 $manager | grep -q 'pool resized: 1 -> 6 workers'"
check "resize 6: 6 workers idle" until_field $manager 5 "j['pool']['workers'] == 6 and j['pool']['idle'] == 6"
check "resize 6: systemd's STATUS says 6" wait_for 1 '^STATUS=6 of 6 workers running' "$events"
check "resize 4: fewer, exit 0" sh -c "'$cli' resize 4 $manager >/dev/null"
check "resize 4: 4 workers" until_field $manager 5 "j['pool']['workers'] == 4 and j['pool']['stopping'] == 0"
before=$(children $manager | tr '\n' ' ')
kill -HUP $manager
check "resize then HUP: 4 new workers" until_field $manager 5 \
  "j['pool']['workers'] == 4 and j['pool']['idle'] == 4 and j['pool']['phase'] == 'running' and
   not set(w['pid'] for w in j['workers']) & set(int(p) for p in '$before'.split())"
"$cli" resize 65 $manager >/dev/null 2>"$work/err"
check "resize past the scoreboard's slots: exit 1, the log says why" \
  sh -c "test $? -eq 1 && grep -q 'resize: size 65 refused: this pool has 1 to 64 workers' '$log'"
"$cli" resize 0 $manager 2>"$work/err"
check "resize 0: exit 2, one line" sh -c "test $? -eq 2 && test \$(wc -l <'$work/err') -eq 1"
check "resize 0: nothing changed" test "$(field $manager "j['pool']['target']")" = 4
stop_pool
start_pool od2 --pool ondemand --max-workers 8
"$cli" resize 3 $manager >/dev/null 2>"$work/err"; rc=$?
check "resize on an ondemand pool: exit 1, one line naming the mode (rc $rc)" \
  sh -c "test $rc -eq 1 && test \$(wc -l <'$work/err') -eq 1 && grep -q 'pool ondemand sizes itself' '$work/err'"
check "the status says ondemand" test "$(field $manager "j['pool']['mode']")" = ondemand
kill -TTIN $manager
check "TTIN on an ondemand pool: ignored, logged" \
  wait_for 1 'pool ondemand sizes itself (max_workers 8); ignored' "$log"
stop_pool

# -- 10. a crash loop on an ondemand pool: the backoff holds, pool-wide (each fork may
# take a fresh slot), though a connection keeps waiting
STATUS_APP_FAIL=1 start_pool loop --pool ondemand --max-workers 64 --backoff-min 0.1 --backoff-max 1
curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$port/waits" &
c=$!
sleep 2.5
spawned=$(field $manager "j['pool']['spawned']")
check "crash loop: forks paced by the backoff ($spawned in 2.5 s)" test "${spawned:-999}" -le 12
check "crash loop: every one counted a crash" test "$(field $manager "j['pool']['crashes'] >= j['pool']['spawned'] - 1")" = True
wait $c
stop_pool

echo "pool: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
