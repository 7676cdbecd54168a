"""Writes the command-line benchmark inputs: PATTERNS lines of patterns (the eight families with
varying constants) and OBSERVED observed-data bundles. Deterministic (seeded)."""
import json
import random
import sys

out_dir, n_patterns, n_observed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20261126)


def ip():
    return "198.51.100.%d" % rng.randrange(256)


templates = [
    lambda: "[ipv4-addr:value = '%s']" % ip(),
    lambda: "[file:hashes.'SHA-256' IN ('%064x', '%064x')]" % (rng.getrandbits(256), rng.getrandbits(256)),
    lambda: "[file:name LIKE '%%_%d.exe']" % rng.randrange(100),
    lambda: "[file:name MATCHES '^inv[a-z]+_%d\\\\.exe$']" % rng.randrange(100),
    lambda: "[ipv4-addr:value ISSUBSET '198.51.%d.0/24']" % rng.randrange(256),
    lambda: "[network-traffic:dst_ref.value = '%s' AND network-traffic:dst_port = 443]" % ip(),
    lambda: "[file:name = 'invoice_%d.exe' AND file:size > 1000 OR file:hashes.MD5 = '%032x']" % (rng.randrange(100), rng.getrandbits(128)),
    lambda: "([ipv4-addr:value = '%s'] AND [file:name LIKE '%%.exe']) WITHIN 300 SECONDS" % ip(),
]
with open(out_dir + "/cli-patterns.txt", "w") as f:
    for i in range(n_patterns):
        f.write(templates[i % len(templates)]() + "\n")

bundles = []
for i in range(n_observed):
    t = "2024-05-01T%02d:%02d:%02dZ" % (i // 3600 % 24, i // 60 % 60, i % 60)
    ids = ["ipv4-addr--%08d-0000-4000-8000-000000000001" % i, "ipv4-addr--%08d-0000-4000-8000-000000000002" % i,
           "network-traffic--%08d-0000-4000-8000-000000000003" % i, "file--%08d-0000-4000-8000-000000000004" % i]
    bundles.append({"type": "bundle", "id": "bundle--%08d-0000-4000-8000-000000000000" % i, "objects": [
        {"type": "observed-data", "spec_version": "2.1", "id": "observed-data--%08d-0000-4000-8000-000000000000" % i,
         "created": t, "modified": t, "first_observed": t, "last_observed": t, "number_observed": 1, "object_refs": ids},
        {"type": "ipv4-addr", "spec_version": "2.1", "id": ids[0], "value": "203.0.113.%d" % rng.randrange(256)},
        {"type": "ipv4-addr", "spec_version": "2.1", "id": ids[1], "value": ip()},
        {"type": "network-traffic", "spec_version": "2.1", "id": ids[2], "src_ref": ids[0], "dst_ref": ids[1],
         "dst_port": rng.choice([80, 443, 8080]), "protocols": ["ipv4", "tcp"]},
        {"type": "file", "spec_version": "2.1", "id": ids[3], "name": "invoice_%d.exe" % rng.randrange(1000),
         "size": rng.randrange(100, 100000), "hashes": {"MD5": "%032x" % rng.getrandbits(128)}},
    ]})
json.dump(bundles, open(out_dir + "/cli-observed.json", "w"))
