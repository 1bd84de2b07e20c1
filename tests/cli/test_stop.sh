#!/bin/sh
# Stopping the fcgi-pm program the ways an operator does: SIGINT to the manager, a
# Ctrl-C (SIGINT to the whole foreground process group, simulated, then typed on a
# real terminal), and --stop-signal for a program that stops gracefully on another
# signal than TERM. Each time a request in progress completes, the manager exits 0,
# the pid file is gone and no process is left.
# Usage: test_stop.sh FCGI_PM GRACEFUL
set -u
cli=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/fcgi-pm-stop-XXXXXX)
started=  # every manager started, killed at the end whatever happened
trap 'for p in $started; do pkill -KILL -P $p; kill -KILL $p; done 2>/dev/null
      pkill -KILL -f "$work/" 2>/dev/null; rm -rf "$work"' EXIT
. "$here/lib.sh"
ulimit -c 0  # a worker ended by QUIT's default action leaves no core
# Copies under $work: whatever survives is found (and killed) by its path.
grace=$work/graceful sleeper=$work/sleep
cp "$2" "$grace" && cp "$(command -v sleep)" "$sleeper" || exit 1

exited() {  # pid: exits within 20 s, else SIGKILLed; sets $code to its status
  for _ in $(seq 2000); do kill -0 "$1" 2>/dev/null || break; sleep 0.01; done
  if kill -0 "$1" 2>/dev/null; then
    echo "  pid $1 still running after 20 s: killed"
    pkill -KILL -P "$1"; kill -KILL "$1"
  fi
  wait "$1"; code=$?
}
slow() {  # socket ms out: a request that takes ms; its whole response to out
  REQUEST_METHOD=GET SCRIPT_NAME=/ QUERY_STRING="ms=$2" cgi-fcgi -bind -connect "$1" >"$3" 2>&1
}
answered() {  # out ms log: out is, byte for byte, the answer of the worker that served it
  w=$(sed -n "s/^graceful (pid \([0-9]*\)): serving ms=$2\$/\1/p" "$3" | tail -n 1)
  printf 'Content-Type: text/plain\r\n\r\ngraceful %s slept %s ms\n' "$w" "$2" | cmp -s - "$1" ||
    { echo "  response: $(od -c "$1" | head -n 5)"; return 1; }
}
default_disposition() {  # pid signo: the process neither ignores nor catches it
  st=/proc/$1/status
  ign=$(awk '/^SigIgn:/ {print $2}' "$st") cgt=$(awk '/^SigCgt:/ {print $2}' "$st")
  [ -n "$ign" ] && [ $(( (0x$ign | 0x$cgt) & (1 << ($2 - 1)) )) -eq 0 ] ||
    { echo "  pid $1: SigIgn $ign SigCgt $cgt"; return 1; }
}
nothing_left() {  # no process runs anything under $work
  left=$(pgrep -af "$work/") || return 0
  echo "  left running: $left"; return 1
}
pgid() { sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f3; }

# -- SIGINT to the manager: a stop as TERM is. Started by this shell with "&", the
#    manager finds SIGINT ignored (as from any script); it must stop on it all the
#    same, and its workers must get SIGINT at its default.
log=$work/int.log sock=$work/int.sock pid=$work/int.pid
"$cli" -s "$sock" -F 2 -P "$pid" --die-timeout 60 -- "$grace" TERM 2>"$log" &
manager=$!; started="$started $manager"
check "INT: workers ready" wait_for 2 'graceful (pid [0-9]*): ready' "$log"
workers=$(children $manager)
for w in $workers; do
  check "INT: worker $w has SIGINT at its default" default_disposition "$w" 2
done
slow "$sock" 1500 "$work/int.out" & client=$!
check "INT: a request in progress" wait_for 1 'serving ms=1500' "$log"
kill -INT "$manager"
exited "$client"; exited "$manager"
check "INT: exit 0" test "$code" -eq 0
check "INT: the request in progress completed, byte for byte" answered "$work/int.out" 1500 "$log"
check "INT: 'received signal INT' logged" grep -q "manager (pid $manager): received signal INT\$" "$log"
check "INT: 'safe exit from signal INT' logged" grep -q 'dying: safe exit from signal INT$' "$log"
check "INT: the workers got TERM" grep -q "sending TERM to PIDs" "$log"
check "INT: pid file removed" test ! -e "$pid"
# shellcheck disable=SC2086
check "INT: no worker left" all_gone $workers
check "INT: no process left" nothing_left

