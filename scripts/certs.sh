#!/usr/bin/env bash
# certs.sh - throwaway TLS certificates for a test or bench redis-server.
# Sourced; rc_make_certs DIR makes, with the openssl command, in DIR: a CA
# (ca.crt), a server certificate for localhost and 127.0.0.1 signed by it
# (server.crt, server.key) and a client certificate signed by it
# (client.crt, client.key). Nothing outlives DIR.

rc_make_certs() {
    local d=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    (
        cd "$d"
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 2 \
            -subj /CN=repocache-test-ca
        for who in server client; do
            openssl req "${ec[@]}" -keyout "$who.key" -out "$who.csr" -subj "/CN=$who"
        done
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        for who in server client; do
            openssl x509 -req -in "$who.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
                -days 2 -extfile "$who.ext" -out "$who.crt"
        done
    ) >"$d/openssl.log" 2>&1 || { cat "$d/openssl.log" >&2; return 1; }
}

# rc_redis_start_tls DIR [redis-server arguments]: rc_redis_start (redis.sh)
# with a TLS port too (RC_REDIS_TLS_PORT), the certificates of DIR, client
# certificates required (tls-auth-clients yes).
rc_redis_start_tls() {
    local d=$1
    shift
    for _ in 1 2 3 4 5; do
        RC_REDIS_TLS_PORT=$((20000 + RANDOM % 40000))
        if rc_redis_start --tls-port "$RC_REDIS_TLS_PORT" --tls-cert-file "$d/server.crt" \
            --tls-key-file "$d/server.key" --tls-ca-cert-file "$d/ca.crt" \
            --tls-auth-clients yes "$@" 2>/dev/null; then
            return 0
        fi
    done
    echo "could not start a TLS redis-server" >&2
    return 1
}
