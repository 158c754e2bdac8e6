#!/usr/bin/env bash
# Fails when a shortcoming mark has no category: every TODO, FIXME or XXX
# in the project's code must read `TODO-<category>: what is missing and
# what it costs`, with category one of correctness, robustness, cleanup,
# completeness, security, perf.
set -euo pipefail
cd "$(dirname "$0")/.."
categories='correctness|robustness|cleanup|completeness|security|perf'
files=$(git ls-files -co --exclude-standard -- '*.rs' '*.c' '*.h' '*.p4' '*.py' '*.sh' '*.toml' '*.yaml' '*.yml' \
    | grep -v '^scripts/check-marks.sh$' || true)
[ -z "$files" ] && exit 0
bad=$(printf '%s\n' $files | xargs grep -nE '\b(TODO|FIXME|XXX)\b' 2>/dev/null \
    | grep -vE "TODO-($categories): " || true)
if [ -n "$bad" ]; then
    echo "shortcoming marks without a category (write TODO-<$categories>: ...):" >&2
    echo "$bad" >&2
    exit 1
fi
echo "all shortcoming marks carry a category"
