#!/usr/bin/env bash
# check_sizes.sh - fails when a file of src/ is over 600 lines or a function
# there is over 60 lines (body, braces included). Tables of data are not
# functions and are not counted. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_FILE=${MAX_FILE:-600}
MAX_FN=${MAX_FN:-60}
bad=0
for f in src/*/*.[ch]; do
    n=$(wc -l <"$f")
    if [ "$n" -gt "$MAX_FILE" ]; then
        echo "sizes: $f has $n lines (over $MAX_FILE)"
        bad=1
    fi
done
# A function body opens with "{" alone at the start of a line, after a line
# ending in ")", and closes with "}" alone at the start of a line.
out=$(awk -v max="$MAX_FN" '
    FNR == 1 { inside = 0 }
    /^\{$/ && prev ~ /\)$/ { inside = 1; start = FNR; name = sig; next }
    inside && /^\}/ { inside = 0; len = FNR - start + 1;
        if (len > max) printf "sizes: %s:%d: %s is %d lines (over %d)\n", FILENAME, start, name, len, max }
    { if ($0 ~ /^[A-Za-z_].*\(/) sig = $0; prev = $0 }
' src/*/*.c)
if [ -n "$out" ]; then
    echo "$out"
    bad=1
fi
[ $bad = 0 ] && echo "sizes: ok (files <= $MAX_FILE lines, functions <= $MAX_FN lines)"
exit $bad
