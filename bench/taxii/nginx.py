#!/usr/bin/env python3
"""Kizuna's GET objects page against nginx serving the same bytes as a static file, under `wrk`.

Issue 2's target: pages served at no less than half the rate at which nginx serves the same page
bytes as a static file under the same `wrk` load.

  1. a release `kizuna serve` on a fresh data directory (port 0, ready file), N generated
     indicators loaded with `kizuna import`, an account with a bearer API key
     (`kizuna account add bench --api-key`);
  2. the whole collection walked once (limit=--page) to learn each page's query (next token); the
     page in the middle fetched with curl and its exact body saved to a file;
  3. nginx (own config in a temporary directory, `daemon off`, `worker_processes 2` for the 2
     cores, TLS with the certificate and key Kizuna generated in its data directory) serving that
     file;
  4. wrk, same --threads/--connections/--duration for every scenario, with --latency:
       nginx   -- the static file;
       kizuna  -- the same page (GET .../objects/?limit=100&next=<token of the page before>,
                  Authorization: Bearer, TAXII Accept header);
       kizuna, walking -- every request a different page (a wrk Lua script cycling through the
                  queries of all pages, each wrk thread from its own offset), so that nothing
                  cached for one page flatters Kizuna.
     Pages are addressed by their `next` token, not `added_after`: `kizuna import` commits 10,000
     objects per transaction under one date_added, so added_after cannot point inside such a batch.
     Repeated over plain HTTP (`--danger-plaintext-http` for Kizuna, a plain listener for nginx)
     unless --tls-only.

Kizuna runs with its defaults (audit of every object version served on, TLP clearance checks,
egress policy) except the per-account rate limit, as in bench.py. nginx keeps its access log on (to
a file) and `keepalive_requests` is raised so that it does not close wrk's connections every 1,000
requests (Kizuna does not). wrk, nginx and Kizuna share the machine's cores; that is the same for
both sides.

    bench/taxii/nginx.py                      # N = 100,000, TLS and plain HTTP, 15 s per scenario
    bench/taxii/nginx.py --no-build --n 100000 --duration 20 --connections 32

Needs nginx and wrk on PATH (Debian: `apt-get install -y nginx wrk`) and curl. Prints a table and
writes JSON to --json-out (default target/bench/nginx-<UTC date>.json).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "conformance"))
sys.path.insert(0, HERE)
import servers  # noqa: E402
from bench import INDICATOR, KIZUNA_BENCH_TOML  # noqa: E402

TAXII = "application/taxii+json;version=2.1"

NGINX_CONF = """\
worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    types {{ }}
    default_type "{taxii}";
    server {{
        listen 127.0.0.1:{port} {ssl};
        {tls}
        location / {{
            root {www};
        }}
    }}
}}
"""

LUA_WALK = """\
-- Each request asks for a different page: cycle through every page's query (its next token), each wrk
-- thread starting at its own offset.
local paths = {%s}
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local i = 0
function init(args)
  i = ((id or 0) * 7919) %% #paths
end
function request()
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
"""


def need_tools():
    missing = [t for t in ("nginx", "wrk", "curl") if shutil.which(t) is None and not os.path.exists("/usr/sbin/" + t)]
    if missing:
        sys.exit("missing: %s. On Debian: apt-get install -y %s (this benchmark does not run without them)"
                 % (", ".join(missing), " ".join(missing)))


def nginx_binary():
    return shutil.which("nginx") or "/usr/sbin/nginx"


def version(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return (p.stdout + p.stderr).strip().splitlines()[0]


def uptime():
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def write_objects(path, n):
    """N indicators as JSON lines (the generator of bench.py: same ids and bytes for a given N)."""
    import random
    rng = random.Random(1)
    base = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    with open(path, "w") as f:
        for i in range(n):
            t = (base + datetime.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            oid = uuid.UUID(int=rng.getrandbits(128), version=4)
            f.write(INDICATOR % (oid, t, t, i, 10 + i % 200, (i >> 16) & 255, (i >> 8) & 255, i & 255, t))
            f.write("\n")


def objects_path(srv):
    """The collection's objects path on the server, from discovery (the api root is in it)."""
    s = requests.Session()
    s.trust_env = False
    s.verify = srv.verify
    s.auth = (srv.user, srv.password)
    d = s.get(srv.discovery_url, headers={"Accept": TAXII}, timeout=30)
    d.raise_for_status()
    root = requests.compat.urljoin(srv.discovery_url, d.json().get("default") or d.json()["api_roots"][0])
    if not root.endswith("/"):
        root += "/"
    url = root + "collections/%s/objects/" % srv.collection
    return url, s


