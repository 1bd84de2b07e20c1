#!/bin/sh
# The fcgi-pm program end to end: bad flags, an unmodified Perl FCGI program on a
# unix socket (mode, pid file, HUP, TERM) and on TCP, a program that cannot be
# exec'd, a second manager, stale and live sockets, a TERM or HUP that reaches a
# worker before its pm_manage.
# Usage: test_cli.sh FCGI_PM LATE_ADOPTER
set -u
cli=$1 late=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/fcgi-pm-cli-XXXXXX)
started=  # every manager started, killed at the end whatever happened (their titles
           # no longer show $work, so pkill -f alone would miss them)
trap 'for p in $started; do pkill -KILL -P $p; kill -KILL $p; done 2>/dev/null
      pkill -KILL -f "$work/" 2>/dev/null; rm -rf "$work"' EXIT
. "$here/lib.sh"
get() {  # address: the body of one request
  REQUEST_METHOD=GET SCRIPT_NAME=/ QUERY_STRING= cgi-fcgi -bind -connect "$1" 2>/dev/null | tail -n 1
}

# -- bad flags: exit 2, one line naming the problem, nothing started or created
bad() {
  out=$("$cli" "$@" 2>&1 >/dev/null); code=$?
  [ "$code" -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && printf '%s' "$out" | grep -q '^fcgi-pm: ' ||
    { echo "  fcgi-pm $*: exit $code, said: $out"; return 1; }
}
check "unknown option" bad -x -- true
check "no program" bad -s "$work/a.sock"
check "no socket" bad -- true
check "both socket and port" bad -s "$work/a.sock" -p 9000 -- true
check "bad worker count" bad -s "$work/a.sock" -F abc -- true
check "zero workers" bad -s "$work/a.sock" -F 0 -- true
check "bad port" bad -p 70000 -- true
check "bad mode" bad -s "$work/a.sock" -M 999 -- true
check "bad directory" bad -s "$work/a.sock" -d "$work/no-such-dir" -- true
check "negative die timeout" bad -s "$work/a.sock" --die-timeout -1 -- true
check "bad max requests" bad -s "$work/a.sock" --max-requests 1x -- true
check "negative max size" bad -s "$work/a.sock" --max-size -1 -- true
check "bad start timeout" bad -s "$work/a.sock" --start-timeout soon -- true
check "missing value" bad -s
check "unknown user" bad -s "$work/a.sock" -u no-such-user-here -- true
check "unknown socket group" bad -s "$work/a.sock" -G no-such-group-here -- true
check "nothing created by bad flags" test ! -e "$work/a.sock"

# -- unix socket, Perl FCGI program, mode, pid file, HUP, TERM
sock=$work/perl.sock log=$work/perl.log pid=$work/pm.pid
"$cli" -s "$sock" -F 2 -M 600 -P "$pid" --die-timeout 5 -- perl "$here/hello.pl" 2>"$log" &
manager=$!; started="$started $manager"
check "two workers started" wait_for 2 'server (pid [0-9]*) started' "$log"
check "socket mode 0600" test "$(stat -c %a "$sock")" = 600
check "pid file names the manager" test "$(cat "$pid")" = "$manager"
check "Perl answers" sh -c "$(printf 'REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect %s | grep -q "Hello from Perl"' "$sock")"
before=$(cat /proc/$manager/task/$manager/children)
# a second manager with the same pid file is refused, and the first keeps its socket
"$cli" -s "$sock" -P "$pid" -- perl "$here/hello.pl" 2>"$work/second.log"
check "second manager refused" test $? -eq 1
check "refusal names the holder" grep -q "held by another manager (pid $manager)" "$work/second.log"
check "first manager still answers" sh -c "REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect $sock | grep -q 'Hello from Perl'"
kill -HUP $manager
check "HUP replaced both" wait_for 4 'server (pid [0-9]*) started' "$log"
sleep 0.2
after=$(cat /proc/$manager/task/$manager/children)
check "new worker pids" sh -c "for p in $before; do echo ' $after ' | grep -q \" \$p \" && exit 1; done; exit 0"
check "Perl answers after HUP" sh -c "REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect $sock | grep -q 'Hello from Perl'"
# a live socket is never replaced
"$cli" -s "$sock" -- perl "$here/hello.pl" 2>"$work/live.log"
check "live socket refused" grep -q "something is listening there already" "$work/live.log"
kill -TERM $manager
wait $manager; code=$?
check "TERM: exit 0" test "$code" -eq 0
check "TERM: logged" grep -q 'dying: safe exit from signal TERM' "$log"
check "TERM: pid file removed" test ! -e "$pid"

# -- HUP, then TERM, each reaching a worker on this library between its FCGX_Init
#    (libfcgi's own TERM handler, which only notes the signal) and its pm_manage: the
#    worker ends at once, as before FCGX_Init; it never goes on to serve
log=$work/late.log
"$cli" -s "$work/late.sock" -F 1 --die-timeout 60 -- "$late" 3000 2>"$log" &
manager=$!; started="$started $manager"
check "late: the first worker is in the window" wait_for 1 'late_adopter (pid [0-9]*): FCGX_Init done' "$log"
first=$(echo $(children $manager))  # one pid, no trailing space
kill -HUP $manager
check "late: HUP ends that worker before its pause is over" wait_for 1 "server (pid $first) exited" "$log"
check "late: ... not having made it a worker" test "$(grep -c "server (pid $first): initialized" "$log")" -eq 0
check "late: the replacement is in the window" wait_for 2 'late_adopter (pid [0-9]*): FCGX_Init done' "$log"
kill -TERM $manager
check "late: TERM ends the manager before the replacement's pause is over" gone $manager
wait $manager; code=$?
check "late: exit 0" test "$code" -eq 0
check "late: no worker initialized, none served" test "$(grep -c 'initialized' "$log")" -eq 1

# -- with "no_signals" 1 the adopted worker's TERM is the host's to handle: at the
#    default once pm_manage returns, whatever kept it fatal before
log=$work/late-ns.log
"$cli" -s "$work/late-ns.sock" -F 1 -- "$late" 0 no_signals 2>"$log" &
manager=$!; started="$started $manager"
check "no_signals: the worker initialized" wait_for 1 'server (pid [0-9]*): initialized' "$log"
worker=$(echo $(children $manager))
caught=$(awk '/^SigCgt:/ {print $2}' "/proc/$worker/status")
check "no_signals: the worker does not catch TERM (SigCgt $caught)" \
  test $(( 0x$caught & (1 << 14) )) -eq 0
kill -TERM $manager
check "no_signals: TERM ends the manager" gone $manager

# -- a stale socket (nothing listening) is replaced; TCP on 127.0.0.1
"$cli" -s "$sock" -F 1 -- perl "$here/hello.pl" 2>"$work/stale.log" &
manager=$!; started="$started $manager"
check "stale socket replaced" wait_for 1 'server (pid [0-9]*) started' "$work/stale.log"
check "served after replacing" sh -c "sleep 0.2; REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect $sock | grep -q 'Hello from Perl'"
kill -TERM $manager; wait $manager
port=$((20000 + $$ % 20000))
"$cli" -a 127.0.0.1 -p $port -F 2 -- perl "$here/hello.pl" 2>"$work/tcp.log" &
manager=$!; started="$started $manager"
check "TCP workers" wait_for 2 'server (pid [0-9]*) started' "$work/tcp.log"
check "TCP answers" sh -c "sleep 0.2; REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect 127.0.0.1:$port | grep -q 'Hello from Perl'"
kill -TERM $manager; wait $manager; code=$?
check "TCP: exit 0" test "$code" -eq 0

# -- a program that cannot be exec'd: logged, paced by the backoff, manager stays up
"$cli" -s "$work/none.sock" -F 2 -- "$work/no-such-program" 2>"$work/none.log" &
manager=$!; started="$started $manager"
sleep 1.5
check "exec failure logged" grep -q "exec: $work/no-such-program: No such file or directory" "$work/none.log"
forks=$(grep -c 'started' "$work/none.log")
check "exec failures paced ($forks forks in 1.5 s)" test "$forks" -le 8
check "manager still up" kill -0 $manager
kill -TERM $manager; wait $manager; code=$?
check "exit 0 after TERM" test "$code" -eq 0

# -- -d: the workers' working directory
mkdir -p "$work/wd"
"$cli" -s "$work/wd.sock" -d "$work/wd" -- perl "$here/hello.pl" 2>"$work/wd.log" &
manager=$!; started="$started $manager"
check "-d worker started" wait_for 1 'server (pid [0-9]*) started' "$work/wd.log"
check "-d: worker runs in the directory" sh -c "sleep 0.2; REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect $work/wd.sock | grep -q 'in $work/wd\$'"
kill -TERM $manager; wait $manager

# -- an inherited socket: on fd 0 (as a web server passes it), or through systemd's
# socket activation (LISTEN_PID/LISTEN_FDS, fd 3), which the workers must not see
inherit() {  # fd socket-path command...: becomes (exec) the command, a listening socket on fd
  exec perl -MSocket -MPOSIX -MFcntl -e '
    my ($fd, $path, @cmd) = @ARGV;
    socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
    bind($s, pack_sockaddr_un($path)) or die "bind: $!";
    listen($s, 16) or die "listen: $!";
    POSIX::dup2(fileno($s), $fd) if fileno($s) != $fd;
    open(my $h, "+<&=", $fd) or die "fd $fd: $!";
    fcntl($h, F_SETFD, 0) or die "fcntl: $!";  # kept across exec
    if ($fd == 3) { $ENV{LISTEN_PID} = $$; $ENV{LISTEN_FDS} = 1; }
    exec @cmd or die "exec: $!";' "$@"
}
inherit 0 "$work/fd0.sock" "$cli" -F 1 -- perl "$here/hello.pl" 2>"$work/fd0.log" &
manager=$!; started="$started $manager"
check "fd 0 socket: worker started" wait_for 1 'server (pid [0-9]*) started' "$work/fd0.log"
check "fd 0 socket: served" sh -c "sleep 0.2; REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect $work/fd0.sock | grep -q 'Hello from Perl'"
kill -TERM $manager; wait $manager; code=$?
check "fd 0 socket: exit 0 after TERM" test "$code" -eq 0
inherit 3 "$work/sd.sock" "$cli" -F 1 -- sh -c 'env > "$0"; exec perl "$1"' "$work/sd.env" "$here/hello.pl" 2>"$work/sd.log" </dev/null &
manager=$!; started="$started $manager"
check "socket activation: worker started" wait_for 1 'server (pid [0-9]*) started' "$work/sd.log"
check "socket activation: served" sh -c "sleep 0.2; REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect $work/sd.sock | grep -q 'Hello from Perl'"
check "socket activation: LISTEN_* not passed on" sh -c "! grep -q '^LISTEN_' $work/sd.env"
kill -TERM $manager; wait $manager; code=$?
check "socket activation: exit 0 after TERM" test "$code" -eq 0

# -- started as root: workers run as the target user and group, checked in /proc
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null; then
  uid=$(id -u nobody) gid=$(getent group nogroup | cut -d: -f3)
  chmod 755 "$work"
  "$cli" -s "$work/drop.sock" -U nobody -G nogroup -M 660 -u nobody -g nogroup -F 2 -- perl "$here/hello.pl" 2>"$work/drop.log" &
  manager=$!
  check "workers started as nobody" wait_for 2 'server (pid [0-9]*) started' "$work/drop.log"
  sleep 0.3
  for w in $(cat /proc/$manager/task/$manager/children); do
    check "worker $w uid" sh -c "grep -q '^Uid:[[:space:]]*$uid[[:space:]]*$uid[[:space:]]*$uid[[:space:]]*$uid' /proc/$w/status"
    check "worker $w gid" sh -c "grep -q '^Gid:[[:space:]]*$gid[[:space:]]*$gid[[:space:]]*$gid[[:space:]]*$gid' /proc/$w/status"
    check "worker $w groups" sh -c "grep -q '^Groups:[[:space:]]*$gid[[:space:]]*$' /proc/$w/status"
  done
  check "socket owned by nobody:nogroup" test "$(stat -c %u:%g "$work/drop.sock")" = "$uid:$gid"
  check "manager still root" test "$(stat -c %u /proc/$manager)" = 0
  check "served as nobody" sh -c "REQUEST_METHOD=GET SCRIPT_NAME=/ cgi-fcgi -bind -connect $work/drop.sock | grep -q 'Hello from Perl'"
  kill -TERM $manager; wait $manager; code=$?
  check "exit 0 after TERM" test "$code" -eq 0
  # The drop to nobody clears the parent-death signal: it must be set again after.
  "$cli" -s "$work/drop2.sock" -u nobody -g nogroup -F 2 -- perl "$here/hello.pl" 2>"$work/drop2.log" &
  manager=$!; started="$started $manager"
  check "second pool as nobody" wait_for 2 'server (pid [0-9]*) started' "$work/drop2.log"
  sleep 0.3
  dropped=$(children $manager)
  kill -KILL $manager; wait $manager 2>/dev/null
  # shellcheck disable=SC2086
  check "workers run as nobody die with their SIGKILLed manager" all_gone $dropped
  kill -KILL $dropped 2>/dev/null  # survivors would hold the test's output open
else
  echo "not root, or no nobody/nogroup: privilege drop not checked"
fi

# -- a program that cannot be exec'd: with --start-timeout the manager gives up, exit 1
log=$work/timeout.log
t0=$(date +%s)
"$cli" -s "$work/timeout.sock" -F 2 --start-timeout 1 -- "$work/no-such-program" 2>"$log" &
m=$!
wait "$m"; code=$?
check "start timeout: exit 1" test "$code" -eq 1
check "start timeout: within a few seconds" test $(( $(date +%s) - t0 )) -le 5
check "start timeout: logged" grep -q 'start timeout: 0 of 2 workers ready after 1 s$' "$log"
check "start timeout: the exec failures logged" grep -q "exec: $work/no-such-program: No such file or directory" "$log"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
