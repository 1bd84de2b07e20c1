#!/bin/sh
# Adaptive pools side by side: tests/status_app (a libfcgi worker on the library) as
# its own manager, forking its workers ("fcgi-pm-lib": the library's way, and
# php-fpm's), and run by the fcgi-pm program, which execs each worker ("fcgi-pm"),
# against Debian's php-fpm (php8.2-fpm) running apps/slow.php, all behind the same
# nginx (examples/deploy/nginx-front.sh, started once, one server block whose
# requests all go to one unix socket, which each manager listens on in turn), in the
# same run, alternating (which goes first rotates each round).
#
#     sh bench/pool.sh [--quick] [BUILD_DIR]     BUILD_DIR: default build/, which must
#                                                hold src/fcgi-pm and tests/status_app
#     sh bench/pool.sh --table RAW               the markdown section, from the raw lines
#
# Installs php8.2-fpm (.ci/install-deps) if it is missing. php-fpm runs from a scratch
# directory with a php-fpm.conf of its own (daemonize = no, pid, error log and socket
# in the directory, listen.mode 0666, user and group root, hence -R) and Debian's
# php.ini. Each manager's pool size is the count of its children, read from
# /proc/PID/task/PID/children every millisecond (asyncio's 1 ms sleep: 1-2 ms apart) by
# the same poller for both. Measures (full: several rounds, medians; --quick: each once):
#  1. burst from a dynamic pool: 2 workers at rest (fcgi-pm --pool dynamic -F 2
#     --min-idle 2 --max-idle 2 --max-workers 80 --idle-timeout 10; php-fpm pm =
#     dynamic, start_servers, min_spare_servers and max_spare_servers 2, max_children
#     80), then 64 concurrent requests of 1 s (pool_burst.py's, each given up if not
#     answered within 15 s): the time from the burst's start until the pool has 64
#     workers (or ">5000": not within 5 s), the most workers seen until the last
#     answer, each request's wait for a worker (its time less 1 s; median and max;
#     ">14000" for one given up), and the requests failed (answered, not 200) and
#     unanswered;
#  2. the same burst on an empty ondemand pool (fcgi-pm --pool ondemand --max-workers
#     80 --idle-timeout 10; php-fpm pm = ondemand, max_children 80,
#     process_idle_timeout 10s). php-fpm forks for an ondemand pool only when its
#     listening socket's edge-triggered event fires and no child is idle (a child
#     just forked counts as idle): a burst that arrives at once gets one or a few
#     workers (PHP bug #69724), hence the 15 s cap, below nginx's 60 s timeout;
#  3. ondemand: the first request to a pool of none against a warm one
#     (pool_burst.py first), idle timeout 1 s, the pool back at none before each;
#     and the same for apps/first_floor.c, a process that only forks a bare libfcgi
#     child for a connection (built here with cc): the floor of a first request here;
#  4. shrink: after burst 1 (fcgi-pm again with --idle-timeout 1; php-fpm's dynamic
#     pool has no idle timeout, it stops one idle worker beyond max_spare_servers a
#     second), the time from the last answer until the pool is back at its resting
#     size (2 for both; ">CAP" if not within the cap: 90 s, 30 s when quick; then how
#     many were left); and, raw figure only, until the first worker went (for fcgi-pm
#     that hangs on when the burst's spare workers were forked, 1 s before);
#  5. the floor: one small process forking 64 children that pause() (apps/fork_floor.c,
#     built here with cc): what this machine allows any manager; and the same with
#     children that exec /bin/sleep, whose execs take CPU from the forking parent, as
#     the workers of an exec'd pool (the fcgi-pm program's) do;
#  6. request deadline (only if `fcgi-pm --help` lists --request-timeout; "not built"
#     otherwise): a request that sleeps past a 1 s limit (fcgi-pm --request-timeout 1;
#     php-fpm request_terminate_timeout = 1s), the time from the limit until nginx's
#     answer (a 502 when the worker was killed), and its status code;
#  7. max_requests recycle (only if `fcgi-pm --help` lists --max-requests): one worker
#     (fcgi-pm -F 1 --max-requests 10; php-fpm pm = static, max_children 1,
#     max_requests 10), one request at a time through nginx, one every 5 ms, until the
#     worker was replaced 3 times (11 when full; at most 10 s, 30 s): for each worker
#     seen from its first request to its last, the requests it served and the lag
#     from its 10th answer to its successor's first (each answer names the worker's
#     pid), and what a new worker's first request takes beyond a warm one; and the
#     same for apps/first_floor.c --recycle, a process that does only that: the floor.
# POOL_ROWS="dynamic ondemand first shrink floor deadline recycle" (the default: all)
# runs only the rows named; with POOL_TRACE=DIR each burst's pool size at each change
# (ms from the burst's start, workers) is kept in DIR/<n>-<row>-<system>.txt.
#
# Prints bench/run's raw figures on stdout, "pool - MEASURE SYSTEM MEDIAN MIN MAX R"
# (SYSTEM fcgi-pm-lib, fcgi-pm, php-fpm or floor; ms unless the measure says otherwise; a figure
# ">X" was not reached within X ms, and sorts above every number), then the markdown
# table of the two side by side (what --table prints) on stderr, with the progress.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
py=/usr/bin/python3