def walk(srv, key, page):
    """Every page's query (limit, and the `next` token of the page before; the first page has
    none) and the number of objects seen.

    Pages are chained with `next`, not `added_after`: `kizuna import` stores 10,000 objects per
    transaction with one `date_added`, so `added_after` cannot address a page inside such a batch.
    Kizuna's tokens are stateless and can be replayed, which is what wrk does."""
    url, s = objects_path(srv)
    s.auth = None
    headers = {"Accept": TAXII, "Authorization": "Bearer " + key}
    queries, seen, token = [], 0, None
    while True:
        query = "limit=%d" % page + ("&next=%s" % urllib.parse.quote(token, safe="") if token else "")
        queries.append(query)
        r = s.get(url + "?" + query, headers=headers, timeout=60)
        r.raise_for_status()
        body = r.json()
        got = len(body.get("objects", []))
        seen += got
        token = body.get("next")
        if not body.get("more") or not token or got == 0:
            break
    return url, queries, seen


def parse_wrk(out):
    def ms(v):
        m = re.match(r"([\d.]+)(us|ms|s)", v)
        f = float(m.group(1))
        return f / 1000 if m.group(2) == "us" else f * 1000 if m.group(2) == "s" else f

    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    for p in ("50", "99"):
        res["p%s_ms" % p] = ms(re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % p, out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(bad.group(1)) if bad else 0
    errs = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = errs.group(1) if errs else ""
    return res


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` and of its children (nginx's workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            pids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def run_wrk(args, url, headers=(), script=None, server_pid=None):
    """wrk against `url`; with `server_pid`, also the server's CPU time per request (microseconds),
    which depends far less on what else loads the machine than requests/s does."""
    before = cpu_seconds(server_pid) if server_pid else None
    res = _run_wrk(args, url, headers, script)
    if server_pid:
        requests_done = res["rps"] * args.duration
        res["server_cpu_s"] = cpu_seconds(server_pid) - before
        res["server_cpu_us_per_request"] = 1e6 * res["server_cpu_s"] / max(requests_done, 1)
    return res


def _run_wrk(args, url, headers=(), script=None):
    cmd = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % args.duration, "--latency",
           "--timeout", "10s"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res = parse_wrk(out)
    res["command"] = " ".join(c if " " not in c else "'%s'" % c for c in cmd)
    if res["non_2xx"] or res["socket_errors"]:
        print(out)
        raise RuntimeError("wrk saw failures: %d non-2xx, socket errors %s" % (res["non_2xx"], res["socket_errors"]))
    return res


def start_nginx(tmp, www, port, tls_pair, workers):
    tls = ""
    if tls_pair:
        tls = "ssl_certificate %s;\n        ssl_certificate_key %s;" % tls_pair
    conf = os.path.join(tmp, "nginx-%d.conf" % port)
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(workers=workers, tmp=tmp, port=port, ssl="ssl" if tls_pair else "",
                                  tls=tls, www=www, taxii=TAXII))
    log = open(os.path.join(tmp, "nginx-%d.out" % port), "wb")
    proc = subprocess.Popen([nginx_binary(), "-p", tmp, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc


def wait_http(url, verify, proc, tries=200):
    for _ in range(tries):
        if proc.poll() is not None:
            raise RuntimeError("nginx exited with %s" % proc.returncode)
        try:
            r = requests.get(url, verify=verify, timeout=5)
            if r.status_code == 200:
                return r.content
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError("nginx did not answer %s" % url)


def stop(proc):
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def scenario_set(args, tmp, srv, key, plain):
    """nginx static file, Kizuna's middle page, Kizuna walking every page: one transport."""
    label = "http" if plain else "https"
    url, queries, seen = walk(srv, key, args.page)
    if seen != args.n:
        raise RuntimeError("walked %d objects, expected %d" % (seen, args.n))
    page_url = "%s?%s" % (url, queries[len(queries) // 2])
    body_file = os.path.join(tmp, "page-%s.json" % label)
    curl = ["curl", "-sS", "--fail", "-o", body_file, "-H", "Accept: " + TAXII, "-H", "Authorization: Bearer " + key]
    if not plain:
        curl += ["--cacert", srv.cert]
    subprocess.run(curl + [page_url], check=True)
    page_bytes = os.path.getsize(body_file)
    www = os.path.join(tmp, "www-%s" % label)
    os.makedirs(www, exist_ok=True)
    shutil.copy(body_file, os.path.join(www, "page.json"))
    for p in (tmp, www, os.path.join(www, "page.json")):
        os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)  # nginx's workers run as nobody under root
    port = servers.free_port()
    data = srv.data_dir
    tls_pair = None if plain else (os.path.join(data, "tls", "cert.pem"), os.path.join(data, "tls", "key.pem"))
    nginx = start_nginx(tmp, www, port, tls_pair, args.nginx_workers)
    scheme = "http" if plain else "https"
    static_url = "%s://127.0.0.1:%d/page.json" % (scheme, port)
    try:
        served = wait_http(static_url, False if plain else srv.cert, nginx)
        if served != open(body_file, "rb").read():
            raise RuntimeError("nginx serves other bytes than the saved page")
        print("== %s: page of %d objects from the middle, %d bytes; %d pages in the walk"
              % (label, args.page, page_bytes, len(queries)), flush=True)
        res = {"transport": label, "page_bytes": page_bytes, "pages": len(queries)}
        res["nginx"] = run_wrk(args, static_url, server_pid=nginx.pid)
        print("   nginx static file:     %s" % fmt(res["nginx"]), flush=True)
    finally:
        stop(nginx)
    hdrs = ["Accept: " + TAXII, "Authorization: Bearer " + key]
    res["kizuna_same_page"] = run_wrk(args, page_url, hdrs, server_pid=srv.proc.pid)
    print("   kizuna, same page:     %s" % fmt(res["kizuna_same_page"]), flush=True)
    base = re.match(r"(https?://[^/]+)", url).group(1)
    path = url[len(base):]
    paths = ['"%s?%s"' % (path, q) for q in queries]
    script = os.path.join(tmp, "walk-%s.lua" % label)
    with open(script, "w") as f:
        f.write(LUA_WALK % ",\n  ".join(paths))
    res["kizuna_walking"] = run_wrk(args, base + path, hdrs, script, server_pid=srv.proc.pid)
    print("   kizuna, walking pages: %s" % fmt(res["kizuna_walking"]), flush=True)
    for k in ("kizuna_same_page", "kizuna_walking"):
        res[k]["ratio_to_nginx"] = res[k]["rps"] / res["nginx"]["rps"]
    return res


def fmt(r):
    s = "%9.0f requests/s, p50 %6.2f ms, p99 %6.2f ms" % (r["rps"], r["p50_ms"], r["p99_ms"])
    if "server_cpu_us_per_request" in r:
        s += ", server CPU %.0f us/request" % r["server_cpu_us_per_request"]
    if "ratio_to_nginx" in r:
        s += ", %.2f of nginx" % r["ratio_to_nginx"]
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="objects in the collection (default 100,000)")
    ap.add_argument("--page", type=int, default=100, help="objects per page (default 100)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    ap.add_argument("--duration", type=int, default=15, help="seconds per wrk run (default 15)")
    ap.add_argument("--nginx-workers", default="2", help="nginx worker_processes (default 2, the machine's cores)")
    ap.add_argument("--tls-only", action="store_true", help="skip the plain-HTTP scenarios")
    ap.add_argument("--no-build", action="store_true", help="use target/release/kizuna as it is")
    ap.add_argument("--binary", help="this kizuna binary instead of target/release/kizuna (implies --no-build)")
    ap.add_argument("--diagnose-without-audit", action="store_true",
                    help="diagnosis only, not the comparison: run Kizuna with audit_reads = false to see "
                         "what the audit of reads costs")
    ap.add_argument("--json-out", help="default target/bench/nginx-<UTC date>.json")
    args = ap.parse_args()
    need_tools()
    binary = args.binary or servers.kizuna_binary(build=not args.no_build)
    date = datetime.datetime.now(datetime.timezone.utc)
    out = args.json_out or os.path.join(ROOT, "target", "bench", "nginx-%s.json" % date.strftime("%Y%m%dT%H%M"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    meta = {"date": date.isoformat(), "command": sys.argv, "nginx": version([nginx_binary(), "-v"]),
            "wrk": version(["wrk", "-v"]), "kizuna": binary, "cpus": os.cpu_count(), "platform": platform.platform(),
            "uptime_before": uptime()}
    try:
        meta["cpu"] = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print("%s; %s; %s" % (meta["nginx"], meta["wrk"], meta["uptime_before"]), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="kizuna-nginx-") as tmp:
        os.chmod(tmp, 0o755)
        work = os.path.join(tmp, "kizuna")
        os.makedirs(work)
        toml = KIZUNA_BENCH_TOML + ("audit_reads = false\n" if args.diagnose_without_audit else "")
        meta["audit_reads"] = not args.diagnose_without_audit
        srv = servers.Kizuna(work, binary, config_toml=toml).start()
        try:
            objects = os.path.join(tmp, "objects.jsonl")
            write_objects(objects, args.n)
            t = time.time()
            srv.cli("import", objects, "--collection", srv.collection, "--quiet")
            print("imported %d objects in %.1f s" % (args.n, time.time() - t), flush=True)
            # Unmarked objects count as AMBER (the default `unmarked_as`): the reader needs that clearance.
            out_add = srv.cli("account", "add", "bench", "--api-key", "--read", srv.collection,
                              "--tlp-clearance", "amber")
            key = out_add.strip().splitlines()[-1].strip()
            results.append(scenario_set(args, tmp, srv, key, plain=False))
        finally:
            srv.stop()
        if not args.tls_only:
            os.remove(srv.ready_file)
            srv.extra_args = ["--danger-plaintext-http"]
            srv.start()
            try:
                results.append(scenario_set(args, tmp, srv, key, plain=True))
            finally:
                srv.stop()
    meta["uptime_after"] = uptime()
    with open(out, "w") as f:
        json.dump(dict(meta, results=results), f, indent=2)
    print()
    print("| transport | scenario | requests/s | p50 ms | p99 ms | server CPU us/request | Kizuna / nginx |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        for k, name in (("nginx", "nginx, static file"), ("kizuna_same_page", "Kizuna, same page"),
                        ("kizuna_walking", "Kizuna, walking all pages")):
            x = r[k]
            ratio = "%.2f" % x["ratio_to_nginx"] if "ratio_to_nginx" in x else ""
            print("| %s | %s | %.0f | %.2f | %.2f | %.0f | %s |" % (r["transport"], name, x["rps"], x["p50_ms"],
                                                                   x["p99_ms"], x["server_cpu_us_per_request"],
                                                                   ratio))
    print("\n%s; %s; page %d objects, %d bytes; wrk -t%d -c%d -d%ds; JSON: %s"
          % (date.strftime("%Y-%m-%d %H:%M UTC"), meta.get("cpu", ""), args.page, results[0]["page_bytes"],
             args.threads, args.connections, args.duration, out))
    print("before: %s\nafter:  %s" % (meta["uptime_before"], meta["uptime_after"]))
    if args.diagnose_without_audit:
        print("DIAGNOSIS: audit of reads OFF (audit_reads = false); not a valid comparison")
    worst = min(r[k]["ratio_to_nginx"] for r in results for k in ("kizuna_same_page", "kizuna_walking"))
    print("target Kizuna/nginx >= 0.5: %s (lowest ratio %.2f)" % ("met" if worst >= 0.5 else "NOT met", worst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
