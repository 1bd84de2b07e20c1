#!/bin/sh
# Request deadlines, the slow log and recycling against real traffic: fcgi-pm running
# status_app (a libfcgi worker on this library), nginx in front, curl as the clients.
# Checks that bad combinations are refused (exit 2, one line); that a request past
# --request-timeout has its worker stopped, logged with its pid, URI and run time,
# and replaced, nginx answering an error for that request alone while every other
# one is answered; that a worker deaf to TERM is KILLed --request-timeout-grace
# later; that --request-slow logs and counts without killing; that deadlines hold
# through HUP and TERM; that --max-requests with --max-requests-jitter spreads the
# workers' limits and replaces each one with no request failed; and that --max-age
# and --max-rss (a worker that leaks on purpose) replace workers, the replacement
# ready before the old one leaves. Time bounds are generous: the figures are
# bench/run's.
# Usage: test_limits.sh FCGI_PM STATUS_APP
# With PM_POOL_FORKED=1, the pools are status_app's own, its workers forked rather than
# exec'd by the fcgi-pm program (pool_lib.sh's start_pool).
set -u
cli=$1 app=$2
here=$(cd "$(dirname "$0")" && pwd)
pool_test=limits
. "$here/pool_lib.sh"

# timed PATH OUT: the code and time of one request through nginx, into OUT
timed() { curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 30 "http://127.0.0.1:$port$1" >"$2"; }
code_of() { cut -d' ' -f1 "$1"; }
time_within() {  # file lo hi: its time (s) within [lo, hi]
  awk -v lo="$2" -v hi="$3" '{ exit !($2 >= lo && $2 <= hi) }' "$1" || { echo "  took $(cut -d' ' -f2 "$1") s"; return 1; }
}
# load SECONDS [PATH]: requests one after another, 4 at a time, for SECONDS; codes in load.txt
load() {
  end=$(($(date +%s) + $1)) loaders= path=${2:-/x}
  for k in 1 2 3 4; do
    (while [ "$(date +%s)" -lt $end ]; do get "$path&k=$k"; sleep 0.01; done) >>"$work/load.txt" &
    loaders="$loaders $!"
  done
  wait $loaders
}
all_200() { [ -s "$1" ] && ! grep -qv '^200' "$1" || { echo "  codes: $(sort "$1" | uniq -c | tr '\n' ' ')"; return 1; }; }

# -- 1. bad combinations
check "refused: --request-timeout-grace without --request-timeout" refused \
  "request-timeout-grace applies with --request-timeout only" --request-timeout-grace 2
check "refused: --max-requests-jitter without --max-requests" refused \
  "max-requests-jitter applies with --max-requests only" --max-requests-jitter 10
check "refused: --request-slow not below --request-timeout" refused \
  "request-slow (2 s) must be below --request-timeout (1 s)" --request-timeout 1 --request-slow 2
check "refused: a negative --max-age" refused "must not be negative" --max-age -5
check "refused: --max-rss not a number" refused "max-rss" --max-rss lots

# -- 2. a deadline: the victim alone fails, at its deadline; the slow log counts
start_pool dl -F 3 --request-timeout 1 --request-slow 0.4
check "deadline: 3 workers up" until_field $manager 5 "j['pool']['idle'] == 3"
timed "/slow?ms=5000&victim=1" "$work/victim.txt" &
v=$!
timed "/slow?ms=700" "$work/slow1.txt" &
s1=$!
timed "/slow?ms=700" "$work/slow2.txt" &
s2=$!
wait $v $s1 $s2
check "deadline: nginx answers the victim with an error (502)" test "$(code_of "$work/victim.txt")" = 502
check "deadline: the victim's error comes at its deadline (1 s)" time_within "$work/victim.txt" 0.9 1.5
check "deadline: the slow requests under it answered (200)" test "$(code_of "$work/slow1.txt")$(code_of "$work/slow2.txt")" = 200200
check "deadline: logged with pid, URI and run time" \
  grep -q 'server (pid [0-9]*) request past its deadline (1 s): GET /slow?ms=5000&victim=1 ran 1\(\.[0-9]*\)\{0,1\} s; TERM' "$log"
check "slow log: each request past 0.4 s logged, the victim's too" \
  test "$(grep -c 'slow request: GET /slow?ms=' "$log")" -eq 3
check "deadline: the worker replaced (3 again, 4 started)" until_field $manager 5 \
  "j['pool']['workers'] == 3 and j['pool']['idle'] == 3 and j['pool']['spawned'] == 4"
