#!/usr/bin/env python3
"""Drives a TAXII 2.1 server through every endpoint with the PyPI client `taxii2client.v21`, and
runs every STIX object the server returns through the PyPI `stix2validator` (STIX 2.1).

Steps: Server discovery -> ApiRoot (information, collections) -> Collection (information) ->
Collection.add_objects in envelopes of --batch objects, each Status polled to completion and read
again through ApiRoot.get_status -> get_objects paged with as_pages (and a type filter) ->
get_manifest paged with as_pages -> get_object -> object_versions (+ get_object with
version=all/first) -> delete_object (then get_object must fail with 404).

Usage:
    taxii2client_tour.py --discovery URL --user U --password P [--cacert FILE | --insecure]
                         [--api-root NAME] --collection ID [--objects N] [--batch N] [--page N]

Exit status 0 when every step and every validation passed; 1 with a message naming the step that
failed otherwise.
"""

import argparse
import datetime
import json
import os
import sys
import time
import urllib.parse
import uuid

import requests
from stix2validator import ValidationOptions, validate_instance
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages


class TourFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise TourFailure(msg)


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def ts_key(value):
    """Exact sort key of an RFC 3339 UTC timestamp, whatever its number of fraction digits."""
    head, _, frac = value.rstrip("Z").partition(".")
    return head, frac.ljust(9, "0")


def make_objects(n, tag):
    """n STIX 2.1 objects of several kinds (SDOs, SROs, SCOs, a marking definition), plus a second
    version of the first indicator. Returns (objects, versioned_id, versions)."""
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    t0, t1 = ts(now), ts(now + datetime.timedelta(seconds=5))
    identity_id = "identity--%s" % uuid.uuid4()
    marking_id = "marking-definition--%s" % uuid.uuid4()
    objs = [
        {"type": "identity", "spec_version": "2.1", "id": identity_id, "created": t0, "modified": t0,
         "name": "Kizuna interop tour %s" % tag, "identity_class": "organization"},
        {"type": "marking-definition", "spec_version": "2.1", "id": marking_id, "created": t0,
         "created_by_ref": identity_id, "definition_type": "statement",
         "definition": {"statement": "Kizuna interop tour %s" % tag}},
    ]
    malware_id = "malware--%s" % uuid.uuid4()
    objs.append({"type": "malware", "spec_version": "2.1", "id": malware_id, "created": t0, "modified": t0,
                 "created_by_ref": identity_id, "name": "tour-malware-%s" % tag, "is_family": True,
                 "malware_types": ["ransomware"], "object_marking_refs": [marking_id]})
    ap_id = "attack-pattern--%s" % uuid.uuid4()
    objs.append({"type": "attack-pattern", "spec_version": "2.1", "id": ap_id, "created": t0, "modified": t0,
                 "name": "Spearphishing Attachment",
                 "external_references": [{"source_name": "mitre-attack", "external_id": "T1566.001"}]})
    first_indicator = None
    i = 0
    while len(objs) < n:
        kind = i % 4
        if kind == 3:
            ip = "ipv4-addr--%s" % uuid.uuid4()
            objs.append({"type": "ipv4-addr", "spec_version": "2.1", "id": ip,
                         "value": "203.0.113.%d" % (i % 254 + 1)})
            objs.append({"type": "observed-data", "spec_version": "2.1", "id": "observed-data--%s" % uuid.uuid4(),
                         "created": t0, "modified": t0, "first_observed": t0, "last_observed": t0,
                         "number_observed": 1, "object_refs": [ip]})
        else:
            iid = "indicator--%s" % uuid.uuid4()
            first_indicator = first_indicator or iid
            objs.append({"type": "indicator", "spec_version": "2.1", "id": iid, "created": t0, "modified": t0,
                         "created_by_ref": identity_id, "name": "tour indicator %d" % i,
                         "indicator_types": ["malicious-activity"],
                         "pattern": "[domain-name:value = 'tour-%s-%d.example']" % (tag, i),
                         "pattern_type": "stix", "valid_from": t0})
            if kind == 2:
                objs.append({"type": "relationship", "spec_version": "2.1", "id": "relationship--%s" % uuid.uuid4(),
                             "created": t0, "modified": t0, "relationship_type": "indicates",
                             "source_ref": iid, "target_ref": malware_id})
        i += 1
    objs = objs[:n]
    v2 = dict(next(o for o in objs if o["id"] == first_indicator))
    v2["modified"] = t1
    v2["description"] = "second version"
    objs.append(v2)
    return objs, first_indicator, [t0, t1]