# ---- the table: fcgi-pm beside php-fpm, ratio php-fpm ÷ fcgi-pm (above 1: fcgi-pm
# is faster or grows further)
table() {
  echo "## Adaptive pools: fcgi-pm beside php-fpm"
  echo
  echo "tests/status_app (a libfcgi worker on the library) run two ways: as its own"
  echo "manager, its workers forked from it (the library's way, and php-fpm's), and by the"
  echo "fcgi-pm program, its workers exec'd; against Debian's php-fpm running"
  echo "bench/apps/slow.php; behind the same nginx, in the same run (bench/pool.sh). The"
  echo "pool's size is the manager's children in /proc, polled every 1-2 ms. A burst is 64"
  echo "concurrent requests that each sleep 1 s; a request's wait is its time less that"
  echo "second, and a request still unanswered after 15 s is given up. Medians; R: the"
  echo "samples behind each (rounds; for max_requests, the workers seen), per system where"
  echo "they differ. Ratios: php-fpm's figure ÷ fcgi-pm's (above 1: fcgi-pm is faster);"
  echo "\"> N×\" where php-fpm never got there within the cap."
  echo
  echo "| measure | fcgi-pm, library (forked workers) | fcgi-pm program (exec'd workers) | php-fpm | php-fpm ÷ library | php-fpm ÷ program | R |"
  echo "|---|---|---|---|---|---|---|"
  awk 'BEGIN { S[1] = "fcgi-pm-lib"; S[2] = "fcgi-pm"; S[3] = "php-fpm" }
    $1 == "pool" && $2 == "-" {
         if ($4 == "not-built") { nb[$3] = 1; next }
         v[$3, $4] = $5; most[$3, $4] = $7; r[$3, $4] = $8 }
    function inf(x) { return substr(x, 1, 1) == ">" }
    function cap(x) { return substr(x, 2) + 0 }
    # a figure: unit "" ms, "s" ms shown in s, "n" a count; never: how ">X" reads
    function num(x, unit, never) {
      if (x == "") return "–"
      if (inf(x)) return never != "" ? sprintf("%s %g s", never, cap(x) / 1000) : sprintf("> %g s", cap(x) / 1000)
      if (unit == "s") return sprintf("%.2f s", x / 1000)
      if (unit == "n") return sprintf("%d", x)
      return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : sprintf("%.2f", x)
    }
    function rounds(m,    k, x, out, same) {  # R: one figure, or each system'"'"'s where they differ
      same = 1
      for (k = 1; k <= 3; k++) {
        x = ((m, S[k]) in r) ? r[m, S[k]] : "–"
        out = k == 1 ? x : out " / " x
        if (k > 1 && x != "–" && x != r[m, S[1]]) same = 0
      }
      return same ? r[m, S[1]] : out
    }
    function ratio(p, f) {
      if (p == "" || f == "" || inf(f)) return "–"
      if (inf(p)) return f + 0 > 0 ? sprintf("> %.0f×", cap(p) / f) : "–"
      if (f + 0 == 0) return "–"
      return p / f >= 10 ? sprintf("%.0f×", p / f) : sprintf("%.2f×", p / f)
    }
    # row(label, measure, unit, with_ratio, never, also): also, the measure whose
    # figure goes in brackets beside a figure ">X" (the most workers; those left)
    function row(label, m, unit, with_ratio, never, also,    k, x, xs, line, p) {
      if (!((m, S[1]) in v) && !((m, S[2]) in v) && !((m, S[3]) in v)) return
      line = "| " label
      for (k = 1; k <= 3; k++) {
        x = ((m, S[k]) in v) ? v[m, S[k]] : ""
        xs = num(x, unit, never)
        if (also != "" && inf(x)) xs = xs " (" num(v[also, S[k]], "n") ")"
        line = line " | " xs
      }
      p = v[m, "php-fpm"]
      print line " | " (with_ratio ? ratio(p, v[m, S[1]]) : "–") " | " (with_ratio ? ratio(p, v[m, S[2]]) : "–") " | " rounds(m) " |"
    }
    function pair(label, m1, m2,    k, line) {  # two counts, the most in a round, as "a / b"
      if (!((m1, S[1]) in v) && !((m1, S[2]) in v)) return
      line = "| " label
      for (k = 1; k <= 3; k++)
        line = line " | " num(most[m1, S[k]], "n") " / " num(most[m2, S[k]], "n")
      print line " | – | – | " rounds(m1) " |"
    }
    END {
      for (i = 1; i <= 2; i++) {
        p = i == 1 ? "dyn" : "od"; what = i == 1 ? "dynamic pool, 2 at rest" : "ondemand pool, none at rest"
        row("burst, " what ": 64 workers after (ms; never: the most seen)", p "_to64", "", 1, "never in", p "_max_workers")
        row("burst, " what ": the most workers seen", p "_max_workers", "n", 0)
        row("burst, " what ": wait for a worker, median (ms)", p "_wait_median", "", 1)
        row("burst, " what ": wait for a worker, max (ms)", p "_wait_max", "", 1)
        pair("burst, " what ": requests failed / unanswered in 15 s, of 64 (the most in a burst)", p "_failed", p "_unanswered")
      }
      row("ondemand: first request to a pool of none (ms)", "od_first", "", 1)
      row("ondemand: a warm request (ms)", "od_warm", "", 1)
      if (("od_first", "floor") in v)
        printf "| floor: one process that forks a bare libfcgi child for the first connection (apps/first_floor.c): first request / a warm one (ms) | %s / %s | – | – | – | – | %s |\n",
          num(v["od_first", "floor"]), num(v["od_warm", "floor"]), r["od_first", "floor"]
      row("shrink after the dynamic burst: last answer → back at 2 (at the cap: the workers left)", "shrink_rest", "s", 1, "", "shrink_left")
      if (("fork64", "floor") in v)
        printf "| floor: one process forks 64 children that pause() (ms; no manager, no exec) | %s | – | – | – | – | %s |\n",
          num(v["fork64", "floor"]), r["fork64", "floor"]
      if (("fork64_exec", "floor") in v)
        printf "| floor: the same, each child exec'"'"'ing /bin/sleep meanwhile, as an exec'"'"'d pool'"'"'s do (ms) | – | %s | – | – | – | %s |\n",
          num(v["fork64_exec", "floor"]), r["fork64_exec", "floor"]
      if ("deadline" in nb) print "| request deadline: 1 s limit → nginx answer (ms) | not built | not built | – | – | – | – |"
      row("request deadline: 1 s limit → nginx answer (ms)", "deadline_over", "", 1)
      row("request deadline: the status code nginx answered", "deadline_code", "n", 0)
      if ("recycle" in nb) print "| max_requests 10: its 10th answer → its successor'"'"'s first (ms) | not built | not built | – | – | – | – |"
      row("max_requests 10, one worker, a request every 5 ms: its 10th answer → its successor'"'"'s first (ms)", "recycle_lag", "", 1)
      row("max_requests 10: requests a worker served", "recycle_served", "n", 0)
      row("max_requests 10: first request of a new worker, beyond a warm one (ms)", "recycle_extra", "", 1)
      row("max_requests 10: a warm request (ms)", "recycle_warm", "", 1)
      if (("recycle_extra", "floor") in v)
        printf "| floor: the same recycle in a process that only forks the replacement as the last request begins (apps/first_floor.c --recycle): a new process'"'"'s first request beyond a warm one / a warm one (ms) | %s / %s | – | – | – | – | %s |\n",
          num(v["recycle_extra", "floor"]), num(v["recycle_warm", "floor"]), r["recycle_extra", "floor"]
    }' "$1"
}
if [ "${1:-}" = --table ]; then table "$2"; exit 0; fi

quick=0 build=$root/build
for a in "$@"; do
  case $a in --quick) quick=1 ;; *) build=$a ;; esac
