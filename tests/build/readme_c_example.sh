#!/bin/sh
# The README's C example ("Using it from C"), taken verbatim from README.md but for
# its two paths (/run/app.sock, /run/app.pid, swapped for temporary ones), built
# against the installed library with the pkg-config line it names, and run twice:
# the first instance serves "hello"; a second one with the same pid file and socket
# is refused naming the pid file, and the first one's socket is still the same file
# (same inode) and still serves.
#   readme_c_example.sh BUILD_DIR SOURCE_DIR [CC [CFLAGS]]
set -eu
build_dir=$1 source_dir=$(cd "$2" && pwd)
cc=${3:-cc} cflags=${4:-}
work=$(mktemp -d /tmp/fcgi-pm-readme-XXXXXX)
sock=$work/app.sock pidf=$work/app.pid
first= second=
trap 'for p in $second $first; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done; exit 1; }

# The first ```c block after the "## Using it from C" heading, up to its closing fence.
awk '/^## Using it from C$/ { s = 1; next }
     s == 1 && /^```c$/ { s = 2; next }
     s == 2 && /^```$/ { exit }
     s == 2 { print }' "$source_dir/README.md" >"$work/example.c"
[ -s "$work/example.c" ] || fail "no \`\`\`c block under \"Using it from C\" in README.md"
for path in /run/app.sock /run/app.pid; do
  grep -qF "\"$path\"" "$work/example.c" || fail "the example no longer uses \"$path\""
done
sed -e "s#\"/run/app.sock\"#\"$sock\"#g" -e "s#\"/run/app.pid\"#\"$pidf\"#g" "$work/example.c" >"$work/app.c"

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
libdir=$(ls -d "$work"/prefix/lib*)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# The compile line of the example's first comment, warnings as errors.
# shellcheck disable=SC2046,SC2086
$cc $cflags -Wall -Wextra -Werror -o "$work/app" "$work/app.c" $(pkg-config --cflags --libs fcgi-pm fcgi) \
  -Wl,-rpath,"$libdir" 2>"$work/compile.log" || fail "the example does not compile"

ask() {  # one request through cgi-fcgi; prints the reply
  REQUEST_METHOD=GET SCRIPT_NAME=/ QUERY_STRING= timeout 10 cgi-fcgi -bind -connect "$sock" 2>&1 || true
}
inode() { stat -c '%d:%i' "$1" 2>/dev/null || echo none; }

"$work/app" 2>"$work/first.log" &
first=$!
for _ in $(seq 200); do
  [ -S "$sock" ] && [ "$(grep -c 'server (pid [0-9]*): initialized' "$work/first.log")" -ge 4 ] && break
  kill -0 "$first" 2>/dev/null || fail "instance 1 exited"
  sleep 0.05
done
[ -S "$sock" ] || fail "instance 1 created no socket"
[ "$(cat "$pidf" 2>/dev/null)" = "$first" ] || fail "the pid file does not name instance 1 ($first)"
reply=$(ask)
case $reply in *hello*) ;; *) fail "instance 1: bad reply: $reply" ;; esac
before=$(inode "$sock")
echo "instance 1 (pid $first) serves $sock (inode $before)"

status=0
timeout 20 "$work/app" 2>"$work/second.log" || status=$?
[ "$status" -ne 0 ] || fail "instance 2 exited 0: it was not refused"
[ "$status" -ne 124 ] || fail "instance 2 was not refused: still running after 20 s"
grep -qF "$pidf" "$work/second.log" || fail "instance 2's message does not name the pid file"
echo "instance 2 refused (exit $status): $(head -n 1 "$work/second.log")"

after=$(inode "$sock")
[ "$after" = "$before" ] || fail "instance 1's socket was replaced by instance 2 (inode $before, now $after)"
reply=$(ask)
case $reply in *hello*) ;; *) fail "instance 1 no longer serves after instance 2: $reply" ;; esac
[ "$(cat "$pidf" 2>/dev/null)" = "$first" ] || fail "the pid file no longer names instance 1"
echo "instance 1's socket unchanged and serving"

kill -TERM "$first"
status=0
wait "$first" || status=$?
first=
[ "$status" -eq 0 ] || fail "instance 1 exited $status after TERM"
[ ! -e "$pidf" ] || fail "instance 1 left its pid file behind"
echo "instance 1 stopped with TERM, exit 0"