check "deadline: counted in the status (1 kill, 3 slow), not as a crash" \
  test "$(field $manager "(j['pool']['deadline_kills'], j['pool']['slow_requests'], j['pool']['crashes'])")" = "(1, 3, 0)"
check "deadline: the status text shows both" sh -c "'$cli' status $manager | grep -q '3 slow, 1 past their deadline'"
check "deadline: the OpenMetrics counters" sh -c \
  "'$cli' status --openmetrics $manager | grep -q '^fcgipm_deadline_kills_total 1' &&
   '$cli' status --openmetrics $manager | grep -q '^fcgipm_slow_requests_total 3'"

# a deadline during a HUP: the old worker finishing its request is held to it too
timed "/slow?ms=5000&hup=1" "$work/victim.txt" &
v=$!
sleep 0.3
kill -HUP $manager
wait $v
check "deadline through HUP: the old worker's request stopped at its deadline" test "$(code_of "$work/victim.txt")" = 502
check "deadline through HUP: at 1 s" time_within "$work/victim.txt" 0.9 1.5
check "deadline through HUP: 3 new workers after" until_field $manager 5 \
  "j['pool']['workers'] == 3 and j['pool']['idle'] == 3 and j['pool']['phase'] == 'running'"

# a deadline during TERM: the shutdown does not wait for die_timeout
timed "/slow?ms=8000&term=1" "$work/victim.txt" &
v=$!
sleep 0.3
t0=$(date +%s%N)
kill -TERM $manager
check "deadline through TERM: the manager gone soon after the deadline" gone $manager
t1=$(date +%s%N)
wait $v
check "deadline through TERM: within 2 s, not die_timeout's 60 ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -lt 2000
check "deadline through TERM: the victim's error (502)" test "$(code_of "$work/victim.txt")" = 502
sh "$deploy/nginx-front.sh" stop "$work/nginx-dl"

# -- 3. a worker deaf to TERM: KILL after the grace
start_pool deaf -F 2 --request-timeout 0.5 --request-timeout-grace 0.5
check "deaf: 2 workers up" until_field $manager 5 "j['pool']['idle'] == 2"
timed "/stuck?ms=10000" "$work/victim.txt"
check "deaf: the victim's error (502)" test "$(code_of "$work/victim.txt")" = 502
check "deaf: at the deadline plus the grace (1 s)" time_within "$work/victim.txt" 0.9 1.6
check "deaf: KILL logged" grep -q 'server (pid [0-9]*) still there 0.5 s after its TERM: KILL' "$log"
check "deaf: replaced" until_field $manager 5 "j['pool']['workers'] == 2 and j['pool']['idle'] == 2"
stop_pool

# -- 4. max_requests with jitter: spread limits, replacement first, nothing failed
start_pool mr -F 4 --max-requests 5 --max-requests-jitter 10
check "max_requests: 4 workers up" until_field $manager 5 "j['pool']['idle'] == 4"
: >"$work/load.txt"
load 6 "/slow?ms=100"  # each last request long enough for the manager's look
check "max_requests: every request answered (200) while workers are recycled" all_200 "$work/load.txt"
limits=$(grep -o 'safe exit after max_requests ([0-9]*)' "$log" | grep -o '[0-9]*' | sort -n | uniq)
check "max_requests: each worker's limit within 5..15 ($(echo $limits))" \
  sh -c "[ -n '$limits' ] && for l in $(echo $limits); do [ \$l -ge 5 ] && [ \$l -le 15 ] || exit 1; done"
check "max_requests: the limits spread (at least 3 different)" test "$(echo "$limits" | wc -l)" -ge 3
exits=$(grep -c 'safe exit after max_requests' "$log")
check "max_requests: each exit counted as a recycle ($exits)" until_field $manager 3 \
  "j['pool']['recycled'] == $exits and $exits >= 2"
# Each worker that left at its limit had its replacement started before it exited:
# the exit line of a worker comes after a "started" line it did not cause itself.
check "max_requests: every one replaced from its last request on (a start before each exit)" awk '
  /server \(pid [0-9]+\) started/ { started++ }
  /safe exit after max_requests/ { left++; if (started < 4 + left) bad++ }
  END { if (bad || !left) print "  " bad + 0 " of " left + 0 " left first"; exit bad || !left }' "$log"
check "max_requests: 4 workers after" until_field $manager 5 "j['pool']['workers'] == 4 and j['pool']['stopping'] == 0"
stop_pool

