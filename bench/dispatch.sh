#!/bin/sh
# The request path side by side: what one pre_dispatch + post_dispatch pair costs in
# a real worker (n_processes 1) of fcgi-pm (dispatch_bench, Google Benchmark),
# FCGI::ProcManager and FCGI::Engine::ProcManager (dispatch.pl, Time::HiRes):
#
#     sh bench/dispatch.sh BUILD_DIR [--quick]
#
# BUILD_DIR holds bench/dispatch_bench (PM_BUILD_BENCH). Prints on stdout, times in ns
# per pair (median and standard deviation over the repetitions):
#
#     dispatch fcgi-pm MEDIAN STDDEV SYSCALLS_PER_PAIR          (the live status on: the default)
#     dispatch fcgi-pm-no-scoreboard MEDIAN STDDEV SYSCALLS_PER_PAIR   ("scoreboard" 0)
#     dispatch fcgi-pm-named MEDIAN STDDEV SYSCALLS_PER_PAIR    (pm_set_request + the pair)
#     dispatch fcgi-procmanager MEDIAN STDDEV SYSCALLS_PER_PAIR
#     dispatch fcgi-engine MEDIAN STDDEV SYSCALLS_PER_PAIR
#     dispatch fcgi-procmanager-xs MEDIAN STDDEV SYSCALLS_PER_PAIR   (with PERL5LIB
#     dispatch fcgi-engine-xs MEDIAN STDDEV SYSCALLS_PER_PAIR         holding the binding)
#     dispatch perl-empty-loop MEDIAN STDDEV -
#     dispatch fcgi-pm-rust MEDIAN STDDEV SYSCALLS_PER_PAIR   (with RUST_DISPATCH_BENCH:
#              the Rust crate's benches/dispatch.rs, the pair through its safe API)
#
# The Perl times include the loop itself; perl-empty-loop is that loop alone, timed
# in the FCGI::ProcManager worker. System calls: each worker runs K1 and then K2 pairs
# between two marker calls under strace -f; the calls it makes between the markers
# give (count(K2) - count(K1)) / (K2 - K1), so the markers and loop set-up cancel.
# Each run must end with the manager exiting 0 and no worker left; the managers' logs
# go to stderr only when a run fails. --quick: every path, briefly.
set -eu

