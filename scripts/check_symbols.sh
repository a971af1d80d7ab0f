#!/usr/bin/env bash
# check_symbols.sh LIB.so [BUILD_DIR] - fails unless the shared library's
# dynamic symbol table (nm -D --defined-only) holds exactly the functions and
# data declared in include/repocache/*.h: any symbol exported but not
# declared (an internal leaking) or declared but not exported (a declaration
# without RC_API) is named. The declarations are read from the preprocessed
# headers (comments, macros and struct bodies gone); BUILD_DIR/include holds
# the generated version.h (default: the directory of LIB.so).
set -euo pipefail
cd "$(dirname "$0")/.."
lib=$1
gen=${2:-$(dirname "$lib")}/include
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Every header, included once.
for h in include/repocache/*.h "$gen"/repocache/*.h; do
    echo "#include \"repocache/$(basename "$h")\""
done >"$tmp/all.c"

# File-scope declarations: drop {...} bodies, split on ';', skip typedefs;
# the name is the last identifier before the first '(' (a function) or of an
# extern declaration (data).
${CC:-cc} -E -P -DRC_API= -Iinclude -I"$gen" "$tmp/all.c" | tr '\n' ' ' | awk '
{
    out = ""; depth = 0
    for (i = 1; i <= length($0); i++) {
        c = substr($0, i, 1)
        if (c == "{") { depth++; continue }
        if (c == "}") { depth--; continue }
        if (depth == 0) out = out c
    }
    n = split(out, stmt, ";")
    for (k = 1; k <= n; k++) {
        s = stmt[k]
        sub(/^[ \t]+/, "", s)
        if (s ~ /^typedef/) continue
        p = index(s, "(")
        if (p > 0) head = substr(s, 1, p - 1)
        else if (s ~ /^extern/) head = s
        else continue
        if (match(head, /[A-Za-z_][A-Za-z0-9_]*[ \t]*$/)) {
            name = substr(head, RSTART, RLENGTH)
            gsub(/[ \t]/, "", name)
            print name
        }
    }
}' | grep '^rc_' | sort -u >"$tmp/declared"

nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u >"$tmp/exported"

extra=$(comm -13 "$tmp/declared" "$tmp/exported")
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
[ -z "$extra" ] || { echo "symbols: exported but not declared in include/repocache/:"; echo "$extra" | sed 's/^/  /'; }
[ -z "$missing" ] || { echo "symbols: declared but not exported (RC_API missing?):"; echo "$missing" | sed 's/^/  /'; }
[ -z "$extra$missing" ] || exit 1
echo "symbols: ok ($(wc -l <"$tmp/declared") declared, the same exported by $(basename "$lib"))"
