#!/bin/sh
# Turns bench/run's raw figures into the results table (markdown) and the chart.
# Usage: report.sh RAW QUICK RESULTS_DIR
set -eu
raw=$1 quick=$2 dir=$3
mkdir -p "$dir"
name=$(date -u +%Y-%m-%d)-$(hostname -s)$([ "$quick" = 1 ] && echo -quick || true)
md=$dir/$name.md

machine() {
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); mode: $([ "$quick" = 1 ] && echo quick || echo full)"
  echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(nproc) cores online"
  echo "- memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo); kernel $(uname -r)"
  echo "- $(. /etc/os-release && echo "$PRETTY_NAME"); $(nginx -v 2>&1 | sed 's/.*: //'); $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1,2)"
  echo "- FCGI::ProcManager $(perl -MFCGI::ProcManager -e 'print $FCGI::ProcManager::VERSION'),"\
       "FCGI::Engine $(perl -MFCGI::Engine -e 'print $FCGI::Engine::VERSION'),"\
       "spawn-fcgi $(spawn-fcgi -v | head -n 1 | awk '{print $2}'), multiwatch $(multiwatch -v 2>&1 | head -n 1 | awk '{print $2}')"
  rustc=$(command -v rustc || echo "$HOME/.cargo/bin/rustc")
  echo "- $("$rustc" --version 2>/dev/null || echo "rustc: none"); Go $(command -v go >/dev/null && go version | awk '{print $3}' || echo none)"
}

