#!/usr/bin/env bash
# consumers.sh - builds and runs the four ways another project takes
# repocache in, each with tests/consumers/app.c and default options:
#   find_package   against an install of this checkout (both libraries)
#   FetchContent   of this checkout (SOURCE_DIR)
#   add_subdirectory of this checkout
#   pkg-config     against the same install (shared, then --static)
# The two source-embedding builds must configure without the test
# framework and build none of our tests, examples or bench. Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
rc_install_deps
src=$PWD
work=$(mktemp -d /tmp/repocache-consumers-XXXXXX)
trap 'rm -rf "$work"' EXIT
jobs=$(nproc)
cmake_quiet() { cmake "$@" >"$work/log" 2>&1 || { cat "$work/log"; exit 1; }; }
run() { "$@" >"$work/out" 2>&1 || { cat "$work/out"; exit 1; }
        grep -q 'read back as Ann' "$work/out" || { cat "$work/out"; exit 1; }; }

# The install the find_package and pkg-config consumers use.
cmake_quiet -S . -B "$work/lib" -DCMAKE_BUILD_TYPE=Release -DREPOCACHE_TESTS=OFF \
    -DREPOCACHE_EXAMPLES=OFF -DREPOCACHE_BENCH=OFF
cmake_quiet --build "$work/lib" -j "$jobs"
cmake_quiet --install "$work/lib" --prefix "$work/prefix"

cmake_quiet -S tests/consumers/find_package -B "$work/fp" -DCMAKE_PREFIX_PATH="$work/prefix"
cmake_quiet --build "$work/fp" -j "$jobs"
run "$work/fp/app_shared"
run "$work/fp/app_static"
echo "consumers: find_package(repocache): shared and static built and ran"

for way in fetchcontent subdirectory; do
    cmake_quiet -S "tests/consumers/$way" -B "$work/$way" -DREPOCACHE_SOURCE="$src"
    cmake_quiet --build "$work/$way" -j "$jobs"
    run "$work/$way/app"
    if grep -rqs 'check_cache\|add_test' "$work/$way/CTestTestfile.cmake" ||
        [ -e "$work/$way/repocache/tests" ] || [ -e "$work/$way/_deps/repocache-build/tests" ]; then
        echo "consumers: $way built repocache's tests"
        exit 1
    fi
    echo "consumers: $way: built (no tests, no -Werror) and ran"
done

pc=$(dirname "$(find "$work/prefix" -name repocache.pc)")
# shellcheck disable=SC2046
${CC:-cc} -o "$work/pc_shared" tests/consumers/app.c $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs repocache)
LD_LIBRARY_PATH=$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir repocache) run "$work/pc_shared"
# Static: the archive named, the rest of what `--static` lists.
libdir=$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir repocache)
# shellcheck disable=SC2046
${CC:-cc} -o "$work/pc_static" tests/consumers/app.c $(PKG_CONFIG_PATH=$pc pkg-config --cflags repocache) \
    "$libdir/librepocache.a" $(PKG_CONFIG_PATH=$pc pkg-config --libs --static repocache | sed 's/-lrepocache//')
if ldd "$work/pc_static" | grep -q librepocache; then echo "consumers: pc_static links the shared library"; exit 1; fi
run "$work/pc_static"
echo "consumers: pkg-config: shared and --static built and ran"
