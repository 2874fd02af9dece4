#!/bin/sh
# Rewrites the golden expectations from a build: tests/update_golden.sh build/mwtc
# Review `git diff tests/` afterwards: a golden file is a claim about behaviour.
set -eu
mwtc=$(realpath "${1:-build/mwtc}")
cd "$(dirname "$0")"
for f in parse/*.mwt; do
    [ -e "$f" ] || continue
    n=${f%.mwt}
    (cd parse && "$mwtc" dump ast "$(basename "$f")" > "$(basename "$n").ast")
    (cd parse && "$mwtc" check "$(basename "$f")" > "$(basename "$n").out")
done
for f in ir/*.mwt; do
    [ -e "$f" ] || continue
    (cd ir && "$mwtc" dump ir "$(basename "$f")" > "$(basename "${f%.mwt}").ir")
done
for f in errors/*.mwt; do
    [ -e "$f" ] || continue
    n=${f%.mwt}
    (cd errors && { "$mwtc" check "$(basename "$f")" 2> "$(basename "$n").err" > /dev/null; rc=$?; } || true
     [ "${rc:-1}" = 1 ] || echo "warning: $f exited $rc, not 1" >&2)
done
