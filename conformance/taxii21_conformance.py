#!/usr/bin/env python3
"""TAXII 2.1 conformance suite: one test per normative statement of the OASIS Standard.

Each test names the section of "TAXII Version 2.1, OASIS Standard, 10 June 2021" it checks, in its
id and its docstring. Tests have a level:

* MUST   -- the statement is a MUST / MUST NOT / REQUIRED in the spec text (or a normative
            endpoint table). Only these make the conformance score and the exit status.
* SHOULD -- a SHOULD, or behaviour the spec describes as the expected one without a MUST
            (e.g. the error codes in the endpoint tables, which section 3.6 calls "common
            errors"). Scored separately.
* MAY    -- a behaviour the spec leaves open (e.g. 406/415 for media types it does not define):
            the test records what the server does and fails only if it does neither of the
            permitted things.

The suite targets any server. It writes its own objects with fresh ids on every run, so it can be
rerun against the same collection, and it scopes every read to those ids with match[id].

Usage:
    taxii21_conformance.py --discovery https://host/taxii2/ --user U --password P \
        [--cacert FILE | --insecure] [--api-root NAME] --collection ID \
        [--read-only-collection ID] [--write-only-collection ID] [--json-report FILE]

The last line printed is the MUST score, exactly "N passed, M failed, K skipped". The exit status is
0 when no MUST test failed (with --strict: no MUST or SHOULD test failed).
"""

import argparse
import datetime
import json
import re
import socket
import ssl
import sys
import time
import traceback
import urllib.parse
import uuid

import requests

TAXII = "application/taxii+json;version=2.1"
TAXII_ANY = "application/taxii+json"
TIMEOUT = 30
# Section 2, type timestamp: RFC 3339, UTC with "Z", exactly microsecond precision.
TAXII_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
ANY_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
STATUS_POLLS = 100
STATUS_POLL_WAIT = 0.1


class Fail(AssertionError):
    pass


class Skip(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def ts_key(value):
    """Sort key of an RFC 3339 UTC timestamp, exact to the nanosecond; None when malformed."""
    if not isinstance(value, str):
        return None
    m = ANY_TIMESTAMP.match(value)
    if not m:
        return None
    frac = (m.group(7) or "").ljust(9, "0")
    return tuple(int(g) for g in m.groups()[:6]) + (int(frac),)


def stix_ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_media_type(value):
    """'application/taxii+json; version=2.1' -> ('application/taxii+json', {'version': '2.1'})."""
    if not value:
        return None, {}
    parts = [p.strip() for p in value.split(";")]
    params = {}
    for p in parts[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].lower(), params


def is_taxii21(content_type):
    mt, params = parse_media_type(content_type)
    return mt == TAXII_ANY and params.get("version") == "2.1"


# --------------------------------------------------------------------------------------------
# Registry of tests

TESTS = []


def test(tid, level="MUST"):
    def deco(fn):
        TESTS.append((tid, level, fn))
        return fn

    return deco


# --------------------------------------------------------------------------------------------
# Context: HTTP session, URLs, fixtures, and a log of every exchange for the global checks


class Exchange:
    def __init__(self, method, url, accept, resp):
        self.method = method
        self.url = url
        self.accept = accept
        self.status = resp.status_code
        self.headers = resp.headers
        self.text = resp.text
        self.body = None
        self.json_error = None
        if resp.content:
            try:
                self.body = resp.json()
            except ValueError as e:
                self.json_error = str(e)


class Ctx:
    def __init__(self, args):
        self.args = args
        self.discovery_url = args.discovery if args.discovery.endswith("/") else args.discovery + "/"
        self.auth = (args.user, args.password)
        if args.cacert:
            self.verify = args.cacert
        elif args.insecure:
            self.verify = False
            requests.packages.urllib3.disable_warnings()
        else:
            self.verify = True
        self.session = requests.Session()
        # Passed with every request too: a session-level verify loses to REQUESTS_CA_BUNDLE.
        self.session.verify = self.verify
        self.log = []
        self.fx = {}
        self.fx_error = None
        self.api_root_url = None
        self.tag = uuid.uuid4().hex[:12]

    # -- HTTP

    def req(self, method, url, accept=TAXII, auth=True, params=None, data=None, content_type=None,
            headers=None, record=True):
        h = {}
        if accept is not None:
            h["Accept"] = accept
        if content_type is not None:
            h["Content-Type"] = content_type
        if headers:
            h.update(headers)
        resp = self.session.request(
            method, url, headers=h, params=params, data=data, timeout=TIMEOUT, verify=self.verify,
            auth=(self.auth if auth is True else (auth or None)), allow_redirects=False,
        )
        ex = Exchange(method, resp.url, accept, resp)
        if record:
            self.log.append(ex)
        return ex

    def get(self, url, **kw):
        return self.req("GET", url, **kw)

    def post_objects(self, objects, url=None, content_type=TAXII, raw=None):
        body = raw if raw is not None else json.dumps({"objects": objects})
        return self.req("POST", url or self.objects_url, data=body.encode() if isinstance(body, str) else body,
                        content_type=content_type)

    def final_status(self, ex):
        """Polls the status resource of a 202 until it is complete (bounded), returns its body."""
        st = ex.body
        for _ in range(STATUS_POLLS):
            if not isinstance(st, dict) or st.get("status") != "pending" or "id" not in st:
                return st
            time.sleep(STATUS_POLL_WAIT)
            r = self.get(self.status_url(st["id"]))
            if r.status != 200:
                return st
            st = r.body
        return st

    # -- URLs

    @property
    def collections_url(self):
        return self.api_root_url + "collections/"

    def collection_url(self, cid=None):
        return self.collections_url + (cid or self.args.collection) + "/"

    @property
    def objects_url(self):
        return self.collection_url() + "objects/"

    @property
    def manifest_url(self):
        return self.collection_url() + "manifest/"

    def object_url(self, oid, cid=None):
        return self.collection_url(cid) + "objects/" + oid + "/"

    def versions_url(self, oid):
        return self.object_url(oid) + "versions/"

    def status_url(self, sid):
        return self.api_root_url + "status/" + sid + "/"

    # -- fixtures

    def need(self, *names):
        if self.fx_error:
            raise Fail("fixture setup failed: " + self.fx_error)
        for n in names:
            if n not in self.fx:
                raise Fail("fixture %r unavailable" % n)
        return [self.fx[n] for n in names] if len(names) > 1 else self.fx[names[0]]

    def ids(self, *names):
        return ",".join(self.fx[n]["id"] for n in names)


# --------------------------------------------------------------------------------------------
# Objects written by the suite


def new_id(t):
    return "%s--%s" % (t, uuid.uuid4())


def indicator(ctx, oid, created, modified, n):
    return {
        "type": "indicator", "spec_version": "2.1", "id": oid,
        "created": stix_ts(created), "modified": stix_ts(modified),
        "name": "kizuna conformance %s #%d" % (ctx.tag, n),
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '198.51.100.%d']" % (n % 250 + 1),
        "pattern_type": "stix", "valid_from": stix_ts(created),
    }


def build_fixtures(ctx):
    """Writes the run's objects. Every POST's exchange and final status is kept for the tests.

    post1: versioned indicator X (3 versions), malware M, marking-definition D (unversioned),
           indicator DEL (to delete), indicator DELV (2 versions, one to delete)  -- 8 objects
    post2..4: indicators I1, I2, I3, one per POST (distinct, increasing date_added)
    post5: indicators B0..B4 in one envelope (they may share one date_added)
    """
    base = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(days=1)
    base = base.replace(microsecond=(int(uuid.uuid4().int) % 1000) * 1000)
    v = [base + datetime.timedelta(seconds=i) for i in range(3)]
    x_id = new_id("indicator")
    fx = ctx.fx
    fx["X"] = {"id": x_id, "versions": [stix_ts(t) for t in v],
               "objects": [indicator(ctx, x_id, v[0], t, 1) for t in v]}
    m_id = new_id("malware")
    fx["M"] = {"id": m_id, "object": {
        "type": "malware", "spec_version": "2.1", "id": m_id, "created": stix_ts(v[0]),
        "modified": stix_ts(v[0]), "name": "kizuna conformance %s" % ctx.tag, "is_family": False,
        "malware_types": ["trojan"]}}
    d_id = new_id("marking-definition")
    fx["D"] = {"id": d_id, "created": stix_ts(v[0]), "object": {
        "type": "marking-definition", "spec_version": "2.1", "id": d_id, "created": stix_ts(v[0]),
        "definition_type": "statement",
        "definition": {"statement": "kizuna conformance run %s" % ctx.tag}}}
    del_id = new_id("indicator")
    fx["DEL"] = {"id": del_id, "object": indicator(ctx, del_id, v[0], v[0], 2)}
    delv_id = new_id("indicator")
    fx["DELV"] = {"id": delv_id, "versions": [stix_ts(v[0]), stix_ts(v[1])],
                  "objects": [indicator(ctx, delv_id, v[0], t, 3) for t in v[:2]]}
    env1 = fx["X"]["objects"] + [fx["M"]["object"], fx["D"]["object"], fx["DEL"]["object"]] + fx["DELV"]["objects"]
    fx["post1_objects"] = env1
    ex = ctx.post_objects(env1)
    fx["post1"] = ex
    if ex.status != 202:
        raise Fail("POST of the fixture envelope answered %d: %s" % (ex.status, ex.text[:300]))
    fx["post1_final"] = ctx.final_status(ex)
    for i, name in enumerate(("I1", "I2", "I3")):
        oid = new_id("indicator")
        obj = indicator(ctx, oid, v[0], v[0], 10 + i)
        fx[name] = {"id": oid, "object": obj}
        r = ctx.post_objects([obj])
        if r.status != 202:
            raise Fail("POST of %s answered %d" % (name, r.status))
        ctx.final_status(r)
    batch = []
    for i in range(5):
        oid = new_id("indicator")
        fx["B%d" % i] = {"id": oid}
        batch.append(indicator(ctx, oid, v[0], v[0], 20 + i))
    r = ctx.post_objects(batch)
    if r.status != 202:
        raise Fail("POST of the batch answered %d" % r.status)
    ctx.final_status(r)
    fx["batch_ids"] = [o["id"] for o in batch]


