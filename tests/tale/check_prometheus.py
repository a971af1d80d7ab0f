#!/usr/bin/python3
"""check_prometheus.py - `tale stats --prometheus` read by a real parser.

Runs the built tale (TALE_BIN) against the test redis-server
(REPOCACHE_TEST_REDIS_URL, or a private one on a free loopback port) with
a fresh SQLite file and its own key prefix, and parses its output with
Debian's python3-prometheus-client (text_string_to_metric_families): the
families, their types, HELP texts and labels, cumulative histogram buckets
from 1 us to 10 s, and fleet counters that moved by exactly the reads made.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from prometheus_client.parser import text_string_to_metric_families

TALE = os.environ["TALE_BIN"]
TIERS = {"near", "redis", "fallback"}
OUTCOMES = {"hit", "negative_hit", "miss"}
ENTITIES = {"hero", "child", "story"}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def private_redis(workdir):
    """A redis-server on a free 127.0.0.1 port; ready when PING says PONG."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", workdir],
                            stdout=subprocess.DEVNULL)
    for _ in range(500):
        r = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            return proc, "redis://127.0.0.1:%d/0" % port
        time.sleep(0.01)
    proc.kill()
    sys.exit("redis-server did not start")


def tale(env, *args, expect=0):
    r = subprocess.run([TALE, *args], env=env, capture_output=True, text=True, cwd=env["PWD"])
    check(r.returncode == expect, "tale %s: exit %d, expected %d: %s" %
          (" ".join(args), r.returncode, expect, r.stderr))
    return r.stdout


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def fleet_reads(fams):
    out = {}
    for s in fams["repocache_fleet_reads"].samples:
        if s.labels["entity"] == "hero":
            out[(s.labels["tier"], s.labels["outcome"])] = s.value
    return out


def check_families(fams):
    types = {
        "repocache_reads": "counter",
        "repocache_fills": "counter",
        "repocache_stale_fills_rejected": "counter",
        "repocache_invalidations": "counter",
        "repocache_decode_errors": "counter",
        "repocache_errors": "counter",
        "repocache_lease_waits": "counter",
        "repocache_read_duration_seconds": "histogram",
        "repocache_write_invalidation_duration_seconds": "histogram",
        "repocache_cache_gets": "counter",
        "repocache_redis_errors": "counter",
        "repocache_oversized_values_skipped": "counter",
        "repocache_single_flight_waits": "counter",
        "repocache_near_coherence_losses": "counter",
        "repocache_circuit_state": "gauge",
        "repocache_redis_available": "gauge",
        "repocache_pending_deletes": "gauge",
        "repocache_near_entries": "gauge",
        "repocache_near_bytes": "gauge",
        "repocache_fleet_reads": "counter",
        "repocache_fleet_invalidations": "counter",
        "repocache_fleet_age_seconds": "gauge",
    }
    for name, typ in types.items():
        check(name in fams, "family %s present" % name)
        if name in fams:
            check(fams[name].type == typ, "%s is a %s, not %s" % (name, typ, fams[name].type))
    for f in fams.values():
        check(f.name.startswith("repocache_"), "%s is prefixed" % f.name)
        check(bool(f.documentation), "%s has a HELP text" % f.name)
        if f.type == "counter":
            check(all(s.name.endswith("_total") for s in f.samples),
                  "%s samples end in _total" % f.name)
    reads = fams["repocache_reads"].samples
    check({frozenset(s.labels) for s in reads} == {frozenset({"entity", "tier", "outcome"})},
          "reads are labelled entity, tier, outcome")
    check({s.labels["tier"] for s in reads} == TIERS, "every tier")
    check({s.labels["outcome"] for s in reads} == OUTCOMES, "every outcome")
    check({s.labels["entity"] for s in reads} == ENTITIES, "every entity")
    check_histogram(fams["repocache_read_duration_seconds"])


def check_histogram(fam):
    series = {}
    for s in fam.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        series.setdefault(key, []).append(s)
    check(len(series) == 3 * 3 * 3, "a read histogram per entity, tier and outcome")
    for key, samples in series.items():
        buckets = [s for s in samples if s.name.endswith("_bucket")]
        check(len(buckets) == 23, "%s: 22 bounds and +Inf" % (key,))
        les = [float(s.labels["le"]) for s in buckets]
        check(les[0] == 1e-6 and les[-2] == 10.0 and les[-1] == float("inf"),
              "%s: buckets from 1 us to 10 s" % (key,))
        counts = [s.value for s in buckets]
        check(counts == sorted(counts), "%s: cumulative buckets" % (key,))
        count = [s.value for s in samples if s.name.endswith("_count")]
        total = [s.value for s in samples if s.name.endswith("_sum")]
        check(count == [counts[-1]] and len(total) == 1, "%s: _count and _sum" % (key,))


def main():
    work = tempfile.mkdtemp(prefix="check_prometheus.")
    server = None
    url = os.environ.get("REPOCACHE_TEST_REDIS_URL")
    if not url:
        server, url = private_redis(work)
    env = dict(os.environ, REDIS_URL=url, CACHE_KEY_PREFIX="promtest-%d:" % os.getpid(),
               DATABASE_PATH=os.path.join(work, "tale.db"), LOG_LEVEL="warning", PWD=work)
    try:
        tale(env, "seed", "--heroes", "3", "--children", "0", "--stories", "0")
        heroes = json.loads(tale(env, "find", "hero", "all"))
        tale(env, "invalidate", "hero", "all")                      # nothing cached
        before = fleet_reads(families(tale(env, "stats", "--prometheus")))
        tale(env, "get", "hero", heroes[0]["id"])                   # a miss (filled)
        tale(env, "get", "hero", heroes[0]["id"])                   # a Redis hit
        tale(env, "get", "hero", heroes[0]["id"])                   # a Redis hit
        missing = "0123456789abcdef0123456789abcdef"
        tale(env, "get", "hero", missing, expect=3)                 # a miss
        tale(env, "get", "hero", missing, expect=3)                 # a negative hit
        text = tale(env, "stats", "--prometheus")
        fams = families(text)
        check_families(fams)
        after = fleet_reads(fams)
        moved = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        check(moved[("redis", "hit")] == 2, "fleet redis hits moved by 2: %s" % moved)
        check(moved[("redis", "negative_hit")] == 1, "fleet negative hits moved by 1: %s" % moved)
        check(moved[("redis", "miss")] == 2, "fleet misses moved by 2: %s" % moved)
        check(sum(moved.values()) == 5, "5 reads in all: %s" % moved)
        own = sum(s.value for s in fams["repocache_reads"].samples)
        check(own == 0, "the stats process itself read nothing")
        table = tale(env, "stats", "hero")
        row = [l for l in table.splitlines() if l.startswith("hero ")][-1].split()
        hits = int(sum(v for k, v in after.items() if k[1] != "miss"))
        misses = int(sum(v for k, v in after.items() if k[1] == "miss"))
        check(row[1:3] == [str(hits), str(misses)],
              "the table's fleet row says the same: %s (%d hits, %d misses)" % (row, hits, misses))
        fleet = json.loads(tale(env, "stats", "--json", "hero"))["fleet"]
        check(fleet["hits"] == int(row[1]) and fleet["misses"] == int(row[2]),
              "--json has the same fleet totals: %s" % fleet)
        check(0 <= fleet["age_s"] < 60, "and their age: %s" % fleet)
    finally:
        if server:
            server.kill()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit("%d check(s) failed" % len(failures))
    print("check_prometheus: ok")


main()