done
cli=$build/src/fcgi-pm app=$build/tests/status_app fpm=/usr/sbin/php-fpm8.2
[ -x "$cli" ] && [ -x "$app" ] || { echo "pool.sh: no $cli or $app (build with tests)" >&2; exit 2; }
[ -x "$fpm" ] || sh .ci/install-deps php8.2-fpm
command -v nginx >/dev/null || sh .ci/install-deps
if [ $quick = 1 ]; then
  reps=1 shrink_reps=1 first_reps=1 floor_reps=1 shrink_cap=30 recycles=2 recycle_cap=10
else
  reps=5 shrink_reps=3 first_reps=7 floor_reps=7 shrink_cap=90 recycles=10 recycle_cap=30
fi
rows=${POOL_ROWS:-dynamic ondemand first shrink floor deadline recycle}
systems="fcgi-pm-lib fcgi-pm php-fpm"
burst_n=64 burst_ms=1000 grow_cap=5 answer_cap=15 rest=2 max_req=10
work=$(mktemp -d /tmp/fcgi-pm-pool-bench-XXXXXX)
chmod 755 "$work"
sock=$work/pool.sock samples=$work/samples.txt raw=$work/raw.txt
: >"$samples"
mgr='' mgr_kids=''
# On any way out: the manager and every worker it had, nginx, the scratch directory.
trap 'set +e
      [ -z "$mgr" ] || { kill -KILL $mgr $(cat /proc/$mgr/task/$mgr/children 2>/dev/null) $mgr_kids; wait $mgr; } 2>/dev/null
      sh examples/deploy/nginx-front.sh stop "$work/nginx"
      rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# ---- the poller and the clients, in Python (one process per measure)
