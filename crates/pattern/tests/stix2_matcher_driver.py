"""Batch driver for the reference matcher (stix2-matcher 3.0.0), used by tests/differential.rs.

Reads one JSON document on stdin: a list of cases {"pattern": str, "version": "2.0"|"2.1",
"observations": <what stix2-matcher -f takes>}. Prints one JSON list on stdout, one entry per
case: {"matched": bool|null, "error": str|null, "refs": [observed-data ids of the binding]}.
One process for the whole batch: the interpreter and ANTLR start-up cost is paid once.
"""
import json
import sys

from stix2matcher.matcher import Pattern


def run(case):
    try:
        pattern = Pattern(case["pattern"], case["version"])
        sdos = pattern.match(case["observations"])
    except Exception as e:  # noqa: BLE001 - any failure of the reference is an "error" outcome
        return {"matched": None, "error": "%s: %s" % (type(e).__name__, e), "refs": []}
    refs = []
    for sdo in sdos:
        if case["version"] == "2.1":
            refs.extend(o.get("id") for o in sdo.get("objects", []) if o.get("type") == "observed-data")
        else:
            refs.append(sdo.get("id"))
    return {"matched": bool(sdos), "error": None, "refs": refs}


def main():
    cases = json.load(sys.stdin)
    json.dump([run(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
