#!/usr/bin/env bash
# check_layers.sh - fails when a file of src/ (or a public header) includes a
# header of a higher layer, of a sibling layer, or a header another folder
# keeps private. Run by .ci/run; prints every violation.
#
# The layers, lowest first (a layer uses only those below it):
#   core        status codes, entities, the JSON codec, settings, utilities
#   cache       the cache service            (uses core)
#   strategies  the strategy type and tables (uses core)
#   repository  vtable, SQLite, the decorator (uses all of the above)
#
# Headers under src/<folder>/ are private to that folder, except those
# listed in EXPORTED below, which the layers above may include.
set -euo pipefail
cd "$(dirname "$0")/.."

rank() {
    case "$1" in
    core) echo 0 ;;
    cache | strategies) echo 1 ;;
    repository) echo 2 ;;
    *) echo -1 ;;
    esac
}

# The layer of each public header (include/repocache/<name>.h).
public_layer() {
    case "$1" in
    status | entity | codec | settings | export | version | outbox | log) echo core ;;
    cache | metrics) echo cache ;;
    strategy) echo strategies ;;
    repository | sqlite_repository | cached_repository) echo repository ;;
    *) echo unknown ;;
    esac
}

# Private headers a higher layer may include: the core is the shared floor,
# and the cache layer offers the decorator its lease protocol, the outbox's
# registration, the near cache's value type, and the metrics it records into.
EXPORTED=" core/* cache/lease.h cache/near.h cache/outbox.h cache/metrics.h "

exported() {
    local h=$1 pat
    for pat in $EXPORTED; do
        # shellcheck disable=SC2053
        [[ $h == $pat ]] && return 0
    done
    return 1
}

# May a file of layer $1 use something of layer $2?
may_use() {
    local from=$1 to=$2
    [ "$from" = "$to" ] && return 0
    local a b
    a=$(rank "$from")
    b=$(rank "$to")
    [ "$b" -ge 0 ] && [ "$b" -lt "$a" ]
}

bad=0
check_file() {
    local file=$1 layer=$2 line inc owner
    while IFS= read -r line; do
        inc=${line#*\"}
        inc=${inc%%\"*}
        case "$inc" in
        repocache/*.h)
            owner=$(public_layer "$(basename "$inc" .h)")
            if [ "$owner" = unknown ] || ! may_use "$layer" "$owner"; then
                echo "layering: $file ($layer) includes $inc ($owner)"
                bad=1
            fi
            ;;
        */*.h)
            owner=${inc%%/*}
            if [ "$owner" != "$layer" ] && ! { exported "$inc" && may_use "$layer" "$owner"; }; then
                echo "layering: $file ($layer) includes $inc (private to $owner, or a higher layer)"
                bad=1
            fi
            ;;
        *)
            # a same-folder include by bare name is the folder's own business
            ;;
        esac
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
}

for dir in src/*/; do
    layer=$(basename "$dir")
    if [ "$(rank "$layer")" -lt 0 ]; then
        echo "layering: $dir is not a layer (core, cache, strategies, repository)"
        bad=1
        continue
    fi
    for f in "$dir"*.[ch]; do
        [ -e "$f" ] && check_file "$f" "$layer"
    done
done
for f in include/repocache/*.h; do
    layer=$(public_layer "$(basename "$f" .h)")
    if [ "$layer" = unknown ]; then
        echo "layering: $f belongs to no layer (add it to public_layer)"
        bad=1
        continue
    fi
    check_file "$f" "$layer"
done

if [ $bad = 0 ]; then
    echo "layering: ok ($(ls src/*/*.[ch] include/repocache/*.h | wc -l) files)"
fi
exit $bad
