#!/bin/sh
# Runs the same scenarios against FCGI::ProcManager (Perl) and fcgi-pm (worker_app)
# and compares their log lines, pids masked, as multisets, and their exit codes.
# Usage: compare_with_perl.sh WORKER_APP
#        compare_with_perl.sh --perl-class CLASS: the same Perl application on
#        FCGI::ProcManager::Constrained and on CLASS (a binding's, found in PERL5LIB)
set -u
worker_app=$1 perl_class=
[ "$1" = --perl-class ] && perl_class=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/fcgi-pm-compat-XXXXXX)
trap 'pkill -KILL -f "$work/" 2>/dev/null; rm -rf "$work"' EXIT
failed=0 passed=0

# Waits until the log has at least $2 lines matching $3.
wait_log() {
  for _ in $(seq 300); do
    [ "$(grep -c -- "$3" "$1" 2>/dev/null)" -ge "$2" ] && return 0
    sleep 0.01
  done
  return 1
}

request() {
  REQUEST_METHOD=GET SCRIPT_NAME=/ QUERY_STRING="$2" cgi-fcgi -bind -connect "$1" >/dev/null 2>&1
}

# scenario NAME IMPL: runs one scenario with one implementation; prints
# "exit <code>" and the masked, sorted FastCGI lines.
scenario() {
  name=$1 impl=$2 dir=$work/$1-$2
  mkdir -p "$dir"
  sock=$dir/s.sock log=$dir/log
  case $impl in
    perl) set -- perl "$here/app.pl" "$sock" ;;
    fcgi-pm) if [ -n "$perl_class" ]; then
               set -- env COMPAT_PM_CLASS="$perl_class" perl "$here/app.pl" "$sock"
             else
               set -- "$worker_app" "$sock"
             fi ;;
  esac
  env=
  case $name in
    start-hup-term)
      "$@" n_processes=2 >"$log" 2>&1 &
      m=$!
      wait_log "$log" 2 ': initialized$' && wait_log "$log" 3 'initialized'
      wait_log "$log" 2 'server (pid [0-9]*): initialized'
      kill -HUP $m
      wait_log "$log" 4 'server (pid [0-9]*): initialized'
      kill -TERM $m ;;
    negative-n)
      "$@" n_processes=-1 >"$log" 2>&1 &
      m=$! ;;
    worker-killed)
      "$@" n_processes=2 >"$log" 2>&1 &
      m=$!
      wait_log "$log" 2 'server (pid [0-9]*): initialized'
      w=$(sed -n 's/.*server (pid \([0-9]*\)) started/\1/p' "$log" | head -n 1)
      kill -KILL "$w"
      wait_log "$log" 3 'server (pid [0-9]*): initialized'
      kill -TERM $m ;;
    term-busy)
      "$@" n_processes=1 die_timeout=10 >"$log" 2>&1 &
      m=$!
      wait_log "$log" 1 'server (pid [0-9]*): initialized'
      request "$sock" sleep_ms=800 &
      r=$!
      sleep 0.3
      kill -TERM $m
      wait $r ;;
    hup-busy)
      "$@" n_processes=1 >"$log" 2>&1 &
      m=$!
      wait_log "$log" 1 'server (pid [0-9]*): initialized'
      request "$sock" sleep_ms=800 &
      r=$!
      sleep 0.3
      kill -HUP $m
      wait $r
      wait_log "$log" 2 'server (pid [0-9]*): initialized'
      kill -TERM $m ;;
    max-requests)
      "$@" n_processes=1 max_requests=2 >"$log" 2>&1 &
      m=$!
      wait_log "$log" 1 'server (pid [0-9]*): initialized'
      request "$sock" ""; request "$sock" ""
      wait_log "$log" 2 'server (pid [0-9]*): initialized'
      kill -TERM $m ;;
    wait-timeout)
      WORKER_APP_BLOCK_TERM=1 "$@" n_processes=1 die_timeout=1 >"$log" 2>&1 &
      m=$!
      wait_log "$log" 1 'server (pid [0-9]*): initialized'
      sleep 0.1
      kill -TERM $m ;;
  esac
  code=0
  wait $m || code=$?
  echo "exit $code"
  # Deliberate difference: workers SIGKILLed at the die timeout are reaped and
  # logged here; the original leaves them unreaped, unlogged.
  grep '^FastCGI: ' "$log" | grep -v 'exited with status 9$' |
    sed -e 's/(pid [0-9]*)/(pid P)/g' -e 's/PIDs, [0-9 ]*$/PIDs, P.../' | sort
}

for s in start-hup-term negative-n worker-killed term-busy hup-busy max-requests wait-timeout; do
  scenario $s perl >"$work/$s.perl.out"
  scenario $s fcgi-pm >"$work/$s.fcgi-pm.out"
  if diff -u "$work/$s.perl.out" "$work/$s.fcgi-pm.out" >"$work/$s.diff"; then
    echo "same as FCGI::ProcManager${perl_class:+ with $perl_class}: $s ($(($(wc -l <"$work/$s.perl.out") - 1)) log lines)"
    passed=$((passed + 1))
  else
    echo "DIFFERS from FCGI::ProcManager: $s"; cat "$work/$s.diff"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