def manifest_of(ctx, ids, extra=None):
    """Manifest records of the given ids (all versions), paged with next/added_after if needed."""
    params = {"match[id]": ",".join(ids), "match[version]": "all"}
    params.update(extra or {})
    recs, _, _ = page_all(ctx, ctx.manifest_url, params, limit=100, max_pages=20)
    return recs


def page_all(ctx, url, params, limit, max_pages):
    """Pages through an endpoint; returns (items, exchanges, how) where how is 'next'/'added_after'."""
    items, exchanges, how = [], [], set()
    p = dict(params)
    p["limit"] = str(limit)
    for _ in range(max_pages):
        ex = ctx.get(url, params=p)
        exchanges.append(ex)
        if ex.status != 200 or not isinstance(ex.body, dict):
            raise Fail("GET %s answered %d: %s" % (ex.url, ex.status, ex.text[:200]))
        page = ex.body.get("objects", ex.body.get("versions", []))
        items.extend(page)
        if not ex.body.get("more"):
            return items, exchanges, how
        if ex.body.get("next"):
            p = dict(params)
            p["limit"] = str(limit)
            p["next"] = ex.body["next"]
            how.add("next")
        else:
            last = ex.headers.get("X-TAXII-Date-Added-Last")
            if not page or not last:
                raise Fail("more=true without next, objects or X-TAXII-Date-Added-Last: cannot page on")
            p = dict(params)
            p["limit"] = str(limit)
            p["added_after"] = last
            how.add("added_after")
    raise Fail("still more=true after %d pages" % max_pages)


def objects_of(ex):
    if not isinstance(ex.body, dict):
        raise Fail("body is not a JSON object: %r" % ex.text[:200])
    objs = ex.body.get("objects", [])
    check(isinstance(objs, list), "objects is not a list")
    return objs


def expect_200(ex):
    check(ex.status == 200, "%s %s answered %d (wanted 200): %s" % (ex.method, ex.url, ex.status, ex.text[:300]))
    check(isinstance(ex.body, dict), "%s %s: body is not a JSON object" % (ex.method, ex.url))
    return ex.body


def versions_in(objs, oid):
    return sorted((o.get("modified") or o.get("created")) for o in objs if o.get("id") == oid)


# --------------------------------------------------------------------------------------------
# 8.2: transport, discovery location, authentication


def tls_probe(ctx, max_version=None, min_version=None):
    u = urllib.parse.urlsplit(ctx.discovery_url)
    host, port = u.hostname, u.port or 443
    if ctx.verify is False:
        c = ssl._create_unverified_context()
    elif isinstance(ctx.verify, str):
        c = ssl.create_default_context(cafile=ctx.verify)
    else:
        c = ssl.create_default_context()
    if max_version:
        c.maximum_version = max_version
    if min_version:
        c.minimum_version = min_version
    with socket.create_connection((host, port), timeout=10) as s:
        with c.wrap_socket(s, server_hostname=host) as t:
            return t.version()


@test("8.2.2-https")
def t_https(ctx):
    """8.2.2 (1): the server MUST accept TAXII 2.1 requests using HTTPS."""
    check(urllib.parse.urlsplit(ctx.discovery_url).scheme == "https",
          "discovery URL is %s: the server under test speaks plain HTTP" % ctx.discovery_url)
    expect_200(ctx.get(ctx.discovery_url))


@test("8.2.2-tls12")
def t_tls12(ctx):
    """8.2.2 (2): the server MUST accept connections using TLS 1.2."""
    if urllib.parse.urlsplit(ctx.discovery_url).scheme != "https":
        raise Skip("not HTTPS (counted once, by 8.2.2-https)")
    try:
        v = tls_probe(ctx, max_version=ssl.TLSVersion.TLSv1_2)
    except (ssl.SSLError, OSError) as e:
        raise Fail("TLS 1.2 handshake failed: %s" % e)
    check(v == "TLSv1.2", "negotiated %s" % v)


@test("8.2.2-tls13", "SHOULD")
def t_tls13(ctx):
    """8.2.2 (2): the server SHOULD accept connections using TLS 1.3."""
    if urllib.parse.urlsplit(ctx.discovery_url).scheme != "https":
        raise Skip("not HTTPS")
    try:
        v = tls_probe(ctx, min_version=ssl.TLSVersion.TLSv1_3)
    except (ssl.SSLError, OSError) as e:
        raise Fail("TLS 1.3 handshake failed: %s" % e)
    check(v == "TLSv1.3", "negotiated %s" % v)


@test("8.2.2-basic-auth", "SHOULD")
def t_basic(ctx):
    """8.2.2 (5): the server SHOULD implement HTTP Basic (RFC 7617); the suite authenticates with it."""
    expect_200(ctx.get(ctx.collections_url))


@test("8.2.1-discovery-path")
def t_discovery_path(ctx):
    """8.2.1 (1): the Discovery URL MUST be /taxii2/ at the root of the server."""
    check(urllib.parse.urlsplit(ctx.discovery_url).path == "/taxii2/",
          "discovery path is %r" % urllib.parse.urlsplit(ctx.discovery_url).path)
    expect_200(ctx.get(ctx.discovery_url))


@test("8.2.1-no-user-agent", "SHOULD")
def t_no_user_agent(ctx):
    """8.2.1 (7): the server SHOULD NOT reject a valid request that lacks a User-Agent header."""
    expect_200(ctx.get(ctx.collection_url(), headers={"User-Agent": None}))


def unauth_case(ctx, method, url, auth=False, **kw):
    ex = ctx.req(method, url, auth=auth, **kw)
    check(ex.status in (401, 404), "%s %s without valid credentials answered %d (MUST be 401 or 404)"
          % (method, url, ex.status))


def _unauth_test(tid, doc, method, url_fn, body=False):
    def fn(ctx):
        kw = {}
        if body:
            kw = {"data": json.dumps({"objects": [indicator(ctx, new_id("indicator"),
                                                            datetime.datetime.now(datetime.timezone.utc),
                                                            datetime.datetime.now(datetime.timezone.utc), 99)]}),
                  "content_type": TAXII}
        unauth_case(ctx, method, url_fn(ctx), **kw)

    fn.__doc__ = doc
    test(tid)(fn)


_UNAUTH = [
    ("5.1-unauthenticated", "GET", lambda c: c.collections_url, False),
    ("5.2-unauthenticated", "GET", lambda c: c.collection_url(), False),
    ("5.3-unauthenticated", "GET", lambda c: c.manifest_url, False),
    ("5.4-unauthenticated", "GET", lambda c: c.objects_url, False),
    ("5.5-unauthenticated", "POST", lambda c: c.objects_url, True),
    ("5.6-unauthenticated", "GET", lambda c: c.object_url(c.fx["X"]["id"] if "X" in c.fx else new_id("indicator")), False),
    ("5.7-unauthenticated", "DELETE", lambda c: c.object_url(c.fx["X"]["id"] if "X" in c.fx else new_id("indicator")), False),
    ("5.8-unauthenticated", "GET", lambda c: c.versions_url(c.fx["X"]["id"] if "X" in c.fx else new_id("indicator")), False),
]
for _tid, _m, _u, _b in _UNAUTH:
    _unauth_test(_tid, "%s: a client that fails authentication (no credentials) MUST get 401 or 404 from %s."
                 % (_tid.split("-")[0], _m), _m, _u, _b)


@test("5.4-wrong-password")
def t_wrong_password(ctx):
    """5.4: a client that fails authentication (wrong password) MUST get 401 or 404."""
    unauth_case(ctx, "GET", ctx.objects_url, auth=(ctx.args.user, ctx.args.password + "-wrong"))


@test("1.6.9-www-authenticate")
def t_www_authenticate(ctx):
    """1.6.9 and RFC 7235 section 3.1: a 401 response MUST carry a WWW-Authenticate challenge."""
    ex = ctx.get(ctx.collections_url, auth=False)
    if ex.status != 401:
        raise Skip("server answers %d, not 401, without credentials" % ex.status)
    check(ex.headers.get("WWW-Authenticate"), "401 without WWW-Authenticate")


# --------------------------------------------------------------------------------------------
# 4.1 Discovery


@test("4.1-discovery")
def t_discovery(ctx):
    """4.1: GET /taxii2/ answers 200 with a discovery resource."""
    b = expect_200(ctx.get(ctx.discovery_url))
    ctx.fx["discovery"] = b


@test("4.1.1-discovery-title")
def t_discovery_title(ctx):
    """4.1.1 and 3.8: the required property title MUST be present (a string)."""
    b = expect_200(ctx.get(ctx.discovery_url))
    check(isinstance(b.get("title"), str), "title missing or not a string: %r" % b.get("title"))


@test("4.1.1-discovery-default-in-api-roots")
def t_discovery_default(ctx):
    """4.1.1: the default API Root MUST be an item in api_roots."""
    b = expect_200(ctx.get(ctx.discovery_url))
    if "default" not in b:
        raise Skip("no default API Root advertised")
    check(b["default"] in (b.get("api_roots") or []), "default %r not in api_roots %r" % (b["default"], b.get("api_roots")))


@test("4.1.1-api-root-urls")
def t_api_root_urls(ctx):
    """4.1.1: API Root URLs MUST be HTTPS absolute URLs or relative URLs beginning with a single '/'
    (not '//' or '../'), and MUST NOT contain a query component."""
    b = expect_200(ctx.get(ctx.discovery_url))
    roots = b.get("api_roots")
    if not roots:
        raise Skip("no api_roots advertised")
    bad = []
    for r in roots:
        u = urllib.parse.urlsplit(r)
        if u.query:
            bad.append((r, "has a query"))
        elif u.scheme:
            if u.scheme != "https":
                bad.append((r, "absolute but not https"))
        elif not r.startswith("/") or r.startswith("//"):
            bad.append((r, "relative but does not begin with a single '/'"))
    check(not bad, "; ".join("%s: %s" % x for x in bad))


# --------------------------------------------------------------------------------------------
# 4.2 API Root


@test("4.2-api-root")
def t_api_root(ctx):
    """4.2: GET {api-root}/ answers 200 with an api-root resource."""
    b = expect_200(ctx.get(ctx.api_root_url))
    ctx.fx["api_root"] = b


