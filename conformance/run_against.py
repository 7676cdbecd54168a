#!/usr/bin/env python3
"""Starts a TAXII server (medallion or kizuna) on 127.0.0.1, runs the conformance suite against it,
stops it, and writes the report and score to target/conformance/<server>.{json,score}.

    run_against.py medallion            # exit 0 once the suite has produced a score
    run_against.py kizuna [--no-build]  # exit status of the suite (0 = every MUST passed)
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402

SUITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "taxii21_conformance.py")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("server", choices=["medallion", "kizuna"])
    ap.add_argument("--no-build", action="store_true", help="kizuna: use target/release/kizuna as it is")
    ap.add_argument("--out", default=os.path.join(servers.ROOT, "target", "conformance"))
    ap.add_argument("suite_args", nargs="*", help="extra arguments for the suite (after --)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    report = os.path.join(args.out, args.server + ".json")
    with tempfile.TemporaryDirectory(prefix="kizuna-conformance-") as tmp:
        if args.server == "medallion":
            srv = servers.Medallion(tmp)
        else:
            srv = servers.Kizuna(tmp, servers.kizuna_binary(build=not args.no_build))
        with srv:
            if args.server == "kizuna":
                srv.add_limited_account()
            cmd = [sys.executable, SUITE] + srv.suite_args() + ["--json-report", report] + args.suite_args
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(proc.stdout)
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        score = lines[-1] if lines and " passed, " in lines[-1] else None
        if score is None:
            print("the suite produced no score (exit %d); server log:" % proc.returncode)
            print(servers._tail(srv.log_path, 4000))
            return 2
        with open(os.path.join(args.out, args.server + ".score"), "w") as f:
            f.write(score + "\n")
        print("%s MUST score written to %s" % (args.server, os.path.join(args.out, args.server + ".score")))
        if proc.returncode != 0 and args.server == "kizuna":
            print("--- kizuna log (tail) ---")
            print(servers._tail(srv.log_path, 3000))
    return 0 if args.server == "medallion" else proc.returncode


if __name__ == "__main__":
    sys.exit(main())
