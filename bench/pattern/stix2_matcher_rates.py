"""Parse and evaluation rates of stix2-matcher on the same families and observations as
crates/pattern/examples/pattern_bench.rs. Prints one JSON line per family."""
import json
import sys
import timeit

from stix2matcher.matcher import Pattern


def rate(fn):
    best = 0.0
    for _ in range(3):
        n, t = 0, 0.0
        timer = timeit.Timer(fn)
        while t < 0.2:
            t += timer.timeit(number=20)
            n += 20
        best = max(best, n / t)
    return best


def main():
    families = json.load(open(sys.argv[1]))
    observed = json.load(open(sys.argv[2]))
    for fam in families:
        text = fam["pattern"]
        compiled = Pattern(text, "2.1")
        matched = bool(compiled.match(observed))
        print(json.dumps({
            "family": fam["family"],
            "parse_per_s": rate(lambda: Pattern(text, "2.1")),
            "eval_per_s": rate(lambda: compiled.match(observed)),
            "matched": matched,
        }), flush=True)


if __name__ == "__main__":
    main()
