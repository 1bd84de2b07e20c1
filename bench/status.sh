#!/bin/sh
# The live status of a big pool: how long one `fcgi-pm status --json` takes on a pool
# of N workers (default 1024; examples/hello exec'd by the fcgi-pm program, each a
# worker on the library writing its slot), with each worker's CPU and memory read from
# /proc (the default) and without (--no-proc). The command is run R times after the
# pool is up, each time whole (exec, open, snapshot, JSON to a file); the JSON is
# checked to hold all N workers.
#
#     sh bench/status.sh BUILD_DIR [--quick]
#
# Prints "status - fcgi-pm-json N MEDIAN MIN MAX R" and the same for fcgi-pm-json-no-proc
# and for /bin/true timed the same way ("true": the floor of any command here), in ms,
# as bench/run's raw figures.
set -eu
build=$1
quick=0; [ "${2:-}" = --quick ] && quick=1
cli=$build/src/fcgi-pm hello=$build/examples/hello
n=1024 reps=15
[ $quick = 1 ] && reps=3
[ -x "$cli" ] && [ -x "$hello" ] || { echo "status.sh: no $cli or $hello" >&2; exit 2; }
work=$(mktemp -d /tmp/status-bench-XXXXXX)
manager=
trap '[ -z "$manager" ] || { kill -TERM $manager 2>/dev/null; for _ in $(seq 1000); do kill -0 $manager 2>/dev/null || break; sleep 0.01; done; }
      rm -rf "$work"' EXIT

echo "== status: a pool of $n workers" >&2
"$cli" -s "$work/s.sock" -F $n --die-timeout 20 -- "$hello" 2>"$work/log" &
manager=$!
for _ in $(seq 6000); do
  [ "$(grep -c 'server (pid [0-9]*): initialized' "$work/log")" -ge $n ] && break
  sleep 0.01
done
up=$(grep -c 'server (pid [0-9]*): initialized' "$work/log")
[ "$up" -ge $n ] || { echo "status.sh: only $up of $n workers up" >&2; exit 1; }

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
# time_status LABEL FLAGS: fcgi-pm status --json FLAGS, timed; the JSON checked.
time_status() {
  timed "$1" "$cli" status --json $2 $manager
  workers=$(perl -MJSON::PP -e 'local $/; print scalar @{decode_json(<STDIN>)->{workers}}' <"$work/out.json")
  [ "$workers" -eq $n ] || { echo "status.sh: the JSON lists $workers of $n workers" >&2; exit 1; }
}
time_status fcgi-pm-json ""
time_status fcgi-pm-json-no-proc --no-proc
timed true /bin/true