def api_root_info(ctx):
    if "api_root" not in ctx.fx:
        ctx.fx["api_root"] = expect_200(ctx.get(ctx.api_root_url))
    return ctx.fx["api_root"]


@test("4.2.1-api-root-required")
def t_api_root_required(ctx):
    """4.2.1 and 3.8: title, versions and max_content_length are required."""
    b = api_root_info(ctx)
    missing = [k for k in ("title", "versions", "max_content_length") if k not in b]
    check(not missing, "missing %s" % missing)
    check(isinstance(b["title"], str), "title is not a string")


@test("4.2.1-versions-include-2.1")
def t_versions_21(ctx):
    """4.2.1: versions MUST include "application/taxii+json;version=2.1"."""
    b = api_root_info(ctx)
    check(TAXII in (b.get("versions") or []), "versions = %r" % b.get("versions"))


@test("4.2.1-versions-version-parameter")
def t_versions_param(ctx):
    """4.2.1: every value of versions MUST be the TAXII media type with the version parameter."""
    b = api_root_info(ctx)
    vs = b.get("versions") or []
    check(vs, "versions empty or missing")
    bad = [v for v in vs if not (parse_media_type(v)[0] == TAXII_ANY and "version" in parse_media_type(v)[1])]
    check(not bad, "values without version parameter or not TAXII: %r" % bad)


@test("4.2.1-max-content-length-positive")
def t_mcl_positive(ctx):
    """4.2.1 and 2 (integer): max_content_length MUST be a positive integer (<= 2^53-1)."""
    m = api_root_info(ctx).get("max_content_length")
    check(isinstance(m, int) and not isinstance(m, bool) and 0 < m <= 2 ** 53 - 1, "max_content_length = %r" % m)


MAX_BODY_PROBE = 128 * 1024 * 1024


def padded_envelope(ctx, size):
    obj = indicator(ctx, new_id("indicator"), datetime.datetime.now(datetime.timezone.utc),
                    datetime.datetime.now(datetime.timezone.utc), 77)
    head = json.dumps({"objects": [obj]})
    check(size > len(head), "max_content_length %d is smaller than a one-object envelope" % size)
    # Insignificant JSON whitespace before the closing brace keeps the body a valid envelope.
    return (head[:-1] + " " * (size - len(head)) + "}").encode()


@test("4.2.1-under-max-content-length-not-413")
def t_under_mcl(ctx):
    """4.2.1: a request whose body is smaller than max_content_length MUST NOT result in 413."""
    m = api_root_info(ctx).get("max_content_length")
    if not isinstance(m, int) or m > MAX_BODY_PROBE:
        raise Skip("max_content_length %r above the probe cap of %d bytes" % (m, MAX_BODY_PROBE))
    ex = ctx.post_objects(None, raw=padded_envelope(ctx, m - 1))
    check(ex.status != 413, "a body of max_content_length-1 = %d bytes answered 413" % (m - 1))


