#!/usr/bin/env bash
# deps.sh - installs the Debian packages repocache needs when any is missing.
# Sourced by the README's two commands and by every CI pass, which may name
# more packages of its own (rc_install_deps valgrind). Installs only when
# run as root; otherwise names what is missing and fails.
set -euo pipefail

# libclang-rt-dev: the sanitizer and libFuzzer runtimes of clang (only a
# recommendation of clang, so not installed with it here). python3-prometheus-client:
# the Prometheus text parser of tests/tale/check_prometheus.py. openssl: the
# command that makes the TLS tests' certificates; redis-sentinel: the
# Sentinel tests' sentinels.
RC_PACKAGES=(build-essential cmake pkg-config clang libclang-rt-dev libhiredis-dev
             libjansson-dev libsqlite3-dev libssl-dev openssl check redis-server
             redis-tools redis-sentinel python3-prometheus-client)

# Installs what is missing of RC_PACKAGES and of the packages named.
rc_install_deps() {
    local missing=()
    for p in "${RC_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
        return 1
    fi
    echo "installing: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The package starts a system redis-server; the tests start their own.
}