class Validator:
    def __init__(self):
        self.options = ValidationOptions(version="2.1")
        self.count = 0
        self.invalid = []

    def __call__(self, obj, where):
        self.count += 1
        r = validate_instance(obj, self.options)
        if not r.is_valid:
            self.invalid.append("%s: %s %s: %s" % (where, obj.get("type"), obj.get("id"),
                                                   "; ".join(str(e) for e in r.errors)))


def step(name):
    print("-- %s" % name, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--discovery", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--cacert", help="PEM file to trust (a self-signed server certificate or its CA)")
    g.add_argument("--insecure", action="store_true")
    ap.add_argument("--api-root", help="API root name, path or URL (default: discovery's default)")
    ap.add_argument("--collection", required=True, help="id of a collection this account can read and write")
    ap.add_argument("--objects", type=int, default=250, help="objects to write (default 250)")
    ap.add_argument("--batch", type=int, default=100, help="objects per envelope (default 100)")
    ap.add_argument("--page", type=int, default=50, help="page size for as_pages (default 50)")
    args = ap.parse_args(argv)
    if args.insecure:
        requests.packages.urllib3.disable_warnings()
    verify = args.cacert if args.cacert else (not args.insecure)
    if args.cacert:
        # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the verify= that taxii2-client
        # sets on its session; point them at the certificate to trust as well.
        os.environ["REQUESTS_CA_BUNDLE"] = os.environ["CURL_CA_BUNDLE"] = args.cacert
    cred = dict(user=args.user, password=args.password, verify=verify)
    validate = Validator()
    tag = uuid.uuid4().hex[:10]
    started = time.time()

    try:
        step("Server discovery")
        server = Server(args.discovery, **cred)
        check(server.title, "discovery has no title")
        check(server.api_roots, "discovery lists no API root")
        print("   %r, %d API root(s), default %s" % (server.title, len(server.api_roots),
                                                     server.default.url if server.default else None))
        if args.api_root:
            want = args.api_root.strip("/")
            root = next((r for r in server.api_roots if r.url.rstrip("/").rsplit("/", 1)[-1] == want
                         or r.url == args.api_root), None)
            if root is None:
                root = ApiRoot(urllib.parse.urljoin(args.discovery, "/%s/" % want), **cred)
        else:
            root = server.default or server.api_roots[0]

        step("ApiRoot information and collections")
        check(root.title, "API root has no title")
        check("application/taxii+json;version=2.1" in root.versions, "versions %r" % root.versions)
        check(root.max_content_length > 0, "max_content_length %r" % root.max_content_length)
        print("   %s: %r, max_content_length %d, %d collection(s)" % (root.url, root.title,
                                                                    root.max_content_length, len(root.collections)))
        col = next((c for c in root.collections if c.id == args.collection), None)
        check(col is not None, "collection %s not listed by the API root" % args.collection)

        step("Collection information")
        col = Collection(root.url + "collections/%s/" % args.collection, **cred)
        check(col.id == args.collection, "collection id %r" % col.id)
        check(col.can_read and col.can_write, "can_read=%r can_write=%r" % (col.can_read, col.can_write))
        print("   %s %r can_read=%s can_write=%s media_types=%s" % (col.id, col.title, col.can_read,
                                                                    col.can_write, col.media_types))

        objects, versioned_id, versions = make_objects(args.objects, tag)
        for o in objects:
            validate(o, "generated")
        check(not validate.invalid, "the tour's own objects are invalid: %s" % validate.invalid[:3])
        ours = {(o["id"], o.get("modified") or o.get("created")) for o in objects if "created" in o}
        our_ids = {o["id"] for o in objects}

        step("add_objects: %d objects in envelopes of %d, status polled to completion" % (len(objects), args.batch))
        total_ok = 0
        for i in range(0, len(objects), args.batch):
            chunk = objects[i:i + args.batch]
            status = col.add_objects({"objects": chunk}, wait_for_completion=True, poll_interval=0.1, timeout=60)
            check(status.status == "complete", "status %s still %r after 60 s" % (status.id, status.status))
            check(status.total_count == len(chunk), "total_count %d for %d objects" % (status.total_count, len(chunk)))
            check(status.failure_count == 0, "failures: %r" % status.failures)
            total_ok += status.success_count
            again = root.get_status(status.id)
            check(again.id == status.id and again.status == "complete", "get_status(%s) gave %r/%r"
                  % (status.id, again.id, again.status))
        check(total_ok == len(objects), "%d of %d objects succeeded" % (total_ok, len(objects)))
        print("   %d objects accepted" % total_ok)

        step("get_objects with as_pages(per_request=%d)" % args.page)
        seen, pages = [], 0
        for env in as_pages(col.get_objects, per_request=args.page, version="all"):
            pages += 1
            check(pages <= 100000, "more than 100000 pages")
            page = env.get("objects", [])
            check(len(page) <= args.page, "a page of %d objects for limit %d" % (len(page), args.page))
            for o in page:
                validate(o, "get_objects")
            seen.extend((o["id"], o.get("modified") or o.get("created") or "") for o in page)
        check(len(seen) == len(set(seen)), "%d object versions repeated across pages" % (len(seen) - len(set(seen))))
        missing = (ours - set(seen)) | {(i, "") for i in our_ids - {s[0] for s in seen}}
        check(not missing, "%d of our object versions never came back, e.g. %s" % (len(missing), sorted(missing)[:3]))
        print("   %d object versions in %d pages, all %d of ours among them" % (len(seen), pages, len(objects)))

        step("get_objects filtered: type=malware, id=<ours>")
        env = col.get_objects(type="malware", id=[o["id"] for o in objects if o["type"] == "malware"])
        got = env.get("objects", [])
        check(len(got) == 1 and got[0]["type"] == "malware", "got %r" % [o.get("id") for o in got])
        for o in got:
            validate(o, "get_objects(type)")

        step("get_manifest with as_pages(per_request=%d)" % args.page)
        records, pages = [], 0
        for env in as_pages(col.get_manifest, per_request=args.page, version="all"):
            pages += 1
            check(pages <= 100000, "more than 100000 pages")
            for r in env.get("objects", []):
                check({"id", "date_added", "version"} <= set(r), "manifest record lacks required fields: %r" % r)
                records.append((r["id"], r["version"]))
        check(len(records) == len(set(records)), "manifest records repeated across pages")
        mine = [r for r in records if r[0] in our_ids]
        check(len(mine) == len(objects), "manifest has %d records of ours, wanted %d" % (len(mine), len(objects)))
        print("   %d records in %d pages" % (len(records), pages))

        step("get_object and object_versions")
        for o in objects[:5]:
            env = col.get_object(o["id"])
            got = env.get("objects", [])
            check(got and all(x["id"] == o["id"] for x in got), "get_object(%s) gave %r" % (o["id"], got))
            for x in got:
                validate(x, "get_object")
        env = col.get_object(versioned_id)
        check([ts_key(x.get("modified")) for x in env.get("objects", [])] == [ts_key(versions[1])],
              "get_object(%s) should give only the latest version, gave %r"
              % (versioned_id, [x.get("modified") for x in env.get("objects", [])]))
        env = col.get_object(versioned_id, version="all")
        check(sorted(ts_key(x.get("modified")) for x in env.get("objects", [])) == [ts_key(v) for v in versions],
              "version=all gave %r" % env)
        for x in env.get("objects", []):
            validate(x, "get_object(version=all)")
        env = col.get_object(versioned_id, version="first")
        check([ts_key(x.get("modified")) for x in env.get("objects", [])] == [ts_key(versions[0])],
              "version=first gave %r" % env)
        vs = col.object_versions(versioned_id)
        check(sorted(ts_key(v) for v in vs.get("versions", [])) == [ts_key(v) for v in versions],
              "object_versions gave %r, wanted %r" % (vs.get("versions"), versions))
        print("   versions of %s: %s" % (versioned_id, vs.get("versions")))

        step("delete_object")
        victim = next(o for o in objects if o["type"] == "indicator" and o["id"] != versioned_id)
        col.delete_object(victim["id"])
        try:
            env = col.get_object(victim["id"])
            raise TourFailure("get_object after delete_object answered 200: %r" % env)
        except requests.exceptions.HTTPError as e:
            check(e.response is not None and e.response.status_code == 404,
                  "get_object after delete_object: %s" % e)
        env = col.get_manifest(id=victim["id"])
        check(not env.get("objects"), "the manifest still lists the deleted object")
        print("   %s deleted, now 404" % victim["id"])
    except TourFailure as e:
        print("FAIL: %s" % e)
        return 1
    except Exception as e:  # noqa: BLE001 -- any client-side exception is a failed tour, say which
        print("FAIL: %s: %s" % (type(e).__name__, e))
        if isinstance(e, requests.exceptions.HTTPError) and e.response is not None:
            print("   response body: %s" % e.response.text[:500])
        return 1

    if validate.invalid:
        print("FAIL: %d of %d returned objects are invalid STIX 2.1:" % (len(validate.invalid), validate.count))
        for line in validate.invalid[:20]:
            print("   " + line)
        return 1
    print("OK: every endpoint driven with taxii2-client; %d objects validated with stix2-validator; %.1f s"
          % (validate.count, time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
