#!/usr/bin/env python3
"""Starts medallion or kizuna on 127.0.0.1 and runs interop/taxii2client_tour.py against it.

    run_tour.py medallion            # the OASIS reference server (plain HTTP)
    run_tour.py kizuna [--no-build]  # kizuna serve, HTTPS with its self-signed certificate
Extra arguments after -- go to the tour (e.g. -- --objects 1000). Exit status: the tour's.
"""

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "conformance"))
import servers  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("server", choices=["medallion", "kizuna"])
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("tour_args", nargs="*")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kizuna-interop-") as tmp:
        if args.server == "medallion":
            srv = servers.Medallion(tmp)
        else:
            srv = servers.Kizuna(tmp, servers.kizuna_binary(build=not args.no_build))
        with srv:
            a = srv.suite_args()
            # The tour takes the suite's connection arguments, not its extra collections.
            for opt in ("--read-only-collection", "--write-only-collection"):
                if opt in a:
                    i = a.index(opt)
                    del a[i:i + 2]
            rc = subprocess.run([sys.executable, os.path.join(HERE, "taxii2client_tour.py")] + a + args.tour_args).returncode
            if rc != 0:
                print("--- %s log (tail) ---" % args.server)
                print(servers._tail(srv.log_path, 3000))
    return rc


if __name__ == "__main__":
    sys.exit(main())
