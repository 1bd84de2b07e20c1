#!/bin/sh
# CTest's driver for the Perl distribution.
# Usage: ctest.sh build SOURCE_DIR DIST_DIR   copies the sources to DIST_DIR, builds
#        ctest.sh prove DIST_DIR              runs t/ with prove
#        ctest.sh compare DIST_DIR SCRIPT     the comparison with FCGI::ProcManager
# PKG_CONFIG_PATH and LD_LIBRARY_PATH come from CTest (the in-tree library).
set -eu
mode=$1
case $mode in
  build)
    src=$2 dist=$3
    rm -rf "$dist"
    mkdir -p "$dist"
    cp -R "$src/." "$dist/"
    rm -f "$dist/CMakeLists.txt" "$dist/ctest.sh"
    cd "$dist"
    perl Makefile.PL
    make ;;
  prove)
    cd "$2"
    exec prove -b -v t/ ;;
  compare)
    dist=$(cd "$2" && pwd)
    PERL5LIB="$dist/blib/lib:$dist/blib/arch${PERL5LIB:+:$PERL5LIB}" \
      exec sh "$3" --perl-class FCGI::ProcManager::XS::Constrained ;;
esac