cat >"$work/watch.py" <<'PY'
"""pool.sh's instrument. The pool's size is the count of the manager's children,
read from /proc every millisecond in the same asyncio loop as the clients.
  watch.py burst PID PORT N MS GROW_CAP_S REST SHRINK_CAP_S ANSWER_CAP_S
     N requests of MS ms at once (pool_burst.get, each given up after ANSWER_CAP_S);
     prints "TO_FULL MOST MEDIAN_WAIT MAX_WAIT FAILED UNANSWERED SHRINK_FIRST
     SHRINK_REST LEFT" (ms; ">X": not within X ms; SHRINK_CAP_S 0: no shrink)
  watch.py seq PORT PACE_MS CHANGES CAP_S  one request at a time, one every PACE_MS,
     until the answers have named CHANGES new pids (and 20 more requests), or CAP_S
     passed; prints "START_MS MS PID" for each (PID "-": not a 200)
  watch.py get PORT PATH  one request; prints "MS STATUS"
"""
import asyncio, os, socket, sys, time

sys.path.insert(0, os.environ["POOL_BENCH_DIR"])
import pool_burst  # noqa: E402


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return len(f.read().split())
    except OSError:
        return -1


async def burst(pid, port, n, ms, grow_cap, rest, shrink_cap, answer_cap):
    seen = []  # (time, count) at each change
    done = asyncio.Event()
    t_last = [None]

    async def poll():
        last = None
        while not done.is_set():
            c, t = children(pid), time.monotonic()
            if c != last:
                seen.append((t, c))
                last = c
            if shrink_cap and t_last[0] is not None and (c <= rest or t - t_last[0] > shrink_cap):
                done.set()
            await asyncio.sleep(0.001)

    async def one(i):  # pool_burst's request; None: no answer within answer_cap
        try:
            return await asyncio.wait_for(pool_burst.get(port, f"/slow?ms={ms}&n={i}"), answer_cap)
        except asyncio.TimeoutError:
            return None

    poller = asyncio.create_task(poll())
    await asyncio.sleep(0.01)
    t0 = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    answered = [r for r in results if r is not None]
    t_last[0] = t0 + max((t for t, _ in answered), default=0)  # the last answer
    if not shrink_cap or len(answered) < n:  # no shrink after a burst left unanswered
        shrink_cap = 0
        done.set()
    await poller
    inf = float("inf")
    waits = sorted(inf if r is None else max(0.0, r[0] * 1000 - ms) for r in results)
    failed = sum(1 for r in answered if not r[1])
    unanswered = n - len(answered)
    cap_wait = f">{answer_cap * 1000 - ms:.0f}"
    w = lambda x: cap_wait if x == inf else f"{x:.1f}"
    mid = waits[(n - 1) // 2] if n % 2 else (waits[n // 2 - 1] + waits[n // 2]) / 2
    full = next((t for t, c in seen if c >= n), None)
    to_full = f"{(full - t0) * 1000:.1f}" if full is not None and full - t0 <= grow_cap else f">{grow_cap * 1000:.0f}"
    at_burst = [c for t, c in seen if t <= t0]
    most = max([c for t, c in seen if t0 <= t <= t_last[0]] + at_burst[-1:])
    first = rest_at = None
    if shrink_cap:
        peak = [c for t, c in seen if t <= t_last[0]][-1]
        first = next((t for t, c in seen if t > t_last[0] and c < peak), None)
        rest_at = next((t for t, c in seen if t > t_last[0] and c <= rest), None)
    cap = f">{shrink_cap * 1000:.0f}"
    fmt = lambda x: "-" if not shrink_cap else cap if x is None else f"{(x - t_last[0]) * 1000:.1f}"
    print(to_full, most, w(mid), w(waits[-1]), failed, unanswered, fmt(first), fmt(rest_at), seen[-1][1])
    trace = os.environ.get("POOL_TRACE_FILE")
    if trace:  # the pool's size at each change, ms from the burst's start
        with open(trace, "w") as f:
            f.write(f"# last answer at {(t_last[0] - t0) * 1000:.1f} ms\n")
            f.writelines(f"{(t - t0) * 1000:.1f} {c}\n" for t, c in seen)


def get(port, path):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    ms = (time.monotonic() - t0) * 1000
    status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "0"
    body = data.split(b"\r\n\r\n", 1)[-1].decode(errors="replace").split()
    return ms, status, body[1] if len(body) > 1 and body[0] == "pid" else "-"


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "burst":
        pid, port, n, ms = map(int, sys.argv[2:6])
        asyncio.run(burst(pid, port, n, ms, *map(float, sys.argv[6:7]), int(sys.argv[7]), *map(float, sys.argv[8:10])))
    elif what == "seq":  # one request every PACE ms until CHANGES new pids (then 20 more) or CAP s
        port, pace, changes, cap = int(sys.argv[2]), float(sys.argv[3]) / 1000, int(sys.argv[4]), float(sys.argv[5])
        t0, pids, i, more = time.monotonic(), set(), 0, 20
        while more > 0 and time.monotonic() - t0 < cap:
            delay = t0 + i * pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            start = (time.monotonic() - t0) * 1000
            ms, status, pid = get(port, f"/r{i}")
            i += 1
            if status != "200":
                pid = "-"
            else:
                pids.add(pid)
            if len(pids) > changes:
                more -= 1
            print(f"{start:.3f} {ms:.3f} {pid}", flush=True)
    else:
        ms, status, _ = get(int(sys.argv[2]), sys.argv[3])
        print(f"{ms:.1f} {status}")
PY
export POOL_BENCH_DIR=$root/bench
watch() { "$py" "$work/watch.py" "$@"; }

# ---- the managers
count() { wc -w <"/proc/$mgr/task/$mgr/children" 2>/dev/null || echo -1; }
# until_count OP N SECONDS: within SECONDS, the pool's size OP N (-eq, -le, ...)
until_count() {
  for _ in $(seq $(($3 * 50))); do
    test "$(count)" "$1" "$2" && return 0
    sleep 0.02
  done
  echo "pool.sh: the pool never came to $1 $2 within $3 s (it has $(count))" >&2
  return 1
}
# start_fcgi_pm FLAGS...: for $s fcgi-pm, the fcgi-pm program on the socket, status_app
# its exec'd workers; for fcgi-pm-lib, status_app as its own manager (the library's
# parameters of the same names as the flags: -F n_processes, --min-idle min_idle, ...),
# its workers forked, as php-fpm's are
start_fcgi_pm() {
  rm -f "$sock"
  if [ "$s" = fcgi-pm-lib ]; then
    STATUS_APP_LISTEN=$sock STATUS_APP_PARAMS=$(echo " $*" | sed -e 's/ -F / --n-processes /' \
      -e 's/ --\([a-z-]*\) \([^ ]*\)/ \1=\2/g' -e 's/-/_/g') "$app" 2>>"$work/fcgi-pm.log" &
  else
    "$cli" -s "$sock" -M 0666 "$@" -- "$app" 2>>"$work/fcgi-pm.log" &
  fi
  mgr=$!
  up
}
# start_php_fpm MODE SETTINGS...: php-fpm with one pool on the socket, pm = MODE, and
# each SETTING ("key = value") in its section
start_php_fpm() {
  mode=$1; shift
  rm -f "$sock"
  mkdir -p "$work/php-fpm"
  {
    echo "[global]"
    echo "pid = $work/php-fpm/php-fpm.pid"
    echo "error_log = $work/php-fpm/error.log"
    echo "daemonize = no"
    echo "[bench]"
    echo "user = root"
    echo "group = root"
    echo "listen = $sock"
    echo "listen.mode = 0666"
    echo "pm = $mode"
    for setting in "$@"; do echo "$setting"; done
  } >"$work/php-fpm/php-fpm.conf"
  "$fpm" -R -y "$work/php-fpm/php-fpm.conf" 2>>"$work/php-fpm/stderr.log" &
  mgr=$!
  up
}
up() {  # the socket is there (the manager listens)
  for _ in $(seq 500); do
    [ -S "$sock" ] && return 0
    kill -0 $mgr 2>/dev/null || break
    sleep 0.01
  done
  echo "pool.sh: the manager did not listen on $sock" >&2
  tail -n 5 "$work/fcgi-pm.log" "$work/php-fpm/error.log" "$work/php-fpm/stderr.log" >&2 2>/dev/null || true
  return 1
}
# served: one request answered through nginx
served() {
  for _ in $(seq 250); do
    [ "$(watch get "$port" /ready | cut -d' ' -f2)" = 200 ] && return 0
    sleep 0.02
  done
  echo "pool.sh: the manager did not answer through nginx" >&2
  return 1
}
# stop_manager: TERM (php-fpm: fast shutdown; fcgi-pm: graceful, nothing is busy),
# then SIGKILL for the manager and every worker it had; none may be left.
stop_manager() {
  [ -n "$mgr" ] || return 0
  mgr_kids=$(cat /proc/$mgr/task/$mgr/children 2>/dev/null || true)
  kill -TERM $mgr 2>/dev/null || true
  for _ in $(seq 300); do kill -0 $mgr 2>/dev/null || break; sleep 0.01; done
  # shellcheck disable=SC2086
  kill -KILL $mgr $mgr_kids 2>/dev/null || true
  wait $mgr 2>/dev/null || true
  mgr='' mgr_kids=''
}
# start SYSTEM KIND [IDLE]: the manager with the pool of KIND (dynamic, ondemand),
# at rest: dynamic with its 2 workers serving, ondemand with none
start() {
  s=$1 kind=$2 idle=${3:-10}
  if [ "$s" != php-fpm ]; then
    if [ "$kind" = dynamic ]; then
      start_fcgi_pm --pool dynamic -F $rest --min-idle $rest --max-idle $rest --max-workers 80 --idle-timeout "$idle"
    else
      start_fcgi_pm --pool ondemand --max-workers 80 --idle-timeout "$idle"
    fi
  elif [ "$kind" = dynamic ]; then
    start_php_fpm dynamic "pm.max_children = 80" "pm.start_servers = $rest" \
      "pm.min_spare_servers = $rest" "pm.max_spare_servers = $rest"
  else
    start_php_fpm ondemand "pm.max_children = 80" "pm.process_idle_timeout = ${idle}s"
  fi
  if [ "$kind" = dynamic ]; then
    served && until_count -eq $rest 10
  else
    until_count -eq 0 10
  fi
  sleep 0.5  # every worker started up (status_app's exec and init), the machine quiet
}
sample() { echo "$1 $2 $3" >>"$samples"; }  # measure system value
# rotate N WORDS...: the words, the first N moved to the end (a different order each round)
rotate() {
  n=$1; shift
  echo "$@" | tr ' ' '\n' | awk -v r="$n" '{a[NR] = $0} END {for (i = 0; i < NR; i++) print a[(i + r) % NR + 1]}'
}
on() { case " $rows " in *" $1 "*) return 0 ;; esac; return 1; }
has_flag() { "$cli" --help 2>&1 | grep -q -- "$1"; }

