# What the pool tests share (sourced, with cli, app, here and pool_test, the test's
# name, set): a scratch directory (work) and, on the way out, every manager started
# (started) and nginx stopped and the directory removed; the status as JSON and
# waits on it, a pool with nginx in front, requests and bursts through it with curl.
deploy=$here/../../examples/deploy
# How much slower processes start here than in the normal build (4 under ASan, set
# by CMake): the bounds on starts scale by it; the criteria are the normal build's.
time_scale=${PM_TIME_SCALE:-1}
work=$(mktemp -d "/tmp/fcgi-pm-$pool_test-XXXXXX")
chmod 755 "$work"
started=
trap 'for p in $started; do pkill -KILL -P $p; kill -KILL $p; done 2>/dev/null
      for d in "$work"/nginx*; do sh "$deploy/nginx-front.sh" stop "$d"; done
      rm -rf "$work"' EXIT
. "$here/../cli/lib.sh"
py=/usr/bin/python3

# field MANAGER EXPR: a Python expression over the status JSON (as j)
field() {
  "$cli" status --json "$1" >"$work/st.json" 2>/dev/null &&
    "$py" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$work/st.json"
}
until_field() {  # manager seconds expr: within seconds, a status that makes expr True
  for _ in $(seq $(($2 * 50))); do
    [ "$(field "$1" "$3")" = True ] && return 0
    sleep 0.02
  done
  echo "  never within $2 s: $3"; cat "$work/st.json"; echo; return 1
}
# The pool's workers: exec'd by the fcgi-pm program (the default), or with
# PM_POOL_FORKED=1 forked by status_app as its own manager, the flags given as the
# library's parameters of the same names (-F n_processes, --min-idle min_idle, ...).
forked=${PM_POOL_FORKED:-0}
# start_pool NAME FLAGS...: a pool on $work/NAME.sock with nginx in front; sets
# manager, log and port
start_pool() {
  name=$1; shift
  log=$work/$name.log
  if [ "$forked" = 1 ]; then
    STATUS_APP_LISTEN=$work/$name.sock STATUS_APP_PARAMS=$(echo " $*" | sed -e 's/ -F / --n-processes /' \
      -e 's/ --\([a-z-]*\) \([^ ]*\)/ \1=\2/g' -e 's/-/_/g') "$app" 2>"$log" &
  else
    "$cli" -s "$work/$name.sock" "$@" -- "$app" 2>"$log" &
  fi
  manager=$!; started="$started $manager"
  for _ in $(seq 250); do [ -S "$work/$name.sock" ] && break; sleep 0.02; done
  port=$(sh "$deploy/nginx-front.sh" start "$work/nginx-$name" "$work/$name.sock")
}
stop_pool() {
  kill -TERM $manager; gone $manager
  sh "$deploy/nginx-front.sh" stop "$work/nginx-$name"
}
get() { curl -sS -o /dev/null -w '%{http_code}\n' --max-time 20 "http://127.0.0.1:$port$1"; }
# burst N MS: N concurrent requests through nginx, each sleeping MS ms; their codes
# and times (s) in $work/codes.txt
burst() {
  seq "$1" | xargs -P "$1" -I{} curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' --max-time 30 \
    "http://127.0.0.1:$port/slow?ms=$2&n={}" >"$work/codes.txt"
}
answered() {  # n: n lines of 200 in codes.txt
  test "$(grep -c '^200 ' "$work/codes.txt")" -eq "$1"
}
# none_waited MS: no request of the burst took a second more than its own MS (one that
# waited for another's worker would have taken 2 x MS)
none_waited() {
  awk -v ms="$1" -v slack=$((1000 * time_scale)) '$2 * 1000 > ms + slack { print "  took " $2 " s"; bad = 1 } END { exit bad }' \
    "$work/codes.txt"
}
# refused EXPECTED FLAGS...: exit 2, one line holding EXPECTED, nothing started
refused() {  # expected-text flags...
  want=$1; shift
  "$cli" -s "$work/refused.sock" "$@" -- "$app" >"$work/out" 2>"$work/err"
  rc=$?
  [ $rc -eq 2 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && grep -q -- "$want" "$work/err" && [ ! -e "$work/refused.sock" ] ||
    { echo "  rc $rc: $(cat "$work/err")"; return 1; }
}