def raw_post_status(ctx, url, body):
    """POSTs body like a careful HTTP/1.1 client: between chunks it looks for an early answer (a
    server may refuse an oversized body as soon as it sees Content-Length) and reads it even when
    the server then stops reading. Returns the status code, or None if no answer could be read."""
    import base64
    import select
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
    raw = socket.create_connection((host, port), timeout=TIMEOUT)
    if u.scheme == "https":
        if ctx.verify is False:
            c = ssl._create_unverified_context()
        elif isinstance(ctx.verify, str):
            c = ssl.create_default_context(cafile=ctx.verify)
        else:
            c = ssl.create_default_context()
        raw = c.wrap_socket(raw, server_hostname=host)
    cred = base64.b64encode(("%s:%s" % ctx.auth).encode()).decode()
    head = ("POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Basic %s\r\nAccept: %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (u.path + ("?" + u.query if u.query else ""), host, port, cred, TAXII, TAXII, len(body)))
    data = b""
    try:
        raw.sendall(head.encode())
        for i in range(0, len(body), 65536):
            if select.select([raw], [], [], 0)[0]:
                break
            raw.sendall(body[i:i + 65536])
    except OSError:
        pass  # the server stopped reading: its answer may still be waiting
    try:
        raw.settimeout(10)
        while b"\r\n" not in data:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        raw.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else None


@test("5.5-over-max-content-length-413", "SHOULD")
def t_over_mcl(ctx):
    """5.5 failure table: a POST over the API Root's max_content_length gets 413 (read by a client
    that watches for an early answer while it sends), and the server keeps serving."""
    m = api_root_info(ctx).get("max_content_length")
    if not isinstance(m, int) or m > MAX_BODY_PROBE:
        raise Skip("max_content_length %r above the probe cap of %d bytes" % (m, MAX_BODY_PROBE))
    status = raw_post_status(ctx, ctx.objects_url, padded_envelope(ctx, m + 1))
    check(status is not None, "the connection was closed without an answer that the client could read")
    check(status == 413, "a body of max_content_length+1 bytes answered %d" % status)
    expect_200(ctx.get(ctx.collection_url()))


@test("5.5-over-max-content-length-413-plain-client", "SHOULD")
def t_over_mcl_plain(ctx):
    """5.5 failure table, as a plain client meets it: `requests.post` of a body 16 MiB over
    max_content_length (more than the socket buffers hold), which writes the whole body before it
    reads anything, gets the 413 and its TAXII error body instead of a connection reset (the server
    must keep reading what it refused, as nginx's lingering close does)."""
    m = api_root_info(ctx).get("max_content_length")
    if not isinstance(m, int) or m + (16 << 20) > MAX_BODY_PROBE:
        raise Skip("max_content_length %r + 16 MiB above the probe cap of %d bytes" % (m, MAX_BODY_PROBE))
    try:
        ex = ctx.post_objects(None, raw=padded_envelope(ctx, m + (16 << 20)))
    except requests.ConnectionError as e:
        check(False, "requests.post of an oversized body got a connection error, not the 413: %s" % e)
    check(ex.status == 413, "a body of max_content_length + 16 MiB answered %d" % ex.status)
    check(isinstance(ex.body, dict) and "title" in ex.body, "the 413 has no TAXII error body: %r" % ex.text[:200])
    expect_200(ctx.get(ctx.collection_url()))


# --------------------------------------------------------------------------------------------
# 5.1 / 5.2 Collections


def collections_list(ctx):
    b = expect_200(ctx.get(ctx.collections_url))
    cs = b.get("collections", [])
    check(isinstance(cs, list), "collections is not a list")
    return cs


@test("5.1-collections")
def t_collections(ctx):
    """5.1: GET {api-root}/collections/ answers 200 and lists the collection under test."""
    cs = collections_list(ctx)
    check(any(c.get("id") == ctx.args.collection for c in cs),
          "collection %s not in %r" % (ctx.args.collection, [c.get("id") for c in cs]))


@test("5.2.1-collection-required")
def t_collection_required(ctx):
    """5.2.1 and 3.8: each collection has id (an identifier: UUIDv4), title, can_read and can_write
    (booleans); media_types, when present, is a non-empty list of strings."""
    bad = []
    for c in collections_list(ctx) + [expect_200(ctx.get(ctx.collection_url()))]:
        for k in ("id", "title", "can_read", "can_write"):
            if k not in c:
                bad.append("%s lacks %s" % (c.get("id"), k))
        if not (isinstance(c.get("id"), str) and UUID4.match(c["id"])):
            bad.append("id %r is not a UUIDv4 (section 2, identifier)" % c.get("id"))
        for k in ("can_read", "can_write"):
            if k in c and not isinstance(c[k], bool):
                bad.append("%s: %s is not a boolean" % (c.get("id"), k))
        if "media_types" in c and not (isinstance(c["media_types"], list) and c["media_types"]
                                       and all(isinstance(m, str) for m in c["media_types"])):
            bad.append("%s: media_types %r" % (c.get("id"), c["media_types"]))
    check(not bad, "; ".join(bad))


@test("3.3-collections-consistent-order")
def t_collections_order(ctx):
    """3.3: the Collections Endpoint MUST return collections in a consistent order across requests."""
    a = [c.get("id") for c in collections_list(ctx)]
    b = [c.get("id") for c in collections_list(ctx)]
    check(a == b, "order changed: %r then %r" % (a, b))


@test("5.2.1-alias-unique")
def t_alias_unique(ctx):
    """5.2.1: an alias, if defined, MUST be unique within the API Root."""
    aliases = [c["alias"] for c in collections_list(ctx) if "alias" in c]
    if not aliases:
        raise Skip("no collection has an alias")
    check(len(aliases) == len(set(aliases)), "duplicate aliases: %r" % aliases)


@test("5.2-collection")
def t_collection(ctx):
    """5.2: GET {api-root}/collections/{id}/ answers 200 with that collection."""
    b = expect_200(ctx.get(ctx.collection_url()))
    check(b.get("id") == ctx.args.collection, "id is %r" % b.get("id"))
    ctx.fx["collection"] = b


@test("5.2-collection-writable-readable", "SHOULD")
def t_collection_rw(ctx):
    """5.2.1: the suite's account can read and write the collection under test (a precondition of
    most tests below; can_read/can_write describe the requester's rights)."""
    b = expect_200(ctx.get(ctx.collection_url()))
    check(b.get("can_read") is True and b.get("can_write") is True,
          "can_read=%r can_write=%r" % (b.get("can_read"), b.get("can_write")))


@test("5.2-collection-by-alias", "SHOULD")
def t_alias_access(ctx):
    """5.2.1 (alias): a collection with an alias can be reached at {api-root}/collections/{alias}/."""
    c = expect_200(ctx.get(ctx.collection_url()))
    alias = c.get("alias") or next((x.get("alias") for x in collections_list(ctx) if x.get("alias")), None)
    if not alias:
        raise Skip("no collection has an alias")
    b = expect_200(ctx.get(ctx.collections_url + urllib.parse.quote(alias, safe="") + "/"))
    check(b.get("alias") == alias, "alias URL served %r" % b.get("id"))


@test("5.2-unknown-collection-404", "SHOULD")
def t_unknown_collection(ctx):
    """5.2 failure table: an unknown collection id gets 404."""
    ex = ctx.get(ctx.collection_url(str(uuid.uuid4())))
    check(ex.status == 404, "answered %d" % ex.status)


# --------------------------------------------------------------------------------------------
# 5.5 Add Objects and 4.3 Status (fixture POSTs)


STATUS_REQUIRED = ("id", "status", "total_count", "success_count", "failure_count", "pending_count")


@test("5.5-post-202")
def t_post_202(ctx):
    """5.5: a successful POST of an envelope answers 202 with a status resource."""
    ex = ctx.need("post1")
    check(ex.status == 202, "answered %d" % ex.status)
    check(isinstance(ex.body, dict) and "id" in ex.body, "no status resource: %r" % ex.text[:300])


@test("4.3.1-status-required")
def t_status_required(ctx):
    """4.3.1 and 3.8: id, status, total_count, success_count, failure_count and pending_count are
    required; counts are integers >= 0; id is an identifier (UUIDv4)."""
    for st in (ctx.need("post1").body, ctx.need("post1_final")):
        missing = [k for k in STATUS_REQUIRED if k not in st]
        check(not missing, "status resource lacks %s: %r" % (missing, st))
        for k in STATUS_REQUIRED[2:]:
            check(isinstance(st[k], int) and not isinstance(st[k], bool) and st[k] >= 0, "%s = %r" % (k, st[k]))
        check(isinstance(st["id"], str) and UUID4.match(st["id"]), "status id %r is not a UUIDv4" % st["id"])


@test("4.3.1-status-value")
def t_status_value(ctx):
    """4.3.1: status MUST be "complete" or "pending"."""
    for st in (ctx.need("post1").body, ctx.need("post1_final")):
        check(st.get("status") in ("complete", "pending"), "status = %r" % st.get("status"))


@test("4.3.1-total-count")
def t_total_count(ctx):
    """4.3.1: total_count is the number of objects in the envelope (8 here), once processing started."""
    st = ctx.need("post1_final")
    n = len(ctx.need("post1_objects"))
    check(st.get("total_count") == n, "total_count = %r for an envelope of %d" % (st.get("total_count"), n))


@test("4.3.1-counts-complete", "SHOULD")
def t_counts_complete(ctx):
    """4.3.1: once complete, success_count + failure_count + pending_count = total_count, no
    pendings, and all 8 valid objects succeeded."""
    st = ctx.need("post1_final")
    check(st.get("status") == "complete", "status still %r after polling" % st.get("status"))
    check(st["success_count"] + st["failure_count"] + st["pending_count"] == st["total_count"], "counts %r" % st)
    check(st["success_count"] == st["total_count"], "success_count %d of %d: failures %r"
          % (st["success_count"], st["total_count"], st.get("failures")))


@test("4.3.1-status-details")
def t_status_details(ctx):
    """4.3.1 status-details: id MUST be the STIX id; version MUST be the modified timestamp, or created
    for an object without modified (the marking-definition here)."""
    st = ctx.need("post1_final")
    details = [d for k in ("successes", "failures", "pendings") for d in (st.get(k) or [])]
    if not details:
        raise Skip("the status resource lists no status-details (they are optional)")
    objs = ctx.need("post1_objects")
    known = {(o["id"], ts_key(o.get("modified") or o["created"])) for o in objs}
    bad = []
    for d in details:
        if "id" not in d or "version" not in d:
            bad.append("missing id/version: %r" % d)
        elif (d["id"], ts_key(d["version"])) not in known:
            bad.append("%s version %r is not an id/version of the envelope" % (d["id"], d["version"]))
    check(not bad, "; ".join(bad))


@test("4.3-get-status")
def t_get_status(ctx):
    """4.3: GET {api-root}/status/{status-id}/ answers 200 with the status resource of that id."""
    sid = ctx.need("post1").body["id"]
    b = expect_200(ctx.get(ctx.status_url(sid)))
    check(b.get("id") == sid, "id %r" % b.get("id"))
    missing = [k for k in STATUS_REQUIRED if k not in b]
    check(not missing, "lacks %s" % missing)


@test("4.3-unknown-status-404")
def t_unknown_status(ctx):
    """4.3: a status id that is not (or no longer) available MUST get 404."""
    ex = ctx.get(ctx.status_url(str(uuid.uuid4())))
    check(ex.status == 404, "answered %d" % ex.status)


@test("5.5-duplicate-no-error")
def t_duplicate(ctx):
    """5.5: publishing an exact duplicate of an object already present MUST NOT be an error for it."""
    m = ctx.need("M")
    ex = ctx.post_objects([m["object"]])
    check(ex.status == 202, "duplicate POST answered %d: %s" % (ex.status, ex.text[:300]))
    st = ctx.final_status(ex)
    check(st.get("failure_count") == 0, "failure_count %r: %r" % (st.get("failure_count"), st.get("failures")))


@test("5.5-content-type-unversioned")
def t_ct_unversioned(ctx):
    """3.1 and 1.6.8.2: a request Content-Type defined for the endpoint (application/taxii+json, the
    unversioned form meaning the latest version) MUST NOT result in 415."""
    obj = indicator(ctx, new_id("indicator"), datetime.datetime.now(datetime.timezone.utc),
                    datetime.datetime.now(datetime.timezone.utc), 30)
    ex = ctx.post_objects([obj], content_type=TAXII_ANY)
    check(ex.status != 415, "Content-Type application/taxii+json answered 415")
    check(ex.status == 202, "answered %d: %s" % (ex.status, ex.text[:200]))


@test("5.5-content-type-not-taxii", "MAY")
def t_ct_json(ctx):
    """3.1: a Content-Type not defined for the endpoint (application/json) MAY be accepted or MAY get 415."""
    obj = indicator(ctx, new_id("indicator"), datetime.datetime.now(datetime.timezone.utc),
                    datetime.datetime.now(datetime.timezone.utc), 31)
    ex = ctx.post_objects([obj], content_type="application/json")
    check(ex.status in (202, 415), "answered %d" % ex.status)
    ctx.fx["ct_json_status"] = ex.status


@test("5.5-malformed-json", "SHOULD")
def t_malformed(ctx):
    """5.5 failure table: a malformed body gets 400 or 422 (not a 5xx), and the server keeps serving."""
    ex = ctx.post_objects(None, raw=b'{"objects": [{"type": "indicator", ')
    check(ex.status in (400, 422), "answered %d" % ex.status)
    expect_200(ctx.get(ctx.collection_url()))


# --------------------------------------------------------------------------------------------
# 5.4 Get Objects, 3.3 sorting, 3.4 filtering, 3.5 pagination


def get_objects(ctx, params, url=None):
    return ctx.get(url or ctx.objects_url, params=params)


@test("5.4-objects")
def t_objects(ctx):
    """5.4: GET objects answers 200 with an envelope holding the objects asked for."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1", "I2", "I3")}))
    got = sorted(o.get("id") for o in b.get("objects", []))
    check(got == sorted([ctx.fx[n]["id"] for n in ("I1", "I2", "I3")]), "got %r" % got)


@test("3.7-envelope-objects-stix")
def t_envelope_stix(ctx):
    """3.7: every item of an envelope's objects MUST be a STIX object (type, id; returned unchanged)."""
    ctx.need("M")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("M")}))
    objs = b.get("objects", [])
    check(len(objs) == 1, "%d objects" % len(objs))
    check(objs[0] == ctx.fx["M"]["object"], "object differs from the one posted: %r" % objs[0])


@test("5.4-empty-envelope")
def t_empty_envelope(ctx):
    """5.4 and 2 (list): when no objects match, the response MUST be an empty envelope: 200, and no
    objects property (empty lists are prohibited)."""
    b = expect_200(get_objects(ctx, {"match[id]": new_id("indicator")}))
    check("objects" not in b, "objects present: %r" % b.get("objects"))


def date_added_map(ctx, ids):
    recs = manifest_of(ctx, ids)
    return {(r.get("id"), ts_key(r.get("version"))): r.get("date_added") for r in recs}


@test("3.3-objects-ascending")
def t_objects_ascending(ctx):
    """3.3: objects MUST be sorted ascending by date_added (I1, I2, I3 were posted one after another)."""
    ctx.need("I1")
    names = ("I3", "I1", "I2")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids(*names)}))
    got = [o["id"] for o in b.get("objects", [])]
    da = date_added_map(ctx, [ctx.fx[n]["id"] for n in names])
    keys = [ts_key(da.get((o["id"], ts_key(o.get("modified"))))) for o in b.get("objects", [])]
    check(None not in keys, "date_added unknown for some objects: %r" % da)
    check(keys == sorted(keys), "order %r has date_added %r" % (got, keys))
    want = [ctx.fx[n]["id"] for n in ("I1", "I2", "I3")]
    if len(set(keys)) == 3:
        check(got == want, "got %r, posting order was %r" % (got, want))


@test("3.3-manifest-ascending")
def t_manifest_ascending(ctx):
    """3.3: manifest records MUST be sorted ascending by date_added (first page of the whole
    collection and the records of this run's objects)."""
    ctx.need("I1")
    b = expect_200(ctx.get(ctx.manifest_url, params={"limit": "100"}))
    keys = [ts_key(r.get("date_added")) for r in b.get("objects", [])]
    check(None not in keys, "malformed date_added")
    check(keys == sorted(keys), "whole-collection page not ascending")
    ids = [ctx.fx[n]["id"] for n in ("I1", "I2", "I3", "X", "M")] + ctx.fx["batch_ids"]
    recs = manifest_of(ctx, ids)
    keys = [ts_key(r.get("date_added")) for r in recs]
    check(None not in keys and keys == sorted(keys), "run's records not ascending: %r" % [r.get("date_added") for r in recs])


def _check_headers(ex, da_of=None):
    first = ex.headers.get("X-TAXII-Date-Added-First")
    last = ex.headers.get("X-TAXII-Date-Added-Last")
    check(first is not None and last is not None,
          "%s lacks X-TAXII-Date-Added-First/Last (got %r, %r)" % (ex.url, first, last))
    check(ts_key(first) is not None and ts_key(last) is not None, "headers are not timestamps: %r, %r" % (first, last))
    check(ts_key(first) <= ts_key(last), "First %s after Last %s" % (first, last))
    if da_of is not None:
        check(ts_key(first) == ts_key(da_of[0]), "First %s but the first item was added %s" % (first, da_of[0]))
        check(ts_key(last) == ts_key(da_of[-1]), "Last %s but the last item was added %s" % (last, da_of[-1]))


