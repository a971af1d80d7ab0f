#!/usr/bin/env bash
# check_man.sh TALE_BIN VERSION [OUT_DIR] - the manual pages cannot rot:
# docs/man/tale.1 and docs/man/repocache.3 must format without a single
# groff warning, carry VERSION, and name what the code has: every command
# `tale help` lists, every header of include/repocache/ (and the generated
# version.h), every setting of .env.example. With OUT_DIR, the formatted
# pages are written there as text. Run by CTest (man_pages) and by the
# `docs` build target.
set -euo pipefail
cd "$(dirname "$0")/.."
tale=$1 version=$2 out=${3:-}
bad=0
fail() { echo "man: $*"; bad=1; }

for page in docs/man/tale.1 docs/man/repocache.3; do
    warnings=$(groff -man -Tutf8 -ww -z "$page" 2>&1 || true)
    [ -z "$warnings" ] || fail "$page: $warnings"
    grep -q "^\.TH .*\"repocache $version\"" "$page" || fail "$page: .TH does not say repocache $version"
    if [ -n "$out" ]; then
        mkdir -p "$out"
        groff -man -Tutf8 -P-cbou "$page" >"$out/$(basename "$page").txt"
    fi
done

commands=$("$tale" help | awk '/^  [a-z]+ / {print $1}')
[ -n "$commands" ] || fail "tale help lists no command"
for c in $commands; do
    grep -q "^\.SS $c\$" docs/man/tale.1 || fail "tale.1 has no section for the command $c"
done

for h in include/repocache/*.h version.h; do
    h=$(basename "$h")
    grep -qF ".SS <repocache/$h>" docs/man/repocache.3 || fail "repocache.3 has no section for $h"
done

for v in $(grep -oE '^(# ?)?[A-Z][A-Z0-9_]+=' .env.example | sed -E 's/^# ?//; s/=$//' | sort -u); do
    grep -qE "(^|[ \"])$v([ ,\"]|$)" docs/man/repocache.3 || fail "repocache.3 does not name the setting $v"
done

[ $bad = 0 ] && echo "man: ok (tale.1: $(echo "$commands" | wc -w) commands; repocache.3: every header and setting)"
exit $bad
