#!/usr/bin/env bash
# install_check.sh BUILD_DIR SOURCE_DIR - installs the build into a
# temporary prefix (library, headers, CMake package, tale, manual pages: each
# is checked) and builds example/wrap_own.c against it with nothing but
# `pkg-config --cflags --libs repocache`, as another project would; then runs
# it (it works with or without Redis).
set -euo pipefail
build=$1 src=$2
prefix=$(mktemp -d /tmp/repocache-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name repocache.pc)
[ -n "$pc" ] || { echo "repocache.pc not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
for h in status entity repository sqlite_repository codec settings cache strategy cached_repository \
    export version; do
    [ -f "$prefix/include/repocache/$h.h" ] || { echo "missing header $h.h"; exit 1; }
done
# The rest of the install: the CMake package, tale and the manual pages.
for f in lib/cmake/repocache/repocacheConfig.cmake lib/cmake/repocache/repocacheConfigVersion.cmake \
    share/man/man1/tale.1 share/man/man3/repocache.3 share/doc/repocache/LICENSE; do
    [ -n "$(find "$prefix" -path "$prefix/*$f" -o -path "$prefix/$f")" ] || { echo "not installed: $f"; exit 1; }
done
"$prefix/bin/tale" --version | grep -q "^tale " || { echo "installed tale does not run"; exit 1; }
# shellcheck disable=SC2046
${CC:-cc} -Wall -Wextra -Werror -o "$prefix/wrap_own" "$src/example/wrap_own.c" \
    $(pkg-config --cflags --libs repocache)
# With the suite's redis-server every call must succeed; without one the
# example still answers through the fallback (its invalidate then reports the
# cache unavailable, so only the output is checked).
export CACHE_KEY_PREFIX="install-check-$$:"
if [ -n "${REPOCACHE_TEST_REDIS_URL:-}" ]; then
    REDIS_URL=$REPOCACHE_TEST_REDIS_URL LD_LIBRARY_PATH=$(pkg-config --variable=libdir repocache) \
        "$prefix/wrap_own" >"$prefix/out" 2>&1 || { cat "$prefix/out"; exit 1; }
    grep -q 'invalidated 1 key' "$prefix/out" || { cat "$prefix/out"; exit 1; }
else
    LD_LIBRARY_PATH=$(pkg-config --variable=libdir repocache) "$prefix/wrap_own" >"$prefix/out" 2>&1 || true
fi
grep -q '"entity_type":"hero"' "$prefix/out" || { cat "$prefix/out"; exit 1; }
grep -q '1 reached the wrapped repository' "$prefix/out" || { cat "$prefix/out"; exit 1; }
echo "installed, found with pkg-config, example built and ran"
