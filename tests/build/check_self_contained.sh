#!/bin/sh
# Fails if a file of the source tree points outside the repository, into the
# project's shared spec directory (by its relative path or by its name): a clone
# must be complete in itself. Prints each offending line.
#   check_self_contained.sh SOURCE_DIR [BUILD_DIR]
# Tracked files when the source tree is a git checkout of its own; otherwise every
# file under it but .git and the build directory.
set -eu
src=$(cd "$1" && pwd -P)
build=$(cd "${2:-$1}" && pwd -P)
# Bracketed so that this file does not match itself.
pattern='[.][.]/shared|shared/[s]pec'
top=$(git -C "$src" rev-parse --show-toplevel 2>/dev/null || true)
if [ -n "$top" ] && [ "$(cd "$top" && pwd -P)" = "$src" ]; then
  found=$(git -C "$src" grep -nIE "$pattern" || true)
else
  skip=./.git
  case $build in "$src"/*) skip=".${build#"$src"}" ;; esac  # a build directory inside the tree
  found=$(cd "$src" && find . \( -path ./.git -o -path "$skip" \) -prune -o -type f -print |
          while IFS= read -r f; do grep -HnIE "$pattern" "$f" || true; done)
fi
if [ -n "$found" ]; then
  echo "files referring outside the repository:"
  echo "$found"
  exit 1
fi
echo "no file refers outside the repository"
