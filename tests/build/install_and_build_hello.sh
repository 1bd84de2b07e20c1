#!/bin/sh
# Installs fcgi-pm into a temporary prefix, builds examples/hello.c out of tree with
# pkg-config (and a static link, and a CMake find_package consumer), runs it under the
# manager and asks it for a page with cgi-fcgi.
set -eu
build_dir=$1 source_dir=$(cd "$2" && pwd)
cc=${3:-cc} cflags=${4:-}  # the build's compiler and sanitizer flags
work=$(mktemp -d /tmp/fcgi-pm-install-XXXXXX)
manager=
trap '[ -z "$manager" ] || kill $manager 2>/dev/null || true; rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
libdir=$(ls -d "$work"/prefix/lib*)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
pkg-config --exists fcgi-pm
test "$(pkg-config --modversion fcgi-pm)" = "$(sed -n 's/^#define PM_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' "$source_dir/include/fcgi_pm.h" | paste -sd.)"
ls "$libdir"/libfcgi-pm.so.0 "$libdir"/libfcgi-pm.a "$libdir"/cmake/fcgi-pm/fcgi-pm-config.cmake >/dev/null
# The program and its man page: rendered without a warning, and naming every long
# option --help lists.
man_page=$work/prefix/share/man/man1/fcgi-pm.1
"$work/prefix/bin/fcgi-pm" --version | grep -q "^fcgi-pm $(pkg-config --modversion fcgi-pm)$"
command -v man >/dev/null || { echo "man is not installed (.ci/test installs man-db)"; exit 1; }
warnings=$(MANWIDTH=80 man --warnings -l "$man_page" 2>&1 >/dev/null)
[ -z "$warnings" ] || { echo "fcgi-pm.1: $warnings"; exit 1; }
for opt in $("$work/prefix/bin/fcgi-pm" --help | grep -o -- '--[a-z-]*' | sort -u); do
  grep -q -- "$(printf '%s' "$opt" | sed 's/-/\\\\-/g')" "$man_page" || { echo "fcgi-pm.1 lacks $opt"; exit 1; }
done

$cc $cflags -o "$work/hello" "$source_dir/examples/hello.c" $(pkg-config --cflags --libs fcgi-pm) $(pkg-config --libs fcgi) \
   -Wl,-rpath,"$libdir"
$cc $cflags -o "$work/hello-static" "$source_dir/examples/hello.c" $(pkg-config --cflags fcgi-pm) \
   "$libdir/libfcgi-pm.a" $(pkg-config --libs --static fcgi-pm | sed 's/-lfcgi-pm//') $(pkg-config --libs fcgi)
! ldd "$work/hello-static" | grep -q fcgi-pm

mkdir -p "$work/consumer"
major_minor=$(pkg-config --modversion fcgi-pm | cut -d. -f1,2)
cat > "$work/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(fcgi-pm $major_minor REQUIRED)
add_executable(uses_pm "$source_dir/tests/build/header_c.c" main.c)
target_link_libraries(uses_pm PRIVATE fcgi-pm::fcgi-pm)
CMAKE
echo 'int header_c_uses(void); int main(void) { return header_c_uses() == 0; }' > "$work/consumer/main.c"
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$cflags" >/dev/null
cmake --build "$work/consumer/build" >/dev/null

for bin in hello hello-static; do
  sock="$work/$bin.sock"
  "$work/$bin" "$sock" 2 2>"$work/$bin.log" &
  manager=$!
  for _ in $(seq 100); do [ -S "$sock" ] && grep -q 'server (pid [0-9]*): initialized' "$work/$bin.log" && break; sleep 0.05; done
  reply=$(REQUEST_METHOD=GET SCRIPT_NAME=/ QUERY_STRING= cgi-fcgi -bind -connect "$sock")
  echo "$reply" | grep -q "Hello from worker" || { echo "$bin: bad reply: $reply"; cat "$work/$bin.log"; exit 1; }
  kill -TERM $manager
  wait $manager || { echo "$bin: manager exit status $?"; cat "$work/$bin.log"; exit 1; }
  grep -q 'dying: safe exit from signal TERM' "$work/$bin.log"
  echo "$bin: served a request and stopped cleanly"
done