# ---- one nginx for both, every request to $sock; SCRIPT_FILENAME for php-fpm
sed 's#include fastcgi_params;#&\n        fastcgi_param SCRIPT_FILENAME '"$root"'/bench/apps/slow.php;#' \
  examples/deploy/nginx-server.conf >"$work/server.conf"
port=$(sh examples/deploy/nginx-front.sh start "$work/nginx" "$sock" "$work/server.conf")
echo "== nginx on 127.0.0.1:$port; php-fpm: $("$fpm" -v | head -n 1)" >&2

# burst_row SYSTEM KIND PREFIX [IDLE SHRINK_CAP]: one burst; with SHRINK_CAP, the shrink after it
burst_row() {
  s=$1 kind=$2 p=$3 idle=${4:-10} scap=${5:-0}
  start "$s" "$kind" "$idle"
  bursts=$((bursts + 1))
  [ -z "${POOL_TRACE:-}" ] || export POOL_TRACE_FILE="$POOL_TRACE/$bursts-$p-$s.txt"
  # shellcheck disable=SC2046
  set -- $(watch burst $mgr "$port" $burst_n $burst_ms $grow_cap $rest "$scap" $answer_cap)
  echo "   $s: 64 workers after $1 ms, most $2, wait median $3 ms, max $4 ms, failed $5, unanswered $6$(
    [ "$scap" = 0 ] || echo "; shrink: first worker gone after $7 ms, back at $rest after $8 ms, $9 left")" >&2
  if [ "$p" = shrink ]; then
    sample shrink_first "$s" "$7"; sample shrink_rest "$s" "$8"; sample shrink_left "$s" "$9"
  fi
  # php-fpm's shrink run is also a round of burst 1 (the same pool); fcgi-pm's is not
  # (--idle-timeout 1)
  [ "$p" != shrink ] || { [ "$s" = php-fpm ] && on dynamic && p=dyn; } || { stop_manager; return 0; }
  sample "${p}_to64" "$s" "$1"; sample "${p}_max_workers" "$s" "$2"
  sample "${p}_wait_median" "$s" "$3"; sample "${p}_wait_max" "$s" "$4"
  sample "${p}_failed" "$s" "$5"; sample "${p}_unanswered" "$s" "$6"
  stop_manager
}
bursts=0
[ -z "${POOL_TRACE:-}" ] || mkdir -p "$POOL_TRACE"