@test("3.2-objects-date-added-headers")
def t_hdr_objects(ctx):
    """3.2: every 200 of GET objects MUST carry X-TAXII-Date-Added-First/Last, the date_added of the
    first and of the last object of the response."""
    ctx.need("I1")
    names = ("I1", "I2", "I3")
    ex = get_objects(ctx, {"match[id]": ctx.ids(*names)})
    b = expect_200(ex)
    da = date_added_map(ctx, [ctx.fx[n]["id"] for n in names])
    seq = [da.get((o["id"], ts_key(o.get("modified")))) for o in b.get("objects", [])]
    _check_headers(ex, seq)


@test("3.2-manifest-date-added-headers")
def t_hdr_manifest(ctx):
    """3.2: every 200 of GET manifest MUST carry X-TAXII-Date-Added-First/Last matching its records."""
    ctx.need("I1")
    ex = ctx.get(ctx.manifest_url, params={"match[id]": ctx.ids("I1", "I2", "I3")})
    b = expect_200(ex)
    _check_headers(ex, [r.get("date_added") for r in b.get("objects", [])])


@test("3.2-object-date-added-headers")
def t_hdr_object(ctx):
    """3.2: every 200 of GET objects/{object-id}/ MUST carry X-TAXII-Date-Added-First/Last."""
    ex = ctx.get(ctx.object_url(ctx.need("I1")["id"]))
    expect_200(ex)
    _check_headers(ex)


@test("3.2-versions-date-added-headers")
def t_hdr_versions(ctx):
    """3.2: every 200 of GET objects/{object-id}/versions/ MUST carry X-TAXII-Date-Added-First/Last."""
    ex = ctx.get(ctx.versions_url(ctx.need("X")["id"]))
    expect_200(ex)
    _check_headers(ex)


@test("3.2-date-added-headers-empty", "SHOULD")
def t_hdr_empty(ctx):
    """3.2 says "all HTTP 200 series responses" of the four endpoints MUST carry the headers, but
    defines them as the date_added of the first/last object, which an empty response lacks; scored
    as SHOULD: an empty objects response still carries both headers."""
    ex = get_objects(ctx, {"match[id]": new_id("indicator")})
    expect_200(ex)
    _check_headers(ex)


@test("3.4-added-after")
def t_added_after(ctx):
    """3.4 added_after: only objects added after the timestamp (strictly) are returned."""
    ctx.need("I1")
    ids = [ctx.fx[n]["id"] for n in ("I1", "I2", "I3")]
    da = date_added_map(ctx, ids)
    by_id = {k[0]: v for k, v in da.items()}
    pivot = by_id[ids[0]]
    want = sorted(i for i in ids if ts_key(by_id[i]) > ts_key(pivot))
    b = expect_200(get_objects(ctx, {"match[id]": ",".join(ids), "added_after": pivot}))
    got = sorted(o["id"] for o in b.get("objects", []))
    check(got == want, "added_after=%s gave %r, wanted %r" % (pivot, got, want))
    bm = expect_200(ctx.get(ctx.manifest_url, params={"match[id]": ",".join(ids), "added_after": pivot}))
    got = sorted(r["id"] for r in bm.get("objects", []))
    check(got == want, "manifest: added_after=%s gave %r, wanted %r" % (pivot, got, want))


@test("3.4-limit-not-exceeded")
def t_limit(ctx):
    """3.4 limit: a response MUST NOT contain more objects than the client's limit."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1", "I2", "I3"), "limit": "1"}))
    check(len(b.get("objects", [])) <= 1, "%d objects for limit=1" % len(b.get("objects", [])))
    check(len(b.get("objects", [])) == 1, "no object for limit=1")


@test("3.4-limit-all-when-fit")
def t_limit_fit(ctx):
    """3.4 limit: when the objects available are no more than the limit (and the server's), all of
    them MUST be in the response."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1", "I2", "I3"), "limit": "3"}))
    check(len(b.get("objects", [])) == 3, "%d objects for 3 available with limit=3" % len(b.get("objects", [])))


@test("3.5-more-true")
def t_more(ctx):
    """3.4/3.5: when more objects are available the envelope MUST have more = true."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1", "I2", "I3"), "limit": "2"}))
    check(b.get("more") is True, "more = %r with 1 of 3 objects left" % b.get("more"))


@test("3.5-more-false-at-end", "SHOULD")
def t_more_false(ctx):
    """3.7: more identifies whether more content is available: absent or false on the last page."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1", "I2", "I3"), "limit": "3"}))
    check(not b.get("more"), "more = %r although all 3 objects were returned" % b.get("more"))


@test("3.5-paging-complete")
def t_paging(ctx):
    """3.5: paging with limit=1 (next, or added_after from X-TAXII-Date-Added-Last when next is
    absent) yields every matching object exactly once, in ascending order."""
    ctx.need("I1")
    want = [ctx.fx[n]["id"] for n in ("I1", "I2", "I3")]
    items, exs, how = page_all(ctx, ctx.objects_url, {"match[id]": ",".join(want)}, 1, 10)
    got = [o["id"] for o in items]
    ctx.fx["paging_how"] = how
    check(sorted(got) == sorted(want) and len(got) == 3, "paging (%s) gave %r" % ("/".join(how) or "one page", got))
    for ex in exs:
        check(len(ex.body.get("objects", [])) <= 1, "a page exceeded limit=1")


@test("3.5-paging-shared-date-added")
def t_paging_batch(ctx):
    """3.5: paging with limit=2 through 5 objects posted in one envelope (which may share a
    date_added) yields each exactly once."""
    ids = ctx.need("batch_ids")
    items, _, how = page_all(ctx, ctx.objects_url, {"match[id]": ",".join(ids)}, 2, 10)
    got = [o["id"] for o in items]
    check(sorted(got) == sorted(ids) and len(got) == 5, "paging (%s) gave %d objects, %d distinct of 5"
          % ("/".join(how) or "one page", len(got), len(set(got) & set(ids))))


@test("3.5-paging-manifest")
def t_paging_manifest(ctx):
    """3.5 and 5.3: the manifest pages with limit like objects: every record exactly once."""
    ids = ctx.need("batch_ids")
    items, _, how = page_all(ctx, ctx.manifest_url, {"match[id]": ",".join(ids)}, 2, 10)
    got = [r.get("id") for r in items]
    check(sorted(got) == sorted(ids), "paging (%s) gave %r" % ("/".join(how) or "one page", got))


@test("3.5-next-token", "SHOULD")
def t_next_present(ctx):
    """3.5/3.7: next MAY be given with more=true; without it clients must fall back to added_after,
    which cannot page through objects sharing one date_added. Scored as SHOULD: next is present."""
    ids = ctx.need("batch_ids")
    b = expect_200(get_objects(ctx, {"match[id]": ",".join(ids), "limit": "2"}))
    check(b.get("more") is True and isinstance(b.get("next"), str) and b["next"], "more=%r next=%r"
          % (b.get("more"), b.get("next")))


@test("3.4-match-id")
def t_match_id(ctx):
    """3.4.1 id: only the listed ids (comma = OR) are returned."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1", "I3")}))
    got = sorted(o["id"] for o in b.get("objects", []))
    check(got == sorted([ctx.fx["I1"]["id"], ctx.fx["I3"]["id"]]), "got %r" % got)


@test("3.4-match-type")
def t_match_type(ctx):
    """3.4.1 type: only the listed types are permitted in the response."""
    ctx.need("M", "I1")
    ids = ctx.ids("M", "I1", "X", "D")
    b = expect_200(get_objects(ctx, {"match[id]": ids, "match[type]": "malware"}))
    got = [o["id"] for o in b.get("objects", [])]
    check(got == [ctx.fx["M"]["id"]], "match[type]=malware gave %r" % got)


@test("3.4-match-type-multiple")
def t_match_type_multi(ctx):
    """3.4 match: several values separated by commas are ORed (malware,marking-definition)."""
    ctx.need("M", "D")
    ids = ctx.ids("M", "I1", "X", "D")
    b = expect_200(get_objects(ctx, {"match[id]": ids, "match[type]": "malware,marking-definition"}))
    got = sorted(o["id"] for o in b.get("objects", []))
    check(got == sorted([ctx.fx["M"]["id"], ctx.fx["D"]["id"]]), "got %r" % got)


@test("3.4-match-type-stix-no-error")
def t_match_type_absent(ctx):
    """3.4.1 type: requests for STIX 2.1 types MUST NOT result in an error (grouping, none stored here)."""
    b = expect_200(get_objects(ctx, {"match[type]": "grouping", "match[id]": new_id("grouping")}))
    check("objects" not in b, "objects %r" % b.get("objects"))


@test("3.4-match-fields-anded")
def t_match_and(ctx):
    """3.4 match: different fields are ANDed (id of an indicator AND type=malware gives nothing)."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1"), "match[type]": "malware"}))
    check(not b.get("objects"), "got %r" % [o.get("id") for o in b.get("objects", [])])


def _version_case(ctx, value, want_idx, url=None):
    x = ctx.need("X")
    params = {} if value is None else {"match[version]": value}
    if url is None:
        params["match[id]"] = x["id"]
    b = expect_200(ctx.get(url or ctx.objects_url, params=params))
    got = sorted(ts_key(o.get("modified")) for o in b.get("objects", []) if o.get("id") == x["id"])
    want = sorted(ts_key(x["versions"][i]) for i in want_idx)
    check(got == want, "match[version]=%s gave versions %r, wanted %r" % (
        value, [o.get("modified") for o in b.get("objects", [])], [x["versions"][i] for i in want_idx]))


@test("3.4-version-default-last")
def t_version_default(ctx):
    """3.4.1 version: without match[version] only the latest version of each object MUST be returned."""
    _version_case(ctx, None, [2])


@test("3.4-version-last")
def t_version_last(ctx):
    """3.4.1 version: last requests the latest version."""
    _version_case(ctx, "last", [2])


