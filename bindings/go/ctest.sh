#!/bin/sh
# CTest's driver for the Go module.
# Usage: ctest.sh GO MODULE build              builds the package and the example
#        ctest.sh GO MODULE lint               gofmt's check and go vet
#        ctest.sh GO MODULE test               go test: the API's tests and the process tests
#        ctest.sh GO MODULE install BUILD_DIR  on its own, as a user builds it: the library
#                 installed into a scratch prefix, the module built against that
#                 (pkg-config) and its API tests run
# PKG_CONFIG_PATH, LD_LIBRARY_PATH, GOCACHE, GOPATH (all in the build tree) come from
# CTest; nothing is fetched (GOPROXY=off, GOFLAGS=-mod=mod: no module outside Go's own).
set -eu
go=$1 mod=$2 mode=$3
shift 3
cd "$mod"
export GOPROXY=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=1
case $mode in
  build)
    exec "$go" build ./... ;;
  lint)
    unformatted=$(gofmt -l .)
    [ -z "$unformatted" ] || { echo "not gofmt'd: $unformatted" >&2; exit 1; }
    exec "$go" vet ./... ;;
  test)
    exec "$go" test -count=1 -v ./... ;;
  install)
    build=$1
    work=$(mktemp -d /tmp/fcgi-pm-go-install-XXXXXX)
    trap 'rm -rf "$work"' EXIT
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    libdir=$(ls -d "$work"/prefix/lib*)
    export PKG_CONFIG_PATH="$libdir/pkgconfig" LD_LIBRARY_PATH="$libdir"
    "$go" build -o "$work/hello" ./examples/hello
    exec "$go" test -count=1 -run '^Test(Config|Error|Validate|Listen|Version|Excluded)' . ;;
esac