# -- 1 and 4: the dynamic pool's burst, and its shrink after (php-fpm: the same run;
# fcgi-pm: a run of its own with --idle-timeout 1)
if on dynamic || on shrink; then
  for r in $(seq $reps); do
    for s in $(rotate "$r" $systems); do
      echo "== burst of $burst_n x ${burst_ms} ms on a dynamic pool of $rest: $s (round $r of $reps)" >&2
      if [ "$s" = php-fpm ] && on shrink && [ "$r" -le $shrink_reps ]; then
        burst_row php-fpm dynamic shrink 10 $shrink_cap
      elif on dynamic; then
        burst_row "$s" dynamic dyn
      fi
      if [ "$s" != php-fpm ] && on shrink && [ "$r" -le $shrink_reps ]; then
        echo "== the same, --idle-timeout 1, and the shrink after: $s (round $r of $shrink_reps)" >&2
        burst_row "$s" dynamic shrink 1 $shrink_cap
      fi
    done
  done
fi

# -- 2: the ondemand pool's burst
if on ondemand; then
  for r in $(seq $reps); do
    for s in $(rotate "$r" $systems); do
      echo "== burst of $burst_n x ${burst_ms} ms on an ondemand pool: $s (round $r of $reps)" >&2
      burst_row "$s" ondemand od
    done
  done