# -- 5. max_age: each worker replaced in turn, capacity never below the pool's size
start_pool age -F 2 --max-age 2
check "max_age: 2 workers up" until_field $manager 5 "j['pool']['idle'] == 2"
: >"$work/able.txt"
: >"$work/load.txt"
(for _ in $(seq 200); do field $manager "j['pool']['workers'] - j['pool']['stopping'] - j['pool']['starting']"; sleep 0.02; done >"$work/able.txt") &
watcher=$!
load 4 "/x?"
wait $watcher
check "max_age: every request answered (200)" all_200 "$work/load.txt"
check "max_age: recycled at its age, logged" grep -q 'to be recycled: max_age (2 s) reached; its replacement first' "$log"
# The replacement's own "initialized" comes before the old one's "recycled": ready first.
check "max_age: each recycle after its replacement was ready" awk '
  /server \(pid [0-9]+\): initialized/ { up++ }
  /recycled \(max_age\): its replacement is ready/ { n++; if (up < 2 + n) bad++ }
  END { if (bad || n < 2) print "  " bad + 0 " of " n + 0 " before"; exit bad || n < 2 }' "$log"
check "max_age: never fewer than 2 workers able to serve ($(sort -n "$work/able.txt" | head -1))" \
  test "$(sort -n "$work/able.txt" | head -1)" -ge 2
stop_pool

# -- 5b. max_age on a dynamic pool: the policy replaces the marked workers, the pool
# stays within max_workers and settles
start_pool agedyn --pool dynamic -F 2 --min-idle 1 --max-idle 2 --max-workers 4 --idle-timeout 10 --max-age 1.5
t_start=$(date +%s)
check "max_age, dynamic: 2 workers up" until_field $manager 5 "j['pool']['workers'] == 2"
: >"$work/sizes.txt"
(for _ in $(seq 200); do field $manager "j['pool']['workers']"; sleep 0.02; done >"$work/sizes.txt") &
watcher=$!
: >"$work/load.txt"
load 4 "/x?"
wait $watcher
check "max_age, dynamic: every request answered (200)" all_200 "$work/load.txt"
check "max_age, dynamic: never above max_workers ($(sort -n "$work/sizes.txt" | tail -1))" \
  test "$(sort -n "$work/sizes.txt" | tail -1)" -le 4
check "max_age, dynamic: workers recycled" grep -q 'to be recycled: max_age (1.5 s) reached' "$log"
spawned=$(field $manager "j['pool']['spawned']") elapsed=$(($(date +%s) - t_start + 1))
# At most 4 workers, each living 1.5 s: 4 x (elapsed / 1.5 + 1) starts at most.
check "max_age, dynamic: no churn ($spawned started in $elapsed s)" test "$spawned" -le $((4 * (elapsed * 2 / 3 + 1)))
stop_pool

# -- 6. max_rss: a worker that leaks is replaced after its request
start_pool rss -F 2 --max-rss 40000
check "max_rss: 2 workers up" until_field $manager 5 "j['pool']['idle'] == 2"
leaker=$(curl -sS "http://127.0.0.1:$port/leak?kb=60000" | awk '{ print $2 }')
check "max_rss: the leak answered" test -n "$leaker"
check "max_rss: the leaking worker marked, with its memory" wait_for 1 \
  "server (pid $leaker) to be recycled: resident [0-9]* KB, over max_rss (40000 KB)" "$log"
check "max_rss: and recycled once its replacement was ready" wait_for 1 "server (pid $leaker) recycled (max_rss)" "$log"
check "max_rss: gone" gone $leaker
check "max_rss: 2 workers, 1 recycled" until_field $manager 5 \
  "j['pool']['workers'] == 2 and j['pool']['recycled'] == 1 and $leaker not in [w['pid'] for w in j['workers']]"
stop_pool

# -- 7. recycling in a crash loop: a replacement that cannot start never takes the
# old worker's place; the old one serves on
STATUS_APP_FAIL_IF=$work/fail start_pool loop -F 2 --max-age 1 --backoff-min 0.2 --backoff-max 0.5
check "crash loop: 2 workers up" until_field $manager 5 "j['pool']['idle'] == 2"
pids=$(children $manager | sort | tr '\n' ' ')
touch "$work/fail"  # from now on every new worker exits 1 at once
sleep 2.5
check "crash loop: the replacements crashed" test "$(field $manager "j['pool']['crashes'] >= 2")" = True
check "crash loop: the old workers still there" sh -c "for p in $pids; do kill -0 \$p || exit 1; done"
check "crash loop: and answering (200)" test "$(get /x)" = 200
check "crash loop: none recycled" test "$(field $manager "j['pool']['recycled']")" = 0
rm -f "$work/fail"
check "crash loop over: both replaced at last" until_field $manager 8 "j['pool']['recycled'] >= 2"
stop_pool

echo "limits: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
