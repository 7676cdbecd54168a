#!/usr/bin/env python3
"""TAXII 2.1 server benchmark: medallion and Kizuna side by side, same machine, same run, same objects.

For each server, on a fresh collection:
  1. ingest   -- N generated indicators POSTed in envelopes of --batch (100) objects by --threads
                 client threads (objects/s; POST latency of the first and last 10% of envelopes,
                 which shows whether ingest slows down as the collection grows);
  2. read     -- the whole collection read back page by page with limit=--page (100), one client
                 (the pages chain through `next`, or added_after when a server gives no next):
                 total seconds, requests/s, objects/s, and a check that every object came back once;
  3. latency  -- one page of --page objects from the middle of the collection, requested again and
                 again by one client: p50/p99 with added_after=<X-TAXII-Date-Added-Last of the page
                 before>, and, where the server's next tokens can be replayed (stateless tokens),
                 with that page's next token;
  4. parallel -- the same middle page requested by --threads clients for --parallel-seconds:
                 requests/s.

medallion runs with N = --n-medallion (default 10,000: it ingests at ~700 objects/s and pages
quadratically, about 5 minutes for the full read); Kizuna runs with the same N, so the ratio
column compares like with like, and optionally again alone with --n-kizuna-large (e.g. 1000000).

    bench.py                                   # both, N=10,000
    bench.py --skip-medallion --n-kizuna-large 1000000
    bench.py --skip-kizuna                     # medallion half only

Prints a table and writes JSON to --json-out (default target/bench/taxii-<UTC date>.json).
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "conformance"))
import servers  # noqa: E402

TAXII = "application/taxii+json;version=2.1"
HEADERS = {"Accept": TAXII, "Content-Type": TAXII}

INDICATOR = ('{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"%s","modified":"%s",'
             '"name":"bench indicator %d","indicator_types":["malicious-activity"],'
             '"pattern":"[ipv4-addr:value = \'%d.%d.%d.%d\']","pattern_type":"stix","valid_from":"%s"}')


def envelope(k, batch, n, seed):
    """Envelope k (bytes): objects k*batch .. min(n, (k+1)*batch)-1, the same for every server."""
    rng = random.Random(seed * 1_000_003 + k)
    base = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    parts = []
    for i in range(k * batch, min(n, (k + 1) * batch)):
        t = (base + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        oid = uuid.UUID(int=rng.getrandbits(128), version=4)
        parts.append(INDICATOR % (oid, t, t, i, 10 + i % 200, (i >> 16) & 255, (i >> 8) & 255, i & 255, t))
    return ('{"objects":[' + ",".join(parts) + "]}").encode()


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


class Client:
    def __init__(self, srv, threads):
        self.srv = srv
        self.auth = (srv.user, srv.password)
        self.verify = srv.verify if srv.cert else True
        self.objects_url = None
        self.threads = threads
        self._local = threading.local()

    def session(self):
        s = getattr(self._local, "s", None)
        if s is None:
            s = requests.Session()
            s.auth = self.auth
            s.verify = self.verify
            # REQUESTS_CA_BUNDLE would override a session-level verify: ignore the environment.
            s.trust_env = False
            s.headers.update({"Accept": TAXII})
            self._local.s = s
        return s

    def resolve(self, collection, api_root_hint=None):
        s = self.session()
        d = s.get(self.srv.discovery_url, timeout=30)
        d.raise_for_status()
        body = d.json()
        roots = body.get("api_roots") or []
        hint = api_root_hint
        root = None
        if hint:
            root = next((r for r in roots if r.rstrip("/").rsplit("/", 1)[-1] == hint.strip("/")), None)
            if root is None and (hint.startswith("/") or "://" in hint):
                root = hint
        root = root or body.get("default") or roots[0]
        root = requests.compat.urljoin(self.srv.discovery_url, root)
        if not root.endswith("/"):
            root += "/"
        self.objects_url = root + "collections/%s/objects/" % collection


def ingest(client, n, batch, seed, pregenerate):
    n_env = (n + batch - 1) // batch
    # Generating JSON in Python costs ~25 us per object; done before the clock starts, the client
    # only sends bytes (about 350 MB for 1,000,000 indicators).
    bodies = [envelope(k, batch, n, seed) for k in range(n_env)] if pregenerate else None
    lat = [None] * n_env
    counter = iter(range(n_env))
    lock = threading.Lock()
    errors = []
    pending = []

    def worker():
        s = client.session()
        while True:
            with lock:
                k = next(counter, None)
            if k is None or errors:
                return
            body = bodies[k] if bodies is not None else envelope(k, batch, n, seed)
            t0 = time.perf_counter()
            r = s.post(client.objects_url, data=body, headers=HEADERS, timeout=600)
            lat[k] = time.perf_counter() - t0
            if r.status_code != 202:
                errors.append("envelope %d: HTTP %d %s" % (k, r.status_code, r.text[:200]))
                return
            st = r.json()
            if st.get("status") != "complete" or st.get("failure_count"):
                pending.append((k, st.get("id"), st.get("status"), st.get("failure_count")))

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(client.threads) as ex:
        for f in [ex.submit(worker) for _ in range(client.threads)]:
            f.result()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError("ingest failed: " + errors[0])
    tenth = max(1, n_env // 10)
    return {
        "objects": n, "envelopes": n_env, "threads": client.threads, "seconds": wall,
        "objects_per_s": n / wall,
        "post_p50_first10_ms": 1000 * statistics.median(lat[:tenth]),
        "post_p50_last10_ms": 1000 * statistics.median(lat[-tenth:]),
        "post_p99_ms": 1000 * pct(lat, 99),
        "not_complete_or_failed": len(pending),
    }


def paged_read(client, page, max_pages):
    s = client.session()
    params = {"limit": str(page)}
    seen = 0
    ids = set()
    dup = 0
    pages = []
    how = set()
    t0 = time.perf_counter()
    for _ in range(max_pages):
        t1 = time.perf_counter()
        r = s.get(client.objects_url, params=params, timeout=3600)
        dt = time.perf_counter() - t1
        if r.status_code != 200:
            raise RuntimeError("paged read: HTTP %d %s" % (r.status_code, r.text[:200]))
        b = r.json()
        objs = b.get("objects", [])
        for o in objs:
            if o["id"] in ids:
                dup += 1
            ids.add(o["id"])
        seen += len(objs)
        pages.append({"params": dict(params), "last": r.headers.get("X-TAXII-Date-Added-Last"),
                      "seconds": dt, "next": b.get("next")})
        if not b.get("more"):
            break
        params = {"limit": str(page)}
        if b.get("next"):
            params["next"] = b["next"]
            how.add("next")
        else:
            params["added_after"] = r.headers["X-TAXII-Date-Added-Last"]
            how.add("added_after")
    wall = time.perf_counter() - t0
    return {
        "objects": seen, "distinct": len(ids), "duplicates": dup, "requests": len(pages), "seconds": wall,
        "requests_per_s": len(pages) / wall, "objects_per_s": seen / wall,
        "first_page_s": pages[0]["seconds"], "paging": "/".join(sorted(how)) or "one page",
    }, pages


def repeat_get(client, params, samples, budget_s, timeout):
    s = client.session()
    lat = []
    first = None
    deadline = time.perf_counter() + budget_s
    for _ in range(samples):
        t0 = time.perf_counter()
        try:
            r = s.get(client.objects_url, params=params, timeout=timeout)
        except requests.exceptions.Timeout:
            return None, "no answer within %.0f s (--request-timeout)" % timeout
        lat.append(time.perf_counter() - t0)
        if r.status_code != 200:
            return None, "HTTP %d" % r.status_code
        objs = r.json().get("objects", [])
        key = (objs[0]["id"], len(objs)) if objs else None
        if first is None:
            first = key
        elif key != first:
            return None, "the same request gave a different page (stateful cursor)"
        if time.perf_counter() > deadline:
            break
    return {"samples": len(lat), "p50_ms": 1000 * pct(lat, 50), "p99_ms": 1000 * pct(lat, 99),
            "objects_per_page": first[1] if first else 0}, None


def parallel_get(client, params, threads, seconds, timeout):
    stop = time.perf_counter() + seconds
    counts = []

    def worker():
        s = client.session()
        c = 0
        while time.perf_counter() < stop:
            r = s.get(client.objects_url, params=params, timeout=timeout)
            if r.status_code != 200:
                raise RuntimeError("parallel GET: HTTP %d %s" % (r.status_code, r.text[:200]))
            r.content
            c += 1
        return c

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        counts = [f.result() for f in [ex.submit(worker) for _ in range(threads)]]
    wall = time.perf_counter() - t0
    return {"threads": threads, "seconds": wall, "requests": sum(counts), "requests_per_s": sum(counts) / wall}


def run_server(name, srv, n, args, api_root_hint=None):
    print("== %s: N=%d" % (name, n), flush=True)
    client = Client(srv, args.threads)
    client.resolve(srv.collection, api_root_hint)
    res = {"server": name, "n": n}
    res["ingest"] = ingest(client, n, args.batch, args.seed, not args.generate_while_sending)
    print("   ingest: %.0f objects/s (%.1f s, %d threads); POST p50 first 10%% %.1f ms, last 10%% %.1f ms"
          % (res["ingest"]["objects_per_s"], res["ingest"]["seconds"], args.threads,
             res["ingest"]["post_p50_first10_ms"], res["ingest"]["post_p50_last10_ms"]), flush=True)
    read, pages = paged_read(client, args.page, max_pages=n // args.page + 10)
    res["read"] = read
    print("   paged read: %d objects (%d distinct) in %d requests, %.1f s (first page %.2f s), %.1f req/s, "
          "%.0f objects/s, via %s" % (read["objects"], read["distinct"], read["requests"], read["seconds"],
                                      read["first_page_s"], read["requests_per_s"], read["objects_per_s"],
                                      read["paging"]), flush=True)
    mid = len(pages) // 2
    if mid >= 1:
        res["middle_in_read_ms"] = 1000 * pages[mid]["seconds"]
        print("   middle page during the paged read: %.2f ms" % res["middle_in_read_ms"], flush=True)
        aa = {"limit": str(args.page), "added_after": pages[mid - 1]["last"]}
        res["middle_added_after"], err = repeat_get(client, aa, args.latency_samples, args.latency_budget,
                                                    args.request_timeout)
        if err:
            res["middle_added_after_error"] = err
            print("   middle page (added_after): not measured: %s" % err, flush=True)
        else:
            print("   middle page (added_after): p50 %.2f ms, p99 %.2f ms over %d requests"
                  % (res["middle_added_after"]["p50_ms"], res["middle_added_after"]["p99_ms"],
                     res["middle_added_after"]["samples"]), flush=True)
        if "next" in pages[mid]["params"]:
            res["middle_next"], err = repeat_get(client, pages[mid]["params"], args.latency_samples,
                                                 args.latency_budget, args.request_timeout)
            if err:
                res["middle_next_error"] = err
                print("   middle page (next token replayed): not measurable: %s" % err)
            else:
                print("   middle page (next token replayed): p50 %.2f ms, p99 %.2f ms over %d requests"
                      % (res["middle_next"]["p50_ms"], res["middle_next"]["p99_ms"], res["middle_next"]["samples"]),
                      flush=True)
        one = get(res, ("middle_added_after", "p50_ms"))
        if one is None:
            res["parallel_skipped"] = "the middle page could not be measured"
            print("   middle page, parallel clients: skipped (%s)" % res["parallel_skipped"], flush=True)
        elif one / 1000.0 * 2 > args.parallel_seconds:
            res["parallel_skipped"] = "one request takes %.1f s, over half of --parallel-seconds" % (one / 1000.0)
            print("   middle page, parallel clients: skipped (%s)" % res["parallel_skipped"], flush=True)
        else:
            res["parallel"] = parallel_get(client, aa, args.threads, args.parallel_seconds, args.request_timeout)
            print("   middle page, %d threads: %.1f req/s" % (args.threads, res["parallel"]["requests_per_s"]),
                  flush=True)
    ok = read["distinct"] == n and read["duplicates"] == 0
    res["complete"] = ok
    if not ok:
        print("   WARNING: read back %d distinct objects (%d duplicates) of %d" % (read["distinct"], read["duplicates"], n))
    return res


# Kizuna's defaults, except the per-account rate limit (200 requests/s by default), which would
# otherwise cap the paged read and the parallel phase: the benchmark measures serving, not the limiter.
KIZUNA_BENCH_TOML = """[taxii]
rate_per_second = 1000000.0
rate_burst = 1000000.0
"""


ROWS = [
    ("ingest objects/s", ("ingest", "objects_per_s"), "%.0f", "higher"),
    ("ingest POST p50, first 10% (ms)", ("ingest", "post_p50_first10_ms"), "%.1f", "lower"),
    ("ingest POST p50, last 10% (ms)", ("ingest", "post_p50_last10_ms"), "%.1f", "lower"),
    ("paged read total (s)", ("read", "seconds"), "%.2f", "lower"),
    ("paged read first page (s)", ("read", "first_page_s"), "%.3f", "lower"),
    ("paged read requests/s", ("read", "requests_per_s"), "%.1f", "higher"),
    ("paged read objects/s", ("read", "objects_per_s"), "%.0f", "higher"),
    ("middle page in the paged read (ms)", ("middle_in_read_ms",), "%.2f", "lower"),
    ("middle page p50, added_after (ms)", ("middle_added_after", "p50_ms"), "%.2f", "lower"),
    ("middle page p99, added_after (ms)", ("middle_added_after", "p99_ms"), "%.2f", "lower"),
    ("middle page p50, next replayed (ms)", ("middle_next", "p50_ms"), "%.2f", "lower"),
    ("middle page p99, next replayed (ms)", ("middle_next", "p99_ms"), "%.2f", "lower"),
    ("middle page req/s, parallel clients", ("parallel", "requests_per_s"), "%.1f", "higher"),
]


def get(res, path):
    cur = res
    for p in path:
        if not isinstance(cur, dict) or p not in cur or cur[p] is None:
            return None
        cur = cur[p]
    return cur


def table(results):
    med = next((r for r in results if r["server"] == "medallion"), None)
    kiz = next((r for r in results if r["server"] == "kizuna" and med and r["n"] == med["n"]), None)
    cols = results
    head = ["metric"] + ["%s N=%d" % (r["server"], r["n"]) for r in cols]
    if med and kiz:
        head.append("kizuna vs medallion (>1: kizuna better)")
    rows = []
    for label, path, fmt, better in ROWS:
        row = [label] + [(fmt % get(r, path)) if get(r, path) is not None else "-" for r in cols]
        if med and kiz:
            m, k = get(med, path), get(kiz, path)
            if m and k:
                row.append("%.1fx" % (k / m if better == "higher" else m / k))
            else:
                row.append("-")
        rows.append(row)
    widths = [max(len(str(x[i])) for x in [head] + rows) for i in range(len(head))]
    out = []
    for i, row in enumerate([head] + rows):
        out.append("| " + " | ".join(str(c).ljust(widths[j]) if j == 0 else str(c).rjust(widths[j])
                                     for j, c in enumerate(row)) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-medallion", type=int, default=10_000)
    ap.add_argument("--n-kizuna", type=int, help="N for the side-by-side Kizuna run (default: --n-medallion)")
    ap.add_argument("--n-kizuna-large", type=int, default=0, help="also run Kizuna alone with this N (e.g. 1000000)")
    ap.add_argument("--skip-medallion", action="store_true")
    ap.add_argument("--skip-kizuna", action="store_true")
    ap.add_argument("--no-build", action="store_true", help="use target/release/kizuna as it is")
    ap.add_argument("--batch", type=int, default=100, help="objects per POST (default 100)")
    ap.add_argument("--page", type=int, default=100, help="limit of each GET (default 100)")
    ap.add_argument("--threads", type=int, default=4, help="client threads for ingest and parallel GETs (default 4)")
    ap.add_argument("--latency-samples", type=int, default=200)
    ap.add_argument("--latency-budget", type=float, default=60.0, help="stop sampling a latency after this many s")
    ap.add_argument("--parallel-seconds", type=float, default=10.0)
    ap.add_argument("--request-timeout", type=float, default=300.0,
                    help="latency and parallel phases: give up on a request after this many s (medallion's "
                         "added_after query on 10,000 objects takes longer than 10 minutes)")
    ap.add_argument("--generate-while-sending", action="store_true",
                    help="generate each envelope in the sending thread instead of all before the clock starts")
    ap.add_argument("--kizuna-first", action="store_true", help="run Kizuna before medallion")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    n_kiz = args.n_kizuna or args.n_medallion

    results = []
    binary = None
    if not args.skip_kizuna:
        binary = servers.kizuna_binary(build=not args.no_build)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        machine["cpu"] = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    date = datetime.datetime.now(datetime.timezone.utc)
    out = args.json_out or os.path.join(ROOT, "target", "bench", "taxii-%s.json" % date.strftime("%Y%m%dT%H%M%SZ"))
    os.makedirs(os.path.dirname(out), exist_ok=True)

    def save():
        with open(out, "w") as f:
            json.dump({"date": date.isoformat(), "machine": machine, "command": sys.argv, "results": results}, f,
                      indent=2)

    def medallion(tmp):
        d = os.path.join(tmp, "medallion")
        os.makedirs(d)
        # Big enough for an envelope of --batch objects; next tokens live long enough to page.
        with servers.Medallion(d, max_content_length=64 * 1024 * 1024, max_page_size=max(100, args.page),
                               session_timeout=24 * 3600) as srv:
            results.append(run_server("medallion", srv, args.n_medallion, args, srv.api_root_name))
        save()

    def kizuna(tmp):
        for n in [n_kiz] + ([args.n_kizuna_large] if args.n_kizuna_large else []):
            d = os.path.join(tmp, "kizuna-%d" % n)
            os.makedirs(d)
            with servers.Kizuna(d, binary, config_toml=KIZUNA_BENCH_TOML) as srv:
                results.append(run_server("kizuna", srv, n, args, srv.api_root))
            save()

    with tempfile.TemporaryDirectory(prefix="kizuna-bench-") as tmp:
        steps = []
        if not args.skip_medallion:
            steps.append(medallion)
        if not args.skip_kizuna:
            steps.insert(0 if args.kizuna_first else len(steps), kizuna)
        for run in steps:
            run(tmp)

    print()
    print(table(results))
    print("\n%s, %s; JSON: %s" % (date.strftime("%Y-%m-%d %H:%M UTC"), machine.get("cpu", ""), out))
    return 0 if all(r.get("complete") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