usage="usage: sh bench/dispatch.sh BUILD_DIR [--quick]"
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "$usage" >&2; exit 2; }
bench=$1/bench/dispatch_bench
quick=0
if [ $# = 2 ]; then
  [ "$2" = --quick ] || { echo "$usage" >&2; exit 2; }
  quick=1
fi
[ -x "$bench" ] || { echo "dispatch.sh: no $bench (build with -DPM_BUILD_BENCH=ON)" >&2; exit 2; }
for tool in perl strace; do
  command -v $tool >/dev/null || { echo "dispatch.sh: $tool is needed" >&2; exit 2; }
done
pl=$(dirname "$0")/dispatch.pl

if [ $quick = 1 ]; then
  gb_reps=3 gb_min_time=0.01 perl_n=2000 perl_reps=3 rust_n=100000 k1=100 k2=200
else
  gb_reps=15 gb_min_time=0.2 perl_n=20000 perl_reps=15 rust_n=5000000 k1=1000 k2=2000
fi

work=$(mktemp -d /tmp/dispatch-bench-XXXXXX)
log=$work/run.log
trap 'rm -rf "$work"' EXIT

# run NAME COMMAND...: runs it with stdout to $work/out and stderr to $log; fails
# unless it exits 0 and every worker it logged has gone.
run() {
  name=$1
  shift
  status=0
  "$@" >"$work/out" 2>"$log" || status=$?
  left=
  for pid in $(sed -n 's/^FastCGI: server (pid \([0-9]*\)): initialized$/\1/p' "$log"); do
    tries=0
    while kill -0 "$pid" 2>/dev/null && [ $tries -lt 50 ]; do
      sleep 0.02
      tries=$((tries + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      left="$left $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [ $status != 0 ] || [ -n "$left" ] || ! grep -q '^FastCGI: server (pid' "$log"; then
    echo "dispatch.sh: $name: exit status $status${left:+, workers left running (killed):$left}; its log:" >&2
    cat "$log" >&2
    exit 1
  fi
}

# syscalls_between: how many system calls the process that made the begin marker
# call made before the end marker call, in the strace -f output $work/trace (the
# total, then by name).
syscalls_between() {
  awk '
    !pid && index($0, "\"/nonexistent/dispatch-bench-begin\"") { pid = $1; next }
    pid && $1 == pid && index($0, "\"/nonexistent/dispatch-bench-end\"") { found = 1; exit }
    pid && $1 == pid && $2 !~ /^(<\.\.\.|---|\+\+\+)/ {
      n++
      name = $2; sub(/\(.*/, "", name); by_name[name]++
    }
    END {
      if (!found) { print "dispatch.sh: no markers in the trace" > "/dev/stderr"; exit 1 }
      printf "%d", n
      for (name in by_name) printf " %s=%d", name, by_name[name]
      print ""
    }' "$work/trace"
}

# per_pair NAME COMMAND...: system calls per pair, COMMAND run with --pairs=K appended.
per_pair() {
  name=$1
  shift
  run "$name under strace" strace -f -qq -o "$work/trace" "$@" "--pairs=$k1"
  c1=$(syscalls_between)
  run "$name under strace" strace -f -qq -o "$work/trace" "$@" "--pairs=$k2"
  c2=$(syscalls_between)
  echo "  $k1 pairs: ${c1}; $k2 pairs: $c2" >&2
  awk -v a="${c1%% *}" -v b="${c2%% *}" -v k1=$k1 -v k2=$k2 'BEGIN { printf "%.1f", (b - a) / (k2 - k1) }'
}

# Google Benchmark's table goes to stderr, its JSON to a file: median and stddev of
# the real time.
# c_system LABEL: the "dispatch LABEL MEDIAN STDDEV SYSCALLS" line of dispatch_bench
# as the environment (DISPATCH_BENCH_*) sets it up.
c_system() {
  echo "== $1: $gb_reps repetitions (Google Benchmark)" >&2
  run "$1" "$bench" --benchmark_repetitions=$gb_reps --benchmark_min_time=$gb_min_time \
    --benchmark_report_aggregates_only=true --benchmark_out="$work/gb.json" --benchmark_out_format=json
  cat "$work/out" >&2
  gb=$(perl -MJSON::PP -e '
    local $/; open my $f, "<", $ARGV[0] or die "$ARGV[0]: $!\n";
    my %t;
    for my $b (@{decode_json(<$f>)->{benchmarks}}) {
      next unless ($b->{run_type} // "") eq "aggregate";
      die "unexpected time unit $b->{time_unit}\n" unless $b->{time_unit} eq "ns";
      $t{$b->{aggregate_name}} = $b->{real_time};
    }
    die "no median/stddev in $ARGV[0]\n" unless defined $t{median} && defined $t{stddev};
    printf "%.1f %.1f\n", $t{median}, $t{stddev};' "$work/gb.json")
  echo "== $1: system calls per pair" >&2
  sc=$(per_pair "$1" "$bench")
  echo "dispatch $1 $gb $sc"
}
out_pm=$(c_system fcgi-pm)
out_off=$(DISPATCH_BENCH_SCOREBOARD=0 c_system fcgi-pm-no-scoreboard)
out_named=$(DISPATCH_BENCH_NAMED=1 c_system fcgi-pm-named)

# perl_system SYSTEM LABEL: the "dispatch LABEL ..." line; the empty loop's figures
# go to $work/SYSTEM.empty.
perl_system() {
  echo "== $2: $perl_reps x $perl_n pairs (Time::HiRes)" >&2
  run "$2" perl "$pl" "$1" --time=$perl_n,$perl_reps --pid-file="$work/$1.pid"
  cat "$work/out" >&2
  pair=$(sed -n 's/^pair //p' "$work/out")
  sed -n 's/^empty-loop //p' "$work/out" >"$work/$1.empty"
  [ -n "$pair" ] && [ -s "$work/$1.empty" ] || { echo "dispatch.sh: $2: no figures" >&2; exit 1; }
  echo "== $2: system calls per pair" >&2
  sc=$(per_pair "$2" perl "$pl" "$1" --pid-file="$work/$1.pid")
  echo "dispatch $2 $pair $sc"
}
out_procmanager=$(perl_system procmanager fcgi-procmanager)
out_engine=$(perl_system engine fcgi-engine)
out_xs=
if perl -MFCGI::ProcManager::XS -e 1 2>/dev/null; then
  out_xs="$(perl_system procmanager-xs fcgi-procmanager-xs)
$(perl_system engine-xs fcgi-engine-xs)"
fi

out_rust=
if [ -n "${RUST_DISPATCH_BENCH:-}" ]; then
  echo "== fcgi-pm from Rust: $gb_reps x $rust_n pairs (std::time::Instant)" >&2
  run fcgi-pm-rust "$RUST_DISPATCH_BENCH" --time=$rust_n,$gb_reps
  cat "$work/out" >&2
  pair=$(sed -n 's/^pair //p' "$work/out")
  [ -n "$pair" ] || { echo "dispatch.sh: fcgi-pm-rust: no figures" >&2; exit 1; }
  echo "== fcgi-pm from Rust: system calls per pair" >&2
  out_rust="dispatch fcgi-pm-rust $pair $(per_pair fcgi-pm-rust "$RUST_DISPATCH_BENCH")"
fi

echo "$out_pm"
echo "$out_off"
echo "$out_named"
[ -z "$out_rust" ] || echo "$out_rust"
echo "$out_procmanager"
echo "$out_engine"
[ -z "$out_xs" ] || echo "$out_xs"
echo "dispatch perl-empty-loop $(cat "$work/procmanager.empty") -"