fi

# -- 3: ondemand, the first request to a pool of none against a warm one
# first_rounds SYSTEM: the rounds, each from a pool of none
first_rounds() {
  s=$1
  for r in $(seq $first_reps); do
    until_count -eq 0 10
    sleep 0.2
    # shellcheck disable=SC2046
    set -- $("$py" bench/pool_burst.py "$port" first 5)
    echo "   $s: first $2 ms, warm $3 ms, failed $4" >&2
    sample od_first "$s" "$2"; sample od_warm "$s" "$3"; sample od_first_failed "$s" "$4"
  done
}
if on first; then
  for s in $systems; do
    echo "== ondemand: first request against warm ones, idle timeout 1 s: $s ($first_reps rounds)" >&2
    start "$s" ondemand 1
    first_rounds "$s"
    stop_manager
  done
  # The floor: a process that forks a bare libfcgi child for the first connection
  echo "== floor: the same with apps/first_floor.c, a fork and an accept ($first_reps rounds)" >&2
  cc -O2 -Wall -Wextra -o "$work/first_floor" bench/apps/first_floor.c -lfcgi
  rm -f "$sock"
  "$work/first_floor" "$sock" 1000 2>>"$work/fcgi-pm.log" &
  mgr=$!
  up && served
  first_rounds floor
  stop_manager
fi

# -- 5: the floor, fork alone
if on floor; then
  echo "== floor: one process forks 64 children that pause() ($floor_reps rounds)" >&2
  cc -O2 -Wall -Wextra -Wl,-z,now -o "$work/fork_floor" bench/apps/fork_floor.c
  "$work/fork_floor" 64 $floor_reps | while read -r _ _ ms; do sample fork64 floor "$ms"; done
  echo "== floor: the same, each child exec'ing /bin/sleep ($floor_reps rounds)" >&2
  "$work/fork_floor" 64 $floor_reps /bin/sleep 3600 | while read -r _ _ ms; do sample fork64_exec floor "$ms"; done
fi

# -- 6: the request deadline: a request sleeping past a 1 s limit, the time from the
# limit until nginx answers (a 502 when the manager killed the worker)
deadline_row() {
  s=$1
  if [ "$s" != php-fpm ]; then
    start_fcgi_pm -F 2 --request-timeout 1
  else
    start_php_fpm static "pm.max_children = 2" "request_terminate_timeout = 1s"
  fi
  served && until_count -eq 2 10 && sleep 0.5
  for r in $(seq $reps); do
    # shellcheck disable=SC2046
    set -- $(watch get "$port" "/slow?ms=3000&n=$r")
    echo "   $s: answered after $1 ms, status $2" >&2
    sample deadline_over "$s" "$(awk -v t="$1" 'BEGIN { printf "%.1f", t - 1000 }')"
    sample deadline_code "$s" "$2"
    until_count -eq 2 10 && sleep 0.3  # the killed worker replaced
  done
  stop_manager
}
if on deadline; then
  if has_flag --request-timeout; then
    for s in $systems; do
      echo "== request deadline, 1 s: $s ($reps requests)" >&2
      deadline_row "$s"
    done
  else
    echo "== request deadline: not built ($cli --help lists no --request-timeout)" >&2
    echo "pool - deadline not-built" >>"$raw.skipped"
  fi
fi

