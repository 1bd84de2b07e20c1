#!/bin/sh
# CTest's driver for the Perl distribution.
# Usage: ctest.sh build SOURCE_DIR DIST_DIR   copies the sources to DIST_DIR, builds
#        ctest.sh prove DIST_DIR              runs t/ with prove
#        ctest.sh compare DIST_DIR SCRIPT     the comparison with FCGI::ProcManager
#        ctest.sh install SOURCE_DIR BUILD_DIR  on its own, as a user installs it: the
#                 library installed into a scratch prefix, the distribution built
#                 against that (pkg-config), installed beside it, and a test run
#                 with the installed module
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
  install)
    src=$2 build=$3
    work=$(mktemp -d /tmp/fcgi-pm-perl-install-XXXXXX)
    trap 'rm -rf "$work"' EXIT
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    libdir=$(ls -d "$work"/prefix/lib*)
    unset LD_LIBRARY_PATH PERL5LIB
    export PKG_CONFIG_PATH="$libdir/pkgconfig"
    mkdir -p "$work/dist"
    cp -R "$src/." "$work/dist/"
    cd "$work/dist"
    perl Makefile.PL INSTALL_BASE="$work/perl" >/dev/null
    make >/dev/null
    make install >/dev/null
    rm -rf blib
    export PERL5LIB="$work/perl/lib/perl5" LD_LIBRARY_PATH="$libdir"
    perl -MFCGI::ProcManager::XS -e 'print "installed: $INC{q(FCGI/ProcManager/XS.pm)}\n"'
    exec prove t/10-lifecycle.t t/50-engine.t ;;
esac