@test("3.4-version-first")
def t_version_first(ctx):
    """3.4.1 version: first requests the earliest version."""
    _version_case(ctx, "first", [0])


@test("3.4-version-all")
def t_version_all(ctx):
    """3.4.1 version: all requests all versions."""
    _version_case(ctx, "all", [0, 1, 2])


@test("3.4-version-timestamp")
def t_version_ts(ctx):
    """3.4.1 version: a timestamp requests the version whose modified matches it exactly."""
    _version_case(ctx, ctx.need("X")["versions"][1], [1])


@test("3.4-version-several")
def t_version_several(ctx):
    """3.4.1 version: several values (first,last) are ORed."""
    _version_case(ctx, "first,last", [0, 2])


@test("3.4-version-unversioned-created")
def t_version_created(ctx):
    """3.4.1 version: for an object without modified (marking-definition) the version MUST be its created."""
    d = ctx.need("D")
    b = expect_200(get_objects(ctx, {"match[id]": d["id"], "match[version]": d["created"]}))
    check([o.get("id") for o in b.get("objects", [])] == [d["id"]], "got %r" % b.get("objects"))


@test("3.4-spec-version-match")
def t_spec_version(ctx):
    """3.4.1 spec_version: match[spec_version]=2.1 returns the 2.1 objects."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1", "M"), "match[spec_version]": "2.1"}))
    check(len(b.get("objects", [])) == 2, "got %r" % [o.get("id") for o in b.get("objects", [])])


@test("3.4-spec-version-excludes")
def t_spec_version_ex(ctx):
    """3.4.1 spec_version: the response MUST NOT include spec versions not listed (2.0 excludes 2.1 objects)."""
    ctx.need("I1")
    b = expect_200(get_objects(ctx, {"match[id]": ctx.ids("I1", "M"), "match[spec_version]": "2.0"}))
    check(not b.get("objects"), "got %r" % [o.get("id") for o in b.get("objects", [])])


def _expect_400(ctx, url, params):
    ex = ctx.get(url, params=params)
    check(ex.status == 400, "%s answered %d" % (urllib.parse.urlencode(params), ex.status))


@test("3.4-malformed-added-after-400")
def t_bad_added_after(ctx):
    """3.4: a malformed URL query parameter (added_after=yesterday) MUST get 400."""
    _expect_400(ctx, ctx.objects_url, {"added_after": "yesterday"})
    _expect_400(ctx, ctx.manifest_url, {"added_after": "2020-13-45T99:00:00Z"})


@test("3.4-malformed-limit-400")
def t_bad_limit(ctx):
    """3.4: limit MUST be a positive integer; limit=0, -1 and abc are malformed and MUST get 400."""
    for v in ("0", "-1", "abc"):
        _expect_400(ctx, ctx.objects_url, {"limit": v})


@test("3.4-malformed-next-400", "SHOULD")
def t_bad_next(ctx):
    """3.4 and Appendix B (next MUST NOT be implicitly trusted): a forged next gets 400."""
    _expect_400(ctx, ctx.objects_url, {"limit": "1", "next": "forged-" + uuid.uuid4().hex})


# --------------------------------------------------------------------------------------------
# 5.3 Manifest


@test("5.3-manifest")
def t_manifest(ctx):
    """5.3: GET manifest answers 200 with one record per matching object version."""
    x = ctx.need("X")
    b = expect_200(ctx.get(ctx.manifest_url, params={"match[id]": x["id"], "match[version]": "all"}))
    check(len(b.get("objects", [])) == 3, "%d records for 3 versions" % len(b.get("objects", [])))


@test("5.3.1-manifest-record-required")
def t_manifest_required(ctx):
    """5.3.1 and 3.8: id, date_added and version are required in each manifest-record; id MUST be the STIX id."""
    ctx.need("I1")
    ids = [ctx.fx[n]["id"] for n in ("X", "M", "D", "I1")]
    recs = manifest_of(ctx, ids)
    check(recs, "no records")
    bad = [r for r in recs if not all(k in r for k in ("id", "date_added", "version")) or r["id"] not in ids]
    check(not bad, "bad records %r" % bad)


@test("5.3.1-manifest-version")
def t_manifest_version(ctx):
    """5.3.1: version is the STIX modified property, or created for an object without modified."""
    x, d = ctx.need("X", "D")
    recs = manifest_of(ctx, [x["id"], d["id"]])
    got = sorted((r["id"], ts_key(r.get("version"))) for r in recs)
    want = sorted([(x["id"], ts_key(v)) for v in x["versions"]] + [(d["id"], ts_key(d["created"]))])
    check(got == want, "versions %r" % [(r["id"], r.get("version")) for r in recs])


@test("5.3.1-manifest-media-type")
def t_manifest_media(ctx):
    """5.3.1: media_type, when present, MUST be one of the collection's media_types (absent means
    application/stix+json)."""
    col = expect_200(ctx.get(ctx.collection_url()))
    allowed = col.get("media_types") or ["application/stix+json"]
    recs = manifest_of(ctx, [ctx.need("X")["id"]])
    bad = [r.get("media_type") for r in recs if "media_type" in r and r["media_type"] not in allowed]
    check(not bad, "media_type %r not in %r" % (bad, allowed))


@test("5.3-manifest-filter-type")
def t_manifest_type(ctx):
    """5.3: filtering applies to the source objects: match[type]=malware gives only malware records."""
    ctx.need("M", "I1")
    b = expect_200(ctx.get(ctx.manifest_url, params={"match[id]": ctx.ids("M", "I1", "X"), "match[type]": "malware"}))
    check([r.get("id") for r in b.get("objects", [])] == [ctx.fx["M"]["id"]], "got %r" % b.get("objects"))


@test("5.3-manifest-version-default-last")
def t_manifest_last(ctx):
    """3.4.1 version on the manifest: without match[version] only the latest version is listed."""
    x = ctx.need("X")
    b = expect_200(ctx.get(ctx.manifest_url, params={"match[id]": x["id"]}))
    got = [ts_key(r.get("version")) for r in b.get("objects", [])]
    check(got == [ts_key(x["versions"][2])], "got %r" % [r.get("version") for r in b.get("objects", [])])


@test("5.3-manifest-limit-more")
def t_manifest_limit(ctx):
    """3.4 on the manifest: limit=1 gives at most one record and more=true when more are available."""
    x = ctx.need("X")
    b = expect_200(ctx.get(ctx.manifest_url, params={"match[id]": x["id"], "match[version]": "all", "limit": "1"}))
    check(len(b.get("objects", [])) == 1, "%d records" % len(b.get("objects", [])))
    check(b.get("more") is True, "more = %r" % b.get("more"))


@test("5.3.1-manifest-empty")
def t_manifest_empty(ctx):
    """5.3.1: with no records, the objects key MUST be omitted (an empty object)."""
    b = expect_200(ctx.get(ctx.manifest_url, params={"match[id]": new_id("indicator")}))
    check("objects" not in b, "objects = %r" % b.get("objects"))


# --------------------------------------------------------------------------------------------
# 5.6 Get an Object, 5.8 Versions


@test("5.6-object")
def t_object(ctx):
    """5.6: GET objects/{object-id}/ answers 200 with an envelope of that object (latest version by
    default, 3.4.1)."""
    _version_case(ctx, None, [2], url=ctx.object_url(ctx.need("X")["id"]))


@test("5.6-object-version-all")
def t_object_all(ctx):
    """5.6 with 3.4.1: match[version]=all on the object endpoint returns every version."""
    _version_case(ctx, "all", [0, 1, 2], url=ctx.object_url(ctx.need("X")["id"]))


@test("5.6-object-version-first")
def t_object_first(ctx):
    """5.6 with 3.4.1: match[version]=first on the object endpoint."""
    _version_case(ctx, "first", [0], url=ctx.object_url(ctx.need("X")["id"]))


@test("5.6-object-version-timestamp")
def t_object_ts(ctx):
    """5.6 with 3.4.1: a version timestamp on the object endpoint returns exactly that version."""
    x = ctx.need("X")
    _version_case(ctx, x["versions"][1], [1], url=ctx.object_url(x["id"]))


@test("5.6-object-limit")
def t_object_limit(ctx):
    """5.6 with 3.4: limit on the object endpoint: at most limit versions, more=true if more."""
    x = ctx.need("X")
    b = expect_200(ctx.get(ctx.object_url(x["id"]), params={"match[version]": "all", "limit": "2"}))
    check(len(b.get("objects", [])) == 2, "%d objects for limit=2" % len(b.get("objects", [])))
    check(b.get("more") is True, "more = %r" % b.get("more"))


@test("5.6-unknown-object", "SHOULD")
def t_unknown_object(ctx):
    """5.6: an object id not in the collection gets 404 (failure table) or an empty envelope."""
    ex = ctx.get(ctx.object_url(new_id("indicator")))
    ok = ex.status == 404 or (ex.status == 200 and isinstance(ex.body, dict) and not ex.body.get("objects"))
    check(ok, "answered %d %r" % (ex.status, ex.text[:200]))


@test("5.8-versions")
def t_versions(ctx):
    """5.8: GET versions/ answers 200 with every version of the object."""
    x = ctx.need("X")
    b = expect_200(ctx.get(ctx.versions_url(x["id"])))
    got = sorted(ts_key(v) for v in b.get("versions", []))
    check(got == sorted(ts_key(v) for v in x["versions"]), "versions %r" % b.get("versions"))


@test("5.8-versions-unversioned-created")
def t_versions_created(ctx):
    """5.8: for an object without modified the server MUST use created as its version."""
    d = ctx.need("D")
    b = expect_200(ctx.get(ctx.versions_url(d["id"])))
    check([ts_key(v) for v in b.get("versions", [])] == [ts_key(d["created"])], "versions %r" % b.get("versions"))


@test("5.8-versions-limit-more")
def t_versions_limit(ctx):
    """5.8 with 3.4: limit=1 gives one version and more=true."""
    x = ctx.need("X")
    b = expect_200(ctx.get(ctx.versions_url(x["id"]), params={"limit": "1"}))
    check(len(b.get("versions", [])) == 1, "versions %r" % b.get("versions"))
    check(b.get("more") is True, "more = %r" % b.get("more"))


@test("5.8-versions-spec-version")
def t_versions_spec(ctx):
    """5.8 with 3.4.1: match[spec_version]=2.0 MUST NOT list the 2.1 versions (a 404 lists none either)."""
    x = ctx.need("X")
    ex = ctx.get(ctx.versions_url(x["id"]), params={"match[spec_version]": "2.0"})
    if ex.status == 404:
        return
    b = expect_200(ex)
    check(not b.get("versions"), "versions %r" % b.get("versions"))


@test("5.8.1-versions-filtered-empty", "SHOULD")
def t_versions_spec_empty(ctx):
    """5.8.1: when a filter leaves no versions of an existing object, the response is an empty
    object (200 {}), not a 404 (which the failure table reserves for an object not found)."""
    x = ctx.need("X")
    b = expect_200(ctx.get(ctx.versions_url(x["id"]), params={"match[spec_version]": "2.0"}))
    check("versions" not in b, "versions %r" % b.get("versions"))


# --------------------------------------------------------------------------------------------
# 5.7 Delete an Object


@test("5.7-delete")
def t_delete(ctx):
    """5.7: DELETE objects/{object-id}/ answers 200."""
    d = ctx.need("DEL")
    ex = ctx.req("DELETE", ctx.object_url(d["id"]))
    ctx.fx["deleted"] = ex.status == 200
    check(ex.status == 200, "answered %d: %s" % (ex.status, ex.text[:200]))


@test("5.7-deleted-object-404")
def t_deleted_404(ctx):
    """5.7: after a 200 to DELETE, fetching that object MUST answer 404."""
    if not ctx.fx.get("deleted"):
        raise Fail("DELETE did not succeed")
    ex = ctx.get(ctx.object_url(ctx.fx["DEL"]["id"]))
    check(ex.status == 404, "answered %d: %s" % (ex.status, ex.text[:200]))


@test("5.7-deleted-not-listed")
def t_deleted_not_listed(ctx):
    """5.7: after a 200 to DELETE, the collection's objects and manifest MUST NOT return the object."""
    if not ctx.fx.get("deleted"):
        raise Fail("DELETE did not succeed")
    oid = ctx.fx["DEL"]["id"]
    b = expect_200(get_objects(ctx, {"match[id]": oid, "match[version]": "all"}))
    check(not b.get("objects"), "objects still lists it")
    b = expect_200(ctx.get(ctx.manifest_url, params={"match[id]": oid, "match[version]": "all"}))
    check(not b.get("objects"), "manifest still lists it")