# -- Ctrl-C, simulated: the manager leads its own session and process group, SIGINT
#    at its default as in a terminal's foreground job, and SIGINT goes to the whole
#    group. The workers are not in it: the busy one finishes its request.
log=$work/group.log sock=$work/group.sock pid=$work/group.pid
setsid perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die "exec: $!\n"' \
  "$cli" -s "$sock" -F 2 -P "$pid" --die-timeout 60 -- "$grace" TERM 2>"$log" &
manager=$!; started="$started $manager"
check "group: workers ready" wait_for 2 'graceful (pid [0-9]*): ready' "$log"
check "group: the manager leads its process group" test "$(pgid $manager)" = "$manager"
workers=$(children $manager)
slow "$sock" 1500 "$work/group.out" & client=$!
check "group: a request in progress" wait_for 1 'serving ms=1500' "$log"
kill -INT "-$manager"
exited "$client"; exited "$manager"
check "group: exit 0" test "$code" -eq 0
check "group: the request in progress completed, byte for byte" answered "$work/group.out" 1500 "$log"
check "group: 'received signal INT' logged once" test "$(grep -c 'received signal INT$' "$log")" -eq 1
check "group: pid file removed" test ! -e "$pid"
# shellcheck disable=SC2086
check "group: no worker left" all_gone $workers
check "group: no process left" nothing_left

# -- Ctrl-C typed on a real terminal: script(1) runs the manager on a pty, in the
#    terminal's foreground process group; ^C goes in through the pty.
if command -v script >/dev/null && command -v mkfifo >/dev/null; then
  log=$work/tty.log sock=$work/tty.sock pid=$work/tty.pid
  cat >"$work/tty.sh" <<EOF
exec perl -e '\$SIG{INT} = "DEFAULT"; exec @ARGV or die "exec: \$!\\n"' \\
  "$cli" -s "$sock" -F 2 -P "$pid" --die-timeout 60 -- "$grace" TERM 2>"$log"
EOF
  : >"$log"
  mkfifo "$work/keys"
  exec 3<>"$work/keys"  # the terminal's keyboard, held open
  script -qfec "sh $work/tty.sh" /dev/null <"$work/keys" >"$work/tty.out" 2>&1 &
  term=$!; started="$started $term"
  check "tty: workers ready" wait_for 2 'graceful (pid [0-9]*): ready' "$log"
  manager=$(sed -n 's/^FastCGI: manager (pid \([0-9]*\)): initialized$/\1/p' "$log")
  workers=$(children "$manager")
  slow "$sock" 1500 "$work/tty.out.req" & client=$!
  check "tty: a request in progress" wait_for 1 'serving ms=1500' "$log"
  printf '\003' >&3
  exited "$client"; exited "$term"
  exec 3>&-
  check "tty: ^C: the manager exits 0" test "$code" -eq 0
  check "tty: the request in progress completed, byte for byte" answered "$work/tty.out.req" 1500 "$log"
  check "tty: 'received signal INT' logged" grep -q 'received signal INT$' "$log"
  check "tty: pid file removed" test ! -e "$pid"
  # shellcheck disable=SC2086
  check "tty: no worker left" all_gone $workers
  check "tty: no process left" nothing_left
else
  echo "no script(1) or mkfifo: Ctrl-C on a terminal not checked"
fi

# -- --stop-signal: bad values exit 2 with one line, having created nothing
bad() {
  out=$("$cli" -s "$work/bad.sock" -P "$work/bad.pid" "$@" 2>&1 >/dev/null); code=$?
  [ "$code" -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] &&
    printf '%s' "$out" | grep -q '^fcgi-pm: --stop-signal' ||
    { echo "  fcgi-pm $*: exit $code, said: $out"; return 1; }
}
for v in FOO KILL SIGKILL 9 0 SIG '' 3x -3; do
  check "--stop-signal '$v' refused" bad --stop-signal "$v" -- "$grace" QUIT
done
check "--stop-signal without a value refused" bad --stop-signal
check "bad --stop-signal: no socket, no pid file" test ! -e "$work/bad.sock" -a ! -e "$work/bad.pid"

# -- the program stops gracefully on QUIT and ignores TERM. Without --stop-signal
#    (the control): TERM does not reach it, it is SIGKILLed after --die-timeout.
log=$work/deaf.log
"$cli" -s "$work/deaf.sock" -F 1 --die-timeout 1 -- "$grace" QUIT 2>"$log" &
manager=$!; started="$started $manager"
check "control: worker ready" wait_for 1 'graceful (pid [0-9]*): ready' "$log"
kill -TERM "$manager"
exited "$manager"
check "control: the program ignores TERM: exit 1 after the die timeout" test "$code" -eq 1
check "control: ... not having stopped" test "$(grep -c 'QUIT: stopping' "$log")" -eq 0