# Where the stop time of a pool goes: from children that die by TERM's default action
# to the library's workers, same run, same n.
stop_taken_apart() {
  n=$(awk '$3 == "stop_apart" {print $2; exit}' "$raw")
  [ -n "$n" ] || return 0
  echo "## Stop (TERM), n=$n, taken apart"
  echo
  echo "The stop measure again, for seven systems in 15 rounds (1 when quick), each"
  echo "round starting each system once: the floor (apps/floor.c, a manager that forks,"
  echo "kills and waits, nothing else) with four kinds of children, beside the fcgi-pm"
  echo "program and library. A floor row whose children are the same as a system's is"
  echo "the least any manager can take to stop those workers here; the last column is"
  echo "the system's figure divided by it."
  echo
  echo "| what stops | median ms | ÷ floor with the same workers |"
  echo "|---|---|---|"
  awk -v n="$n" '$2 == n && $3 == "stop_apart" {t[$1] = $4}
    END {
      row("floor: children wait in pause(), die by the default action", "floor")
      row("floor, children blocked in libfcgi'"'"'s accept, die by the default action", "floor-fcgi")
      row("floor, children exec hello_plain on the socket (TERM ends its accept; exit())", "floor-exec")
      row("fcgi-pm program: the same exec'"'"'d hello_plain", "fcgi-pm-cli", "floor-exec")
      row("floor, children run examples/hello'"'"'s loop (TERM ends it; `_exit(0)` at once)", "floor-return")
      row("fcgi-pm library: examples/hello (the same loop; worker_exit \"_exit_unflushed\": `_exit` in pm_accept)", "fcgi-pm", "floor-return")
      row("fcgi-pm library: forked workers, loop ends, `_exit(0)` at once (apps/quick_exit_pm.c)", "fcgi-pm-exit")
    }
    function row(label, s, f) {
      printf "| %s | %s | %s |\n", label, (s in t) ? t[s] : "–",
        (f != "" && (s in t) && (f in t) && t[f] > 0) ? sprintf("%.2f×", t[s] / t[f]) : "–"
    }' "$raw"
}

# What the binding sections' awk programs share: the median of a list of figures,
# and the dispatch rows by system (ns, syscalls).
dispatch_awk='
    function median(list,   n, v, i, j, x) {
      n = split(list, v, " ")
      for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
      return n == 0 ? "" : n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    $1 == "dispatch" { ns[$3] = $4; sc[$3] = $6 }'

# The Perl binding beside the originals: the request path of each class, and a PSGI
# hello under plackup -s FCGI behind nginx with each manager.
perl_rows() {
  grep -q '^dispatch - fcgi-procmanager-xs ' "$raw" || return 0
  echo "## Perl: the binding beside the originals"
  echo
  echo "One pm_pre_dispatch + pm_post_dispatch pair (pre_dispatch + post_dispatch for"
  echo "the Engine's) in a real worker, timed with Time::HiRes over the whole loop (an"
  echo "empty loop costs about the perl-empty-loop figure), and the system calls per"
  echo "pair under strace; then a PSGI hello (bench/apps/hello.psgi) under"
  echo "\`plackup -s FCGI -E deployment --nproc 2 --manager CLASS\` behind nginx, wrk -t1"
  echo "-c16, median of the rounds. Ratio: the original's figure ÷ the binding's (time),"
  echo "or the binding's ÷ the original's (throughput). Target (PERFORMANCE.md): a pair"
  echo "≤ 0.5 µs and 0 system calls."
  echo
  echo "| measure | original | XS (libfcgi-pm) | ratio | target met |"
  echo "|---|---|---|---|---|"
  awk "$dispatch_awk"'
    $3 == "throughput" && ($1 == "plack-procmanager" || $1 == "plack-xs") { tput[$1] = tput[$1] " " $4 }
    END {
      pair("FCGI::ProcManager → FCGI::ProcManager::XS", "fcgi-procmanager", "fcgi-procmanager-xs")
      pair("FCGI::Engine::ProcManager → FCGI::Engine::ProcManager::XS", "fcgi-engine", "fcgi-engine-xs")
      a = median(tput["plack-procmanager"]); b = median(tput["plack-xs"])
      if (a != "" && b != "")
        printf "| PSGI hello behind nginx, plackup -s FCGI, 2 workers | %.0f/s | %.0f/s | %.2f× | – |\n", a, b, b / a
    }
    function pair(label, o, x) {
      if (!(o in ns) || !(x in ns)) return
      printf "| pair: %s | %.0f ns, %s syscalls | %.0f ns, %s syscalls | %.0f× | %s |\n", label, ns[o], sc[o], ns[x], sc[x],
        ns[o] / ns[x], (ns[x] <= 500 && sc[x] + 0 == 0) ? "yes" : "**no**"
    }' "$raw"
  echo
}

# The Rust crate beside the C library: the dispatch pair through the safe API, and
# the crate's hello example behind nginx against examples/hello.
rust_rows() {
  grep -q '^dispatch - fcgi-pm-rust ' "$raw" || return 0
  echo "## Rust: the crate beside the C library"
  echo
  echo "One request's dispatch pair in a real worker: in C pm_pre_dispatch +"
  echo "pm_post_dispatch (Google Benchmark), in Rust \`worker.dispatch()\` then"
  echo "\`finish()\` through the safe API (benches/dispatch.rs, std::time::Instant over"
  echo "the whole loop), and the system calls per pair under strace; then hello behind"
  echo "nginx, 2 workers, wrk -t1 -c16, median of the rounds: examples/hello (C) against"
  echo "the crate's examples/hello. Ratio: C's figure ÷ Rust's (time), Rust's ÷ C's"
  echo "(throughput). Targets (issue 15): a pair ≤ 60 ns and 0 system calls; throughput"
  echo "≥ 0.97× C's."
  echo
  echo "| measure | C | Rust | ratio | target met |"
  echo "|---|---|---|---|---|"
  awk "$dispatch_awk"'
    $3 == "throughput" && ($1 == "fcgi-pm" || $1 == "rust-hello") { tput[$1] = tput[$1] " " $4 }
    END {
      printf "| dispatch pair | %.1f ns, %s syscalls | %.1f ns, %s syscalls | %.2f× | %s |\n", ns["fcgi-pm"], sc["fcgi-pm"],
        ns["fcgi-pm-rust"], sc["fcgi-pm-rust"], ns["fcgi-pm"] / ns["fcgi-pm-rust"],
        (ns["fcgi-pm-rust"] <= 60 && sc["fcgi-pm-rust"] + 0 == 0) ? "yes" : "**no**"
      a = median(tput["fcgi-pm"]); b = median(tput["rust-hello"])
      if (a != "" && b != "")
        printf "| hello behind nginx, 2 workers | %.0f/s | %.0f/s | %.2f× | %s |\n", a, b, b / a, (b / a >= 0.97) ? "yes" : "**no**"
    }' "$raw"
  echo
}

# The Go package beside the C library and beside net/http/fcgi alone: hello behind
# nginx, the life cycle with Go workers, the reload storm.
go_rows() {
  grep -q '^go-hello 2 throughput ' "$raw" || return 0
  echo "## Go: the fcgipm package beside C and beside net/http/fcgi alone"
  echo
  echo "Hello behind nginx, 2 workers, wrk -t1 -c16, median of the rounds: C's"
  echo "examples/hello; the package's examples/hello (the manager forks the workers,"
  echo "each serves through net/http/fcgi with GOMAXPROCS 1); and the same handler on"
  echo "net/http/fcgi alone (apps/go_plain.go, GOMAXPROCS 1) under \`spawn-fcgi -F 2\`,"
  echo "which supervises nothing. Then the life cycle (lifecycle.c, medians of the"
  echo "rounds, ms) of examples/hello in C and in Go, and the requests that failed"
  echo "while each was reloaded every 20 ms under load. Target (issue 16): the"
  echo "package's throughput ≥ 0.98× net/http/fcgi's under spawn-fcgi."
  echo
  echo "| measure | C (libfcgi-pm) | Go (fcgipm) | net/http/fcgi, spawn-fcgi | Go ÷ C | Go ÷ spawn-fcgi | target met |"
  echo "|---|---|---|---|---|---|---|"
  awk "$dispatch_awk"'
    $3 == "throughput" && ($1 == "fcgi-pm" || $1 ~ /^go-/) { tput[$1] = tput[$1] " " $4 }
    $3 == "storm" && ($1 == "fcgi-pm" || $1 == "go-hello") { storm[$1] = $6 " of " $5 }
    $3 ~ /^(startup|reload|stop)$/ && ($1 == "fcgi-pm" || $1 == "go-hello") && $4 != "-" {
      life[$1, $2, $3] = $4; if (!($2 in seen_n)) { seen_n[$2] = 1; sizes[++nsizes] = $2 } }
    END {
      c = median(tput["fcgi-pm"]); g = median(tput["go-hello"]); p = median(tput["go-spawn-fcgi"])
      if (c != "" && g != "" && p != "")
        printf "| hello behind nginx, 2 workers (req/s) | %.0f | %.0f | %.0f | %.2f× | %.2f× | %s |\n", c, g, p, g / c, g / p,
          (g / p >= 0.98) ? "yes" : "**no**"
      m = median(tput["go-hello-maxprocs2"])
      if (m != "" && g != "")
        printf "| the same, GOMAXPROCS 2 in each Go worker (req/s) | – | %.0f | – | – | – | %s |\n", m,
          (g >= m) ? "GOMAXPROCS 1 serves more" : "**GOMAXPROCS 2 serves more**"
      for (i = 1; i <= nsizes; i++) {
        n = sizes[i]
        split("startup reload stop", ms, " ")
        for (j = 1; j <= 3; j++)
          if (("fcgi-pm", n, ms[j]) in life && ("go-hello", n, ms[j]) in life)
            printf "| %s, n=%s (ms) | %s | %s | – | %.2f× | – | – |\n", ms[j], n, life["fcgi-pm", n, ms[j]],
              life["go-hello", n, ms[j]], life["go-hello", n, ms[j]] / life["fcgi-pm", n, ms[j]]
      }
      if ("go-hello" in storm)
        printf "| failed while reloaded every 20 ms | %s | %s | – | – | – | – |\n", storm["fcgi-pm"], storm["go-hello"]
    }' "$raw"
  echo
}

# The live status: the request path with the scoreboard on and off, and one
# `fcgi-pm status --json` of a big pool.
status_rows() {
  grep -q '^status - fcgi-pm-json ' "$raw" || return 0
  echo "## Live status: what the scoreboard costs"
  echo
  echo "One pm_pre_dispatch + pm_post_dispatch pair in a real worker (Google Benchmark,"
  echo "medians of the repetitions, and system calls per pair under strace): with the"
  echo "scoreboard (the default: each request's start, end and duration written into the"
  echo "worker's slot), without it (\"scoreboard\" 0), and with the request named first"
  echo "(pm_set_request, as the fcgi_pm_fcgx.h accept loop does). Then one"
  echo "\`fcgi-pm status --json\` of a pool of 1024 workers, the whole command timed from"
  echo "its fork to its exit (median of the runs, ms): examples/hello under the fcgi-pm"
  echo "program at rest (each worker's CPU and memory from the manager's last look, in"
  echo "the scoreboard), and /bin/sleep under it (programs not on the library: each"
  echo "worker's read from /proc, the worst case, as for a pool all busy); each also"
  echo "with --no-proc. /bin/true timed the same way is the floor of any command here."
  echo "Targets (issue 17): a pair ≤ 50 ns and 0 system calls with the scoreboard on;"
  echo "status --json of 1024 workers ≤ 20 ms."
  echo
  echo "| measure | figure | target | met |"
  echo "|---|---|---|---|"
  awk "$dispatch_awk"'
    $1 == "status" { st[$3] = $5 }
    END {
      printf "| dispatch pair, scoreboard on | %.1f ns, %s syscalls | ≤ 50 ns, 0 | %s |\n", ns["fcgi-pm"], sc["fcgi-pm"],
        (ns["fcgi-pm"] <= 50 && sc["fcgi-pm"] + 0 == 0) ? "yes" : "**no**"
      printf "| dispatch pair, scoreboard off | %.1f ns, %s syscalls | – | – |\n", ns["fcgi-pm-no-scoreboard"],
        sc["fcgi-pm-no-scoreboard"]
      printf "| pm_set_request + the pair | %.1f ns, %s syscalls | – | – |\n", ns["fcgi-pm-named"], sc["fcgi-pm-named"]
      printf "| the scoreboard'"'"'s cost per request | %.1f ns | – | – |\n", ns["fcgi-pm"] - ns["fcgi-pm-no-scoreboard"]
      printf "| status --json, 1024 workers | %.2f ms | ≤ 20 ms | %s |\n", st["fcgi-pm-json"],
        (st["fcgi-pm-json"] <= 20) ? "yes" : "**no**"
      printf "| status --json, 1024 workers, --no-proc | %.2f ms | – | – |\n", st["fcgi-pm-json-no-proc"]
      printf "| status --json, 1024 workers not on the library (all from /proc) | %.2f ms | – | – |\n",
        st["fcgi-pm-json-exec"]
      printf "| status --json, 1024 workers not on the library, --no-proc | %.2f ms | – | – |\n",
        st["fcgi-pm-json-exec-no-proc"]
      if ("true" in st) printf "| /bin/true, timed the same way | %.2f ms | – | – |\n", st["true"]
    }' "$raw"
  echo
}

{
  echo "# fcgi-pm beside its peers"
  echo
  machine
  echo
  echo "Medians (times in ms unless stated); the ratio columns are the peer's figure"
  echo "divided by fcgi-pm's (library), measured in the same run: above 1, fcgi-pm is"
  echo "faster. \"target\" is PERFORMANCE.md's for fcgi-pm, \"met\" says whether the"
  echo "library's figure meets it. \"floor\" is a yardstick, not a peer: apps/floor.c"
  echo "forks children that only wait for a signal and does nothing else, so its times"
  echo "are what fork, exit and wait cost here; \"floor, the library's workers\" is the"
  echo "same manager whose children run examples/hello's loop and exit as its workers do"
  echo "(apps/floor.c, return mode). A target below a floor is out of reach on this"
  echo "machine. Method: bench/run (bench/README.md)."
  echo
  awk -f "$(dirname "$0")/table.awk" "$raw"
  echo
  stop_taken_apart
  echo
  status_rows
  sh "$(dirname "$0")/pool.sh" --table "$raw"
  perl_rows
  rust_rows
  go_rows
  echo "## Raw figures"
  echo
  echo "system n measure median min max samples (life cycle); dispatch: ns median, spread, syscalls per pair;"
  echo "status: workers, ms median, min, max, runs;"
  echo "throughput and storm: requests/s, requests, failed."
  echo
  echo '```'
  cat "$raw"
  echo '```'
} >"$md"
cp "$md" "$dir/latest$([ "$quick" = 1 ] && echo -quick || true).md"

# The chart: reload and stop time against n, one line per system (full runs only).
if [ "$quick" = 0 ] && command -v gnuplot >/dev/null; then
  data=$(mktemp -d)
  for s in fcgi-pm fcgi-pm-cli procmanager engine multiwatch floor floor-return; do
    for m in reload stop; do
      awk -v s="$s" -v m="$m" '$1 == s && $3 == m && $4 != "-" {print $2, $4}' "$raw" | sort -n >"$data/$s-$m"
    done
  done
  gnuplot <<GP
set terminal pngcairo size 1100,480 noenhanced
set output "$dir/lifecycle.png"
set multiplot layout 1,2 title "HUP (reload) and TERM (stop) against pool size, $(hostname -s), $(date -u +%Y-%m-%d)"
set logscale xy
set xlabel "workers (n)"
set ylabel "ms (median)"
set key top left
set xtics (4, 64, 1024)
do for [m in "reload stop"] {
  set title m
  plot for [s in "fcgi-pm fcgi-pm-cli procmanager engine multiwatch floor floor-return"] "$data/".s."-".m using 1:2 with linespoints title s
}
unset multiplot
GP
  rm -rf "$data"
  echo "chart: $dir/lifecycle.png" >&2
fi
cat "$md"
echo "results: $md" >&2