@test("5.7-delete-version")
def t_delete_version(ctx):
    """5.7 with 3.4.1: DELETE with match[version]=<v1> removes that version only."""
    d = ctx.need("DELV")
    ex = ctx.req("DELETE", ctx.object_url(d["id"]), params={"match[version]": d["versions"][0]})
    check(ex.status == 200, "answered %d: %s" % (ex.status, ex.text[:200]))
    b = expect_200(get_objects(ctx, {"match[id]": d["id"], "match[version]": "all"}))
    got = [ts_key(o.get("modified")) for o in b.get("objects", [])]
    check(got == [ts_key(d["versions"][1])], "remaining versions %r" % [o.get("modified") for o in b.get("objects", [])])


# --------------------------------------------------------------------------------------------
# Access control with optional extra collections


def _ro(ctx):
    if not ctx.args.read_only_collection:
        raise Skip("needs --read-only-collection (can_read true, can_write false for this account)")
    return ctx.args.read_only_collection


def _wo(ctx):
    if not ctx.args.write_only_collection:
        raise Skip("needs --write-only-collection (can_read false for this account)")
    return ctx.args.write_only_collection


@test("5.5-can-write-false-403-404")
def t_ro_post(ctx):
    """5.5: if can_write is false for the client, Add Objects MUST answer 403 or 404."""
    cid = _ro(ctx)
    obj = indicator(ctx, new_id("indicator"), datetime.datetime.now(datetime.timezone.utc),
                    datetime.datetime.now(datetime.timezone.utc), 40)
    ex = ctx.post_objects([obj], url=ctx.collection_url(cid) + "objects/")
    check(ex.status in (403, 404), "answered %d" % ex.status)


@test("5.7-delete-read-only-403")
def t_ro_delete(ctx):
    """5.7 permission table: can_read true, can_write false: DELETE MUST answer 403."""
    cid = _ro(ctx)
    ex = ctx.req("DELETE", ctx.object_url(new_id("indicator"), cid))
    check(ex.status == 403, "answered %d" % ex.status)


def _wo_read(ctx, suffix):
    cid = _wo(ctx)
    ex = ctx.get(ctx.collection_url(cid) + suffix)
    check(ex.status in (403, 404), "GET %s answered %d" % (suffix, ex.status))


@test("5.3-can-read-false-403-404")
def t_wo_manifest(ctx):
    """5.3: if can_read is false for the client, Get Object Manifests MUST answer 403 or 404."""
    _wo_read(ctx, "manifest/")


@test("5.4-can-read-false-403-404")
def t_wo_objects(ctx):
    """5.4: if can_read is false for the client, Get Objects MUST answer 403 or 404."""
    _wo_read(ctx, "objects/")


@test("5.6-can-read-false-403-404")
def t_wo_object(ctx):
    """5.6: if can_read is false for the client, Get an Object MUST answer 403 or 404."""
    _wo_read(ctx, "objects/%s/" % new_id("indicator"))


@test("5.8-can-read-false-403-404")
def t_wo_versions(ctx):
    """5.8: if can_read is false for the client, Get Object Versions MUST answer 403 or 404."""
    _wo_read(ctx, "objects/%s/versions/" % new_id("indicator"))


@test("5.7-delete-write-only-403")
def t_wo_delete(ctx):
    """5.7 permission table: can_read false, can_write true: DELETE MUST answer 403."""
    cid = _wo(ctx)
    ex = ctx.req("DELETE", ctx.object_url(new_id("indicator"), cid))
    check(ex.status == 403, "answered %d" % ex.status)


# --------------------------------------------------------------------------------------------
# 3.1 Content negotiation and trailing slashes


def _endpoints(ctx):
    eps = [("discovery", ctx.discovery_url), ("api root", ctx.api_root_url), ("collections", ctx.collections_url),
           ("collection", ctx.collection_url()), ("objects", ctx.objects_url), ("manifest", ctx.manifest_url)]
    if "X" in ctx.fx:
        eps += [("object", ctx.object_url(ctx.fx["X"]["id"])), ("versions", ctx.versions_url(ctx.fx["X"]["id"]))]
    if "post1" in ctx.fx and isinstance(ctx.fx["post1"].body, dict) and "id" in ctx.fx["post1"].body:
        eps.append(("status", ctx.status_url(ctx.fx["post1"].body["id"])))
    return eps


@test("3.1-accept-unversioned")
def t_accept_unversioned(ctx):
    """3.1 and 1.6.8.2: "application/taxii+json" (no version: the latest the server supports) is a
    media type defined for every endpoint; it MUST NOT result in 406 and is served."""
    bad = []
    for name, url in _endpoints(ctx):
        ex = ctx.get(url, accept=TAXII_ANY, params={"limit": "1"} if name in ("objects", "manifest") else None)
        if ex.status != 200:
            bad.append("%s: %d" % (name, ex.status))
    check(not bad, "Accept: application/taxii+json answered " + ", ".join(bad))


@test("3.1-accept-unversioned-latest", "SHOULD")
def t_accept_unversioned_latest(ctx):
    """3.1: with the version parameter omitted the response SHOULD be the highest version (2.1)."""
    ex = ctx.get(ctx.collections_url, accept=TAXII_ANY)
    if ex.status != 200:
        raise Fail("answered %d" % ex.status)
    check(is_taxii21(ex.headers.get("Content-Type")), "Content-Type %r" % ex.headers.get("Content-Type"))


@test("3.1-accept-several-ranges")
def t_accept_several(ctx):
    """3.1: an Accept listing the TAXII 2.1 media type among others MUST NOT result in 406."""
    bad = []
    for name, url in _endpoints(ctx):
        ex = ctx.get(url, accept="application/json, %s" % TAXII,
                     params={"limit": "1"} if name in ("objects", "manifest") else None)
        if ex.status != 200:
            bad.append("%s: %d" % (name, ex.status))
    check(not bad, "answered " + ", ".join(bad))


def _accept_other(ctx, accept):
    results = []
    for name, url in _endpoints(ctx)[:4]:
        ex = ctx.get(url, accept=accept)
        if ex.status == 406:
            results.append("%s: 406" % name)
        elif ex.status == 200 and is_taxii21(ex.headers.get("Content-Type")):
            results.append("%s: served as TAXII 2.1" % name)
        else:
            raise Fail("%s answered %d with %r (neither 406 nor a TAXII 2.1 response)"
                       % (name, ex.status, ex.headers.get("Content-Type")))
    return results


@test("3.1-accept-not-taxii-406", "MAY")
def t_accept_json(ctx):
    """3.1: an Accept with no media type defined for the endpoint (application/xml) MAY be served or
    MAY get 406; anything else fails."""
    _accept_other(ctx, "application/xml")


@test("3.1-accept-unsupported-version-406", "MAY")
def t_accept_v20(ctx):
    """3.1: Accept application/taxii+json;version=2.0 only (a version this server does not serve)
    MAY get 406 or MAY be served as 2.1."""
    _accept_other(ctx, "application/taxii+json;version=2.0")


@test("3.1-no-trailing-slash", "MAY")
def t_no_trailing_slash(ctx):
    """3.1: requests MUST end in '/'; a path without it is not defined: the server MAY serve it,
    redirect to the slash form, or answer 404, but not fail with a 5xx."""
    ex = ctx.get(ctx.collections_url.rstrip("/"))
    check(ex.status < 500, "answered %d" % ex.status)
    if 300 <= ex.status < 400:
        loc = ex.headers.get("Location", "")
        check(loc.endswith("/collections/"), "redirects to %r" % loc)


# --------------------------------------------------------------------------------------------
# Checks over every exchange of the run (they run last)


