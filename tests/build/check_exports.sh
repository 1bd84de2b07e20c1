#!/bin/sh
# Fails if the shared library exports any symbol outside the pm_* C ABI.
set -eu
lib=$1
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}')
[ -n "$exported" ] || { echo "no exported symbol found in $lib"; exit 1; }
bad=$(printf '%s\n' "$exported" | grep -v '^pm_' || true)
if [ -n "$bad" ]; then
  echo "symbols exported outside pm_*:"; printf '%s\n' "$bad"; exit 1
fi
echo "exported: $(printf '%s\n' "$exported" | wc -l) symbols, all pm_*"
