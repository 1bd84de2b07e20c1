#!/bin/sh
# The live status of a big pool: how long one `fcgi-pm status --json` takes on a pool
# of N workers (default 1024), timed as a whole command (exec, open, snapshot, JSON to
# a file), R times; the JSON is checked to hold all N workers, each with its CPU time
# and memory. Two pools, one after the other:
# - examples/hello exec'd by the fcgi-pm program: workers on the library, each writing
#   its slot. At rest (idle since the manager's last look, which the script waits
#   for), each worker's CPU and memory come from the scoreboard, not from /proc.
# - /bin/sleep exec'd the same way: workers that know nothing of the library, so each
#   one's CPU and memory is read from /proc: a status's worst case (as for a pool
#   whose every worker is busy or served a request within the last second).
#
#     sh bench/status.sh BUILD_DIR [--quick]
#
# Prints "status - LABEL N MEDIAN MIN MAX R" (ms, bench/run's raw figures) for
# fcgi-pm-json (the hello pool), fcgi-pm-json-no-proc (the same, --no-proc),
# fcgi-pm-json-exec (the sleep pool), fcgi-pm-json-exec-no-proc (the same, --no-proc:
# no CPU or memory then), and "true": /bin/true timed the same way, the floor of any
# command here.
set -eu
build=$1
quick=0; [ "${2:-}" = --quick ] && quick=1
cli=$build/src/fcgi-pm hello=$build/examples/hello
n=1024 reps=15
[ $quick = 1 ] && reps=3
[ -x "$cli" ] && [ -x "$hello" ] || { echo "status.sh: no $cli or $hello" >&2; exit 2; }
work=$(mktemp -d /tmp/status-bench-XXXXXX)
manager=
stop_pool() {
  [ -z "$manager" ] || { kill -TERM $manager 2>/dev/null; for _ in $(seq 2000); do kill -0 $manager 2>/dev/null || break; sleep 0.01; done; }
  manager=
}
trap 'stop_pool; rm -rf "$work"' EXIT

# start_pool PROGRAM...: a pool of n workers running PROGRAM, up (every worker started;
# for a program on the library, initialized).
start_pool() {
  rm -f "$work/s.sock"
  "$cli" -s "$work/s.sock" -F $n --die-timeout 20 -- "$@" 2>"$work/log" &
  manager=$!
  what='server (pid [0-9]*): initialized'
  [ "$1" = "$hello" ] || what='server (pid [0-9]*) started'
  for _ in $(seq 6000); do
    [ "$(grep -c "$what" "$work/log")" -ge $n ] && break
    sleep 0.01
  done
  up=$(grep -c "$what" "$work/log")
  [ "$up" -ge $n ] || { echo "status.sh: only $up of $n workers up" >&2; exit 1; }
}

# timed LABEL COMMAND...: R runs, each timed from fork to exit, stdout to a file.
timed() {
  label=$1; shift
  perl -MTime::HiRes=time -e '
    my ($label, $n, $reps, $out, @cmd) = @ARGV;
    my @t;
    open(my $stdout, ">&", \*STDOUT) or die;
    for (1 .. $reps) {
      open(STDOUT, ">", $out) or die "$out: $!\n";
      my $t0 = time;
      my $rc = system(@cmd);
      push @t, (time - $t0) * 1000;
      open(STDOUT, ">&", $stdout) or die;
      $rc == 0 or die "status.sh: @cmd failed\n";
    }
    @t = sort { $a <=> $b } @t;
    my $m = @t % 2 ? $t[$#t / 2] : ($t[@t / 2 - 1] + $t[@t / 2]) / 2;
    printf "status - %s %d %.2f %.2f %.2f %d\n", $label, $n, $m, $t[0], $t[-1], scalar @t;
  ' "$label" $n $reps "$work/out.json" "$@"
}
# time_status LABEL FLAGS WITH_USAGE: fcgi-pm status --json FLAGS, timed; the JSON
# checked to list n workers, each with its CPU time and memory if WITH_USAGE is 1.
time_status() {
  timed "$1" "$cli" status --json $2 $manager
  check_json "$3" || { echo "status.sh: $1: $(cat "$work/check")" >&2; exit 1; }
}
# check_json WITH_USAGE: the last JSON lists n workers (with usage: each with its CPU
# and memory; without: none).
check_json() {
  perl -MJSON::PP -e '
    my ($n, $usage) = @ARGV; local $/;
    my @w = @{decode_json(<STDIN>)->{workers}};
    my $with = grep { defined $_->{cpu_seconds} && defined $_->{rss_bytes} } @w;
    print "the JSON lists ", scalar @w, " of $n workers, $with with CPU and memory";
    exit !(@w == $n && $with == ($usage ? $n : 0));
  ' $n "$1" <"$work/out.json" >"$work/check"
}

echo "== status: a pool of $n workers on the library (examples/hello)" >&2
start_pool "$hello"
# At rest: the manager has read every worker's figures (within a second or two).
for _ in $(seq 100); do
  "$cli" status --json --no-proc $manager >"$work/out.json" && check_json 1 && break
  sleep 0.1
done
check_json 1 || { echo "status.sh: the manager did not read the workers' figures: $(cat "$work/check")" >&2; exit 1; }
time_status fcgi-pm-json "" 1
time_status fcgi-pm-json-no-proc --no-proc 1
stop_pool

echo "== status: a pool of $n workers not on the library (/bin/sleep)" >&2
start_pool /bin/sleep 3600
time_status fcgi-pm-json-exec "" 1
time_status fcgi-pm-json-exec-no-proc --no-proc 0
stop_pool
timed true /bin/true