def _is_error_body_bad(ex):
    b = ex.body
    if not isinstance(b, dict):
        return "error body is not a JSON object: %r" % ex.text[:120]
    if not isinstance(b.get("title"), str):
        return "error body lacks title"
    for k in ("description", "error_id", "error_code", "http_status", "external_details"):
        if k in b and not isinstance(b[k], str):
            return "%s is not a string" % k
    if "details" in b and not isinstance(b["details"], dict):
        return "details is not a dictionary"
    if "http_status" in b and b["http_status"] != str(ex.status):
        return "http_status %r but HTTP status %d" % (b["http_status"], ex.status)
    return None


def _taxii_accepting(ex):
    return ex.accept is not None and TAXII_ANY in ex.accept


@test("3.1-response-content-type")
def t_resp_ct(ctx):
    """3.1: all TAXII responses MUST carry the endpoint's media type with the version parameter in
    Content-Type (application/taxii+json;version=2.1), success and error alike (endpoint tables)."""
    bad = {}
    for ex in ctx.log:
        if not _taxii_accepting(ex) or 300 <= ex.status < 400 or ex.status >= 500:
            continue
        if ex.status >= 400 and not ex.text:
            continue
        if not is_taxii21(ex.headers.get("Content-Type")):
            key = "%s %d: %r" % (ex.method, ex.status, ex.headers.get("Content-Type"))
            bad.setdefault(key, urllib.parse.urlsplit(ex.url).path)
    check(not bad, "; ".join("%s (e.g. %s)" % kv for kv in bad.items()))


@test("3.6.1-error-message")
def t_error_bodies(ctx):
    """3.6.1: an error message, when given, has a title (string), string-typed optional fields, a
    dictionary details, and an http_status that MUST match the HTTP status."""
    bad = []
    seen = 0
    for ex in ctx.log:
        if ex.status >= 400 and ex.text:
            mt = parse_media_type(ex.headers.get("Content-Type"))[0] or ""
            if not (mt == TAXII_ANY or mt.endswith("/json")):
                continue  # a non-TAXII body is counted once, by 3.1-response-content-type
            seen += 1
            err = _is_error_body_bad(ex)
            if err:
                bad.append("%s %s %d: %s" % (ex.method, urllib.parse.urlsplit(ex.url).path, ex.status, err))
    if not seen:
        raise Skip("no error response had a body")
    check(not bad, "; ".join(bad[:5]))


@test("3.6.1-error-message-present", "SHOULD")
def t_error_present(ctx):
    """3.6 and the failure tables (payload: error): TAXII error responses carry an error message."""
    bad = sorted({"%s %d" % (ex.method, ex.status) for ex in ctx.log if ex.status >= 400 and not ex.text})
    check(not bad, "error responses without a body: %s" % ", ".join(bad))


@test("2-timestamps-microseconds")
def t_timestamps(ctx):
    """2 (timestamp): TAXII timestamps MUST be RFC 3339 UTC with "Z" and microsecond precision
    (date_added, request_timestamp, X-TAXII-Date-Added-First/Last)."""
    bad = set()
    for ex in ctx.log:
        for h in ("X-TAXII-Date-Added-First", "X-TAXII-Date-Added-Last"):
            v = ex.headers.get(h)
            if v is not None and not TAXII_TIMESTAMP.match(v):
                bad.add("%s: %s" % (h, v))
        b = ex.body
        if isinstance(b, dict) and ex.status < 400:
            if "request_timestamp" in b and not TAXII_TIMESTAMP.match(str(b["request_timestamp"])):
                bad.add("request_timestamp: %s" % b["request_timestamp"])
            if ex.url.split("?")[0].endswith("/manifest/"):
                for r in b.get("objects", []):
                    if not TAXII_TIMESTAMP.match(str(r.get("date_added"))):
                        bad.add("date_added: %s" % r.get("date_added"))
    check(not bad, "; ".join(sorted(bad)[:6]))


@test("2-no-empty-lists")
def t_empty_lists(ctx):
    """2 (list): empty lists are prohibited in TAXII resources and MUST NOT replace omitted properties."""
    bad = set()
    for ex in ctx.log:
        b = ex.body
        if not isinstance(b, dict) or ex.status >= 400:
            continue
        for k, v in b.items():
            if isinstance(v, list) and not v:
                bad.add("%s %s: %s = []" % (ex.method, urllib.parse.urlsplit(ex.url).path.split("/")[-2], k))
        for c in b.get("collections", []) if isinstance(b.get("collections"), list) else []:
            for k, v in c.items():
                if isinstance(v, list) and not v:
                    bad.add("collection %s = []" % k)
    check(not bad, "; ".join(sorted(bad)[:6]))


@test("3.6-no-5xx", "SHOULD")
def t_no_5xx(ctx):
    """3.6: the server answered no request of the run with a 5xx."""
    bad = sorted({"%s %s %d" % (ex.method, urllib.parse.urlsplit(ex.url).path, ex.status) for ex in ctx.log if ex.status >= 500})
    check(not bad, "; ".join(bad[:5]))


# --------------------------------------------------------------------------------------------
# Runner


def resolve_api_root(ctx):
    ex = ctx.get(ctx.discovery_url)
    roots = []
    if ex.status == 200 and isinstance(ex.body, dict):
        roots = [urllib.parse.urljoin(ctx.discovery_url, r) for r in ex.body.get("api_roots", [])]
        default = ex.body.get("default")
    else:
        default = None
    name = ctx.args.api_root
    if name:
        if name.startswith("http://") or name.startswith("https://") or name.startswith("/"):
            url = urllib.parse.urljoin(ctx.discovery_url, name)
        else:
            url = next((r for r in roots if r.rstrip("/").rsplit("/", 1)[-1] == name.strip("/")),
                       urllib.parse.urljoin(ctx.discovery_url, "/" + name.strip("/") + "/"))
    elif default:
        url = urllib.parse.urljoin(ctx.discovery_url, default)
    elif roots:
        url = roots[0]
    else:
        raise SystemExit("no API root: give --api-root (discovery answered %d)" % ex.status)
    return url if url.endswith("/") else url + "/"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--discovery", required=True, help="discovery URL, e.g. https://127.0.0.1:8443/taxii2/")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--cacert", help="PEM file of the CA (or self-signed certificate) to trust")
    g.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    ap.add_argument("--api-root", help="API root name, path or URL (default: discovery's default)")
    ap.add_argument("--collection", required=True, help="id of a collection this account can read and write")
    ap.add_argument("--read-only-collection", help="collection this account can read but not write")
    ap.add_argument("--write-only-collection", help="collection this account can write but not read")
    ap.add_argument("--json-report", help="write the results as JSON here")
    ap.add_argument("--only", help="run only tests whose id contains this string")
    ap.add_argument("--strict", action="store_true", help="exit non-zero on SHOULD failures too")
    args = ap.parse_args(argv)

    ctx = Ctx(args)
    started = time.time()
    try:
        ctx.api_root_url = resolve_api_root(ctx)
    except requests.exceptions.RequestException as e:
        print("cannot reach %s: %s" % (ctx.discovery_url, e))
        print("0 passed, 1 failed, 0 skipped")
        return 1
    print("TAXII 2.1 conformance: discovery %s, api root %s, collection %s, run %s"
          % (ctx.discovery_url, ctx.api_root_url, args.collection, ctx.tag))
    try:
        build_fixtures(ctx)
    except Exception as e:  # noqa: BLE001 -- any failure here is reported through the dependent tests
        ctx.fx_error = "%s: %s" % (type(e).__name__, e)
        print("fixture setup failed: %s" % ctx.fx_error)

    results = []
    # Global checks over the exchange log run after every other test.
    order = [t for t in TESTS if not t[2].__name__ in GLOBAL] + [t for t in TESTS if t[2].__name__ in GLOBAL]
    for tid, level, fn in order:
        if args.only and args.only not in tid:
            continue
        t0 = time.time()
        try:
            fn(ctx)
            outcome, reason = "PASS", ""
        except Skip as e:
            outcome, reason = "SKIP", str(e)
        except Fail as e:
            outcome, reason = "FAIL", str(e)
        except requests.exceptions.RequestException as e:
            outcome, reason = "FAIL", "HTTP error: %s" % e
        except Exception as e:  # noqa: BLE001 -- a crashing test is a failed test, with its trace
            outcome, reason = "FAIL", "%s: %s | %s" % (type(e).__name__, e,
                                                       traceback.format_exc().strip().splitlines()[-3].strip())
        dt = time.time() - t0
        doc = (fn.__doc__ or "").strip()
        results.append({"id": tid, "level": level, "outcome": outcome, "reason": reason,
                        "seconds": round(dt, 3), "description": " ".join(doc.split())})
        line = "%-4s %-6s %s" % (outcome, level, tid)
        if reason:
            line += "  -- " + reason
        print(line, flush=True)

    summary = {}
    for lvl in ("MAY", "SHOULD", "MUST"):
        rs = [r for r in results if r["level"] == lvl]
        summary[lvl] = {k: sum(1 for r in rs if r["outcome"] == o) for k, o in
                        (("passed", "PASS"), ("failed", "FAIL"), ("skipped", "SKIP"))}
    if args.json_report:
        with open(args.json_report, "w") as f:
            json.dump({"discovery": ctx.discovery_url, "api_root": ctx.api_root_url, "collection": args.collection,
                       "run": ctx.tag, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                       "seconds": round(time.time() - started, 2), "requests": len(ctx.log),
                       "summary": summary, "tests": results}, f, indent=2)
    print()
    print("%d requests in %.1f s" % (len(ctx.log), time.time() - started))
    for lvl in ("MAY", "SHOULD"):
        s = summary[lvl]
        print("%s: %d passed, %d failed, %d skipped" % (lvl, s["passed"], s["failed"], s["skipped"]))
    s = summary["MUST"]
    print("MUST score:")
    print("%d passed, %d failed, %d skipped" % (s["passed"], s["failed"], s["skipped"]))
    failed = s["failed"] + (summary["SHOULD"]["failed"] if args.strict else 0)
    return 1 if failed else 0


GLOBAL = {"t_resp_ct", "t_error_bodies", "t_error_present", "t_timestamps", "t_empty_lists", "t_no_5xx"}

if __name__ == "__main__":
    sys.exit(main())