# -- spellings: QUIT, SIGQUIT, quit, 3 all stop it with QUIT
for v in QUIT SIGQUIT quit 3; do
  log=$work/form.log
  "$cli" -s "$work/form.sock" -F 1 --die-timeout 60 --stop-signal "$v" -- "$grace" QUIT 2>"$log" &
  manager=$!; started="$started $manager"
  wait_for 1 'graceful (pid [0-9]*): ready' "$log"
  kill -TERM "$manager"
  exited "$manager"
  check "--stop-signal $v: exit 0" test "$code" -eq 0
  check "--stop-signal $v: the worker got QUIT" grep -q 'sending QUIT to PIDs' "$log"
  check "--stop-signal $v: ... and stopped on it" grep -q 'QUIT: stopping' "$log"
done

# -- --stop-signal QUIT: HUP replaces the workers with QUIT; TERM stops them with QUIT
#    at once, the request in progress completed
log=$work/quit.log sock=$work/quit.sock pid=$work/quit.pid
"$cli" -s "$sock" -F 2 -P "$pid" --die-timeout 60 --stop-signal QUIT -- "$grace" QUIT 2>"$log" &
manager=$!; started="$started $manager"
check "QUIT: workers ready" wait_for 2 'graceful (pid [0-9]*): ready' "$log"
first=$(children $manager)
kill -HUP "$manager"
check "QUIT: HUP sends QUIT" wait_for 1 'sending QUIT to PIDs' "$log"
check "QUIT: HUP: both stopped on it" wait_for 2 'QUIT: stopping' "$log"
check "QUIT: HUP: both exited 0" wait_for 2 'server (pid [0-9]*) exited with status 0' "$log"
check "QUIT: HUP: two new workers" wait_for 4 'graceful (pid [0-9]*): ready' "$log"
# shellcheck disable=SC2086
check "QUIT: HUP: the old workers are gone" all_gone $first
workers=$(children $manager)
slow "$sock" 1500 "$work/quit.out" & client=$!
check "QUIT: a request in progress" wait_for 1 'serving ms=1500' "$log"
t0=$(date +%s)
kill -TERM "$manager"
exited "$client"; exited "$manager"
check "QUIT: TERM: exit 0" test "$code" -eq 0
check "QUIT: TERM: stopped well before the die timeout" test $(( $(date +%s) - t0 )) -le 15
check "QUIT: TERM sends QUIT" test "$(grep -c 'sending QUIT to PIDs' "$log")" -eq 2
check "QUIT: TERM: both stopped on it" test "$(grep -c 'QUIT: stopping' "$log")" -eq 4
check "QUIT: the request in progress completed, byte for byte" answered "$work/quit.out" 1500 "$log"
check "QUIT: pid file removed" test ! -e "$pid"
# shellcheck disable=SC2086
check "QUIT: no worker left" all_gone $workers
check "QUIT: no process left" nothing_left

# -- a program that leaves QUIT at its default is stopped by it, although the manager
#    was started with QUIT ignored ("&" here): the workers get it at its default
log=$work/dfl.log
"$cli" -s "$work/dfl.sock" -F 1 --die-timeout 60 --stop-signal QUIT -- "$sleeper" 600 2>"$log" &
manager=$!; started="$started $manager"
check "default QUIT: worker started" wait_for 1 'server (pid [0-9]*) started' "$log"
sleep 0.3  # the exec done
worker=$(echo $(children $manager))  # one pid, no trailing space
check "default QUIT: the worker has QUIT at its default" default_disposition "$worker" 3
kill -TERM "$manager"
exited "$manager"
check "default QUIT: exit 0, well before the die timeout" test "$code" -eq 0
check "default QUIT: the worker died of QUIT" grep -q "server (pid $worker) exited with status \(3\|131\)\$" "$log"
check "default QUIT: no process left" nothing_left

# -- the manager SIGKILLed: its workers get the stop signal (QUIT), not a TERM they
#    ignore; they are in sessions of their own, so nothing else would reach them
log=$work/death.log
"$cli" -s "$work/death.sock" -F 2 --die-timeout 60 --stop-signal QUIT -- "$grace" QUIT 2>"$log" &
manager=$!; started="$started $manager"
check "death: workers ready" wait_for 2 'graceful (pid [0-9]*): ready' "$log"
workers=$(children $manager)
kill -KILL "$manager"
exited "$manager"
check "death: both workers stopped on QUIT" wait_for 2 'QUIT: stopping' "$log"
# shellcheck disable=SC2086
check "death: no worker left" all_gone $workers

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
