#!/bin/sh
# CTest's driver for the Rust workspace.
# Usage: ctest.sh CARGO WORKSPACE build             builds every target (examples, tests)
#        ctest.sh CARGO WORKSPACE test ARGS...      cargo test ARGS...
#        ctest.sh CARGO WORKSPACE lint              rustfmt's check and clippy, warnings as errors
#        ctest.sh CARGO WORKSPACE api               the safe crate's unit tests and doctests
#        ctest.sh CARGO WORKSPACE install BUILD_DIR on its own, as a user builds it: the
#                 library installed into a scratch prefix, the workspace built against
#                 that (pkg-config) and its header check run
# PKG_CONFIG_PATH, LD_LIBRARY_PATH, CARGO_HOME and CARGO_TARGET_DIR come from CTest.
set -eu
cargo=$1 ws=$2 mode=$3
shift 3
cd "$ws"
case $mode in
  build)
    exec "$cargo" build --offline --workspace --all-targets ;;
  test)
    exec "$cargo" test --offline "$@" ;;
  lint)
    "$cargo" fmt --all --check
    exec "$cargo" clippy --offline --workspace --all-targets -- -D warnings ;;
  api)
    "$cargo" test --offline -p fcgi-pm --lib --test api
    exec "$cargo" test --offline -p fcgi-pm --doc ;;
  install)
    build=$1
    work=$(mktemp -d /tmp/fcgi-pm-rust-install-XXXXXX)
    trap 'rm -rf "$work"' EXIT
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    libdir=$(ls -d "$work"/prefix/lib*)
    export PKG_CONFIG_PATH="$libdir/pkgconfig" LD_LIBRARY_PATH="$libdir" CARGO_TARGET_DIR="$work/target"
    "$cargo" test --offline -p fcgi-pm-sys
    exec "$cargo" build --offline -p fcgi-pm --example hello ;;
esac
