# Helpers shared by the CLI tests (sourced): counted checks and waits.
passed=0 failed=0

check() {  # description, then a command that must succeed
  desc=$1; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAIL: $desc"; failed=$((failed + 1)); fi
}
wait_for() {  # count pattern file: the file has count lines matching within 5 s
  for _ in $(seq 500); do
    [ "$(grep -c -- "$2" "$3" 2>/dev/null)" -ge "$1" ] && return 0
    sleep 0.01
  done
  return 1
}
children() { cat "/proc/$1/task/$1/children" 2>/dev/null; }
gone() {  # pid: exited (and reaped) within 5 s
  for _ in $(seq 500); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.01; done
  return 1
}
all_gone() {  # pids...: every one exited within 5 s
  for p in "$@"; do gone "$p" || { echo "  worker $p still running"; return 1; }; done
}