# -- 7: the max_requests recycle: one worker that is to leave after 10 requests,
# requests through nginx one at a time, one every 5 ms (200/s), until the worker has
# been replaced recycles + 1 times (or the cap). Each answer names its worker's pid.
# A worker is a pid; two may serve side by side while one is replaced. For each
# worker whose whole life was seen (not the first: served() came before; not the
# last): the requests it served, and the lag from its 10th answer to the first answer
# of the next new worker (the recycle's latency, as a client sees it); for each new
# worker, what its first request took beyond a warm request (the others' median).
recycle_row() {
  s=$1
  if [ "$s" = floor ]; then
    rm -f "$sock"
    "$work/first_floor" "$sock" --recycle $max_req 2>>"$work/fcgi-pm.log" &
    mgr=$!
    up
  elif [ "$s" != php-fpm ]; then
    start_fcgi_pm -F 1 --max-requests $max_req
  else
    start_php_fpm static "pm.max_children = 1" "pm.max_requests = $max_req"
  fi
  served && until_count -eq 1 10 && sleep 0.5
  watch seq "$port" 5 $((recycles + 1)) $recycle_cap >"$work/seq.txt"
  # shellcheck disable=SC2046
  set -- $(awk -v s="$s" -v out="$samples" -v n=$max_req -v cap=$recycle_cap '
    $3 == "-" { failed++; next }
    { k++; done_at = $1 + $2
      if (!($3 in count)) { order[++np] = $3; if (np > 1) fresh[np] = $2; first_done[$3] = done_at }
      else warm[++nwarm] = $2
      if (++count[$3] == n) nth_done[$3] = done_at }
    function median(a, m,    i, j, x) {
      for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      return m == 0 ? 0 : m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
      w = median(warm, nwarm)
      for (j = 2; j <= np; j++) printf "recycle_extra %s %.3f\n", s, fresh[j] - w >>out
      for (j = 2; j < np; j++) {  # a whole life: not the first worker (served() came first), not the last
        p = order[j]
        printf "recycle_served %s %d\n", s, count[p] >>out
        if (p in nth_done) printf "recycle_lag %s %.3f\n", s, first_done[order[j + 1]] - nth_done[p] >>out
      }
      if (np < 3) printf "recycle_lag %s >%d\n", s, cap * 1000 >>out  # no whole life within the cap
      printf "recycle_warm %s %.3f\n", s, w >>out
      printf "recycle_failed %s %d\n", s, failed >>out
      print np - 1, k + 0, w, failed + 0
    }' "$work/seq.txt")
  echo "   $s: $1 new workers in $2 requests (a warm one: $3 ms), $4 failed" >&2
  stop_manager
}
if on recycle; then
  if has_flag --max-requests; then
    [ -x "$work/first_floor" ] || cc -O2 -Wall -Wextra -o "$work/first_floor" bench/apps/first_floor.c -lfcgi
    for s in $systems floor; do
      echo "== max_requests $max_req, one worker, a request every 5 ms until $((recycles + 1)) recycles or ${recycle_cap} s: $s" >&2
      recycle_row "$s"
    done
  else
    echo "== max_requests recycle: not built ($cli --help lists no --max-requests)" >&2
    echo "pool - recycle not-built" >>"$raw.skipped"
  fi
fi

# ---- the figures: "pool - MEASURE SYSTEM MEDIAN MIN MAX R"; ">X" sorts above numbers
awk '{ key = $1 " " $2
       if (!(key in c)) { keys[++nk] = key; c[key] = 0 }
       v[key, ++c[key]] = $3 }
     function val(x) { return substr(x, 1, 1) == ">" ? 1e18 + substr(x, 2) : x + 0 }
     END { for (k = 1; k <= nk; k++) {
             key = keys[k]; n = c[key]
             for (i = 2; i <= n; i++) {
               x = v[key, i]
               for (j = i - 1; j >= 1 && val(v[key, j]) > val(x); j--) v[key, j + 1] = v[key, j]
               v[key, j + 1] = x }
             if (n % 2) m = v[key, (n + 1) / 2]
             else { a = v[key, n / 2]; b = v[key, n / 2 + 1]
                    m = (val(a) >= 1e18 || val(b) >= 1e18) ? b : sprintf("%.3f", (a + b) / 2) }
             printf "pool - %s %s %s %s %d\n", key, m, v[key, 1], v[key, n], n } }' "$samples" >"$raw"
[ ! -f "$raw.skipped" ] || cat "$raw.skipped" >>"$raw"
# Every measure asked for produced a figure for each system
missing=
for m in $(on dynamic && echo dyn_to64 dyn_wait_median; on ondemand && echo od_to64 od_wait_median
           on first && echo od_first; on shrink && echo shrink_rest
           on recycle && has_flag --max-requests && echo recycle_lag
           on deadline && has_flag --request-timeout && echo deadline_over); do
  for s in $systems; do grep -q "^pool - $m $s " "$raw" || missing="$missing $m/$s"; done
done
! on first || grep -q '^pool - od_first floor ' "$raw" || missing="$missing od_first/floor"
! on floor || grep -q '^pool - fork64 floor ' "$raw" || missing="$missing fork64/floor"
! on floor || grep -q '^pool - fork64_exec floor ' "$raw" || missing="$missing fork64_exec/floor"
[ -z "$missing" ] || { echo "pool.sh: no figure for:$missing" >&2; cat "$raw" >&2; exit 1; }
cat "$raw"
echo >&2
table "$raw" >&2
