"""stix2-matcher on a sample of the benchmark data, extrapolated to the full run.

stix2-matcher evaluates one pattern against one set of observations, so matching N
observations against K indicators costs K x N evaluations. This script measures, on the
first PATTERNS indicators and the first OBSERVATIONS observations, the time of one pattern
compilation and of one evaluation, and prints the extrapolated time of the full run
(labelled as such). Usage:

    python stix2_matcher_sample.py INDICATORS.jsonl OBSERVATIONS.jsonl PATTERNS OBSERVATIONS \
        FULL_INDICATORS FULL_OBSERVATIONS
"""

import json
import sys
import time

from stix2matcher.matcher import Pattern


def main():
    ind_path, obs_path, n_pat, n_obs, full_ind, full_obs = sys.argv[1:7]
    n_pat, n_obs, full_ind, full_obs = int(n_pat), int(n_obs), int(full_ind), int(full_obs)
    texts = []
    with open(ind_path, encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["pattern"])
            if len(texts) == n_pat:
                break
    bundles = []
    with open(obs_path, encoding="utf-8") as f:
        for line in f:
            bundles.append(json.loads(line))
            if len(bundles) == n_obs:
                break
    t0 = time.perf_counter()
    patterns, refused = [], 0
    for p in texts:
        try:
            patterns.append(Pattern(p, "2.1"))
        except Exception:  # noqa: BLE001 - the reference refuses some valid patterns
            refused += 1
    t_parse = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluations, matched, errors = 0, 0, 0
    for b in bundles:
        for p in patterns:
            evaluations += 1
            try:
                if p.match([b]):
                    matched += 1
            except Exception:  # noqa: BLE001
                errors += 1
    t_eval = time.perf_counter() - t0
    per_eval = t_eval / evaluations
    per_parse = t_parse / max(1, len(texts))
    full = per_parse * full_ind + per_eval * full_ind * full_obs
    print(f"stix2-matcher sample: {len(patterns)} patterns ({refused} refused) x {len(bundles)} "
          f"observations = {evaluations} evaluations in {t_eval:.2f} s "
          f"({evaluations / t_eval:,.0f} evaluations/s, {matched} matches, {errors} errors); "
          f"parse {1 / per_parse:,.0f} patterns/s")
    print(f"stix2-matcher EXTRAPOLATED to {full_ind} indicators x {full_obs} observations: "
          f"{full:,.0f} s = {full_obs / full:,.2f} observations/s")
    print(f"STIX2_MATCHER_EXTRAPOLATED_SECONDS={full:.1f}")


if __name__ == "__main__":
    main()
