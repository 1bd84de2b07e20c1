#!/bin/sh
# CTest's driver for the Perl distribution: copy, build, prove.
# Usage: ctest.sh SOURCE_DIR BUILD_DIR PKG_CONFIG_DIR LIB_DIR PROJECT_DIR
set -eu
src=$1 dist=$2 pc=$3 lib=$4 project=$5
rm -rf "$dist"
mkdir -p "$dist"
cp -R "$src/." "$dist/"
rm -f "$dist/CMakeLists.txt" "$dist/ctest.sh"
cd "$dist"
export PKG_CONFIG_PATH="$pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The project's own programs the tests use (cgi-fcgi is libfcgi-bin's).
export FCGI_PM_PROJECT_DIR="$project"
perl Makefile.PL >/dev/null
make >/dev/null
exec prove -b -v t/
